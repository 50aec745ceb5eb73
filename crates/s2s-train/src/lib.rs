//! Training for s2s: experiment preparation, burn-train's learner wired with s2s's own loop,
//! checkpoints and resume, the report; and the benchmark that steps the same optimizer.
//!
//! A run's files, its config and everything done with a trained model (loading, translating,
//! scoring) live in `s2s_infer`, which this crate builds on (docs/architecture.md).

pub mod bench;
pub mod checkpoint;
mod learner;
pub mod lock;
pub mod logger;
pub mod metrics;
pub mod optim;
pub mod prepare;
pub mod renderer;
mod report;
mod resume;
pub mod run;
pub mod step;
mod strategy;
pub mod validation;

pub use bench::{bench, reference_input, BenchOptions, BenchResult, ReferenceInput};
pub use checkpoint::CheckpointRef;
pub use learner::TrainOptions;
pub use lock::RunLock;
pub use optim::EncoderLrOptimizer;
pub use prepare::{
    build_tokenizers, load_data, load_experiment_data, prepare, resolve_encoder, seeded_subset,
    Experiment, PreparedData, Start,
};
pub use renderer::PlainRenderer;
pub use run::train;
// The experiment config and the report are a run's, read back by serving: s2s-infer owns them.
pub use s2s_infer::{ExperimentConfig, TrainReport};
pub use step::Seq2SeqLearner;
pub use validation::{BleuDecoder, BleuMetric};

use std::path::PathBuf;

/// Everything that can stop a run, each with one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid experiment config: {0}")]
    Config(String),
    #[error(transparent)]
    Infer(#[from] s2s_infer::InferError),
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
    #[error(
        "{} is in use by process {holder}, which is training into it; wait for it or stop it \
         (a lock left by a process that has died is taken over by itself)",
        run_dir.display()
    )]
    RunLocked { run_dir: PathBuf, holder: String },
    #[error(
        "cannot resume {}: the config changes {keys}, which must stay as the run started \
         (only training.epochs, keep_checkpoints, checkpoint_every_steps, samples, bleu_pairs, \
         backend, threads, the data paths and [generation] may change); nothing was written",
        run_dir.display()
    )]
    ResumeMismatch { run_dir: PathBuf, keys: String },
    #[error("{} has no intact checkpoint to resume from: {why}", run_dir.display())]
    NoIntactCheckpoint { run_dir: PathBuf, why: String },
    #[error(
        "training stopped ({reason}) in epoch {epoch} after batch {step}; a checkpoint of that \
         point is in {}/{}; continue with --resume",
        run_dir.display(),
        s2s_infer::RunDir::CHECKPOINTS
    )]
    Interrupted {
        run_dir: PathBuf,
        reason: String,
        epoch: usize,
        step: usize,
    },
    #[error(
        "training stopped: {what}; no model was written from it (checkpoints written before are \
         kept in {}/{}); train again in a new run with a lower training.lr_factor or \
         more warmup_steps, or check the data",
        run_dir.display(),
        s2s_infer::RunDir::CHECKPOINTS
    )]
    NonFinite { what: String, run_dir: PathBuf },
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
