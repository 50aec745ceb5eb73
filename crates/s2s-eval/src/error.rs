//! Errors of the evaluation crate.

/// Everything that can go wrong when scoring a corpus or naming a metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Hypotheses and references must pair up line by line.
    #[error(
        "got {hypotheses} hypothesis lines but {references} reference lines; \
         each hypothesis needs exactly one reference"
    )]
    LineCountMismatch {
        /// Number of hypothesis lines.
        hypotheses: usize,
        /// Number of reference lines.
        references: usize,
    },
    /// A metric name that is not one of [`crate::Metric::NAMES`].
    #[error("unknown metric \"{name}\"; valid metrics are: {}", valid.join(", "))]
    UnknownMetric {
        /// The name as given.
        name: String,
        /// The names that would have been accepted.
        valid: &'static [&'static str],
    },
}
