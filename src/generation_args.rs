//! Generation flags named as HF users know them; each overrides one key of the run's
//! `[generation]` section.
//!
//! Flags win over the run's defaults the way HF's `generate(**kwargs)` overrides a
//! `GenerationConfig`: every flag given replaces the run's value, and a flag that picks a
//! strategy also turns off the run's defaults that belong to another one:
//! - `--do-sample` without `--num-beams` samples (the run's `num_beams` becomes 1: beam sampling
//!   does not exist here);
//! - `--num-beams N` (N > 1) without `--do-sample` is beam search (a run's `do_sample` is off);
//! - the run's settings of a strategy that is no longer used (`length_penalty` and
//!   `early_stopping` outside beam search; `temperature`, `top_k` and `top_p` outside sampling)
//!   go back to their defaults instead of being refused.
//!
//! Flags that contradict each other (`--do-sample --num-beams 4`, `--temperature` without
//! sampling, …) are refused with a sentence naming the flags and the fix.

use std::path::Path;

use anyhow::bail;
use clap::Args;
use s2s_generate::{GenerationConfig, GenerationSettings};
use s2s_infer::ExperimentConfig;

#[derive(Args, Debug, Clone, Default)]
pub struct GenerationArgs {
    /// Beams per sentence; beam search when > 1 (turns the run's sampling off).
    /// [config: generation.num_beams, default 1]
    #[arg(long)]
    pub num_beams: Option<usize>,
    /// Beam score = log p / length^α; > 0 favours longer outputs. [default 1.0]
    #[arg(long, allow_negative_numbers = true)]
    pub length_penalty: Option<f64>,
    /// Stop a sentence once num_beams hypotheses are finished. [default false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub early_stopping: Option<bool>,
    /// Hypotheses returned per input (≤ num_beams, or samples with --do-sample). [default 1]
    #[arg(long)]
    pub num_return_sequences: Option<usize>,
    /// Sample instead of taking the most probable token; without --num-beams it replaces the
    /// run's beam search (`--do-sample false` turns a config's sampling off). [default false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub do_sample: Option<bool>,
    /// Sampling temperature (> 0). [default 1.0]
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Sample among the k most probable tokens; 0 = all. [default 50]
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Nucleus sampling: the smallest set of tokens with mass ≥ p, p in (0, 1]. [default 1.0]
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Seed of the sampler; the same seed gives the same samples. [default 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Longest output in tokens, `</s>` included. [default: the run's data.max_target_len]
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// `</s>` is forbidden before this many tokens. [default 0]
    #[arg(long)]
    pub min_new_tokens: Option<usize>,
    /// No n-gram of this size is generated twice; 0 = off. [default 0]
    #[arg(long)]
    pub no_repeat_ngram_size: Option<usize>,
    /// Sentences decoded together. [default 32]
    #[arg(long)]
    pub batch_size: Option<usize>,
}

/// Each setting of [`GenerationSettings`], for messages (its flag is `--` and the name with
/// dashes, [`Spelling`]).
const SETTINGS: [&str; 13] = [
    "max_new_tokens",
    "min_new_tokens",
    "num_beams",
    "length_penalty",
    "early_stopping",
    "num_return_sequences",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "no_repeat_ngram_size",
    "batch_size",
];

impl GenerationArgs {
    /// Whether sampling is on once the flags are applied to `run` (see the module's rules).
    fn samples(&self, run: &GenerationSettings) -> bool {
        match (self.do_sample, self.num_beams) {
            (Some(do_sample), _) => do_sample,
            (None, Some(n)) if n > 1 => false,
            (None, _) => run.do_sample,
        }
    }

    /// Beams once the flags are applied to `run`.
    fn beams(&self, run: &GenerationSettings) -> usize {
        match (self.num_beams, self.do_sample) {
            (Some(n), _) => n,
            (None, Some(true)) => 1,
            (None, _) => run.num_beams,
        }
    }

    /// Settings that contradict each other (or the strategy they leave): one sentence naming
    /// them as `spelling` spells them, and the fix.
    fn check_flags(&self, run: &GenerationSettings, spelling: Spelling<'_>) -> anyhow::Result<()> {
        let (samples, beams) = (self.samples(run), self.beams(run));
        let name = |setting: &str| spelling.name(setting);
        let set = |setting: &str, value: &str| spelling.set(setting, value);
        let and = spelling.and();
        if self.do_sample == Some(true) && beams > 1 {
            bail!(
                "{} cannot be combined with {} (beam sampling is not supported); pass {} to \
                 sample, or drop {} for beam search",
                set("do_sample", "true"),
                set("num_beams", &beams.to_string()),
                set("num_beams", "1"),
                name("do_sample"),
            );
        }
        let given = |settings: &[(&str, bool)]| -> Vec<String> {
            settings
                .iter()
                .filter(|(_, given)| *given)
                .map(|(setting, _)| name(setting))
                .collect()
        };
        let sampling = given(&[
            ("temperature", self.temperature.is_some()),
            ("top_k", self.top_k.is_some()),
            ("top_p", self.top_p.is_some()),
        ]);
        let verb = |names: &[String]| if names.len() == 1 { "applies" } else { "apply" };
        if !samples && !sampling.is_empty() {
            bail!(
                "{} only {} with sampling; add {}{}",
                sampling.join(", "),
                verb(&sampling),
                set("do_sample", "true"),
                if beams > 1 {
                    format!("{and}{}", set("num_beams", "1"))
                } else {
                    String::new()
                }
            );
        }
        let beam = given(&[
            ("length_penalty", self.length_penalty.is_some()),
            ("early_stopping", self.early_stopping.is_some()),
        ]);
        if (samples || beams <= 1) && !beam.is_empty() {
            let beams_n = set("num_beams", "N");
            bail!(
                "{} only {} to beam search; {}",
                beam.join(", "),
                verb(&beam),
                if samples {
                    format!("drop {} and pass {beams_n} (N > 1)", name("do_sample"))
                } else {
                    format!("pass {beams_n} (N > 1)")
                }
            );
        }
        if let Some(n) = self.num_return_sequences {
            if !samples && n > beams {
                bail!(
                    "{} needs at least {n} beams but there are {beams}; pass {}, or {} to draw \
                     {n} samples",
                    set("num_return_sequences", &n.to_string()),
                    set("num_beams", &n.to_string()),
                    set("do_sample", "true"),
                );
            }
        }
        Ok(())
    }

    /// `run` with every flag given on the command line applied, and the run's settings of a
    /// strategy the flags turned off back at their defaults (the module's rules).
    pub fn apply(&self, run: GenerationSettings) -> GenerationSettings {
        fn set<T: Clone>(target: &mut T, flag: &Option<T>) {
            if let Some(value) = flag {
                *target = value.clone();
            }
        }
        let defaults = GenerationSettings::default();
        let (samples, beams) = (self.samples(&run), self.beams(&run));
        let mut settings = run;
        settings.do_sample = samples;
        settings.num_beams = beams;
        if samples || beams <= 1 {
            settings.length_penalty = defaults.length_penalty;
            settings.early_stopping = defaults.early_stopping;
        }
        if !samples {
            settings.temperature = defaults.temperature;
            settings.top_k = defaults.top_k;
            settings.top_p = defaults.top_p;
        }
        set(&mut settings.length_penalty, &self.length_penalty);
        set(&mut settings.early_stopping, &self.early_stopping);
        set(
            &mut settings.num_return_sequences,
            &self.num_return_sequences,
        );
        set(&mut settings.temperature, &self.temperature);
        set(&mut settings.top_k, &self.top_k);
        set(&mut settings.top_p, &self.top_p);
        set(&mut settings.seed, &self.seed);
        if self.max_new_tokens.is_some() {
            settings.max_new_tokens = self.max_new_tokens;
        }
        set(&mut settings.min_new_tokens, &self.min_new_tokens);
        set(
            &mut settings.no_repeat_ngram_size,
            &self.no_repeat_ngram_size,
        );
        set(&mut settings.batch_size, &self.batch_size);
        settings
    }

    /// The generation request of a command: the run's `[generation]` section (`config`, read
    /// from `config_path`) with the flags applied, resolved. A refusal names the flags (or the
    /// settings, with the flag that overrides each) and the fix, never "invalid experiment
    /// config" for something typed on the command line.
    pub fn resolve(
        &self,
        config: &ExperimentConfig,
        config_path: &Path,
    ) -> anyhow::Result<GenerationConfig> {
        self.resolve_as(config, Spelling::Flags(config_path))
    }

    /// [`Self::resolve`] with the settings named as `spelling` spells them: `s2s serve` refuses
    /// a request's parameters by their JSON names.
    pub fn resolve_as(
        &self,
        config: &ExperimentConfig,
        spelling: Spelling<'_>,
    ) -> anyhow::Result<GenerationConfig> {
        self.check_flags(&config.generation, spelling)?;
        let settings = self.apply(config.generation.clone());
        match s2s_infer::resolve_generation(&settings, config) {
            Ok(resolved) => Ok(resolved),
            Err(s2s_infer::InferError::Config(message)) => {
                let message = message.strip_prefix("generation: ").unwrap_or(&message);
                let named: Vec<String> = SETTINGS
                    .iter()
                    .filter(|setting| message.contains(*setting))
                    .map(|setting| spelling.name(setting))
                    .collect();
                let named = if named.is_empty() {
                    match spelling {
                        Spelling::Flags(_) => "the generation flags".to_string(),
                        Spelling::Json => "the generation parameters".to_string(),
                    }
                } else {
                    named.join(" or ")
                };
                match spelling {
                    Spelling::Flags(config_path) => bail!(
                        "{message} (the flags applied to the run's [generation] defaults in {}); \
                         set {named} on the command line",
                        config_path.display(),
                    ),
                    Spelling::Json => bail!(
                        "{message} (the request's parameters applied to the run's [generation] \
                         defaults); set {named} in \"parameters\""
                    ),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// How messages name a generation setting: as the command line's flag (`--num-beams 4`) or as
/// the server's JSON parameter (`"num_beams": 4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling<'a> {
    /// `s2s generate`'s flags, over the run config at this path (named in messages).
    Flags(&'a Path),
    /// `s2s serve`'s request parameters.
    Json,
}

impl Spelling<'_> {
    /// The setting's name: `--num-beams` or `"num_beams"`.
    fn name(self, setting: &str) -> String {
        match self {
            Self::Flags(_) => format!("--{}", setting.replace('_', "-")),
            Self::Json => format!("\"{setting}\""),
        }
    }

    /// The setting given `value`: `--num-beams 4` (a `true` flag alone: `--do-sample`) or
    /// `"num_beams": 4`.
    fn set(self, setting: &str, value: &str) -> String {
        match (self, value) {
            (Self::Flags(_), "true") => self.name(setting),
            (Self::Flags(_), _) => format!("{} {value}", self.name(setting)),
            (Self::Json, _) => format!("{}: {value}", self.name(setting)),
        }
    }

    /// Between two settings given together.
    fn and(self) -> &'static str {
        match self {
            Self::Flags(_) => " ",
            Self::Json => ", ",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use s2s_generate::DecodeStrategy;

    fn run_config(generation: &str) -> ExperimentConfig {
        let config = ExperimentConfig::from_toml(&format!(
            "[data]\ncorpus = \"bible-en-fr\"\n[generation]\n{generation}"
        ))
        .unwrap();
        config.validate().unwrap();
        config
    }

    fn resolve(run: &str, args: GenerationArgs) -> anyhow::Result<GenerationConfig> {
        args.resolve(&run_config(run), Path::new("runs/x/config.toml"))
    }

    #[test]
    fn do_sample_replaces_the_runs_beam_search() {
        // runs/quickstart: num_beams = 4; the docs' sampling command was refused.
        let args = GenerationArgs {
            do_sample: Some(true),
            top_p: Some(0.9),
            temperature: Some(0.8),
            seed: Some(7),
            ..Default::default()
        };
        let config = resolve("num_beams = 4\nlength_penalty = 0.6\n", args).unwrap();
        assert_eq!(
            config.strategy,
            DecodeStrategy::Sample {
                temperature: 0.8,
                top_k: 50,
                top_p: 0.9,
                seed: 7,
                num_return_sequences: 1
            }
        );
    }

    #[test]
    fn num_beams_replaces_the_runs_sampling_and_one_beam_is_greedy() {
        let sampling_run = "do_sample = true\ntemperature = 0.7\ntop_k = 10\n";
        let args = GenerationArgs {
            num_beams: Some(3),
            ..Default::default()
        };
        let config = resolve(sampling_run, args).unwrap();
        assert_eq!(
            config.strategy,
            DecodeStrategy::Beam {
                num_beams: 3,
                length_penalty: 1.0,
                early_stopping: false,
                num_return_sequences: 1
            }
        );
        // HF: num_beams = 1 with do_sample = true samples
        let args = GenerationArgs {
            num_beams: Some(1),
            ..Default::default()
        };
        assert!(matches!(
            resolve(sampling_run, args).unwrap().strategy,
            DecodeStrategy::Sample {
                temperature: 0.7,
                top_k: 10,
                ..
            }
        ));
        // the run's beam-only settings do not stop greedy decoding
        let args = GenerationArgs {
            num_beams: Some(1),
            ..Default::default()
        };
        let beam_run = "num_beams = 4\nlength_penalty = 0.6\nearly_stopping = true\n";
        assert_eq!(
            resolve(beam_run, args).unwrap().strategy,
            DecodeStrategy::Greedy
        );
        // --do-sample false keeps the run's beams
        let args = GenerationArgs {
            do_sample: Some(false),
            ..Default::default()
        };
        assert!(matches!(
            resolve("num_beams = 4\n", args).unwrap().strategy,
            DecodeStrategy::Beam { num_beams: 4, .. }
        ));
    }

    #[test]
    fn contradicting_flags_are_named_with_the_fix() {
        let cases = [
            (
                GenerationArgs {
                    do_sample: Some(true),
                    num_beams: Some(4),
                    ..Default::default()
                },
                "--do-sample cannot be combined with --num-beams 4 (beam sampling is not \
                 supported); pass --num-beams 1 to sample, or drop --do-sample for beam search",
            ),
            (
                GenerationArgs {
                    temperature: Some(0.8),
                    top_p: Some(0.9),
                    ..Default::default()
                },
                "--temperature, --top-p only apply with sampling; add --do-sample --num-beams 1",
            ),
            (
                GenerationArgs {
                    do_sample: Some(true),
                    length_penalty: Some(0.6),
                    ..Default::default()
                },
                "--length-penalty only applies to beam search; drop --do-sample and pass \
                 --num-beams N (N > 1)",
            ),
            (
                GenerationArgs {
                    num_return_sequences: Some(5),
                    ..Default::default()
                },
                "--num-return-sequences 5 needs at least 5 beams but there are 4; pass \
                 --num-beams 5, or --do-sample to draw 5 samples",
            ),
            (
                GenerationArgs {
                    top_p: Some(1.5),
                    do_sample: Some(true),
                    ..Default::default()
                },
                "top_p must be in (0, 1], got 1.5 (the flags applied to the run's [generation] \
                 defaults in runs/x/config.toml); set --top-p on the command line",
            ),
            (
                GenerationArgs {
                    num_beams: Some(2),
                    ..Default::default()
                },
                "num_return_sequences (3) must be between 1 and num_beams (2) (the flags applied \
                 to the run's [generation] defaults in runs/x/config.toml); set --num-beams or \
                 --num-return-sequences on the command line",
            ),
        ];
        for (i, (args, expected)) in cases.into_iter().enumerate() {
            let run = if i == 5 {
                "num_beams = 4\nnum_return_sequences = 3\n"
            } else {
                "num_beams = 4\n"
            };
            let message = format!("{:#}", resolve(run, args).unwrap_err());
            assert_eq!(message, expected);
            assert!(!message.contains("invalid experiment config"));
        }
    }
}
