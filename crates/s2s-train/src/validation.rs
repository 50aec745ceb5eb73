//! Validation with decoded output: the first `training.bleu_pairs` validation pairs are also
//! translated with the `[generation]` strategy in the validation step, and their corpus BLEU
//! (sacrebleu-exact, on detokenized text against the raw references) is a metric in the TUI
//! next to the loss — what the model really produces, not teacher-forced argmax.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, PerplexityInput, SerializedEntry,
};
use burn::train::{ItemLazy, SequenceOutput};
use s2s_data::{Seq2SeqBatcher, Seq2SeqTokenizer, TokenizedPair};
use s2s_eval::BleuStats;
use s2s_generate::GenerationConfig;
use s2s_infer::Scores;
use s2s_model::{Seq2Seq, Seq2SeqBatch};

/// A validation pair; `reference` (the raw target text) is set on the pairs BLEU decodes.
#[derive(Clone, Debug)]
pub struct ValidItem {
    /// The tokenized pair (teacher forcing).
    pub pair: TokenizedPair,
    /// The raw target text, on the pairs validation BLEU translates.
    pub reference: Option<String>,
}

/// A validation batch: the teacher-forcing tensors, plus the rows to decode for BLEU.
#[derive(Clone, Debug)]
pub struct ValidBatch<B: Backend> {
    /// The teacher-forcing tensors.
    pub batch: Seq2SeqBatch<B>,
    /// Model input ids (specials included) and raw reference of each pair to translate.
    pub decode: Vec<(Vec<u32>, String)>,
}

/// Batches [`ValidItem`]s with the training batcher.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidBatcher;

impl<B: Backend> Batcher<B, ValidItem, ValidBatch<B>> for ValidBatcher {
    fn batch(&self, items: Vec<ValidItem>, device: &B::Device) -> ValidBatch<B> {
        let decode = items
            .iter()
            .filter_map(|item| {
                let reference = item.reference.clone()?;
                Some((item.pair.source.clone(), reference))
            })
            .collect();
        let pairs = items.into_iter().map(|item| item.pair).collect();
        ValidBatch {
            batch: Batcher::<B, _, _>::batch(&Seq2SeqBatcher, pairs, device),
            decode,
        }
    }
}

/// How the validation step decodes: the target tokenizer and the generation settings.
#[derive(Clone)]
pub struct BleuDecoder {
    /// The target tokenizer (detokenizes the hypotheses).
    pub tokenizer: Arc<Seq2SeqTokenizer>,
    /// The run's `[generation]`, resolved.
    pub config: GenerationConfig,
}

impl std::fmt::Debug for BleuDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleuDecoder")
            .field("config", &self.config)
            .finish()
    }
}

impl BleuDecoder {
    /// Translates `rows` with `model` and returns their BLEU statistics
    /// ([`s2s_infer::Scores::of_rows`], the scoring `s2s eval` uses). A decoding failure
    /// (which validated settings cannot cause) is logged and scores those rows as empty output.
    pub fn score<B: Backend>(
        &self,
        model: &Seq2Seq<B>,
        rows: &[(Vec<u32>, String)],
        device: &B::Device,
    ) -> BleuStats {
        match Scores::of_rows(model, &self.tokenizer, rows, &self.config, device) {
            Ok(scores) => scores.bleu,
            Err(e) => {
                tracing::warn!("validation decoding failed: {e}");
                let mut stats = BleuStats::default();
                for (_, reference) in rows {
                    stats.add("", reference);
                }
                stats
            }
        }
    }
}

/// The validation step's output: what burn's sequence metrics read, plus BLEU statistics.
#[allow(missing_debug_implementations)] // burn's SequenceOutput has no Debug
pub struct ValidOutput<B: Backend> {
    /// Loss, logits and targets for the loss, accuracy and perplexity metrics.
    pub sequence: SequenceOutput<B>,
    /// BLEU statistics of the batch's decoded pairs (`None` without validation BLEU).
    pub bleu: Option<BleuStats>,
}

/// [`ValidOutput`] after burn moved its tensors off the device.
#[allow(missing_debug_implementations)]
pub struct ValidOutputSync<S> {
    /// [`ValidOutput::sequence`], synced.
    pub sequence: S,
    /// [`ValidOutput::bleu`].
    pub bleu: Option<BleuStats>,
}

impl<B: Backend> ItemLazy for ValidOutput<B> {
    type ItemSync = ValidOutputSync<<SequenceOutput<B> as ItemLazy>::ItemSync>;

    fn sync(self) -> Self::ItemSync {
        ValidOutputSync {
            sequence: self.sequence.sync(),
            bleu: self.bleu,
        }
    }
}

impl<B: Backend> Adaptor<PerplexityInput<B>> for ValidOutputSync<SequenceOutput<B>> {
    fn adapt(&self) -> PerplexityInput<B> {
        self.sequence.adapt()
    }
}

/// What [`BleuMetric`] reads from a validation batch.
#[derive(Clone, Debug)]
pub struct BleuInput(pub Option<BleuStats>);

impl<S> Adaptor<BleuInput> for ValidOutputSync<S> {
    fn adapt(&self) -> BleuInput {
        BleuInput(self.bleu.clone())
    }
}

/// Corpus BLEU over the decoded validation pairs of the epoch so far (statistics are summed
/// over batches, never averaged per batch).
#[derive(Clone, Debug)]
pub struct BleuMetric {
    name: MetricName,
    stats: BleuStats,
}

impl Default for BleuMetric {
    fn default() -> Self {
        Self {
            name: Arc::new("BLEU".to_string()),
            stats: BleuStats::default(),
        }
    }
}

impl BleuMetric {
    /// An empty metric.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.stats.score().score,
            count: usize::try_from(self.stats.segments().max(1)).unwrap_or(usize::MAX),
        }
    }
}

impl Metric for BleuMetric {
    type Input = BleuInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some("corpus BLEU (sacrebleu 13a) of decoded validation pairs".into())
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: true,
        }
        .into()
    }

    fn update(&mut self, item: &BleuInput, _metadata: &MetricMetadata) -> SerializedEntry {
        if let Some(stats) = &item.0 {
            self.stats.merge(stats);
        }
        let score = self.stats.score();
        SerializedEntry::new(
            format!(
                "epoch {:.2} ({} sentences)",
                score.score,
                self.stats.segments()
            ),
            self.entry().serialize(),
        )
    }

    fn clear(&mut self) {
        self.stats = BleuStats::default();
    }
}

impl Numeric for BleuMetric {
    fn value(&self) -> NumericEntry {
        self.entry()
    }

    fn running_value(&self) -> NumericEntry {
        self.entry()
    }
}
