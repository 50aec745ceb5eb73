//! Scoring outputs: corpus BLEU and chrF (sacrebleu-exact) and ROUGE (rouge-score-exact, Porter
//! stemmer) from `s2s_eval`, of detokenized hypotheses against raw references. `s2s eval`, the
//! validation metrics during training and the final report all score through [`Scores`].

use burn::prelude::*;
use s2s_data::Seq2SeqTokenizer;
use s2s_eval::{BleuStats, ChrfStats, EvalError, RougeStats};
use s2s_generate::{DecodeStrategy, GenerationConfig, IncrementalDecoder};

use crate::InferError;

/// Sufficient statistics of corpus BLEU, chrF and ROUGE over a set of segments; summed over
/// batches (never averaged per batch), they give the corpus score of all of them.
#[derive(Clone, Debug)]
pub struct Scores {
    /// Corpus BLEU statistics (sacrebleu 13a tokenization).
    pub bleu: BleuStats,
    /// chrF2 statistics.
    pub chrf: ChrfStats,
    /// ROUGE-1/2/L/Lsum sums of per-segment scores, with the Porter stemmer (as HF's
    /// `run_summarization.py` and most summarization papers report it).
    pub rouge: RougeStats,
}

impl Default for Scores {
    fn default() -> Self {
        Self {
            bleu: BleuStats::default(),
            chrf: ChrfStats::default(),
            rouge: RougeStats::new(true),
        }
    }
}

impl Scores {
    /// Adds one segment.
    pub fn add(&mut self, hypothesis: &str, reference: &str) {
        self.bleu.add(hypothesis, reference);
        self.chrf.add(hypothesis, reference);
        self.rouge.add(hypothesis, reference);
    }

    /// Segments added so far.
    pub fn segments(&self) -> usize {
        self.rouge.segments()
    }

    /// Statistics of `hypotheses` against `references`, line by line.
    ///
    /// # Errors
    /// [`EvalError::LineCountMismatch`] when the two differ in length.
    pub fn of(hypotheses: &[String], references: &[String]) -> Result<Self, EvalError> {
        if hypotheses.len() != references.len() {
            return Err(EvalError::LineCountMismatch {
                hypotheses: hypotheses.len(),
                references: references.len(),
            });
        }
        let mut scores = Self::default();
        for (hypothesis, reference) in hypotheses.iter().zip(references) {
            scores.add(hypothesis, reference);
        }
        Ok(scores)
    }

    /// Translates `rows` (model input ids, raw reference) with `config` and scores the best
    /// translation of each.
    ///
    /// # Errors
    /// As [`crate::translate_ids`].
    pub fn of_rows<B: Backend, M: IncrementalDecoder<B>>(
        model: &M,
        tokenizer: &Seq2SeqTokenizer,
        rows: &[(Vec<u32>, String)],
        config: &GenerationConfig,
        device: &B::Device,
    ) -> Result<Self, InferError> {
        let sources: Vec<Vec<u32>> = rows.iter().map(|(source, _)| source.clone()).collect();
        let references: Vec<String> = rows
            .iter()
            .map(|(_, reference)| reference.clone())
            .collect();
        // Only the best hypothesis's text is scored: no token strings, no other hypotheses.
        let hypotheses = s2s_generate::generate(model, &sources, config, device)?
            .into_iter()
            .map(|hyps| match hyps.first() {
                Some(best) => tokenizer.decode(&best.tokens),
                None => Ok(String::new()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::of(&hypotheses, &references)?)
    }

    /// Adds another set of segments' statistics.
    pub fn merge(&mut self, other: &Scores) {
        self.bleu.merge(&other.bleu);
        self.chrf.merge(&other.chrf);
        self.rouge.merge(&other.rouge);
    }
}

/// A short name of a decoding strategy for reports and logs (`greedy`, `beam 4, length penalty
/// 0.6`, `sampling …`).
pub fn describe(config: &GenerationConfig) -> String {
    match &config.strategy {
        DecodeStrategy::Greedy => "greedy".into(),
        DecodeStrategy::Beam {
            num_beams,
            length_penalty,
            ..
        } => format!("beam {num_beams}, length penalty {length_penalty}"),
        DecodeStrategy::Sample {
            temperature,
            top_k,
            top_p,
            seed,
            ..
        } => format!("sampling t={temperature} top-k {top_k} top-p {top_p} seed {seed}"),
    }
}
