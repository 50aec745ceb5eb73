//! burn-train's file metric logger, with the epoch numbers of a resumed run put right.
//!
//! burn-train 0.21's event store starts counting every split's epochs at 1 and only corrects
//! itself after the first epoch ends, so a run resumed from the checkpoint of epoch `s` logs
//! epoch `s + 1` into `epoch-1/` (overwriting epoch 1's metrics) and the best-epoch search of
//! the checkpointing strategy reads the wrong files. This wrapper writes each split's first
//! epoch of the launch as `s + 1` and passes everything else through.

use std::collections::HashSet;
use std::path::Path;

use burn::train::logger::{FileMetricLogger, MetricLogger};
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, NumericEntry};

/// [`FileMetricLogger`] for a learner launched from the checkpoint of `start_epoch` (0 for a
/// new run).
pub struct ResumedFileLogger {
    inner: FileMetricLogger,
    start_epoch: usize,
    /// Splits whose first epoch of this launch has ended (burn numbers them right from then on).
    ended: HashSet<Split>,
}

impl std::fmt::Debug for ResumedFileLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumedFileLogger")
            .field("start_epoch", &self.start_epoch)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ResumedFileLogger {
    /// Logs into `directory`, the first epoch of this launch being `start_epoch + 1`.
    pub fn new(directory: &Path, start_epoch: usize) -> Self {
        Self {
            inner: FileMetricLogger::new(directory),
            start_epoch,
            ended: HashSet::new(),
        }
    }

    /// The epoch an update of `split` belongs to, given the one burn-train reports.
    fn epoch(&self, reported: usize, split: &Split) -> usize {
        if self.ended.contains(split) {
            reported
        } else {
            self.start_epoch + 1
        }
    }
}

impl MetricLogger for ResumedFileLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        let epoch = self.epoch(epoch, split);
        self.inner.log(update, epoch, split);
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        self.inner.read_numeric(name, epoch, split)
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.inner.log_metric_definition(definition);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        self.ended.insert(summary.split.clone());
        self.inner.log_epoch_summary(summary);
    }
}
