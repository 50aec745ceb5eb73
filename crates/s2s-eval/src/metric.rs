//! Metric names as they appear on the command line (`--metrics bleu,chrf,rouge`).

use std::fmt;
use std::str::FromStr;

use crate::EvalError;

/// A corpus metric this crate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Corpus BLEU, see [`crate::bleu`].
    Bleu,
    /// Corpus chrF2, see [`crate::chrf`].
    Chrf,
    /// ROUGE-1/2/L/Lsum, means of per-segment scores, see [`crate::rouge`].
    Rouge,
}

impl Metric {
    /// Every metric, in the order they are usually reported.
    pub const ALL: [Metric; 3] = [Metric::Bleu, Metric::Chrf, Metric::Rouge];

    /// Names accepted by [`Metric::from_str`] (matched case-insensitively).
    pub const NAMES: &'static [&'static str] = &["bleu", "chrf", "rouge"];

    /// The lower-case name, as accepted by [`Metric::from_str`].
    pub fn name(self) -> &'static str {
        match self {
            Metric::Bleu => "bleu",
            Metric::Chrf => "chrf",
            Metric::Rouge => "rouge",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = EvalError;

    /// Parses `bleu`, `chrf` or `rouge`, ignoring case and surrounding spaces (so that
    /// `"bleu, chrf".split(',')` works).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Metric::ALL
            .into_iter()
            .find(|metric| metric.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| EvalError::UnknownMetric {
                name: s.to_string(),
                valid: Metric::NAMES,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_case_insensitively() {
        assert_eq!("bleu".parse::<Metric>().unwrap(), Metric::Bleu);
        assert_eq!("BLEU".parse::<Metric>().unwrap(), Metric::Bleu);
        assert_eq!("ChrF".parse::<Metric>().unwrap(), Metric::Chrf);
        assert_eq!(" chrf ".parse::<Metric>().unwrap(), Metric::Chrf);
        assert_eq!("Rouge".parse::<Metric>().unwrap(), Metric::Rouge);
        let parsed: Vec<Metric> = "bleu,chrf,rouge"
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(parsed, Metric::ALL);
        for metric in Metric::ALL {
            assert_eq!(metric.to_string().parse::<Metric>().unwrap(), metric);
        }
    }

    #[test]
    fn unknown_name_is_one_sentence_listing_valid_names() {
        let err = "ter".parse::<Metric>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown metric \"ter\"; valid metrics are: bleu, chrf, rouge"
        );
        assert!("".parse::<Metric>().is_err());
        assert!("chrf++".parse::<Metric>().is_err());
        assert!("rougeL".parse::<Metric>().is_err());
    }
}
