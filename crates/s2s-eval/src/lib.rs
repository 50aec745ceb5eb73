//! Corpus-level BLEU and chrF that equal [sacrebleu] 2.6.0's defaults.
//!
//! Both metrics are sums of per-sentence sufficient statistics, so they are computed
//! incrementally: feed sentence pairs to [`BleuStats::add`] / [`ChrfStats::add`] batch by batch
//! (or [`merge`](BleuStats::merge) partial sums), then call `score()`. [`corpus_bleu`] and
//! [`corpus_chrf`] do the same in one call.
//!
//! - [`bleu`]: BLEU with sacrebleu's `13a` tokeniser, `exp` smoothing, no effective order,
//!   corpus brevity penalty, case-sensitive.
//! - [`chrf`]: chrF2 (character order 6, word order 0, beta 2, whitespace removed) with
//!   sacrebleu's effective-order averaging (`eps_smoothing=False`).
//! - [`tokenizer`]: the `13a` tokeniser and Python's notion of whitespace.
//!
//! ```
//! use s2s_eval::{corpus_bleu, BleuStats, ChrfStats, Metric};
//!
//! let hyps = ["Le chat dort sur le tapis.", "Il pleut."];
//! let refs = ["Le chat dort sur le tapis.", "Il pleut beaucoup."];
//!
//! // Validation: accumulate batch by batch, score once at the end (numbers from sacrebleu).
//! let (mut bleu, mut chrf) = (BleuStats::default(), ChrfStats::default());
//! for (hyp, reference) in hyps.iter().zip(&refs) {
//!     bleu.add(hyp, reference);
//!     chrf.add(hyp, reference);
//! }
//! let score = bleu.score();
//! assert_eq!(score, corpus_bleu(&hyps, &refs)?);
//! assert_eq!(
//!     score.to_string(),
//!     "BLEU = 83.61 100.0/87.5/83.3/100.0 (BP = 0.905 ratio = 0.909 hyp_len = 10 ref_len = 11)"
//! );
//! assert_eq!(chrf.score().to_string(), "chrF2 = 75.83");
//! assert_eq!("CHRF".parse::<Metric>()?, Metric::Chrf);
//! # Ok::<(), s2s_eval::EvalError>(())
//! ```
//!
//! Text is handled as Python handles `str`: one character is one Unicode scalar value.
//! Parity with sacrebleu is checked against golden numbers in `tests/fixtures/`.
//!
//! [sacrebleu]: https://github.com/mjpost/sacrebleu

pub mod bleu;
pub mod chrf;
mod error;
mod metric;
pub mod tokenizer;

pub use bleu::{corpus_bleu, BleuScore, BleuStats};
pub use chrf::{corpus_chrf, ChrfOrderStats, ChrfScore, ChrfStats};
pub use error::EvalError;
pub use metric::Metric;
pub use tokenizer::tokenize_13a;

/// The sacrebleu version whose defaults this crate reproduces; it ends every signature.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// Checks that there is exactly one reference per hypothesis.
fn check_line_counts(hypotheses: usize, references: usize) -> Result<(), EvalError> {
    if hypotheses == references {
        Ok(())
    } else {
        Err(EvalError::LineCountMismatch {
            hypotheses,
            references,
        })
    }
}
