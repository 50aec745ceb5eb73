//! `s2s sweep` through the real binary: a 2 × 2 sweep (two learning-rate factors, two seeds)
//! of the tiny model on eight fixture pairs, a run that fails while the others finish, the
//! summary's numbers recomputed from each run's report.json, skipping and resuming on a rerun,
//! and bad command lines refused before any run starts.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{fixture, s2s, text, tiny_model};

/// One epoch of the tiny model on the eight-pair fixture, validation BLEU on four pairs.
fn write_config(dir: &Path) {
    let pairs = fixture("bible-en-fr-eight.tsv");
    let config = format!(
        r#"{model}[data]
train = "{pairs}"
valid = "{pairs}"
max_source_len = 48
max_target_len = 48
[training]
seed = 3
epochs = 1
batch_size = 8
warmup_steps = 10
samples = 0
metric_pairs = 4
"#,
        model = tiny_model(0.0),
        pairs = pairs.display()
    );
    std::fs::write(dir.join("tiny.toml"), config).unwrap();
}

const SWEEP: [&str; 10] = [
    "sweep",
    "tiny.toml",
    "--grid",
    "training.lr_factor=0.5,2",
    "--seeds",
    "1,2",
    "--parallel",
    "2",
    "--set",
    "training.warmup_steps=5",
];

const RUNS: [(&str, f64, u64); 4] = [
    ("lr_factor=0.5,seed=1", 0.5, 1),
    ("lr_factor=0.5,seed=2", 0.5, 2),
    ("lr_factor=2,seed=1", 2.0, 1),
    ("lr_factor=2,seed=2", 2.0, 2),
];

/// Lines of the sweep's stderr that end with `what` (`started`, `finished before, skipped`).
fn progress(out: &Output, what: &str) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('[') && l.contains(what))
        .map(str::to_string)
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Mean and sample standard deviation (n − 1).
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn assert_close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        "{what}: {a} != {b}"
    );
}

/// Each row of sweep.json against the report.json of its two runs.
fn check_summary(out_dir: &Path) {
    let summary = json(&out_dir.join("sweep.json"));
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{summary:#}");
    for (row, lr) in rows.iter().zip([0.5, 2.0]) {
        assert_eq!(row["values"]["training.lr_factor"].as_f64(), Some(lr));
        assert_eq!(row["n"], 2, "{row:#}");
        assert_eq!(row["seeds"], serde_json::json!([1, 2]));
        let reports: Vec<serde_json::Value> = RUNS
            .iter()
            .filter(|(_, l, _)| *l == lr)
            .map(|(name, _, _)| json(&out_dir.join(name).join("report.json")))
            .collect();
        for metric in [
            "valid_loss",
            "valid_bleu",
            "valid_chrf",
            "valid_rouge_l",
            "seconds",
        ] {
            let values: Vec<f64> = reports
                .iter()
                .map(|r| r[metric].as_f64().unwrap())
                .collect();
            let (mean, std) = mean_std(&values);
            let what = format!("lr_factor={lr} {metric}");
            assert_close(row[metric]["mean"].as_f64().unwrap(), mean, &what);
            assert_close(row[metric]["std"].as_f64().unwrap(), std, &what);
            assert_eq!(row[metric]["n"], 2, "{what}");
        }
    }
    // Two seeds of one config train differently, so a spread of 0 would mean one run twice.
    assert!(rows[0]["valid_loss"]["std"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_two_by_two_sweep_trains_each_run_once_and_summarizes_the_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_config(cwd);
    let out_dir = cwd.join("runs/tiny-sweep");

    // One run is held by another process: it fails, the other three finish.
    let locked = out_dir.join(RUNS[3].0);
    let lock = s2s_train::RunLock::acquire(&locked).unwrap();
    let first = s2s(&SWEEP, None, cwd);
    drop(lock);
    let stderr = text(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert_eq!(progress(&first, ": started").len(), 4, "{stderr}");
    assert_eq!(progress(&first, ": finished in ").len(), 3, "{stderr}");
    let failed = progress(&first, ": failed (exit 1, see ");
    assert_eq!(failed.len(), 1, "{stderr}");
    assert!(failed[0].contains(RUNS[3].0), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "error: 1 of 4 runs failed: {} (each one's output is in its sweep.log)\n",
            RUNS[3].0
        )),
        "{stderr}"
    );
    let log = std::fs::read_to_string(locked.join("sweep.log")).unwrap();
    assert!(log.contains("--no-tui"), "{log}");
    assert!(log.contains("is in use"), "{log}");
    let partial = json(&out_dir.join("sweep.json"));
    assert_eq!(partial["rows"][0]["n"], 2, "{partial:#}");
    assert_eq!(partial["rows"][1]["n"], 1, "{partial:#}");
    assert!(partial["rows"][1]["valid_loss"]["std"].is_null());

    // The same command again: the finished runs are skipped, the failed one runs.
    let second = s2s(&SWEEP, None, cwd);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(progress(&second, "finished before, skipped").len(), 3);
    let started = progress(&second, ": started");
    assert_eq!(started, [format!("[4/4] {}: started", RUNS[3].0)]);

    for (name, lr, seed) in RUNS {
        let config: toml::Table = toml::from_str(
            &std::fs::read_to_string(out_dir.join(name).join("config.toml")).unwrap(),
        )
        .unwrap();
        let training = config["training"].as_table().unwrap();
        assert_eq!(training["lr_factor"].as_float(), Some(lr), "{name}");
        assert_eq!(training["seed"].as_integer(), Some(seed as i64), "{name}");
        assert_eq!(training["warmup_steps"].as_integer(), Some(5), "{name}");
        assert_eq!(
            config["run_dir"].as_str(),
            Some(format!("runs/tiny-sweep/{name}").as_str())
        );
    }
    check_summary(&out_dir);
    let stdout = text(&second.stdout);
    assert!(
        stdout
            .contains("| training.lr_factor | n | valid loss | BLEU | chrF | ROUGE-L | seconds |"),
        "{stdout}"
    );
    let table = std::fs::read_to_string(out_dir.join("sweep.md")).unwrap();
    assert!(stdout.starts_with(&table), "{stdout}");
    assert!(out_dir.join("compare/compare.md").is_file());
    assert!(out_dir.join("compare/compare.svg").is_file());

    // Once more: nothing starts and nothing is rewritten.
    let reports: Vec<String> = RUNS
        .iter()
        .map(|(name, _, _)| {
            std::fs::read_to_string(out_dir.join(name).join("report.json")).unwrap()
        })
        .collect();
    let third = s2s(&SWEEP, None, cwd);
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert_eq!(progress(&third, "finished before, skipped").len(), 4);
    assert!(progress(&third, ": started").is_empty());
    for ((name, _, _), before) in RUNS.iter().zip(&reports) {
        let after = std::fs::read_to_string(out_dir.join(name).join("report.json")).unwrap();
        assert_eq!(&after, before, "{name}");
    }
    check_summary(&out_dir);

    // A run with checkpoints and no report (stopped before its end) is resumed.
    std::fs::remove_file(out_dir.join(RUNS[0].0).join("report.json")).unwrap();
    let fourth = s2s(&SWEEP, None, cwd);
    assert!(fourth.status.success(), "{}", text(&fourth.stderr));
    assert_eq!(
        progress(&fourth, ": resumed"),
        [format!("[1/4] {}: resumed", RUNS[0].0)]
    );
    let log = std::fs::read_to_string(out_dir.join(RUNS[0].0).join("sweep.log")).unwrap();
    assert!(log.contains("'--resume'"), "{log}");
    check_summary(&out_dir);

    // Other settings into the same directory are refused before anything runs, not taken
    // for the finished runs.
    let mut changed = SWEEP.to_vec();
    changed[9] = "training.warmup_steps=7";
    let fifth = s2s(&changed, None, cwd);
    assert_eq!(fifth.status.code(), Some(1));
    let stderr = text(&fifth.stderr);
    assert!(
        stderr.contains("was trained with other settings (training.warmup_steps)"),
        "{stderr}"
    );
    assert!(progress(&fifth, ": started").is_empty());
}

#[test]
fn bad_command_lines_are_refused_before_any_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_config(cwd);
    let refused = |extra: &[&str], expected: &str| {
        let mut args = vec!["sweep", "tiny.toml"];
        args.extend_from_slice(extra);
        let out = s2s(&args, None, cwd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!cwd.join("runs").exists(), "{args:?} made a run directory");
    };
    // A misspelt key is found when the configs are read, not after the first run.
    refused(
        &["--grid", "training.lr_facter=0.5,2", "--seeds", "1,2"],
        "lr_facter",
    );
    // The second value is bad; the first run would have been fine.
    refused(
        &["--grid", "model.dropout=0.1,1.5", "--seeds", "1"],
        "for the run dropout=1.5,seed=1",
    );
    refused(&["--grid", "training.lr_factor="], "gives no values");
    refused(
        &[
            "--grid",
            "training.lr_factor=1",
            "--grid",
            "training.lr_factor=2",
        ],
        "given twice",
    );
    refused(
        &[
            "--grid",
            "training.lr_factor=1,2",
            "--set",
            "training.lr_factor=3",
        ],
        "both in --grid and in --set",
    );
    refused(&["--seeds", "1,two"], "`two` is not a whole number");
    refused(&["--parallel", "0"], "--parallel must be at least 1");
}
