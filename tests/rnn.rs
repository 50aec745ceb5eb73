//! The RNN family end to end through the real `s2s` binary on small real data: it trains from a
//! config, memorises eight pairs, decodes them with every strategy, resumes to the
//! uninterrupted weights, and both families write cross-attention maps with `--attention-out`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{fixture, s2s, text, tiny_model, weights};

/// A one-layer bidirectional GRU with Bahdanau attention (the other cell and score than the
/// quickstart's LSTM and Luong), width 48, on `train`/`valid`.
fn rnn_config(name: &str, train: &Path, valid: &Path, training: &str) -> String {
    format!(
        r#"name = "{name}"
[model]
family = "rnn"
max_positions = 64
dropout = 0.0
[model.rnn]
cell = "gru"
attention = "bahdanau"
embedding_size = 48
hidden_size = 48
n_layers = 1
bidirectional = true
[data]
train = "{}"
valid = "{}"
max_source_len = 48
max_target_len = 48
[data.tokenizer]
vocab_size = 300
[training]
seed = 5
{training}
"#,
        train.display(),
        valid.display()
    )
}

fn train(dir: &Path, name: &str, config: &str, extra: &[&str]) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let mut args = vec!["train", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = s2s(&args, None, dir);
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
}

/// Checks the files `--attention-out` wrote for `lines` inputs and returns the JSON maps.
fn attention_maps(dir: &Path, lines: usize, heads: usize) -> Vec<serde_json::Value> {
    (1..=lines)
        .map(|line| {
            let stem = format!("{line:04}");
            for ext in ["svg", "png"] {
                let path = dir.join(format!("{stem}.{ext}"));
                assert!(path.is_file(), "{} is missing", path.display());
            }
            let grid = dir.join(format!("{stem}-heads.png"));
            assert_eq!(grid.is_file(), heads > 1, "{}", grid.display());
            let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
            assert_eq!(&png[1..4], b"PNG");
            let json = std::fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap();
            let map: serde_json::Value = serde_json::from_str(&json).unwrap();
            let sources = map["source_tokens"].as_array().unwrap().len();
            let targets = map["target_tokens"].as_array().unwrap().len();
            let layers = map["layers"].as_array().unwrap();
            assert_eq!(
                layers
                    .iter()
                    .map(|l| l.as_array().unwrap().len())
                    .sum::<usize>(),
                heads
            );
            let average = map["average"].as_array().unwrap();
            assert_eq!(average.len(), targets);
            for row in average {
                let row: Vec<f64> = row
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                assert_eq!(row.len(), sources);
                let sum: f64 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-4, "a row sums to {sum}");
                assert!(row.iter().all(|w| (0.0..=1.0 + 1e-6).contains(w)));
            }
            map
        })
        .collect()
}

#[test]
fn an_rnn_memorises_eight_pairs_decodes_them_with_every_strategy_and_maps_its_attention() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let pairs = fixture("bible-en-fr-eight.tsv");
    let training = "epochs = 150\nbatch_size = 8\nwarmup_steps = 30\nlabel_smoothing = 0.0\nkeep_checkpoints = 1\nsamples = 1\n";
    train(
        dir,
        "overfit",
        &rnn_config("overfit", &pairs, &pairs, training),
        &[],
    );
    let run = dir.join("runs/overfit");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let nll = report["valid_nll"].as_f64().unwrap();
    assert!(nll < 0.05, "training NLL on the 8 pairs is {nll}");
    assert!(report["valid_bleu"].as_f64().unwrap() > 99.99, "{report}");

    let tsv = std::fs::read_to_string(&pairs).unwrap();
    let (sources, targets): (Vec<&str>, Vec<&str>) =
        tsv.lines().map(|l| l.split_once('\t').unwrap()).unzip();
    let input = sources.join("\n") + "\n";
    let run_arg = run.to_str().unwrap();
    for flags in [
        &[][..],
        &["--num-beams", "4"][..],
        &["--num-beams", "3", "--num-return-sequences", "2"][..],
        &["--do-sample", "--top-k", "1", "--seed", "9"][..],
        &["--batch-size", "3"][..],
    ] {
        let mut args = vec!["generate", "--run", run_arg];
        args.extend_from_slice(flags);
        let out = s2s(&args, Some(&input), dir);
        assert!(out.status.success(), "{flags:?}: {}", text(&out.stderr));
        let lines = text(&out.stdout);
        let lines: Vec<&str> = lines.lines().collect();
        let best: Vec<&str> = if flags.contains(&"--num-return-sequences") {
            lines.iter().step_by(2).copied().collect()
        } else {
            lines
        };
        assert_eq!(best, targets, "{flags:?}");
    }

    // Attention maps of the beam's chosen hypotheses, and a blank line gets none.
    let maps_dir = dir.join("attention");
    let out = s2s(
        &[
            "generate",
            "--run",
            run_arg,
            "--num-beams",
            "4",
            "--format",
            "jsonl",
            "--attention-out",
            maps_dir.to_str().unwrap(),
        ],
        Some(&(input.clone() + "\n")),
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let maps = attention_maps(&maps_dir, 8, 1);
    assert!(
        !maps_dir.join("0009.json").exists(),
        "a blank line has no map"
    );
    // One label per generated token, in order, then </s>: the token's text where it is whole
    // characters (for a plain-ASCII byte-level token, the token with its `Ġ` as a space), else
    // the raw vocabulary entry.
    for ((map, target), record) in maps.iter().zip(&targets).zip(&records) {
        let labels = map["target_tokens"].as_array().unwrap();
        let raw = record["hypotheses"][0]["tokens"].as_array().unwrap();
        assert_eq!(labels.len(), raw.len() + 1, "{target}");
        assert_eq!(labels.last().unwrap().as_str(), Some("</s>"));
        for (label, raw) in labels.iter().zip(raw) {
            let (label, raw) = (label.as_str().unwrap(), raw.as_str().unwrap());
            let plain = raw.chars().all(|c| c == 'Ġ' || c.is_ascii());
            if plain && !raw.trim_start_matches('Ġ').is_empty() {
                assert_eq!(label, raw.replace('Ġ', " ").trim(), "{target}");
            } else {
                assert!(
                    label == raw || target.contains(label),
                    "{label:?} in {target}"
                );
            }
        }
    }

    // eval --run scores the run like the Transformer's.
    let out = s2s(&["eval", "--run", run_arg, "--split", "valid"], None, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("BLEU"), "{}", text(&out.stdout));
}

#[test]
fn an_rnn_run_resumes_to_the_uninterrupted_weights_and_a_transformer_maps_every_head() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (train_tsv, valid_tsv) = (
        fixture("bible-en-fr-train.tsv"),
        fixture("bible-en-fr-valid.tsv"),
    );
    let training = |epochs: usize| {
        format!(
            "epochs = {epochs}\nbatch_size = 16\nwarmup_steps = 10\nmetric_pairs = 8\nsamples = 1\n"
        )
    };
    let config = |name: &str, epochs| rnn_config(name, &train_tsv, &valid_tsv, &training(epochs));
    train(dir, "whole", &config("whole", 2), &[]);
    train(dir, "resumed", &config("resumed", 1), &[]);
    train(dir, "resumed", &config("resumed", 2), &["--resume"]);
    assert!(
        weights(&dir.join("runs/resumed")) == weights(&dir.join("runs/whole")),
        "the resumed RNN's weights differ from the uninterrupted run's"
    );

    // A Transformer (1 layer, 2 heads) writes every head and their mean.
    let transformer = format!(
        "name = \"transformer\"\n{}[data]\ntrain = \"{}\"\nvalid = \"{}\"\n\
         max_source_len = 48\nmax_target_len = 48\n[training]\nseed = 3\n{}",
        tiny_model(0.0),
        train_tsv.display(),
        valid_tsv.display(),
        training(1)
    );
    train(dir, "transformer", &transformer, &[]);
    let maps_dir = dir.join("transformer-attention");
    let out = s2s(
        &[
            "generate",
            "--run",
            dir.join("runs/transformer").to_str().unwrap(),
            "--attention-out",
            maps_dir.to_str().unwrap(),
        ],
        Some("In the beginning was the Word.\nJesus wept.\n"),
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let maps = attention_maps(&maps_dir, 2, 2);
    // The average is the mean of the heads.
    let map = &maps[0];
    let head = |h: usize| map["layers"][0][h].as_array().unwrap().clone();
    let (a, b) = (head(0), head(1));
    for (r, row) in map["average"].as_array().unwrap().iter().enumerate() {
        for (c, v) in row.as_array().unwrap().iter().enumerate() {
            let mean = (a[r][c].as_f64().unwrap() + b[r][c].as_f64().unwrap()) / 2.0;
            assert!((v.as_f64().unwrap() - mean).abs() < 1e-6);
        }
    }
}
