//! Corpus chrF (Popović, 2015) exactly as sacrebleu 2.6.0 computes it by default.
//!
//! Mirrors `sacrebleu/metrics/chrf.py`: `CHRF()` with `char_order=6`, `word_order=0`,
//! `beta=2`, `whitespace=False`, `lowercase=False`, `eps_smoothing=False` and one reference
//! per segment. Character n-gram statistics are summed over the corpus; the score is the
//! F-beta of precision and recall averaged over the orders that have both hypothesis and
//! reference n-grams (sacrebleu's "effective order", the behaviour of sacrebleu < 2.0).

use std::collections::HashMap;
use std::fmt;

use crate::tokenizer::is_python_whitespace;
use crate::{check_line_counts, EvalError};

/// Highest character n-gram order chrF counts.
pub const CHAR_ORDER: usize = 6;
/// Word n-gram order (0: chrF, not chrF++).
pub const WORD_ORDER: usize = 0;
/// Weight of recall relative to precision.
pub const BETA: u32 = 2;

/// sacrebleu's signature for the configuration this module implements.
const SIGNATURE: &str = "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0";

/// Character n-gram statistics of one order, summed over segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChrfOrderStats {
    /// Hypothesis n-grams, counted only in segments whose reference has n-grams of this
    /// order (sacrebleu's rule).
    pub hypothesis: u64,
    /// Reference n-grams.
    pub reference: u64,
    /// Clipped matching n-grams.
    pub matched: u64,
}

/// Sufficient statistics of corpus chrF: sums over sentence pairs, so they can be
/// accumulated batch by batch ([`add`](Self::add)) or combined ([`merge`](Self::merge)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChrfStats {
    orders: [ChrfOrderStats; CHAR_ORDER],
    segments: u64,
}

impl ChrfStats {
    /// Adds one hypothesis and its reference. All (Python) whitespace is removed before
    /// character n-grams are taken; matching is case-sensitive.
    pub fn add(&mut self, hypothesis: &str, reference: &str) {
        let hyp_chars: Vec<char> = hypothesis
            .chars()
            .filter(|&c| !is_python_whitespace(c))
            .collect();
        let ref_chars: Vec<char> = reference
            .chars()
            .filter(|&c| !is_python_whitespace(c))
            .collect();
        self.segments += 1;
        for (n, order) in (1..=CHAR_ORDER).zip(&mut self.orders) {
            let ref_counts = ngram_counts(&ref_chars, n);
            if ref_counts.is_empty() {
                // sacrebleu does not count hypothesis n-grams of an order the reference
                // lacks (`hyp_count if ref_ngrams else 0`); nothing can match either.
                continue;
            }
            order.reference += ref_counts.values().sum::<u64>();
            for (ngram, hyp_count) in ngram_counts(&hyp_chars, n) {
                order.hypothesis += hyp_count;
                order.matched += hyp_count.min(ref_counts.get(ngram).copied().unwrap_or(0));
            }
        }
    }

    /// Adds statistics gathered elsewhere (another batch, another worker).
    pub fn merge(&mut self, other: &ChrfStats) {
        for (order, other) in self.orders.iter_mut().zip(&other.orders) {
            order.hypothesis += other.hypothesis;
            order.reference += other.reference;
            order.matched += other.matched;
        }
        self.segments += other.segments;
    }

    /// Per-order statistics for n = 1..=6.
    pub fn orders(&self) -> &[ChrfOrderStats; CHAR_ORDER] {
        &self.orders
    }

    /// Number of sentence pairs added so far.
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Corpus chrF of everything added so far. An empty corpus scores 0.
    pub fn score(&self) -> ChrfScore {
        // Follows `CHRF._compute_f_score` with `eps_smoothing=False`, keeping its order of
        // floating-point operations. Its `eps` never reaches this branch: only orders with
        // both hypothesis and reference n-grams are averaged.
        let factor = f64::from(BETA * BETA);
        let (mut avg_prec, mut avg_rec) = (0.0, 0.0);
        let mut effective_order = 0_u32;
        for order in &self.orders {
            if order.hypothesis > 0 && order.reference > 0 {
                avg_prec += order.matched as f64 / order.hypothesis as f64;
                avg_rec += order.matched as f64 / order.reference as f64;
                effective_order += 1;
            }
        }
        if effective_order == 0 {
            (avg_prec, avg_rec) = (0.0, 0.0);
        } else {
            avg_prec /= f64::from(effective_order);
            avg_rec /= f64::from(effective_order);
        }
        let score = if avg_prec + avg_rec != 0.0 {
            let f = (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
            100.0 * f
        } else {
            0.0
        };
        ChrfScore {
            score,
            char_order: CHAR_ORDER,
            word_order: WORD_ORDER,
            beta: BETA,
        }
    }
}

fn ngram_counts(chars: &[char], n: usize) -> HashMap<&[char], u64> {
    let mut counts = HashMap::new();
    for ngram in chars.windows(n) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// A corpus chrF score (sacrebleu's `CHRFScore`).
///
/// `Display` prints what sacrebleu's `CHRFScore.format()` prints, e.g. `chrF2 = 52.34`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChrfScore {
    /// chrF in [0, 100].
    pub score: f64,
    /// Character n-gram order (6).
    pub char_order: usize,
    /// Word n-gram order (0; chrF++ would be 2).
    pub word_order: usize,
    /// Weight of recall relative to precision (2).
    pub beta: u32,
}

impl ChrfScore {
    /// The metric's name as sacrebleu prints it: `chrF2`, with one `+` per word order.
    pub fn name(&self) -> String {
        format!("chrF{}{}", self.beta, "+".repeat(self.word_order))
    }

    /// sacrebleu's reproducibility signature for this configuration:
    /// `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0`.
    pub fn signature(&self) -> &'static str {
        SIGNATURE
    }

    /// The line `sacrebleu --format text` prints: `chrF2|nrefs:1|…|version:2.6.0 = 52.34`.
    pub fn format_with_signature(&self) -> String {
        format!("{}|{} = {:.2}", self.name(), self.signature(), self.score)
    }
}

impl fmt::Display for ChrfScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:.2}", self.name(), self.score)
    }
}

/// Corpus chrF of `hypotheses` against one reference each, as `sacrebleu.corpus_chrf` with
/// its defaults.
///
/// # Errors
/// [`EvalError::LineCountMismatch`] when the two slices differ in length.
pub fn corpus_chrf<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[R],
) -> Result<ChrfScore, EvalError> {
    check_line_counts(hypotheses.len(), references.len())?;
    let mut stats = ChrfStats::default();
    for (hypothesis, reference) in hypotheses.iter().zip(references) {
        stats.add(hypothesis.as_ref(), reference.as_ref());
    }
    Ok(stats.score())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_corpus_scores_100() {
        let lines = ["Le chat dort sur le tapis.", "日本語のテスト 😀", "a"];
        let score = corpus_chrf(&lines, &lines).unwrap();
        assert_eq!(score.score, 100.0);
        assert_eq!(score.to_string(), "chrF2 = 100.00");
    }

    #[test]
    fn empty_corpus_scores_zero() {
        let none: [&str; 0] = [];
        let score = corpus_chrf(&none, &none).unwrap();
        assert_eq!(score.score, 0.0);
        assert_eq!(score.to_string(), "chrF2 = 0.00");
        let score = corpus_chrf(&["", "  "], &["", "abc"]).unwrap();
        assert_eq!(score.score, 0.0);
    }

    #[test]
    fn orders_missing_from_the_reference_do_not_count_the_hypothesis() {
        let mut stats = ChrfStats::default();
        stats.add("abcd", "ab");
        let orders = stats.orders();
        assert_eq!(
            orders[0],
            ChrfOrderStats {
                hypothesis: 4,
                reference: 2,
                matched: 2
            }
        );
        assert_eq!(orders[1].hypothesis, 3);
        assert_eq!(orders[2], ChrfOrderStats::default());
    }

    #[test]
    fn characters_are_unicode_scalar_values() {
        let mut stats = ChrfStats::default();
        stats.add("é😀 x", "é😀");
        assert_eq!(stats.orders()[0].hypothesis, 3);
        assert_eq!(stats.orders()[1].matched, 1);
    }
}
