//! Data parallelism (`training.devices`): two devices with half a batch each compute the
//! gradient one device computes with the whole batch, and a run over two devices trains the
//! weights a run on one device trains. On this CPU-only machine both backends open one device
//! (ndarray's `Cpu`), so "two devices" are that device twice: the split, the token weighting,
//! the gradient sum and the step are what is tested; placement on distinct GPUs is what
//! `scripts/gpu-check.sh` runs where there are GPUs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::train::TrainStep;
use s2s_data::EpochBatches;
use s2s_infer::RunDir;
use s2s_train::{ExperimentConfig, PreparedData, Seq2SeqLearner, TrainOptions};

use common::{fixture_data, flat, tiny_config, Inner};

type B = Autodiff<NdArray<f32>>;

fn config(devices: &str) -> ExperimentConfig {
    // Adam divides by sqrt(v) + ε: with the default 1e-9 a gradient at float-noise level (1e-9,
    // different in the last bits between the two summation orders) moves its weight by ±lr, so
    // the runs drift apart by whole learning rates in weights that matter to nothing. A larger
    // ε keeps such weights still, and the comparison about the ones that learn.
    tiny_config(&format!(
        "[training]\nepochs = 1\nbatch_size = 16\nwarmup_steps = 10\nseed = 4\nsamples = 0\n\
         metric_pairs = 0\nadam_epsilon = 1e-5\ndevices = {devices}"
    ))
}

fn data() -> PreparedData {
    fixture_data(96, 8)
}

/// Every gradient of `learner`'s parameters in `grads`, flattened in visiting order.
fn flat_grads(learner: &Seq2SeqLearner<B>, grads: &burn::optim::GradientsParams) -> Vec<f32> {
    struct Grads<'a>(&'a burn::optim::GradientsParams, Vec<f32>);
    impl ModuleVisitor<B> for Grads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.0.get::<Inner, D>(param.id) {
                self.1.extend(g.into_data().to_vec::<f32>().unwrap());
            }
        }
    }
    let mut out = Grads(grads, Vec::new());
    learner.visit(&mut out);
    out.1
}

fn assert_close(a: &[f32], b: &[f32], relative: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().map(|v| v.abs()).fold(0.0f32, f32::max).max(1e-12);
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= relative * scale,
        "{what}: largest difference {worst} against a largest value of {scale}"
    );
}

#[test]
fn two_devices_with_half_a_batch_each_make_the_whole_batch_update() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let train = |config: &ExperimentConfig, run: &Path| {
        config.validate().unwrap();
        s2s_train::train::<B>(
            config,
            &RunDir::new(run),
            data(),
            Default::default(),
            TrainOptions::default(),
        )
        .unwrap()
    };
    let single = train(&config("[]"), &one);
    let split = train(&config("[0, 1]"), &two);

    // One step, compared directly: the gradient of a batch from two half batches.
    let run = RunDir::open(&one).unwrap();
    let run_config = run.config().unwrap();
    let (tokenizers, model) = run
        .load_model::<B>(&run_config, &Default::default())
        .unwrap();
    let (items, _) =
        s2s_data::tokenize_pairs(&data().train, &tokenizers, &run_config.data.length_limits())
            .unwrap();
    let batches = EpochBatches::new(items, 16, 4, 1);
    let indices = batches.plan(1)[0].clone();
    // Pairs of different lengths, so that the halves hold different numbers of tokens.
    assert!(
        batches.label_tokens(&indices[..8]) != batches.label_tokens(&indices[8..]),
        "the halves should differ in length"
    );
    let learner = Seq2SeqLearner {
        model,
        decoder: None,
    };
    let device = Default::default();
    let whole = learner.step(batches.batch::<B>(&indices, &device));
    let halves = s2s_train::parallel::data_parallel_step(
        &learner,
        &batches,
        &indices,
        &[device, device],
        1.0,
    );
    let (g_whole, g_halves) = (
        flat_grads(&learner, &whole.grads),
        flat_grads(&learner, &halves.grads),
    );
    assert!(!g_whole.is_empty());
    assert_close(&g_halves, &g_whole, 1e-5, "gradients");
    let loss = |o: &burn::train::TrainOutput<burn::train::SequenceOutput<B>>| {
        o.item.loss.clone().into_scalar().elem::<f64>()
    };
    assert!(
        (loss(&halves) - loss(&whole)).abs() < 1e-5 * loss(&whole),
        "{} vs {}",
        loss(&halves),
        loss(&whole)
    );
    assert_eq!(
        halves.item.targets.clone().into_data(),
        whole.item.targets.clone().into_data(),
        "the labels come back in the batch's order"
    );

    // Whole runs: the same weights, within float tolerance, and the same validation loss.
    let weights = |run: &Path| {
        let run = RunDir::open(run).unwrap();
        let config = run.config().unwrap();
        flat(
            &run.load_model::<Inner>(&config, &Default::default())
                .unwrap()
                .1,
        )
    };
    assert_close(
        &weights(&two),
        &weights(&one),
        1e-4,
        "weights after an epoch",
    );
    assert!(
        (split.valid_loss - single.valid_loss).abs() < 1e-3,
        "{} vs {}",
        split.valid_loss,
        single.valid_loss
    );
}

#[test]
fn a_device_listed_twice_is_refused() {
    let err = config("[0, 0]").validate().unwrap_err().to_string();
    assert!(
        err.contains("training.devices lists device 0 twice"),
        "{err}"
    );
}
