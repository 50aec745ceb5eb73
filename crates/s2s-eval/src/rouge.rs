//! ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum (Lin, 2004) exactly as Google's `rouge-score`
//! 0.1.2 computes them.
//!
//! Mirrors `rouge_score/rouge_scorer.py`, `tokenize.py` and `scoring.py`:
//! `RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=...,
//! split_summaries=False).score(reference, hypothesis)`, one reference per segment.
//!
//! - Tokens: the text is lowercased (Python's `str.lower()`), every run of characters other
//!   than `a-z0-9` becomes a separator, and with the stemmer on, tokens longer than three
//!   characters go through NLTK's Porter stemmer ([`crate::porter`]). Other scripts vanish:
//!   `café` gives `caf`, and Chinese or Japanese text gives no tokens at all.
//! - ROUGE-N: clipped n-gram overlap over the hypothesis's (precision) and the reference's
//!   (recall) n-gram counts; ROUGE-L: longest common subsequence of the two token sequences.
//! - ROUGE-Lsum: summary-level LCS over sentences split on `"\n"` only (`split_summaries=False`;
//!   no `nltk.sent_tokenize`): each reference sentence's union of LCSs with every hypothesis
//!   sentence, each token counted at most as often as both texts contain it. On one-line
//!   texts it equals ROUGE-L.
//! - F1 is `2 * p * r / (p + r)`; an empty hypothesis or reference scores 0.
//!
//! Corpus scores are the **mean of per-segment scores** (precision, recall and F1 each
//! averaged on its own), not the bootstrap resampling mid of rouge-score's
//! `BootstrapAggregator`, which is random. The sums are exact (as Python's `math.fsum`), so
//! the mean does not depend on the order of segments or on how batches were merged.

use std::collections::HashMap;
use std::fmt;

use crate::exact_sum::ExactSum;
use crate::porter::porter_stem;
use crate::{check_line_counts, EvalError, ROUGE_SCORE_VERSION};

/// rouge-score's names of the four variants, in the order [`RougeScores::named`] lists them.
pub const ROUGE_TYPES: [&str; 4] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

/// One ROUGE variant's scores in [0, 1], as rouge-score's `Score(precision, recall, fmeasure)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RougeTriple {
    /// Matches over the hypothesis's n-grams or tokens.
    pub precision: f64,
    /// Matches over the reference's n-grams or tokens.
    pub recall: f64,
    /// Harmonic mean of precision and recall (F1).
    pub fmeasure: f64,
}

impl RougeTriple {
    /// rouge-score's `Score` of a precision and a recall, with `scoring.fmeasure`'s F1
    /// (same operations in the same order, so the same bits).
    fn new(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// ROUGE-1/2/L/Lsum for one segment, or means over segments.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RougeScores {
    /// Unigram overlap.
    pub rouge1: RougeTriple,
    /// Bigram overlap.
    pub rouge2: RougeTriple,
    /// Longest common subsequence of the whole texts.
    pub rouge_l: RougeTriple,
    /// Summary-level LCS over `"\n"`-separated sentences.
    pub rouge_lsum: RougeTriple,
}

impl RougeScores {
    /// The four variants under rouge-score's names (`rouge1`, `rouge2`, `rougeL`,
    /// `rougeLsum`).
    pub fn named(&self) -> [(&'static str, RougeTriple); 4] {
        let [r1, r2, rl, rlsum] = ROUGE_TYPES;
        [
            (r1, self.rouge1),
            (r2, self.rouge2),
            (rl, self.rouge_l),
            (rlsum, self.rouge_lsum),
        ]
    }

    fn variants(&self) -> [RougeTriple; 4] {
        self.named().map(|(_, triple)| triple)
    }
}

/// Tokenises `text` as rouge-score's default tokenizer does (`tokenize.tokenize`): lowercase,
/// every run of characters other than `a-z0-9` is a separator, and with `use_stemmer` tokens
/// longer than three characters are replaced by their Porter stem ([`porter_stem`]).
///
/// Only ASCII letters and digits survive, but lowercasing can make them out of other
/// characters, as Python's `str.lower()` does: `İ` becomes `i` + U+0307 (so `İzmir` gives
/// `i`, `zmir`) and the Kelvin sign `K` becomes `k`.
///
/// ```
/// use s2s_eval::rouge_tokenize;
///
/// let text = "The cats' café, 2nd floor!";
/// assert_eq!(rouge_tokenize(text, false), ["the", "cats", "caf", "2nd", "floor"]);
/// assert_eq!(rouge_tokenize(text, true), ["the", "cat", "caf", "2nd", "floor"]);
/// ```
pub fn rouge_tokenize(text: &str, use_stemmer: bool) -> Vec<String> {
    let separated: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if is_token_char(c) { c } else { ' ' })
        .collect();
    separated
        .split(' ')
        .filter(|token| !token.is_empty())
        .map(|token| {
            if use_stemmer && token.len() > 3 {
                porter_stem(token)
            } else {
                token.to_string()
            }
        })
        // rouge-score's final `^[a-z0-9]+$` check; stems of such tokens always pass it.
        .filter(|token| !token.is_empty() && token.chars().all(is_token_char))
        .collect()
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// ROUGE-1/2/L/Lsum of one hypothesis against its reference, as rouge-score's
/// `RougeScorer(..., use_stemmer).score(reference, hypothesis)` (note its argument order:
/// reference first).
///
/// ```
/// use s2s_eval::rouge_pair;
///
/// let scores = rouge_pair("the cat sat\non the mat", "on the mat\nthe cat sat", false);
/// assert_eq!(scores.rouge1.fmeasure, 1.0);
/// assert_eq!(scores.rouge2.precision, 0.8);
/// assert_eq!(scores.rouge_l.recall, 0.5);
/// assert_eq!(scores.rouge_lsum.fmeasure, 1.0);
/// ```
pub fn rouge_pair(hypothesis: &str, reference: &str, use_stemmer: bool) -> RougeScores {
    let mut vocabulary = Vocabulary::default();
    let hypothesis = vocabulary.text(hypothesis, use_stemmer);
    let reference = vocabulary.text(reference, use_stemmer);
    let (hyp_tokens, ref_tokens) = (hypothesis.concat(), reference.concat());
    RougeScores {
        rouge1: rouge_n(&hyp_tokens, &ref_tokens, 1),
        rouge2: rouge_n(&hyp_tokens, &ref_tokens, 2),
        rouge_l: rouge_l(&hyp_tokens, &ref_tokens),
        rouge_lsum: rouge_lsum(&hypothesis, &reference, vocabulary.ids.len()),
    }
}

/// Token ids shared by a hypothesis and its reference, so that n-grams and LCSs compare
/// integers rather than strings.
#[derive(Default)]
struct Vocabulary {
    ids: HashMap<String, usize>,
}

impl Vocabulary {
    /// The token ids of each non-empty `"\n"`-separated line of `text` (rougeLsum's
    /// sentences). A token never spans a newline, so their concatenation is also how the
    /// other variants tokenise the whole text.
    fn text(&mut self, text: &str, use_stemmer: bool) -> Vec<Vec<usize>> {
        text.split('\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                rouge_tokenize(line, use_stemmer)
                    .into_iter()
                    .map(|token| self.id(token))
                    .collect()
            })
            .collect()
    }

    fn id(&mut self, token: String) -> usize {
        let next = self.ids.len();
        *self.ids.entry(token).or_insert(next)
    }
}

/// `_score_ngrams`: clipped n-gram overlap.
fn rouge_n(hypothesis: &[usize], reference: &[usize], n: usize) -> RougeTriple {
    let hyp_counts = ngram_counts(hypothesis, n);
    let ref_counts = ngram_counts(reference, n);
    let overlap: usize = ref_counts
        .iter()
        .map(|(ngram, &count)| count.min(hyp_counts.get(ngram).copied().unwrap_or(0)))
        .sum();
    let hyp_total: usize = hyp_counts.values().sum();
    let ref_total: usize = ref_counts.values().sum();
    RougeTriple::new(
        overlap as f64 / hyp_total.max(1) as f64,
        overlap as f64 / ref_total.max(1) as f64,
    )
}

fn ngram_counts(tokens: &[usize], n: usize) -> HashMap<&[usize], usize> {
    let mut counts = HashMap::new();
    for ngram in tokens.windows(n) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// `_score_lcs`: longest common subsequence of the two texts.
fn rouge_l(hypothesis: &[usize], reference: &[usize]) -> RougeTriple {
    if hypothesis.is_empty() || reference.is_empty() {
        return RougeTriple::default();
    }
    let lcs = lcs_length(reference, hypothesis) as f64;
    RougeTriple::new(lcs / hypothesis.len() as f64, lcs / reference.len() as f64)
}

/// Length of a longest common subsequence, one table row at a time.
fn lcs_length(a: &[usize], b: &[usize]) -> usize {
    let mut previous = vec![0; b.len() + 1];
    let mut current = vec![0; b.len() + 1];
    for &x in a {
        for (j, &y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// `_summary_level_lcs`: for each reference sentence, the union of its LCSs with every
/// hypothesis sentence; a token of the union is a hit while both texts still have a copy of
/// it not yet counted.
fn rouge_lsum(
    hypothesis: &[Vec<usize>],
    reference: &[Vec<usize>],
    vocabulary: usize,
) -> RougeTriple {
    let hyp_len: usize = hypothesis.iter().map(Vec::len).sum();
    let ref_len: usize = reference.iter().map(Vec::len).sum();
    if hyp_len == 0 || ref_len == 0 {
        return RougeTriple::default();
    }
    let (mut hyp_left, mut ref_left) = (vec![0_usize; vocabulary], vec![0_usize; vocabulary]);
    for &token in hypothesis.iter().flatten() {
        hyp_left[token] += 1;
    }
    for &token in reference.iter().flatten() {
        ref_left[token] += 1;
    }
    let mut hits = 0_usize;
    for ref_sentence in reference {
        let mut in_union = vec![false; ref_sentence.len()];
        for hyp_sentence in hypothesis {
            for i in lcs_indices(ref_sentence, hyp_sentence) {
                in_union[i] = true;
            }
        }
        // In reference order, as rouge-score sorts the union's indices.
        for (&token, _) in ref_sentence.iter().zip(&in_union).filter(|(_, &u)| u) {
            if hyp_left[token] > 0 && ref_left[token] > 0 {
                hits += 1;
                hyp_left[token] -= 1;
                ref_left[token] -= 1;
            }
        }
    }
    RougeTriple::new(hits as f64 / hyp_len as f64, hits as f64 / ref_len as f64)
}

/// `lcs_ind(ref, can)`: indices into `reference` of the one LCS that rouge-score's
/// backtracking (`_backtrack_norec`) reads out. Which LCS it picks matters to ROUGE-Lsum's
/// union, so the tie-breaking is the same: on a mismatch, step left only if that keeps a
/// strictly longer LCS than stepping up.
fn lcs_indices(reference: &[usize], candidate: &[usize]) -> Vec<usize> {
    let cols = candidate.len() + 1;
    let at = |i: usize, j: usize| i * cols + j;
    let mut table = vec![0_u32; (reference.len() + 1) * cols];
    for (i, &r) in reference.iter().enumerate() {
        for (j, &c) in candidate.iter().enumerate() {
            table[at(i + 1, j + 1)] = if r == c {
                table[at(i, j)] + 1
            } else {
                table[at(i, j + 1)].max(table[at(i + 1, j)])
            };
        }
    }
    let mut indices = Vec::new();
    let (mut i, mut j) = (reference.len(), candidate.len());
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            indices.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[at(i, j - 1)] > table[at(i - 1, j)] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    indices.reverse();
    indices
}

/// Exact sums of one variant's precision, recall and F1 over segments.
#[derive(Debug, Clone, Default, PartialEq)]
struct TripleSum {
    precision: ExactSum,
    recall: ExactSum,
    fmeasure: ExactSum,
}

impl TripleSum {
    fn add(&mut self, triple: RougeTriple) {
        self.precision.add(triple.precision);
        self.recall.add(triple.recall);
        self.fmeasure.add(triple.fmeasure);
    }

    fn merge(&mut self, other: &TripleSum) {
        self.precision.merge(&other.precision);
        self.recall.merge(&other.recall);
        self.fmeasure.merge(&other.fmeasure);
    }

    fn mean(&self, segments: usize) -> RougeTriple {
        let n = segments as f64;
        RougeTriple {
            precision: self.precision.value() / n,
            recall: self.recall.value() / n,
            fmeasure: self.fmeasure.value() / n,
        }
    }
}

/// Incremental corpus ROUGE: exact sums of per-segment scores, so segments can be added batch
/// by batch ([`add`](Self::add)) or partial sums combined ([`merge`](Self::merge)) with the
/// same result to the last bit.
///
/// `RougeStats::default()` is `RougeStats::new(false)`, rouge-score's default (no stemmer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RougeStats {
    /// rouge1, rouge2, rougeL, rougeLsum.
    sums: [TripleSum; 4],
    segments: usize,
    use_stemmer: bool,
}

impl RougeStats {
    /// An empty accumulator; `use_stemmer` as rouge-score's `RougeScorer(use_stemmer=...)`.
    pub fn new(use_stemmer: bool) -> Self {
        Self {
            use_stemmer,
            ..Self::default()
        }
    }

    /// Scores one hypothesis against its reference ([`rouge_pair`]) and adds the scores.
    pub fn add(&mut self, hypothesis: &str, reference: &str) {
        let scores = rouge_pair(hypothesis, reference, self.use_stemmer);
        for (sum, triple) in self.sums.iter_mut().zip(scores.variants()) {
            sum.add(triple);
        }
        self.segments += 1;
    }

    /// Adds the segments of `other` (another batch, another worker).
    ///
    /// An accumulator without segments takes the stemmer setting of the other side.
    ///
    /// # Panics
    /// When both sides have segments scored with different stemmer settings: their mean
    /// would describe no configuration at all.
    pub fn merge(&mut self, other: &RougeStats) {
        if other.segments == 0 {
            return;
        }
        if self.segments == 0 {
            self.use_stemmer = other.use_stemmer;
        }
        assert_eq!(
            self.use_stemmer, other.use_stemmer,
            "cannot merge ROUGE statistics scored with use_stemmer = {} into ones scored with \
             use_stemmer = {}",
            other.use_stemmer, self.use_stemmer
        );
        for (sum, other) in self.sums.iter_mut().zip(&other.sums) {
            sum.merge(other);
        }
        self.segments += other.segments;
    }

    /// Number of segments added so far.
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Whether tokens are stemmed.
    pub fn use_stemmer(&self) -> bool {
        self.use_stemmer
    }

    /// Corpus ROUGE of everything added so far: means of the per-segment scores. An empty
    /// corpus scores 0.
    pub fn score(&self) -> RougeScore {
        let scores = if self.segments == 0 {
            RougeScores::default()
        } else {
            let [rouge1, rouge2, rouge_l, rouge_lsum] =
                self.sums.each_ref().map(|sum| sum.mean(self.segments));
            RougeScores {
                rouge1,
                rouge2,
                rouge_l,
                rouge_lsum,
            }
        };
        RougeScore {
            scores,
            segments: self.segments,
            use_stemmer: self.use_stemmer,
        }
    }
}

/// Corpus ROUGE: means of per-segment scores, plus what made them.
///
/// `Display` prints the F1 of each variant ×100, e.g.
/// `ROUGE-1 = 45.12 ROUGE-2 = 20.01 ROUGE-L = 40.00 ROUGE-Lsum = 40.00`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RougeScore {
    /// Means over segments, in [0, 1].
    pub scores: RougeScores,
    /// Number of segments averaged.
    pub segments: usize,
    /// Whether tokens were stemmed.
    pub use_stemmer: bool,
}

impl RougeScore {
    /// A sacrebleu-style description of the configuration:
    /// `nrefs:1|stem:yes|lsum:newline|agg:mean|version:rouge-score-0.1.2` (`lsum:newline`:
    /// rougeLsum's sentences are lines; `agg:mean`: mean of per-segment scores).
    pub fn signature(&self) -> String {
        format!(
            "nrefs:1|stem:{}|lsum:newline|agg:mean|version:rouge-score-{ROUGE_SCORE_VERSION}",
            if self.use_stemmer { "yes" } else { "no" }
        )
    }

    /// One line with the signature, in the spirit of `sacrebleu --format text`:
    /// `ROUGE|nrefs:1|stem:yes|…|version:rouge-score-0.1.2 = 45.12/20.01/40.00/40.00
    /// (F1 of ROUGE-1/2/L/Lsum, mean of per-segment scores over 60 segments)`.
    pub fn format_with_signature(&self) -> String {
        let [r1, r2, rl, rlsum] = self.scores.variants().map(|t| 100.0 * t.fmeasure);
        format!(
            "ROUGE|{} = {r1:.2}/{r2:.2}/{rl:.2}/{rlsum:.2} (F1 of ROUGE-1/2/L/Lsum, mean of \
             per-segment scores over {} segments)",
            self.signature(),
            self.segments
        )
    }
}

impl fmt::Display for RougeScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r1, r2, rl, rlsum] = self.scores.variants().map(|t| 100.0 * t.fmeasure);
        write!(
            f,
            "ROUGE-1 = {r1:.2} ROUGE-2 = {r2:.2} ROUGE-L = {rl:.2} ROUGE-Lsum = {rlsum:.2}"
        )
    }
}

/// Corpus ROUGE of `hypotheses` against one reference each: the mean of [`rouge_pair`] over
/// the pairs.
///
/// # Errors
/// [`EvalError::LineCountMismatch`] when the two slices differ in length.
pub fn corpus_rouge<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[R],
    use_stemmer: bool,
) -> Result<RougeScore, EvalError> {
    check_line_counts(hypotheses.len(), references.len())?;
    let mut stats = RougeStats::new(use_stemmer);
    for (hypothesis, reference) in hypotheses.iter().zip(references) {
        stats.add(hypothesis.as_ref(), reference.as_ref());
    }
    Ok(stats.score())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_ONES: RougeTriple = RougeTriple {
        precision: 1.0,
        recall: 1.0,
        fmeasure: 1.0,
    };

    #[test]
    fn identical_texts_score_1_everywhere() {
        for stem in [false, true] {
            for text in [
                "The cat sat on the mat.",
                "Jesus wept.\nThe disciples were amazed,\nand said: who is this?",
                "a a a a b",
            ] {
                assert_eq!(rouge_pair(text, text, stem).variants(), [ALL_ONES; 4]);
            }
        }
        // A one-word text has no bigram: rouge2 is 0 for rouge-score too.
        let one_word = rouge_pair("Amen", "Amen", false);
        assert_eq!(one_word.rouge1, ALL_ONES);
        assert_eq!(one_word.rouge2, RougeTriple::default());
    }

    #[test]
    fn disjoint_and_empty_texts_score_0() {
        let zero = [RougeTriple::default(); 4];
        assert_eq!(rouge_pair("the cat", "a dog", true).variants(), zero);
        assert_eq!(rouge_pair("", "a dog", true).variants(), zero);
        assert_eq!(rouge_pair("the cat", "", true).variants(), zero);
        assert_eq!(rouge_pair("", "", true).variants(), zero);
        // No token survives: punctuation, CJK, emoji.
        assert_eq!(
            rouge_pair("!!! 東京 🦀", "!!! 東京 🦀", false).variants(),
            zero
        );
    }

    #[test]
    fn swapping_hypothesis_and_reference_swaps_precision_and_recall() {
        let pairs = [
            ("the cat sat on the mat", "the cat is on the mat today"),
            ("a b c\nd e", "e d\nc b a b"),
            ("the the the the", "the cat"),
        ];
        for (hyp, reference) in pairs {
            let forward = rouge_pair(hyp, reference, true);
            let backward = rouge_pair(reference, hyp, true);
            for (f, b) in forward.variants().iter().zip(backward.variants()) {
                assert_eq!((f.precision, f.recall), (b.recall, b.precision));
                assert_eq!(f.fmeasure, b.fmeasure);
            }
        }
    }

    #[test]
    fn clips_repeated_words() {
        let scores = rouge_pair("the the the the", "the cat", false);
        assert_eq!((scores.rouge1.precision, scores.rouge1.recall), (0.25, 0.5));
        assert_eq!(scores.rouge2.precision, 0.0);
        assert_eq!(
            (scores.rouge_l.precision, scores.rouge_l.recall),
            (0.25, 0.5)
        );
    }

    #[test]
    fn lsum_uses_sentences_and_l_does_not() {
        let scores = rouge_pair("the cat sat\non the mat", "on the mat\nthe cat sat", false);
        assert_eq!(scores.rouge_l.fmeasure, 0.5);
        assert_eq!(scores.rouge_lsum.fmeasure, 1.0);
        // rouge-score's own F1 operation order: 2 * 0.8 * 0.8 / 1.6 is not 0.8.
        assert_eq!(scores.rouge2.fmeasure, 0.8000000000000002);
    }

    #[test]
    fn lcs_backtracking_breaks_ties_like_rouge_score() {
        // rouge-score's _backtrack_norec on ref "a b", can "b a" steps up on the tie and
        // reads out "a" (index 0), not "b".
        assert_eq!(lcs_indices(&[0, 1], &[1, 0]), [0]);
        assert_eq!(lcs_indices(&[0, 1, 2], &[0, 2]), [0, 2]);
        assert_eq!(lcs_length(&[0, 1, 2, 3], &[1, 3, 0]), 2);
        assert!(lcs_indices(&[], &[1]).is_empty());
    }

    #[test]
    fn merge_equals_adding_everything_to_one() {
        let pairs = [
            ("the cat sat on the mat", "the cat is on the mat"),
            ("one two three", "three two one"),
            ("", "empty hypothesis"),
            (
                "Dogs were running\nquickly home",
                "The dog runs quickly\nhome",
            ),
            ("x", "y"),
            ("a b a b a", "b a b"),
            ("generously given", "generous giving"),
        ];
        let mut all = RougeStats::new(true);
        for (hyp, reference) in pairs {
            all.add(hyp, reference);
        }
        for split in 0..=pairs.len() {
            let (mut first, mut second) = (RougeStats::new(true), RougeStats::new(true));
            for (hyp, reference) in &pairs[..split] {
                first.add(hyp, reference);
            }
            for (hyp, reference) in &pairs[split..] {
                second.add(hyp, reference);
            }
            // In either order, and into a default (no-stemmer) accumulator, which adopts
            // the setting of what it merges.
            let mut merged = RougeStats::default();
            merged.merge(&second);
            merged.merge(&first);
            assert_eq!(merged, all, "split at {split}");
            assert_eq!(merged.score(), all.score());
            first.merge(&second);
            assert_eq!(first.score(), all.score());
        }
        assert_eq!(all.segments(), pairs.len());
        assert!(all.use_stemmer());
    }

    #[test]
    #[should_panic(expected = "cannot merge ROUGE statistics scored with use_stemmer = false")]
    fn merge_refuses_mixed_stemmer_settings() {
        let (mut stemmed, mut plain) = (RougeStats::new(true), RougeStats::new(false));
        stemmed.add("cats", "cat");
        plain.add("cats", "cat");
        stemmed.merge(&plain);
    }

    #[test]
    fn corpus_score_is_the_mean_of_segment_scores() {
        let hyps = ["the cat sat", "a b c d"];
        let refs = ["the cat sat", "x y"];
        let score = corpus_rouge(&hyps, &refs, false).unwrap();
        assert_eq!(score.segments, 2);
        assert_eq!(score.scores.rouge1, RougeTriple::new(0.5, 0.5));
        assert_eq!(
            score.to_string(),
            "ROUGE-1 = 50.00 ROUGE-2 = 50.00 ROUGE-L = 50.00 ROUGE-Lsum = 50.00"
        );
        assert_eq!(
            score.format_with_signature(),
            "ROUGE|nrefs:1|stem:no|lsum:newline|agg:mean|version:rouge-score-0.1.2 = \
             50.00/50.00/50.00/50.00 (F1 of ROUGE-1/2/L/Lsum, mean of per-segment scores \
             over 2 segments)"
        );
        assert!(corpus_rouge(&hyps, &refs[..1], false).is_err());
    }

    #[test]
    fn empty_corpus_scores_zero_without_nan() {
        let none: [&str; 0] = [];
        let score = corpus_rouge(&none, &none, true).unwrap();
        assert_eq!(score.scores, RougeScores::default());
        assert_eq!(score.segments, 0);
        assert!(score.use_stemmer);
        assert_eq!(score, RougeStats::new(true).score());
        assert!(score.signature().contains("stem:yes"));
    }
}
