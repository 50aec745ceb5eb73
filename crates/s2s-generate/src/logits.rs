//! Logits processing: the constraints every strategy applies (never `<pad>`/`<s>`/`<unk>`,
//! `min_new_tokens`, `no_repeat_ngram_size`) and the sampling filters (temperature, top-k,
//! top-p), with HF's semantics.
//!
//! Constraints act on log-probabilities on the device (a banned token gets −∞, the others keep
//! their log-probability, as in HF's beam search); sampling filters act on one row at a time on
//! the CPU, where a seeded random stream per sequence makes draws reproducible on every backend.
//!
//! The processors of one step, in the order they run, with the HF processor each follows
//! (transformers `generation/logits_process.py`) in brackets:
//!
//! 1. log-softmax over the vocabulary (`LogitsProcessor::process`, as HF's beam search);
//! 2. never `<pad>`, `<s>` or `<unk>` (`SuppressTokensLogitsProcessor`), and no `</s>` before
//!    `min_new_tokens` (`MinNewTokensLengthLogitsProcessor`): one precomputed row added to the
//!    log-probabilities, so an ordinary step costs one device addition
//!    (`Constraints::suppress_tokens`);
//! 3. no repeated n-gram (`NoRepeatNGramLogitsProcessor`): [`banned_ngram_tokens`], applied by
//!    `Constraints::ban_repeated_ngrams`;
//! 4. a row left with no token ends with `</s>` (`end_empty_rows`; the rule below);
//! 5. a row holding a NaN is refused (`check_finite`; the rule below);
//! 6. sampling only, on the host, one row at a time: temperature (`TemperatureLogitsWarper`),
//!    top-k ([`top_k_filter`], `TopKLogitsWarper`) and top-p ([`top_p_filter`],
//!    `TopPLogitsWarper`), all in [`sampling_distribution`].
//!
//! # Degenerate distributions: one rule for every strategy
//!
//! - **NaN.** A row of model log-probabilities holding a NaN (NaN or infinite logits: damaged
//!   weights, a diverged run) stops generation with [`GenerateError::NonFinite`]; no token is
//!   ever picked from it (before this rule, greedy decoding "picked" `<pad>` with a NaN score).
//! - **Every token banned.** When the constraints leave a row no token at all (n-gram bans on a
//!   small vocabulary, with `</s>` held back by `min_new_tokens`), the sequence ends there: `</s>`
//!   is allowed again at the model's own log-probability, so the hypothesis is finished and
//!   scored honestly; `min_new_tokens` yields to the bans, never the other way round. Only if the
//!   model itself gives `</s>` probability 0 is it an error ([`GenerateError::NoCandidate`]).
//! - **Temperature.** Softmax is shift-invariant, so [`sampling_distribution`] subtracts the
//!   row's maximum before dividing by the temperature: the most probable token keeps scaled
//!   logit 0 and probability > 0 for any temperature > 0. A tiny temperature is the argmax
//!   (ties shared), a huge one is uniform over the allowed tokens; neither can overflow into an
//!   all-zero distribution. Top-k and top-p always keep at least the most probable token.
//!
//! So every strategy either returns hypotheses made of ordinary tokens with finite scores, or
//! an error that names the cause; never a special token as text, never an empty hypothesis
//! with a made-up perfect score.
//!
//! [`GenerateError::NonFinite`]: crate::GenerateError::NonFinite
//! [`GenerateError::NoCandidate`]: crate::GenerateError::NoCandidate

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::RngExt;
use s2s_model::special;

use crate::config::GenerationConfig;
use crate::error::GenerateError;

/// Tokens no strategy ever emits: padding and `<s>` are inputs, never outputs, and `<unk>`
/// never occurs in a byte-level BPE target (every byte has a symbol), so a model can only emit
/// it by accident, and it would decode to nothing.
pub const NEVER_GENERATED: [u32; 3] = [special::PAD, special::BOS, special::UNK];

/// Tokens that would complete an n-gram of size `n` already present in `history` (HF's
/// `NoRepeatNGramLogitsProcessor`: the last `n - 1` tokens are matched against every earlier
/// n-gram). `history` starts with `<s>`, as HF's decoder input ids do.
pub fn banned_ngram_tokens(history: &[u32], n: usize) -> Vec<u32> {
    if n == 0 || history.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &history[history.len() + 1 - n..];
    let mut banned: Vec<u32> = history
        .windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect();
    banned.sort_unstable();
    banned.dedup();
    banned
}

/// Keeps the `k` largest logits and every logit tied with the k-th (HF's `TopKLogitsWarper`);
/// the rest become −∞. `k = 0` keeps everything.
pub fn top_k_filter(logits: &mut [f32], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut sorted: Vec<f32> = logits.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let threshold = sorted[k - 1];
    for x in logits.iter_mut() {
        if *x < threshold {
            *x = f32::NEG_INFINITY;
        }
    }
}

/// Keeps the smallest set of most probable tokens whose probability mass reaches `p`, always at
/// least the most probable one (HF's `TopPLogitsWarper`: in ascending order, tokens whose
/// cumulative mass is ≤ `1 − p` are removed). `p = 1` keeps everything.
pub fn top_p_filter(logits: &mut [f32], p: f64) {
    if p >= 1.0 {
        return;
    }
    let probs = softmax(logits);
    let mut ascending: Vec<usize> = (0..logits.len()).collect();
    ascending.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    let mut cumulative = 0.0;
    let last = ascending.len().saturating_sub(1);
    for (rank, &token) in ascending.iter().enumerate() {
        cumulative += probs[token];
        if cumulative <= 1.0 - p && rank < last {
            logits[token] = f32::NEG_INFINITY;
        }
    }
}

/// Softmax in f64; −∞ logits get probability 0.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if max == f64::NEG_INFINITY {
        return vec![0.0; logits.len()];
    }
    let exp: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The distribution a sampler draws from: logits (or log-probabilities) divided by
/// `temperature`, then top-k, then top-p, then softmax — HF's warper order. The row's maximum
/// is subtracted before dividing (softmax does not change), so the most probable token keeps
/// probability > 0 whatever the temperature (> 0): 1e-40 is the argmax, not an all-zero row.
/// A row that is −∞ everywhere gives all zeros.
pub fn sampling_distribution(
    logits: &[f32],
    temperature: f64,
    top_k: usize,
    top_p: f64,
) -> Vec<f64> {
    let max = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    if max == f64::NEG_INFINITY {
        return vec![0.0; logits.len()];
    }
    let mut scaled: Vec<f32> = logits
        .iter()
        .map(|&x| ((f64::from(x) - max) / temperature) as f32)
        .collect();
    top_k_filter(&mut scaled, top_k);
    top_p_filter(&mut scaled, top_p);
    softmax(&scaled)
}

/// Draws an index from `probs` (which sum to 1) by inverting the cumulative distribution.
pub fn draw(probs: &[f64], rng: &mut impl RngExt) -> usize {
    let u: f64 = rng.random::<f64>();
    let mut cumulative = 0.0;
    let mut last_possible = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cumulative += p;
            last_possible = i;
            if u < cumulative {
                return i;
            }
        }
    }
    // Rounding left u above the total mass: the last token with mass.
    last_possible
}

/// Refuses a step whose scores hold a NaN (the module's rule for degenerate distributions):
/// `row_values` are host values of the constrained log-probabilities, or any reduction that
/// keeps NaN (a row sum). `step` is 0-based.
///
/// # Errors
/// [`GenerateError::NonFinite`] with the 1-based output position.
pub(crate) fn check_finite(row_values: &[f32], step: usize) -> Result<(), GenerateError> {
    if row_values.iter().any(|x| x.is_nan()) {
        return Err(GenerateError::NonFinite { position: step + 1 });
    }
    Ok(())
}

/// The device-side processors of one generation request, in order: log-softmax, then the
/// [`Constraints`]. The constraints are built on the first step, when the logits give the
/// vocabulary size.
#[derive(Debug)]
pub(crate) struct LogitsProcessor<'a, B: Backend> {
    config: &'a GenerationConfig,
    device: &'a B::Device,
    constraints: Option<Constraints<B>>,
}

impl<'a, B: Backend> LogitsProcessor<'a, B> {
    pub(crate) fn new(config: &'a GenerationConfig, device: &'a B::Device) -> Self {
        Self {
            config,
            device,
            constraints: None,
        }
    }

    /// The constrained log-probabilities of one step. `step` is 0-based (tokens generated so
    /// far) and `histories` holds each row's tokens, `<s>` first.
    ///
    /// # Shapes
    /// - `logits`: `[rows, vocab_size]` → `[rows, vocab_size]`
    pub(crate) fn process(
        &mut self,
        logits: Tensor<B, 2>,
        step: usize,
        histories: &[&[u32]],
    ) -> Tensor<B, 2> {
        let [_, vocab_size] = logits.dims();
        let (config, device) = (self.config, self.device);
        let constraints = self
            .constraints
            .get_or_insert_with(|| Constraints::for_config(vocab_size, config, device));
        constraints.apply(log_softmax(logits, 1), step, histories)
    }
}

/// The constraints of one generation request, applied to `[rows, vocab_size]` log-probabilities
/// on the device.
#[derive(Debug)]
pub(crate) struct Constraints<B: Backend> {
    /// `[1, vocab_size]`: 0, or −∞ at the [`NEVER_GENERATED`] tokens.
    never: Tensor<B, 2>,
    /// `[1, vocab_size]`: also −∞ at `</s>`.
    never_or_eos: Tensor<B, 2>,
    min_new_tokens: usize,
    no_repeat_ngram_size: usize,
    vocab_size: usize,
}

impl<B: Backend> Constraints<B> {
    /// The constraints `config` asks for, over a vocabulary of `vocab_size`.
    pub(crate) fn for_config(
        vocab_size: usize,
        config: &GenerationConfig,
        device: &B::Device,
    ) -> Self {
        Self::new(
            vocab_size,
            config.min_new_tokens,
            config.no_repeat_ngram_size,
            device,
        )
    }

    pub(crate) fn new(
        vocab_size: usize,
        min_new_tokens: usize,
        no_repeat_ngram_size: usize,
        device: &B::Device,
    ) -> Self {
        let row = |banned: &[u32]| {
            let mut data = vec![0f32; vocab_size];
            for &t in banned {
                if let Some(x) = data.get_mut(t as usize) {
                    *x = f32::NEG_INFINITY;
                }
            }
            Tensor::<B, 1>::from_data(TensorData::new(data, [vocab_size]), device)
                .reshape([1, vocab_size])
        };
        Self {
            never: row(&NEVER_GENERATED),
            never_or_eos: row(&[NEVER_GENERATED.as_slice(), &[special::EOS]].concat()),
            min_new_tokens,
            no_repeat_ngram_size,
            vocab_size,
        }
    }

    /// Applies the bans for `step` (0-based: the number of tokens generated so far) given each
    /// row's history (`<s>` first). A row left with no token ends: its `</s>` gets back the
    /// model's log-probability (the module's rule for degenerate distributions). NaN rows stay
    /// NaN for the caller to refuse.
    ///
    /// # Shapes
    /// - `log_probs`: `[rows, vocab_size]` → `[rows, vocab_size]`
    pub(crate) fn apply(
        &self,
        log_probs: Tensor<B, 2>,
        step: usize,
        histories: &[&[u32]],
    ) -> Tensor<B, 2> {
        let [rows, vocab_size] = log_probs.dims();
        let eos = special::EOS as usize;
        let holds_eos_back = step < self.min_new_tokens;
        // Only n-gram bans or a held-back `</s>` can empty a row (a finite model's
        // log-probabilities are finite), so the check costs nothing on ordinary steps.
        let may_empty = (self.no_repeat_ngram_size > 0 || holds_eos_back) && vocab_size > eos;
        let model_eos = may_empty.then(|| log_probs.clone().slice([0..rows, eos..eos + 1]));
        let out = self.suppress_tokens(log_probs, holds_eos_back);
        let out = self.ban_repeated_ngrams(out, histories);
        match model_eos {
            Some(model_eos) => end_empty_rows(out, model_eos),
            None => out,
        }
    }

    /// −∞ at the [`NEVER_GENERATED`] tokens, and at `</s>` while `holds_eos_back` (HF's
    /// `SuppressTokensLogitsProcessor` and `MinNewTokensLengthLogitsProcessor`, one addition).
    ///
    /// # Shapes
    /// - `log_probs`: `[rows, vocab_size]` → `[rows, vocab_size]`
    fn suppress_tokens(&self, log_probs: Tensor<B, 2>, holds_eos_back: bool) -> Tensor<B, 2> {
        let [rows, vocab_size] = log_probs.dims();
        let fixed = if holds_eos_back {
            &self.never_or_eos
        } else {
            &self.never
        };
        log_probs + fixed.clone().expand([rows, vocab_size])
    }

    /// −∞ at every token that would repeat an n-gram of the row's history (HF's
    /// `NoRepeatNGramLogitsProcessor`, through [`banned_ngram_tokens`]); no device work when
    /// nothing is banned.
    ///
    /// # Shapes
    /// - `log_probs`: `[rows, vocab_size]` → `[rows, vocab_size]`
    fn ban_repeated_ngrams(&self, log_probs: Tensor<B, 2>, histories: &[&[u32]]) -> Tensor<B, 2> {
        if self.no_repeat_ngram_size == 0 {
            return log_probs;
        }
        let [rows, vocab_size] = log_probs.dims();
        let mut mask = vec![0f32; rows * self.vocab_size];
        let mut any = false;
        for (row, history) in histories.iter().enumerate() {
            for token in banned_ngram_tokens(history, self.no_repeat_ngram_size) {
                if let Some(x) = mask.get_mut(row * self.vocab_size + token as usize) {
                    *x = f32::NEG_INFINITY;
                    any = true;
                }
            }
        }
        if !any {
            return log_probs;
        }
        let device = log_probs.device();
        log_probs + Tensor::from_data(TensorData::new(mask, [rows, vocab_size]), &device)
    }
}

/// Gives `</s>` back its model log-probability `model_eos` in every row the processors left
/// with no token at all, so that the sequence ends there (the module's rule for degenerate
/// distributions).
///
/// # Shapes
/// - `log_probs`: `[rows, vocab_size]`, `model_eos`: `[rows, 1]` → `[rows, vocab_size]`
fn end_empty_rows<B: Backend>(log_probs: Tensor<B, 2>, model_eos: Tensor<B, 2>) -> Tensor<B, 2> {
    let [rows, _] = log_probs.dims();
    let eos = special::EOS as usize;
    // [rows, 1]: every token banned
    let empty = log_probs.clone().max_dim(1).equal_elem(f32::NEG_INFINITY);
    let eos_column = log_probs
        .clone()
        .slice([0..rows, eos..eos + 1])
        .mask_where(empty, model_eos);
    log_probs.slice_assign([0..rows, eos..eos + 1], eos_column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn kept(logits: &[f32]) -> Vec<usize> {
        (0..logits.len())
            .filter(|&i| logits[i] > f32::NEG_INFINITY)
            .collect()
    }

    #[test]
    fn top_k_keeps_exactly_the_k_largest_and_ties() {
        let mut x = vec![0.1, 2.0, -1.0, 1.5, 0.3, 1.5];
        top_k_filter(&mut x, 2);
        // 2.0, then 1.5 — tied twice, both kept as in HF
        assert_eq!(kept(&x), vec![1, 3, 5]);
        let mut x = vec![0.1, 2.0, -1.0, 1.5, 0.3];
        top_k_filter(&mut x, 1);
        assert_eq!(kept(&x), vec![1]);
        let mut x = vec![0.1, 2.0, -1.0];
        top_k_filter(&mut x, 0);
        assert_eq!(kept(&x), vec![0, 1, 2]);
    }

    #[test]
    fn top_p_keeps_the_smallest_prefix_reaching_p() {
        // probabilities 0.5, 0.25, 0.15, 0.1 (as log-probabilities, out of order)
        let probs = [0.15f64, 0.5, 0.1, 0.25];
        let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let expect = |p: f64, tokens: Vec<usize>| {
            let mut x = logits.clone();
            top_p_filter(&mut x, p);
            assert_eq!(kept(&x), tokens, "top_p = {p}");
        };
        expect(0.45, vec![1]); // 0.5 alone reaches 0.45
        expect(0.6, vec![1, 3]); // 0.5 < 0.6 ≤ 0.75
        expect(0.7, vec![1, 3]);
        expect(0.8, vec![0, 1, 3]); // 0.75 < 0.8 ≤ 0.9
        expect(0.95, vec![0, 1, 2, 3]);
        expect(1.0, vec![0, 1, 2, 3]);
        expect(0.01, vec![1]); // always at least the most probable
    }

    #[test]
    fn sampling_distribution_renormalises_after_filters() {
        let logits: Vec<f32> = [0.5f64, 0.25, 0.15, 0.1]
            .iter()
            .map(|p| p.ln() as f32)
            .collect();
        let p = sampling_distribution(&logits, 1.0, 2, 1.0);
        let expected = [2.0 / 3.0, 1.0 / 3.0, 0.0, 0.0];
        for (a, b) in p.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{p:?}");
        }
        // temperature 0.5 squares the probabilities before renormalising
        let p = sampling_distribution(&logits, 0.5, 0, 1.0);
        let z: f64 = [0.25f64, 0.0625, 0.0225, 0.01].iter().sum();
        for (a, b) in p.iter().zip([0.25 / z, 0.0625 / z, 0.0225 / z, 0.01 / z]) {
            assert!((a - b).abs() < 1e-6, "{p:?}");
        }
    }

    #[test]
    fn any_positive_temperature_keeps_the_most_probable_token() {
        // Dividing first overflowed every logit to −∞ at 1e-40: an all-zero distribution.
        let logits = [-3.0f32, -0.5, -0.5, f32::NEG_INFINITY, -9.0];
        for temperature in [1e-40, 1e-300, f64::MIN_POSITIVE] {
            let p = sampling_distribution(&logits, temperature, 0, 1.0);
            assert_eq!(p, vec![0.0, 0.5, 0.5, 0.0, 0.0], "{temperature}");
        }
        // a huge temperature is uniform over the allowed tokens
        let p = sampling_distribution(&logits, 1e300, 0, 1.0);
        assert_eq!(p, vec![0.25, 0.25, 0.25, 0.0, 0.25]);
        assert_eq!(
            sampling_distribution(&[f32::NEG_INFINITY; 3], 1e-40, 0, 1.0),
            vec![0.0; 3]
        );
    }

    #[test]
    fn empirical_frequencies_match_the_filtered_distribution() {
        // top_k = 4 then top_p = 0.9 over 6 tokens; 100,000 draws; Pearson's chi-square with
        // (kept − 1) degrees of freedom must stay under the 0.999 quantile, and filtered tokens
        // must never be drawn.
        let logits: Vec<f32> = [1.2f32, 0.3, -0.5, 2.0, 0.9, -2.0].to_vec();
        let probs = sampling_distribution(&logits, 0.8, 4, 0.9);
        let support: Vec<usize> = (0..6).filter(|&i| probs[i] > 0.0).collect();
        assert_eq!(
            support,
            vec![0, 3, 4],
            "top-k 4 → {{3,0,4,1}}, top-p 0.9 drops 1"
        );
        let n = 100_000;
        let mut counts = [0usize; 6];
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..n {
            counts[draw(&probs, &mut rng)] += 1;
        }
        assert_eq!(counts[1] + counts[2] + counts[5], 0, "{counts:?}");
        let chi2: f64 = support
            .iter()
            .map(|&i| {
                let expected = probs[i] * n as f64;
                (counts[i] as f64 - expected).powi(2) / expected
            })
            .sum();
        // chi-square 0.999 quantile with 2 degrees of freedom
        assert!(
            chi2 < 13.82,
            "chi2 = {chi2}, counts {counts:?}, probs {probs:?}"
        );
    }

    #[test]
    fn banned_ngrams_follow_hf() {
        // history <s> a b c a b → the 3-grams (a b c) and the prefix (a b) ban c
        let (a, b, c) = (10, 11, 12);
        let bos = special::BOS;
        assert_eq!(banned_ngram_tokens(&[bos, a, b, c, a, b], 3), vec![c]);
        assert_eq!(banned_ngram_tokens(&[bos, a, b, c, a], 2), vec![b]);
        assert_eq!(banned_ngram_tokens(&[bos, a, b], 1), vec![bos, a, b]);
        assert!(banned_ngram_tokens(&[bos, a], 3).is_empty());
        assert!(banned_ngram_tokens(&[bos, a, b, c], 0).is_empty());
    }
}
