//! Faults a run must survive, through the real `s2s` binary on small real data
//! (tests/fixtures/bible-en-fr-*): kill and resume, Ctrl-C, damaged checkpoints, a changed
//! config on resume, two processes on one run, NaN. docs/reliability.md lists them.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::{command, fixture, s2s, text, tiny_model, weights};

fn spawn(args: &[&str], cwd: &Path) -> Child {
    command(args, cwd).spawn().unwrap()
}

/// A tiny model with dropout (so the dropout RNG must be restored too) on 267 real pairs:
/// batches of 4, about 67 batches an epoch, a step checkpoint every 5 (unless `training` sets
/// these keys itself).
fn config(name: &str, training: &str) -> String {
    format!(
        r#"name = "{name}"
{}[data]
train = "{}"
valid = "{}"
max_source_len = 48
max_target_len = 48
[training]
{training}
{defaults}
"#,
        tiny_model(0.1),
        fixture("bible-en-fr-train.tsv").display(),
        fixture("bible-en-fr-valid.tsv").display(),
        defaults = [
            "seed = 11",
            "batch_size = 4",
            "bucket_pool = 4",
            "warmup_steps = 20",
            "metric_pairs = 0",
            "samples = 1",
            "checkpoint_every_steps = 5",
        ]
        .into_iter()
        .filter(|line| {
            let key = line.split(' ').next().unwrap_or_default();
            !training.lines().any(|l| l.starts_with(&format!("{key} ")))
        })
        .collect::<Vec<_>>()
        .join("\n")
    )
}

fn write_config(dir: &Path, name: &str, training: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config(name, training)).unwrap();
    path
}

/// The validation logs of every epoch (loss, accuracy, perplexity), by file.
fn valid_logs(run: &Path) -> Vec<(String, String)> {
    let mut logs = Vec::new();
    for epoch in 1..=3 {
        let dir = run.join("valid").join(format!("epoch-{epoch}"));
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            logs.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    assert!(logs.len() >= 3, "{logs:?}");
    logs
}

/// The step of the newest complete step checkpoint (all three files and their checksums).
fn complete_step_checkpoint(run: &Path) -> Option<usize> {
    let dir = run.join("checkpoint");
    let mut steps: Vec<usize> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("step-model-")?
                .strip_suffix(".mpk")?
                .parse()
                .ok()
        })
        .filter(|s| {
            ["model", "optim", "scheduler"].iter().all(|p| {
                dir.join(format!("step-{p}-{s}.mpk.sha256")).is_file()
                    && dir.join(format!("step-{p}-{s}.mpk")).is_file()
            })
        })
        .collect();
    steps.sort_unstable();
    steps.pop()
}

fn wait_for(what: &str, child: &mut Child, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before {what}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Run names relative to the temporary directory, so the outputs can be compared.
fn resume(dir: &Path, config: &Path) -> Output {
    let out = s2s(&["train", config.to_str().unwrap(), "--resume"], None, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

#[test]
fn killed_or_stopped_runs_resume_to_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let epochs = "epochs = 3";

    // The reference: three epochs without interruption.
    let reference = write_config(dir, "whole", epochs);
    let out = s2s(&["train", reference.to_str().unwrap()], None, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let whole = dir.join("runs/whole");

    // SIGKILL in the middle of epoch 2 (after epoch 1's checkpoint and a later step one).
    let killed = write_config(dir, "killed", epochs);
    let run = dir.join("runs/killed");
    let mut child = spawn(&["train", killed.to_str().unwrap()], dir);
    wait_for("epoch 1's checkpoint", &mut child, || {
        run.join("checkpoint/model-1.mpk.sha256").is_file()
            && run.join("checkpoint/scheduler-1.mpk").is_file()
    });
    let after_epoch_1 = complete_step_checkpoint(&run).unwrap_or(0);
    wait_for("a step checkpoint in epoch 2", &mut child, || {
        complete_step_checkpoint(&run).is_some_and(|s| s > after_epoch_1)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!run.join("model.mpk").exists());
    assert!(
        !run.join("checkpoint/model-2.mpk").exists(),
        "killed too late"
    );
    let out = resume(dir, &killed);
    let log = text(&out.stderr);
    assert!(
        log.contains("no longer running") && log.contains("taking it over"),
        "the dead process's lock is taken over with a warning: {log}"
    );
    assert!(
        log.contains("resuming from the checkpoint of step") && log.contains(": epoch 2,"),
        "resumed mid-epoch 2: {log}"
    );

    // Ctrl-C (SIGINT) in epoch 1: a checkpoint of that batch, a sentence, a non-zero exit.
    let stopped = write_config(dir, "stopped", epochs);
    let run = dir.join("runs/stopped");
    let mut child = spawn(&["train", stopped.to_str().unwrap()], dir);
    wait_for("the first step checkpoint", &mut child, || {
        complete_step_checkpoint(&run).is_some()
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("training stopped (Ctrl-C or SIGTERM) in epoch 1 after batch")
            && stderr.contains(&format!("s2s train {} --resume", stopped.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !run.join("model.mpk").exists(),
        "no final model after Ctrl-C"
    );
    assert!(
        !run.join(".lock").exists(),
        "a clean stop releases the lock"
    );
    resume(dir, &stopped);

    let expected = weights(&whole);
    for name in ["killed", "stopped"] {
        let run = dir.join("runs").join(name);
        assert!(
            weights(&run) == expected,
            "{name}: the resumed weights differ from the uninterrupted run's"
        );
        let strip = |logs: Vec<(String, String)>| -> Vec<String> {
            logs.into_iter().map(|(_, l)| l).collect()
        };
        assert_eq!(
            strip(valid_logs(&run)),
            strip(valid_logs(&whole)),
            "{name}: validation metrics differ"
        );
    }
}

/// Every file of a run directory with its bytes, except the appended experiment log.
fn snapshot(run: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![run.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("experiment.log") {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn resume_refuses_a_changed_config_and_passes_over_damaged_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Trained on a copy of the pairs, so that the test can change them in place.
    let data = dir.join("train.tsv");
    std::fs::copy(fixture("bible-en-fr-train.tsv"), &data).unwrap();
    let fixture_train = fixture("bible-en-fr-train.tsv").display().to_string();
    let config = |name: &str, training: &str| {
        config(name, training).replace(&fixture_train, &data.display().to_string())
    };
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        config("run", "epochs = 2\ncheckpoint_every_steps = 0"),
    )
    .unwrap();
    let out = s2s(&["train", path.to_str().unwrap()], None, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = dir.join("runs/run");
    let before = snapshot(&run);
    // Resumes with `config_text` and returns stderr, checking the refusal: exit 1, `expected`.
    let refused = |config_text: String, expected: &str| -> String {
        std::fs::write(&path, config_text).unwrap();
        let out = s2s(&["train", path.to_str().unwrap(), "--resume"], None, dir);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "expected {expected:?}: {stderr}");
        stderr
    };

    // A changed model (or tokenizer, or data) is refused before anything is written.
    let changed = config("run", "epochs = 3\ncheckpoint_every_steps = 0")
        .replace("d_model = 32", "d_model = 64")
        .replace("vocab_size = 300", "vocab_size = 400");
    let stderr = refused(
        changed,
        "the config changes data.tokenizer.vocab_size, model.decoder.d_model, \
         model.encoder.d_model, which",
    );
    assert!(
        stderr.lines().filter(|l| l.starts_with("error:")).count() == 1
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(snapshot(&run) == before, "a refused resume changed the run");
    let out = s2s(&["generate", "--run", run.to_str().unwrap()], None, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The same config on changed data: refused too.
    let original = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, format!("{original}One more.\tUne de plus.\n")).unwrap();
    refused(
        config("run", "epochs = 3\ncheckpoint_every_steps = 0"),
        "the training/validation pairs (their contents changed)",
    );
    assert!(snapshot(&run) == before, "a refused resume changed the run");
    std::fs::write(&data, original).unwrap();

    // An edited tokenizer: refused, naming the file.
    let tokenizer = run.join("tokenizer.json");
    let original_tokenizer = std::fs::read_to_string(&tokenizer).unwrap();
    std::fs::write(&tokenizer, original_tokenizer.replacen("\"e\"", "\"E\"", 1)).unwrap();
    refused(
        config("run", "epochs = 3\ncheckpoint_every_steps = 0"),
        "the run's tokenizer files (tokenizer.json changed",
    );
    std::fs::write(&tokenizer, original_tokenizer).unwrap();

    // Only keys that may change: more epochs resume from the newest intact checkpoint; the
    // truncated newest one is named and passed over.
    std::fs::write(
        &path,
        config("run", "epochs = 3\ncheckpoint_every_steps = 0"),
    )
    .unwrap();
    let newest = run.join("checkpoint/model-2.mpk");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 3]).unwrap();
    let out = s2s(&["train", path.to_str().unwrap(), "--resume"], None, dir);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("model-2.mpk is damaged")
            && stderr.contains("resuming from the checkpoint of epoch 1"),
        "{stderr}"
    );

    // Fewer epochs than trained: refused, the run keeps saying 3.
    refused(
        config("run", "epochs = 2\ncheckpoint_every_steps = 0"),
        "training.epochs = 2 is below the 3 epochs",
    );
    assert!(std::fs::read_to_string(run.join("config.toml"))
        .unwrap()
        .contains("epochs = 3"));
    assert!(
        !run.join("checkpoint").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("step-")),
        "a finished run keeps no mid-epoch checkpoints"
    );

    // An intact model.mpk that no longer fits the (edited) config.toml: one sentence.
    let run_config = run.join("config.toml");
    let original_config = std::fs::read_to_string(&run_config).unwrap();
    std::fs::write(
        &run_config,
        original_config.replace("n_layers = 1", "n_layers = 2"),
    )
    .unwrap();
    let out = s2s(&["generate", "--run", run.to_str().unwrap()], None, dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not fit the model of the run's config.toml")
            && !stderr.contains("panicked")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    std::fs::write(&run_config, original_config).unwrap();

    // A damaged final model: one sentence naming it.
    let model = run.join("model.mpk");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() - 10]).unwrap();
    let out = s2s(&["generate", "--run", run.to_str().unwrap()], None, dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("model.mpk is damaged") && !stderr.contains("panicked"),
        "{stderr}"
    );

    // Every checkpoint damaged: refused with their names, nothing overwritten.
    for entry in std::fs::read_dir(run.join("checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "mpk") {
            std::fs::write(&path, b"x").unwrap();
        }
    }
    let before = snapshot(&run);
    refused(
        config("run", "epochs = 4\ncheckpoint_every_steps = 0"),
        "has no intact checkpoint",
    );
    assert!(snapshot(&run) == before, "a refused resume changed the run");
}

#[test]
fn a_second_process_is_refused_and_nan_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let path = write_config(dir, "busy", "epochs = 50");
    let run = dir.join("runs/busy");
    let mut first = spawn(&["train", path.to_str().unwrap()], dir);
    wait_for("the lock", &mut first, || {
        std::fs::read_to_string(run.join(".lock")).is_ok_and(|s| s.ends_with('\n'))
    });
    let out = s2s(&["train", path.to_str().unwrap()], None, dir);
    let stderr = text(&out.stderr);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is in use by process {}", first.id())),
        "{stderr}"
    );

    // lr_factor = 1e30: the weights blow up after the first update.
    let path = write_config(dir, "nan", "epochs = 2\nlr_factor = 1e30\nwarmup_steps = 1");
    let out = s2s(&["train", path.to_str().unwrap()], None, dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("training stopped: the loss of batch")
            && stderr.contains("no model was written"),
        "{stderr}"
    );
    let run = dir.join("runs/nan");
    assert!(!run.join("model.mpk").exists(), "no model from a NaN run");
    assert!(!run.join("report.md").exists());
}
