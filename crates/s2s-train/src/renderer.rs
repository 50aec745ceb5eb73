//! Progress as plain log lines, for when stdout is not a terminal (CI, `nohup`, pipes). The TUI
//! dashboard is used otherwise.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use burn::train::metric::{MetricDefinition, MetricEntry, MetricId};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::LearnerSummary;

/// Logs one line per `interval` during an epoch and one at the end of each split's epoch,
/// through `tracing` (never stdout, which belongs to the CLI).
pub struct PlainRenderer {
    interval: Duration,
    last: Option<Instant>,
    names: HashMap<MetricId, String>,
    train: BTreeMap<String, String>,
    valid: BTreeMap<String, String>,
    last_train: Option<(usize, usize)>,
    last_valid: Option<(usize, usize)>,
}

impl std::fmt::Debug for PlainRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainRenderer")
            .field("interval", &self.interval)
            .finish()
    }
}

impl PlainRenderer {
    /// A renderer that writes a progress line at most every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            names: HashMap::new(),
            train: BTreeMap::new(),
            valid: BTreeMap::new(),
            last_train: None,
            last_valid: None,
        }
    }

    fn record(&mut self, valid: bool, entry: &MetricEntry) {
        let name = self
            .names
            .get(&entry.metric_id)
            .cloned()
            .unwrap_or_else(|| format!("{:?}", entry.metric_id));
        let map = if valid {
            &mut self.valid
        } else {
            &mut self.train
        };
        map.insert(name, entry.serialized_entry.formatted.clone());
    }

    fn line(
        split: &str,
        (epoch, epochs): (usize, usize),
        items: &str,
        metrics: &BTreeMap<String, String>,
    ) -> String {
        let metrics: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "epoch {epoch}/{epochs} {split} {items} | {}",
            metrics.join(" | ")
        )
    }

    fn due(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

fn position(item: &TrainingProgress) -> ((usize, usize), String) {
    let (done, total) = item
        .progress
        .as_ref()
        .map(|p| (p.items_processed, p.items_total))
        .unwrap_or((0, 0));
    let items = format!("{done}/{total} pairs");
    (
        (
            item.global_progress.items_processed,
            item.global_progress.items_total,
        ),
        items,
    )
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        match state {
            MetricState::Generic(e) | MetricState::Numeric(e, _) => self.record(false, &e),
        }
    }

    fn update_valid(&mut self, state: MetricState) {
        match state {
            MetricState::Generic(e) | MetricState::Numeric(e, _) => self.record(true, &e),
        }
    }

    fn render_train(&mut self, item: TrainingProgress, _indicators: Vec<ProgressType>) {
        let (pos, items) = position(&item);
        // A new epoch started: log the end of the previous one's validation first.
        if let Some(prev) = self.last_valid.take() {
            tracing::info!("{}", Self::line("valid", prev, "done", &self.valid));
        }
        self.last_train = Some(pos);
        if self.due() {
            tracing::info!("{}", Self::line("train", pos, &items, &self.train));
        }
    }

    fn render_valid(&mut self, item: TrainingProgress, _indicators: Vec<ProgressType>) {
        if let Some(prev) = self.last_train.take() {
            tracing::info!("{}", Self::line("train", prev, "done", &self.train));
        }
        self.last_valid = Some(position(&item).0);
    }

    fn on_train_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        if let Some(prev) = self.last_valid.take() {
            tracing::info!("{}", Self::line("valid", prev, "done", &self.valid));
        }
        if let Some(summary) = summary {
            tracing::info!("{summary}");
        }
        Ok(())
    }
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.update_valid(state);
    }

    fn render_test(&mut self, item: EvaluationProgress, _indicators: Vec<ProgressType>) {
        self.last_valid = Some(position(&TrainingProgress::from(&item)).0);
    }
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }
}
