//! The decoding loops over one padded batch of sources: greedy and sampling (one or more rows
//! per source), and batched beam search (sentences × beams rows) with HF/fairseq bookkeeping of
//! finished hypotheses.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::rngs::StdRng;
use rand::SeedableRng;
use s2s_model::special;

use crate::config::{DecodeStrategy, GenerationConfig};
use crate::generate::Hypothesis;
use crate::logits::{draw, sampling_distribution, Constraints};
use crate::model::Seq2Seq;

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

fn normalised(log_prob: f64, length: usize, length_penalty: f64) -> f64 {
    log_prob / (length.max(1) as f64).powf(length_penalty)
}

/// Greedy decoding or sampling of one batch. `sources[i]` is the caller's index of memory row
/// `i` (it seeds the random streams). Returns the hypotheses per source, in draw order.
pub(crate) fn greedy_or_sample<B: Backend, M: Seq2Seq<B>>(
    model: &M,
    memory: M::Memory,
    sources: &[usize],
    config: &GenerationConfig,
    device: &B::Device,
) -> Vec<Vec<Hypothesis>> {
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
    let mut last = vec![i64::from(special::BOS); rows];
    let mut constraints: Option<Constraints<B>> = None;

    for step in 0..config.max_new_tokens {
        let logits = model.decode_step(int_tensor(last.clone(), device), &memory, &mut cache);
        let [_, vocab_size] = logits.dims();
        let constraints = constraints.get_or_insert_with(|| {
            Constraints::new(
                vocab_size,
                config.min_new_tokens,
                config.no_repeat_ngram_size,
                device,
            )
        });
        let scores = constraints.apply(log_softmax(logits, 1), step, &histories);
        let picks: Vec<(usize, f32)> = match sampler {
            None => {
                let (values, indices) = scores.max_dim_with_indices(1);
                int_vec(indices)
                    .into_iter()
                    .map(|i| i as usize)
                    .zip(float_vec(values))
                    .collect()
            }
            Some((temperature, top_k, top_p, _)) => {
                let data = float_vec(scores);
                (0..rows)
                    .map(|r| {
                        if finished[r] {
                            return (special::PAD as usize, 0.0);
                        }
                        let row = &data[r * vocab_size..(r + 1) * vocab_size];
                        let probs = sampling_distribution(row, temperature, top_k, top_p);
                        let token = draw(&probs, &mut rngs[r]);
                        (token, row[token])
                    })
                    .collect()
            }
        };
        for (r, &(token, log_prob)) in picks.iter().enumerate() {
            if finished[r] {
                last[r] = i64::from(special::PAD);
                continue;
            }
            if log_prob == f32::NEG_INFINITY {
                // Every token was banned: the sequence cannot go on.
                finished[r] = true;
                continue;
            }
            log_probs[r] += f64::from(log_prob);
            if token == special::EOS as usize {
                finished[r] = true;
            } else {
                histories[r].push(token as u32);
            }
            last[r] = token as i64;
        }
        if finished.iter().all(|&f| f) {
            break;
        }
    }

    let mut out: Vec<Vec<Hypothesis>> = vec![Vec::with_capacity(per_source); n_sources];
    for (r, history) in histories.into_iter().enumerate() {
        let tokens = history[1..].to_vec();
        let ended = tokens.len() < config.max_new_tokens && finished[r];
        let length = tokens.len() + usize::from(ended);
        out[r / per_source].push(Hypothesis {
            score: normalised(log_probs[r], length, 1.0),
            log_prob: log_probs[r],
            tokens,
            finished: ended,
        });
    }
    out
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
pub(crate) fn beam_search<B: Backend, M: Seq2Seq<B>>(
    model: &M,
    memory: M::Memory,
    n_sources: usize,
    config: &GenerationConfig,
    device: &B::Device,
) -> Vec<Vec<Hypothesis>> {
    let DecodeStrategy::Beam {
        num_beams: k,
        length_penalty,
        early_stopping,
        num_return_sequences,
    } = config.strategy
    else {
        return Vec::new();
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

    for step in 0..config.max_new_tokens {
        let logits = model.decode_step(int_tensor(last.clone(), device), &memory, &mut cache);
        let [_, vocab_size] = logits.dims();
        let constraints = constraints.get_or_insert_with(|| {
            Constraints::new(
                vocab_size,
                config.min_new_tokens,
                config.no_repeat_ngram_size,
                device,
            )
        });
        let log_probs = constraints.apply(log_softmax(logits, 1), step, &histories);
        let running: Vec<f32> = scores.iter().map(|&s| s as f32).collect();
        let running = Tensor::<B, 1>::from_data(TensorData::new(running, [rows]), device)
            .reshape([rows, 1])
            .expand([rows, vocab_size]);
        // [n_sources, k * vocab]: every continuation of every beam of a sentence
        let candidates = (log_probs + running).reshape([n_sources, k * vocab_size]);
        let n_candidates = (2 * k).min(k * vocab_size);
        let (values, indices) = candidates.topk_with_indices(n_candidates, 1);
        let (values, indices) = (float_vec(values), int_vec(indices));

        let mut parents = Vec::with_capacity(rows);
        let mut next_tokens = Vec::with_capacity(rows);
        let mut next_scores = Vec::with_capacity(rows);
        for s in 0..n_sources {
            let first = parents.len();
            if !done[s] {
                for rank in 0..n_candidates {
                    let score = f64::from(values[s * n_candidates + rank]);
                    if !score.is_finite() {
                        break; // sorted: only dead continuations remain
                    }
                    let flat = indices[s * n_candidates + rank] as usize;
                    let (row, token) = (s * k + flat / vocab_size, flat % vocab_size);
                    if token == special::EOS as usize {
                        // Only an end among the top k candidates can finish a hypothesis.
                        if rank < k {
                            let tokens = histories[row][1..].to_vec();
                            finished[s].add(tokens, score, step + 1, true);
                        }
                    } else {
                        parents.push(row);
                        next_tokens.push(token as i64);
                        next_scores.push(score);
                        if parents.len() - first == k {
                            break;
                        }
                    }
                }
                let best = f64::from(values[s * n_candidates]);
                done[s] = finished[s].is_done(best, step + 1);
            }
            // Done sentences and missing beams are padded with dead rows.
            while parents.len() - first < k {
                parents.push(s * k);
                next_tokens.push(i64::from(special::PAD));
                next_scores.push(f64::NEG_INFINITY);
            }
        }
        histories = parents
            .iter()
            .zip(&next_tokens)
            .map(|(&p, &t)| {
                let mut h = histories[p].clone();
                h.push(t as u32);
                h
            })
            .collect();
        scores = next_scores;
        last = next_tokens;
        steps = step + 1;
        if done.iter().all(|&d| d) || steps == config.max_new_tokens {
            break;
        }
        let parents: Vec<i64> = parents.into_iter().map(|p| p as i64).collect();
        model.reorder_cache(&mut cache, int_tensor(parents, device));
    }

    finished
        .into_iter()
        .enumerate()
        .map(|(s, mut hyps)| {
            if !done[s] {
                // Out of steps: running beams compete as they are (HF's `finalize`).
                for row in s * k..(s + 1) * k {
                    if scores[row].is_finite() {
                        hyps.add(histories[row][1..].to_vec(), scores[row], steps, false);
                    }
                }
            }
            let mut best = hyps.best(num_return_sequences);
            if best.is_empty() {
                // Nothing could be generated at all (every token banned).
                best.push(Hypothesis {
                    tokens: Vec::new(),
                    score: f64::NEG_INFINITY,
                    log_prob: f64::NEG_INFINITY,
                    finished: false,
                });
            }
            best
        })
        .collect()
}
