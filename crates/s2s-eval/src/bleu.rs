//! Corpus BLEU (Papineni et al., 2002) exactly as sacrebleu 2.6.0 computes it by default.
//!
//! Mirrors `sacrebleu/metrics/bleu.py`: `BLEU()` with `tokenize='13a'`, `smooth_method='exp'`,
//! `effective_order=False`, `max_ngram_order=4`, `lowercase=False` and one reference per
//! segment. Statistics are summed over the corpus before the geometric mean and the brevity
//! penalty are taken, so corpus BLEU is not the mean of sentence BLEUs.

use std::collections::HashMap;
use std::fmt;

use crate::tokenizer::{python_rstrip, python_split, tokenize_13a};
use crate::{check_line_counts, EvalError};

/// Highest n-gram order BLEU counts.
pub const MAX_NGRAM_ORDER: usize = 4;

/// sacrebleu's signature for the configuration this module implements.
const SIGNATURE: &str = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0";

/// Sufficient statistics of corpus BLEU: sums over sentence pairs, so they can be
/// accumulated batch by batch ([`add`](Self::add)) or combined ([`merge`](Self::merge)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BleuStats {
    sys_len: u64,
    ref_len: u64,
    counts: [u64; MAX_NGRAM_ORDER],
    totals: [u64; MAX_NGRAM_ORDER],
    segments: u64,
}

impl BleuStats {
    /// Adds one hypothesis and its reference, both detokenised text.
    ///
    /// Each side is right-stripped of (Python) whitespace and run through the `13a`
    /// tokeniser, as sacrebleu does; matching is case-sensitive.
    pub fn add(&mut self, hypothesis: &str, reference: &str) {
        let hypothesis = tokenize_13a(python_rstrip(hypothesis));
        let reference = tokenize_13a(python_rstrip(reference));
        let hyp_tokens: Vec<&str> = python_split(&hypothesis).collect();
        let ref_tokens: Vec<&str> = python_split(&reference).collect();

        self.sys_len += hyp_tokens.len() as u64;
        self.ref_len += ref_tokens.len() as u64;
        self.segments += 1;
        for n in 1..=MAX_NGRAM_ORDER {
            let ref_counts = ngram_counts(&ref_tokens, n);
            for (ngram, hyp_count) in ngram_counts(&hyp_tokens, n) {
                self.totals[n - 1] += hyp_count;
                // Clipped counts: a hypothesis n-gram matches at most as often as the
                // reference contains it.
                self.counts[n - 1] += hyp_count.min(ref_counts.get(ngram).copied().unwrap_or(0));
            }
        }
    }

    /// Adds statistics gathered elsewhere (another batch, another worker).
    pub fn merge(&mut self, other: &BleuStats) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.counts[n] += other.counts[n];
            self.totals[n] += other.totals[n];
        }
        self.segments += other.segments;
    }

    /// Number of sentence pairs added so far.
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Corpus BLEU of everything added so far. An empty corpus scores 0.
    pub fn score(&self) -> BleuScore {
        // Follows `BLEU.compute_bleu` line by line, including its order of floating-point
        // operations, so results agree to the last bit on the same libm.
        let (sys_len, ref_len) = (self.sys_len, self.ref_len);
        let bp = if sys_len < ref_len {
            if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut precisions = [0.0; MAX_NGRAM_ORDER];
        let mut score = 0.0;
        // sacrebleu stops early when nothing matches at all (sacrebleu issue #141).
        if self.counts.iter().any(|&c| c > 0) {
            // NIST's smoothing (Chen & Cherry 2014, method 3): the k-th order with no
            // match gets precision 1 / (2^k * total).
            let mut smooth_mteval = 1.0;
            for ((precision, &count), &total) in
                precisions.iter_mut().zip(&self.counts).zip(&self.totals)
            {
                if total == 0 {
                    // This and all higher orders keep precision 0, i.e. log 0.
                    break;
                }
                *precision = if count == 0 {
                    smooth_mteval *= 2.0;
                    100.0 / (smooth_mteval * total as f64)
                } else {
                    100.0 * count as f64 / total as f64
                };
            }
            let log_sum: f64 = precisions.iter().map(|&p| floored_log(p)).sum();
            score = bp * (log_sum / MAX_NGRAM_ORDER as f64).exp();
        }
        BleuScore {
            score,
            counts: self.counts,
            totals: self.totals,
            precisions,
            bp,
            sys_len,
            ref_len,
        }
    }
}

/// sacrebleu's `my_log`: `log(0)` is floored to `-9999999999` rather than `-inf`.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

fn ngram_counts<'a>(tokens: &'a [&'a str], n: usize) -> HashMap<&'a [&'a str], u64> {
    let mut counts = HashMap::new();
    for ngram in tokens.windows(n) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// A corpus BLEU score with the statistics it came from (sacrebleu's `BLEUScore`).
///
/// `Display` prints what sacrebleu's `BLEUScore.format()` prints, e.g.
/// `BLEU = 34.21 65.1/40.2/26.8/17.7 (BP = 1.000 ratio = 1.013 hyp_len = 1234 ref_len = 1218)`.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    /// BLEU in [0, 100].
    pub score: f64,
    /// Clipped matching n-grams for n = 1..=4.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams for n = 1..=4.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// Smoothed n-gram precisions in [0, 100]; all 0 when nothing matched.
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty in [0, 1].
    pub bp: f64,
    /// Hypothesis tokens in the corpus.
    pub sys_len: u64,
    /// Reference tokens in the corpus.
    pub ref_len: u64,
}

impl BleuScore {
    /// Hypothesis length over reference length (0 when the references are empty).
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }

    /// sacrebleu's reproducibility signature for this configuration:
    /// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
    pub fn signature(&self) -> &'static str {
        SIGNATURE
    }

    /// The line `sacrebleu --format text` prints:
    /// `BLEU|nrefs:1|…|version:2.6.0 = 34.21 65.1/40.2/26.8/17.7 (BP = …)`.
    pub fn format_with_signature(&self) -> String {
        let shown = self.to_string();
        let rest = shown.strip_prefix("BLEU = ").unwrap_or(&shown);
        format!("BLEU|{} = {rest}", self.signature())
    }
}

impl fmt::Display for BleuScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [p1, p2, p3, p4] = self.precisions;
        write!(
            f,
            "BLEU = {:.2} {p1:.1}/{p2:.1}/{p3:.1}/{p4:.1} (BP = {:.3} ratio = {:.3} \
             hyp_len = {} ref_len = {})",
            self.score,
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }
}

/// Corpus BLEU of `hypotheses` against one reference each, as `sacrebleu.corpus_bleu` with
/// its defaults.
///
/// # Errors
/// [`EvalError::LineCountMismatch`] when the two slices differ in length.
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[R],
) -> Result<BleuScore, EvalError> {
    check_line_counts(hypotheses.len(), references.len())?;
    let mut stats = BleuStats::default();
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
        let lines = [
            "Le chat dort sur le tapis.",
            "Il pleut, il fait froid.",
            "Oui !",
        ];
        let score = corpus_bleu(&lines, &lines).unwrap();
        // exp(mean(log(100))) is not exactly 100 in floating point; sacrebleu prints
        // 100.00000000000004 for this corpus too.
        assert_eq!(score.score, 100.00000000000004);
        assert_eq!(score.bp, 1.0);
        assert_eq!(score.counts, score.totals);
        assert_eq!(
            score.to_string(),
            "BLEU = 100.00 100.0/100.0/100.0/100.0 \
             (BP = 1.000 ratio = 1.000 hyp_len = 16 ref_len = 16)"
        );
    }

    #[test]
    fn empty_corpus_scores_zero() {
        let none: [&str; 0] = [];
        let score = corpus_bleu(&none, &none).unwrap();
        assert_eq!(score.score, 0.0);
        assert_eq!(score.bp, 1.0);
        assert_eq!(score.ratio(), 0.0);
        assert_eq!(
            score.to_string(),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 0.000 hyp_len = 0 ref_len = 0)"
        );
        // Only empty lines: still no NaN.
        let score = corpus_bleu(&["", ""], &["", "a b"]).unwrap();
        assert_eq!((score.score, score.bp), (0.0, 0.0));
    }

    #[test]
    fn clips_repeated_ngrams() {
        let mut stats = BleuStats::default();
        stats.add("the the the the", "the cat");
        let score = stats.score();
        assert_eq!(score.counts, [1, 0, 0, 0]);
        assert_eq!(score.totals, [4, 3, 2, 1]);
        assert_eq!((score.sys_len, score.ref_len), (4, 2));
    }

    #[test]
    fn exp_smoothing_halves_each_unmatched_order() {
        let mut stats = BleuStats::default();
        stats.add("a b c d e", "a b x y z");
        let score = stats.score();
        assert_eq!(score.counts, [2, 1, 0, 0]);
        assert_eq!(score.precisions, [40.0, 25.0, 100.0 / 6.0, 100.0 / 8.0]);
    }

    #[test]
    fn signature_ends_with_the_mirrored_version() {
        let score = BleuStats::default().score();
        assert!(score
            .signature()
            .ends_with(&format!("version:{}", crate::SACREBLEU_VERSION)));
    }
}
