//! Generation flags named as HF users know them; each overrides one key of the run's
//! `[generation]` section.

use clap::Args;
use s2s_generate::GenerationSettings;

#[derive(Args, Debug, Clone, Default)]
pub struct GenerationArgs {
    /// Beams per sentence; beam search when > 1. [config: generation.num_beams, default 1]
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
    /// Sample instead of taking the most probable token (`--do-sample false` turns a config's
    /// sampling off). [default false]
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

impl GenerationArgs {
    /// `settings` with every flag given on the command line applied.
    pub fn apply(&self, mut settings: GenerationSettings) -> GenerationSettings {
        fn set<T: Clone>(target: &mut T, flag: &Option<T>) {
            if let Some(value) = flag {
                *target = value.clone();
            }
        }
        set(&mut settings.num_beams, &self.num_beams);
        set(&mut settings.length_penalty, &self.length_penalty);
        set(&mut settings.early_stopping, &self.early_stopping);
        set(
            &mut settings.num_return_sequences,
            &self.num_return_sequences,
        );
        set(&mut settings.do_sample, &self.do_sample);
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
}
