//! Summarization end to end with the real binary: `s2s data prepare debian-descriptions` reads
//! the committed excerpt of Debian's bookworm indexes (tests/fixtures/debian) as an apt lists
//! directory, `s2s train` trains a tiny `task = "summarization"` config on it for one epoch
//! (validation ROUGE in the metric logs, ROUGE in the report), and `s2s eval` scores the run's
//! summaries with ROUGE, the same numbers through `--run` and through `--hyp/--ref`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{fixture, s2s_with_env, text, tiny_model};

fn s2s(args: &[&str], dir: &Path) -> std::process::Output {
    let data = dir.join("data");
    s2s_with_env(args, None, dir, &[("S2S_DATA_DIR", data.to_str().unwrap())])
}

#[test]
fn summarization_prepares_trains_and_scores_with_rouge_on_the_debian_excerpt() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let lists = fixture("debian");

    // Prepare from the excerpt: 240 real records, every one counted as kept or dropped.
    let out = s2s(
        &[
            "data",
            "prepare",
            "debian-descriptions",
            "--apt-lists",
            lists.to_str().unwrap(),
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let corpus = dir.join("data/debian-descriptions");
    assert!(text(&out.stdout).contains(&format!("ready in {}", corpus.display())));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("manifest.json")).unwrap())
            .unwrap();
    let count = |key: &str| manifest[key]["pairs"].as_u64().unwrap();
    let dropped = |key: &str| manifest["dropped"][key].as_u64().unwrap();
    let (train, valid, test) = (count("train"), count("valid"), count("test"));
    assert!(valid > 0 && test > 0 && train > valid + test, "{manifest}");
    assert_eq!(
        train
            + valid
            + test
            + manifest["dropped_empty"].as_u64().unwrap()
            + dropped("too_short")
            + dropped("duplicate"),
        240
    );
    assert_eq!(manifest["source"]["suite"], "bookworm");
    assert_eq!(manifest["source"]["release_version"], "12.15");
    for split in ["train", "valid", "test"] {
        let lines = std::fs::read_to_string(corpus.join(format!("{split}.tsv"))).unwrap();
        assert_eq!(lines.lines().count() as u64, count(split));
        assert!(lines.lines().all(|l| l.split('\t').count() == 2));
    }
    // Prepared once: a second call changes nothing (and needs no lists).
    let before = std::fs::read(corpus.join("train.tsv")).unwrap();
    let out = s2s(&["data", "prepare", "debian-descriptions"], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(corpus.join("train.tsv")).unwrap(), before);
    // --apt-lists belongs to the Debian corpus only.
    let out = s2s(&["data", "prepare", "bible-en-fr", "--apt-lists", "x"], dir);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--apt-lists applies to debian-descriptions only"),
        "{}",
        text(&out.stderr)
    );

    // Train one epoch; the task fills in the summarization defaults the config leaves out.
    let config = format!(
        "name = \"summarize\"\n{}[data]\ntask = \"summarization\"\n\
         corpus = \"debian-descriptions\"\nmax_source_len = 64\nmax_target_len = 64\n\
         [training]\nepochs = 1\nbatch_size = 8\nwarmup_steps = 10\nmetric_pairs = 6\n\
         samples = 1\n[generation]\nnum_beams = 2\n",
        tiny_model(0.0)
    );
    std::fs::write(dir.join("summarize.toml"), config).unwrap();
    let out = s2s(&["train", "summarize.toml", "--no-tui"], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ROUGE-1/2/L"),
        "{}",
        text(&out.stdout)
    );
    let run = dir.join("runs/summarize");
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for line in [
        "task = \"summarization\"",
        "valid_metrics = [\"rouge\"]",
        "no_repeat_ngram_size = 3",
        "num_beams = 2",
        "source = \"truncate\"",
    ] {
        assert!(resolved.contains(line), "{line} not in\n{resolved}");
    }
    for metric in ["ROUGE-1", "ROUGE-2", "ROUGE-L"] {
        let log = run.join(format!("valid/epoch-1/{metric}.log"));
        let last = std::fs::read_to_string(&log).unwrap();
        let value: f64 = last
            .lines()
            .last()
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=100.0).contains(&value), "{metric}: {value}");
    }
    assert!(!run.join("valid/epoch-1/BLEU.log").exists());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["metric_pairs"].as_u64(), Some(6));
    for key in [
        "valid_rouge1",
        "valid_rouge2",
        "valid_rouge_l",
        "valid_rouge_lsum",
    ] {
        let value = report[key].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&value), "{key}: {value}");
    }
    // One-line targets: ROUGE-Lsum is ROUGE-L.
    assert_eq!(report["valid_rouge_l"], report["valid_rouge_lsum"]);

    // eval --run defaults to ROUGE for a summarization run; the same outputs scored as files
    // give the same line.
    let outputs = dir.join("test-summaries.txt");
    let out = s2s(
        &[
            "eval",
            "--run",
            run.to_str().unwrap(),
            "--split",
            "test",
            "--output",
            outputs.to_str().unwrap(),
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let by_run = text(&out.stdout);
    assert!(
        by_run.starts_with("ROUGE|nrefs:1|stem:yes|") && by_run.lines().count() == 1,
        "{by_run}"
    );
    assert!(
        by_run.contains(&format!("over {test} segments")),
        "{by_run}"
    );
    let references: String = std::fs::read_to_string(corpus.join("test.tsv"))
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", l.split('\t').nth(1).unwrap()))
        .collect();
    let refs = dir.join("test-refs.txt");
    std::fs::write(&refs, references).unwrap();
    let out = s2s(
        &[
            "eval",
            "--hyp",
            outputs.to_str().unwrap(),
            "--ref",
            refs.to_str().unwrap(),
            "--metrics",
            "rouge",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), by_run);
}
