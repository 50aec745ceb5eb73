//! burn-train's learner, wired for s2s: s2s's own loop ([`RunStrategy`]), the metrics, the
//! checkpointer, the renderer, and the optimizer with its schedule.

use std::sync::{Arc, Mutex};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{LearningRateMetric, PerplexityMetric};
use burn::train::{Interrupter, Learner, SupervisedTraining, TrainingStrategy};
use s2s_data::{EpochBatches, EpochLoader};
use s2s_infer::{ExperimentConfig, RunDir, RunRecorder};
use s2s_model::{special, Seq2Seq};

use crate::checkpoint::CheckpointRef;
use crate::logger::ResumedFileLogger;
use crate::metrics::{TokenAccuracyMetric, TokenLossMetric, TokensPerBatchMetric};
use crate::optim::optimizer_and_schedule;
use crate::strategy::{Outcome, RunStrategy};
use crate::validation::{ValidBatcher, ValidDecoder, ValidItem, ValidScore, ValidScoreMetric};
use crate::{PlainRenderer, Seq2SeqLearner, TrainError};

/// How a run is launched.
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest intact checkpoint in the run directory.
    pub resume: bool,
    /// Use burn's TUI dashboard (only when stdout is a terminal); plain log lines otherwise.
    pub tui: bool,
    /// Stops the run after the current batch, with a checkpoint ([`TrainError::Interrupted`]);
    /// the CLI triggers it on Ctrl-C/SIGTERM, the TUI on its quit.
    pub interrupter: Interrupter,
}

impl std::fmt::Debug for TrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("resume", &self.resume)
            .field("tui", &self.tui)
            .field("stopped", &self.interrupter.should_stop())
            .finish()
    }
}

/// Epochs `start + 1 ..= end` of one launch of burn-train's learner.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Phase {
    pub start: usize,
    pub end: usize,
    /// The checkpoint it continues from (already verified); `None` starts from the model given.
    pub resume: Option<CheckpointRef>,
}

/// What every phase of a run trains and validates on.
#[derive(Clone, Debug)]
pub(crate) struct PhaseData {
    /// The batches of each epoch (a pure function of the seed and the epoch).
    pub batches: EpochBatches,
    pub valid: Vec<ValidItem>,
    /// How the validation step decodes its metric pairs (`None` with `metric_pairs = 0`).
    pub decoder: Option<ValidDecoder>,
}

/// Runs the training loop ([`RunStrategy`]) over one phase, from its checkpoint or from
/// `model`'s weights. Returns the trained model and how the phase ended.
///
/// # Errors
/// [`TrainError::Schedule`] for a schedule burn refuses; [`TrainError::Backend`] when the loop
/// panicked.
pub(crate) fn launch<B: AutodiffBackend>(
    config: &ExperimentConfig,
    run: &RunDir,
    model: Seq2Seq<B>,
    phase: Phase,
    data: &PhaseData,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<(Seq2Seq<B::InnerBackend>, Outcome), TrainError> {
    let t = &config.training;
    // The schedule counts batches, over every epoch of the run.
    let total_steps = t.epochs * data.batches.batches_per_epoch();
    let (optimizer, scheduler) = optimizer_and_schedule::<B>(config, total_steps)?;
    let recorder = RunRecorder::default();

    // Only its size is read by burn-train; the loop draws the batches from `batches` itself.
    let train_loader = Arc::new(EpochLoader::<B>::new(
        data.batches.clone(),
        1,
        device.clone(),
    ));
    let outcome = Arc::new(Mutex::new(Outcome::Finished));
    let strategy = RunStrategy::<B> {
        device: device.clone(),
        batches: data.batches.clone(),
        seed: t.seed,
        checkpoint_every_steps: t.checkpoint_every_steps,
        grad_accumulation: t.grad_accumulation,
        resume: phase.resume,
        run_dir: run.path().to_path_buf(),
        recorder: recorder.clone(),
        outcome: outcome.clone(),
    };
    let valid_loader = DataLoaderBuilder::new(ValidBatcher)
        .batch_size(t.batch_size)
        .set_device(device.clone())
        .build(InMemDataset::new(data.valid.clone()));

    // No `.summary()`: burn-train's summary is a dump of every module; the run's own report
    // (report.md, and the CLI's closing lines) says what was trained and how well.
    let mut training = SupervisedTraining::new(run.path(), train_loader, valid_loader)
        .with_metric_logger(ResumedFileLogger::new(run.path(), phase.start))
        // Loss and accuracy weighted by target tokens, so that the epoch values shown and
        // logged are the report's exact ones (crate::metrics).
        .metrics((
            TokenLossMetric::new(),
            TokenAccuracyMetric::new(),
            PerplexityMetric::new().with_pad_token(special::PAD as usize),
        ))
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(TokensPerBatchMetric::new())
        .with_file_checkpointer(recorder)
        .with_checkpointing_strategy(checkpointing::<B>(t.keep_checkpoints))
        .with_application_logger(None)
        .with_interrupter(options.interrupter.clone())
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)))
        .num_epochs(phase.end);
    if data.decoder.is_some() {
        for score in ValidScore::for_metrics(&t.valid_metrics) {
            training = training.metric_valid_numeric(ValidScoreMetric::new(score));
        }
    }
    if !options.tui {
        training = training.renderer(PlainRenderer::new(std::time::Duration::from_secs(10)));
    }
    let learner = Learner::new(
        Seq2SeqLearner {
            model,
            decoder: data.decoder.clone(),
        },
        optimizer,
        scheduler,
    );
    let result = training.launch(learner);
    let outcome = outcome
        .lock()
        .map(|o| o.clone())
        .map_err(|_| TrainError::Backend("the training loop panicked".into()))?;
    Ok((result.model.model, outcome))
}

/// Which epoch checkpoints are kept: the last `keep`, and the one with the lowest validation
/// loss.
fn checkpointing<B: AutodiffBackend>(keep: usize) -> ComposedCheckpointingStrategy {
    ComposedCheckpointingStrategy::builder()
        .add(KeepLastNCheckpoints::new(keep))
        .add(MetricCheckpointingStrategy::new(
            &TokenLossMetric::<B>::new(),
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
        ))
        .build()
}
