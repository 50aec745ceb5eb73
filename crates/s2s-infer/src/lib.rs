//! A trained s2s run and what is done with it: the run directory's layout ([`RunDir`]), the
//! experiment config it was trained from ([`ExperimentConfig`]), loading its model on any
//! (non-autodiff) backend, translating with it ([`translate()`]) and scoring translations
//! ([`Scores`]). `s2s generate`, `s2s eval`, `s2s bench decode`, the validation BLEU during
//! training and the final report all go through these functions; the training crate builds on
//! this one, never the other way round (docs/architecture.md).

#![warn(missing_docs)]

pub mod attention;
pub mod backend;
pub mod config;
pub mod model;
pub mod recipe;
pub mod recorder;
pub mod report;
pub mod run_dir;
pub mod score;
pub mod translate;

pub use attention::{attention_map, attention_maps, AttentionMap};
pub use backend::BackendKind;
pub use config::{
    resolve_generation, DataConfig, ExperimentConfig, Task, TokenizerConfig, TrainingConfig,
};
pub use model::{init_model, load_model_file, save_model, RunRecorder};
pub use recipe::{ClipKind, EarlyStopping, GradClip, LrSchedule, OptimizerKind, StopMetric};
pub use recorder::{without_panic, AtomicRecorder};
pub use report::{MachineInfo, Sample, TrainReport};
pub use run_dir::RunDir;
pub use score::{describe, Scores};
pub use translate::{
    best_texts, detokenize, source_ids, translate, translate_ids, translate_ids_keyed,
    translate_with_progress, Translation,
};

use std::path::PathBuf;

/// Everything that can go wrong reading, loading or using a run, each with one sentence for
/// the user.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A config that does not parse or validate, or does not fit the run's files.
    #[error("invalid experiment config: {0}")]
    Config(String),
    /// Tokenizers, corpora and pair files.
    #[error(transparent)]
    Data(#[from] s2s_data::DataError),
    /// A model config that cannot be built.
    #[error(transparent)]
    Model(#[from] s2s_model::ConfigError),
    /// A BERT config or weights that cannot be read.
    #[error(transparent)]
    Bert(#[from] s2s_model::BertError),
    /// Decoding (invalid settings, non-finite scores, too long an output).
    #[error(transparent)]
    Generate(#[from] s2s_generate::GenerateError),
    /// Scoring (hypotheses and references of different lengths).
    #[error(transparent)]
    Eval(#[from] s2s_eval::EvalError),
    /// `path` is not a directory.
    #[error("{} is not a run directory (train one with `s2s train <config>`)", path.display())]
    NotARun {
        /// The path given as a run.
        path: PathBuf,
    },
    /// A run that has not finished training (no `model.mpk`).
    #[error(
        "{path} has no trained model ({}); train it first with `s2s train`",
        RunDir::MODEL_FILE
    )]
    NoModel {
        /// The run directory.
        path: PathBuf,
    },
    /// Weights that are damaged or do not fit the model the config describes.
    #[error("cannot load the weights in {path}: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// Why, in one sentence.
        message: String,
    },
    /// A file that cannot be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// `map_err` helper: an I/O error on `path` while doing `action` ("read", "write", …).
pub fn io_error<'a>(
    action: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> InferError + 'a {
    move |source| InferError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
