//! What every strategy returns, and the score it is ranked by. Its own module, below both the
//! entry point and the search loops, so that they share it without importing each other.

use serde::Serialize;

/// One generated sequence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hypothesis {
    /// Generated ids, without `<s>` and `</s>`.
    pub tokens: Vec<u32>,
    /// `log_prob / length^α`, the ranking score, where length counts `</s>` and α is the
    /// beam's `length_penalty` (1 for greedy decoding and sampling).
    pub score: f64,
    /// Sum of the log-probabilities of the generated tokens, `</s>` included.
    pub log_prob: f64,
    /// Whether it ended with `</s>` (false: cut at `max_new_tokens`).
    pub finished: bool,
}

/// The ranking score `log_prob / length^length_penalty` (HF's `BeamHypotheses.add`), with
/// `length` in tokens, `</s>` included, and at least 1.
pub(crate) fn normalised(log_prob: f64, length: usize, length_penalty: f64) -> f64 {
    log_prob / (length.max(1) as f64).powf(length_penalty)
}
