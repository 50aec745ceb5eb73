//! Invariants of the RNN family: padding changes nothing, attention weights are a distribution
//! over real source tokens, incremental decoding equals teacher forcing, reordering keeps the
//! right rows, and save→load is exact.
#![allow(clippy::unwrap_used)]

use burn::backend::NdArray;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};

use crate::{
    AttentionKind, CellKind, ModelConfig, ModelFamily, RnnConfig, RnnSeq2Seq, Seq2Seq,
    Seq2SeqBatch, VocabSizes,
};

type B = NdArray<f32>;

const VOCAB: VocabSizes = VocabSizes {
    source: 23,
    target: 19,
};

/// Every cell × attention × direction combination, small, without dropout; the last one untied
/// with two layers.
fn variants() -> Vec<ModelConfig> {
    let mut out = Vec::new();
    for cell in [CellKind::Lstm, CellKind::Gru] {
        for attention in [AttentionKind::Bahdanau, AttentionKind::Luong] {
            for bidirectional in [true, false] {
                out.push(ModelConfig {
                    family: ModelFamily::Rnn,
                    rnn: Some(RnnConfig {
                        cell,
                        attention,
                        embedding_size: 8,
                        hidden_size: 8,
                        n_layers: 1,
                        bidirectional,
                    }),
                    dropout: 0.0,
                    max_positions: 32,
                    ..ModelConfig::default()
                });
            }
        }
    }
    out.push(ModelConfig {
        family: ModelFamily::Rnn,
        rnn: Some(RnnConfig {
            cell: CellKind::Lstm,
            attention: AttentionKind::Bahdanau,
            embedding_size: 6,
            hidden_size: 8,
            n_layers: 2,
            bidirectional: true,
        }),
        tie_output_embedding: false,
        dropout: 0.0,
        max_positions: 32,
        ..ModelConfig::default()
    });
    out
}

fn rnn(config: &ModelConfig) -> RnnSeq2Seq<B> {
    B::seed(&Default::default(), 11);
    match config.init::<B>(VOCAB, &Default::default()).unwrap() {
        Seq2Seq::Rnn(model) => model,
        Seq2Seq::Transformer(_) => panic!("an RNN config built a Transformer"),
    }
}

fn ids(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
    let len = rows.iter().map(|r| r.len()).max().unwrap();
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().copied().chain(std::iter::repeat(0)).take(len))
        .collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), len]),
        &Default::default(),
    )
}

fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

/// Teacher-forced logits and attention weights.
fn teacher_forced(
    m: &RnnSeq2Seq<B>,
    src: &[&[i64]],
    tgt: &[&[i64]],
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let source = ids(src);
    let memory = m.encode_memory(source.clone(), source.equal_elem(0));
    let (h, weights) = m.decode_states(ids(tgt), &memory);
    let [batch_size, len, d] = h.dims();
    let logits = h
        .reshape([batch_size * len, d])
        .matmul(m.output_projection())
        .reshape([batch_size, len, VOCAB.target]);
    (logits, weights)
}

const SOURCES: &[&[i64]] = &[&[5, 6, 7, 8, 2], &[9, 10, 2], &[11, 2]];
const TARGETS: &[&[i64]] = &[&[1, 4, 5, 6], &[1, 11, 12], &[1, 13, 14, 15, 16]];

#[test]
fn a_padded_batch_gives_each_sentence_its_own_outputs() {
    for config in variants() {
        let m = rnn(&config);
        let (logits, weights) = teacher_forced(&m, SOURCES, TARGETS);
        for (row, (src, tgt)) in SOURCES.iter().zip(TARGETS).enumerate() {
            let (alone, alone_weights) = teacher_forced(&m, &[src], &[tgt]);
            let (t, s) = (tgt.len(), src.len());
            let batched = logits.clone().slice([row..row + 1, 0..t, 0..VOCAB.target]);
            let diff = max_abs_diff(batched, alone);
            assert!(
                diff < 1e-5,
                "{config:?} row {row}: padded logits differ by {diff}"
            );
            let batched = weights.clone().slice([row..row + 1, 0..t, 0..s]);
            let diff = max_abs_diff(batched, alone_weights);
            assert!(
                diff < 1e-6,
                "{config:?} row {row}: attention differs by {diff}"
            );
        }
    }
}

#[test]
fn attention_is_zero_on_padding_and_sums_to_one() {
    for config in variants() {
        let m = rnn(&config);
        let (_, weights) = teacher_forced(&m, SOURCES, TARGETS);
        let [_, tgt_len, src_len] = weights.dims();
        for (row, src) in SOURCES.iter().enumerate() {
            let w = weights
                .clone()
                .slice([row..row + 1, 0..tgt_len, 0..src_len]);
            let real = w.clone().slice([0..1, 0..tgt_len, 0..src.len()]);
            let sums = real.sum_dim(2).into_data().to_vec::<f32>().unwrap();
            for sum in sums {
                assert!((sum - 1.0).abs() < 1e-5, "{config:?}: weights sum to {sum}");
            }
            if src.len() < src_len {
                let pad = w.slice([0..1, 0..tgt_len, src.len()..src_len]);
                assert_eq!(
                    pad.abs().max().into_scalar(),
                    0.0,
                    "{config:?}: weight on padding"
                );
            }
        }
    }
}

#[test]
fn incremental_steps_equal_teacher_forcing() {
    for config in variants() {
        let m = rnn(&config);
        let (logits, weights) = teacher_forced(&m, SOURCES, TARGETS);
        let source = ids(SOURCES);
        let memory = m.encode_memory(source.clone(), source.equal_elem(0));
        let mut state = m.decoder.init_state(&memory);
        let all = ids(TARGETS);
        let [batch_size, len] = all.dims();
        for t in 0..len {
            let tokens = all
                .clone()
                .slice([0..batch_size, t..t + 1])
                .reshape([batch_size]);
            let (step, step_weights) = m.decode_step(tokens, &memory, &mut state);
            let expected = logits
                .clone()
                .slice([0..batch_size, t..t + 1, 0..VOCAB.target])
                .reshape([batch_size, VOCAB.target]);
            let diff = max_abs_diff(step, expected);
            assert!(diff < 1e-5, "{config:?} step {t}: logits differ by {diff}");
            let src_len = step_weights.dims()[1];
            let expected = weights
                .clone()
                .slice([0..batch_size, t..t + 1, 0..src_len])
                .reshape([batch_size, src_len]);
            assert!(max_abs_diff(step_weights, expected) < 1e-6);
        }
        assert_eq!(state.len, len);
    }
}

#[test]
fn reordered_state_follows_the_selected_rows() {
    // Three steps on two rows, reorder to [1, 1, 0] (the batch grows, as beams follow their
    // parents), one more step: each row equals teacher-forcing its parent's prefix.
    for config in variants() {
        let m = rnn(&config);
        let src: &[&[i64]] = &[&[5, 6, 7, 8, 2], &[9, 10, 2]];
        let source = ids(src);
        let memory = m.encode_memory(source.clone(), source.equal_elem(0));
        let mut state = m.decoder.init_state(&memory);
        let prefix = ids(&[&[1, 4, 5], &[1, 11, 12]]);
        for t in 0..3 {
            let tokens = prefix.clone().slice([0..2, t..t + 1]).reshape([2]);
            m.decode_step(tokens, &memory, &mut state);
        }
        let order = Tensor::<B, 1, Int>::from_data([1, 1, 0], &Default::default());
        state.reorder(order.clone());
        let memory = memory.select(order);
        let tokens = Tensor::<B, 1, Int>::from_data([13, 14, 6], &Default::default());
        let (step, _) = m.decode_step(tokens, &memory, &mut state);
        let (full, _) = teacher_forced(
            &m,
            &[src[1], src[1], src[0]],
            &[&[1, 11, 12, 13], &[1, 11, 12, 14], &[1, 4, 5, 6]],
        );
        let expected = full
            .slice([0..3, 3..4, 0..VOCAB.target])
            .reshape([3, VOCAB.target]);
        let diff = max_abs_diff(step, expected);
        assert!(diff < 1e-5, "{config:?}: reordered rows differ by {diff}");
    }
}

#[test]
fn save_then_load_gives_identical_logits_and_the_fused_loss_agrees() {
    type A = burn::backend::Autodiff<B>;
    for config in variants() {
        let m = rnn(&config);
        let (expected, _) = teacher_forced(&m, SOURCES, TARGETS);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model");
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        m.clone().save_file(path.clone(), &recorder).unwrap();
        B::seed(&Default::default(), 99);
        let fresh = rnn(&config);
        let loaded = fresh
            .load_file(path, &recorder, &Default::default())
            .unwrap();
        let (after, _) = teacher_forced(&loaded, SOURCES, TARGETS);
        assert_eq!(max_abs_diff(after, expected), 0.0, "{config:?}");

        // The fused training loss equals the plain one, with label smoothing.
        A::seed(&Default::default(), 11);
        let whole = config
            .init::<A>(VOCAB, &Default::default())
            .unwrap()
            .with_label_smoothing(0.1);
        let labels: &[&[i64]] = &[&[4, 5, 6, 2], &[11, 12, 2], &[13, 14, 15, 16, 2]];
        let lift = |t: Tensor<B, 2, Int>| Tensor::<A, 2, Int>::from_inner(t);
        let batch = || Seq2SeqBatch::<A> {
            source: lift(ids(SOURCES)),
            source_pad_mask: lift(ids(SOURCES)).equal_elem(0),
            target_input: lift(ids(TARGETS)),
            target_labels: lift(ids(labels)),
            target_pad_mask: lift(ids(TARGETS)).equal_elem(0),
        };
        let plain = whole.forward_loss(batch()).loss.into_scalar();
        let fused = whole.forward_loss_fused(batch()).loss.into_scalar();
        assert!(
            (plain - fused).abs() < 1e-5,
            "{config:?}: {plain} vs {fused}"
        );
    }
}
