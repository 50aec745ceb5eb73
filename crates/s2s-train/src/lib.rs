//! Experiment configs, run directories and burn-train wiring for s2s.
//!
//! The CLI reads the TOML into an [`ExperimentConfig`]; everything here takes typed values.

pub mod bench;
pub mod checkpoint;
pub mod experiment;
pub mod lock;
pub mod logger;
pub mod optim;
pub mod recorder;
pub mod renderer;
pub mod run;
pub mod step;
mod strategy;
pub mod translate;
pub mod validation;

pub use bench::{bench, reference_input, BenchOptions, BenchResult, ReferenceInput};
pub use checkpoint::CheckpointRef;
pub use experiment::{
    resolve_generation, DataConfig, ExperimentConfig, TokenizerConfig, TrainingConfig,
};
pub use lock::RunLock;
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
         point is in {}/checkpoint; continue with --resume",
        run_dir.display()
    )]
    Interrupted {
        run_dir: PathBuf,
        reason: String,
        epoch: usize,
        step: usize,
    },
    #[error(
        "training stopped: {what}; no model was written from it (checkpoints written before are \
         kept in {}/checkpoint); train again in a new run with a lower training.lr_factor or \
         more warmup_steps, or check the data",
        run_dir.display()
    )]
    NonFinite { what: String, run_dir: PathBuf },
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
