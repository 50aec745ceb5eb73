//! Backend parity, for both model families (Transformer and LSTM-with-attention): the same weights (initialised once on ndarray, moved through a record) and
//! the same batch give the same encoder states, logits and loss on every backend compiled into
//! this test binary; one Adam step gives the same updated weights; five steps give the same loss
//! curve. ndarray is the reference.
//!
//! Which backends run: every one compiled in (`cargo test --features flex,wgpu,tch …`). A backend
//! whose device cannot start here (cuda without an NVIDIA driver, wgpu without a Vulkan driver)
//! is skipped with a message on stderr, unless `S2S_REQUIRE_BACKENDS` names it (CI:
//! `S2S_REQUIRE_BACKENDS=ndarray,flex,tch,wgpu`), which turns the skip into a failure.
//!
//! The logits are also computed without autodiff (`model.valid()`, the decoding path) and must
//! equal the autodiff path's. Burn's fused attention (`burn::tensor::module::attention`:
//! libtorch's `scaled_dot_product_attention` on tch, flex's own kernel), which s2s measured and
//! does not use, must equal the written-out attention on the same backend, padding mask
//! included, once its mask convention is accounted for: burn-tch 0.21 reads the mask the other
//! way round (docs/performance.md).
//!
//! Tolerances (absolute, f32 everywhere): encoder states and logits 1e-4, loss 1e-5, weights
//! after one Adam step (learning rate 1e-3) 1e-4, a tenth of the step (attention key biases,
//! whose gradient is only rounding noise, 2e-3), the loss curve over 5 steps 1e-4. Different
//! backends sum in different orders, so bit equality is not expected; a wrong mask, a transposed
//! weight or a different GELU would be off by far more.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "ndarray")]

use std::collections::BTreeMap;

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::batcher::Batcher;
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamConfig, Optimizer};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::TrainStep;
use burn_store::ModuleSnapshot;
use s2s_data::{Seq2SeqBatcher, TokenizedPair};
use s2s_model::{ModelConfig, Seq2Seq, StackConfig, VocabSizes};
use s2s_train::Seq2SeqLearner;

const VOCAB: usize = 61;

/// The two model families: every backend is compared on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Transformer,
    /// A two-layer LSTM with Bahdanau attention over a bidirectional encoder (bridge included).
    Rnn,
}

const FAMILIES: [Family; 2] = [Family::Transformer, Family::Rnn];

fn config(family: Family) -> ModelConfig {
    if family == Family::Rnn {
        return ModelConfig {
            family: s2s_model::ModelFamily::Rnn,
            rnn: Some(s2s_model::RnnConfig {
                cell: s2s_model::CellKind::Lstm,
                attention: s2s_model::AttentionKind::Bahdanau,
                embedding_size: 24,
                hidden_size: 24,
                n_layers: 2,
                bidirectional: true,
            }),
            max_positions: 32,
            dropout: 0.0,
            ..ModelConfig::default()
        };
    }
    let stack = StackConfig {
        d_model: 32,
        n_heads: 4,
        n_layers: 2,
        d_ff: 64,
    };
    ModelConfig {
        encoder: stack.clone(),
        decoder: stack,
        max_positions: 32,
        // Dropout draws from each backend's own RNG: off, so that the steps are comparable.
        dropout: 0.0,
        ..ModelConfig::default()
    }
}

fn vocab() -> VocabSizes {
    VocabSizes {
        source: VOCAB,
        target: VOCAB,
    }
}

/// The reference weights as bytes: drawn once on ndarray with a fixed seed. Once per test
/// binary, because the backend's random number generator is global and tests run on parallel
/// threads.
fn reference_record(family: Family) -> Vec<u8> {
    static RECORDS: [std::sync::OnceLock<Vec<u8>>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    RECORDS[family as usize]
        .get_or_init(|| {
            type R = NdArray<f32>;
            let device = Default::default();
            R::seed(&device, 17);
            let model: Seq2Seq<R> = config(family).init::<R>(vocab(), &device).unwrap();
            BinBytesRecorder::<FullPrecisionSettings>::default()
                .record(model.into_record(), ())
                .unwrap()
        })
        .clone()
}

/// Three pairs of different lengths, so that padding and both masks matter.
fn pairs() -> Vec<TokenizedPair> {
    vec![
        TokenizedPair {
            source: vec![5, 17, 33, 8, 41, 2],
            target: vec![7, 19, 23, 60],
        },
        TokenizedPair {
            source: vec![12, 9, 2],
            target: vec![44, 3, 18, 27, 11, 6, 52],
        },
        TokenizedPair {
            source: vec![30, 31, 32, 33, 34, 35, 36, 37, 2],
            target: vec![9],
        },
    ]
}

/// What one backend computes from the reference weights and batch.
#[derive(Debug)]
struct Outputs {
    encoder_states: Vec<f32>,
    logits: Vec<f32>,
    /// The logits of the inference (non-autodiff) model.
    inference_logits: Vec<f32>,
    /// Largest difference between Burn's fused attention and the written-out one.
    fused_attention_error: f32,
    loss: f32,
    after_one_step: BTreeMap<String, Vec<f32>>,
    loss_curve: Vec<f32>,
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn params<B: Backend>(model: &Seq2Seq<B>) -> BTreeMap<String, Vec<f32>> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let values = t.to_data().unwrap().convert::<f32>().into_vec().unwrap();
            (t.full_path(), values)
        })
        .collect()
}

fn outputs<B: AutodiffBackend>(family: Family, device: &B::Device) -> Outputs {
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load(reference_record(family), device)
        .unwrap();
    let model: Seq2Seq<B> = config(family)
        .init::<B>(vocab(), device)
        .unwrap()
        .load_record(record)
        .with_label_smoothing(0.1);
    let batch = Batcher::<B, _, _>::batch(&Seq2SeqBatcher, pairs(), device);

    let encoder_states = values(model.encode(batch.source.clone(), batch.source_pad_mask.clone()));
    let logits = values(model.forward(&batch));
    let inner_batch = Batcher::<B::InnerBackend, _, _>::batch(&Seq2SeqBatcher, pairs(), device);
    let inference_logits = values(model.valid().forward(&inner_batch));
    let fused_attention_error = fused_attention_error::<B::InnerBackend>(device);
    let loss = values(model.forward_loss(batch.clone()).loss)[0];

    // The fused training loss has the autodiff loss's gradients on this backend, and leaves the
    // weights alone.
    let before = params(&model);
    let want = gradients(&model, &model.forward_loss(batch.clone()).loss.backward());
    let fused = model.forward_loss_fused(batch.clone());
    let got = gradients(&model, &fused.surrogate.backward());
    let backend = format!("{} {family:?}", B::name(device));
    let after = params(&model);
    for (path, values) in &before {
        assert_eq!(
            &after[path], values,
            "{backend}: the fused loss changed {path}"
        );
    }
    let mut worst = (0f32, String::new());
    for ((path, g), (_, w)) in got.iter().zip(&want) {
        let diff = max_abs_diff(g, w);
        if diff > worst.0 {
            worst = (diff, path.clone());
        }
    }
    eprintln!(
        "{backend}: fused vs autodiff loss gradients max |Δ| = {:.3e} ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= 1e-5,
        "{backend}: fused loss gradient of {} off by {:e}",
        worst.1,
        worst.0
    );

    let adam = AdamConfig::new();
    let mut optimizer = adam.init();
    let learner = Seq2SeqLearner {
        model,
        decoder: None,
    };
    let grads = TrainStep::step(&learner, batch.clone()).grads;
    let mut learner = optimizer.step(1e-3, learner, grads);
    let after_one_step = params(&learner.model);

    let mut loss_curve = vec![loss];
    for _ in 0..4 {
        let out = TrainStep::step(&learner, batch.clone());
        loss_curve.push(values(out.item.loss.clone())[0]);
        learner = optimizer.step(1e-3, learner, out.grads);
    }
    Outputs {
        encoder_states,
        logits,
        inference_logits,
        fused_attention_error,
        loss,
        after_one_step,
        loss_curve,
    }
}

/// Burn's fused attention (`true` = masked), with the mask flipped where `B`'s kernel reads it
/// the other way: burn-tch 0.21 hands Burn's mask to libtorch's `scaled_dot_product_attention`
/// as is, where `true` means "may attend". The convention is measured on one query and two keys
/// with values 0 and 1, the second masked: Burn's convention gives 0.
fn fused_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    use burn::tensor::module::attention;
    use burn::tensor::ops::AttentionModuleOptions;
    let device = q.device();
    let probe = attention(
        Tensor::<B, 4>::ones([1, 1, 1, 1], &device),
        Tensor::<B, 4>::zeros([1, 1, 2, 1], &device),
        Tensor::<B, 4>::from_data(TensorData::new(vec![0.0f32, 1.0], [1, 1, 2, 1]), &device),
        Some(Tensor::<B, 4, Bool>::from_data(
            TensorData::new(vec![false, true], [1, 1, 1, 2]),
            &device,
        )),
        None,
        AttentionModuleOptions::default(),
    );
    let inverted = values(probe)[0] > 0.5;
    eprintln!(
        "{}: Burn's fused attention reads `true` as {}",
        B::name(&device),
        if inverted {
            "\"may attend\" (inverted; flipped here)"
        } else {
            "\"masked\" (Burn's convention)"
        }
    );
    let mask = mask.map(|mask| if inverted { mask.bool_not() } else { mask });
    attention(q, k, v, mask, None, AttentionModuleOptions::default())
}

/// Largest difference between Burn's fused attention and the written-out one on fixed heads
/// with two padded keys in the first row; the mask must matter.
fn fused_attention_error<B: Backend>(device: &B::Device) -> f32 {
    use s2s_model::attention::MultiHeadAttentionConfig;
    let attn = MultiHeadAttentionConfig::new(16, 4).init::<B>(device);
    let [batch_size, n_heads, q_len, k_len, d_head] = [2, 4, 3, 5, 4];
    let ramp = |shape: [usize; 4], k: f32| {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|i| (i as f32 * k).sin() * 1.7).collect();
        Tensor::<B, 4>::from_data(TensorData::new(data, shape), device)
    };
    let q = ramp([batch_size, n_heads, q_len, d_head], 0.37);
    let k = ramp([batch_size, n_heads, k_len, d_head], 0.91);
    let v = ramp([batch_size, n_heads, k_len, d_head], 0.13);
    let mut pad = vec![false; batch_size * k_len];
    pad[3] = true;
    pad[4] = true;
    let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(pad, [batch_size, k_len]), device)
        .unsqueeze_dims::<4>(&[1, 2])
        .expand([batch_size, n_heads, q_len, k_len]);
    let unfused = values(attn.attend_unfused(q.clone(), k.clone(), v.clone(), Some(mask.clone())));
    let fused = values(fused_attention(q.clone(), k.clone(), v.clone(), Some(mask)));
    let open = values(fused_attention(q, k, v, None));
    let masking = max_abs_diff(&open, &fused);
    assert!(
        masking > 1e-3,
        "masking two keys changed nothing ({masking})"
    );
    max_abs_diff(&fused, &unfused)
}

/// Every parameter's gradient by parameter id order of visiting, with a readable index.
fn gradients<B: AutodiffBackend>(
    model: &Seq2Seq<B>,
    grads: &B::Gradients,
) -> Vec<(String, Vec<f32>)> {
    use burn::module::{ModuleVisitor, Param};
    struct Collect<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        out: Vec<(String, Vec<f32>)>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let g = param.val().grad(self.grads).map(values).unwrap_or_default();
            self.out.push((
                format!("parameter {} {:?}", self.out.len(), param.val().dims()),
                g,
            ));
        }
    }
    let mut collect = Collect {
        grads,
        out: Vec::new(),
    };
    model.visit(&mut collect);
    collect.out
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "shapes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn assert_close(what: &str, backend: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert!(
        got.iter().all(|v| v.is_finite()),
        "{backend}: {what} has non-finite values"
    );
    let diff = max_abs_diff(got, want);
    eprintln!("{backend}: {what} max |Δ| vs ndarray = {diff:.3e} (tolerance {tolerance:.0e})");
    assert!(
        diff <= tolerance,
        "{backend}: {what} differs from ndarray by {diff:e} (> {tolerance:e})"
    );
}

fn reference(family: Family) -> &'static Outputs {
    static REFERENCES: [std::sync::OnceLock<Outputs>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    REFERENCES[family as usize]
        .get_or_init(|| outputs::<Autodiff<NdArray<f32>>>(family, &Default::default()))
}

fn compare(backend: &str, family: Family, got: &Outputs) {
    let want = reference(family);
    let backend = &format!("{backend} {family:?}");
    assert_close(
        "encoder states",
        backend,
        &got.encoder_states,
        &want.encoder_states,
        1e-4,
    );
    assert_close("logits", backend, &got.logits, &want.logits, 1e-4);
    assert_close(
        "inference-model logits",
        backend,
        &got.inference_logits,
        &want.logits,
        1e-4,
    );
    let own = max_abs_diff(&got.inference_logits, &got.logits);
    assert!(own <= 1e-4, "{backend}: inference logits differ by {own:e}");
    let err = got.fused_attention_error;
    eprintln!("{backend}: fused vs written-out attention max |Δ| = {err:.3e}");
    assert!(err <= 1e-5, "{backend}: fused attention differs by {err:e}");
    assert_close("loss", backend, &[got.loss], &[want.loss], 1e-5);
    assert_eq!(
        got.after_one_step.keys().collect::<Vec<_>>(),
        want.after_one_step.keys().collect::<Vec<_>>()
    );
    // Attention key biases get a gradient that is zero in exact arithmetic (softmax ignores a
    // constant added to every score of a query), so what they receive is rounding noise, which
    // Adam's normalisation scales up to as much as a full learning-rate step in either direction.
    // They are held to that bound. Every other tensor to 1e-4, a tenth of the step: Adam's first
    // step is lr·g/(|g| + ε), which turns a rounding difference δ in a small gradient into up to
    // (lr/ε)·δ = 100·δ in the weight (burn's ε is 1e-5), while a wrong gradient moves it by ~lr.
    let noise_only = |path: &str| path.ends_with(".key.bias");
    let mut worst = (0f32, String::new());
    for (path, values) in &want.after_one_step {
        let diff = max_abs_diff(&got.after_one_step[path], values);
        if noise_only(path) {
            assert!(
                diff <= 2e-3,
                "{backend}: {path} moved by {diff:e} more than 2 × lr"
            );
        } else if diff > worst.0 {
            worst = (diff, path.clone());
        }
    }
    eprintln!(
        "{backend}: weights after one Adam step max |Δ| = {:.3e} ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= 1e-4,
        "{backend}: after one Adam step {} differs by {:e}",
        worst.1,
        worst.0
    );
    assert_close(
        "loss curve (5 steps)",
        backend,
        &got.loss_curve,
        &want.loss_curve,
        1e-4,
    );
}

/// Runs `run` for `backend` on both families; a panic (no device here) is a skip unless the
/// backend is required.
#[allow(dead_code)]
fn on_backend(backend: &str, run: impl Fn(Family) -> Outputs + std::panic::RefUnwindSafe) {
    let required = std::env::var("S2S_REQUIRE_BACKENDS")
        .map(|list| list.split(',').any(|b| b.trim() == backend))
        .unwrap_or(false);
    let run = || FAMILIES.map(&run);
    match std::panic::catch_unwind(run) {
        Ok(got) => {
            for (family, got) in FAMILIES.into_iter().zip(&got) {
                compare(backend, family, got);
            }
        }
        Err(panic) if !required => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            // Straight to the process's stderr: the harness captures `eprintln!` of a passing
            // test, and a skip must be seen (`cargo test` shows this line in its output).
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: {backend} parity SKIPPED, the backend cannot run here ({why}); set \
                 S2S_REQUIRE_BACKENDS={backend} to make this a failure"
            );
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn the_reference_itself_is_sane() {
    for family in FAMILIES {
        reference_is_sane(family);
    }
}

fn reference_is_sane(family: Family) {
    let r = reference(family);
    // Label-smoothed cross-entropy of a fresh model sits near ln(61) = 4.11.
    assert!((3.5..5.0).contains(&r.loss), "loss {}", r.loss);
    // Five Adam steps on one batch lower its loss.
    assert!(
        r.loss_curve[4] < r.loss_curve[0] - 0.05,
        "{:?}",
        r.loss_curve
    );
    // Burn's fused attention agrees with the written-out one on ndarray too.
    assert!(
        r.fused_attention_error <= 1e-5,
        "ndarray: fused attention differs by {:e}",
        r.fused_attention_error
    );
    // And a second run of the reference is bit-identical (the comparison is meaningful).
    let again = outputs::<Autodiff<NdArray<f32>>>(family, &Default::default());
    assert_eq!(again.logits, r.logits);
    assert_eq!(again.loss_curve, r.loss_curve);
}

/// Largest relative error of d(Σ a/b)/da = 1/b against the exact reciprocal (in f64), over
/// buffers of several lengths so that each has an unaligned head, a SIMD-aligned middle and a
/// tail. burn-ndarray's `simd` feature computed `recip` with the 12-bit `_mm256_rcp_ps` on the
/// aligned middle only (up to 4e-4 off, varying with the allocation's address); Cargo.toml
/// leaves that feature off and this holds every CPU backend to exact division.
fn division_gradient_error<B: AutodiffBackend>(device: &B::Device) -> f64 {
    let mut worst = 0f64;
    for len in [7usize, 33, 1027, 4099] {
        let b: Vec<f32> = (0..len)
            .map(|i| 0.5 + (i as f32 * 0.618).fract() * 1.5)
            .collect();
        let a = Tensor::<B, 1>::ones([len], device).require_grad();
        let divisor = Tensor::<B, 1>::from_floats(b.as_slice(), device);
        let grads = a.clone().div(divisor).sum().backward();
        let got = values(a.grad(&grads).unwrap());
        for (g, d) in got.iter().zip(&b) {
            let exact = 1.0 / *d as f64;
            worst = worst.max(((*g as f64) - exact).abs() / exact);
        }
    }
    worst
}

#[test]
fn ndarray_divides_exactly_so_same_seed_runs_are_identical() {
    let err = division_gradient_error::<Autodiff<NdArray<f32>>>(&Default::default());
    eprintln!("ndarray: division gradient max relative error {err:.2e}");
    assert!(err <= 1e-6, "ndarray: 1/b off by {err:e} relative");
}

#[cfg(feature = "flex")]
#[test]
fn flex_divides_exactly() {
    let err = division_gradient_error::<Autodiff<burn::backend::Flex>>(&Default::default());
    eprintln!("flex: division gradient max relative error {err:.2e}");
    assert!(err <= 1e-6, "flex: 1/b off by {err:e} relative");
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_ndarray() {
    on_backend("flex", |family| {
        outputs::<Autodiff<burn::backend::Flex>>(family, &Default::default())
    });
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_ndarray() {
    on_backend("wgpu", |family| {
        outputs::<Autodiff<burn::backend::Wgpu<f32>>>(family, &Default::default())
    });
}

#[cfg(feature = "tch")]
#[test]
fn tch_matches_ndarray() {
    use burn::backend::libtorch::{LibTorch, LibTorchDevice};
    on_backend("tch", |family| {
        outputs::<Autodiff<LibTorch<f32>>>(family, &LibTorchDevice::Cpu)
    });
}

#[cfg(feature = "tch")]
#[test]
fn tch_cuda_matches_ndarray() {
    use burn::backend::libtorch::{LibTorch, LibTorchDevice};
    on_backend("tch-cuda", |family| {
        assert!(tch::Cuda::is_available(), "libtorch sees no CUDA device");
        outputs::<Autodiff<LibTorch<f32>>>(family, &LibTorchDevice::Cuda(0))
    });
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_ndarray() {
    on_backend("cuda", |family| {
        outputs::<Autodiff<burn::backend::Cuda<f32>>>(family, &Default::default())
    });
}
