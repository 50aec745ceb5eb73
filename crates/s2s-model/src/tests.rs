//! Invariants every model must pass (STYLE.md, "Tests").
#![allow(clippy::unwrap_used)]

use burn::backend::NdArray;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::Tolerance;

use crate::{
    AdapterKind, ModelConfig, PositionKind, Seq2Seq, Seq2SeqBatch, StackConfig, TransformerSeq2Seq,
    VocabSizes,
};

type B = NdArray<f32>;

const VOCAB: VocabSizes = VocabSizes {
    source: 23,
    target: 19,
};

fn tiny(norm_first: bool, positions: PositionKind) -> ModelConfig {
    let stack = StackConfig {
        d_model: 16,
        n_heads: 4,
        n_layers: 2,
        d_ff: 32,
    };
    ModelConfig {
        encoder: stack.clone(),
        decoder: stack,
        positions,
        max_positions: 32,
        dropout: 0.0,
        norm_first,
        ..ModelConfig::default()
    }
}

fn model(config: &ModelConfig) -> Seq2Seq<B> {
    B::seed(&Default::default(), 7);
    config.init::<B>(VOCAB, &Default::default()).unwrap()
}

/// The Transformer inside `m` (every config here builds one).
fn tf(m: &Seq2Seq<B>) -> &TransformerSeq2Seq<B> {
    match m {
        Seq2Seq::Transformer(t) => t,
        Seq2Seq::Rnn(_) => panic!("a Transformer config built an RNN"),
    }
}

fn ids(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
    let len = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), len]),
        &Default::default(),
    )
}

fn pad_mask(rows: &[&[i64]]) -> Tensor<B, 2, Bool> {
    ids(rows).equal_elem(0)
}

fn logits(m: &Seq2Seq<B>, src: &[&[i64]], tgt: &[&[i64]]) -> Tensor<B, 3> {
    let memory = m.encode(ids(src), pad_mask(src));
    tf(m).decode(ids(tgt), memory, pad_mask(src))
}

fn variants() -> Vec<ModelConfig> {
    let mut v = vec![
        tiny(true, PositionKind::Sinusoidal),
        tiny(false, PositionKind::Learned),
    ];
    let mut untied = tiny(true, PositionKind::Learned);
    untied.tie_output_embedding = false;
    v.push(untied);
    v
}

#[test]
fn changing_a_future_target_token_leaves_earlier_logits_unchanged() {
    for config in variants() {
        let m = model(&config);
        let src: &[&[i64]] = &[&[5, 6, 7, 8, 2]];
        let base = logits(&m, src, &[&[1, 4, 5, 6, 7, 8]]);
        for t in 1..6 {
            let mut changed = vec![1i64, 4, 5, 6, 7, 8];
            changed[t] = 10 + t as i64;
            let other = logits(&m, src, &[&changed]);
            let [_, _, v] = base.dims();
            base.clone()
                .slice([0..1, 0..t, 0..v])
                .into_data()
                .assert_eq(&other.clone().slice([0..1, 0..t, 0..v]).into_data(), true);
            // and the changed position itself does change (the test can fail)
            let diff = (base.clone().slice([0..1, t..t + 1, 0..v])
                - other.slice([0..1, t..t + 1, 0..v]))
            .abs()
            .max()
            .into_scalar();
            assert!(diff > 1e-6, "position {t} did not see its own input");
        }
    }
}

#[test]
fn source_padding_leaves_decoder_logits_unchanged() {
    for config in variants() {
        let m = model(&config);
        let tgt: &[&[i64]] = &[&[1, 4, 5, 6]];
        let plain = logits(&m, &[&[5, 6, 7, 2]], tgt);
        let padded = logits(&m, &[&[5, 6, 7, 2, 0, 0, 0]], tgt);
        plain
            .into_data()
            .assert_approx_eq::<f32>(&padded.into_data(), Tolerance::absolute(1e-5));
    }
}

#[test]
fn target_padding_leaves_non_pad_logits_unchanged() {
    for config in variants() {
        let m = model(&config);
        let src: &[&[i64]] = &[&[5, 6, 7, 2]];
        let plain = logits(&m, src, &[&[1, 4, 5]]);
        let padded = logits(&m, src, &[&[1, 4, 5, 0, 0]]);
        let [_, _, v] = plain.dims();
        plain.into_data().assert_approx_eq::<f32>(
            &padded.slice([0..1, 0..3, 0..v]).into_data(),
            Tolerance::absolute(1e-5),
        );
    }
}

#[test]
fn batched_rows_equal_rows_alone() {
    let m = model(&tiny(true, PositionKind::Sinusoidal));
    let both = logits(
        &m,
        &[&[5, 6, 7, 2], &[9, 2, 0, 0]],
        &[&[1, 4, 5], &[1, 6, 0]],
    );
    let second = logits(&m, &[&[9, 2]], &[&[1, 6]]);
    let [_, _, v] = both.dims();
    both.slice([1..2, 0..2, 0..v])
        .into_data()
        .assert_approx_eq::<f32>(&second.into_data(), Tolerance::absolute(1e-5));
}

#[test]
fn adapters_produce_the_decoder_width() {
    for kind in [AdapterKind::Linear, AdapterKind::Mlp] {
        let mut config = tiny(true, PositionKind::Sinusoidal);
        config.encoder = StackConfig {
            d_model: 24,
            n_heads: 3,
            n_layers: 1,
            d_ff: 48,
        };
        config.adapter.kind = kind;
        config.adapter.d_hidden = Some(8);
        let m = model(&config);
        let memory = m.encode(ids(&[&[5, 6, 2]]), pad_mask(&[&[5, 6, 2]]));
        assert_eq!(memory.dims(), [1, 3, 16], "{kind:?}");
        let out = tf(&m).decode(ids(&[&[1, 4]]), memory, pad_mask(&[&[5, 6, 2]]));
        assert_eq!(out.dims(), [1, 2, VOCAB.target]);
    }
    let mut none = tiny(true, PositionKind::Sinusoidal);
    none.adapter.kind = AdapterKind::Mlp;
    let m = model(&none);
    assert_eq!(
        m.encode(ids(&[&[5, 2]]), pad_mask(&[&[5, 2]])).dims(),
        [1, 2, 16]
    );
}

#[test]
fn loss_ignores_padding_and_matches_hand_computation() {
    let m = model(&tiny(true, PositionKind::Sinusoidal));
    let batch = |tgt_in: &[i64], labels: &[i64]| Seq2SeqBatch::<B> {
        source: ids(&[&[5, 6, 2]]),
        source_pad_mask: pad_mask(&[&[5, 6, 2]]),
        target_input: ids(&[tgt_in]),
        target_labels: ids(&[labels]),
        target_pad_mask: pad_mask(&[tgt_in]),
    };
    let a = m.forward_loss(batch(&[1, 4, 5], &[4, 5, 2]));
    let b = m.forward_loss(batch(&[1, 4, 5, 0, 0], &[4, 5, 2, 0, 0]));
    let (la, lb) = (a.loss.into_scalar(), b.loss.into_scalar());
    assert!((la - lb).abs() < 1e-5, "{la} vs {lb}");
    // nll by hand from the logits
    let logp = burn::tensor::activation::log_softmax(a.logits, 2)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let v = VOCAB.target;
    let expected = -(logp[4] + logp[v + 5] + logp[2 * v + 2]) / 3.0;
    assert!((a.nll.into_scalar() - expected).abs() < 1e-5);
    // smoothing raises the loss of a confident-or-not model by a bounded, non-zero amount
    let smoothed = m
        .clone()
        .with_label_smoothing(0.1)
        .forward_loss(batch(&[1, 4, 5], &[4, 5, 2]));
    assert!((smoothed.loss.into_scalar() - la).abs() > 1e-6);
}

#[test]
fn save_then_load_gives_identical_logits() {
    let config = tiny(true, PositionKind::Learned);
    let m = model(&config);
    let src: &[&[i64]] = &[&[5, 6, 7, 2]];
    let tgt: &[&[i64]] = &[&[1, 4, 5]];
    // Computed before saving: burn initialises parameters lazily, so a clone taken before the
    // first use would draw its own weights.
    let expected = logits(&m, src, tgt);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    m.save_file(path.clone(), &recorder).unwrap();
    B::seed(&Default::default(), 99);
    let fresh = config.init::<B>(VOCAB, &Default::default()).unwrap();
    let before = logits(&fresh, src, tgt);
    let loaded = fresh
        .load_file(path, &recorder, &Default::default())
        .unwrap();
    // the freshly initialised model differs, so equality below is due to the load
    let gap = (before - expected.clone()).abs().max().into_scalar();
    assert!(
        gap > 1e-3,
        "fresh model already equals the saved one ({gap})"
    );
    logits(&loaded, src, tgt)
        .into_data()
        .assert_eq(&expected.into_data(), true);
}

/// Largest absolute difference between two tensors of the same shape.
fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

#[test]
fn cached_step_logits_equal_full_decoding_at_every_step() {
    // Two sources of different lengths (the second padded), targets decoded one token at a
    // time through the KV cache and compared with full causal decoding of the same prefix.
    // Tolerance 1e-5 (f32; the two paths sum in different orders).
    let src: &[&[i64]] = &[&[5, 6, 7, 8, 2], &[9, 10, 2, 0, 0]];
    let tgt: &[&[i64]] = &[&[1, 4, 5, 6, 7, 8, 9], &[1, 11, 12, 13, 14, 15, 16]];
    for config in variants() {
        let whole = model(&config);
        let m = tf(&whole);
        let memory = m.encode_memory(ids(src), pad_mask(src));
        let full = m.decode_prefix(ids(tgt), &memory);
        let [batch_size, len, vocab] = full.dims();
        let mut cache = m.init_cache(batch_size, len, &Default::default());
        let all = ids(tgt);
        for t in 0..len {
            let token = all.clone().slice([0..batch_size, t..t + 1]);
            let step = m.decode_step(token, &memory, &mut cache);
            let expected = full.clone().slice([0..batch_size, t..t + 1, 0..vocab]);
            let diff = max_abs_diff(step, expected);
            assert!(
                diff < 1e-5,
                "step {t}: cached and full logits differ by {diff}"
            );
        }
        assert_eq!(cache.len(), len);

        // A chunk of several positions at once (shifted causal mask) matches too.
        let mut cache = m.init_cache(batch_size, len, &Default::default());
        let head = m.decode_step(
            all.clone().slice([0..batch_size, 0..3]),
            &memory,
            &mut cache,
        );
        let tail = m.decode_step(all.slice([0..batch_size, 3..len]), &memory, &mut cache);
        let diff = max_abs_diff(Tensor::cat(vec![head, tail], 1), full.clone());
        assert!(diff < 1e-5, "chunked decoding differs by {diff}");
    }
}

#[test]
fn reordered_cache_follows_the_selected_rows() {
    // Decode two rows for three steps, reorder the cache to [1, 1, 0] (rows follow "parents"
    // as in beam search; the batch grows), continue: every row must equal decoding its
    // parent's prefix from scratch.
    let config = tiny(true, PositionKind::Sinusoidal);
    let whole = model(&config);
    let m = tf(&whole);
    let src: &[&[i64]] = &[&[5, 6, 7, 8, 2], &[9, 10, 2, 0, 0]];
    let memory = m.encode_memory(ids(src), pad_mask(src));
    let mut cache = m.init_cache(2, 8, &Default::default());
    m.decode_step(ids(&[&[1, 4, 5], &[1, 11, 12]]), &memory, &mut cache);
    let order = Tensor::<B, 1, Int>::from_data([1, 1, 0], &Default::default());
    cache.reorder(order.clone());
    let memory = memory.select(order);
    let step = m.decode_step(ids(&[&[13], &[14], &[6]]), &memory, &mut cache);
    let full = m.decode_prefix(
        ids(&[&[1, 11, 12, 13], &[1, 11, 12, 14], &[1, 4, 5, 6]]),
        &memory,
    );
    let expected = full.slice([0..3, 3..4, 0..VOCAB.target]);
    let diff = max_abs_diff(step, expected);
    assert!(diff < 1e-5, "reordered cache differs by {diff}");
    assert_eq!(cache.batch_size(), 3);
}

/// Every parameter's gradient (flattened, in visiting order).
fn gradients(
    m: &Seq2Seq<burn::backend::Autodiff<B>>,
    grads: &<burn::backend::Autodiff<B> as burn::tensor::backend::AutodiffBackend>::Gradients,
) -> Vec<Vec<f32>> {
    use burn::module::{ModuleVisitor, Param};
    type A = burn::backend::Autodiff<B>;
    struct Collect<'a> {
        grads: &'a <A as burn::tensor::backend::AutodiffBackend>::Gradients,
        out: Vec<Vec<f32>>,
    }
    impl ModuleVisitor<A> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
            let values = param
                .val()
                .grad(self.grads)
                .map(|g| g.into_data().to_vec::<f32>().unwrap())
                .unwrap_or_default();
            self.out.push(values);
        }
    }
    let mut collect = Collect {
        grads,
        out: Vec::new(),
    };
    m.visit(&mut collect);
    collect.out
}

#[test]
fn fused_loss_has_the_autodiff_loss_value_and_gradients() {
    type A = burn::backend::Autodiff<B>;
    let device = Default::default();
    let ids = |rows: &[&[i64]]| -> Tensor<A, 2, Int> { Tensor::from_inner(ids(rows)) };
    let src: &[&[i64]] = &[&[5, 6, 7, 2, 0], &[8, 9, 10, 11, 2]];
    let tgt_in: &[&[i64]] = &[&[1, 4, 5, 0], &[1, 6, 7, 8]];
    let labels: &[&[i64]] = &[&[4, 5, 2, 0], &[6, 7, 8, 2]];
    let batch = || Seq2SeqBatch::<A> {
        source: ids(src),
        source_pad_mask: ids(src).equal_elem(0),
        target_input: ids(tgt_in),
        target_labels: ids(labels),
        target_pad_mask: ids(tgt_in).equal_elem(0),
    };
    for config in variants() {
        for smoothing in [0.0, 0.1] {
            A::seed(&device, 7);
            let m = config
                .init::<A>(VOCAB, &device)
                .unwrap()
                .with_label_smoothing(smoothing);
            let reference = m.forward_loss(batch());
            let fused = m.forward_loss_fused(batch());
            let close = |a: f32, b: f32, what: &str| {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{what}: autodiff {a} vs fused {b} (ε = {smoothing})"
                );
            };
            close(
                reference.loss.clone().into_scalar(),
                fused.loss.into_scalar(),
                "loss",
            );
            close(
                reference.nll.clone().into_scalar(),
                fused.nll.into_scalar(),
                "nll",
            );
            fused.logits.into_data().assert_approx_eq::<f32>(
                &reference.logits.clone().inner().into_data(),
                Tolerance::default(),
            );
            let expected = gradients(&m, &reference.loss.backward());
            let actual = gradients(&m, &fused.surrogate.backward());
            assert_eq!(expected.len(), actual.len());
            let mut compared = 0;
            for (e, a) in expected.iter().zip(&actual) {
                assert_eq!(e.len(), a.len(), "a parameter lost or gained its gradient");
                for (&e, &a) in e.iter().zip(a) {
                    close(e, a, "gradient");
                    compared += 1;
                }
            }
            assert!(compared > 1000, "only {compared} gradient values compared");
        }
    }
}
