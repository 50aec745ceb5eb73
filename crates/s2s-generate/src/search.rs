//! The decoding loops over one padded batch of sources: greedy and sampling (one or more rows
//! per source), and batched beam search (sentences × beams rows) with HF/fairseq bookkeeping of
//! finished hypotheses.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::rngs::StdRng;
use rand::SeedableRng;
use s2s_model::special;

use crate::config::{DecodeStrategy, GenerationConfig};
use crate::error::GenerateError;
use crate::hypothesis::{normalised, Hypothesis};
use crate::logits::{draw, sampling_distribution, Constraints};
use crate::model::IncrementalDecoder;

pub(crate) fn int_tensor<B: Backend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

fn float_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap_or_default()
}

fn int_vec<B: Backend, const D: usize>(t: Tensor<B, D, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .into_vec()
        .unwrap_or_default()
}

/// `[0, 0, …, 1, 1, …]`: each of `n` rows repeated `times` times.
fn repeat_rows<B: Backend>(n: usize, times: usize, device: &B::Device) -> Tensor<B, 1, Int> {
    int_tensor(
        (0..n as i64)
            .flat_map(|i| std::iter::repeat_n(i, times))
            .collect(),
        device,
    )
}

/// The random stream of sample `sample` of source `source`: independent of batching, so a
/// source gets the same draws whatever else is decoded with it.
fn stream_seed(seed: u64, source: usize, sample: usize) -> u64 {
    // SplitMix64 finaliser over the three inputs.
    let mut z = seed
        ^ (source as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (sample as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Refuses a step whose scores hold a NaN (see the rule in [`crate::logits`]): `row_values`
/// are host values of the constrained log-probabilities, or any reduction that keeps NaN (a
/// row sum). `step` is 0-based.
fn check_finite(row_values: &[f32], step: usize) -> Result<(), GenerateError> {
    if row_values.iter().any(|x| x.is_nan()) {
        return Err(GenerateError::NonFinite { position: step + 1 });
    }
    Ok(())
}

/// Greedy decoding or sampling of one batch. `sources[i]` is the caller's index of memory row
/// `i` (it seeds the random streams). Returns the hypotheses per source, in draw order.
pub(crate) fn greedy_or_sample<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    memory: M::Memory,
    sources: &[usize],
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Vec<Hypothesis>>, GenerateError> {
    let (sampler, per_source) = match config.strategy {
        DecodeStrategy::Sample {
            temperature,
            top_k,
            top_p,
            seed,
            num_return_sequences,
        } => (
            Some((temperature, top_k, top_p, seed)),
            num_return_sequences,
        ),
        _ => (None, 1),
    };
    let n_sources = sources.len();
    let rows = n_sources * per_source;
    let memory = if per_source > 1 {
        model.select_memory(&memory, repeat_rows(n_sources, per_source, device))
    } else {
        memory
    };
    let mut cache = model.init_cache(&memory, config.max_new_tokens);
    let mut rngs: Vec<StdRng> = match sampler {
        Some((_, _, _, seed)) => (0..rows)
            .map(|r| {
                StdRng::seed_from_u64(stream_seed(seed, sources[r / per_source], r % per_source))
            })
            .collect(),
        None => Vec::new(),
    };
    let mut histories = vec![vec![special::BOS]; rows];
    let mut log_probs = vec![0f64; rows];
    let mut finished = vec![false; rows];
    let mut ended = vec![false; rows];
    // Rows still decoding, in batch order; finished rows leave the batch (fairseq's pruning),
    // so a long output does not make its batch-mates pay for every extra step.
    let mut active: Vec<usize> = (0..rows).collect();
    let mut last = vec![i64::from(special::BOS); rows];
    let mut constraints: Option<Constraints<B>> = None;
    let mut memory = memory;

    for step in 0..config.max_new_tokens {
        let fed: Vec<i64> = active.iter().map(|&r| last[r]).collect();
        let logits = model.decode_step(int_tensor(fed, device), &memory, &mut cache);
        let [_, vocab_size] = logits.dims();
        let constraints =
            constraints.get_or_insert_with(|| Constraints::for_config(vocab_size, config, device));
        let active_histories: Vec<&[u32]> = active.iter().map(|&r| &histories[r][..]).collect();
        let scores = constraints.apply(log_softmax(logits, 1), step, &active_histories);
        let picks: Vec<(usize, f32)> = match sampler {
            None => {
                // [rows, 2]: the best log-probability and the row sum (NaN iff the row holds
                // one), fetched together
                let sums = scores.clone().sum_dim(1);
                let (values, indices) = scores.max_dim_with_indices(1);
                let stats = float_vec(Tensor::cat(vec![values, sums], 1));
                check_finite(&stats, step)?;
                int_vec(indices)
                    .into_iter()
                    .map(|i| i as usize)
                    .zip(stats.chunks_exact(2).map(|pair| pair[0]))
                    .collect()
            }
            Some((temperature, top_k, top_p, _)) => {
                let data = float_vec(scores);
                check_finite(&data, step)?;
                active
                    .iter()
                    .enumerate()
                    .map(|(i, &r)| {
                        let row = &data[i * vocab_size..(i + 1) * vocab_size];
                        let probs = sampling_distribution(row, temperature, top_k, top_p);
                        let token = draw(&probs, &mut rngs[r]);
                        (token, row[token])
                    })
                    .collect()
            }
        };
        for (&r, &(token, log_prob)) in active.iter().zip(&picks) {
            if log_prob == f32::NEG_INFINITY {
                // Not even `</s>` is possible (the constraints already gave it back its model
                // log-probability): the model excludes it outright.
                return Err(GenerateError::NoCandidate { position: step + 1 });
            }
            log_probs[r] += f64::from(log_prob);
            if token == special::EOS as usize {
                finished[r] = true;
                ended[r] = true;
            } else {
                histories[r].push(token as u32);
            }
            last[r] = token as i64;
        }
        let keep: Vec<usize> = (0..active.len())
            .filter(|&i| !finished[active[i]])
            .collect();
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() && step + 1 < config.max_new_tokens {
            let kept = int_tensor(keep.iter().map(|&i| i as i64).collect(), device);
            model.reorder_cache(&mut cache, kept.clone());
            memory = model.select_memory(&memory, kept);
            active = keep.into_iter().map(|i| active[i]).collect();
        }
    }

    let mut out: Vec<Vec<Hypothesis>> = vec![Vec::with_capacity(per_source); n_sources];
    for (r, history) in histories.into_iter().enumerate() {
        let tokens = history[1..].to_vec();
        let length = tokens.len() + usize::from(ended[r]);
        out[r / per_source].push(Hypothesis {
            score: normalised(log_probs[r], length, 1.0),
            log_prob: log_probs[r],
            tokens,
            finished: ended[r],
        });
    }
    Ok(out)
}

/// A beam-search candidate: higher score first, then lower index.
#[derive(Clone, Copy, Debug)]
struct Candidate(f64, usize);

impl Candidate {
    fn better_than(&self, other: &Self) -> bool {
        match self.0.total_cmp(&other.0) {
            std::cmp::Ordering::Equal => self.1 < other.1,
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
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// "Greater" is worse, so a max-heap keeps the worst kept candidate on top.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self == other {
            std::cmp::Ordering::Equal
        } else if other.better_than(self) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Less
        }
    }
}

/// The `n` best finite `(score, index)` pairs, best first (ties: lower index first).
pub(crate) fn top_n(items: impl Iterator<Item = (f64, usize)>, n: usize) -> Vec<(f64, usize)> {
    let mut heap: std::collections::BinaryHeap<Candidate> =
        std::collections::BinaryHeap::with_capacity(n + 1);
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

/// The finished hypotheses of one sentence: at most `capacity`, the best kept (HF's
/// `BeamHypotheses`).
struct Finished {
    capacity: usize,
    length_penalty: f64,
    early_stopping: bool,
    hyps: Vec<Hypothesis>,
}

impl Finished {
    fn worst(&self) -> f64 {
        self.hyps
            .iter()
            .map(|h| h.score)
            .fold(f64::INFINITY, f64::min)
    }

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

    fn best(mut self, n: usize) -> Vec<Hypothesis> {
        self.hyps.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.hyps.truncate(n);
        self.hyps
    }
}

/// Batched beam search over `n_sources × num_beams` rows.
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
    let rows = n_sources * k;
    let memory = model.select_memory(&memory, repeat_rows(n_sources, k, device));
    let mut cache = model.init_cache(&memory, config.max_new_tokens);
    // Only the first beam of each sentence is alive at the start, so the first step expands
    // it into k distinct tokens instead of k copies of the same one.
    let mut scores: Vec<f64> = (0..rows)
        .map(|r| if r % k == 0 { 0.0 } else { f64::NEG_INFINITY })
        .collect();
    let mut histories = vec![vec![special::BOS]; rows];
    let mut last = vec![i64::from(special::BOS); rows];
    let mut finished: Vec<Finished> = (0..n_sources)
        .map(|_| Finished {
            capacity: k,
            length_penalty,
            early_stopping,
            hyps: Vec::new(),
        })
        .collect();
    let mut done = vec![false; n_sources];
    let mut steps = 0;
    let mut constraints: Option<Constraints<B>> = None;
    // Sentences still searching, in batch order: sentence `active[p]` owns rows p·k … p·k+k−1.
    // A finished sentence leaves the batch (its rows, cache and memory are dropped).
    let mut active: Vec<usize> = (0..n_sources).collect();
    let mut memory = memory;

    for step in 0..config.max_new_tokens {
        let logits = model.decode_step(int_tensor(last.clone(), device), &memory, &mut cache);
        let [_, vocab_size] = logits.dims();
        let constraints =
            constraints.get_or_insert_with(|| Constraints::for_config(vocab_size, config, device));
        let row_histories: Vec<&[u32]> = histories.iter().map(|h| &h[..]).collect();
        let log_probs = constraints.apply(log_softmax(logits, 1), step, &row_histories);
        // Candidate selection runs on the host: one pass over the live beams' rows with a
        // bounded heap is O(k·V) per sentence, where a device top-k sorts all k·V scores
        // (and breaks ties differently on every backend; here the lower index wins).
        let log_probs = float_vec(log_probs);
        check_finite(&log_probs, step)?;
        let n_candidates = 2 * k;

        let mut parents = Vec::with_capacity(active.len() * k);
        let mut next_tokens = Vec::with_capacity(active.len() * k);
        let mut next_scores = Vec::with_capacity(active.len() * k);
        let mut kept = Vec::with_capacity(active.len());
        for (p, &s) in active.iter().enumerate() {
            let live = (0..k).filter(|&b| scores[p * k + b].is_finite());
            let ranked = top_n(
                live.flat_map(|b| {
                    let row = p * k + b;
                    let base = scores[row];
                    log_probs[row * vocab_size..(row + 1) * vocab_size]
                        .iter()
                        .enumerate()
                        .map(move |(token, &lp)| (base + f64::from(lp), b * vocab_size + token))
                }),
                n_candidates,
            );
            let first = parents.len();
            for (rank, &(score, flat)) in ranked.iter().enumerate() {
                let (row, token) = (p * k + flat / vocab_size, flat % vocab_size);
                if token == special::EOS as usize {
                    // Only an end among the top k candidates can finish a hypothesis.
                    if rank < k {
                        let tokens = histories[row][1..].to_vec();
                        finished[s].add(tokens, score, step + 1, true);
                    }
                } else {
                    parents.push(p * k + flat / vocab_size);
                    next_tokens.push(token as i64);
                    next_scores.push(score);
                    if parents.len() - first == k {
                        break;
                    }
                }
            }
            if ranked.is_empty() && finished[s].hyps.is_empty() {
                // Not even `</s>` is possible for any beam (see `greedy_or_sample`).
                return Err(GenerateError::NoCandidate { position: step + 1 });
            }
            let best = ranked.first().map_or(f64::NEG_INFINITY, |c| c.0);
            done[s] = finished[s].is_done(best, step + 1);
            if done[s] {
                parents.truncate(first);
                next_tokens.truncate(first);
                next_scores.truncate(first);
                continue;
            }
            // Fewer than k live continuations: the rest are dead rows.
            while parents.len() - first < k {
                parents.push(p * k);
                next_tokens.push(i64::from(special::PAD));
                next_scores.push(f64::NEG_INFINITY);
            }
            kept.push(p);
        }
        histories = parents
            .iter()
            .zip(&next_tokens)
            .map(|(&parent, &t)| {
                let mut h = histories[parent].clone();
                h.push(t as u32);
                h
            })
            .collect();
        scores = next_scores;
        last = next_tokens;
        steps = step + 1;
        let still: Vec<usize> = kept.iter().map(|&p| active[p]).collect();
        if still.is_empty() || steps == config.max_new_tokens {
            active = still;
            break;
        }
        if kept.len() < active.len() {
            let rows = kept
                .iter()
                .flat_map(|&p| (0..k).map(move |b| (p * k + b) as i64))
                .collect();
            memory = model.select_memory(&memory, int_tensor(rows, device));
        }
        active = still;
        let parents: Vec<i64> = parents.into_iter().map(|p| p as i64).collect();
        model.reorder_cache(&mut cache, int_tensor(parents, device));
    }

    // Out of steps: running beams compete as they are (HF's `finalize`).
    for (p, &s) in active.iter().enumerate() {
        for row in p * k..(p + 1) * k {
            if scores[row].is_finite() {
                finished[s].add(histories[row][1..].to_vec(), scores[row], steps, false);
            }
        }
    }
    // Every sentence holds at least one hypothesis: a step that left one without any candidate
    // returned an error above.
    Ok(finished
        .into_iter()
        .map(|hyps| hyps.best(num_return_sequences))
        .collect())
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
