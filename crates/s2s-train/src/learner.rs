//! burn-train's learner, wired for s2s: s2s's own loop ([`RunStrategy`]), the metrics, the
//! checkpointer, the renderer, and the optimizer with its schedule.

use std::sync::{Arc, Mutex};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::prelude::Backend;
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
use crate::early_stopping::{EarlyStopper, KeepStopBest, StopHistory};
use crate::logger::ResumedFileLogger;
use crate::metrics::{
    ElapsedMetric, TokenAccuracyMetric, TokenLossMetric, TokensPerBatchMetric, ELAPSED_METRIC,
};
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
/// `model`'s weights. Returns the trained model, how the phase ended and, with early stopping,
/// the best epoch so far.
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
) -> Result<PhaseEnd<B::InnerBackend>, TrainError> {
    let t = &config.training;
    // The schedule counts optimizer steps, over every epoch of the run.
    let total_steps = t.epochs
        * data
            .batches
            .batches_per_epoch()
            .div_ceil(t.grad_accumulation.max(1));
    let (optimizer, scheduler) = optimizer_and_schedule::<B>(config, total_steps)?;
    let recorder = RunRecorder::default();

    // Only its size is read by burn-train; the loop draws the batches from `batches` itself.
    let train_loader = Arc::new(EpochLoader::<B>::new(
        data.batches.clone(),
        1,
        device.clone(),
    ));
    let outcome = Arc::new(Mutex::new(Outcome::Finished));
    // Early stopping judges from the validation values of every epoch, those before this
    // launch read back from the logs.
    let early = t.early_stopping.map(|rule| {
        let history = StopHistory::from_logs(rule.metric, run, phase.start);
        let (stopper, verdict) = EarlyStopper::new(rule, history.clone());
        (rule, history, stopper, verdict)
    });
    let strategy = RunStrategy::<B> {
        device: device.clone(),
        devices: crate::parallel::devices_of::<B>(device, &t.devices)
            .map_err(TrainError::Config)?,
        batches: data.batches.clone(),
        seed: t.seed,
        checkpoint_every_steps: t.checkpoint_every_steps,
        grad_accumulation: t.grad_accumulation,
        resume: phase.resume,
        run_dir: run.path().to_path_buf(),
        recorder: recorder.clone(),
        outcome: outcome.clone(),
        early_stopping: early
            .as_ref()
            .map(|(_, history, _, verdict)| (history.clone(), verdict.clone())),
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
        .metric_train_numeric(ElapsedMetric::new(elapsed_before(run, phase.start)))
        .with_file_checkpointer(recorder)
        .with_checkpointing_strategy(checkpointing::<B>(
            t.keep_checkpoints,
            early
                .as_ref()
                .map(|(rule, history, _, _)| KeepStopBest::new(*rule, history.clone())),
        ))
        .with_application_logger(None)
        .with_interrupter(options.interrupter.clone())
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)))
        .num_epochs(phase.end);
    if let Some((_, _, stopper, _)) = &early {
        training = training.early_stopping(stopper.clone());
    }
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
    let best = early.and_then(|(rule, history, _, _)| history.best(&rule));
    Ok(PhaseEnd {
        model: result.model.model,
        outcome,
        best,
    })
}

/// The training wall time the run's earlier launches logged: the last `Elapsed` value of epoch
/// `start` (0 for a fresh run, or a run whose logs predate the metric).
fn elapsed_before(run: &RunDir, start: usize) -> f64 {
    if start == 0 {
        return 0.0;
    }
    run.epoch_value(RunDir::TRAIN_LOGS, start, ELAPSED_METRIC, true)
        .unwrap_or(0.0)
}

/// How one launch of the loop ended.
pub(crate) struct PhaseEnd<B: Backend> {
    /// The weights after the last batch trained.
    pub model: Seq2Seq<B>,
    pub outcome: Outcome,
    /// With early stopping: the best epoch so far and its value.
    pub best: Option<(usize, f64)>,
}

/// Which epoch checkpoints are kept: the last `keep`, the one with the lowest validation loss,
/// and with early stopping the one it calls best.
fn checkpointing<B: AutodiffBackend>(
    keep: usize,
    stop_best: Option<KeepStopBest>,
) -> ComposedCheckpointingStrategy {
    let mut builder = ComposedCheckpointingStrategy::builder()
        .add(KeepLastNCheckpoints::new(keep))
        .add(MetricCheckpointingStrategy::new(
            &TokenLossMetric::<B>::new(),
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
        ));
    if let Some(stop_best) = stop_best {
        builder = builder.add(stop_best);
    }
    builder.build()
}
