//! Greedy decoding and sampling of one padded batch (HF's `GenerationMixin._sample`, which
//! serves both): one row per output sequence (`num_return_sequences` rows per source for
//! sampling), and at every step one token per running row, the argmax or a draw. A row that
//! produced `</s>` leaves the batch (fairseq's pruning), so a long output does not make its
//! batch-mates pay for every extra step.
//!
//! The loop calls three steps: process the logits ([`crate::logits`]), pick a token per row
//! ([`Picker`]), and record the picks ([`Rows`]).

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use s2s_model::special;

use crate::config::{DecodeStrategy, GenerationConfig};
use crate::error::GenerateError;
use crate::host::{float_vec, int_tensor, int_vec, repeat_rows};
use crate::hypothesis::{normalised, Hypothesis};
use crate::logits::{check_finite, draw, sampling_distribution, LogitsProcessor};
use crate::model::IncrementalDecoder;

/// Greedy decoding or sampling of one batch. `sources[i]` is the stream key of memory row `i`
/// (the caller's index of the source, or the key [`crate::generate_keyed`] was given; it seeds
/// the random streams). Returns the hypotheses per source, in draw order.
///
/// # Errors
/// [`GenerateError::NonFinite`] on NaN model scores, [`GenerateError::NoCandidate`] when a row
/// has no possible token.
pub(crate) fn greedy_or_sample<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    memory: M::Memory,
    sources: &[usize],
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Vec<Hypothesis>>, GenerateError> {
    let (mut picker, per_source) = Picker::for_strategy(&config.strategy, sources);
    let n_sources = sources.len();
    let mut memory = if per_source > 1 {
        model.select_memory(&memory, repeat_rows(n_sources, per_source, device))
    } else {
        memory
    };
    let mut cache = model.init_cache(&memory, config.max_new_tokens);
    let mut rows = Rows::new(n_sources * per_source);
    let mut processor = LogitsProcessor::new(config, device);

    for step in 0..config.max_new_tokens {
        let logits = model.decode_step(int_tensor(rows.fed(), device), &memory, &mut cache);
        let scores = processor.process(logits, step, &rows.active_histories());
        let picks = picker.pick(scores, &rows.active, step)?;
        rows.record(&picks, step)?;
        let keep = rows.still_running();
        if keep.is_empty() {
            break;
        }
        if keep.len() < rows.active.len() && step + 1 < config.max_new_tokens {
            let kept = int_tensor(keep.iter().map(|&i| i as i64).collect(), device);
            model.reorder_cache(&mut cache, kept.clone());
            memory = model.select_memory(&memory, kept);
            rows.keep(&keep);
        }
    }
    Ok(rows.into_hypotheses(n_sources, per_source))
}

/// How each running row's next token is chosen.
#[derive(Debug)]
enum Picker {
    /// The most probable token.
    Greedy,
    /// A draw from the filtered distribution (see [`sampling_distribution`]), from one seeded
    /// random stream per row.
    Sample {
        temperature: f64,
        top_k: usize,
        top_p: f64,
        /// Indexed by row (`source · per_source + sample`).
        rngs: Vec<StdRng>,
    },
}

impl Picker {
    /// The picker `strategy` asks for and the rows it decodes per source. `sources[i]` is the
    /// caller's index of source `i`, which keys its random streams.
    fn for_strategy(strategy: &DecodeStrategy, sources: &[usize]) -> (Self, usize) {
        match *strategy {
            DecodeStrategy::Sample {
                temperature,
                top_k,
                top_p,
                seed,
                num_return_sequences: per_source,
            } => {
                let rngs = (0..sources.len() * per_source)
                    .map(|r| {
                        let seed = stream_seed(seed, sources[r / per_source], r % per_source);
                        StdRng::seed_from_u64(seed)
                    })
                    .collect();
                let picker = Self::Sample {
                    temperature,
                    top_k,
                    top_p,
                    rngs,
                };
                (picker, per_source)
            }
            _ => (Self::Greedy, 1),
        }
    }

    /// The token picked for each running row and its (constrained) log-probability. `active`
    /// lists the rows of `scores`, `step` is 0-based.
    ///
    /// # Shapes
    /// - `scores`: `[active.len(), vocab_size]` log-probabilities
    ///
    /// # Errors
    /// [`GenerateError::NonFinite`] when a row holds a NaN.
    fn pick<B: Backend>(
        &mut self,
        scores: Tensor<B, 2>,
        active: &[usize],
        step: usize,
    ) -> Result<Vec<(usize, f32)>, GenerateError> {
        match self {
            Self::Greedy => {
                // [rows, 2]: the best log-probability and the row sum (NaN iff the row holds
                // one), fetched together
                let sums = scores.clone().sum_dim(1);
                let (values, indices) = scores.max_dim_with_indices(1);
                let stats = float_vec(Tensor::cat(vec![values, sums], 1));
                check_finite(&stats, step)?;
                Ok(int_vec(indices)
                    .into_iter()
                    .map(|i| i as usize)
                    .zip(stats.chunks_exact(2).map(|pair| pair[0]))
                    .collect())
            }
            Self::Sample {
                temperature,
                top_k,
                top_p,
                rngs,
            } => {
                let [_, vocab_size] = scores.dims();
                let data = float_vec(scores);
                check_finite(&data, step)?;
                Ok(active
                    .iter()
                    .enumerate()
                    .map(|(i, &r)| {
                        let row = &data[i * vocab_size..(i + 1) * vocab_size];
                        let probs = sampling_distribution(row, *temperature, *top_k, *top_p);
                        let token = draw(&probs, &mut rngs[r]);
                        (token, row[token])
                    })
                    .collect())
            }
        }
    }
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

/// What every row has generated so far, and which rows are still decoding.
#[derive(Debug)]
struct Rows {
    /// Per row: `<s>`, then the generated tokens (`</s>` excluded).
    histories: Vec<Vec<u32>>,
    /// Per row: the sum of the picked tokens' log-probabilities.
    log_probs: Vec<f64>,
    /// Per row: whether it produced `</s>`.
    ended: Vec<bool>,
    /// Per row: the token fed at the next step.
    last: Vec<i64>,
    /// Rows still decoding, in batch order (row `active[i]` is row `i` of the model's batch).
    active: Vec<usize>,
}

impl Rows {
    fn new(rows: usize) -> Self {
        Self {
            histories: vec![vec![special::BOS]; rows],
            log_probs: vec![0f64; rows],
            ended: vec![false; rows],
            last: vec![i64::from(special::BOS); rows],
            active: (0..rows).collect(),
        }
    }

    /// The tokens the running rows feed to the model next.
    fn fed(&self) -> Vec<i64> {
        self.active.iter().map(|&r| self.last[r]).collect()
    }

    fn active_histories(&self) -> Vec<&[u32]> {
        self.active
            .iter()
            .map(|&r| &self.histories[r][..])
            .collect()
    }

    /// Appends each running row's pick (`active[i]` gets `picks[i]`); `</s>` ends the row.
    ///
    /// # Errors
    /// [`GenerateError::NoCandidate`] when a pick has log-probability −∞.
    fn record(&mut self, picks: &[(usize, f32)], step: usize) -> Result<(), GenerateError> {
        for (&r, &(token, log_prob)) in self.active.iter().zip(picks) {
            if log_prob == f32::NEG_INFINITY {
                // Not even `</s>` is possible (the constraints already gave it back its model
                // log-probability): the model excludes it outright.
                return Err(GenerateError::NoCandidate { position: step + 1 });
            }
            self.log_probs[r] += f64::from(log_prob);
            if token == special::EOS as usize {
                self.ended[r] = true;
            } else {
                self.histories[r].push(token as u32);
            }
            self.last[r] = token as i64;
        }
        Ok(())
    }

    /// Positions in `active` of the rows that have not ended.
    fn still_running(&self) -> Vec<usize> {
        (0..self.active.len())
            .filter(|&i| !self.ended[self.active[i]])
            .collect()
    }

    /// Keeps the running rows at positions `keep` of `active`, as the cache and memory did.
    fn keep(&mut self, keep: &[usize]) {
        self.active = keep.iter().map(|&i| self.active[i]).collect();
    }

    /// Row `r` becomes hypothesis `r % per_source` of source `r / per_source`, scored with
    /// length penalty 1.
    fn into_hypotheses(self, n_sources: usize, per_source: usize) -> Vec<Vec<Hypothesis>> {
        let mut out: Vec<Vec<Hypothesis>> = vec![Vec::with_capacity(per_source); n_sources];
        for (r, history) in self.histories.into_iter().enumerate() {
            let tokens = history[1..].to_vec();
            let length = tokens.len() + usize::from(self.ended[r]);
            out[r / per_source].push(Hypothesis {
                score: normalised(self.log_probs[r], length, 1.0),
                log_prob: self.log_probs[r],
                tokens,
                finished: self.ended[r],
            });
        }
        out
    }
}
