//! End to end through the real `s2s` binary on small real data (tests/fixtures/bible-en-fr-*,
//! verses of the World English Bible and Louis Segond; see tests/fixtures/README.md).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixture, s2s, s2s_with_env, text, tiny_model};

/// A user error: exit code 1 and one line on stderr that contains `expected`, no panic.
fn assert_user_error(out: &Output, expected: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(expected) && stderr.lines().count() == 1 && !stderr.contains("panicked"),
        "expected one line containing {expected:?}, got: {stderr}"
    );
}

/// A PNG image (signature, then an IHDR chunk) of a plausible chart size.
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let (width, height) = (be(16), be(20));
    assert!(width >= 400 && height >= 300, "{width}×{height}");
}

/// A tiny model on real pairs; `extra` is appended to `[training]`.
fn tiny_config(train: &Path, valid: &Path, training: &str) -> String {
    format!(
        r#"name = "tiny"
{}[data]
train = "{}"
valid = "{}"
max_source_len = 48
max_target_len = 48
[training]
seed = 3
{training}
"#,
        tiny_model(0.0),
        train.display(),
        valid.display()
    )
}

/// `dir/tiny.toml`: [`tiny_config`] on the fixture's training and validation verses.
fn write_tiny_config(dir: &Path, training: &str) -> PathBuf {
    let config = dir.join("tiny.toml");
    let train = fixture("bible-en-fr-train.tsv");
    let valid = fixture("bible-en-fr-valid.tsv");
    std::fs::write(&config, tiny_config(&train, &valid, training)).unwrap();
    config
}

#[test]
fn train_writes_a_run_and_generate_prints_one_line_per_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_tiny_config(
        dir.path(),
        "epochs = 1\nbatch_size = 16\nwarmup_steps = 10\n",
    );

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
    let epoch1_logs: std::collections::HashMap<&str, String> = ["train", "valid"]
        .into_iter()
        .map(|split| {
            let path = run.join(format!("{split}/epoch-1/Loss.log"));
            (split, std::fs::read_to_string(path).unwrap())
        })
        .collect();
    write_tiny_config(
        dir.path(),
        "epochs = 2\nbatch_size = 16\nwarmup_steps = 10\n",
    );
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
    // Epoch 2's metrics land in epoch-2/ and epoch 1's stay as they were (burn-train 0.21
    // alone would write the first resumed epoch over epoch-1/).
    for split in ["train", "valid"] {
        let log = |epoch: usize| {
            std::fs::read_to_string(run.join(format!("{split}/epoch-{epoch}/Loss.log")))
                .unwrap_or_default()
        };
        assert_eq!(log(1), epoch1_logs[split], "{split}/epoch-1 was rewritten");
        assert!(!log(2).is_empty(), "{split}/epoch-2 is missing");
    }
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

    // Validation BLEU was decoded every epoch (the plain renderer logs it) and the final
    // model's is in the report: the validation pairs are the training pairs here.
    let log = std::fs::read_to_string(run.join("experiment.log")).unwrap();
    assert!(log.contains("BLEU epoch"), "{log}");
    assert_eq!(report["metric_pairs"].as_u64(), Some(8));
    assert!(report["valid_bleu"].as_f64().unwrap() > 99.99, "{report}");

    let run_arg = run.to_str().unwrap();
    let input = sources.join("\n") + "\n";
    let generate = |extra: &[&str]| {
        let mut args = vec!["generate", "--run", run_arg];
        args.extend_from_slice(extra);
        let out = s2s(&args, Some(&input), dir.path());
        assert!(out.status.success(), "{extra:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    // Every strategy reproduces what the model memorised.
    for flags in [
        &["--num-beams", "4"][..],
        &[
            "--num-beams",
            "3",
            "--length-penalty",
            "0.6",
            "--early-stopping",
        ],
        &["--do-sample", "--top-k", "1", "--seed", "9"],
        &["--do-sample", "--temperature", "0.05", "--top-p", "0.9"],
        &["--min-new-tokens", "2", "--batch-size", "3"],
    ] {
        let out = generate(flags);
        assert_eq!(out.lines().collect::<Vec<_>>(), targets, "{flags:?}");
    }
    // n-best as JSON lines: one object per input, hypotheses sorted by score, best = target.
    let jsonl = generate(&[
        "--num-beams",
        "4",
        "--num-return-sequences",
        "3",
        "--format",
        "jsonl",
    ]);
    let records: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 8);
    for (i, (record, target)) in records.iter().zip(&targets).enumerate() {
        assert_eq!(record["line"].as_u64(), Some(i as u64 + 1));
        assert_eq!(record["source"].as_str(), Some(sources[i]));
        let hyps = record["hypotheses"].as_array().unwrap();
        assert_eq!(hyps.len(), 3);
        assert_eq!(hyps[0]["text"].as_str(), Some(*target));
        let scores: Vec<f64> = hyps.iter().map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(scores[0] <= 0.0 && scores[0] > -1.0, "{scores:?}");
        for h in hyps {
            assert_eq!(
                h["tokens"].as_array().unwrap().len(),
                h["ids"].as_array().unwrap().len()
            );
        }
    }
    // Sampling: the same seed gives the same lines, and text mode prints one line per sample.
    let sampled = &[
        "--do-sample",
        "--temperature",
        "3.0",
        "--seed",
        "4",
        "--num-return-sequences",
        "2",
    ][..];
    let a = generate(sampled);
    assert_eq!(a, generate(sampled));
    assert_eq!(a.lines().count(), 16);
    assert_ne!(
        a,
        generate(&[
            "--do-sample",
            "--temperature",
            "3.0",
            "--seed",
            "5",
            "--num-return-sequences",
            "2"
        ])
    );
    // no_repeat_ngram_size: no bigram of <s> + ids repeats.
    let jsonl = generate(&[
        "--do-sample",
        "--temperature",
        "3.0",
        "--no-repeat-ngram-size",
        "2",
        "--format",
        "jsonl",
    ]);
    for line in jsonl.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let ids: Vec<u64> = std::iter::once(1)
            .chain(
                record["hypotheses"][0]["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap()),
            )
            .collect();
        let mut bigrams: Vec<&[u64]> = ids.windows(2).collect();
        let n = bigrams.len();
        bigrams.sort();
        bigrams.dedup();
        assert_eq!(bigrams.len(), n, "repeated bigram in {ids:?}");
    }
    // Bad flag combinations are one sentence and exit 1.
    for (flags, expected) in [
        (
            &["--do-sample", "--top-p", "1.5"][..],
            "top_p must be in (0, 1], got 1.5",
        ),
        (
            &["--num-beams", "2", "--num-return-sequences", "3"],
            "--num-return-sequences 3 needs at least 3 beams but there are 2; pass --num-beams 3",
        ),
        (
            &["--temperature", "0.5"],
            "--temperature only applies with sampling; add --do-sample",
        ),
        (&["--max-new-tokens", "500"], "exceeds model.max_positions"),
    ] {
        let mut args = vec!["generate", "--run", run_arg];
        args.extend_from_slice(flags);
        assert_user_error(&s2s(&args, Some(&input), dir.path()), expected);
    }

    // `s2s eval --run` decodes the split with the run's settings and scores it.
    let hyp_file = dir.path().join("valid.hyp");
    let out = s2s(
        &[
            "eval",
            "--run",
            run_arg,
            "--split",
            "valid",
            "--output",
            hyp_file.to_str().unwrap(),
        ],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.starts_with(
            "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 100.00 "
        ),
        "{printed}"
    );
    assert!(
        printed
            .contains("chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 100.00"),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_to_string(&hyp_file)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        targets
    );
    // It also writes the scores into the run, and `--epoch N` scores epoch N's checkpoint
    // (here the last epoch's, the weights of model.mpk, so the same 100).
    let record = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("eval").join(name)).unwrap())
            .unwrap()
    };
    let hundred = |v: &serde_json::Value| (v.as_f64().unwrap() - 100.0).abs() < 1e-9;
    let valid = record("valid.json");
    assert!(
        hundred(&valid["bleu"]) && hundred(&valid["chrf"]),
        "{valid}"
    );
    assert_eq!(valid["pairs"].as_u64(), Some(8));
    assert!(valid["epoch"].is_null());
    let out = s2s(
        &[
            "eval", "--run", run_arg, "--split", "valid", "--epoch", "120",
        ],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), printed);
    let epoch = record("valid-epoch-120.json");
    assert_eq!(epoch["epoch"].as_u64(), Some(120));
    assert_eq!(epoch["bleu"], valid["bleu"]);
    assert_eq!(epoch["decoding"], valid["decoding"]);
    let missing = s2s(
        &["eval", "--run", run_arg, "--epoch", "7"],
        None,
        dir.path(),
    );
    assert_user_error(&missing, "keeps no checkpoint of epoch 7 (it keeps epochs ");
    assert!(
        text(&missing.stderr).contains(", 120; training.keep_checkpoints sets how many"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn eval_scores_files_like_sacrebleu() {
    // Numbers printed by sacrebleu 2.6.0 for these files (crates/s2s-eval/tests/fixtures).
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/s2s-eval/tests/fixtures");
    let hyp = fixtures.join("bible-mild.hyp.fr");
    let reference = fixtures.join("bible.ref.fr");
    let out = s2s(
        &[
            "eval",
            "--hyp",
            hyp.to_str().unwrap(),
            "--ref",
            reference.to_str().unwrap(),
        ],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 86.11 98.2/90.0/85.1/80.6 (BP = 0.976 ratio = 0.976 hyp_len = 857 ref_len = 878)\n\
         chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 91.40\n"
    );
    let out = s2s(
        &[
            "eval",
            "--hyp",
            hyp.to_str().unwrap(),
            "--ref",
            reference.to_str().unwrap(),
            "--metrics",
            "chrf",
        ],
        None,
        dir.path(),
    );
    assert_eq!(text(&out.stdout).lines().count(), 1);
    // A line-count mismatch and an unknown metric are one sentence each.
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "une ligne\n").unwrap();
    for (args, expected) in [
        (
            vec![
                "--hyp",
                short.to_str().unwrap(),
                "--ref",
                reference.to_str().unwrap(),
            ],
            "got 1 hypothesis lines but 60 reference lines",
        ),
        (
            vec![
                "--hyp",
                hyp.to_str().unwrap(),
                "--ref",
                reference.to_str().unwrap(),
                "--metrics",
                "ter",
            ],
            "unknown metric",
        ),
    ] {
        let mut full = vec!["eval"];
        full.extend(args);
        assert_user_error(&s2s(&full, None, dir.path()), expected);
    }
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

    std::fs::write(&config, tiny_config(&train, &train, "epochs = 1\n")).unwrap();
    let out = s2s(
        &["train", config.to_str().unwrap(), "--backend", "cuda"],
        None,
        dir.path(),
    );
    let stderr = text(&out.stderr);
    if !cfg!(feature = "cuda") {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr.contains("--features cuda"), "{stderr}");
        assert!(!dir.path().join("runs/tiny/checkpoint").exists());
    } else if !s2s(&["backends", "--probe", "cuda"], None, dir.path())
        .status
        .success()
    {
        // Compiled in, on a machine without a CUDA device: one sentence, not cubecl's panic.
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("the cuda backend is compiled in but cannot run here"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error")).count(), 1);
        assert!(!dir.path().join("runs/tiny/checkpoint").exists());
    }
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

/// The prepared all-MiniLM-L6-v2; the tests that use it are `#[ignore]`d unless asked for
/// (scripts/test.sh asks when it is prepared, CI always).
fn minilm_dir() -> PathBuf {
    let data = std::env::var_os("S2S_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/s2s")))
        .expect("S2S_DATA_DIR or HOME");
    let dir = data.join("minilm-l6");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is not prepared: run `s2s data prepare minilm-l6`",
        dir.display()
    );
    dir
}

#[test]
#[ignore = "needs the prepared all-MiniLM-L6-v2: s2s data prepare minilm-l6 (scripts/test.sh then runs it)"]
fn encode_prints_ids_hidden_states_and_pooled_vectors() {
    let bert = minilm_dir();
    let dir = tempfile::tempdir().unwrap();
    let bert = bert.to_str().unwrap();
    let input = "A man is eating food.\nA man is eating a piece of bread.\n";
    let run = |pooling: &str| -> Vec<serde_json::Value> {
        let out = s2s(
            &["encode", "--bert", bert, "--pooling", pooling],
            Some(input),
            dir.path(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let mean = run("mean");
    assert_eq!(mean.len(), 2);
    assert_eq!(
        mean[0]["ids"],
        serde_json::json!([101, 1037, 2158, 2003, 5983, 2833, 1012, 102])
    );
    let (a, b) = (floats(&mean[0]["embedding"]), floats(&mean[1]["embedding"]));
    assert_eq!(a.len(), 384);
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cos = a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>() / norm(&a) / norm(&b);
    assert!((cos - 0.755).abs() <= 0.001, "cosine {cos}");

    let none = run("none");
    let hidden = none[1]["hidden"].as_array().unwrap();
    assert_eq!(hidden.len(), none[1]["tokens"].as_array().unwrap().len());
    // The mean of the hidden states is the mean-pooled embedding; [CLS] pooling is row 0.
    let rows: Vec<Vec<f64>> = hidden.iter().map(floats).collect();
    for d in [0, 100, 383] {
        let m = rows.iter().map(|r| r[d]).sum::<f64>() / rows.len() as f64;
        assert!((m - b[d]).abs() < 1e-5, "dim {d}: {m} vs {}", b[d]);
    }
    let cls = run("cls");
    assert_eq!(floats(&cls[1]["embedding"]), rows[0]);

    let out = s2s(
        &["encode", "--bert", "no-such-bert"],
        Some(input),
        dir.path(),
    );
    assert_user_error(&out, "neither a known BERT (minilm-l6)");
}

#[test]
fn freeze_encoder_is_applied_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("frozen.toml");
    let pairs = fixture("bible-en-fr-eight.tsv");
    std::fs::write(
        &config,
        tiny_config(
            &pairs,
            &pairs,
            "epochs = 1\nbatch_size = 8\nfreeze_encoder = true\nmetric_pairs = 0\n",
        )
        .replace("name = \"tiny\"", "name = \"frozen\""),
    )
    .unwrap();
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("freezing the source encoder"), "{stderr}");
    let resolved = std::fs::read_to_string(dir.path().join("runs/frozen/config.toml")).unwrap();
    assert!(resolved.contains("freeze_encoder = true"), "{resolved}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("runs/frozen/report.json")).unwrap(),
    )
    .unwrap();
    assert!(
        report["valid_bleu"].is_null(),
        "metric_pairs = 0 turns validation decoding off"
    );
}

/// `tiny_config` with the pre-trained BERT at `bert` as the encoder (the `[model.encoder]`
/// table dropped, a linear adapter, a target-only BPE).
fn bert_config(bert: &Path, pairs: &Path, training: &str) -> String {
    let config = tiny_config(pairs, pairs, training);
    let (head, rest) = config.split_once("[model.encoder]").unwrap();
    let (_, decoder) = rest.split_once("[model.decoder]").unwrap();
    format!(
        "{}bert = \"{}\"\n[model.adapter]\nkind = \"linear\"\n[model.decoder]{}",
        head,
        bert.display(),
        decoder.replace("[data.tokenizer]\n", "[data.tokenizer]\njoint = false\n")
    )
}

#[test]
#[ignore = "needs the prepared all-MiniLM-L6-v2: s2s data prepare minilm-l6 (scripts/test.sh then runs it)"]
fn a_bert_encoder_trains_from_the_config_and_generate_uses_its_tokenizer() {
    let bert = minilm_dir();
    let dir = tempfile::tempdir().unwrap();
    let pairs = fixture("bible-en-fr-eight.tsv");
    let config = dir.path().join("b2t.toml");
    std::fs::write(
        &config,
        bert_config(
            &bert,
            &pairs,
            "epochs = 1\nbatch_size = 8\nfreeze_encoder = true\nmetric_pairs = 0\nsamples = 1\n",
        )
        .replace("name = \"tiny\"", "name = \"b2t\""),
    )
    .unwrap();
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("loading the pre-trained encoder"),
        "{stderr}"
    );
    assert!(stderr.contains("freezing the source encoder"), "{stderr}");
    let run = dir.path().join("runs/b2t");
    let out = s2s(
        &[
            "generate",
            "--run",
            run.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
        Some("Jesus wept.\nThe Lord is my shepherd.\n"),
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["source"].as_str(), Some("Jesus wept."));
    assert!(first["hypotheses"][0]["ids"].is_array(), "{first}");

    // --resume with a second epoch reads the saved WordPiece tokenizer and BERT config.
    let two_epochs = std::fs::read_to_string(&config)
        .unwrap()
        .replace("epochs = 1", "epochs = 2");
    std::fs::write(&config, two_epochs).unwrap();
    let out = s2s(
        &["train", config.to_str().unwrap(), "--resume"],
        None,
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming from the checkpoint of epoch 1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("loading the pre-trained encoder"),
        "{stderr}"
    );
    assert!(run.join("checkpoint/model-2.mpk").is_file());

    // A directory that is not a BERT, and a joint vocabulary, are one-sentence errors.
    let broken = bert_config(dir.path(), &pairs, "epochs = 1\n")
        .replace("name = \"tiny\"", "name = \"broken\"");
    std::fs::write(&config, broken).unwrap();
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    // (after the "training … into runs/broken" log line: the BERT is resolved by the run)
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("lacks config.json, model.safetensors"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let joint = bert_config(&bert, &pairs, "epochs = 1\n").replace("joint = false", "joint = true");
    std::fs::write(&config, joint).unwrap();
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert_user_error(&out, "joint = false");
}

/// Whether `S2S_REQUIRE_BACKENDS` (CI) names this backend: then it must run here.
fn required_backend(name: &str) -> bool {
    std::env::var("S2S_REQUIRE_BACKENDS")
        .map(|list| list.split(',').any(|b| b.trim() == name))
        .unwrap_or(false)
}

#[test]
fn backends_lists_every_backend_and_probes_the_compiled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = s2s(&["backends"], None, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let ndarray = row("ndarray");
    assert_eq!(&ndarray[1..3], ["yes", "usable"], "{stdout}");
    let checksum: f64 = ndarray[4].parse().unwrap();
    assert!(checksum.is_finite() && checksum > 0.0, "{stdout}");
    for (name, compiled) in [
        ("flex", cfg!(feature = "flex")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("tch", cfg!(feature = "tch")),
        ("cuda", cfg!(feature = "cuda")),
    ] {
        let r = row(name);
        if !compiled {
            assert_eq!(r[1], "no", "{stdout}");
            assert!(
                r.join(" ").contains(&format!("--features {name}")),
                "{stdout}"
            );
        } else if required_backend(name) || r[2] == "usable" {
            // A backend CI requires (S2S_REQUIRE_BACKENDS) must run here.
            assert_eq!(
                r[2], "usable",
                "{name} is required but not usable:\n{stdout}"
            );
            // The same probe computes the same gradient sum on every backend.
            let other: f64 = r[4].parse().unwrap();
            assert!(
                (other - checksum).abs() <= 1e-4 * checksum,
                "{name}: {other} vs ndarray {checksum}\n{stdout}"
            );
        }
    }
}

#[test]
fn bench_measures_each_backend_and_compare_plots_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_tiny_config(
        dir.path(),
        "epochs = 1\nbatch_size = 16\nwarmup_steps = 10\n",
    );
    // The CPU backends compiled in: flex and tch (libtorch on the CPU) run anywhere they are
    // built. wgpu on lavapipe compiles its kernels anew for every batch shape (about 200 s for
    // these 4 steps in a debug build), so only S2S_BENCH_WGPU=1 adds it here; the parity test
    // and `s2s backends` run wgpu in CI, docs/backends.md has its release-build bench.
    let mut backends = vec!["ndarray"];
    if cfg!(feature = "flex") {
        backends.push("flex");
    }
    if cfg!(feature = "tch") {
        backends.push("tch");
    }
    if cfg!(feature = "wgpu") && std::env::var_os("S2S_BENCH_WGPU").is_some() {
        backends.push("wgpu");
    }
    let list = backends.join(",");
    let args = [
        "bench",
        "--config",
        config.to_str().unwrap(),
        "--backends",
        &list,
        "--steps",
        "3",
        "--warmup",
        "1",
        "--decode-sentences",
        "4",
        "--decode-tokens",
        "5",
        "--out",
        "bench-out",
    ];
    let out = s2s(&args, None, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("| ndarray |"), "{stdout}");
    let bench = dir.path().join("bench-out");
    let svg = std::fs::read_to_string(bench.join("bench.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("target tokens/s"));
    assert!(svg.trim_end().ends_with("</svg>"));
    for name in &backends {
        assert!(
            svg.contains(&format!(">\n{name}\n</text>")),
            "{name}: {svg}"
        );
    }
    assert_png(&bench.join("bench.png"));
    assert!(bench.join("bench.md").is_file());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bench.join("bench.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), backends.len());
    let mut first_losses: Vec<f64> = Vec::new();
    for (row, name) in rows.iter().zip(&backends) {
        assert_eq!(row["backend"], *name);
        let m = &row["measured"];
        let r = &m["result"];
        let losses: Vec<f64> = r["losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(losses.len(), 4, "1 warm-up + 3 timed steps");
        assert!(r["train_tokens_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["decode_tokens_per_second"].as_f64().unwrap() > 0.0);
        assert_eq!(r["decode_tokens"], 20, "4 sentences × 5 forced tokens");
        assert!(m["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
        // Same seed, weights and batches: the first loss agrees across backends.
        match first_losses.first() {
            None => first_losses.push(losses[0]),
            Some(&l) => assert!((losses[0] - l).abs() < 1e-3, "{name}: {} vs {l}", losses[0]),
        }
    }
    assert!(json["machine"]["logical_cpus"].as_u64().unwrap() >= 1);

    // compare: a trained run's curves as a table and a chart.
    let out = s2s(&["train", config.to_str().unwrap()], None, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = s2s(
        &["compare", "runs/tiny", "--out", "cmp", "--smooth", "5"],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("| tiny | ndarray | 1 |"), "{table}");
    let svg = std::fs::read_to_string(dir.path().join("cmp/compare.svg")).unwrap();
    assert!(
        svg.contains("<polyline"),
        "the training-loss curve is drawn"
    );
    for text in [
        "tiny",
        "training loss (moving average of 5 batches)",
        "validation loss",
        "validation perplexity",
        "validation BLEU",
    ] {
        assert!(
            svg.contains(&format!(">\n{text}\n</text>")),
            "{text}: {svg}"
        );
    }
    assert_png(&dir.path().join("cmp/compare.png"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cmp/compare.md")).unwrap(),
        table.split("\nwritten to").next().unwrap()
    );

    assert_user_error(
        &s2s(&["compare", "runs/none"], None, dir.path()),
        "not a run directory",
    );
    assert_user_error(&s2s(&["bench"], None, dir.path()), "needs --config");
    if !cfg!(feature = "cuda") {
        let out = s2s(
            &[
                "bench",
                "--config",
                config.to_str().unwrap(),
                "--backends",
                "cuda",
            ],
            None,
            dir.path(),
        );
        assert_user_error(&out, "--features cuda");
    }
}

/// The Python of `scripts/setup-tch.sh` (or `$S2S_TORCH_PYTHON`), if it is installed.
fn torch_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("S2S_TORCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    // Where scripts/setup-tch.sh installs it: $S2S_DATA_DIR, else $XDG_CACHE_HOME/s2s, else
    // ~/.cache/s2s.
    let set = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let cache = match (set("S2S_DATA_DIR"), set("XDG_CACHE_HOME")) {
        (Some(dir), _) => dir,
        (None, Some(xdg)) => xdg.join("s2s"),
        (None, None) => set("HOME")?.join(".cache/s2s"),
    };
    let python = cache.join("torch-2.9.0/bin/python");
    python.is_file().then_some(python)
}

#[test]
fn bench_runs_the_pytorch_reference_on_the_same_batches_or_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    let train = fixture("bible-en-fr-train.tsv");
    let valid = fixture("bible-en-fr-valid.tsv");
    std::fs::write(
        &config,
        tiny_config(&train, &valid, "batch_size = 16\nwarmup_steps = 10\n"),
    )
    .unwrap();
    let bench = |envs: &[(&str, &str)], out: &str| {
        let args = [
            "bench",
            "--config",
            config.to_str().unwrap(),
            "--backends",
            "ndarray,pytorch",
            "--steps",
            "3",
            "--warmup",
            "1",
            "--decode-sentences",
            "4",
            "--decode-tokens",
            "5",
            "--num-beams",
            "2",
            "--out",
            out,
        ];
        let result = s2s_with_env(&args, None, dir.path(), envs);
        assert!(result.status.success(), "{}", text(&result.stderr));
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(out).join("bench.json")).unwrap(),
        )
        .unwrap();
        json["rows"].as_array().unwrap().clone()
    };

    // Without torch: the row is skipped with the install command, the rest is measured.
    let rows = bench(&[("S2S_TORCH_PYTHON", "/nonexistent/python")], "without");
    assert_eq!(rows[0]["backend"], "ndarray");
    assert!(rows[0]["measured"].is_object());
    assert_eq!(rows[1]["backend"], "pytorch");
    let why = rows[1]["skipped"].as_str().unwrap();
    assert!(why.contains("scripts/setup-tch.sh"), "{why}");

    let Some(python) = torch_python() else {
        let required = std::env::var("S2S_REQUIRE_BACKENDS").is_ok_and(|b| b.contains("tch"));
        assert!(
            !required,
            "PyTorch is required (S2S_REQUIRE_BACKENDS names tch) but missing"
        );
        // Past the harness's capture, so that the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "note: the measured pytorch column SKIPPED: run scripts/setup-tch.sh"
        );
        return;
    };
    let rows = bench(&[("S2S_TORCH_PYTHON", python.to_str().unwrap())], "with");
    let result = |i: usize| rows[i]["measured"]["result"].clone();
    let (s2s_row, torch_row) = (result(0), result(1));
    assert_eq!(rows[1]["backend"], "pytorch");
    let losses = |r: &serde_json::Value| -> Vec<f64> {
        r["losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (ours, theirs) = (losses(&s2s_row), losses(&torch_row));
    assert_eq!(theirs.len(), 4, "1 warm-up + 3 timed steps");
    // Same architecture and batches from different random weights: a fresh model's
    // label-smoothed loss sits near ln(vocabulary) in both.
    assert!(
        (ours[0] - theirs[0]).abs() < 0.5,
        "s2s {} vs pytorch {}",
        ours[0],
        theirs[0]
    );
    assert_eq!(
        torch_row["parameters"], s2s_row["parameters"],
        "the reference counts the same parameters"
    );
    assert_eq!(
        torch_row["decode_tokens"], 20,
        "4 sentences × 5 forced tokens"
    );
    assert!(torch_row["train_tokens_per_second"].as_f64().unwrap() > 0.0);
    assert!(torch_row["beam_tokens_per_second"].as_f64().unwrap() > 0.0);
    assert!(s2s_row["beam_tokens_per_second"].as_f64().unwrap() > 0.0);
    let table = std::fs::read_to_string(dir.path().join("with/bench.md")).unwrap();
    assert!(table.contains("vs pytorch"), "{table}");
}

#[test]
fn set_overrides_are_recorded_and_average_makes_a_run_generate_loads() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_tiny_config(
        dir.path(),
        "epochs = 1\nbatch_size = 16\nwarmup_steps = 10\nmetric_pairs = 0\nsamples = 0\n",
    );
    let config = config.to_str().unwrap();

    // A misspelt key is refused with the override named, before any run directory exists.
    let out = s2s(
        &["train", config, "--set", "training.epoch=2"],
        None,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--set training.epoch=2: unknown field `epoch`"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!dir.path().join("runs/tiny").exists());

    let out = s2s(
        &[
            "train",
            config,
            "--set",
            "training.epochs=3",
            "--set",
            "training.keep_checkpoints=3",
            "--set",
            "training.lr_schedule=cosine",
            "--set",
            "training.grad_clip={ norm = 0.5, kind = \"global\" }",
            "--set",
            "training.optimizer=adamw",
            "--set",
            "training.weight_decay=0.01",
        ],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("all 3 epochs (training.epochs) ran; model.mpk: the last epoch (3)"),
        "{stdout}"
    );
    let run = dir.path().join("runs/tiny");
    let resolved = s2s_infer::ExperimentConfig::from_toml(
        &std::fs::read_to_string(run.join("config.toml")).unwrap(),
    )
    .unwrap();
    let t = &resolved.training;
    assert_eq!(t.epochs, 3);
    assert_eq!(t.lr_schedule, s2s_infer::LrSchedule::Cosine);
    assert_eq!(t.optimizer, s2s_infer::OptimizerKind::AdamW);
    assert_eq!(
        (t.grad_clip.norm, t.grad_clip.kind),
        (0.5, s2s_infer::ClipKind::Global)
    );
    assert_eq!(t.weight_decay, 0.01);

    // Averaging: more checkpoints than the run kept is one sentence; two make a run of their
    // own that generate loads, its weights not the last epoch's (tests/recipe_runs.rs checks
    // the mean itself).
    let run_arg = run.to_str().unwrap();
    let out = s2s(
        &["average", "--run", run_arg, "--last", "4"],
        None,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the run has 3 epoch(s), fewer than the 4 asked for"),
        "{}",
        text(&out.stderr)
    );
    let out = s2s(
        &["average", "--run", run_arg, "--last", "2"],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("the mean of epochs 2, 3 of"),
        "{}",
        text(&out.stdout)
    );
    let averaged_run = dir.path().join("runs/tiny-avg2");
    let averaged = common::weights(&averaged_run);
    let last = common::weights(&run);
    assert_eq!(averaged.len(), last.len());
    assert_ne!(averaged, last);
    let out = s2s(
        &["generate", "--run", averaged_run.to_str().unwrap()],
        Some("In the beginning, God created the heavens and the earth.\nJesus wept.\n"),
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
    // A second average into the same place is refused rather than overwritten.
    let out = s2s(
        &["average", "--run", run_arg, "--last", "2"],
        None,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
}
