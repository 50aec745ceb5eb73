//! Property tests over the generation flags (proptest, bounded: 64 cases a property, so CI
//! stays short): any combination of `[generation]` values, NaN and ±inf included, either
//! resolves or is refused with an error, and a resolved one generates without a panic, never a
//! special token, never more than `max_new_tokens` tokens, never a non-finite score.
#![allow(clippy::unwrap_used)]

use burn::backend::NdArray;
use burn::prelude::*;
use proptest::prelude::*;
use s2s_generate::{generate, GenerationSettings};
use s2s_model::{special, ModelConfig, StackConfig, VocabSizes};

type B = NdArray<f32>;

fn model() -> s2s_model::Seq2Seq<B> {
    let stack = StackConfig {
        d_model: 16,
        n_heads: 2,
        n_layers: 1,
        d_ff: 32,
    };
    let config = ModelConfig {
        encoder: stack.clone(),
        decoder: stack,
        max_positions: 24,
        dropout: 0.0,
        ..ModelConfig::default()
    };
    B::seed(&Default::default(), 5);
    let vocab = VocabSizes {
        source: 30,
        target: 12,
    };
    config.init::<B>(vocab, &Default::default()).unwrap()
}

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
        let Ok(out) = generate(&model(), &sources, &config, &device) else {
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
