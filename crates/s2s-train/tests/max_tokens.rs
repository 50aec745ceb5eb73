//! `training.max_tokens`: a run with token-based batches trains an epoch, its batches are the
//! ones `EpochBatches::with_max_tokens` makes from the run's tokenised pairs, and the
//! `Tokens per batch` log holds each batch's non-padding target tokens (the token count the
//! loss log weighs each batch by). A budget below the widest pair the length limits allow is
//! refused before anything runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use s2s_data::bucket::EpochBatches;
use s2s_infer::RunDir;
use s2s_train::{ExperimentConfig, TrainOptions};

use common::{fixture_data, tiny_config};

type B = Autodiff<NdArray<f32>>;

fn config(max_tokens: usize) -> ExperimentConfig {
    tiny_config(&format!(
        "[training]\nepochs = 1\nbatch_size = 4\nmax_tokens = {max_tokens}\nwarmup_steps = 10\n\
         seed = 4\nsamples = 0\nmetric_pairs = 0"
    ))
}

/// `value,count` or `value` per line: the values.
fn log_values(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// `value,count` per line: the counts.
fn log_counts(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_token_budget_run_trains_and_logs_tokens_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let config = config(512);
    let data = fixture_data(usize::MAX, 8);
    let pairs = data.train.clone();
    let report = s2s_train::train::<B>(
        &config,
        &RunDir::new(&run_dir),
        data,
        Default::default(),
        TrainOptions::default(),
    )
    .unwrap();

    // The run's own tokenizers give back the pairs it trained on, and from them the batches.
    let tokenizers = s2s_data::TokenizerPair::load(&run_dir).unwrap();
    let (items, _) =
        s2s_data::tokenize_pairs(&pairs, &tokenizers, &config.data.length_limits()).unwrap();
    assert_eq!(report.train_pairs, items.len());
    let batches = EpochBatches::with_max_tokens(items.clone(), 512, 4).unwrap();
    let plan = batches.plan(1);
    assert!(plan.iter().all(|b| batches.padded_tokens(b) <= 512));
    let mean_pairs = items.len() as f64 / plan.len() as f64;
    assert!(
        mean_pairs > 4.0,
        "{} pairs in {} batches: the budget packs more than batch_size = 4",
        items.len(),
        plan.len()
    );

    let run = RunDir::new(&run_dir);
    let tokens = log_values(&run.metric_log("train", 1, "Tokens_per_batch"));
    assert_eq!(tokens.len(), plan.len(), "one line per batch");
    // Each line is its batch's labels (target + </s>) less padding, in training order.
    let expected: Vec<f64> = plan
        .iter()
        .map(|b| b.iter().map(|&i| items[i].target.len() as f64 + 1.0).sum())
        .collect();
    assert_eq!(tokens, expected);
    // The same count the loss log weighs each batch by.
    assert_eq!(tokens, log_counts(&run.metric_log("train", 1, "Loss")));
}

#[test]
fn a_budget_below_the_widest_pair_is_refused() {
    // max_source_len = 64 and max_target_len = 64 (a 62-token target, padded to 63): 64.
    let err = config(63).validate().unwrap_err().to_string();
    assert!(
        err.contains("training.max_tokens (63)") && err.contains("at least 64"),
        "{err}"
    );
    config(64).validate().unwrap();
    config(0).validate().unwrap();
}
