//! Training for s2s: experiment preparation, burn-train's learner wired with s2s's own loop,
//! checkpoints and resume, the report; and the benchmark that steps the same optimizer.
//!
//! A run's files, its config and everything done with a trained model (loading, translating,
//! scoring) live in `s2s_infer`, which this crate builds on (docs/architecture.md).

pub mod average;
pub mod bench;
pub mod checkpoint;
pub mod early_stopping;
mod learner;
pub mod lock;
pub mod logger;
pub mod metrics;
pub mod optim;
pub mod parallel;
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
pub use optim::{clip_global_norm, AdamOrAdamW, EncoderLrOptimizer, Schedule};
pub use prepare::{
    build_tokenizers, load_experiment_data, prepare, seeded_subset, Experiment, PreparedData, Start,
};
pub use renderer::PlainRenderer;
pub use run::train;
// The experiment config and the report are a run's, read back by serving: s2s-infer owns them.
pub use s2s_infer::{ExperimentConfig, TrainReport};
pub use step::Seq2SeqLearner;
pub use validation::{ValidDecoder, ValidScore, ValidScoreMetric};

use std::path::PathBuf;

/// Everything that can stop a run, each with one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A config that cannot train (beyond what [`ExperimentConfig::validate`] checks).
    #[error("invalid experiment config: {0}")]
    Config(String),
    /// The run's files, config, model loading, translating or scoring.
    #[error(transparent)]
    Infer(#[from] s2s_infer::InferError),
    /// Tokenizers, corpora and pair files.
    #[error(transparent)]
    Data(#[from] s2s_data::DataError),
    /// A model config that cannot be built.
    #[error(transparent)]
    Model(#[from] s2s_model::ConfigError),
    /// A BERT config or weights that cannot be read.
    #[error(transparent)]
    Bert(#[from] s2s_model::BertError),
    /// Decoding for validation BLEU or the samples.
    #[error(transparent)]
    Generate(#[from] s2s_generate::GenerateError),
    /// A new run into a directory that already has checkpoints.
    #[error(
        "{0} already holds checkpoints; pass --resume to continue that run or remove the directory"
    )]
    RunExists(PathBuf),
    /// `--resume` on a run without checkpoints.
    #[error("{0} has no checkpoint to resume from")]
    NothingToResume(PathBuf),
    /// Another live process holds the run's lock.
    #[error(
        "{} is in use by process {holder}, which is training into it; wait for it or stop it \
         (a lock left by a process that has died is taken over by itself)",
        run_dir.display()
    )]
    RunLocked {
        /// The run directory.
        run_dir: PathBuf,
        /// The holder's process id, as written in the lock.
        holder: String,
    },
    /// A resume whose config, tokenizers or data differ from the run's where they may not.
    #[error(
        "cannot resume {}: the config changes {keys}, which must stay as the run started \
         (only training.epochs, keep_checkpoints, checkpoint_every_steps, samples, metric_pairs, \
         valid_metrics, backend, threads, the data paths and [generation] may change); nothing \
         was written",
        run_dir.display()
    )]
    ResumeMismatch {
        /// The run directory.
        run_dir: PathBuf,
        /// What changed, comma-separated.
        keys: String,
    },
    /// A resume where every checkpoint is damaged or does not fit the model.
    #[error("{} has no intact checkpoint to resume from: {why}", run_dir.display())]
    NoIntactCheckpoint {
        /// The run directory.
        run_dir: PathBuf,
        /// Why each checkpoint was passed over.
        why: String,
    },
    /// Ctrl-C, SIGTERM or the TUI's quit: a checkpoint of that point was written.
    #[error(
        "training stopped ({reason}) in epoch {epoch} after batch {step}; a checkpoint of that \
         point is in {}/{}; continue with --resume",
        run_dir.display(),
        s2s_infer::RunDir::CHECKPOINTS
    )]
    Interrupted {
        /// The run directory.
        run_dir: PathBuf,
        /// What stopped it.
        reason: String,
        /// The epoch it stopped in (1-based).
        epoch: usize,
        /// The last batch done in that epoch (global step).
        step: usize,
    },
    /// A NaN or infinite loss or weights: nothing was written from that state.
    #[error(
        "training stopped: {what}; no model was written from it (checkpoints written before are \
         kept in {}/{}); train again in a new run with a lower training.lr_factor or \
         more warmup_steps, or check the data",
        run_dir.display(),
        s2s_infer::RunDir::CHECKPOINTS
    )]
    NonFinite {
        /// Which value, of which batch.
        what: String,
        /// The run directory.
        run_dir: PathBuf,
    },
    /// The final weights cannot be written.
    #[error("cannot write the weights to {path}: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// Why, in one sentence.
        message: String,
    },
    /// A checkpoint's weights cannot be read (missing, damaged, or of another model).
    #[error("cannot read the checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint's model file.
        path: PathBuf,
        /// Why, in one sentence.
        message: String,
    },
    /// Checkpoint averaging asked for checkpoints the run does not have.
    #[error("cannot average: {0}")]
    Average(String),
    /// A learning-rate schedule burn refuses.
    #[error("{0}")]
    Schedule(String),
    /// The backend failed (a panic in the training loop, a failed synchronisation).
    #[error("the backend failed: {0}")]
    Backend(String),
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
    /// The length limits leave no training or validation pair.
    #[error("no training pairs are left after the length limits; raise data.max_source_len/max_target_len")]
    NoTrainingData,
}
