//! Why generation stopped, one sentence each.

/// Everything that can stop generation, each with one sentence for the user.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GenerateError {
    /// A setting, or a combination of settings, that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// The requested output does not fit the model's target positions.
    #[error(
        "max_new_tokens = {requested} needs {requested} target positions but the model has \
         {available}; lower max_new_tokens"
    )]
    TooLong {
        /// `max_new_tokens`, in tokens.
        requested: usize,
        /// The model's target positions, in tokens.
        available: usize,
    },
    /// The model's log-probabilities hold a NaN (NaN or infinite logits): nothing sensible can
    /// be generated from them. `position` counts output tokens from 1.
    #[error(
        "the model's scores are not finite (NaN) at output position {position}: its weights are \
         damaged or its training diverged (a NaN loss); retrain it or use an earlier checkpoint"
    )]
    NonFinite {
        /// The output token (from 1) whose scores hold a NaN.
        position: usize,
    },
    /// The constraints ban every token and the model gives `</s>` no probability at all, so no
    /// token can follow (see [`crate::logits`] for the rule that otherwise ends such a sequence).
    #[error(
        "no token can follow at output position {position}: no_repeat_ngram_size and \
         min_new_tokens ban every token and the model gives </s> zero probability; lower \
         no_repeat_ngram_size or min_new_tokens"
    )]
    NoCandidate {
        /// The output token (from 1) that has no possible value.
        position: usize,
    },
}
