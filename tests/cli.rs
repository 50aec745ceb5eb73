//! End to end through the real `s2s` binary on small real data (tests/fixtures/bible-en-fr-*,
//! verses of the World English Bible and Louis Segond; see tests/fixtures/README.md).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn s2s(args: &[&str], stdin: Option<&str>, cwd: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_s2s"))
        .args(args)
        .current_dir(cwd)
        .env("S2S_DATA_DIR", cwd.join("no-data-needed"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that fails before reading its input closes the pipe; its exit status and
        // stderr are what the tests check, so a broken pipe here is not an error.
        match pipe.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tiny model on real pairs; `extra` is appended to `[training]`.
fn tiny_config(train: &Path, valid: &Path, training: &str) -> String {
    format!(
        r#"name = "tiny"
[model]
max_positions = 64
dropout = 0.0
[model.encoder]
d_model = 32
n_heads = 2
n_layers = 1
d_ff = 64
[model.decoder]
d_model = 32
n_heads = 2
n_layers = 1
d_ff = 64
[data]
train = "{}"
valid = "{}"
max_source_len = 48
max_target_len = 48
[data.tokenizer]
vocab_size = 300
[training]
seed = 3
{training}
"#,
        train.display(),
        valid.display()
    )
}

#[test]
fn train_writes_a_run_and_generate_prints_one_line_per_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    let train = fixture("bible-en-fr-train.tsv");
    let valid = fixture("bible-en-fr-valid.tsv");
    std::fs::write(
        &config,
        tiny_config(
            &train,
            &valid,
            "epochs = 1\nbatch_size = 16\nwarmup_steps = 10\n",
        ),
    )
    .unwrap();

    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("validation ("), "{stdout}");
    let run = dir.path().join("runs/tiny");
    for file in [
        "config.toml",
        "tokenizer.json",
        "model.mpk",
        "report.md",
        "report.json",
        "checkpoint/model-1.mpk",
        "checkpoint/optim-1.mpk",
    ] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    // No temporary files are left behind by the atomic writes.
    let leftovers: Vec<_> = walk(&run)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let loss = report["valid_loss"].as_f64().unwrap();
    assert!(
        loss.is_finite() && loss > 0.0 && loss < 10.0,
        "valid loss {loss}"
    );
    // the resolved config re-reads as a valid experiment (every default written out)
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("adam_beta2 = 0.98"), "{resolved}");

    let input = "In the beginning, God created the heavens and the earth.\nJesus wept.\n\nThe Lord is my shepherd.\n";
    let out = s2s(
        &["generate", "--run", run.to_str().unwrap()],
        Some(input),
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[2], "", "a blank input line stays blank");

    // A second `train` into the same run must not overwrite it silently.
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--resume"),
        "{}",
        text(&out.stderr)
    );
    // `--resume` with one more epoch continues from checkpoint 1 with the saved tokenizer.
    let tokenizer = std::fs::read(run.join("tokenizer.json")).unwrap();
    std::fs::write(
        &config,
        tiny_config(
            &train,
            &valid,
            "epochs = 2\nbatch_size = 16\nwarmup_steps = 10\n",
        ),
    )
    .unwrap();
    let out = s2s(
        &["train", config.to_str().unwrap(), "--resume"],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("resuming from the checkpoint of epoch 1"),
        "{}",
        text(&out.stderr)
    );
    assert!(run.join("checkpoint/model-2.mpk").is_file());
    assert_eq!(
        std::fs::read(run.join("tokenizer.json")).unwrap(),
        tokenizer
    );
    let resumed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert!(
        resumed["valid_loss"].as_f64().unwrap() < loss,
        "a second epoch should lower the validation loss"
    );
}

#[test]
fn the_same_seed_gives_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let train = fixture("bible-en-fr-train.tsv");
    let valid = fixture("bible-en-fr-valid.tsv");
    let mut reports = Vec::new();
    for name in ["a", "b", "c"] {
        let config = dir.path().join(format!("{name}.toml"));
        let body = tiny_config(
            &train,
            &valid,
            "epochs = 1\nbatch_size = 32\nwarmup_steps = 5\n",
        )
        .replace("name = \"tiny\"", &format!("name = \"{name}\""))
        .replace("dropout = 0.0", "dropout = 0.2")
        .replace(
            "seed = 3",
            if name == "c" { "seed = 4" } else { "seed = 3" },
        );
        std::fs::write(&config, body).unwrap();
        let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let run = dir.path().join("runs").join(name);
        // Records carry random parameter ids, so compare what the weights compute instead of
        // the bytes of model.mpk: the validation numbers (exact f64) and the translations.
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap())
                .unwrap();
        reports.push((
            (
                report["valid_loss"].clone(),
                report["valid_nll"].clone(),
                report["samples"].clone(),
            ),
            std::fs::read(run.join("tokenizer.json")).unwrap(),
        ));
    }
    assert!(reports[0].1 == reports[1].1, "tokenizers differ");
    assert_eq!(
        reports[0].0, reports[1].0,
        "two runs with the same seed differ"
    );
    assert_ne!(
        reports[0].0 .0, reports[2].0 .0,
        "another seed should give another model"
    );
}

#[test]
fn a_tiny_model_overfits_eight_pairs_and_generate_reproduces_them() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = fixture("bible-en-fr-eight.tsv");
    let config = dir.path().join("overfit.toml");
    let training = "epochs = 120\nbatch_size = 8\nlr_factor = 1.0\nwarmup_steps = 30\nlabel_smoothing = 0.0\nkeep_checkpoints = 1\n";
    std::fs::write(
        &config,
        tiny_config(&pairs, &pairs, training).replace("name = \"tiny\"", "name = \"overfit\""),
    )
    .unwrap();
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = dir.path().join("runs/overfit");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let nll = report["valid_nll"].as_f64().unwrap();
    assert!(nll < 0.05, "training NLL on the 8 pairs is {nll}");

    let tsv = std::fs::read_to_string(&pairs).unwrap();
    let (sources, targets): (Vec<&str>, Vec<&str>) =
        tsv.lines().map(|l| l.split_once('\t').unwrap()).unzip();
    let out = s2s(
        &["generate", "--run", run.to_str().unwrap()],
        Some(&(sources.join("\n") + "\n")),
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let outputs = text(&out.stdout);
    let outputs: Vec<&str> = outputs.lines().collect();
    assert_eq!(outputs, targets);
}

#[test]
fn user_errors_are_one_sentence_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    let train = fixture("bible-en-fr-train.tsv");
    std::fs::write(&config, tiny_config(&train, &train, "epochz = 1\n")).unwrap();
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("epochz") && stderr.contains("bad.toml"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && stderr.lines().count() == 1,
        "{stderr}"
    );

    std::fs::write(
        &config,
        tiny_config(&train, &train, "").replace(
            "n_heads = 2\nn_layers = 1\nd_ff = 64\n[model.decoder]",
            "n_heads = 5\nn_layers = 1\nd_ff = 64\n[model.decoder]",
        ),
    )
    .unwrap();
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("divisible"),
        "{}",
        text(&out.stderr)
    );

    let out = s2s(
        &["generate", "--run", "runs/nope"],
        Some("hello\n"),
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a run directory"),
        "{}",
        text(&out.stderr)
    );

    let out = s2s(&["train", "missing.toml"], None, dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing.toml"));

    std::fs::write(&config, tiny_config(&train, &train, "")).unwrap();
    let out = s2s(
        &["train", config.to_str().unwrap(), "--backend", "cuda"],
        None,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--features cuda"), "{stderr}");
    assert!(!dir.path().join("runs/tiny/checkpoint").exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
