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

/// Non-padding tokens of `targets`.
fn tokens<B: Backend>(targets: &Tensor<B, 2, Int>) -> usize {
    let n: i64 = targets
        .clone()
        .not_equal_elem(special::PAD as i64)
        .int()
        .sum()
        .into_scalar()
        .elem();
    usize::try_from(n).unwrap_or(0)
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
            name: Arc::new("Loss".to_string()),
            mean: TokenMean::default(),
            _backend: PhantomData,
        }
    }
}

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
        let loss: f64 = item.loss.clone().mean().into_scalar().elem();
        self.mean.update(loss, tokens(&item.targets), "", 2)
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
        let hits: i64 = item
            .logits
            .clone()
            .argmax(2)
            .squeeze_dim::<2>(2)
            .equal(item.targets.clone())
            .bool_and(keep)
            .int()
            .sum()
            .into_scalar()
            .elem();
        let n = tokens(&item.targets);
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
