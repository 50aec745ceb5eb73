//! Early stopping and checkpoint averaging in real (tiny) runs: when a run stops, why the
//! report says it stopped, which weights end up in `model.mpk`, and that a resumed run judges
//! from the epochs before it as the uninterrupted run would.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use s2s_infer::RunDir;
use s2s_model::Seq2Seq;
use s2s_train::{ExperimentConfig, PreparedData, TrainOptions};

type B = Autodiff<NdArray<f32>>;
type Inner = NdArray<f32>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn config(training: &str) -> ExperimentConfig {
    ExperimentConfig::from_toml(&format!(
        r#"
[model]
max_positions = 64
dropout = 0.0
[model.encoder]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 32
[model.decoder]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 32
[data]
train = "x"
valid = "x"
max_source_len = 64
max_target_len = 64
[data.tokenizer]
vocab_size = 300
[generation]
max_new_tokens = 8
[training]
batch_size = 16
warmup_steps = 10
seed = 4
samples = 0
{training}
"#
    ))
    .unwrap()
}

fn data() -> PreparedData {
    let train = s2s_data::read_pairs(&fixture("bible-en-fr-train.tsv")).unwrap();
    let valid = s2s_data::read_pairs(&fixture("bible-en-fr-valid.tsv")).unwrap();
    PreparedData {
        train: train[..64].to_vec(),
        valid: valid[..8].to_vec(),
        test: Vec::new(),
        bert: None,
    }
}

fn train(config: &ExperimentConfig, run: &Path, resume: bool) -> s2s_infer::TrainReport {
    config.validate().unwrap();
    s2s_train::train::<B>(
        config,
        &RunDir::new(run),
        data(),
        Default::default(),
        TrainOptions {
            resume,
            ..TrainOptions::default()
        },
    )
    .unwrap()
}

/// Every float weight, flattened in visiting order.
fn weights(model: &Seq2Seq<Inner>) -> Vec<f32> {
    struct Flat(Vec<f32>);
    impl ModuleVisitor<Inner> for Flat {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Inner, D>>) {
            self.0
                .extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let mut flat = Flat(Vec::new());
    model.visit(&mut flat);
    flat.0
}

fn final_model(run: &Path) -> Seq2Seq<Inner> {
    let run = RunDir::open(run).unwrap();
    let config = run.config().unwrap();
    run.load_model::<Inner>(&config, &Default::default())
        .unwrap()
        .1
}

fn epoch_model(run: &Path, epoch: usize) -> Seq2Seq<Inner> {
    s2s_train::average::load_epoch_model(final_model(run), run, epoch, &Default::default()).unwrap()
}

#[test]
fn early_stopping_ends_the_run_and_keeps_the_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // No later epoch can beat epoch 1 by 100 BLEU points: it stays the best, and one epoch
    // of patience ends the run after epoch 2.
    let config = config(
        "epochs = 5\nmetric_pairs = 4\nkeep_checkpoints = 1\n\
         early_stopping = { metric = \"bleu\", patience = 1, min_delta = 100.0 }",
    );
    let report = train(&config, &run, false);
    assert_eq!(report.epochs, 2);
    let logged = RunDir::new(&run)
        .epoch_value("valid", 1, "BLEU", true)
        .unwrap();
    assert_eq!(
        report.stopped,
        format!(
            "stopped early after epoch 2: bleu did not improve by more than 100 for 1 epoch(s) \
             after its best, {logged:.4} at epoch 1"
        )
    );
    assert_eq!(
        report.weights,
        format!("epoch 1, the best by bleu ({logged:.4})")
    );
    assert!(report
        .to_markdown()
        .contains("| stopped | stopped early after epoch 2"));
    // Epoch 1 is kept although keep_checkpoints = 1 keeps only epoch 2 otherwise; model.mpk is
    // its weights, not the last epoch's.
    assert_eq!(s2s_train::average::epoch_checkpoints(&run), vec![1, 2]);
    let best = weights(&epoch_model(&run, 1));
    assert_eq!(weights(&final_model(&run)), best);
    assert_ne!(weights(&epoch_model(&run, 2)), best);
}

#[test]
fn a_resumed_run_judges_from_the_epochs_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let rule = "early_stopping = { metric = \"valid_loss\", patience = 1, min_delta = 1000.0 }";
    let first = train(
        &config(&format!("epochs = 1\nmetric_pairs = 0\n{rule}")),
        &run,
        false,
    );
    assert_eq!(first.epochs, 1);
    assert_eq!(first.stopped, "all 1 epochs (training.epochs) ran");
    // Extended to 4 epochs: epoch 1's loss, read back from its log, stays the best, so the
    // resumed run stops after epoch 2 as an uninterrupted one would.
    let resumed = train(
        &config(&format!("epochs = 4\nmetric_pairs = 0\n{rule}")),
        &run,
        true,
    );
    assert_eq!(resumed.epochs, 2);
    let loss = RunDir::new(&run)
        .epoch_value("valid", 1, "Loss", false)
        .unwrap();
    assert!(
        resumed
            .stopped
            .ends_with(&format!("its best, {loss:.4} at epoch 1")),
        "{}",
        resumed.stopped
    );
    assert_eq!(weights(&final_model(&run)), weights(&epoch_model(&run, 1)));
}

#[test]
fn average_last_writes_the_mean_of_the_last_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let config = config("epochs = 3\nmetric_pairs = 0\nkeep_checkpoints = 3\naverage_last = 2");
    let report = train(&config, &run, false);
    assert_eq!(
        report.weights,
        "the mean of epochs 2, 3 (training.average_last = 2)"
    );
    let (two, three) = (
        weights(&epoch_model(&run, 2)),
        weights(&epoch_model(&run, 3)),
    );
    let averaged = weights(&final_model(&run));
    assert_eq!(averaged.len(), two.len());
    let mut differs = false;
    for ((a, x), y) in averaged.iter().zip(&two).zip(&three) {
        let mean = (x + y) * 0.5;
        assert!(
            (a - mean).abs() <= 1e-6 * mean.abs().max(1.0),
            "{a} vs {mean}"
        );
        differs |= x != y;
    }
    assert!(differs, "epochs 2 and 3 trained to different weights");
    // The same mean through the library call `s2s average` uses, from any template.
    let again = s2s_train::average::average_epochs(
        epoch_model(&run, 1),
        &run,
        &[2, 3],
        &Default::default(),
    )
    .unwrap();
    assert_eq!(weights(&again), averaged);
    let too_many = s2s_train::average::last_epochs(&run, 4)
        .unwrap_err()
        .to_string();
    assert!(
        too_many.contains("3 epoch checkpoint(s) (1, 2, 3), fewer than the 4"),
        "{too_many}"
    );
}
