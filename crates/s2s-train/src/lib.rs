//! Experiment configs, run directories and burn-train wiring for s2s.
//!
//! The CLI reads the TOML into an [`ExperimentConfig`]; everything here takes typed values.

pub mod bench;
pub mod experiment;
pub mod logger;
pub mod optim;
pub mod recorder;
pub mod renderer;
pub mod run;
pub mod step;
pub mod translate;
pub mod validation;

pub use bench::{bench, reference_input, BenchOptions, BenchResult, ReferenceInput};
pub use experiment::{
    resolve_generation, DataConfig, ExperimentConfig, TokenizerConfig, TrainingConfig,
};
pub use optim::EncoderLrOptimizer;
pub use recorder::AtomicRecorder;
pub use renderer::PlainRenderer;
pub use run::{
    build_tokenizers, init_model, load_data, load_experiment_data, load_model, resolve_encoder,
    train, PreparedData, Sample, TrainOptions, TrainReport,
};
pub use step::Seq2SeqLearner;
pub use translate::{best_texts, source_ids, translate, Translation};
pub use validation::{BleuDecoder, BleuMetric};

use std::path::PathBuf;

/// Everything that can stop a run, each with one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid experiment config: {0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] s2s_data::DataError),
    #[error(transparent)]
    Model(#[from] s2s_model::ConfigError),
    #[error(transparent)]
    Bert(#[from] s2s_model::BertError),
    #[error(transparent)]
    Generate(#[from] s2s_generate::GenerateError),
    #[error(
        "{0} already holds checkpoints; pass --resume to continue that run or remove the directory"
    )]
    RunExists(PathBuf),
    #[error("{0} has no checkpoint to resume from")]
    NothingToResume(PathBuf),
    #[error("{path} has no trained model (model.mpk); train it first with `s2s train`")]
    NoModel { path: PathBuf },
    #[error("cannot load the weights in {path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("{0}")]
    Schedule(String),
    #[error("the backend failed: {0}")]
    Backend(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no training pairs are left after the length limits; raise data.max_source_len/max_target_len")]
    NoTrainingData,
}
