//! The training loop: burn-train's single-device loop (same events, so the TUI, the plain
//! renderer, the metric logs and the epoch checkpoints work as before), plus what a run needs
//! to be resumable and safe:
//!
//! - the batches of epoch `E` are [`EpochBatches::plan`]`(E)` and the backend's RNG is reseeded
//!   before batch `S` with [`step_seed`]`(seed, S)`, so resuming mid-epoch replays nothing and
//!   skips nothing;
//! - a step checkpoint every `training.checkpoint_every_steps` batches and when the run is
//!   stopped (Ctrl-C, SIGTERM, the TUI's quit);
//! - a non-finite loss, or non-finite weights before a checkpoint, stops the run before anything
//!   is written from that state.
//!
//! burn-train 0.21's own loop (`SingleDeviceTrainingStrategy`) has none of these; its shape is
//! kept (`burn-train/src/learner/supervised/strategies/single/epoch.rs`).

use std::sync::{Arc, Mutex};

use burn::data::dataloader::Progress;
use burn::module::AutodiffModule;
use burn::optim::GradientsAccumulator;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::{AsyncCheckpointer, FileCheckpointer};
use burn::train::metric::store::EventStoreClient;
use burn::train::{
    CloneEarlyStoppingStrategy, EventProcessorTraining, InferenceStep, Interrupter, Learner,
    LearnerEvent, LearningCheckpointer, LearningComponentsMarker, LearningResult,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader, TrainingComponents,
    TrainingItem, ValidLoader,
};
use s2s_data::EpochBatches;

use crate::checkpoint::{all_finite, step_seed, CheckpointRef, LatestOnly};
use crate::early_stopping::{StopHistory, StopVerdict};
use crate::optim::{Schedule, TrainingOptimizer};
use crate::parallel::data_parallel_step;
use crate::step::Seq2SeqLearner;
use s2s_infer::{RunDir, RunRecorder};

/// The learning components of every s2s run.
pub(crate) type Components<B> =
    LearningComponentsMarker<B, Schedule, Seq2SeqLearner<B>, TrainingOptimizer<B>>;

/// How a launch of the loop ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Every epoch of the phase ran.
    Finished,
    /// Stopped on request (`reason`) in `epoch` after `step` batches of the run; a checkpoint
    /// of that state exists.
    Stopped {
        epoch: usize,
        step: usize,
        reason: String,
    },
    /// The loss of batch `step` (epoch `epoch`) was `loss`.
    NonFiniteLoss {
        epoch: usize,
        step: usize,
        loss: f64,
    },
    /// The weights after batch `step` (epoch `epoch`) were not finite.
    NonFiniteWeights { epoch: usize, step: usize },
    /// `training.early_stopping` ended the run after an epoch (its checkpoint is written).
    EarlyStopped(StopVerdict),
}

impl Outcome {
    fn stopped(interrupter: &Interrupter, epoch: usize, step: usize) -> Self {
        Self::Stopped {
            epoch,
            step,
            reason: interrupter
                .get_message()
                .unwrap_or_else(|| "stopped".into()),
        }
    }
}

/// The s2s training loop as a burn-train strategy (see the module docs).
pub(crate) struct RunStrategy<B: AutodiffBackend> {
    pub device: B::Device,
    /// `device` and the others of `training.devices`: more than one splits every batch over
    /// them ([`crate::parallel`]).
    pub devices: Vec<B::Device>,
    pub batches: EpochBatches,
    pub seed: u64,
    /// 0: no step checkpoints except when stopped.
    pub checkpoint_every_steps: usize,
    pub grad_accumulation: usize,
    /// The checkpoint the launch starts from (`None`: epoch 1, fresh weights).
    pub resume: Option<CheckpointRef>,
    pub run_dir: std::path::PathBuf,
    pub recorder: RunRecorder,
    pub outcome: Arc<Mutex<Outcome>>,
    /// With `training.early_stopping`: where each validation epoch's watched value goes, and
    /// where the stopping rule leaves its verdict.
    pub early_stopping: Option<(StopHistory, Arc<Mutex<Option<StopVerdict>>>)>,
}

impl<B: AutodiffBackend> RunStrategy<B> {
    fn step_checkpointer(&self) -> LearningCheckpointer<Components<B>> {
        let dir = self.run_dir.join(RunDir::CHECKPOINTS);
        let part = |name: &str| {
            FileCheckpointer::new(
                self.recorder.clone(),
                &dir,
                &format!("{}{name}", crate::checkpoint::STEP_PREFIX),
            )
        };
        LearningCheckpointer::new(
            AsyncCheckpointer::new(part("model")),
            AsyncCheckpointer::new(part("optim")),
            AsyncCheckpointer::new(part("scheduler")),
            Box::new(LatestOnly::default()),
        )
    }

    /// The batches of `epoch` after the first `skip` (done before a resume): one optimizer
    /// step per `grad_accumulation` batches (and one for the epoch's last, shorter group), the
    /// backend reseeded per batch, a step checkpoint when due or stopped. Returns how the epoch ended early, if it did.
    fn train_epoch(
        &self,
        state: &mut EpochState<'_, B>,
        epoch: usize,
        skip: usize,
        global: &Progress,
    ) -> Option<Outcome> {
        let EpochState {
            learner,
            processor,
            step_checkpointer,
            store,
            interrupter,
        } = state;
        let per_epoch = self.batches.batches_per_epoch();
        let total_items = self.batches.num_items();
        let accumulation = self.grad_accumulation.max(1);
        let plan = self.batches.plan(epoch);
        let mut done: usize = plan.iter().take(skip).map(Vec::len).sum();
        let mut accumulator = GradientsAccumulator::new();
        let mut pending = 0;
        for (index, indices) in plan.iter().enumerate().skip(skip) {
            let step = (epoch - 1) * per_epoch + index + 1;
            B::seed(&self.device, step_seed(self.seed, step));
            // The schedule counts optimizer steps (fairseq's and HF's updates), not batches.
            if index % accumulation == 0 {
                learner.lr_step();
            }
            // The batches of one optimizer step: `accumulation` of them from the start of the
            // epoch (the last group may be shorter), each weighted by its share of the
            // group's target tokens, so that the step is that of one batch holding them all.
            let group_start = index - index % accumulation;
            let group_end = (group_start + accumulation).min(plan.len());
            let weight = if accumulation > 1 {
                let group: usize = plan[group_start..group_end]
                    .iter()
                    .map(|b| self.batches.label_tokens(b))
                    .sum();
                self.batches.label_tokens(indices) as f64 / group.max(1) as f64
            } else {
                1.0
            };
            let output = if self.devices.len() > 1 {
                data_parallel_step(
                    &learner.model(),
                    &self.batches,
                    indices,
                    &self.devices,
                    weight,
                )
            } else {
                let batch = self.batches.batch::<B>(indices, &self.device);
                learner.model().step_weighted(batch, weight)
            };
            let loss = output.item.loss.clone().into_scalar().elem::<f64>();
            if !loss.is_finite() {
                return Some(Outcome::NonFiniteLoss { epoch, step, loss });
            }
            if accumulation > 1 {
                accumulator.accumulate(&learner.model(), output.grads);
                pending += 1;
                if index + 1 == group_end {
                    learner.optimizer_step(accumulator.grads());
                    pending = 0;
                }
            } else {
                learner.optimizer_step(output.grads);
            }
            done += indices.len();
            processor.process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                output.item,
                Progress {
                    items_processed: done,
                    items_total: total_items,
                },
                global.clone(),
                Some(index + 1),
                Some(learner.lr_current()),
            )));
            if pending > 0 {
                continue;
            }
            let stop = interrupter.should_stop();
            let due = self.checkpoint_every_steps > 0
                && step.is_multiple_of(self.checkpoint_every_steps)
                && index + 1 < plan.len();
            if stop || due {
                // Nothing is written from non-finite weights.
                if !all_finite(&learner.model()) {
                    return Some(Outcome::NonFiniteWeights { epoch, step });
                }
                step_checkpointer.checkpoint(learner, step, store);
                if stop {
                    return Some(Outcome::stopped(interrupter, epoch, step));
                }
            }
        }
        None
    }

    /// Asks the early-stopping rule (if any) about `epoch`; when it stops the run, records
    /// its verdict as the outcome.
    fn stops_early(
        &self,
        rule: &mut Option<Box<dyn CloneEarlyStoppingStrategy>>,
        epoch: usize,
        store: &Arc<EventStoreClient>,
    ) -> bool {
        let Some(rule) = rule else {
            return false;
        };
        if !rule.should_stop(epoch, store) {
            return false;
        }
        let verdict = self
            .early_stopping
            .as_ref()
            .and_then(|(_, verdict)| verdict.lock().ok()?.clone());
        match verdict {
            Some(verdict) => {
                self.finish(Outcome::EarlyStopped(verdict));
                true
            }
            None => false,
        }
    }

    fn finish(&self, outcome: Outcome) {
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = outcome;
        }
    }
}

impl<B: AutodiffBackend> SupervisedLearningStrategy<Components<B>> for RunStrategy<B> {
    /// burn-train's `train` with the start taken from [`RunStrategy::resume`] (whose files the
    /// caller verified) instead of `TrainingComponents::checkpoint`.
    fn train(
        &self,
        mut learner: Learner<Components<B>>,
        dataloader_train: TrainLoader<Components<B>>,
        dataloader_valid: ValidLoader<Components<B>>,
        mut components: TrainingComponents<Components<B>>,
    ) -> LearningResult<Seq2SeqLearner<B::InnerBackend>> {
        let per_epoch = self.batches.batches_per_epoch();
        let start_epoch = match self.resume {
            None => 1,
            Some(checkpoint) => {
                learner = match checkpoint {
                    CheckpointRef::Epoch(epoch) => match &components.checkpointer {
                        Some(c) => c.load_checkpoint(learner, &self.device, epoch),
                        None => learner,
                    },
                    CheckpointRef::Step(step) => {
                        self.step_checkpointer()
                            .load_checkpoint(learner, &self.device, step)
                    }
                };
                checkpoint.next_position(per_epoch).0
            }
        };
        let summary = components.summary.take();
        components
            .event_processor
            .process_train(LearnerEvent::Start);
        let (model, mut processor) = self.fit(
            components,
            learner,
            dataloader_train,
            dataloader_valid,
            start_epoch,
        );
        let summary = summary.and_then(|s| s.init().ok());
        processor.process_train(LearnerEvent::End(summary));
        LearningResult {
            model: model.valid(),
            renderer: processor.renderer(),
        }
    }

    fn fit(
        &self,
        components: TrainingComponents<Components<B>>,
        mut learner: Learner<Components<B>>,
        _dataloader_train: TrainLoader<Components<B>>,
        dataloader_valid: ValidLoader<Components<B>>,
        start_epoch: usize,
    ) -> (
        Seq2SeqLearner<B>,
        SupervisedTrainingEventProcessor<Components<B>>,
    ) {
        learner.fork(&self.device);
        let mut processor = components.event_processor;
        let mut checkpointer = components.checkpointer;
        let interrupter = components.interrupter;
        let store = components.event_store;
        let mut early_stopping = components.early_stopping;
        let mut step_checkpointer = self.step_checkpointer();
        let per_epoch = self.batches.batches_per_epoch();
        let skip_first = self
            .resume
            .map(|c| c.next_position(per_epoch).1)
            .unwrap_or(0);

        // A run resumed after the epoch early stopping ended it on (stopped before its report
        // was written) ends there again, as the uninterrupted run did.
        if skip_first == 0
            && start_epoch > 1
            && self.stops_early(&mut early_stopping, start_epoch - 1, &store)
        {
            return (learner.model(), processor);
        }
        for epoch in start_epoch..=components.num_epochs {
            let global = Progress {
                items_processed: epoch,
                items_total: components.num_epochs,
            };
            let skip = if epoch == start_epoch { skip_first } else { 0 };
            let mut state = EpochState {
                learner: &mut learner,
                processor: &mut processor,
                step_checkpointer: &mut step_checkpointer,
                store: &store,
                interrupter: &interrupter,
            };
            if let Some(outcome) = self.train_epoch(&mut state, epoch, skip, &global) {
                self.finish(outcome);
                return (learner.model(), processor);
            }
            processor.process_train(LearnerEvent::EndEpoch(epoch));

            let history = self.early_stopping.as_ref().map(|(history, _)| history);
            validate_epoch(
                &learner,
                &dataloader_valid,
                &mut processor,
                &global,
                epoch,
                history,
            );

            let step = epoch * per_epoch;
            if !all_finite(&learner.model()) {
                self.finish(Outcome::NonFiniteWeights { epoch, step });
                return (learner.model(), processor);
            }
            if let Some(checkpointer) = &mut checkpointer {
                checkpointer.checkpoint(&learner, epoch, &store);
            }
            // At the last epoch the run ends anyway: no "stopped early" to report.
            if epoch < components.num_epochs && self.stops_early(&mut early_stopping, epoch, &store)
            {
                return (learner.model(), processor);
            }
            if interrupter.should_stop() && epoch < components.num_epochs {
                // Stopped during the validation: the epoch and its checkpoint are complete.
                self.finish(Outcome::stopped(&interrupter, epoch, step));
                return (learner.model(), processor);
            }
        }
        self.finish(Outcome::Finished);
        (learner.model(), processor)
    }
}

/// What one epoch's batches update.
struct EpochState<'a, B: AutodiffBackend> {
    learner: &'a mut Learner<Components<B>>,
    processor: &'a mut SupervisedTrainingEventProcessor<Components<B>>,
    step_checkpointer: &'a mut LearningCheckpointer<Components<B>>,
    store: &'a Arc<EventStoreClient>,
    interrupter: &'a Interrupter,
}

/// Validation, as burn-train's `SingleDeviceValidEpoch`, but always to its end: a stop request
/// waits for it, so the epoch's logged validation is never partial. With `history`, the
/// epoch's token-weighted loss and metric scores are recorded in it.
fn validate_epoch<B: AutodiffBackend>(
    learner: &Learner<Components<B>>,
    dataloader_valid: &ValidLoader<Components<B>>,
    processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
    global: &Progress,
    epoch: usize,
    history: Option<&StopHistory>,
) {
    let model = learner.model().valid();
    let mut iterator = dataloader_valid.iter();
    let mut iteration = 0;
    let (mut loss_sum, mut tokens) = (0.0, 0.0);
    let mut scores = s2s_infer::Scores::default();
    while let Some(item) = iterator.next() {
        let progress = iterator.progress();
        iteration += 1;
        let item = model.step(item);
        if history.is_some() {
            let (loss, count) =
                crate::metrics::loss_and_tokens(&item.sequence.loss, &item.sequence.targets);
            loss_sum += loss * count;
            tokens += count;
            if let Some(batch) = &item.scores {
                scores.merge(batch);
            }
        }
        processor.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
            item,
            progress,
            global.clone(),
            Some(iteration),
            None,
        )));
    }
    if let Some(history) = history {
        history.record(epoch, loss_sum / tokens.max(1.0), &scores);
    }
    processor.process_valid(LearnerEvent::EndEpoch(epoch));
}
