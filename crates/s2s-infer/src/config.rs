//! The experiment file: `[model]`, `[data]`, `[training]`, `[generation]`, read from TOML with
//! unknown keys refused and every value checked before a run starts. A run directory keeps the
//! resolved copy it was trained with ([`crate::RunDir::config`]).

use std::path::{Path, PathBuf};

use s2s_data::tokenizer::MIN_VOCAB_SIZE;
use s2s_data::{LengthLimits, SidePolicies};
use s2s_eval::Metric;
use s2s_generate::{GenerationConfig, GenerationSettings};
use s2s_model::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::recipe::{EarlyStopping, GradClip, LrSchedule, OptimizerKind};
use crate::{BackendKind, InferError};

/// A whole experiment as written in `configs/*.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Run name; the run directory is `runs/<name>` unless `run_dir` is set.
    /// Default: the config file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the run is written. Default: `runs/<name>`.
    #[serde(default)]
    pub run_dir: Option<PathBuf>,
    /// The encoder, adapter and decoder (`[model]`).
    #[serde(default)]
    pub model: ModelConfig,
    /// The parallel text and its tokenizer (`[data]`).
    pub data: DataConfig,
    /// Optimisation and bookkeeping (`[training]`).
    #[serde(default)]
    pub training: TrainingConfig,
    /// Decoding defaults for `s2s generate`, `s2s eval --run` and validation BLEU, named as in
    /// HF `GenerationConfig`.
    #[serde(default)]
    pub generation: GenerationSettings,
}

/// Where the parallel text comes from and how it is tokenized and cut.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// What the pairs are: `translation` or `summarization`. It only picks the defaults of
    /// other keys ([`Task::defaults`]); every one of them can still be set. Default:
    /// `translation`.
    #[serde(default)]
    pub task: Task,
    /// A named corpus prepared by `s2s data prepare` (`bible-en-fr`, `debian-descriptions`).
    /// Exclusive with `train`.
    #[serde(default)]
    pub corpus: Option<String>,
    /// Training pairs: a `.tsv` (source<TAB>target) or `.jsonl` file (`{"source", "target"}`).
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// Validation pairs, same formats; required with `train`.
    #[serde(default)]
    pub valid: Option<PathBuf>,
    /// Held-out pairs used for the final sample translations. Optional.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Keep N training pairs (after length filtering), drawn with `training.seed` from the whole
    /// split and kept in corpus order. Default: all.
    #[serde(default)]
    pub max_train_pairs: Option<usize>,
    /// Keep only the first N validation pairs. Default: all.
    #[serde(default)]
    pub max_valid_pairs: Option<usize>,
    /// Longest source in tokens, including `</s>`. Default: 128 (summarization: 512).
    #[serde(default = "default_max_len")]
    pub max_source_len: usize,
    /// Longest target in tokens, including `<s>`/`</s>`. Default: 128 (summarization: 64).
    #[serde(default = "default_max_len")]
    pub max_target_len: usize,
    /// `filter` drops pairs over a limit, `truncate` cuts them; one value for both sides or a
    /// table per side (`{ source = "truncate", target = "filter" }`). Default: `filter`
    /// (summarization: source `truncate`, target `filter`).
    #[serde(default)]
    pub length_policy: SidePolicies,
    /// The tokenizer trained on the training pairs (`[data.tokenizer]`).
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    /// Swap the two sides of every pair: `bible-en-fr` with `reverse = true` trains French →
    /// English. Every reader of the pairs (training, `s2s eval --run`, `s2s bench`) sees them
    /// swapped. Default: false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reverse: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_max_len() -> usize {
    128
}

/// The job a config's pairs stand for; it picks defaults, nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Source and target are the same text in two languages: validation BLEU, 128-token
    /// limits on both sides, pairs over a limit dropped.
    #[default]
    Translation,
    /// The target is a short summary of a long source: validation ROUGE, long sources cut
    /// rather than dropped, beam search that does not repeat trigrams.
    Summarization,
}

impl Task {
    /// The keys this task sets when the config leaves them out, as dotted TOML keys and
    /// values (translation's are the struct defaults, so its list is empty). A `[generation]`
    /// with `do_sample = true` keeps sampling: `num_beams` is then not filled in.
    ///
    /// Summarization, for inputs of a few hundred tokens and one-sentence summaries (like
    /// Debian's synopses): `max_source_len = 512`, `max_target_len = 64`, `length_policy =
    /// { source = "truncate", target = "filter" }`, `training.valid_metrics = ["rouge"]`,
    /// `generation.num_beams = 4`, `no_repeat_ngram_size = 3` (Paulus et al., 2018, and
    /// fairseq's/HF's BART summarization settings), `min_new_tokens = 1` (no empty summary);
    /// `length_penalty` stays 1, as one-sentence targets need no push toward length (BART's
    /// CNN/DM setting of 2.0 is for multi-sentence summaries).
    pub fn defaults(self) -> Vec<(&'static str, toml::Value)> {
        use toml::Value;
        match self {
            Task::Translation => Vec::new(),
            Task::Summarization => {
                let mut sides = toml::Table::new();
                sides.insert("source".into(), "truncate".into());
                sides.insert("target".into(), "filter".into());
                vec![
                    ("data.max_source_len", Value::Integer(512)),
                    ("data.max_target_len", Value::Integer(64)),
                    ("data.length_policy", Value::Table(sides)),
                    ("training.valid_metrics", Value::Array(vec!["rouge".into()])),
                    ("generation.num_beams", Value::Integer(4)),
                    ("generation.no_repeat_ngram_size", Value::Integer(3)),
                    ("generation.min_new_tokens", Value::Integer(1)),
                ]
            }
        }
    }

    /// What `s2s eval` reports unless `--metrics` says otherwise: BLEU and chrF for
    /// translation, ROUGE (1/2/L/Lsum) for summarization.
    pub fn eval_metrics(self) -> Vec<Metric> {
        match self {
            Task::Translation => vec![Metric::Bleu, Metric::Chrf],
            Task::Summarization => vec![Metric::Rouge],
        }
    }

    /// Inserts [`Self::defaults`] into a parsed config where its keys are absent.
    fn fill_defaults(self, config: &mut toml::Table) {
        let sampling = config
            .get("generation")
            .and_then(|g| g.get("do_sample"))
            .and_then(toml::Value::as_bool)
            == Some(true);
        for (key, value) in self.defaults() {
            if sampling && key == "generation.num_beams" {
                continue;
            }
            let (section, name) = key.split_once('.').unwrap_or(("", key));
            let table = config
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(table) = table {
                table.entry(name).or_insert(value);
            }
        }
    }
}

impl DataConfig {
    /// The train, valid and (if any) test files, preparing a named corpus under `data_dir`
    /// first if it is missing.
    ///
    /// # Errors
    /// [`InferError::Config`] without `corpus` or `train` and `valid`; a corpus that cannot be
    /// prepared.
    pub fn split_paths(
        &self,
        data_dir: &Path,
    ) -> Result<(PathBuf, PathBuf, Option<PathBuf>), InferError> {
        use s2s_data::Split;
        if let Some(name) = &self.corpus {
            let dir = s2s_data::ensure_corpus(name, data_dir)?;
            return Ok((
                Split::Train.path(&dir),
                Split::Valid.path(&dir),
                Some(Split::Test.path(&dir)),
            ));
        }
        match (&self.train, &self.valid) {
            (Some(train), Some(valid)) => Ok((train.clone(), valid.clone(), self.test.clone())),
            _ => Err(invalid("set data.corpus or data.train and data.valid")),
        }
    }

    /// The sentence pairs of `split` (files as [`Self::split_paths`] finds them); empty for a
    /// test split the config does not have.
    ///
    /// # Errors
    /// As [`Self::split_paths`], and a file that cannot be read as pairs.
    pub fn read_split(
        &self,
        split: s2s_data::Split,
        data_dir: &Path,
    ) -> Result<Vec<s2s_data::SentencePair>, InferError> {
        let (train, valid, test) = self.split_paths(data_dir)?;
        let path = match split {
            s2s_data::Split::Train => Some(train),
            s2s_data::Split::Valid => Some(valid),
            s2s_data::Split::Test => test,
        };
        match path {
            Some(path) => self.read_pairs(&path),
            None => Ok(Vec::new()),
        }
    }

    /// The pairs of one data file, swapped when `reverse` is set.
    ///
    /// # Errors
    /// A file that cannot be read as pairs.
    pub fn read_pairs(&self, path: &Path) -> Result<Vec<s2s_data::SentencePair>, InferError> {
        let mut pairs = s2s_data::read_pairs(path)?;
        if self.reverse {
            for pair in &mut pairs {
                std::mem::swap(&mut pair.source, &mut pair.target);
            }
        }
        Ok(pairs)
    }

    /// The length limits the tokenizer stage applies.
    pub fn length_limits(&self) -> LengthLimits {
        LengthLimits {
            max_source_len: self.max_source_len,
            max_target_len: self.max_target_len,
            policy: self.length_policy,
        }
    }
}

/// The BPE tokenizer trained on the training split.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizerConfig {
    /// One vocabulary for both sides (`tokenizer.json`) or one per side. Default: true.
    pub joint: bool,
    /// Target vocabulary size, special tokens included. Default: 8000.
    pub vocab_size: usize,
    /// Minimum pair frequency for a merge. Default: 2.
    pub min_frequency: u64,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            joint: true,
            vocab_size: 8000,
            min_frequency: 2,
        }
    }
}

/// Optimisation and bookkeeping.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Backend the run uses unless `--backend` overrides it; a run's own `config.toml` holds
    /// the backend it was trained on last (the override included). Default: `ndarray`.
    pub backend: BackendKind,
    /// Intra-op threads of the CPU backends (rayon's pool for ndarray and flex, matrixmultiply's
    /// for ndarray's matmuls, libtorch's for tch); 0 uses every logical CPU. Default: 0.
    pub threads: usize,
    /// Devices to train on, as indices of the backend's device kind (CUDA 0, 1, …; libtorch's
    /// CUDA devices when it sees CUDA). More than one splits every batch over
    /// them (data parallelism, the same update as one device with the whole batch); on the CPU
    /// backends every index is the same processor. Empty: the backend's default device.
    /// Default: `[]`.
    pub devices: Vec<usize>,
    /// Default: 10.
    pub epochs: usize,
    /// Sentence pairs per batch. Default: 64.
    pub batch_size: usize,
    /// Length bucketing: this many batches are sorted by length together, so each batch holds
    /// pairs of similar length and little padding; 0 gives plain random batches. Default: 32.
    pub bucket_pool: usize,
    /// Token-based batches (fairseq's `--max-tokens`): each batch holds as many pairs as fit
    /// in this many tokens, padding included (`pairs × longest side`). As fairseq's
    /// `batch_by_size`, the batches are cut once from all pairs sorted by length (so
    /// `bucket_pool` is not used) and each epoch shuffles their order; `batch_size` then only
    /// sets the validation batches. 0: `batch_size` pairs per batch. Default: 0.
    pub max_tokens: usize,
    /// `adam` or `adamw` ([`OptimizerKind`]). Default: `adam`.
    pub optimizer: OptimizerKind,
    /// Weight decay: an L2 term with `adam`, decoupled decay with `adamw`. Default: 0.
    pub weight_decay: f64,
    /// `noam`, `inverse_sqrt`, `linear` or `cosine` ([`LrSchedule`], counted in optimizer
    /// steps).
    /// Default: `noam`.
    pub lr_schedule: LrSchedule,
    /// Noam factor: `lr = factor · d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)`
    /// (Vaswani et al., 2017, §5.3); `noam` only. Default: 1.0.
    pub lr_factor: f64,
    /// The peak learning rate of `inverse_sqrt`, `linear` and `cosine` (reached at the end of
    /// the warm-up). Default: 5e-4 (fairseq's Transformer recipe).
    pub lr: f64,
    /// The learning rate `linear` and `cosine` end at. Default: 0.
    pub min_lr: f64,
    /// Warm-up optimizer steps of every schedule (at least 1 for `noam` and `inverse_sqrt`).
    /// Default: 4000.
    pub warmup_steps: usize,
    /// Adam β1. Default: 0.9.
    pub adam_beta1: f32,
    /// Adam β2. Default: 0.98.
    pub adam_beta2: f32,
    /// Adam ε. Default: 1e-9.
    pub adam_epsilon: f32,
    /// Gradient clipping, `{ norm = 1.0, kind = "global" | "per_tensor" }` ([`GradClip`]); a
    /// norm of 0 disables it. `grad_clip_norm = x` (its name before) reads as
    /// `{ norm = x, kind = "per_tensor" }`. Default: `{ norm = 1.0, kind = "per_tensor" }`.
    #[serde(alias = "grad_clip_norm")]
    pub grad_clip: GradClip,
    /// Label smoothing ε. Default: 0.1.
    pub label_smoothing: f64,
    /// One optimizer step per this many batches, each batch's gradient weighted by its share
    /// of their target tokens (the step of one batch holding them all). Default: 1.
    pub grad_accumulation: usize,
    /// Seed for initialisation, dropout and shuffling. Default: 42.
    pub seed: u64,
    /// End-of-epoch checkpoints kept besides the best one (at least `average_last`).
    /// Default: 2.
    pub keep_checkpoints: usize,
    /// Stop when a validation number stops improving ([`EarlyStopping`]); the best epoch's
    /// weights become `model.mpk`. Default: none (every epoch runs).
    pub early_stopping: Option<EarlyStopping>,
    /// At the end, `model.mpk` is the element-wise mean of the last N epoch checkpoints'
    /// weights (Vaswani et al., 2017, averaged the last 5 or 20; `s2s average` does the same
    /// for a finished run). 0 or 1: the last epoch's weights. Default: 0.
    pub average_last: usize,
    /// Also write a checkpoint every N training batches (only the newest is kept), so that a
    /// run killed mid-epoch loses at most N batches; 0: only at the end of each epoch (and when
    /// training is stopped with Ctrl-C). Default: 0.
    pub checkpoint_every_steps: usize,
    /// Sample translations printed at the end. Default: 3.
    pub samples: usize,
    /// Keep the source embedding and the encoder fixed (no gradients, no updates); the adapter,
    /// decoder and output projection train. Default: false.
    pub freeze_encoder: bool,
    /// With `freeze_encoder`: the encoder trains again from this epoch on (it is frozen for the
    /// first N epochs, e.g. while the decoder of a pre-trained BERT encoder warms up). Must be
    /// less than `epochs`. Default: none (frozen throughout).
    pub unfreeze_encoder_after: Option<usize>,
    /// The source encoder's learning rate as a multiple of the scheduled one (the adapter,
    /// decoder and output use the schedule as is), e.g. 0.1 to fine-tune a pre-trained BERT
    /// gently. Default: 1.0.
    pub encoder_lr_scale: f64,
    /// Validation pairs (the first N) decoded with `[generation]` in every validation epoch;
    /// their `valid_metrics` are shown next to the loss. 0 turns it off. Default: 200.
    /// (`bleu_pairs` is read as this key, its name before summarization.)
    #[serde(alias = "bleu_pairs")]
    pub metric_pairs: usize,
    /// The corpus metrics of those decoded pairs shown during training (`bleu`, `chrf`,
    /// `rouge`, see [`s2s_eval::Metric`]); the final report has all of them. Default: `["bleu"]`
    /// (summarization: `["rouge"]`).
    #[serde(with = "metric_names")]
    pub valid_metrics: Vec<Metric>,
}

/// `valid_metrics` as a list of metric names.
mod metric_names {
    use s2s_eval::Metric;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(metrics: &[Metric], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(metrics.iter().map(|m| m.name()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Metric>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|name| name.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Ndarray,
            threads: 0,
            devices: Vec::new(),
            epochs: 10,
            batch_size: 64,
            bucket_pool: 32,
            max_tokens: 0,
            optimizer: OptimizerKind::Adam,
            weight_decay: 0.0,
            lr_schedule: LrSchedule::Noam,
            lr_factor: 1.0,
            lr: 5e-4,
            min_lr: 0.0,
            warmup_steps: 4000,
            adam_beta1: 0.9,
            adam_beta2: 0.98,
            adam_epsilon: 1e-9,
            grad_clip: GradClip::default(),
            label_smoothing: 0.1,
            grad_accumulation: 1,
            seed: 42,
            keep_checkpoints: 2,
            early_stopping: None,
            average_last: 0,
            checkpoint_every_steps: 0,
            samples: 3,
            metric_pairs: 200,
            valid_metrics: vec![Metric::Bleu],
            freeze_encoder: false,
            unfreeze_encoder_after: None,
            encoder_lr_scale: 1.0,
        }
    }
}

fn invalid(msg: impl Into<String>) -> InferError {
    InferError::Config(msg.into())
}

impl ExperimentConfig {
    /// Parses TOML; an unknown or misspelt key is an error naming it. A leading UTF-8
    /// byte-order mark is ignored.
    ///
    /// # Errors
    /// [`InferError::Config`] naming the key or value and its line.
    pub fn from_toml(text: &str) -> Result<Self, InferError> {
        Self::from_toml_with(text, &[])
    }

    /// [`Self::from_toml`], then each `key=value` of `overrides` in turn (`s2s train --set`):
    /// `key` is a dotted path (`training.epochs`, `model.dropout`), `value` a TOML value
    /// (`5`, `0.2`, `true`, `"text"`, `[1, 2]`, `{ norm = 1.0 }`) or, when it is not one, a
    /// string. Each override is checked like the file (types, unknown keys) before the next;
    /// task defaults fill in what neither sets. [`Self::to_toml`] then records the result.
    ///
    /// # Errors
    /// [`InferError::Config`] naming the line of the file, or the override, that is wrong.
    pub fn from_toml_with(text: &str, overrides: &[String]) -> Result<Self, InferError> {
        let text = s2s_data::strip_bom(text);
        let parse_error = |e: toml::de::Error| {
            invalid(e.message().trim_end().to_string() + &location(text, e.span()))
        };
        // Parsed as written first, so that every error names its line.
        let config: Self = toml::from_str(text).map_err(parse_error)?;
        if overrides.is_empty() && config.data.task.defaults().is_empty() {
            return Ok(config);
        }
        let mut table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        if !overrides.is_empty() {
            spell_grad_clip_as_table(&mut table);
        }
        let mut config = config;
        for assignment in overrides {
            let refused = |why: String| invalid(format!("--set {assignment}: {}", why.trim_end()));
            let (key, value) = parse_override(assignment).map_err(refused)?;
            set_dotted(&mut table, &key, value).map_err(refused)?;
            config = table
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| refused(e.message().to_string()))?;
        }
        let task = config.data.task;
        task.fill_defaults(&mut table);
        table
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.message().trim_end().to_string()))
    }

    /// The resolved config as TOML (every default written out).
    ///
    /// # Errors
    /// [`InferError::Config`] if TOML cannot hold a value (not expected for a parsed config).
    pub fn to_toml(&self) -> Result<String, InferError> {
        toml::to_string_pretty(self)
            .map_err(|e| invalid(format!("cannot serialise the config: {e}")))
    }

    /// Keys that may differ between a run's config and the config it is resumed with: what
    /// only changes how long it runs, what it keeps and reports, where it runs, and decoding.
    pub const RESUMABLE_KEYS: &'static [&'static str] = &[
        "name",
        "run_dir",
        "training.epochs",
        "training.keep_checkpoints",
        "training.checkpoint_every_steps",
        "training.samples",
        "training.metric_pairs",
        "training.valid_metrics",
        "training.backend",
        "training.threads",
        "training.devices",
        "generation",
        // Where the pairs are read from; their contents are checked (`data.sha256`) instead.
        "data.train",
        "data.valid",
        "data.test",
    ];

    /// The dotted keys whose values differ between `self` and `run` (the config a run started
    /// with) and that may not change on resume ([`Self::RESUMABLE_KEYS`]), sorted.
    pub fn resume_conflicts(&self, run: &ExperimentConfig) -> Vec<String> {
        fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
            match value {
                toml::Value::Table(table) => {
                    for (k, v) in table {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        flatten(&key, v, out);
                    }
                }
                other => out.push((prefix.to_string(), other.to_string())),
            }
        }
        let flat = |c: &ExperimentConfig| {
            let mut out = Vec::new();
            if let Ok(value) = toml::Value::try_from(c) {
                flatten("", &value, &mut out);
            }
            out.into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (new, old) = (flat(self), flat(run));
        let resumable = |key: &str| {
            Self::RESUMABLE_KEYS
                .iter()
                .any(|k| key == *k || key.starts_with(&format!("{k}.")))
        };
        let mut keys: Vec<String> = new
            .keys()
            .chain(old.keys())
            .filter(|k| new.get(*k) != old.get(*k) && !resumable(k))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Run name: `name`, else `fallback` (the config file stem).
    pub fn run_name(&self, fallback: &str) -> String {
        self.name.clone().unwrap_or_else(|| fallback.to_string())
    }

    /// Run directory: `run_dir`, else `runs/<name>`.
    pub fn run_directory(&self, fallback_name: &str) -> PathBuf {
        self.run_dir
            .clone()
            .unwrap_or_else(|| Path::new("runs").join(self.run_name(fallback_name)))
    }

    /// The `[generation]` section resolved to a strategy; `max_new_tokens` defaults to
    /// `data.max_target_len`.
    ///
    /// # Errors
    /// As [`resolve_generation`].
    pub fn generation_config(&self) -> Result<GenerationConfig, InferError> {
        resolve_generation(&self.generation, self)
    }

    /// Checks every section; the first problem is returned as one sentence.
    ///
    /// # Errors
    /// [`InferError::Config`] with that sentence.
    pub fn validate(&self) -> Result<(), InferError> {
        self.model.validate().map_err(|e| invalid(e.to_string()))?;
        self.validate_data()?;
        self.validate_training()?;
        self.generation_config()?;
        Ok(())
    }

    /// `[data]`, and how it fits `[model]`.
    fn validate_data(&self) -> Result<(), InferError> {
        let d = &self.data;
        match (&d.corpus, &d.train, &d.valid) {
            (Some(_), None, None) => {}
            (None, Some(_), Some(_)) => {}
            (Some(_), _, _) => {
                return Err(invalid(
                    "data.corpus and data.train/data.valid are exclusive; set one",
                ))
            }
            (None, Some(_), None) => return Err(invalid("data.valid is required with data.train")),
            (None, None, _) => {
                return Err(invalid(
                    "set data.corpus (e.g. \"bible-en-fr\") or data.train and data.valid",
                ))
            }
        }
        d.length_limits()
            .validate()
            .map_err(|e| invalid(format!("data: {e}")))?;
        // A BERT encoder has its own position table (checked against its config.json when the
        // run starts); model.max_positions covers the target side only.
        let longest = match self.model.bert {
            Some(_) => d.max_target_len,
            None => d.max_source_len.max(d.max_target_len),
        };
        if longest > self.model.max_positions {
            return Err(invalid(format!(
                "data length limits ({longest}) exceed model.max_positions ({})",
                self.model.max_positions
            )));
        }
        if self.model.bert.is_some() && d.tokenizer.joint {
            return Err(invalid(
                "data.tokenizer.joint = true cannot share a vocabulary with a pre-trained BERT \
                 encoder; set joint = false (the BPE is then trained on the targets only)",
            ));
        }
        if d.tokenizer.vocab_size < MIN_VOCAB_SIZE {
            return Err(invalid(format!(
                "data.tokenizer.vocab_size must be at least {MIN_VOCAB_SIZE} (256 byte symbols and \
                 4 special tokens), got {}",
                d.tokenizer.vocab_size
            )));
        }
        Ok(())
    }

    /// `[training]`'s optimizer, schedule, early stopping and averaging.
    fn validate_recipe(&self) -> Result<(), InferError> {
        let t = &self.training;
        if t.lr_schedule != LrSchedule::Noam && t.lr <= 0.0 {
            return Err(invalid(format!(
                "training.lr must be greater than 0 with lr_schedule = \"{}\"",
                t.lr_schedule.name()
            )));
        }
        if t.min_lr < 0.0 || (t.lr_schedule != LrSchedule::Noam && t.min_lr > t.lr) {
            return Err(invalid(format!(
                "training.min_lr must be between 0 and training.lr ({}), got {}",
                t.lr, t.min_lr
            )));
        }
        if t.weight_decay < 0.0 {
            return Err(invalid("training.weight_decay must be 0 (off) or positive"));
        }
        if let Some(stop) = &t.early_stopping {
            if stop.patience == 0 {
                return Err(invalid(
                    "training.early_stopping.patience must be at least 1 (epochs without \
                     improvement)",
                ));
            }
            if stop.min_delta < 0.0 {
                return Err(invalid(
                    "training.early_stopping.min_delta must be 0 or positive",
                ));
            }
            if let Some(metric) = stop.metric.needs() {
                if t.metric_pairs == 0 || !t.valid_metrics.contains(&metric) {
                    return Err(invalid(format!(
                        "training.early_stopping.metric = \"{}\" needs \"{metric}\" in \
                         training.valid_metrics and training.metric_pairs > 0",
                        stop.metric
                    )));
                }
            }
        }
        if let Some(twice) = first_repeat(&t.devices) {
            return Err(invalid(format!(
                "training.devices lists device {twice} twice"
            )));
        }
        if t.early_stopping.is_some() && t.unfreeze_encoder_after.is_some() {
            return Err(invalid(
                "training.early_stopping cannot be combined with \
                 training.unfreeze_encoder_after (a stop while the encoder is frozen would end \
                 the run before it trains); set one",
            ));
        }
        if t.average_last > 1 && t.early_stopping.is_some() {
            return Err(invalid(
                "training.average_last and training.early_stopping both choose the weights of \
                 model.mpk; set one (s2s average can average a finished run's checkpoints)",
            ));
        }
        if t.average_last > t.keep_checkpoints {
            return Err(invalid(format!(
                "training.average_last ({}) needs training.keep_checkpoints of at least as \
                 many, got {}",
                t.average_last, t.keep_checkpoints
            )));
        }
        if t.average_last > t.epochs {
            return Err(invalid(format!(
                "training.average_last ({}) is more than training.epochs ({})",
                t.average_last, t.epochs
            )));
        }
        Ok(())
    }

    /// `[training]`.
    fn validate_training(&self) -> Result<(), InferError> {
        let t = &self.training;
        if t.epochs == 0 || t.batch_size == 0 || t.grad_accumulation == 0 {
            return Err(invalid(
                "training.epochs, batch_size and grad_accumulation must be at least 1",
            ));
        }
        // NaN and ±inf pass every range check below, so they are refused first, by name.
        let finite: [(&str, f64); 11] = [
            ("lr_factor", t.lr_factor),
            ("lr", t.lr),
            ("min_lr", t.min_lr),
            ("weight_decay", t.weight_decay),
            ("adam_beta1", t.adam_beta1.into()),
            ("adam_beta2", t.adam_beta2.into()),
            ("adam_epsilon", t.adam_epsilon.into()),
            ("grad_clip.norm", t.grad_clip.norm.into()),
            (
                "early_stopping.min_delta",
                t.early_stopping.map_or(0.0, |e| e.min_delta),
            ),
            ("label_smoothing", t.label_smoothing),
            ("encoder_lr_scale", t.encoder_lr_scale),
        ];
        if let Some((name, value)) = finite.iter().find(|(_, v)| !v.is_finite()) {
            return Err(invalid(format!(
                "training.{name} must be a finite number, got {value}"
            )));
        }
        let warmup_needed = matches!(t.lr_schedule, LrSchedule::Noam | LrSchedule::InverseSqrt);
        if warmup_needed && t.warmup_steps == 0 {
            return Err(invalid(format!(
                "training.warmup_steps must be greater than 0 with lr_schedule = \"{}\" \
                 (linear and cosine may start at the peak)",
                t.lr_schedule.name()
            )));
        }
        if t.lr_schedule == LrSchedule::Noam && t.lr_factor <= 0.0 {
            return Err(invalid("training.lr_factor must be greater than 0"));
        }
        if !(0.0..1.0).contains(&t.label_smoothing) {
            return Err(invalid("training.label_smoothing must be in [0, 1)"));
        }
        if !(0.0..1.0).contains(&t.adam_beta1)
            || !(0.0..1.0).contains(&t.adam_beta2)
            || t.adam_epsilon <= 0.0
        {
            return Err(invalid(
                "training.adam_beta1/beta2 must be in [0, 1) and adam_epsilon > 0",
            ));
        }
        if t.grad_clip.norm < 0.0 {
            return Err(invalid(
                "training.grad_clip.norm must be 0 (off) or positive",
            ));
        }
        self.validate_recipe()?;
        match t.unfreeze_encoder_after {
            Some(_) if !t.freeze_encoder => {
                return Err(invalid(
                    "training.unfreeze_encoder_after needs training.freeze_encoder = true",
                ))
            }
            Some(n) if n == 0 || n >= t.epochs => {
                return Err(invalid(format!(
                "training.unfreeze_encoder_after must be between 1 and epochs - 1 ({}), got {n}",
                t.epochs.saturating_sub(1)
            )))
            }
            _ => {}
        }
        if !(t.encoder_lr_scale.is_finite() && t.encoder_lr_scale > 0.0) {
            return Err(invalid(
                "training.encoder_lr_scale must be greater than 0 (use freeze_encoder to keep \
                 the encoder fixed)",
            ));
        }
        if t.metric_pairs > 0 && t.valid_metrics.is_empty() {
            return Err(invalid(
                "training.valid_metrics is empty; list a metric (bleu, chrf, rouge) or set \
                 training.metric_pairs = 0 to turn validation decoding off",
            ));
        }
        if let Some(twice) = first_repeat(&t.valid_metrics) {
            return Err(invalid(format!(
                "training.valid_metrics lists {twice} twice"
            )));
        }
        if t.keep_checkpoints == 0 {
            return Err(invalid("training.keep_checkpoints must be at least 1"));
        }
        // The widest a pair can pad to: the length limits count the specials, and the batcher
        // pads a target of at most max_target_len - 2 tokens to one more (`<s> y` / `y </s>`).
        let widest = self
            .data
            .max_source_len
            .max(self.data.max_target_len.saturating_sub(1));
        if t.max_tokens > 0 && t.max_tokens < widest {
            return Err(invalid(format!(
                "training.max_tokens ({}) must be 0 (off) or at least {widest}, the tokens one \
                 pair at data.max_source_len/max_target_len takes in a batch",
                t.max_tokens
            )));
        }
        Ok(())
    }
}

/// `training.grad_clip_norm = x` and `training.grad_clip = x` rewritten as the table they
/// mean, `grad_clip = { norm = x, kind = "per_tensor" }`, so that an override of
/// `training.grad_clip` or one of its keys replaces or edits it instead of clashing with it.
fn spell_grad_clip_as_table(config: &mut toml::Table) {
    let Some(toml::Value::Table(training)) = config.get_mut("training") else {
        return;
    };
    let value = match training.remove("grad_clip_norm") {
        Some(old) => old,
        None => match training.get("grad_clip") {
            Some(norm @ (toml::Value::Float(_) | toml::Value::Integer(_))) => norm.clone(),
            _ => return,
        },
    };
    let mut clip = toml::Table::new();
    clip.insert("norm".into(), value);
    clip.insert("kind".into(), "per_tensor".into());
    training.insert("grad_clip".into(), toml::Value::Table(clip));
}

/// The first item of `items` that an earlier one equals (what a "lists X twice" check names).
pub fn first_repeat<T: PartialEq>(items: &[T]) -> Option<&T> {
    items
        .iter()
        .enumerate()
        .find_map(|(i, item)| items[..i].contains(item).then_some(item))
}

/// Splits `key=value` into the dotted key's parts and the TOML value (a bare word is a
/// string).
fn parse_override(assignment: &str) -> Result<(Vec<String>, toml::Value), String> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err("expected key=value, e.g. training.epochs=5".into());
    };
    let parts: Vec<String> = key
        .trim()
        .split('.')
        .map(|p| p.trim().to_string())
        .collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!("`{key}` is not a dotted key like training.epochs"));
    }
    Ok((parts, override_value(raw)))
}

/// A `--set` (or `s2s sweep --grid`) value: `raw` read as a TOML value (`5`, `0.2`, `"x"`,
/// `[1, 2]`, `{ a = 1 }`), or, when it is not one, the string `raw` itself (so `adamw` needs
/// no quotes). Surrounding whitespace is ignored.
pub fn override_value(raw: &str) -> toml::Value {
    let raw = raw.trim();
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Sets `table[parts[0]][parts[1]]… = value`, creating the tables on the way.
fn set_dotted(table: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<(), String> {
    let (last, path) = parts.split_last().ok_or("an empty key")?;
    let mut current = table;
    for (depth, part) in path.iter().enumerate() {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{}` is a value, not a section",
                    parts[..=depth].join(".")
                ))
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Resolves generation `settings` (the config's, or the config's overridden by command-line
/// flags) against what the experiment's model can decode.
///
/// # Errors
/// [`InferError::Config`] (`generation: …`) for contradicting settings or a `max_new_tokens`
/// beyond `model.max_positions`.
pub fn resolve_generation(
    settings: &GenerationSettings,
    config: &ExperimentConfig,
) -> Result<GenerationConfig, InferError> {
    let resolved = settings
        .resolve(config.data.max_target_len)
        .map_err(|e| invalid(format!("generation: {e}")))?;
    if resolved.max_new_tokens > config.model.max_positions {
        return Err(invalid(format!(
            "generation: max_new_tokens ({}) exceeds model.max_positions ({})",
            resolved.max_new_tokens, config.model.max_positions
        )));
    }
    Ok(resolved)
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = "[data]\ncorpus = \"bible-en-fr\"\n";

    #[test]
    fn reverse_swaps_every_pair_and_is_left_out_of_a_config_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train.tsv");
        std::fs::write(&train, "a\tA\nb\tB\n").unwrap();
        let mut data = ExperimentConfig::from_toml(MINIMAL).unwrap().data;
        let pairs = |d: &DataConfig| {
            d.read_pairs(&train)
                .unwrap()
                .into_iter()
                .map(|p| (p.source, p.target))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(&data),
            [("a".into(), "A".into()), ("b".into(), "B".into())]
        );
        // Written back, a config that did not set it stays as it was.
        assert!(!ExperimentConfig::from_toml(MINIMAL)
            .unwrap()
            .to_toml()
            .unwrap()
            .contains("reverse"));
        data.reverse = true;
        assert_eq!(
            pairs(&data),
            [("A".into(), "a".into()), ("B".into(), "b".into())]
        );
        let config =
            ExperimentConfig::from_toml("[data]\ncorpus = \"bible-en-fr\"\nreverse = true\n")
                .unwrap();
        assert!(config.data.reverse);
        assert!(config.to_toml().unwrap().contains("reverse = true"));
    }

    #[test]
    fn minimal_config_resolves_defaults() {
        let c = ExperimentConfig::from_toml(MINIMAL).unwrap();
        c.validate().unwrap();
        assert_eq!(c.training.batch_size, 64);
        assert_eq!(c.model.encoder.d_model, 512);
        // the resolved form round-trips
        let again = ExperimentConfig::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_key_is_named() {
        let err =
            ExperimentConfig::from_toml(&format!("{MINIMAL}[training]\nepochz = 3\n")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("epochz") && msg.contains("line 4"), "{msg}");
        let err = ExperimentConfig::from_toml(&format!("{MINIMAL}[model.encoder]\nlayers = 3\n"))
            .unwrap_err();
        assert!(err.to_string().contains("layers"), "{err}");
    }

    #[test]
    fn bad_values_are_one_sentence() {
        let mut c = ExperimentConfig::from_toml(MINIMAL).unwrap();
        c.model.encoder.n_heads = 7;
        assert!(c.validate().unwrap_err().to_string().contains("divisible"));
        let mut c = ExperimentConfig::from_toml(MINIMAL).unwrap();
        c.data.max_source_len = 4096;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_positions"));
        let mut c = ExperimentConfig::from_toml(MINIMAL).unwrap();
        c.data.tokenizer.vocab_size = 100;
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("at least 260"), "{msg}");
        c.data.tokenizer.vocab_size = 260;
        c.validate().unwrap();
        let mut c = ExperimentConfig::from_toml(MINIMAL).unwrap();
        c.data.train = Some("x.tsv".into());
        assert!(c.validate().unwrap_err().to_string().contains("exclusive"));
    }

    #[test]
    fn bert_and_encoder_schedule_keys_are_checked() {
        let bert = format!(
            "{MINIMAL}[data.tokenizer]\njoint = false\n[model]\nbert = \"minilm-l6\"\n\
             [model.adapter]\nkind = \"linear\"\n"
        );
        let c = ExperimentConfig::from_toml(&bert).unwrap();
        c.validate().unwrap();
        let msg = |c: &ExperimentConfig| c.validate().unwrap_err().to_string();
        let mut joint = c.clone();
        joint.data.tokenizer.joint = true;
        assert!(msg(&joint).contains("joint = false"), "{}", msg(&joint));
        let mut encoder = c.clone();
        encoder.model.encoder.n_layers = 2;
        assert!(msg(&encoder).contains("model.encoder does not apply"));
        // The source limit is the BERT's business (512 positions), not model.max_positions.
        let mut long = c.clone();
        long.data.max_source_len = 500;
        long.validate().unwrap();

        let mut t = c.clone();
        t.training.unfreeze_encoder_after = Some(2);
        assert!(msg(&t).contains("needs training.freeze_encoder"));
        t.training.freeze_encoder = true;
        t.training.epochs = 2;
        assert!(msg(&t).contains("between 1 and epochs - 1 (1), got 2"));
        t.training.epochs = 3;
        t.validate().unwrap();
        t.training.encoder_lr_scale = 0.0;
        assert!(msg(&t).contains("encoder_lr_scale must be greater than 0"));
        for (key, value) in [("lr_factor", f64::NAN), ("encoder_lr_scale", f64::INFINITY)] {
            let mut c = t.clone();
            c.training.encoder_lr_scale = 1.0;
            match key {
                "lr_factor" => c.training.lr_factor = value,
                _ => c.training.encoder_lr_scale = value,
            }
            assert!(
                msg(&c).contains(&format!("training.{key} must be a finite number")),
                "{}",
                msg(&c)
            );
        }
        let mut c = t.clone();
        c.training.encoder_lr_scale = 1.0;
        c.training.adam_epsilon = f32::INFINITY;
        assert!(msg(&c).contains("training.adam_epsilon must be a finite number"));
        c.training.adam_epsilon = 1e-9;
        c.training.grad_clip.norm = f32::NAN;
        assert!(msg(&c).contains("training.grad_clip.norm must be a finite number"));
    }

    #[test]
    fn every_shipped_config_parses_and_validates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut dirs = vec![root.join("configs")];
        for entry in std::fs::read_dir(root.join("experiments")).unwrap() {
            dirs.push(entry.unwrap().path());
        }
        let mut seen = Vec::new();
        for dir in dirs.into_iter().filter(|d| d.is_dir()) {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let config = ExperimentConfig::from_toml(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    config
                        .validate()
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
        for expected in [
            "quickstart.toml",
            "bert2transformer-en-fr.toml",
            "frozen.toml",
        ] {
            assert!(
                seen.iter().any(|s| s == expected),
                "{expected} not in {seen:?}"
            );
        }
    }

    #[test]
    fn the_task_fills_in_only_the_keys_left_out() {
        let translation = ExperimentConfig::from_toml(MINIMAL).unwrap();
        assert_eq!(translation.data.task, Task::Translation);
        assert_eq!(translation.training.valid_metrics, vec![Metric::Bleu]);
        let summarization = "[data]\ntask = \"summarization\"\ncorpus = \"debian-descriptions\"\n";
        let c = ExperimentConfig::from_toml(summarization).unwrap();
        c.validate().unwrap();
        assert_eq!((c.data.max_source_len, c.data.max_target_len), (512, 64));
        assert_eq!(
            c.data.length_policy,
            SidePolicies {
                source: s2s_data::LengthPolicy::Truncate,
                target: s2s_data::LengthPolicy::Filter,
            }
        );
        assert_eq!(c.training.valid_metrics, vec![Metric::Rouge]);
        let g = &c.generation;
        assert_eq!(
            (
                g.num_beams,
                g.no_repeat_ngram_size,
                g.min_new_tokens,
                g.length_penalty
            ),
            (4, 3, 1, 1.0)
        );
        // The resolved form round-trips, task and all.
        let again = ExperimentConfig::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again, c);

        // A written key wins; sampling keeps its strategy (no num_beams filled in).
        let c = ExperimentConfig::from_toml(&format!(
            "{summarization}max_source_len = 200\nlength_policy = \"filter\"\n[training]\n\
             valid_metrics = [\"rouge\", \"bleu\"]\n[generation]\ndo_sample = true\n"
        ))
        .unwrap();
        c.validate().unwrap();
        assert_eq!((c.data.max_source_len, c.data.max_target_len), (200, 64));
        assert_eq!(c.data.length_policy, SidePolicies::default());
        assert_eq!(c.training.valid_metrics, vec![Metric::Rouge, Metric::Bleu]);
        assert_eq!(c.generation.num_beams, 1);
        assert!(c.generation.do_sample);
        let c = ExperimentConfig::from_toml(&format!(
            "{summarization}[generation]\ndo_sample = false\n"
        ))
        .unwrap();
        assert_eq!(c.generation.num_beams, 4);

        // Errors still name their line, and unknown tasks and metrics are refused by name.
        let err = ExperimentConfig::from_toml("[data]\ntask = \"qa\"\n").unwrap_err();
        assert!(
            err.to_string().contains("translation") && err.to_string().contains("line 2"),
            "{err}"
        );
        let err = ExperimentConfig::from_toml(&format!(
            "{summarization}[training]\nvalid_metrics = [\"meteor\"]\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown metric \"meteor\""),
            "{err}"
        );
        let mut c = ExperimentConfig::from_toml(summarization).unwrap();
        c.training.valid_metrics = vec![Metric::Rouge, Metric::Rouge];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("rouge twice"));
        c.training.valid_metrics.clear();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("metric_pairs = 0"));
        c.training.metric_pairs = 0;
        c.validate().unwrap();
        // bleu_pairs, the key's former name, still reads.
        let c =
            ExperimentConfig::from_toml(&format!("{MINIMAL}[training]\nbleu_pairs = 7\n")).unwrap();
        assert_eq!(c.training.metric_pairs, 7);
    }

    #[test]
    fn generation_section_is_checked_with_the_rest() {
        let c = ExperimentConfig::from_toml(&format!(
            "{MINIMAL}[generation]\nnum_beams = 4\nlength_penalty = 0.6\n"
        ))
        .unwrap();
        c.validate().unwrap();
        let resolved = c.generation_config().unwrap();
        assert_eq!(resolved.max_new_tokens, c.data.max_target_len);
        assert!(matches!(
            resolved.strategy,
            s2s_generate::DecodeStrategy::Beam { num_beams: 4, .. }
        ));
        let again = ExperimentConfig::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again, c);
        let err = ExperimentConfig::from_toml(&format!("{MINIMAL}[generation]\nnum_beam = 4\n"))
            .unwrap_err();
        assert!(err.to_string().contains("num_beam"), "{err}");
        let c = ExperimentConfig::from_toml(&format!(
            "{MINIMAL}[generation]\ndo_sample = true\ntop_p = 2.0\n"
        ))
        .unwrap();
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("generation: top_p must be in (0, 1], got 2"),
            "{msg}"
        );
        let c =
            ExperimentConfig::from_toml(&format!("{MINIMAL}[generation]\nmax_new_tokens = 9999\n"))
                .unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_positions"));
    }
}
