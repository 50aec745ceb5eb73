//! Invariants of every decoding strategy on small random models (ndarray, f32).
#![allow(clippy::unwrap_used)]

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use proptest::prelude::*;
use s2s_generate::GenerationSettings;
use s2s_generate::{
    generate, DecodeStrategy, GenerateError, GenerationConfig, Hypothesis, IncrementalDecoder,
    Recompute,
};
use s2s_model::{special, DecoderMemory, DecoderState, ModelConfig, StackConfig, VocabSizes};

type B = NdArray<f32>;
type Model = s2s_model::Seq2Seq<B>;

fn model(target_vocab: usize, seed: u64) -> Model {
    let stack = StackConfig {
        d_model: 16,
        n_heads: 2,
        n_layers: 2,
        d_ff: 32,
    };
    let config = ModelConfig {
        encoder: stack.clone(),
        decoder: stack,
        max_positions: 40,
        dropout: 0.0,
        ..ModelConfig::default()
    };
    B::seed(&Default::default(), seed);
    let vocab = VocabSizes {
        source: 30,
        target: target_vocab,
    };
    config.init::<B>(vocab, &Default::default()).unwrap()
}

/// A small LSTM with Bahdanau attention over a bidirectional encoder.
fn rnn_model(target_vocab: usize, seed: u64) -> Model {
    let config = ModelConfig {
        family: s2s_model::ModelFamily::Rnn,
        rnn: Some(s2s_model::RnnConfig {
            embedding_size: 16,
            hidden_size: 16,
            n_layers: 2,
            attention: s2s_model::AttentionKind::Bahdanau,
            ..Default::default()
        }),
        max_positions: 40,
        dropout: 0.0,
        ..ModelConfig::default()
    };
    B::seed(&Default::default(), seed);
    let vocab = VocabSizes {
        source: 30,
        target: target_vocab,
    };
    config.init::<B>(vocab, &Default::default()).unwrap()
}

/// Both families.
fn models(target_vocab: usize, seed: u64) -> [Model; 2] {
    [model(target_vocab, seed), rnn_model(target_vocab, seed)]
}

fn transformer(m: &Model) -> &s2s_model::TransformerSeq2Seq<B> {
    match m {
        s2s_model::Seq2Seq::Transformer(t) => t,
        s2s_model::Seq2Seq::Rnn(_) => panic!("not a Transformer"),
    }
}

/// Mixed lengths, so batches carry padding.
fn sources() -> Vec<Vec<u32>> {
    vec![
        vec![5, 6, 7, 8, 9, 10, 2],
        vec![11, 12, 2],
        vec![13, 14, 15, 16, 2],
        vec![17, 2],
        vec![18, 19, 20, 21, 22, 23, 24, 25, 2],
        vec![26, 27, 28, 2],
    ]
}

fn device() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

fn beam(num_beams: usize, length_penalty: f64, num_return_sequences: usize) -> DecodeStrategy {
    DecodeStrategy::Beam {
        num_beams,
        length_penalty,
        early_stopping: false,
        num_return_sequences,
    }
}

fn sample(top_k: usize, top_p: f64, seed: u64, n: usize) -> DecodeStrategy {
    DecodeStrategy::Sample {
        temperature: 1.0,
        top_k,
        top_p,
        seed,
        num_return_sequences: n,
    }
}

fn run<M: IncrementalDecoder<B>>(
    model: &M,
    sources: &[Vec<u32>],
    config: &GenerationConfig,
) -> Vec<Vec<Hypothesis>> {
    generate(model, sources, config, &device()).unwrap()
}

fn tokens(out: &[Vec<Hypothesis>]) -> Vec<Vec<Vec<u32>>> {
    out.iter()
        .map(|hyps| hyps.iter().map(|h| h.tokens.clone()).collect())
        .collect()
}

fn assert_same(a: &[Vec<Hypothesis>], b: &[Vec<Hypothesis>], what: &str) {
    assert_eq!(tokens(a), tokens(b), "{what}: tokens differ");
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!(
            (x.score - y.score).abs() < 1e-4 && (x.log_prob - y.log_prob).abs() < 1e-4,
            "{what}: scores differ: {x:?} vs {y:?}"
        );
    }
}

#[test]
fn cached_generation_equals_recomputing_the_prefix_for_every_strategy() {
    let m = model(40, 1);
    for strategy in [
        DecodeStrategy::Greedy,
        beam(4, 1.0, 2),
        sample(0, 0.9, 5, 2),
    ] {
        let config = GenerationConfig::greedy(12).with_strategy(strategy.clone());
        let cached = run(&m, &sources(), &config);
        let recomputed = run(&Recompute(transformer(&m)), &sources(), &config);
        assert_same(&cached, &recomputed, &format!("{strategy:?}"));
    }
}

#[test]
fn beam_width_one_equals_greedy() {
    for m in models(40, 2) {
        beam_one_equals_greedy(&m);
    }
}

fn beam_one_equals_greedy(m: &Model) {
    let m = m.clone();
    let greedy = run(&m, &sources(), &GenerationConfig::greedy(15));
    let config = GenerationConfig::greedy(15).with_strategy(beam(1, 1.0, 1));
    let beam1 = run(&m, &sources(), &config);
    assert_same(&greedy, &beam1, "beam 1 vs greedy");
    // greedy's score is log_prob / length, length counting </s> when it ended
    for h in greedy.iter().flatten() {
        let length = h.tokens.len() + usize::from(h.finished);
        assert!((h.score - h.log_prob / length as f64).abs() < 1e-9);
    }
}

#[test]
fn sampling_with_top_k_one_equals_greedy() {
    for m in models(40, 3) {
        let greedy = run(&m, &sources(), &GenerationConfig::greedy(15));
        for seed in [0, 7] {
            let config = GenerationConfig::greedy(15).with_strategy(sample(1, 1.0, seed, 1));
            assert_same(
                &greedy,
                &run(&m, &sources(), &config),
                "top_k = 1 vs greedy",
            );
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_samples_whatever_the_batching() {
    let m = model(40, 4);
    let config = |seed, batch_size| GenerationConfig {
        batch_size,
        ..GenerationConfig::greedy(15).with_strategy(sample(0, 1.0, seed, 3))
    };
    let a = run(&m, &sources(), &config(42, 6));
    assert_same(&a, &run(&m, &sources(), &config(42, 6)), "same seed");
    assert_same(
        &a,
        &run(&m, &sources(), &config(42, 2)),
        "same seed, batch 2",
    );
    assert_ne!(tokens(&a), tokens(&run(&m, &sources(), &config(43, 6))));
    // The three samples of a source are different draws.
    assert!(a.iter().any(|hyps| hyps[0].tokens != hyps[1].tokens));
}

#[test]
fn batched_generation_equals_generating_each_source_alone() {
    // (Sampling draws from a stream keyed by the source's index in the request, so a source
    // sampled alone is index 0; batch-size independence of samples is tested above.)
    for (m, strategy) in models(40, 5)
        .into_iter()
        .flat_map(|m| [(m.clone(), DecodeStrategy::Greedy), (m, beam(4, 0.6, 3))])
    {
        let batched = GenerationConfig {
            batch_size: 6,
            ..GenerationConfig::greedy(12).with_strategy(strategy.clone())
        };
        let together = run(&m, &sources(), &batched);
        let alone: Vec<Vec<Hypothesis>> = sources()
            .iter()
            .map(|s| run(&m, std::slice::from_ref(s), &batched).remove(0))
            .collect();
        assert_same(&together, &alone, &format!("{strategy:?} batched vs alone"));
    }
}

/// Every emittable sequence of at most `max_len` tokens: the ones ended by `</s>` and the ones
/// cut at `max_len`, with their total log-probability from full (uncached) decoding.
fn enumerate(
    m: &Model,
    source: &[u32],
    vocab: usize,
    max_len: usize,
) -> Vec<(Vec<u32>, f64, bool)> {
    let dev = device();
    let src = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            source.iter().map(|&t| t as i64).collect(),
            [1, source.len()],
        ),
        &dev,
    );
    let m = transformer(m);
    let memory = m.encode_memory(src.clone(), src.equal_elem(-1));
    // log p(next | prefix) for a prefix (without <s>)
    let next = |prefix: &[u32]| -> Vec<f64> {
        let ids: Vec<i64> = std::iter::once(special::BOS)
            .chain(prefix.iter().copied())
            .map(i64::from)
            .collect();
        let n = ids.len();
        let logits = m.decode_prefix(
            Tensor::from_data(TensorData::new(ids, [1, n]), &dev),
            &memory,
        );
        let last = logits.slice([0..1, n - 1..n, 0..vocab]).reshape([1, vocab]);
        log_softmax(last, 1)
            .into_data()
            .convert::<f64>()
            .into_vec()
            .unwrap()
    };
    let emittable: Vec<u32> = (0..vocab as u32)
        .filter(|t| !s2s_generate::logits::NEVER_GENERATED.contains(t))
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![(Vec::<u32>::new(), 0.0f64)];
    for depth in 0..max_len {
        let mut grown = Vec::new();
        for (prefix, lp) in frontier {
            let probs = next(&prefix);
            for &t in &emittable {
                let total = lp + probs[t as usize];
                if t == special::EOS {
                    out.push((prefix.clone(), total, true));
                } else if depth + 1 == max_len {
                    let mut seq = prefix.clone();
                    seq.push(t);
                    out.push((seq, total, false));
                } else {
                    let mut seq = prefix.clone();
                    seq.push(t);
                    grown.push((seq, total));
                }
            }
        }
        frontier = grown;
    }
    out
}

#[test]
fn beam_as_wide_as_the_search_space_finds_the_exhaustive_optimum() {
    // Vocabulary of 7 (<pad> <s> </s> <unk> and three words): 4 emittable tokens (</s> and the
    // words), outputs of at most 4 tokens: 1 + 3 + 9 + 27 sequences ended by </s> and 81 cut
    // ones, 121 in all.
    let (vocab, max_len) = (7, 4);
    let m = model(vocab, 6);
    for source in [vec![5u32, 6, 7, 2], vec![9, 2]] {
        let all = enumerate(&m, &source, vocab, max_len);
        assert_eq!(all.len(), 121);
        for length_penalty in [1.0, 0.0, 2.5] {
            let mut ranked: Vec<(Vec<u32>, f64)> = all
                .iter()
                .map(|(seq, lp, ended)| {
                    let length = seq.len() + usize::from(*ended);
                    (seq.clone(), lp / (length as f64).powf(length_penalty))
                })
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let config =
                GenerationConfig::greedy(max_len).with_strategy(beam(all.len(), length_penalty, 5));
            let got = run(&m, std::slice::from_ref(&source), &config).remove(0);
            assert_eq!(got.len(), 5);
            for (rank, (h, (seq, score))) in got.iter().zip(&ranked).enumerate() {
                assert_eq!(&h.tokens, seq, "α = {length_penalty}, rank {rank}");
                assert!(
                    (h.score - score).abs() < 1e-5,
                    "α = {length_penalty}, rank {rank}: beam {} vs exhaustive {score}",
                    h.score
                );
            }
        }
    }
}

fn ngrams(h: &Hypothesis, n: usize) -> Vec<Vec<u32>> {
    let seq: Vec<u32> = std::iter::once(special::BOS)
        .chain(h.tokens.iter().copied())
        .collect();
    seq.windows(n).map(<[u32]>::to_vec).collect()
}

fn has_repeat(h: &Hypothesis, n: usize) -> bool {
    let grams = ngrams(h, n);
    let mut unique = grams.clone();
    unique.sort();
    unique.dedup();
    unique.len() < grams.len()
}

#[test]
fn no_repeat_ngram_size_never_emits_a_repeated_ngram() {
    // A random model with a small vocabulary loops, so repeats occur without the constraint.
    let m = model(12, 8);
    for strategy in [
        DecodeStrategy::Greedy,
        beam(3, 1.0, 3),
        sample(0, 1.0, 1, 3),
    ] {
        for n in [1, 2, 3] {
            let base = GenerationConfig::greedy(30).with_strategy(strategy.clone());
            let free = run(&m, &sources(), &base);
            assert!(
                free.iter().flatten().any(|h| has_repeat(h, n)),
                "{strategy:?}, n = {n}: the unconstrained outputs never repeat, so this test \
                 would prove nothing"
            );
            let config = GenerationConfig {
                no_repeat_ngram_size: n,
                ..base
            };
            for h in run(&m, &sources(), &config).iter().flatten() {
                assert!(!has_repeat(h, n), "{strategy:?}, n = {n}: {:?}", h.tokens);
            }
        }
    }
}

/// The model with `bias` added to the `</s>` logit, so that outputs end early.
fn eos_biased(model: &Model, bias: f32) -> Skewed<'_> {
    Skewed {
        model,
        tokens: vec![special::EOS],
        bias,
        nan_from: None,
    }
}

#[test]
fn min_new_tokens_suppresses_the_end_of_sequence() {
    let m = model(40, 9);
    let biased = eos_biased(&m, 4.0);
    for strategy in [
        DecodeStrategy::Greedy,
        beam(3, 1.0, 3),
        sample(0, 1.0, 2, 2),
    ] {
        let base = GenerationConfig::greedy(20).with_strategy(strategy.clone());
        let free = run(&biased, &sources(), &base);
        assert!(
            free.iter()
                .flatten()
                .any(|h| h.finished && h.tokens.len() < 5),
            "{strategy:?}: nothing ends early without the constraint"
        );
        let config = GenerationConfig {
            min_new_tokens: 5,
            ..base
        };
        for h in run(&biased, &sources(), &config).iter().flatten() {
            assert!(h.tokens.len() >= 5, "{strategy:?}: {:?}", h.tokens);
        }
    }
}

#[test]
fn beam_returns_n_best_sorted_and_distinct() {
    let m = model(40, 10);
    let config = GenerationConfig::greedy(10).with_strategy(beam(5, 1.0, 5));
    for hyps in run(&m, &sources(), &config) {
        assert_eq!(hyps.len(), 5);
        assert!(hyps.windows(2).all(|w| w[0].score >= w[1].score));
        let mut seqs: Vec<&Vec<u32>> = hyps.iter().map(|h| &h.tokens).collect();
        seqs.sort();
        seqs.dedup();
        assert_eq!(seqs.len(), 5, "n-best hypotheses are distinct");
        for h in &hyps {
            assert!(!h.tokens.contains(&special::PAD) && !h.tokens.contains(&special::BOS));
        }
    }
}

#[test]
fn too_long_requests_are_refused() {
    let m = model(40, 11);
    let err = generate(&m, &sources(), &GenerationConfig::greedy(41), &device()).unwrap_err();
    assert_eq!(
        err,
        GenerateError::TooLong {
            requested: 41,
            available: 40
        }
    );
}

#[test]
fn dropping_finished_rows_from_the_batch_changes_no_output() {
    // With a biased </s>, outputs end at different steps, so finished rows (greedy, sampling)
    // and finished sentences (beam) leave the batch mid-way; every output must equal the one
    // decoded alone (and, for sampling, with any batch size). The bias is the first that makes
    // output lengths differ, so the test cannot pass without pruning something.
    let m = model(40, 12);
    for strategy in [
        DecodeStrategy::Greedy,
        beam(3, 1.0, 2),
        sample(0, 1.0, 3, 2),
    ] {
        let config = |batch_size| GenerationConfig {
            batch_size,
            ..GenerationConfig::greedy(20).with_strategy(strategy.clone())
        };
        let varied = |out: &[Vec<Hypothesis>]| {
            let lengths: Vec<usize> = out.iter().flatten().map(|h| h.tokens.len()).collect();
            lengths.iter().min() < lengths.iter().max()
        };
        let (biased, together) = (2..=16)
            .map(|half_units| eos_biased(&m, half_units as f32 * 0.5))
            .map(|biased| {
                let out = run(&biased, &sources(), &config(6));
                (biased, out)
            })
            .find(|(_, out)| varied(out))
            .unwrap_or_else(|| panic!("{strategy:?}: no </s> bias makes output lengths differ"));
        let alone: Vec<Vec<Hypothesis>> = sources()
            .iter()
            .map(|s| run(&biased, std::slice::from_ref(s), &config(1)).remove(0))
            .collect();
        let by_one = run(&biased, &sources(), &config(1));
        assert_same(
            &together,
            &by_one,
            &format!("{strategy:?} batch 6 vs batch 1"),
        );
        if !matches!(strategy, DecodeStrategy::Sample { .. }) {
            assert_same(&together, &alone, &format!("{strategy:?} batched vs alone"));
        }
        let recomputed = run(&Recompute(transformer(&m)), &sources(), &config(6));
        let plain = run(&m, &sources(), &config(6));
        assert_same(
            &plain,
            &recomputed,
            &format!("{strategy:?} cache vs recompute"),
        );
    }
}

/// The model with `bias` added to the logits of `tokens` at every step; `NaN` from output
/// position `nan_from` (1-based) on, if set.
struct Skewed<'a> {
    model: &'a Model,
    tokens: Vec<u32>,
    bias: f32,
    nan_from: Option<usize>,
}

impl IncrementalDecoder<B> for Skewed<'_> {
    type Memory = DecoderMemory<B>;
    type Cache = DecoderState<B>;
    fn encode(&self, s: Tensor<B, 2, Int>, m: Tensor<B, 2, Bool>) -> DecoderMemory<B> {
        IncrementalDecoder::encode(self.model, s, m)
    }
    fn select_memory(&self, m: &DecoderMemory<B>, rows: Tensor<B, 1, Int>) -> DecoderMemory<B> {
        m.select(rows)
    }
    fn init_cache(&self, m: &DecoderMemory<B>, capacity: usize) -> DecoderState<B> {
        IncrementalDecoder::init_cache(self.model, m, capacity)
    }
    fn decode_step(
        &self,
        tokens: Tensor<B, 1, Int>,
        memory: &DecoderMemory<B>,
        cache: &mut DecoderState<B>,
    ) -> Tensor<B, 2> {
        let logits = IncrementalDecoder::decode_step(self.model, tokens, memory, cache);
        // the position being predicted, 1-based
        let position = cache.len();
        let [rows, vocab] = logits.dims();
        let mut bias = vec![0f32; vocab];
        for &t in &self.tokens {
            bias[t as usize] = self.bias;
        }
        if self.nan_from.is_some_and(|from| position >= from) {
            bias[vocab - 1] = f32::NAN;
        }
        let bias = Tensor::<B, 1>::from_data(TensorData::new(bias, [vocab]), &device());
        logits + bias.reshape([1, vocab]).expand([rows, vocab])
    }
    fn reorder_cache(&self, cache: &mut DecoderState<B>, rows: Tensor<B, 1, Int>) {
        cache.reorder(rows);
    }
    fn max_target_positions(&self) -> usize {
        IncrementalDecoder::max_target_positions(self.model)
    }
}

fn every_strategy() -> [DecodeStrategy; 3] {
    [
        DecodeStrategy::Greedy,
        beam(3, 1.0, 2),
        sample(0, 1.0, 4, 2),
    ]
}

#[test]
fn special_tokens_are_never_generated_even_when_the_model_prefers_them() {
    let m = model(40, 13);
    let specials = vec![special::PAD, special::BOS, special::UNK];
    let skewed = Skewed {
        model: &m,
        tokens: specials.clone(),
        bias: 30.0,
        nan_from: None,
    };
    for strategy in every_strategy() {
        let config = GenerationConfig::greedy(12).with_strategy(strategy.clone());
        let out = run(&skewed, &sources(), &config);
        for h in out.iter().flatten() {
            assert!(
                !h.tokens.iter().any(|t| specials.contains(t)),
                "{strategy:?}: {:?}",
                h.tokens
            );
            assert!(!h.tokens.is_empty() || h.finished, "{strategy:?}: {h:?}");
            assert!(
                h.log_prob.is_finite() && h.log_prob < 0.0 && h.score.is_finite(),
                "{strategy:?}: {h:?}"
            );
        }
        assert_eq!(
            out.iter().flatten().count(),
            6 * config.num_return_sequences()
        );
    }
}

#[test]
fn nan_scores_stop_every_strategy_with_the_position() {
    let m = model(40, 14);
    for nan_from in [1, 3] {
        let poisoned = Skewed {
            model: &m,
            tokens: Vec::new(),
            bias: 0.0,
            nan_from: Some(nan_from),
        };
        for strategy in every_strategy() {
            let config = GenerationConfig::greedy(12).with_strategy(strategy.clone());
            let err = generate(&poisoned, &sources(), &config, &device()).unwrap_err();
            assert_eq!(
                err,
                GenerateError::NonFinite { position: nan_from },
                "{strategy:?}"
            );
            assert!(
                err.to_string()
                    .starts_with("the model's scores are not finite (NaN) at output position"),
                "{err}"
            );
        }
    }
}

#[test]
fn a_tiny_temperature_samples_the_most_probable_token() {
    // 1e-40 underflowed every logit / temperature to −∞: empty samples scored 0.0 (perfect).
    let m = model(40, 15);
    let greedy = run(&m, &sources(), &GenerationConfig::greedy(15));
    for temperature in [1e-40, 1e-300, 1e-30] {
        let config = GenerationConfig::greedy(15).with_strategy(DecodeStrategy::Sample {
            temperature,
            top_k: 0,
            top_p: 1.0,
            seed: 3,
            num_return_sequences: 1,
        });
        let sampled = run(&m, &sources(), &config);
        assert_same(&greedy, &sampled, &format!("temperature {temperature}"));
        assert!(sampled.iter().flatten().all(|h| !h.tokens.is_empty()));
        assert!(sampled.iter().flatten().all(|h| h.log_prob < 0.0));
    }
}

#[test]
fn a_row_with_every_token_banned_ends_with_eos_at_the_model_probability() {
    // 5 words (ids 4..=8); no_repeat_ngram_size = 1 bans each word once used, and
    // min_new_tokens = 10 holds </s> back: after the 5 words nothing is left, so the rule ends
    // the sequence with </s>, scored with the model's own log-probability.
    let vocab = 9;
    let m = model(vocab, 16);
    for strategy in every_strategy() {
        let config = GenerationConfig {
            min_new_tokens: 10,
            no_repeat_ngram_size: 1,
            ..GenerationConfig::greedy(12).with_strategy(strategy.clone())
        };
        let out = run(&m, &sources(), &config);
        for h in out.iter().flatten() {
            let mut words = h.tokens.clone();
            words.sort_unstable();
            assert_eq!(words, vec![4, 5, 6, 7, 8], "{strategy:?}: {h:?}");
            assert!(h.finished, "{strategy:?}: {h:?}");
            assert!(h.log_prob.is_finite() && h.log_prob < 0.0, "{h:?}");
            // length 6 (five words and </s>), α = 1 for every strategy here
            assert!((h.score - h.log_prob / 6.0).abs() < 1e-9, "{h:?}");
        }
        assert_eq!(
            out.iter().flatten().count(),
            6 * config.num_return_sequences()
        );
    }
}

// Property test over the generation flags (proptest, bounded: 64 cases, so CI stays short): any
// combination of `[generation]` values, NaN and ±inf included, either resolves or is refused
// with an error, and a resolved one generates without a panic, never a special token, never
// more than `max_new_tokens` tokens, never a non-finite score.

/// Floats a user can type, and the ones that break arithmetic.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(1.0),
        Just(-1.0),
        Just(1e-40),
        Just(1e300),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        -5.0..5.0f64,
        0.0..1.0f64,
    ]
}

fn settings() -> impl Strategy<Value = GenerationSettings> {
    (
        (
            prop::option::of(0..12usize),
            0..12usize,
            0..6usize,
            float(),
            any::<bool>(),
            0..5usize,
        ),
        (
            any::<bool>(),
            float(),
            prop_oneof![Just(50usize), 0..15usize],
            float(),
            any::<u64>(),
            0..4usize,
            0..5usize,
        ),
        0..10u8,
    )
        .prop_map(
            |(
                (max_new_tokens, min_new_tokens, num_beams, length_penalty, early_stopping, n),
                (do_sample, temperature, top_k, top_p, seed, no_repeat_ngram_size, batch_size),
                coherent,
            )| {
                let mut s = GenerationSettings {
                    max_new_tokens,
                    min_new_tokens,
                    num_beams,
                    length_penalty,
                    early_stopping,
                    num_return_sequences: n,
                    do_sample,
                    temperature,
                    top_k,
                    top_p,
                    seed,
                    no_repeat_ngram_size,
                    batch_size,
                };
                // Most cases keep only the settings of their strategy, so that they reach
                // generation; the rest mix them, which must be refused, not panic.
                if coherent > 1 {
                    let defaults = GenerationSettings::default();
                    if s.do_sample {
                        s.num_beams = 1;
                        s.length_penalty = defaults.length_penalty;
                        s.early_stopping = false;
                    } else {
                        s.temperature = defaults.temperature;
                        s.top_k = defaults.top_k;
                        s.top_p = defaults.top_p;
                        s.num_return_sequences = s.num_return_sequences.min(s.num_beams).max(1);
                        if s.num_beams <= 1 {
                            s.length_penalty = defaults.length_penalty;
                            s.early_stopping = false;
                        }
                    }
                }
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_flags_resolve_or_are_refused_and_generation_stays_sane(settings in settings()) {
        let Ok(config) = settings.resolve(8) else {
            return Ok(());
        };
        let sources = vec![vec![5, 6, 7, 2], vec![8, 2], vec![9, 10, 11, 12, 13, 2]];
        let device = Default::default();
        let Ok(out) = generate(&model(12, 5), &sources, &config, &device) else {
            return Ok(());
        };
        prop_assert_eq!(out.len(), sources.len());
        for hyps in out {
            prop_assert_eq!(hyps.len(), config.num_return_sequences());
            for h in hyps {
                prop_assert!(h.tokens.len() <= config.max_new_tokens, "{:?}", h);
                prop_assert!(
                    !h.tokens.iter().any(|t| [special::PAD, special::BOS, special::UNK, special::EOS].contains(t)),
                    "special token in {:?}", h
                );
                prop_assert!(h.score.is_finite() && h.log_prob.is_finite(), "{:?}", h);
                prop_assert!(h.log_prob < 0.0, "a hypothesis cannot be certain: {:?}", h);
            }
        }
    }
}
