//! Tokenised pairs, length limits and the burn `Dataset` the data loader reads.

use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::{DataError, SentencePair, TokenizerPair};

/// Token ids of one pair: the source as the encoder reads it (its specials included, e.g.
/// `x1 … xm </s>` or `[CLS] x1 … xm [SEP]`), the target without specials (the batcher adds
/// `<s>` and `</s>` for teacher forcing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedPair {
    pub source: Vec<u32>,
    pub target: Vec<u32>,
}

/// What to do with a pair longer than the limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthPolicy {
    /// Drop the pair. Default.
    #[default]
    Filter,
    /// Keep the first tokens that fit.
    Truncate,
}

/// The [`LengthPolicy`] of each side. Written as one policy for both sides (`"truncate"`) or
/// as a table (`{ source = "truncate", target = "filter" }`, a missing side is `filter`), so
/// that long sources (documents to summarize) can be cut while over-long targets are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SidePoliciesRepr")]
pub struct SidePolicies {
    /// Applied to sources longer than `max_source_len`.
    pub source: LengthPolicy,
    /// Applied to targets longer than `max_target_len`.
    pub target: LengthPolicy,
}

impl SidePolicies {
    /// The same policy on both sides.
    pub fn both(policy: LengthPolicy) -> Self {
        Self {
            source: policy,
            target: policy,
        }
    }
}

impl From<LengthPolicy> for SidePolicies {
    fn from(policy: LengthPolicy) -> Self {
        Self::both(policy)
    }
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "\"filter\", \"truncate\", or a table { source = \"filter\" | \"truncate\", \
                 target = \"filter\" | \"truncate\" }"
)]
enum SidePoliciesRepr {
    Both(LengthPolicy),
    Sides(SidesTable),
}

/// The table form; a misspelt side is refused, not read as `filter`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SidesTable {
    #[serde(default)]
    source: LengthPolicy,
    #[serde(default)]
    target: LengthPolicy,
}

impl From<SidePoliciesRepr> for SidePolicies {
    fn from(repr: SidePoliciesRepr) -> Self {
        match repr {
            SidePoliciesRepr::Both(policy) => Self::both(policy),
            SidePoliciesRepr::Sides(SidesTable { source, target }) => Self { source, target },
        }
    }
}

/// Maximum sequence lengths, counting the specials: a source gets `</s>` appended (or
/// `[CLS]`/`[SEP]` around it with a BERT encoder), a target `<s>` and `</s>`. So a BPE source of
/// `max_source_len - 1` tokens and a target of `max_target_len - 2` tokens fit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthLimits {
    pub max_source_len: usize,
    pub max_target_len: usize,
    /// What happens to a side over its limit. Default: `filter` on both sides.
    #[serde(default)]
    pub policy: SidePolicies,
}

impl LengthLimits {
    /// Checks that at least one real token fits on each side.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.max_source_len < 2 || self.max_target_len < 3 {
            return Err(DataError::LengthLimits {
                max_source_len: self.max_source_len,
                max_target_len: self.max_target_len,
            });
        }
        Ok(())
    }

    /// Most source tokens that fit next to `specials` special tokens.
    pub fn source_budget(&self, specials: usize) -> usize {
        self.max_source_len.saturating_sub(specials)
    }

    /// Most target tokens that fit once `<s>` and `</s>` are added.
    pub fn target_budget(&self) -> usize {
        self.max_target_len.saturating_sub(2)
    }
}

/// What [`tokenize_pairs`] did to the input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthStats {
    /// Pairs given.
    pub total: usize,
    /// Pairs returned.
    pub kept: usize,
    /// Pairs with a side that tokenised to nothing (dropped under either policy).
    pub empty: usize,
    /// Pairs with a side longer than its limit: dropped when that side's policy is `filter`,
    /// cut otherwise.
    pub too_long: usize,
    /// Longest source seen before any cut, specials included.
    pub longest_source: usize,
    /// Longest target seen before any cut, specials included.
    pub longest_target: usize,
    /// Index in the input of each returned pair (to find its raw text, e.g. a BLEU reference).
    pub kept_indices: Vec<usize>,
}

/// Tokenises every pair once, applying `limits`. Empty sides are dropped; the affected counts
/// are logged and returned.
pub fn tokenize_pairs(
    pairs: &[SentencePair],
    tokenizers: &TokenizerPair,
    limits: &LengthLimits,
) -> Result<(Vec<TokenizedPair>, LengthStats), DataError> {
    limits.validate()?;
    let specials = tokenizers.source.num_specials();
    if limits.source_budget(specials) == 0 {
        return Err(DataError::SourceTooShort {
            max_source_len: limits.max_source_len,
            specials,
        });
    }
    let mut stats = LengthStats {
        total: pairs.len(),
        ..LengthStats::default()
    };
    let mut out = Vec::with_capacity(pairs.len());
    for (index, pair) in pairs.iter().enumerate() {
        let mut source = tokenizers.source.encode(&pair.source)?;
        let mut target = tokenizers.target.encode(&pair.target)?;
        if source.is_empty() || target.is_empty() {
            stats.empty += 1;
            continue;
        }
        stats.longest_source = stats.longest_source.max(source.len() + specials);
        stats.longest_target = stats.longest_target.max(target.len() + 2);
        let (source_budget, target_budget) =
            (limits.source_budget(specials), limits.target_budget());
        let source_long = source.len() > source_budget;
        let target_long = target.len() > target_budget;
        if source_long || target_long {
            stats.too_long += 1;
            let filter = |long: bool, policy: LengthPolicy| long && policy == LengthPolicy::Filter;
            if filter(source_long, limits.policy.source)
                || filter(target_long, limits.policy.target)
            {
                continue;
            }
            source.truncate(source_budget);
            target.truncate(target_budget);
        }
        out.push(TokenizedPair {
            source: tokenizers.source.wrap(&source),
            target,
        });
        stats.kept_indices.push(index);
    }
    stats.kept = out.len();
    tracing::info!(
        total = stats.total,
        kept = stats.kept,
        empty = stats.empty,
        too_long = stats.too_long,
        source_policy = ?limits.policy.source,
        target_policy = ?limits.policy.target,
        max_source_len = limits.max_source_len,
        max_target_len = limits.max_target_len,
        "tokenized sentence pairs"
    );
    Ok((out, stats))
}

/// Tokenised pairs held in memory, as a burn [`Dataset`].
#[derive(Clone, Debug, Default)]
pub struct Seq2SeqDataset {
    items: Vec<TokenizedPair>,
}

impl Seq2SeqDataset {
    pub fn new(items: Vec<TokenizedPair>) -> Self {
        Self { items }
    }

    /// All pairs, in order (for length bucketing or statistics).
    pub fn items(&self) -> &[TokenizedPair] {
        &self.items
    }
}

impl Dataset<TokenizedPair> for Seq2SeqDataset {
    fn get(&self, index: usize) -> Option<TokenizedPair> {
        self.items.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tokenizers() -> TokenizerPair {
        // Every word occurs at the start and inside a sentence, so each is one token in both
        // byte-level forms ("un" and "Ġun").
        let mut corpus = vec![SentencePair::new(
            "one two three four five",
            "un deux trois quatre cinq",
        )];
        for (s, t) in ["two", "three", "four", "five"]
            .into_iter()
            .zip(["deux", "trois", "quatre", "cinq"])
        {
            corpus.push(SentencePair::new(format!("{s} one"), format!("{t} un")));
        }
        TokenizerPair::train(&corpus, true, 1000, 1).unwrap()
    }

    /// Pairs whose lengths are known: each word is one token after training on them.
    fn pairs(tok: &TokenizerPair) -> Vec<SentencePair> {
        let pairs = vec![
            SentencePair::new("one", "un"),                      // 1 / 1
            SentencePair::new("one two three", "un deux"),       // 3 / 2
            SentencePair::new("four", "un deux trois quatre"),   // 1 / 4
            SentencePair::new("", "un"),                         // empty source
            SentencePair::new("four five", "quatre cinq trois"), // 2 / 3
        ];
        // Guard the premise of the counts below.
        let lens: Vec<(usize, usize)> = pairs
            .iter()
            .map(|p| {
                (
                    tok.source.encode(&p.source).unwrap().len(),
                    tok.target.encode(&p.target).unwrap().len(),
                )
            })
            .collect();
        assert_eq!(lens, vec![(1, 1), (3, 2), (1, 4), (0, 1), (2, 3)]);
        pairs
    }

    #[test]
    fn filter_drops_and_truncate_cuts() {
        let tok = tokenizers();
        let pairs = pairs(&tok);
        // Budgets: 2 source tokens (+</s>), 3 target tokens (+<s>,</s>).
        let mut limits = LengthLimits {
            max_source_len: 3,
            max_target_len: 5,
            policy: SidePolicies::default(),
        };
        let (kept, stats) = tokenize_pairs(&pairs, &tok, &limits).unwrap();
        assert_eq!(
            stats,
            LengthStats {
                total: 5,
                kept: 2,
                empty: 1,
                too_long: 2,
                longest_source: 4,
                longest_target: 6,
                kept_indices: vec![0, 4],
            }
        );
        assert_eq!(kept.len(), 2);
        let with_eos = |text: &str| tok.source.wrap(&tok.source.encode(text).unwrap());
        assert_eq!(kept[0].source, with_eos("one"));
        assert_eq!(kept[0].source.last(), Some(&s2s_model::special::EOS));
        assert_eq!(
            kept[1].target,
            tok.target.encode("quatre cinq trois").unwrap()
        );

        limits.policy = LengthPolicy::Truncate.into();
        let (kept, stats) = tokenize_pairs(&pairs, &tok, &limits).unwrap();
        assert_eq!((stats.kept, stats.empty, stats.too_long), (4, 1, 2));
        assert_eq!(
            kept.iter()
                .map(|p| (p.source.len(), p.target.len()))
                .collect::<Vec<_>>(),
            vec![(2, 1), (3, 2), (2, 3), (3, 3)]
        );
        assert_eq!(kept[1].source, with_eos("one two"));

        // Per side: the long source ("one two three") is cut, the long target (4 tokens) drops
        // its pair.
        limits.policy = SidePolicies {
            source: LengthPolicy::Truncate,
            target: LengthPolicy::Filter,
        };
        let (kept, stats) = tokenize_pairs(&pairs, &tok, &limits).unwrap();
        assert_eq!((stats.kept, stats.too_long), (3, 2));
        assert_eq!(stats.kept_indices, vec![0, 1, 4]);
        assert_eq!(kept[1].source, with_eos("one two"));
        assert_eq!(kept[1].target, tok.target.encode("un deux").unwrap());
    }

    #[test]
    fn limits_that_hold_no_token_are_refused() {
        let limits = LengthLimits {
            max_source_len: 1,
            max_target_len: 5,
            policy: SidePolicies::default(),
        };
        assert!(matches!(
            tokenize_pairs(&[], &tokenizers(), &limits),
            Err(DataError::LengthLimits { .. })
        ));
    }

    #[test]
    fn dataset_serves_items() {
        let item = TokenizedPair {
            source: vec![5, 6],
            target: vec![7],
        };
        let ds = Seq2SeqDataset::new(vec![item.clone()]);
        assert_eq!(ds.len(), 1);
        assert_eq!(ds.get(0), Some(item));
        assert_eq!(ds.get(1), None);
    }

    #[test]
    fn policy_reads_from_toml_style_strings() {
        let limits: LengthLimits = serde_json::from_str(
            r#"{"max_source_len": 8, "max_target_len": 9, "policy": "truncate"}"#,
        )
        .unwrap();
        assert_eq!(limits.policy, SidePolicies::both(LengthPolicy::Truncate));
        let limits: LengthLimits =
            serde_json::from_str(r#"{"max_source_len": 8, "max_target_len": 9}"#).unwrap();
        assert_eq!(limits.policy, SidePolicies::both(LengthPolicy::Filter));
        let limits: LengthLimits = serde_json::from_str(
            r#"{"max_source_len": 8, "max_target_len": 9, "policy": {"source": "truncate"}}"#,
        )
        .unwrap();
        let sides = SidePolicies {
            source: LengthPolicy::Truncate,
            target: LengthPolicy::Filter,
        };
        assert_eq!(limits.policy, sides);
        // Written back as a table, read back unchanged.
        let json = serde_json::to_string(&limits).unwrap();
        assert_eq!(serde_json::from_str::<LengthLimits>(&json).unwrap(), limits);
        let err = serde_json::from_str::<LengthLimits>(
            r#"{"max_source_len": 8, "max_target_len": 9, "policy": "cut"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"filter\", \"truncate\", or a table"),
            "{err}"
        );
        let typo = r#"{"max_source_len": 8, "max_target_len": 9, "policy": {"sorce": "truncate"}}"#;
        assert!(serde_json::from_str::<LengthLimits>(typo).is_err());
    }
}
