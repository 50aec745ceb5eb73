//! Logits processing: the constraints every strategy applies (never `<pad>`/`<s>`,
//! `min_new_tokens`, `no_repeat_ngram_size`) and the sampling filters (temperature, top-k,
//! top-p), with HF's semantics.
//!
//! Constraints act on log-probabilities on the device (a banned token gets −∞, the others keep
//! their log-probability, as in HF's beam search); sampling filters act on one row at a time on
//! the CPU, where a seeded random stream per sequence makes draws reproducible on every backend.

use burn::prelude::*;
use rand::RngExt;
use s2s_model::special;

/// Tokens no strategy ever emits: padding and `<s>` are inputs, never outputs.
pub const NEVER_GENERATED: [u32; 2] = [special::PAD, special::BOS];

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
/// `temperature`, then top-k, then top-p, then softmax — HF's warper order.
pub fn sampling_distribution(
    logits: &[f32],
    temperature: f64,
    top_k: usize,
    top_p: f64,
) -> Vec<f64> {
    let mut scaled: Vec<f32> = logits
        .iter()
        .map(|&x| (x as f64 / temperature) as f32)
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

/// The constraints of one generation request, applied to `[rows, vocab_size]` log-probabilities
/// on the device.
#[derive(Debug)]
pub(crate) struct Constraints<B: Backend> {
    /// `[1, vocab_size]`: 0, or −∞ at `<pad>` and `<s>`.
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
        config: &crate::GenerationConfig,
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
            never_or_eos: row(&[special::PAD, special::BOS, special::EOS]),
            min_new_tokens,
            no_repeat_ngram_size,
            vocab_size,
        }
    }

    /// Applies the bans for `step` (0-based: the number of tokens generated so far) given each
    /// row's history (`<s>` first).
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
        let fixed = if step < self.min_new_tokens {
            &self.never_or_eos
        } else {
            &self.never
        };
        let mut out = log_probs + fixed.clone().expand([rows, vocab_size]);
        if self.no_repeat_ngram_size > 0 {
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
            if any {
                let device = out.device();
                out = out + Tensor::from_data(TensorData::new(mask, [rows, vocab_size]), &device);
            }
        }
        out
    }
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
