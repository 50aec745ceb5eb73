//! The optimizer side of the training recipes against hand computations: clipping by the
//! global norm (PyTorch's `clip_grad_norm_`), AdamW's decoupled decay (and burn's own AdamW),
//! and the learning-rate schedules at the steps where their formulas are easy to read.
#![allow(clippy::unwrap_used)]

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::lr_scheduler::noam::NoamLrSchedulerConfig;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use s2s_infer::{ExperimentConfig, LrSchedule, OptimizerKind};
use s2s_train::{clip_global_norm, AdamOrAdamW, Schedule};

type B = Autodiff<NdArray<f32>>;

#[derive(Module, Debug)]
struct Two<B: Backend> {
    a: Linear<B>,
    b: Linear<B>,
}

/// Fixed weights (`sin` of the index), so that every call builds the same model whatever the
/// other tests do to the backend's RNG.
fn model(device: &burn::tensor::Device<B>) -> Two<B> {
    let linear = |d_in: usize, d_out: usize, offset: usize| {
        let mut layer = LinearConfig::new(d_in, d_out).init(device);
        let values: Vec<f32> = (0..d_in * d_out)
            .map(|i| ((i + offset) as f32).sin() * 0.5)
            .collect();
        layer.weight = Param::from_tensor(
            Tensor::<B, 1>::from_floats(values.as_slice(), device).reshape([d_in, d_out]),
        );
        let bias: Vec<f32> = (0..d_out).map(|i| (i as f32 + 0.5).cos() * 0.1).collect();
        layer.bias = Some(Param::from_tensor(Tensor::from_floats(
            bias.as_slice(),
            device,
        )));
        layer
    };
    Two {
        a: linear(3, 4, 0),
        b: linear(4, 2, 100),
    }
}

/// The gradients of `scale · Σ b(a(x))²` for a fixed `x`.
fn grads(model: &Two<B>, scale: f32) -> GradientsParams {
    let device = Default::default();
    let x = Tensor::<B, 2>::from_floats([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]], &device);
    let y = model.b.forward(model.a.forward(x));
    let loss = y.square().sum().mul_scalar(scale);
    GradientsParams::from_grads(loss.backward(), model)
}

/// Every gradient of `model`'s parameters, flattened, in visiting order.
fn flat(model: &Two<B>, grads: &GradientsParams) -> Vec<f32> {
    let mut out = Vec::new();
    let mut take = |param: &Param<Tensor<B, 2>>| {
        if let Some(g) = grads.get::<NdArray<f32>, 2>(param.id) {
            out.extend(g.into_data().to_vec::<f32>().unwrap());
        }
    };
    take(&model.a.weight);
    take(&model.b.weight);
    let mut bias = |param: &Option<Param<Tensor<B, 1>>>| {
        if let Some(g) = param
            .as_ref()
            .and_then(|p| grads.get::<NdArray<f32>, 1>(p.id))
        {
            out.extend(g.into_data().to_vec::<f32>().unwrap());
        }
    };
    bias(&model.a.bias);
    bias(&model.b.bias);
    out
}

#[test]
fn global_norm_clipping_matches_the_hand_computation() {
    let device = Default::default();
    let model = model(&device);
    let mut g = grads(&model, 10.0);
    let before = flat(&model, &g);
    // ‖g‖ over all four tensors together, in f64.
    let norm = before
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        norm > 1.0,
        "the test needs a gradient above the bound, got {norm}"
    );
    let returned = clip_global_norm(&model, &mut g, 1.0);
    assert!(
        (returned - norm).abs() < 1e-4 * norm,
        "{returned} vs {norm}"
    );
    let after = flat(&model, &g);
    let scale = 1.0 / (norm + 1e-6);
    for (a, b) in after.iter().zip(&before) {
        let expected = f64::from(*b) * scale;
        assert!(
            (f64::from(*a) - expected).abs() < 1e-6,
            "clipped {a}, expected {expected}"
        );
    }
    let clipped_norm = after
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((clipped_norm - 1.0).abs() < 1e-5, "{clipped_norm}");

    // Below the bound nothing changes.
    let mut small = grads(&model, 1e-4);
    let untouched = flat(&model, &small);
    let small_norm = clip_global_norm(&model, &mut small, 1.0);
    assert!(small_norm < 1.0);
    assert_eq!(flat(&model, &small), untouched);
}

/// Two steps of `optimizer` on `model` with the fixed gradients; the flattened weights after.
fn two_steps<O: Optimizer<Two<B>, B>>(mut optimizer: O, lr: f64) -> Vec<f32> {
    let device = Default::default();
    let mut m = model(&device);
    for _ in 0..2 {
        let g = grads(&m, 1.0);
        m = optimizer.step(lr, m, g);
    }
    let mut out = m.a.weight.val().into_data().to_vec::<f32>().unwrap();
    out.extend(m.b.weight.val().into_data().to_vec::<f32>().unwrap());
    out
}

fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tolerance, "{x} vs {y}");
    }
}

#[test]
fn decoupled_decay_is_burns_adamw_and_zero_decay_is_adam() {
    let (beta_1, beta_2, epsilon, decay) = (0.9, 0.98, 1e-8, 0.1);
    let adam = || {
        AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
    };
    let ours = two_steps(
        OptimizerAdaptor::<_, Two<B>, B>::from(AdamOrAdamW::new(adam().build(), decay)),
        0.01,
    );
    let burns = two_steps(
        AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(decay as f32)
            .init::<B, Two<B>>(),
        0.01,
    );
    assert_close(&ours, &burns, 1e-6);
    let plain = two_steps(adam().init::<B, Two<B>>(), 0.01);
    let no_decay = two_steps(
        OptimizerAdaptor::<_, Two<B>, B>::from(AdamOrAdamW::new(adam().build(), 0.0)),
        0.01,
    );
    assert_eq!(no_decay, plain);
    // The decay did something: with λ = 0.1 and lr = 0.01 the weights shrink by ~0.1 % a step.
    assert!(ours.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-6));
}

fn config(schedule: LrSchedule, extra: &str) -> ExperimentConfig {
    let name = match schedule {
        LrSchedule::Noam => "noam",
        LrSchedule::InverseSqrt => "inverse_sqrt",
        LrSchedule::Linear => "linear",
        LrSchedule::Cosine => "cosine",
    };
    let text = format!(
        "[data]\ncorpus = \"bible-en-fr\"\n[training]\n\
         lr_schedule = \"{name}\"\nwarmup_steps = 100\nlr = 1e-3\n{extra}"
    );
    let config = ExperimentConfig::from_toml(&text).unwrap();
    assert_eq!(config.training.lr_schedule, schedule);
    assert_eq!(config.training.optimizer, OptimizerKind::Adam);
    config
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
}

#[test]
fn schedules_follow_their_formulas() {
    // Noam is burn's NoamLrScheduler, step for step.
    let noam_config = config(LrSchedule::Noam, "lr_factor = 2.0");
    let mut ours = Schedule::new(&noam_config, 1000).unwrap();
    let mut burns = NoamLrSchedulerConfig::new(2.0)
        .with_warmup_steps(100)
        .with_model_size(noam_config.model.decoder_width())
        .init()
        .unwrap();
    for step in 1..=500 {
        let (a, b) = (ours.step(), burns.step());
        assert!(close(a, b), "step {step}: {a} vs {b}");
    }

    let s = Schedule::new(&config(LrSchedule::InverseSqrt, ""), 1000).unwrap();
    assert!(close(s.lr_at(50), 0.5e-3));
    assert!(close(s.lr_at(100), 1e-3));
    assert!(close(s.lr_at(400), 0.5e-3));

    let s = Schedule::new(&config(LrSchedule::Linear, "min_lr = 1e-4"), 1100).unwrap();
    assert!(close(s.lr_at(25), 0.25e-3));
    assert!(close(s.lr_at(100), 1e-3));
    assert!(close(s.lr_at(600), 0.55e-3));
    assert!(close(s.lr_at(1100), 1e-4));
    assert!(
        close(s.lr_at(5000), 1e-4),
        "past the end it stays at min_lr"
    );

    let s = Schedule::new(&config(LrSchedule::Cosine, ""), 1100).unwrap();
    assert!(close(s.lr_at(100), 1e-3));
    assert!(close(s.lr_at(600), 0.5e-3));
    // A quarter of the way: (1 + cos(π/4)) / 2.
    assert!(close(
        s.lr_at(350),
        1e-3 * 0.5 * (1.0 + std::f64::consts::FRAC_PI_4.cos())
    ));
    assert!(s.lr_at(1100).abs() < 1e-15);
}

#[test]
fn a_schedule_resumes_from_its_record() {
    let config = config(LrSchedule::Cosine, "");
    let mut full = Schedule::new(&config, 300).unwrap();
    let mut first = Schedule::new(&config, 300).unwrap();
    for _ in 0..120 {
        full.step();
        first.step();
    }
    let record = LrScheduler::to_record::<NdArray<f32>>(&first);
    assert_eq!(record, 120);
    let mut resumed = Schedule::new(&config, 300)
        .unwrap()
        .load_record::<NdArray<f32>>(record);
    for _ in 0..100 {
        assert_eq!(resumed.step(), full.step());
    }
}

#[test]
fn recipe_keys_are_checked_with_one_sentence() {
    let base = "[data]\ncorpus = \"bible-en-fr\"\n[training]\n";
    let error = |extra: &str| {
        ExperimentConfig::from_toml(&format!("{base}{extra}"))
            .and_then(|c| c.validate())
            .unwrap_err()
            .to_string()
    };
    assert!(error("lr_schedule = \"cosine\"\nlr = 0").contains("training.lr must be"));
    assert!(error("lr_schedule = \"warmup\"").contains("unknown variant"));
    assert!(error("weight_decay = -0.1").contains("training.weight_decay"));
    assert!(error("warmup_steps = 0").contains("warmup_steps must be greater than 0"));
    // Linear and cosine may start at their peak (HF's default of no warm-up).
    let no_warmup =
        ExperimentConfig::from_toml(&format!("{base}lr_schedule = \"cosine\"\nwarmup_steps = 0"))
            .unwrap();
    no_warmup.validate().unwrap();
    let cosine = Schedule::new(&no_warmup, 100).unwrap();
    assert!(close(
        cosine.lr_at(1),
        5e-4 * 0.5 * (1.0 + (std::f64::consts::PI / 100.0).cos())
    ));
    assert!(
        error("early_stopping = { metric = \"rouge_l\", patience = 2 }")
            .contains("needs \"rouge\" in training.valid_metrics")
    );
    assert!(
        error("early_stopping = { metric = \"bleu\", patience = 0 }")
            .contains("patience must be at least 1")
    );
    assert!(error("average_last = 5").contains("keep_checkpoints"));
    assert!(error("grad_clip = { norm = 1.0, kind = \"total\" }").contains("per_tensor"));
    assert!(error(
        "unfreeze_encoder_after = 1\nfreeze_encoder = true\nepochs = 3\n\
         early_stopping = { metric = \"valid_loss\", patience = 1 }"
    )
    .contains("cannot be combined with training.unfreeze_encoder_after"));
    // The older key still reads, as per-tensor clipping.
    let old = ExperimentConfig::from_toml(&format!("{base}grad_clip_norm = 0.5")).unwrap();
    assert_eq!(old.training.grad_clip.norm, 0.5);
    assert_eq!(old.training.grad_clip.kind, s2s_infer::ClipKind::PerTensor);
    let resolved = old.to_toml().unwrap();
    assert_eq!(ExperimentConfig::from_toml(&resolved).unwrap(), old);
}

#[test]
fn overrides_are_typed_checked_and_recorded() {
    let base = "[data]\ncorpus = \"bible-en-fr\"\n[training]\nepochs = 3\n";
    let with = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        ExperimentConfig::from_toml_with(base, &sets)
    };
    let config = with(&[
        "training.epochs=5",
        "model.dropout=0.2",
        "training.grad_clip={ norm = 2.0, kind = \"global\" }",
        "name=sweep-a",
    ])
    .unwrap();
    assert_eq!(config.training.epochs, 5);
    assert_eq!(config.model.dropout, 0.2);
    assert_eq!(config.training.grad_clip.kind, s2s_infer::ClipKind::Global);
    assert_eq!(config.name.as_deref(), Some("sweep-a"));
    let recorded = ExperimentConfig::from_toml(&config.to_toml().unwrap()).unwrap();
    assert_eq!(recorded, config);

    let message = |sets: &[&str]| with(sets).unwrap_err().to_string();
    let bad_type = message(&["training.epochs=five"]);
    assert!(
        bad_type.contains("--set training.epochs=five"),
        "{bad_type}"
    );
    let unknown = message(&["training.epoch=5"]);
    assert!(unknown.contains("unknown field `epoch`"), "{unknown}");
    assert!(message(&["training.epochs"]).contains("expected key=value"));
    assert!(message(&["training.epochs.x=1"]).contains("is a value, not a section"));
    // The older spelling and a bare number become the table an override edits or replaces.
    for old in ["grad_clip_norm = 0.5", "grad_clip = 0.5"] {
        let text = format!("{base}{old}\n");
        let edit =
            ExperimentConfig::from_toml_with(&text, &["training.grad_clip.kind=global".into()])
                .unwrap();
        assert_eq!(
            (edit.training.grad_clip.norm, edit.training.grad_clip.kind),
            (0.5, s2s_infer::ClipKind::Global)
        );
        let replace = ExperimentConfig::from_toml_with(
            &text,
            &["training.grad_clip={ kind = \"global\" }".into()],
        )
        .unwrap();
        assert_eq!(replace.training.grad_clip.norm, 1.0, "norm defaults to 1.0");
    }
    // A task set on the command line brings its defaults.
    let summarize = with(&["data.task=summarization"]).unwrap();
    assert_eq!(summarize.data.max_source_len, 512);
}

#[test]
fn an_adam_checkpoint_loads_into_the_adam_or_adamw_optimizer() {
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    let device = Default::default();
    // Two steps of burn's Adam, its state written as a checkpoint would be.
    let mut adam = AdamConfig::new().init::<B, Two<B>>();
    let mut m = model(&device);
    for _ in 0..2 {
        let g = grads(&m, 1.0);
        m = adam.step(0.01, m, g);
    }
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder.record(adam.to_record(), ()).unwrap();
    // Read back as the state of s2s's optimizer (the type every run now trains with).
    let record = recorder.load(bytes, &device).unwrap();
    let mut ours =
        OptimizerAdaptor::<_, Two<B>, B>::from(AdamOrAdamW::new(AdamConfig::new().build(), 0.0))
            .load_record(record);
    // The third step is the same from either: the moments and the step count came across.
    let g = grads(&m, 1.0);
    let a = adam.step(0.01, m.clone(), g);
    let g = grads(&m, 1.0);
    let b = ours.step(0.01, m.clone(), g);
    let flat = |m: &Two<B>| {
        let mut v = m.a.weight.val().into_data().to_vec::<f32>().unwrap();
        v.extend(m.b.weight.val().into_data().to_vec::<f32>().unwrap());
        v
    };
    assert_eq!(flat(&a), flat(&b));
    // From the same weights, an optimizer without that state steps elsewhere: the state
    // mattered.
    let mut fresh =
        OptimizerAdaptor::<_, Two<B>, B>::from(AdamOrAdamW::new(AdamConfig::new().build(), 0.0));
    let g = grads(&m, 1.0);
    assert_ne!(flat(&fresh.step(0.01, m, g)), flat(&a));
}
