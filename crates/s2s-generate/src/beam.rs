//! Batched beam search over `sentences × num_beams` rows, the loop of HF's
//! `GenerationMixin._beam_search`: decode one step, process the logits ([`crate::logits`]),
//! let the [`BeamScorer`] pick the next beams, then make the running beams, the cache and the
//! memory follow them. A sentence that is done leaves the batch (its rows, cache and memory
//! are dropped).

use burn::prelude::*;
use s2s_model::special;

use crate::beam_scorer::BeamScorer;
use crate::config::{DecodeStrategy, GenerationConfig};
use crate::error::GenerateError;
use crate::host::{float_vec, int_tensor, repeat_rows};
use crate::hypothesis::Hypothesis;
use crate::logits::{check_finite, LogitsProcessor};
use crate::model::IncrementalDecoder;

/// Beam search over the `n_sources` sources of `memory`, as `config.strategy` (a
/// [`DecodeStrategy::Beam`]) asks. Returns each source's best `num_return_sequences`
/// hypotheses, best first; nothing for another strategy.
///
/// # Errors
/// [`GenerateError::NonFinite`] on NaN model scores, [`GenerateError::NoCandidate`] when a
/// sentence has no possible continuation.
pub(crate) fn beam_search<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    memory: M::Memory,
    n_sources: usize,
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Vec<Hypothesis>>, GenerateError> {
    let DecodeStrategy::Beam {
        num_beams: k,
        length_penalty,
        early_stopping,
        num_return_sequences,
    } = config.strategy
    else {
        return Ok(Vec::new());
    };
    let mut memory = model.select_memory(&memory, repeat_rows(n_sources, k, device));
    let mut cache = model.init_cache(&memory, config.max_new_tokens);
    let mut beams = Beams::new(n_sources, k);
    let mut scorer = BeamScorer::new(n_sources, k, length_penalty, early_stopping);
    let mut processor = LogitsProcessor::new(config, device);
    let mut steps = 0;

    for step in 0..config.max_new_tokens {
        let logits = model.decode_step(int_tensor(beams.last.clone(), device), &memory, &mut cache);
        let [_, vocab_size] = logits.dims();
        let log_probs = processor.process(logits, step, &beams.row_histories());
        // The scorer ranks candidates on the host (see `top_candidates` in beam_scorer.rs).
        let log_probs = float_vec(log_probs);
        check_finite(&log_probs, step)?;
        let next = scorer.process(
            &log_probs,
            vocab_size,
            &beams.scores,
            &beams.histories,
            step,
        )?;
        beams.advance(&next.parents, next.tokens, next.scores);
        steps = step + 1;
        if scorer.is_done() || steps == config.max_new_tokens {
            break;
        }
        if let Some(rows) = next.kept_rows {
            memory = model.select_memory(&memory, int_tensor(rows, device));
        }
        let parents: Vec<i64> = next.parents.into_iter().map(|p| p as i64).collect();
        model.reorder_cache(&mut cache, int_tensor(parents, device));
    }
    Ok(scorer.finalize(&beams.scores, &beams.histories, steps, num_return_sequences))
}

/// The running beams, one row per (sentence still searching, beam), sentence-major.
#[derive(Debug)]
struct Beams {
    /// Per row: the sum of the beam's log-probabilities; −∞ for a dead row.
    scores: Vec<f64>,
    /// Per row: `<s>`, then the beam's tokens.
    histories: Vec<Vec<u32>>,
    /// Per row: the token fed at the next step.
    last: Vec<i64>,
}

impl Beams {
    /// `<s>` for every row. Only the first beam of each sentence is alive at the start, so the
    /// first step expands it into k distinct tokens instead of k copies of the same one.
    fn new(n_sources: usize, k: usize) -> Self {
        let rows = n_sources * k;
        Self {
            scores: (0..rows)
                .map(|r| if r % k == 0 { 0.0 } else { f64::NEG_INFINITY })
                .collect(),
            histories: vec![vec![special::BOS]; rows],
            last: vec![i64::from(special::BOS); rows],
        }
    }

    fn row_histories(&self) -> Vec<&[u32]> {
        self.histories.iter().map(|h| &h[..]).collect()
    }

    /// The next beams: row `i` continues row `parents[i]` with `tokens[i]`, scored `scores[i]`.
    fn advance(&mut self, parents: &[usize], tokens: Vec<i64>, scores: Vec<f64>) {
        self.histories = parents
            .iter()
            .zip(&tokens)
            .map(|(&parent, &t)| {
                let mut h = self.histories[parent].clone();
                h.push(t as u32);
                h
            })
            .collect();
        self.scores = scores;
        self.last = tokens;
    }
}
