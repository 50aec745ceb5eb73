//! Validation with decoded output: the first `training.metric_pairs` validation pairs are also
//! decoded with the `[generation]` strategy in the validation step, and the corpus metrics of
//! `training.valid_metrics` (BLEU and chrF sacrebleu-exact, ROUGE equal to rouge-score; on
//! detokenized text against the raw references) are metrics in the TUI next to the loss — what
//! the model really produces, not teacher-forced argmax.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, PerplexityInput, SerializedEntry,
};
use burn::train::{ItemLazy, SequenceOutput};
use s2s_data::{Seq2SeqBatcher, Seq2SeqTokenizer, TokenizedPair};
use s2s_eval::Metric as EvalMetric;
use s2s_generate::GenerationConfig;
use s2s_infer::Scores;
use s2s_model::{Seq2Seq, Seq2SeqBatch};

/// A validation pair; `reference` (the raw target text) is set on the pairs that are decoded.
#[derive(Clone, Debug)]
pub struct ValidItem {
    /// The tokenized pair (teacher forcing).
    pub pair: TokenizedPair,
    /// The raw target text, on the pairs validation decodes.
    pub reference: Option<String>,
}

/// A validation batch: the teacher-forcing tensors, plus the rows to decode and score.
#[derive(Clone, Debug)]
pub struct ValidBatch<B: Backend> {
    /// The teacher-forcing tensors.
    pub batch: Seq2SeqBatch<B>,
    /// Model input ids (specials included) and raw reference of each pair to decode.
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
pub struct ValidDecoder {
    /// The target tokenizer (detokenizes the hypotheses).
    pub tokenizer: Arc<Seq2SeqTokenizer>,
    /// The run's `[generation]`, resolved.
    pub config: GenerationConfig,
}

impl std::fmt::Debug for ValidDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidDecoder")
            .field("config", &self.config)
            .finish()
    }
}

impl ValidDecoder {
    /// Decodes `rows` with `model` and returns their metric statistics
    /// ([`s2s_infer::Scores::of_rows`], the scoring `s2s eval` uses). A decoding failure
    /// (which validated settings cannot cause) is logged and scores those rows as empty output.
    pub fn score<B: Backend>(
        &self,
        model: &Seq2Seq<B>,
        rows: &[(Vec<u32>, String)],
        device: &B::Device,
    ) -> Scores {
        match Scores::of_rows(model, &self.tokenizer, rows, &self.config, device) {
            Ok(scores) => scores,
            Err(e) => {
                tracing::warn!("validation decoding failed: {e}");
                let mut scores = Scores::default();
                for (_, reference) in rows {
                    scores.add("", reference);
                }
                scores
            }
        }
    }
}

/// The validation step's output: what burn's sequence metrics read, plus metric statistics.
#[allow(missing_debug_implementations)] // burn's SequenceOutput has no Debug
pub struct ValidOutput<B: Backend> {
    /// Loss, logits and targets for the loss, accuracy and perplexity metrics.
    pub sequence: SequenceOutput<B>,
    /// Metric statistics of the batch's decoded pairs (`None` without validation decoding).
    pub scores: Option<Scores>,
}

/// [`ValidOutput`] after burn moved its tensors off the device.
#[allow(missing_debug_implementations)]
pub struct ValidOutputSync<S> {
    /// [`ValidOutput::sequence`], synced.
    pub sequence: S,
    /// [`ValidOutput::scores`].
    pub scores: Option<Scores>,
}

impl<B: Backend> ItemLazy for ValidOutput<B> {
    type ItemSync = ValidOutputSync<<SequenceOutput<B> as ItemLazy>::ItemSync>;

    fn sync(self) -> Self::ItemSync {
        ValidOutputSync {
            sequence: self.sequence.sync(),
            scores: self.scores,
        }
    }
}

impl<B: Backend> Adaptor<PerplexityInput<B>> for ValidOutputSync<SequenceOutput<B>> {
    fn adapt(&self) -> PerplexityInput<B> {
        self.sequence.adapt()
    }
}

/// What a [`ValidScoreMetric`] reads from a validation batch.
#[derive(Clone, Debug)]
pub struct ScoresInput(pub Option<Scores>);

impl<S> Adaptor<ScoresInput> for ValidOutputSync<S> {
    fn adapt(&self) -> ScoresInput {
        ScoresInput(self.scores.clone())
    }
}

/// One number shown per validation epoch, from the decoded pairs' [`Scores`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidScore {
    /// Corpus BLEU (sacrebleu 13a).
    Bleu,
    /// chrF2.
    Chrf,
    /// ROUGE-1 F1 × 100 (mean of per-segment scores, Porter stemmer).
    Rouge1,
    /// ROUGE-2 F1 × 100.
    Rouge2,
    /// ROUGE-L F1 × 100.
    RougeL,
}

impl ValidScore {
    /// The numbers shown for `metrics` (`training.valid_metrics`): ROUGE is shown as ROUGE-1,
    /// ROUGE-2 and ROUGE-L.
    pub fn for_metrics(metrics: &[EvalMetric]) -> Vec<ValidScore> {
        metrics
            .iter()
            .flat_map(|metric| match metric {
                EvalMetric::Bleu => vec![ValidScore::Bleu],
                EvalMetric::Chrf => vec![ValidScore::Chrf],
                EvalMetric::Rouge => {
                    vec![ValidScore::Rouge1, ValidScore::Rouge2, ValidScore::RougeL]
                }
            })
            .collect()
    }

    /// The name in the TUI and of the metric log (`valid/epoch-N/<name>.log`).
    pub fn name(self) -> &'static str {
        match self {
            ValidScore::Bleu => "BLEU",
            ValidScore::Chrf => "chrF",
            ValidScore::Rouge1 => "ROUGE-1",
            ValidScore::Rouge2 => "ROUGE-2",
            ValidScore::RougeL => "ROUGE-L",
        }
    }

    fn description(self) -> &'static str {
        match self {
            ValidScore::Bleu => "corpus BLEU (sacrebleu 13a) of decoded validation pairs",
            ValidScore::Chrf => "corpus chrF2 (sacrebleu) of decoded validation pairs",
            ValidScore::Rouge1 => {
                "mean ROUGE-1 F1 (rouge-score, stemmed) of decoded validation pairs"
            }
            ValidScore::Rouge2 => {
                "mean ROUGE-2 F1 (rouge-score, stemmed) of decoded validation pairs"
            }
            ValidScore::RougeL => {
                "mean ROUGE-L F1 (rouge-score, stemmed) of decoded validation pairs"
            }
        }
    }

    /// The value of `scores`, in points (0–100).
    pub fn value(self, scores: &Scores) -> f64 {
        let rouge = || scores.rouge.score().scores;
        match self {
            ValidScore::Bleu => scores.bleu.score().score,
            ValidScore::Chrf => scores.chrf.score().score,
            ValidScore::Rouge1 => 100.0 * rouge().rouge1.fmeasure,
            ValidScore::Rouge2 => 100.0 * rouge().rouge2.fmeasure,
            ValidScore::RougeL => 100.0 * rouge().rouge_l.fmeasure,
        }
    }
}

/// A corpus metric over the decoded validation pairs of the epoch so far (statistics are
/// summed over batches, never averaged per batch).
#[derive(Clone, Debug)]
pub struct ValidScoreMetric {
    kind: ValidScore,
    name: MetricName,
    scores: Scores,
}

impl ValidScoreMetric {
    /// An empty metric showing `kind`.
    pub fn new(kind: ValidScore) -> Self {
        Self {
            kind,
            name: Arc::new(kind.name().to_string()),
            scores: Scores::default(),
        }
    }

    fn entry(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.kind.value(&self.scores),
            count: self.scores.segments().max(1),
        }
    }
}

impl Metric for ValidScoreMetric {
    type Input = ScoresInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some(self.kind.description().into())
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: true,
        }
        .into()
    }

    fn update(&mut self, item: &ScoresInput, _metadata: &MetricMetadata) -> SerializedEntry {
        if let Some(scores) = &item.0 {
            self.scores.merge(scores);
        }
        SerializedEntry::new(
            format!(
                "epoch {:.2} ({} sentences)",
                self.kind.value(&self.scores),
                self.scores.segments()
            ),
            self.entry().serialize(),
        )
    }

    fn clear(&mut self) {
        self.scores = Scores::default();
    }
}

impl Numeric for ValidScoreMetric {
    fn value(&self) -> NumericEntry {
        self.entry()
    }

    fn running_value(&self) -> NumericEntry {
        self.entry()
    }
}
