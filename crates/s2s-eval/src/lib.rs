//! Corpus-level BLEU and chrF that equal [sacrebleu] 2.6.0's defaults, and ROUGE that equals
//! Google's [rouge-score] 0.1.2.
//!
//! Every metric is computed incrementally: feed sentence pairs to [`BleuStats::add`] /
//! [`ChrfStats::add`] / [`RougeStats::add`] batch by batch (or [`merge`](BleuStats::merge)
//! partial sums), then call `score()`. [`corpus_bleu`], [`corpus_chrf`] and [`corpus_rouge`]
//! do the same in one call.
//!
//! - [`bleu`]: BLEU with sacrebleu's `13a` tokeniser, `exp` smoothing, no effective order,
//!   corpus brevity penalty, case-sensitive.
//! - [`chrf`]: chrF2 (character order 6, word order 0, beta 2, whitespace removed) with
//!   sacrebleu's effective-order averaging (`eps_smoothing=False`).
//! - [`rouge`]: ROUGE-1/2/L/Lsum precision, recall and F1 of rouge-score's `RougeScorer`, with
//!   or without its Porter stemmer ([`porter`], NLTK 3.9.1's); rougeLsum splits sentences on
//!   newlines. The corpus score is the mean of per-segment scores, not rouge-score's random
//!   bootstrap aggregate.
//! - [`tokenizer`]: the `13a` tokeniser and Python's notion of whitespace.
//!
//! ```
//! use s2s_eval::{corpus_bleu, corpus_rouge, BleuStats, ChrfStats, Metric, RougeStats};
//!
//! let hyps = ["Le chat dort sur le tapis.", "Il pleut."];
//! let refs = ["Le chat dort sur le tapis.", "Il pleut beaucoup."];
//!
//! // Validation: accumulate batch by batch, score once at the end (numbers from sacrebleu).
//! let (mut bleu, mut chrf) = (BleuStats::default(), ChrfStats::default());
//! let mut rouge = RougeStats::new(true);
//! for (hyp, reference) in hyps.iter().zip(&refs) {
//!     bleu.add(hyp, reference);
//!     chrf.add(hyp, reference);
//!     rouge.add(hyp, reference);
//! }
//! let score = bleu.score();
//! assert_eq!(score, corpus_bleu(&hyps, &refs)?);
//! assert_eq!(
//!     score.to_string(),
//!     "BLEU = 83.61 100.0/87.5/83.3/100.0 (BP = 0.905 ratio = 0.909 hyp_len = 10 ref_len = 11)"
//! );
//! assert_eq!(chrf.score().to_string(), "chrF2 = 75.83");
//! // Numbers from rouge-score: the mean of 1.0 and 0.8 (F1 of "il pleut" vs "il pleut beaucoup").
//! assert_eq!(rouge.score(), corpus_rouge(&hyps, &refs, true)?);
//! assert_eq!(
//!     rouge.score().to_string(),
//!     "ROUGE-1 = 90.00 ROUGE-2 = 83.33 ROUGE-L = 90.00 ROUGE-Lsum = 90.00"
//! );
//! assert_eq!("CHRF".parse::<Metric>()?, Metric::Chrf);
//! # Ok::<(), s2s_eval::EvalError>(())
//! ```
//!
//! Text is handled as Python handles `str`: one character is one Unicode scalar value.
//! Parity with sacrebleu is checked against golden numbers in `tests/fixtures/`, with
//! rouge-score in `tests/fixtures/rouge/`.
//!
//! [sacrebleu]: https://github.com/mjpost/sacrebleu
//! [rouge-score]: https://github.com/google-research/google-research/tree/master/rouge

pub mod bleu;
pub mod chrf;
mod error;
mod exact_sum;
mod metric;
pub mod porter;
pub mod rouge;
pub mod tokenizer;

pub use bleu::{corpus_bleu, BleuScore, BleuStats};
pub use chrf::{corpus_chrf, ChrfOrderStats, ChrfScore, ChrfStats};
pub use error::EvalError;
pub use metric::Metric;
pub use porter::porter_stem;
pub use rouge::{
    corpus_rouge, rouge_pair, rouge_tokenize, RougeScore, RougeScores, RougeStats, RougeTriple,
};
pub use tokenizer::tokenize_13a;

/// The sacrebleu version whose defaults this crate reproduces; it ends every signature.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// The rouge-score version whose `RougeScorer` [`rouge`] reproduces; it ends ROUGE's signature.
pub const ROUGE_SCORE_VERSION: &str = "0.1.2";

/// The NLTK version whose default `PorterStemmer` [`porter`] reproduces.
pub const NLTK_VERSION: &str = "3.9.1";

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
