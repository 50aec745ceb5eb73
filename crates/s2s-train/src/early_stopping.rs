//! `training.early_stopping` as a burn-train [`EarlyStoppingStrategy`], with the `min_delta`
//! that burn's `MetricEarlyStoppingStrategy` lacks, and the checkpointing rule that keeps the
//! epoch it calls best.
//!
//! Both judge from a [`StopHistory`]: the watched value of every validation epoch, recorded by
//! the training loop from the epoch's validation outputs (burn's event store would average a
//! running corpus BLEU over batches) and, for a resumed run, read back from the metric logs of
//! the epochs before it. So a resumed run judges exactly as the uninterrupted one would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::EventStoreClient;
use burn::train::EarlyStoppingStrategy;
use s2s_infer::{EarlyStopping, RunDir, Scores, StopMetric};

use crate::validation::ValidScore;

/// The validation score `metric` is (`None`: the loss).
fn valid_score(metric: StopMetric) -> Option<ValidScore> {
    match metric {
        StopMetric::ValidLoss => None,
        StopMetric::Bleu => Some(ValidScore::Bleu),
        StopMetric::Chrf => Some(ValidScore::Chrf),
        StopMetric::Rouge1 => Some(ValidScore::Rouge1),
        StopMetric::Rouge2 => Some(ValidScore::Rouge2),
        StopMetric::RougeL => Some(ValidScore::RougeL),
    }
}

/// The watched value of each validation epoch so far, shared by the loop (which records it)
/// and the rules that read it.
#[derive(Clone, Debug)]
pub struct StopHistory {
    metric: StopMetric,
    values: Arc<Mutex<BTreeMap<usize, f64>>>,
}

impl StopHistory {
    /// The values of epochs `1..=epochs_done` of `run` from its validation logs (a new run:
    /// `epochs_done = 0`, nothing read).
    pub fn from_logs(metric: StopMetric, run: &RunDir, epochs_done: usize) -> Self {
        let (name, running) = match valid_score(metric) {
            Some(score) => (score.name(), true),
            None => (crate::metrics::LOSS_NAME, false),
        };
        let values = (1..=epochs_done)
            .filter_map(|e| {
                run.epoch_value(RunDir::VALID_LOGS, e, name, running)
                    .map(|v| (e, v))
            })
            .collect();
        Self {
            metric,
            values: Arc::new(Mutex::new(values)),
        }
    }

    /// Records `epoch`'s value from its validation: the token-weighted `loss` or a score of
    /// `scores`.
    pub fn record(&self, epoch: usize, loss: f64, scores: &Scores) {
        let value = match valid_score(self.metric) {
            Some(score) => score.value(scores),
            None => loss,
        };
        if let Ok(mut values) = self.values.lock() {
            values.insert(epoch, value);
        }
    }

    fn value(&self, epoch: usize) -> Option<f64> {
        self.values.lock().ok()?.get(&epoch).copied()
    }

    /// The best epoch recorded so far under `rule`, and its value ([`best_epoch`]).
    pub fn best(&self, rule: &EarlyStopping) -> Option<(usize, f64)> {
        let last = self.values.lock().ok()?.keys().next_back().copied()?;
        best_epoch(rule, last, |e| self.value(e))
    }
}

/// Why early stopping ended a run.
#[derive(Clone, Debug, PartialEq)]
pub struct StopVerdict {
    /// The last epoch trained.
    pub epoch: usize,
    /// The best epoch (its weights become `model.mpk`) and its value.
    pub best_epoch: usize,
    pub best_value: f64,
    pub rule: EarlyStopping,
}

impl StopVerdict {
    /// One sentence for the report and the log.
    pub fn describe(&self) -> String {
        let delta = if self.rule.min_delta > 0.0 {
            format!(" by more than {}", self.rule.min_delta)
        } else {
            String::new()
        };
        format!(
            "stopped early after epoch {}: {} did not improve{delta} for {} epoch(s) after its \
             best, {:.4} at epoch {}",
            self.epoch,
            self.rule.metric,
            self.epoch - self.best_epoch,
            self.best_value,
            self.best_epoch
        )
    }
}

/// The best epoch up to `epoch` under `rule` (an epoch is best when it improves on the best
/// before it by more than `min_delta`), from the values `value(e)` of epochs `1..=epoch`
/// (epochs without a value are skipped).
pub fn best_epoch(
    rule: &EarlyStopping,
    epoch: usize,
    value: impl Fn(usize) -> Option<f64>,
) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for e in 1..=epoch {
        if let Some(v) = value(e) {
            if rule.improves(v, best.map(|(_, b)| b)) {
                best = Some((e, v));
            }
        }
    }
    best
}

/// [`EarlyStopping`] as burn-train's strategy; its verdict is shared with the caller.
#[derive(Clone, Debug)]
pub struct EarlyStopper {
    rule: EarlyStopping,
    history: StopHistory,
    verdict: Arc<Mutex<Option<StopVerdict>>>,
}

impl EarlyStopper {
    /// The strategy for `rule` over `history`, and where it leaves its verdict when it stops
    /// a run.
    pub fn new(
        rule: EarlyStopping,
        history: StopHistory,
    ) -> (Self, Arc<Mutex<Option<StopVerdict>>>) {
        let verdict = Arc::new(Mutex::new(None));
        (
            Self {
                rule,
                history,
                verdict: verdict.clone(),
            },
            verdict,
        )
    }
}

impl EarlyStoppingStrategy for EarlyStopper {
    fn should_stop(&mut self, epoch: usize, _: &EventStoreClient) -> bool {
        let Some((best_epoch, best_value)) =
            best_epoch(&self.rule, epoch, |e| self.history.value(e))
        else {
            tracing::warn!(
                "early stopping: no {} recorded by epoch {epoch}",
                self.rule.metric
            );
            return false;
        };
        if epoch - best_epoch < self.rule.patience {
            return false;
        }
        let verdict = StopVerdict {
            epoch,
            best_epoch,
            best_value,
            rule: self.rule,
        };
        tracing::info!("{}", verdict.describe());
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        true
    }
}

/// Keeps the checkpoint of the epoch [`EarlyStopper`] calls best (composed with the others,
/// a checkpoint goes only when no rule keeps it).
#[derive(Clone, Debug)]
pub struct KeepStopBest {
    rule: EarlyStopping,
    history: StopHistory,
    kept: Option<usize>,
}

impl KeepStopBest {
    /// The rule of `training.early_stopping` over `history`.
    pub fn new(rule: EarlyStopping, history: StopHistory) -> Self {
        // A resumed run's best so far is this launch's to replace (and delete) when beaten.
        let kept = history.best(&rule).map(|(epoch, _)| epoch);
        Self {
            rule,
            history,
            kept,
        }
    }
}

impl CheckpointingStrategy for KeepStopBest {
    fn checkpointing(&mut self, epoch: usize, _: &EventStoreClient) -> Vec<CheckpointingAction> {
        let best =
            best_epoch(&self.rule, epoch, |e| self.history.value(e)).map_or(epoch, |(e, _)| e);
        let mut actions = Vec::new();
        if let Some(kept) = self.kept.filter(|k| *k != best) {
            actions.push(CheckpointingAction::Delete(kept));
        }
        if best == epoch {
            actions.push(CheckpointingAction::Save);
        }
        self.kept = Some(best);
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: StopMetric, patience: usize, min_delta: f64) -> EarlyStopping {
        EarlyStopping {
            metric,
            patience,
            min_delta,
        }
    }

    #[test]
    fn the_best_epoch_needs_more_than_min_delta() {
        let bleu = [10.0, 12.0, 12.05, 11.0, 12.3];
        let value = |e: usize| bleu.get(e - 1).copied();
        let strict = rule(StopMetric::Bleu, 2, 0.0);
        assert_eq!(best_epoch(&strict, 5, value), Some((5, 12.3)));
        assert_eq!(best_epoch(&strict, 3, value), Some((3, 12.05)));
        let loose = rule(StopMetric::Bleu, 2, 0.1);
        // 12.05 is not 0.1 above 12.0; 12.3 is.
        assert_eq!(best_epoch(&loose, 4, value), Some((2, 12.0)));
        assert_eq!(best_epoch(&loose, 5, value), Some((5, 12.3)));
        let loss = [3.0, 2.5, f64::NAN, 2.6];
        let loss_value = |e: usize| loss.get(e - 1).copied();
        let by_loss = rule(StopMetric::ValidLoss, 1, 0.0);
        assert_eq!(best_epoch(&by_loss, 4, loss_value), Some((2, 2.5)));
        assert_eq!(best_epoch(&by_loss, 4, |_| None), None);
    }

    #[test]
    fn the_verdict_names_metric_epochs_and_delta() {
        let verdict = StopVerdict {
            epoch: 7,
            best_epoch: 4,
            best_value: 12.5,
            rule: rule(StopMetric::Bleu, 3, 0.1),
        };
        assert_eq!(
            verdict.describe(),
            "stopped early after epoch 7: bleu did not improve by more than 0.1 for 3 epoch(s) \
             after its best, 12.5000 at epoch 4"
        );
    }
}
