//! The beam scorer, structured as HF's `BeamSearchScorer` (transformers
//! `generation/beam_search.py`): [`BeamScorer::process`] takes one step's log-probabilities of
//! the running beams, picks each sentence's next beams and moves the hypotheses that end with
//! `</s>` into the sentence's finished set ([`BeamHypotheses`], HF's class of the same name);
//! [`BeamScorer::finalize`] lets the beams still running when the steps run out compete and
//! returns the best hypotheses per sentence. The scorer works on host values only; the loop in
//! [`crate::beam`] owns the model, the cache and the running beams.
//!
//! Rows are laid out sentence-major: sentence `active[p]` owns rows `p·k … p·k+k−1` of the
//! current batch, `k` the number of beams.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use s2s_model::special;

use crate::error::GenerateError;
use crate::hypothesis::{normalised, Hypothesis};

/// The search state of a batch of sentences: each one's finished hypotheses, and which are
/// still searching.
#[derive(Debug)]
pub(crate) struct BeamScorer {
    num_beams: usize,
    /// Per sentence of the batch, in batch order.
    finished: Vec<BeamHypotheses>,
    /// Sentences still searching, in batch order. A sentence that is done leaves the batch.
    active: Vec<usize>,
}

/// What [`BeamScorer::process`] picked: `num_beams` next beams per sentence still searching,
/// sentence-major (HF's `next_beam_scores`, `next_beam_tokens`, `next_beam_indices`).
#[derive(Debug)]
pub(crate) struct NextBeams {
    /// Each next beam's parent: its row in the current batch.
    pub(crate) parents: Vec<usize>,
    /// Each next beam's new token (`<pad>` on a dead beam).
    pub(crate) tokens: Vec<i64>,
    /// Each next beam's summed log-probability (−∞ on a dead beam).
    pub(crate) scores: Vec<f64>,
    /// When some sentence is done: the rows of the current batch that belong to the sentences
    /// still searching (the memory rows to keep); `None` when every sentence goes on.
    pub(crate) kept_rows: Option<Vec<i64>>,
}

impl BeamScorer {
    /// `n_sources` sentences searching with `num_beams` beams each; `length_penalty` and
    /// `early_stopping` as in [`crate::DecodeStrategy::Beam`].
    pub(crate) fn new(
        n_sources: usize,
        num_beams: usize,
        length_penalty: f64,
        early_stopping: bool,
    ) -> Self {
        let finished = (0..n_sources)
            .map(|_| BeamHypotheses {
                capacity: num_beams,
                length_penalty,
                early_stopping,
                hyps: Vec::new(),
            })
            .collect();
        Self {
            num_beams,
            finished,
            active: (0..n_sources).collect(),
        }
    }

    /// Whether every sentence is done (HF's `is_done`).
    pub(crate) fn is_done(&self) -> bool {
        self.active.is_empty()
    }

    /// One step (HF's `BeamSearchScorer.process`): for each sentence still searching, the
    /// `2·k` best continuations of its live beams are ranked; an `</s>` among the top `k`
    /// finishes a hypothesis, and the best `k` others become the next beams (padded with
    /// dead beams when fewer exist). A sentence whose finished set no running beam can improve
    /// is done and leaves the batch. `step` is 0-based.
    ///
    /// `log_probs` holds the constrained log-probabilities of every row of the current batch,
    /// `vocab_size` per row; `scores` and `histories` (`<s>` first) describe the running beams.
    ///
    /// # Errors
    /// [`GenerateError::NoCandidate`] when a sentence has neither a continuation nor a
    /// finished hypothesis.
    pub(crate) fn process(
        &mut self,
        log_probs: &[f32],
        vocab_size: usize,
        scores: &[f64],
        histories: &[Vec<u32>],
        step: usize,
    ) -> Result<NextBeams, GenerateError> {
        let k = self.num_beams;
        let mut next = NextBeams {
            parents: Vec::with_capacity(self.active.len() * k),
            tokens: Vec::with_capacity(self.active.len() * k),
            scores: Vec::with_capacity(self.active.len() * k),
            kept_rows: None,
        };
        let mut kept = Vec::with_capacity(self.active.len());
        for (p, &s) in self.active.iter().enumerate() {
            let sentence_log_probs = &log_probs[p * k * vocab_size..(p + 1) * k * vocab_size];
            let beam_scores = &scores[p * k..(p + 1) * k];
            let ranked = top_candidates(sentence_log_probs, vocab_size, beam_scores, 2 * k);
            let finished = &mut self.finished[s];
            let first = next.parents.len();
            for (rank, &(score, flat)) in ranked.iter().enumerate() {
                let (row, token) = (p * k + flat / vocab_size, flat % vocab_size);
                if token == special::EOS as usize {
                    // Only an end among the top k candidates can finish a hypothesis.
                    if rank < k {
                        finished.add(histories[row][1..].to_vec(), score, step + 1, true);
                    }
                } else {
                    next.push(row, token as i64, score);
                    if next.parents.len() - first == k {
                        break;
                    }
                }
            }
            if ranked.is_empty() && finished.hyps.is_empty() {
                // Not even `</s>` is possible for any beam (see `Rows::record` in sampling.rs).
                return Err(GenerateError::NoCandidate { position: step + 1 });
            }
            let best = ranked.first().map_or(f64::NEG_INFINITY, |c| c.0);
            if finished.is_done(best, step + 1) {
                next.truncate(first);
                continue;
            }
            // Fewer than k live continuations: the rest are dead rows.
            while next.parents.len() - first < k {
                next.push(p * k, i64::from(special::PAD), f64::NEG_INFINITY);
            }
            kept.push(p);
        }
        if kept.len() < self.active.len() {
            let rows = kept
                .iter()
                .flat_map(|&p| (0..k).map(move |b| (p * k + b) as i64))
                .collect();
            next.kept_rows = Some(rows);
        }
        self.active = kept.iter().map(|&p| self.active[p]).collect();
        Ok(next)
    }

    /// The end of the search (HF's `BeamSearchScorer.finalize`): beams still running after
    /// `steps` steps compete as they are (cut, not ended, of length `steps`), then each
    /// sentence returns its best `n` hypotheses, best first, in batch order. `scores` and
    /// `histories` describe the running beams, as in [`Self::process`].
    pub(crate) fn finalize(
        mut self,
        scores: &[f64],
        histories: &[Vec<u32>],
        steps: usize,
        n: usize,
    ) -> Vec<Vec<Hypothesis>> {
        let k = self.num_beams;
        for (p, &s) in self.active.iter().enumerate() {
            for row in p * k..(p + 1) * k {
                if scores[row].is_finite() {
                    self.finished[s].add(histories[row][1..].to_vec(), scores[row], steps, false);
                }
            }
        }
        // Every sentence holds at least one hypothesis: a step that left one without any
        // candidate returned an error.
        self.finished.into_iter().map(|hyps| hyps.best(n)).collect()
    }
}

impl NextBeams {
    fn push(&mut self, parent: usize, token: i64, score: f64) {
        self.parents.push(parent);
        self.tokens.push(token);
        self.scores.push(score);
    }

    fn truncate(&mut self, len: usize) {
        self.parents.truncate(len);
        self.tokens.truncate(len);
        self.scores.truncate(len);
    }
}

/// The `n` best continuations of one sentence's beams, best first: `(beam score + log p(token),
/// beam · vocab_size + token)` over the live beams (finite `beam_scores`). HF keeps
/// `n = 2·num_beams` so that `num_beams` remain after the ones ending with `</s>`.
/// `log_probs` holds the sentence's rows, `vocab_size` values per beam.
///
/// Selection runs on the host: one pass over the live beams' rows with a bounded heap is
/// O(k·V) per sentence, where a device top-k sorts all k·V scores (and breaks ties differently
/// on every backend; here the lower index wins).
fn top_candidates(
    log_probs: &[f32],
    vocab_size: usize,
    beam_scores: &[f64],
    n: usize,
) -> Vec<(f64, usize)> {
    let k = beam_scores.len();
    let live = (0..k).filter(|&b| beam_scores[b].is_finite());
    top_n(
        live.flat_map(|b| {
            let base = beam_scores[b];
            log_probs[b * vocab_size..(b + 1) * vocab_size]
                .iter()
                .enumerate()
                .map(move |(token, &lp)| (base + f64::from(lp), b * vocab_size + token))
        }),
        n,
    )
}

/// The finished hypotheses of one sentence: at most `capacity`, the best kept (HF's
/// `BeamHypotheses`).
#[derive(Debug)]
struct BeamHypotheses {
    capacity: usize,
    length_penalty: f64,
    early_stopping: bool,
    hyps: Vec<Hypothesis>,
}

impl BeamHypotheses {
    fn worst(&self) -> f64 {
        self.hyps
            .iter()
            .map(|h| h.score)
            .fold(f64::INFINITY, f64::min)
    }

    /// Adds a hypothesis of `length` tokens (`</s>` counted) if it beats the worst kept one or
    /// there is room (HF's `BeamHypotheses.add`).
    fn add(&mut self, tokens: Vec<u32>, log_prob: f64, length: usize, ended: bool) {
        let score = normalised(log_prob, length, self.length_penalty);
        if self.hyps.len() < self.capacity || score > self.worst() {
            self.hyps.push(Hypothesis {
                tokens,
                score,
                log_prob,
                finished: ended,
            });
            if self.hyps.len() > self.capacity {
                let worst = (0..self.hyps.len())
                    .min_by(|&a, &b| self.hyps[a].score.total_cmp(&self.hyps[b].score))
                    .unwrap_or(0);
                self.hyps.remove(worst);
            }
        }
    }

    /// Whether no running beam can improve this sentence: `capacity` hypotheses are finished
    /// and either early stopping is on or the best running sum, normalised at the current
    /// length, cannot beat the worst finished one (HF's `early_stopping=False` heuristic).
    fn is_done(&self, best_running: f64, length: usize) -> bool {
        if !best_running.is_finite() {
            return true;
        }
        if self.hyps.len() < self.capacity {
            return false;
        }
        self.early_stopping || self.worst() >= normalised(best_running, length, self.length_penalty)
    }

    /// The best `n`, best first.
    fn best(mut self, n: usize) -> Vec<Hypothesis> {
        self.hyps.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.hyps.truncate(n);
        self.hyps
    }
}

/// A beam-search candidate: higher score first, then lower index.
#[derive(Clone, Copy, Debug)]
struct Candidate(f64, usize);

impl Candidate {
    fn better_than(&self, other: &Self) -> bool {
        match self.0.total_cmp(&other.0) {
            Ordering::Equal => self.1 < other.1,
            order => order.is_gt(),
        }
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq() && self.1 == other.1
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// "Greater" is worse, so a max-heap keeps the worst kept candidate on top.
    fn cmp(&self, other: &Self) -> Ordering {
        if self == other {
            Ordering::Equal
        } else if other.better_than(self) {
            Ordering::Greater
        } else {
            Ordering::Less
        }
    }
}

/// The `n` best finite `(score, index)` pairs, best first (ties: lower index first).
fn top_n(items: impl Iterator<Item = (f64, usize)>, n: usize) -> Vec<(f64, usize)> {
    let mut heap: BinaryHeap<Candidate> = BinaryHeap::with_capacity(n + 1);
    for (score, index) in items {
        if !score.is_finite() {
            continue;
        }
        let candidate = Candidate(score, index);
        if heap.len() < n {
            heap.push(candidate);
        } else if heap
            .peek()
            .is_some_and(|worst| candidate.better_than(worst))
        {
            heap.pop();
            heap.push(candidate);
        }
    }
    let mut best = heap.into_vec();
    best.sort();
    best.into_iter().map(|c| (c.0, c.1)).collect()
}

#[cfg(test)]
mod tests {
    use super::top_n;

    #[test]
    fn top_n_keeps_the_best_finite_scores_lower_index_first_on_ties() {
        let items = [
            (0.5, 0),
            (f64::NEG_INFINITY, 1),
            (2.0, 2),
            (0.5, 3),
            (-1.0, 4),
            (2.0, 5),
            (f64::NAN, 6),
        ];
        assert_eq!(
            top_n(items.iter().copied(), 4),
            vec![(2.0, 2), (2.0, 5), (0.5, 0), (0.5, 3)]
        );
        assert_eq!(top_n(items.iter().copied(), 9).len(), 5);
        assert!(top_n(std::iter::empty(), 3).is_empty());
    }
}
