//! What to generate: the decoding strategy as data, and the HF-style flat settings (the
//! `[generation]` section of an experiment config and the `s2s generate` flags) that resolve to
//! it.

use serde::{Deserialize, Serialize};

use crate::error::GenerateError;

/// How the next token is chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum DecodeStrategy {
    /// The most probable token at every step.
    Greedy,
    /// Batched beam search (sentences × beams in one tensor).
    Beam {
        /// Hypotheses kept per sentence.
        num_beams: usize,
        /// α in `score = Σ log p / length^α` (length counts `</s>`), as HF and fairseq; > 0
        /// favours longer outputs.
        length_penalty: f64,
        /// Stop a sentence as soon as `num_beams` hypotheses are finished; otherwise stop when
        /// no running beam can still beat the worst finished one (HF's `early_stopping=False`).
        early_stopping: bool,
        /// Best finished hypotheses returned per sentence (≤ `num_beams`).
        num_return_sequences: usize,
    },
    /// Ancestral sampling from the filtered distribution.
    Sample {
        /// Logits are divided by it; < 1 sharpens, > 1 flattens.
        temperature: f64,
        /// Keep only the `top_k` most probable tokens (0 = all).
        top_k: usize,
        /// Keep the smallest set of most probable tokens whose mass reaches `top_p` (1 = all).
        top_p: f64,
        /// Seed of the per-sequence random streams: the same seed gives the same samples,
        /// whatever the batch size.
        seed: u64,
        /// Independent samples drawn per sentence.
        num_return_sequences: usize,
    },
}

/// A resolved, validated request for [`crate::generate()`].
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    /// Greedy, beam search or sampling, with its settings.
    pub strategy: DecodeStrategy,
    /// Most tokens generated per sequence, `</s>` included.
    pub max_new_tokens: usize,
    /// `</s>` is forbidden until this many tokens were generated.
    pub min_new_tokens: usize,
    /// No n-gram of this size (counting `<s>`) occurs twice in an output; 0 = off.
    pub no_repeat_ngram_size: usize,
    /// Sources decoded together (sorted by length first, so padding stays small).
    pub batch_size: usize,
}

impl GenerationConfig {
    /// Greedy decoding of up to `max_new_tokens` tokens, batches of 32.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            strategy: DecodeStrategy::Greedy,
            max_new_tokens,
            min_new_tokens: 0,
            no_repeat_ngram_size: 0,
            batch_size: 32,
        }
    }

    /// Sets the strategy.
    pub fn with_strategy(mut self, strategy: DecodeStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Hypotheses returned per source.
    pub fn num_return_sequences(&self) -> usize {
        match self.strategy {
            DecodeStrategy::Greedy => 1,
            DecodeStrategy::Beam {
                num_return_sequences,
                ..
            }
            | DecodeStrategy::Sample {
                num_return_sequences,
                ..
            } => num_return_sequences,
        }
    }

    /// Checks every value and combination.
    ///
    /// # Errors
    /// [`GenerateError::Invalid`], one sentence naming the setting: `max_new_tokens` or
    /// `batch_size` of 0, `min_new_tokens > max_new_tokens`, `num_beams` of 0, a non-finite
    /// `length_penalty`, `num_return_sequences` outside `1..=num_beams` (beam search) or 0
    /// (sampling), a temperature that is not a positive number, `top_p` outside (0, 1].
    pub fn validate(&self) -> Result<(), GenerateError> {
        let invalid = |m: String| Err(GenerateError::Invalid(m));
        if self.max_new_tokens == 0 {
            return invalid("max_new_tokens must be at least 1".into());
        }
        if self.min_new_tokens > self.max_new_tokens {
            return invalid(format!(
                "min_new_tokens ({}) cannot exceed max_new_tokens ({})",
                self.min_new_tokens, self.max_new_tokens
            ));
        }
        if self.batch_size == 0 {
            return invalid("batch_size must be at least 1".into());
        }
        match self.strategy {
            DecodeStrategy::Greedy => Ok(()),
            DecodeStrategy::Beam {
                num_beams,
                length_penalty,
                num_return_sequences,
                ..
            } => {
                if num_beams == 0 {
                    return invalid("num_beams must be at least 1".into());
                }
                if !length_penalty.is_finite() {
                    return invalid(format!(
                        "length_penalty must be a finite number, got {length_penalty}"
                    ));
                }
                if num_return_sequences == 0 || num_return_sequences > num_beams {
                    return invalid(format!(
                        "num_return_sequences ({num_return_sequences}) must be between 1 and \
                         num_beams ({num_beams})"
                    ));
                }
                Ok(())
            }
            DecodeStrategy::Sample {
                temperature,
                top_p,
                num_return_sequences,
                ..
            } => {
                if !(temperature.is_finite() && temperature > 0.0) {
                    return invalid(format!(
                        "temperature must be a positive number, got {temperature}"
                    ));
                }
                if !(top_p > 0.0 && top_p <= 1.0) {
                    return invalid(format!("top_p must be in (0, 1], got {top_p}"));
                }
                if num_return_sequences == 0 {
                    return invalid("num_return_sequences must be at least 1".into());
                }
                Ok(())
            }
        }
    }
}

/// Generation settings named as in HF `GenerationConfig`: the `[generation]` section of an
/// experiment config, overridden flag by flag on the command line. `do_sample` picks sampling,
/// `num_beams > 1` beam search, neither greedy decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    /// Most tokens generated per sequence, `</s>` included. Default: the run's
    /// `data.max_target_len`.
    pub max_new_tokens: Option<usize>,
    /// `</s>` is forbidden until this many tokens were generated. Default: 0.
    pub min_new_tokens: usize,
    /// Beams per sentence; more than 1 selects beam search. Default: 1.
    pub num_beams: usize,
    /// Beam search's α in `Σ log p / length^α`. Default: 1.
    pub length_penalty: f64,
    /// Beam search stops a sentence once `num_beams` hypotheses are finished. Default: false.
    pub early_stopping: bool,
    /// Hypotheses returned per source (≤ `num_beams`, or samples drawn). Default: 1.
    pub num_return_sequences: usize,
    /// Sample instead of searching. Default: false.
    pub do_sample: bool,
    /// Sampling temperature (> 0). Default: 1.
    pub temperature: f64,
    /// Sample among the `top_k` most probable tokens, 0 = all. Default: 50.
    pub top_k: usize,
    /// Sample among the most probable tokens whose mass reaches `top_p`, in (0, 1]. Default: 1.
    pub top_p: f64,
    /// Seed of the sampling streams. Default: 0.
    pub seed: u64,
    /// No n-gram of this size (counting `<s>`) occurs twice in an output, 0 = off. Default: 0.
    pub no_repeat_ngram_size: usize,
    /// Sources decoded together. Default: 32.
    pub batch_size: usize,
}

impl Default for GenerationSettings {
    /// HF's defaults: greedy, `length_penalty = 1`, `early_stopping = false`, and for sampling
    /// `temperature = 1`, `top_k = 50`, `top_p = 1`.
    fn default() -> Self {
        Self {
            max_new_tokens: None,
            min_new_tokens: 0,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: false,
            num_return_sequences: 1,
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            seed: 0,
            no_repeat_ngram_size: 0,
            batch_size: 32,
        }
    }
}

impl GenerationSettings {
    /// Resolves the strategy and validates; `default_max_new_tokens` applies when
    /// `max_new_tokens` is unset.
    ///
    /// # Errors
    /// [`GenerateError::Invalid`] for a setting that would be silently ignored (sampling
    /// settings without `do_sample`, beam settings without beam search, `do_sample` with
    /// `num_beams > 1`, `num_return_sequences > 1` for greedy decoding) and for every check of
    /// [`GenerationConfig::validate`].
    pub fn resolve(
        &self,
        default_max_new_tokens: usize,
    ) -> Result<GenerationConfig, GenerateError> {
        let defaults = Self::default();
        let invalid = |m: &str| Err(GenerateError::Invalid(m.into()));
        let strategy = if self.do_sample {
            if self.num_beams > 1 {
                return invalid(
                    "do_sample cannot be combined with num_beams > 1 (beam sampling is not \
                     supported); choose sampling or beam search",
                );
            }
            if self.length_penalty != defaults.length_penalty || self.early_stopping {
                return invalid("length_penalty and early_stopping only apply to beam search");
            }
            DecodeStrategy::Sample {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                seed: self.seed,
                num_return_sequences: self.num_return_sequences,
            }
        } else {
            if self.temperature != defaults.temperature
                || self.top_k != defaults.top_k
                || self.top_p != defaults.top_p
            {
                return invalid("temperature, top_k and top_p only apply with do_sample");
            }
            if self.num_beams > 1 {
                DecodeStrategy::Beam {
                    num_beams: self.num_beams,
                    length_penalty: self.length_penalty,
                    early_stopping: self.early_stopping,
                    num_return_sequences: self.num_return_sequences,
                }
            } else {
                if self.num_return_sequences > 1 {
                    return Err(GenerateError::Invalid(format!(
                        "num_return_sequences ({}) cannot exceed num_beams ({}) without \
                         do_sample",
                        self.num_return_sequences, self.num_beams
                    )));
                }
                if self.length_penalty != defaults.length_penalty || self.early_stopping {
                    return invalid(
                        "length_penalty and early_stopping only apply to beam search \
                         (num_beams > 1)",
                    );
                }
                if self.num_beams == 0 {
                    return invalid("num_beams must be at least 1");
                }
                DecodeStrategy::Greedy
            }
        };
        let config = GenerationConfig {
            strategy,
            max_new_tokens: self.max_new_tokens.unwrap_or(default_max_new_tokens),
            min_new_tokens: self.min_new_tokens,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            batch_size: self.batch_size,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_resolve_to_the_strategy_hf_would_pick() {
        let s = GenerationSettings::default();
        assert_eq!(s.resolve(20).unwrap().strategy, DecodeStrategy::Greedy);
        assert_eq!(s.resolve(20).unwrap().max_new_tokens, 20);
        let beam = GenerationSettings {
            num_beams: 4,
            num_return_sequences: 2,
            length_penalty: 0.6,
            max_new_tokens: Some(7),
            ..s.clone()
        };
        let config = beam.resolve(20).unwrap();
        assert_eq!(config.max_new_tokens, 7);
        assert_eq!(
            config.strategy,
            DecodeStrategy::Beam {
                num_beams: 4,
                length_penalty: 0.6,
                early_stopping: false,
                num_return_sequences: 2
            }
        );
        let sample = GenerationSettings {
            do_sample: true,
            top_p: 0.9,
            seed: 3,
            ..s
        };
        assert!(matches!(
            sample.resolve(20).unwrap().strategy,
            DecodeStrategy::Sample {
                top_k: 50,
                seed: 3,
                ..
            }
        ));
    }

    #[test]
    fn bad_combinations_are_one_sentence_naming_the_setting() {
        let s = GenerationSettings::default();
        let cases = [
            (
                GenerationSettings {
                    do_sample: true,
                    top_p: 1.5,
                    ..s.clone()
                },
                "top_p must be in (0, 1], got 1.5",
            ),
            (
                GenerationSettings {
                    do_sample: true,
                    top_p: 0.0,
                    ..s.clone()
                },
                "top_p must be in (0, 1], got 0",
            ),
            (
                GenerationSettings {
                    num_beams: 2,
                    num_return_sequences: 3,
                    ..s.clone()
                },
                "num_return_sequences (3) must be between 1 and num_beams (2)",
            ),
            (
                GenerationSettings {
                    num_return_sequences: 2,
                    ..s.clone()
                },
                "num_return_sequences (2) cannot exceed num_beams (1) without do_sample",
            ),
            (
                GenerationSettings {
                    do_sample: true,
                    num_beams: 4,
                    ..s.clone()
                },
                "do_sample cannot be combined",
            ),
            (
                GenerationSettings {
                    temperature: 0.5,
                    ..s.clone()
                },
                "only apply with do_sample",
            ),
            (
                GenerationSettings {
                    do_sample: true,
                    temperature: 0.0,
                    ..s.clone()
                },
                "temperature must be a positive number, got 0",
            ),
            (
                GenerationSettings {
                    min_new_tokens: 9,
                    max_new_tokens: Some(4),
                    ..s.clone()
                },
                "min_new_tokens (9) cannot exceed max_new_tokens (4)",
            ),
            (
                GenerationSettings {
                    max_new_tokens: Some(0),
                    ..s.clone()
                },
                "max_new_tokens must be at least 1",
            ),
            (
                GenerationSettings {
                    batch_size: 0,
                    ..s.clone()
                },
                "batch_size must be at least 1",
            ),
            (
                GenerationSettings {
                    length_penalty: 2.0,
                    ..s.clone()
                },
                "only apply to beam search",
            ),
        ];
        for (settings, expected) in cases {
            let message = settings.resolve(20).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "{settings:?}: got {message:?}, expected {expected:?}"
            );
            assert!(!message.contains('\n'), "one sentence: {message:?}");
        }
    }

    #[test]
    fn unknown_toml_keys_are_refused() {
        let err = toml::from_str::<GenerationSettings>("num_beam = 4").unwrap_err();
        assert!(err.to_string().contains("num_beam"), "{err}");
        let ok: GenerationSettings = toml::from_str("num_beams = 4\nlength_penalty = 0.6").unwrap();
        assert_eq!(ok.num_beams, 4);
        assert_eq!(ok.top_k, 50);
    }
}
