//! Token-weighted loss and accuracy for burn-train's dashboard and metric logs.
//!
//! burn's `LossMetric` averages batch means with one vote per batch, and its `AccuracyMetric`
//! weighs each batch by its padded size, so the epoch numbers they show differ from the exact
//! per-token values of the report (`s2s_infer::TrainReport`). These two weigh every batch by
//! its non-padding target tokens: the epoch value they show is the report's, and each log line
//! holds the batch's value with its token count, so a count-weighted mean of the lines
//! (`s2s compare`) gives it back too. burn's `PerplexityMetric` is exact already (it sums NLL
//! and tokens); its log lines hold the running epoch value.

use std::marker::PhantomData;
use std::sync::Arc;

use burn::prelude::*;
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use burn::train::SequenceOutput;
use s2s_model::special;

use crate::validation::ValidOutputSync;

/// A batch's mean loss over its non-padding target tokens, and the targets (for the count).
#[derive(Debug)]
pub struct TokenLossInput<B: Backend> {
    /// Shape `[1]`: the batch's mean loss per non-padding target token.
    pub loss: Tensor<B, 1>,
    /// Shape `[batch, target_len]`; `special::PAD` marks padding.
    pub targets: Tensor<B, 2, Int>,
}

/// A batch's logits and targets.
#[derive(Debug)]
pub struct TokenAccuracyInput<B: Backend> {
    /// Shape `[batch, target_len, vocab]`.
    pub logits: Tensor<B, 3>,
    /// Shape `[batch, target_len]`; `special::PAD` marks padding.
    pub targets: Tensor<B, 2, Int>,
}

impl<B: Backend> Adaptor<TokenLossInput<B>> for SequenceOutput<B> {
    fn adapt(&self) -> TokenLossInput<B> {
        TokenLossInput {
            loss: self.loss.clone(),
            targets: self.targets.clone(),
        }
    }
}

impl<B: Backend> Adaptor<TokenAccuracyInput<B>> for SequenceOutput<B> {
    fn adapt(&self) -> TokenAccuracyInput<B> {
        TokenAccuracyInput {
            logits: self.logits.clone(),
            targets: self.targets.clone(),
        }
    }
}

impl<B: Backend> Adaptor<TokenLossInput<B>> for ValidOutputSync<SequenceOutput<B>> {
    fn adapt(&self) -> TokenLossInput<B> {
        self.sequence.adapt()
    }
}

impl<B: Backend> Adaptor<TokenAccuracyInput<B>> for ValidOutputSync<SequenceOutput<B>> {
    fn adapt(&self) -> TokenAccuracyInput<B> {
        self.sequence.adapt()
    }
}

/// A batch's mean loss and its non-padding target tokens, in one read from the device (the
/// loss is NaN and the count 0 when the read fails).
pub fn loss_and_tokens<B: Backend>(loss: &Tensor<B, 1>, targets: &Tensor<B, 2, Int>) -> (f64, f64) {
    let both = Tensor::cat(vec![loss.clone().mean(), real_tokens(targets).float()], 0)
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap_or_default();
    (
        both.first().copied().unwrap_or(f64::NAN),
        both.get(1).copied().unwrap_or(0.0),
    )
}

/// `[1]`: the non-padding tokens of `targets`.
fn real_tokens<B: Backend>(targets: &Tensor<B, 2, Int>) -> Tensor<B, 1, Int> {
    targets
        .clone()
        .not_equal_elem(special::PAD as i64)
        .int()
        .sum()
}

/// A token-weighted mean over the epoch so far.
#[derive(Clone, Debug, Default)]
struct TokenMean {
    sum: f64,
    tokens: usize,
}

impl TokenMean {
    /// Adds a batch whose mean is `value` over `tokens` tokens; returns the log line's entry
    /// (the batch's value and count) and the progress text (epoch and batch values).
    fn update(&mut self, value: f64, tokens: usize, unit: &str, digits: usize) -> SerializedEntry {
        self.sum += value * tokens as f64;
        self.tokens += tokens;
        SerializedEntry::new(
            format!(
                "epoch {:.digits$}{unit} - batch {value:.digits$}{unit}",
                self.mean()
            ),
            NumericEntry::Aggregated {
                aggregated_value: value,
                count: tokens,
            }
            .serialize(),
        )
    }

    fn mean(&self) -> f64 {
        if self.tokens == 0 {
            f64::NAN
        } else {
            self.sum / self.tokens as f64
        }
    }

    fn entry(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.mean(),
            count: self.tokens,
        }
    }
}

/// Label-smoothed cross-entropy (the training objective) per non-padding target token, named
/// `Loss` like burn's metric it replaces.
#[derive(Clone, Debug)]
pub struct TokenLossMetric<B: Backend> {
    name: MetricName,
    mean: TokenMean,
    _backend: PhantomData<B>,
}

impl<B: Backend> Default for TokenLossMetric<B> {
    fn default() -> Self {
        Self {
            name: Arc::new(LOSS_NAME.to_string()),
            mean: TokenMean::default(),
            _backend: PhantomData,
        }
    }
}

/// The name of [`TokenLossMetric`] (and of its log, `<split>/epoch-N/Loss.log`).
pub const LOSS_NAME: &str = "Loss";

impl<B: Backend> TokenLossMetric<B> {
    /// An empty metric named `Loss`.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Backend> Metric for TokenLossMetric<B> {
    type Input = TokenLossInput<B>;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some("label-smoothed cross-entropy per non-padding target token".into())
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }

    fn update(&mut self, item: &TokenLossInput<B>, _metadata: &MetricMetadata) -> SerializedEntry {
        let (loss, tokens) = loss_and_tokens(&item.loss, &item.targets);
        self.mean.update(loss, tokens as usize, "", 2)
    }

    fn clear(&mut self) {
        self.mean = TokenMean::default();
    }
}

impl<B: Backend> Numeric for TokenLossMetric<B> {
    fn value(&self) -> NumericEntry {
        self.mean.entry()
    }

    fn running_value(&self) -> NumericEntry {
        self.mean.entry()
    }
}

/// Teacher-forced next-token accuracy over non-padding target tokens, in percent, named
/// `Accuracy` like burn's metric it replaces.
#[derive(Clone, Debug)]
pub struct TokenAccuracyMetric<B: Backend> {
    name: MetricName,
    mean: TokenMean,
    _backend: PhantomData<B>,
}

impl<B: Backend> Default for TokenAccuracyMetric<B> {
    fn default() -> Self {
        Self {
            name: Arc::new("Accuracy".to_string()),
            mean: TokenMean::default(),
            _backend: PhantomData,
        }
    }
}

impl<B: Backend> TokenAccuracyMetric<B> {
    /// An empty metric named `Accuracy`.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Backend> Metric for TokenAccuracyMetric<B> {
    type Input = TokenAccuracyInput<B>;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some("next-token accuracy over non-padding target tokens (teacher-forced)".into())
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".into()),
            higher_is_better: true,
        }
        .into()
    }

    fn update(
        &mut self,
        item: &TokenAccuracyInput<B>,
        _metadata: &MetricMetadata,
    ) -> SerializedEntry {
        let keep = item.targets.clone().not_equal_elem(special::PAD as i64);
        let hits = item
            .logits
            .clone()
            .argmax(2)
            .squeeze_dim::<2>(2)
            .equal(item.targets.clone())
            .bool_and(keep.clone())
            .int()
            .sum();
        // Hits and real tokens in one read from the device.
        let both = Tensor::cat(vec![hits, keep.int().sum()], 0)
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .unwrap_or_default();
        let (hits, n) = match both[..] {
            [hits, n] => (hits, usize::try_from(n).unwrap_or(0)),
            _ => (0, 0),
        };
        let percent = if n == 0 {
            0.0
        } else {
            100.0 * hits as f64 / n as f64
        };
        self.mean.update(percent, n, " %", 2)
    }

    fn clear(&mut self) {
        self.mean = TokenMean::default();
    }
}

impl<B: Backend> Numeric for TokenAccuracyMetric<B> {
    fn value(&self) -> NumericEntry {
        self.mean.entry()
    }

    fn running_value(&self) -> NumericEntry {
        self.mean.entry()
    }
}

/// A batch's label ids, for counting its tokens.
#[derive(Debug)]
pub struct TokenCountInput<B: Backend> {
    /// Shape `[batch, target_len]`; `special::PAD` marks padding.
    pub targets: Tensor<B, 2, Int>,
}

impl<B: Backend> Adaptor<TokenCountInput<B>> for SequenceOutput<B> {
    fn adapt(&self) -> TokenCountInput<B> {
        TokenCountInput {
            targets: self.targets.clone(),
        }
    }
}

/// Non-padding target tokens per batch (fairseq's `wpb`, words per batch), named
/// `Tokens per batch`: with `training.max_tokens` batches hold a varying number of pairs, and
/// this is how much each one teaches. Each log line (`Tokens_per_batch.log`) holds the batch's
/// count; the epoch value is the mean over its batches. Not `Tokens/batch`: burn-train's file
/// logger makes the name a file name, and a `/` would be a missing directory.
#[derive(Clone, Debug)]
pub struct TokensPerBatchMetric<B: Backend> {
    name: MetricName,
    tokens: usize,
    batches: usize,
    _backend: PhantomData<B>,
}

impl<B: Backend> Default for TokensPerBatchMetric<B> {
    fn default() -> Self {
        Self {
            name: Arc::new("Tokens per batch".to_string()),
            tokens: 0,
            batches: 0,
            _backend: PhantomData,
        }
    }
}

impl<B: Backend> TokensPerBatchMetric<B> {
    /// An empty metric named `Tokens per batch`.
    pub fn new() -> Self {
        Self::default()
    }

    fn mean(&self) -> f64 {
        if self.batches == 0 {
            f64::NAN
        } else {
            self.tokens as f64 / self.batches as f64
        }
    }
}

impl<B: Backend> Metric for TokensPerBatchMetric<B> {
    type Input = TokenCountInput<B>;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some("non-padding target tokens per batch (labels, </s> included)".into())
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: true,
        }
        .into()
    }

    fn update(&mut self, item: &TokenCountInput<B>, _metadata: &MetricMetadata) -> SerializedEntry {
        let tokens = real_tokens(&item.targets)
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .ok()
            .and_then(|v| v.first().copied())
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        self.tokens += tokens;
        self.batches += 1;
        SerializedEntry::new(
            format!("epoch {:.0} - batch {tokens}", self.mean()),
            NumericEntry::Value(tokens as f64).serialize(),
        )
    }

    fn clear(&mut self) {
        self.tokens = 0;
        self.batches = 0;
    }
}

impl<B: Backend> Numeric for TokensPerBatchMetric<B> {
    fn value(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.mean(),
            count: self.batches,
        }
    }

    fn running_value(&self) -> NumericEntry {
        self.value()
    }
}

/// The run's training wall time: seconds since the training loop started, at each batch,
/// logged as `Elapsed.log` (one line per batch, its value in seconds). Earlier launches of the
/// same run (a resume, or the unfrozen phase of `training.unfreeze_encoder_after`) count from
/// `offset`, the last value the previous launch logged, so the time a killed run lay idle is not
/// counted. The last line of epoch N is the run's wall time when epoch N's training ended,
/// the validations of epochs before N included; `s2s compare` draws validation and test scores
/// against it. Data preparation and tokenizer training before the loop are not included.
#[derive(Clone, Debug)]
pub struct ElapsedMetric<B: Backend> {
    name: MetricName,
    started: std::time::Instant,
    offset: f64,
    last: f64,
    _backend: PhantomData<B>,
}

impl<B: Backend> ElapsedMetric<B> {
    /// A clock started now, reading `offset` seconds at the start.
    pub fn new(offset: f64) -> Self {
        Self {
            name: Arc::new(ELAPSED_METRIC.to_string()),
            started: std::time::Instant::now(),
            offset,
            last: offset,
            _backend: PhantomData,
        }
    }
}

/// Name (and log file stem) of [`ElapsedMetric`].
pub const ELAPSED_METRIC: &str = "Elapsed";

impl<B: Backend> Metric for ElapsedMetric<B> {
    type Input = TokenCountInput<B>;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some("seconds of training wall time since the run's training loop started".into())
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("s".into()),
            higher_is_better: false,
        }
        .into()
    }

    fn update(
        &mut self,
        _item: &TokenCountInput<B>,
        _metadata: &MetricMetadata,
    ) -> SerializedEntry {
        self.last = self.offset + self.started.elapsed().as_secs_f64();
        SerializedEntry::new(
            format!("{:.0} s", self.last),
            // `value,1`, the form `s2s_infer::run_dir::read_metric_log` reads.
            NumericEntry::Aggregated {
                aggregated_value: self.last,
                count: 1,
            }
            .serialize(),
        )
    }

    // The clock runs across epochs: nothing to clear.
    fn clear(&mut self) {}
}

impl<B: Backend> Numeric for ElapsedMetric<B> {
    fn value(&self) -> NumericEntry {
        NumericEntry::Value(self.last)
    }

    fn running_value(&self) -> NumericEntry {
        self.value()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn metadata() -> MetricMetadata {
        let progress = burn::data::dataloader::Progress {
            items_processed: 1,
            items_total: 1,
        };
        MetricMetadata {
            progress: progress.clone(),
            global_progress: progress,
            iteration: Some(1),
            lr: None,
        }
    }

    /// `[rows, len]` targets whose first `tokens[r]` ids are real and the rest padding.
    fn targets(tokens: &[usize], len: usize) -> Tensor<B, 2, Int> {
        let ids: Vec<i64> = tokens
            .iter()
            .flat_map(|&n| (0..len).map(move |i| if i < n { 5 } else { special::PAD as i64 }))
            .collect();
        Tensor::from_data(
            TensorData::new(ids, [tokens.len(), len]),
            &Default::default(),
        )
    }

    fn value(entry: NumericEntry) -> (f64, usize) {
        match entry {
            NumericEntry::Aggregated {
                aggregated_value,
                count,
            } => (aggregated_value, count),
            NumericEntry::Value(v) => (v, 1),
        }
    }

    #[test]
    fn loss_is_weighted_by_target_tokens_not_by_batch() {
        let mut metric = TokenLossMetric::<B>::new();
        let device = Default::default();
        // 12 tokens at loss 2.0, then 3 tokens at loss 6.0: (24 + 18) / 15 = 2.8 (the mean of
        // the two batch means would be 4.0).
        for (loss, tokens) in [(2.0f32, vec![4, 4, 4]), (6.0, vec![3, 0, 0])] {
            let input = TokenLossInput {
                loss: Tensor::from_data(TensorData::new(vec![loss], [1]), &device),
                targets: targets(&tokens, 5),
            };
            metric.update(&input, &metadata());
        }
        let (mean, count) = value(metric.value());
        assert_eq!(count, 15);
        assert!((mean - 2.8).abs() < 1e-9, "{mean}");
        metric.clear();
        assert_eq!(value(metric.value()).1, 0);
    }

    #[test]
    fn tokens_per_batch_counts_non_padding_labels() {
        let mut metric = TokensPerBatchMetric::<B>::new();
        // Rows of 5, 2 and 0 real labels in a width of 6: 7 tokens, not the 18 padded cells.
        let entry = metric.update(
            &TokenCountInput {
                targets: targets(&[5, 2, 0], 6),
            },
            &metadata(),
        );
        assert_eq!(value(metric.value()), (7.0, 1));
        // The log line holds the batch's count alone.
        assert_eq!(entry.serialized, "7");
        // A second batch of 4 + 4 + 4 + 1 = 13: the epoch value is the mean per batch, 10.
        metric.update(
            &TokenCountInput {
                targets: targets(&[4, 4, 4, 1], 4),
            },
            &metadata(),
        );
        assert_eq!(value(metric.value()), (10.0, 2));
        metric.clear();
        assert_eq!(value(metric.value()).1, 0);
    }

    #[test]
    fn accuracy_counts_hits_over_real_tokens_only() {
        let mut metric = TokenAccuracyMetric::<B>::new();
        let device = Default::default();
        // Two rows of 3 positions, vocab 6: the model always predicts id 5 (the real targets'
        // id), so every real token is a hit and padding (predicted 5, labelled PAD) is not
        // counted: 100 %, over 4 tokens.
        let mut logits = vec![0f32; 2 * 3 * 6];
        for position in 0..6 {
            logits[position * 6 + 5] = 1.0;
        }
        let input = TokenAccuracyInput {
            logits: Tensor::from_data(TensorData::new(logits.clone(), [2, 3, 6]), &device),
            targets: targets(&[3, 1], 3),
        };
        metric.update(&input, &metadata());
        assert_eq!(value(metric.value()), (100.0, 4));
        // A batch of 4 real tokens with no hit (the model now predicts id 1): 4 of 8 overall.
        let mut wrong = vec![0f32; 2 * 3 * 6];
        for position in 0..6 {
            wrong[position * 6 + 1] = 1.0;
        }
        let input = TokenAccuracyInput {
            logits: Tensor::from_data(TensorData::new(wrong, [2, 3, 6]), &device),
            targets: targets(&[2, 2], 3),
        };
        metric.update(&input, &metadata());
        assert_eq!(value(metric.value()), (50.0, 8));
    }

    #[test]
    fn elapsed_counts_on_from_the_offset_and_logs_value_comma_one() {
        let mut metric = ElapsedMetric::<B>::new(100.0);
        assert_eq!(value(metric.value()), (100.0, 1));
        let input = TokenCountInput {
            targets: targets(&[3], 4),
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        let entry = metric.update(&input, &metadata());
        let (first, _) = value(metric.value());
        assert!((100.02..101.0).contains(&first), "{first}");
        // The log line burn-train writes: `value,1`, which read_metric_log reads.
        let line = entry.serialized;
        let (v, count) = line.split_once(',').unwrap();
        assert_eq!((v.parse::<f64>().unwrap(), count), (first, "1"));
        // Epochs do not reset the clock.
        metric.clear();
        metric.update(&input, &metadata());
        assert!(value(metric.value()).0 >= first);
    }
}
