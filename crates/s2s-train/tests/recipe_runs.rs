//! Early stopping and checkpoint averaging in real (tiny) runs: when a run stops, why the
//! report says it stopped, which weights end up in `model.mpk`, and that a resumed run judges
//! from the epochs before it as the uninterrupted run would.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use s2s_infer::RunDir;
use s2s_model::Seq2Seq;
use s2s_train::{ExperimentConfig, TrainOptions};

use common::{fixture_data, flat, tiny_config, Inner};

type B = Autodiff<NdArray<f32>>;

fn config(training: &str) -> ExperimentConfig {
    tiny_config(&format!(
        "[generation]\nmax_new_tokens = 8\n[training]\nbatch_size = 16\nwarmup_steps = 10\n\
         seed = 4\nsamples = 0\n{training}"
    ))
}

/// ndarray's RNG is one for the process: two tests training at once would draw each other's
/// initial weights and dropout. Training runs one at a time here.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn train(config: &ExperimentConfig, run: &Path, resume: bool) -> s2s_infer::TrainReport {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    config.validate().unwrap();
    s2s_train::train::<B>(
        config,
        &RunDir::new(run),
        fixture_data(64, 8),
        Default::default(),
        TrainOptions {
            resume,
            ..TrainOptions::default()
        },
    )
    .unwrap()
}

fn weights(model: &Seq2Seq<Inner>) -> Vec<f32> {
    flat(model)
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

    // Killed after the stop but before its report: the resume stops again at once, trains no
    // epoch 3, and ends with the same weights and verdict.
    for file in [
        RunDir::REPORT_JSON,
        RunDir::REPORT_MARKDOWN,
        RunDir::MODEL_FILE,
    ] {
        std::fs::remove_file(run.join(file)).unwrap();
    }
    let again = train(&config, &run, true);
    assert_eq!(again.epochs, 2);
    assert_eq!(again.stopped, report.stopped);
    assert!(!run.join("train/epoch-3").exists());
    assert_eq!(weights(&final_model(&run)), best);
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
    // The training clock (`Elapsed.log`, one `seconds,1` line per batch) goes on from where
    // the first launch left it, so `s2s compare` draws a resumed run on one time axis.
    let files = RunDir::new(&run);
    let clock = |epoch| {
        s2s_infer::run_dir::read_metric_log(&files.metric_log("train", epoch, "Elapsed"))
            .unwrap()
            .into_iter()
            .map(|(seconds, count)| {
                assert_eq!(count, 1.0);
                seconds
            })
            .collect::<Vec<_>>()
    };
    let (one, two) = (clock(1), clock(2));
    assert!(!one.is_empty() && !two.is_empty());
    assert!(one.windows(2).all(|w| w[0] <= w[1]), "{one:?}");
    assert!(two[0] >= one[one.len() - 1], "{one:?} then {two:?}");
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
    // A gap in the last N epochs is named, not papered over with an older checkpoint.
    s2s_train::checkpoint::remove_checkpoint(&run, s2s_train::CheckpointRef::Epoch(2));
    let gap = s2s_train::average::last_epochs(&run, 2)
        .unwrap_err()
        .to_string();
    assert!(
        gap.contains("the last 2 epochs are 2, 3, but") && gap.contains("epochs 1, 3 only"),
        "{gap}"
    );
    let too_many = s2s_train::average::last_epochs(&run, 4)
        .unwrap_err()
        .to_string();
    assert!(
        too_many.contains("the run has 3 epoch(s), fewer than the 4 asked for"),
        "{too_many}"
    );
}

#[test]
fn accumulating_two_half_batches_is_one_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Plain random batches (bucket_pool = 0) are consecutive chunks of one shuffle, so two
    // batches of 8 hold the pairs of one batch of 16; the schedule counts optimizer steps, so
    // both runs step with the same learning rates. ε as in tests/parallel.rs.
    let run = |name: &str, batch: usize, accumulation: usize| {
        let config = config(&format!(
            "epochs = 2\nmetric_pairs = 0\nbucket_pool = 0\nadam_epsilon = 1e-5\n\
             grad_accumulation = {accumulation}"
        ));
        let mut config = config;
        config.training.batch_size = batch;
        let path = dir.path().join(name);
        let report = train(&config, &path, false);
        (report, weights(&final_model(&path)))
    };
    let (whole, w_whole) = run("whole", 16, 1);
    let (halves, w_halves) = run("halves", 8, 2);
    let scale = w_whole.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    let worst = w_whole
        .iter()
        .zip(&w_halves)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "weights differ by {worst} (largest {scale})"
    );
    assert!((whole.valid_loss - halves.valid_loss).abs() < 1e-4);
    // Two logged learning rates per step of the whole-batch run, each pair equal.
    let lr = |name: &str| {
        s2s_infer::run_dir::read_metric_log(&RunDir::new(dir.path().join(name)).metric_log(
            "train",
            1,
            "Learning_Rate",
        ))
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect::<Vec<f64>>()
    };
    let (one, two) = (lr("whole"), lr("halves"));
    assert_eq!(two.len(), 2 * one.len());
    for (i, rate) in one.iter().enumerate() {
        assert_eq!((two[2 * i], two[2 * i + 1]), (*rate, *rate));
    }
}
