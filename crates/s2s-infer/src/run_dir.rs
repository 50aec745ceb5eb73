//! The run directory: every file name `s2s train` writes, in one place, and typed access to
//! what a finished run holds.
//!
//! ```text
//! runs/<name>/
//!   config.toml            the resolved experiment config (training.backend: the backend used)
//!   data.sha256            SHA-256 of the training and validation pairs (resume checks it)
//!   tokenizer*.json        the tokenizer(s) (s2s_data::TokenizerPair's layout)
//!   bert-config.json       the pre-trained BERT's config.json, for a BERT encoder
//!   tokenizer.sha256       SHA-256 of the tokenizer files and bert-config.json
//!   checkpoint/            burn-train checkpoints (epoch and step), each with a .sha256
//!   train/ valid/          burn-train's per-epoch metric logs
//!   model.mpk (+ .sha256)  the final weights
//!   report.md report.json  the final report
//!   experiment.log         the log of every process that trained the run
//!   .lock                  held while a process trains into the run
//! ```

use std::path::{Path, PathBuf};

use burn::prelude::*;
use s2s_data::TokenizerPair;
use s2s_model::{BertConfig, Seq2Seq};

use crate::{init_model, io_error, ExperimentConfig, InferError, TrainReport};

/// A run directory (it need not exist yet: training creates it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The resolved experiment config.
    pub const CONFIG: &'static str = "config.toml";
    /// SHA-256 of the training and validation pairs the run started from.
    pub const DATA_FINGERPRINT: &'static str = "data.sha256";
    /// SHA-256 of each tokenizer file and of the BERT's config.
    pub const TOKENIZER_FINGERPRINT: &'static str = "tokenizer.sha256";
    /// The pre-trained BERT's `config.json`, copied in when the run starts.
    pub const BERT_CONFIG: &'static str = "bert-config.json";
    /// The final weights, without the recorder's extension (`model.mpk` on disk).
    pub const MODEL: &'static str = "model";
    /// The final weights' file name on disk.
    pub const MODEL_FILE: &'static str = "model.mpk";
    /// The checkpoints (burn-train's file checkpointer and s2s's step checkpoints).
    pub const CHECKPOINTS: &'static str = "checkpoint";
    /// The final report for people.
    pub const REPORT_MARKDOWN: &'static str = "report.md";
    /// The final report for programs ([`Self::report`]).
    pub const REPORT_JSON: &'static str = "report.json";
    /// The log of every process that trained into the run.
    pub const LOG: &'static str = "experiment.log";
    /// Held (flock) while a process trains into the run.
    pub const LOCK: &'static str = ".lock";

    /// burn-train's metric logs of the training split ([`Self::metric_log`]).
    pub const TRAIN_LOGS: &'static str = "train";
    /// burn-train's metric logs of the validation split.
    pub const VALID_LOGS: &'static str = "valid";

    /// The run directory at `path`, whether or not it exists.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// An existing run directory.
    ///
    /// # Errors
    /// [`InferError::NotARun`] when `path` is not a directory.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, InferError> {
        let run = Self::new(path);
        if run.path.is_dir() {
            Ok(run)
        } else {
            Err(InferError::NotARun { path: run.path })
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` inside the run directory (one of the constants above).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Its `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.file(Self::CONFIG)
    }

    /// Its final weights, `model.mpk`.
    pub fn model_path(&self) -> PathBuf {
        self.file(Self::MODEL_FILE)
    }

    /// The epochs with metric logs under `split` ([`Self::TRAIN_LOGS`] or
    /// [`Self::VALID_LOGS`]: `<split>/epoch-N/`), in order.
    pub fn logged_epochs(&self, split: &str) -> Vec<usize> {
        let Ok(entries) = std::fs::read_dir(self.file(split)) else {
            return Vec::new();
        };
        let mut epochs: Vec<usize> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("epoch-")?.parse().ok()
            })
            .collect();
        epochs.sort_unstable();
        epochs
    }

    /// The log burn-train writes for `metric` (e.g. `Loss`) in `epoch` of `split`: one
    /// `value,count` line per batch.
    pub fn metric_log(&self, split: &str, epoch: usize, metric: &str) -> PathBuf {
        self.path
            .join(split)
            .join(format!("epoch-{epoch}"))
            .join(format!("{metric}.log"))
    }

    /// The value of `metric` in `epoch` of `split` from its log: the count-weighted mean of
    /// the lines for a per-batch metric (`Loss`: each batch's loss and its target tokens, so
    /// the mean is the epoch's exact loss), or the last line for a running one (`BLEU`,
    /// `ROUGE-L`, `Perplexity`: each line is the epoch's value so far). `None` when the log is
    /// missing, unreadable or empty.
    pub fn epoch_value(
        &self,
        split: &str,
        epoch: usize,
        metric: &str,
        running: bool,
    ) -> Option<f64> {
        let rows = read_metric_log(&self.metric_log(split, epoch, metric)).ok()?;
        if running {
            return rows.last().map(|(v, _)| *v);
        }
        weighted_mean(&rows)
    }

    /// The files a resume checks are unchanged: the tokenizer file(s) the run holds
    /// (s2s_data::TokenizerPair's layout) and the BERT's config, sorted.
    pub fn tokenizer_files(&self) -> Vec<&'static str> {
        use s2s_data::tokenizer::{BERT_SOURCE_FILE, JOINT_FILE, SOURCE_FILE, TARGET_FILE};
        let mut names: Vec<&'static str> = [
            Self::BERT_CONFIG,
            BERT_SOURCE_FILE,
            JOINT_FILE,
            SOURCE_FILE,
            TARGET_FILE,
        ]
        .into_iter()
        .filter(|name| self.file(name).is_file())
        .collect();
        names.sort_unstable();
        names
    }

    /// The config the run was trained with, checked as `s2s train` checks it.
    ///
    /// # Errors
    /// [`InferError::Data`] if it cannot be read; [`InferError::Config`] if it does not parse
    /// or validate (the caller names the file: [`Self::config_path`]).
    pub fn config(&self) -> Result<ExperimentConfig, InferError> {
        let config = ExperimentConfig::from_toml(&s2s_data::read_text(&self.config_path())?)?;
        config.validate()?;
        Ok(config)
    }

    /// The run's tokenizer(s).
    ///
    /// # Errors
    /// [`InferError::Data`] when they are missing or cannot be read.
    pub fn tokenizers(&self) -> Result<TokenizerPair, InferError> {
        Ok(TokenizerPair::load(&self.path)?)
    }

    /// The BERT config copied in when the run started (`None` without `model.bert`).
    ///
    /// # Errors
    /// [`InferError::Bert`] when the config names a BERT but the file is missing or invalid.
    pub fn bert_config(&self, config: &ExperimentConfig) -> Result<Option<BertConfig>, InferError> {
        match config.model.bert {
            Some(_) => Ok(Some(BertConfig::load_file(&self.file(Self::BERT_CONFIG))?)),
            None => Ok(None),
        }
    }

    /// The final report, or `None` when the run has not finished (no `report.json`).
    ///
    /// # Errors
    /// [`InferError::Config`] naming the file when it exists but is not a report.
    pub fn report(&self) -> Result<Option<TrainReport>, InferError> {
        let path = self.file(Self::REPORT_JSON);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| InferError::Config(format!("{} is not a run report: {e}", path.display())))
    }

    /// Loads the tokenizer(s) and the final weights (`model.mpk`) on `device`: any backend,
    /// autodiff or not (serving needs no gradients).
    ///
    /// # Errors
    /// [`InferError::NoModel`] before training has finished; [`InferError::Weights`] when the
    /// file is damaged or does not fit the model `config` describes.
    pub fn load_model<B: Backend>(
        &self,
        config: &ExperimentConfig,
        device: &B::Device,
    ) -> Result<(TokenizerPair, Seq2Seq<B>), InferError> {
        let weights = self.model_path();
        if !weights.is_file() {
            return Err(InferError::NoModel {
                path: self.path.clone(),
            });
        }
        let tokenizers = self.tokenizers()?;
        let bert = self.bert_config(config)?;
        let model = init_model::<B>(
            &config.model,
            bert.as_ref(),
            tokenizers.vocab_sizes(),
            device,
        )?;
        let model = crate::without_panic(|| {
            crate::model::load_model_file(model, self.file(Self::MODEL), device)
        })
        .map_err(|why| InferError::Weights {
            path: weights.clone(),
            message: format!(
                "it does not fit the model of the run's config.toml ({why}); was config.toml or \
                 model.mpk changed?"
            ),
        })?
        .map_err(|e| InferError::Weights {
            path: weights,
            message: e.to_string(),
        })?;
        Ok((tokenizers, model))
    }
}

/// The `(value, count)` rows of a metric log ([`RunDir::metric_log`]).
///
/// # Errors
/// One sentence naming the file, or its first line that is not `value,count`.
pub fn read_metric_log(path: &Path) -> Result<Vec<(f64, f64)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let mut parts = line.trim().split(',');
            let value = parts.next().and_then(|v| v.parse().ok());
            let count = parts.next().and_then(|c| c.parse().ok());
            match (value, count) {
                (Some(v), Some(c)) => Ok((v, c)),
                _ => Err(format!(
                    "line {} of {} is not `value,count`",
                    n + 1,
                    path.display()
                )),
            }
        })
        .collect()
}

/// The count-weighted mean of `(value, count)` rows; `None` when the counts sum to 0.
pub fn weighted_mean(rows: &[(f64, f64)]) -> Option<f64> {
    let total: f64 = rows.iter().map(|(_, c)| c).sum();
    (total > 0.0).then(|| rows.iter().map(|(v, c)| v * c).sum::<f64>() / total)
}
