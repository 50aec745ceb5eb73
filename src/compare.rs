//! `s2s compare runs/a runs/b …`: loss, perplexity, validation-score (BLEU, or
//! ROUGE-L for runs that log it instead) and learning-rate curves of several runs side by side
//! (runs on different backends or configs), read from the metric logs burn-train writes
//! (`train/epoch-N/*.log`, `valid/epoch-N/*.log`, one `value,count` line per batch) and from
//! `report.json`. Writes `compare.svg`, `compare.png` and `compare.md` and prints the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use s2s_infer::RunDir;
use s2s_train::metrics::ELAPSED_METRIC;

use crate::chart::{Drawable, Figure, LinePanel, Panels};
use crate::eval::EvalRecord;

/// One run's curves.
#[derive(Debug, Default)]
pub struct RunCurves {
    pub label: String,
    /// Training loss of every batch, epochs in order.
    pub train_loss: Vec<f64>,
    /// The learning rate of every batch (burn-train's `Learning_Rate.log`), epochs in order.
    pub learning_rate: Vec<f64>,
    /// Per epoch: count-weighted mean validation loss and perplexity, and the validation score
    /// (the last line of its log: the running corpus score over all its sentences).
    pub valid_loss: BTreeMap<usize, f64>,
    pub valid_perplexity: BTreeMap<usize, f64>,
    pub valid_score: BTreeMap<usize, f64>,
    /// Which metric `valid_score` holds: the first of [`SCORE_LOGS`] the run logged.
    pub score_name: Option<&'static str>,
    pub backend: Option<String>,
    pub seconds: Option<f64>,
    pub parameters: Option<u64>,
    /// Per epoch: the run's training wall time when the epoch's training ended, in seconds
    /// (the last line of `train/epoch-N/Elapsed.log`; runs of older s2s have none).
    pub epoch_seconds: BTreeMap<usize, f64>,
    /// Per epoch: target tokens trained on up to the end of the epoch (the counts of
    /// `train/epoch-*/Loss.log`, summed).
    pub epoch_tokens: BTreeMap<usize, f64>,
    /// Per epoch: the scores of that epoch's checkpoint on the test split
    /// (`s2s eval --run DIR --epoch N` writes `eval/test-epoch-N.json`).
    pub test: BTreeMap<usize, EvalRecord>,
    /// `training.threads` (0: every logical CPU).
    pub threads: Option<usize>,
    /// The machine of the report (`report.json`).
    pub machine: Option<String>,
}

/// Validation scores `compare` shows, in order of preference: BLEU for translation runs,
/// ROUGE-L for summarization runs, chrF when only it was logged.
pub const SCORE_LOGS: [&str; 3] = ["BLEU", "ROUGE-L", "chrF"];

/// The log burn-train's `LearningRateMetric` ("Learning Rate") writes.
const LEARNING_RATE_LOG: &str = "Learning_Rate";

fn read_log(path: &Path) -> anyhow::Result<Vec<(f64, f64)>> {
    s2s_infer::run_dir::read_metric_log(path).map_err(anyhow::Error::msg)
}

/// Reads a run directory; a directory without any metric log is an error.
pub fn load(dir: &Path, label: String) -> anyhow::Result<RunCurves> {
    if !dir.is_dir() {
        bail!("{} is not a run directory", dir.display());
    }
    let mut run = RunCurves {
        label,
        ..RunCurves::default()
    };
    let files = RunDir::new(dir);
    let mut tokens = 0.0;
    for epoch in files.logged_epochs(RunDir::TRAIN_LOGS) {
        let loss = files.metric_log(RunDir::TRAIN_LOGS, epoch, "Loss");
        if loss.is_file() {
            let rows = read_log(&loss)?;
            tokens += rows.iter().map(|(_, count)| count).sum::<f64>();
            run.epoch_tokens.insert(epoch, tokens);
            run.train_loss.extend(rows.into_iter().map(|(v, _)| v));
        }
        let elapsed = files.metric_log(RunDir::TRAIN_LOGS, epoch, ELAPSED_METRIC);
        if elapsed.is_file() {
            if let Some(&(v, _)) = read_log(&elapsed)?.last() {
                run.epoch_seconds.insert(epoch, v);
            }
        }
        let lr = files.metric_log(RunDir::TRAIN_LOGS, epoch, LEARNING_RATE_LOG);
        if lr.is_file() {
            run.learning_rate
                .extend(read_log(&lr)?.into_iter().map(|(v, _)| v));
        }
    }
    for epoch in files.logged_epochs(RunDir::VALID_LOGS) {
        let log = |metric: &str| files.metric_log(RunDir::VALID_LOGS, epoch, metric);
        // Loss.log: each batch's token-weighted loss and its target tokens, so the
        // count-weighted mean is the epoch's exact value.
        let loss = log("Loss");
        if loss.is_file() {
            if let Some(v) = s2s_infer::run_dir::weighted_mean(&read_log(&loss)?) {
                run.valid_loss.insert(epoch, v);
            }
        }
        // Perplexity.log: burn's running epoch perplexity (exp of the summed NLL over the summed
        // tokens so far), so the last line is the epoch's exact value, as for BLEU.
        let perplexity = log("Perplexity");
        if perplexity.is_file() {
            if let Some(&(v, _)) = read_log(&perplexity)?.last() {
                run.valid_perplexity.insert(epoch, v);
            }
        }
        let name = run
            .score_name
            .or_else(|| SCORE_LOGS.into_iter().find(|name| log(name).is_file()));
        if let Some(name) = name {
            let path = log(name);
            if path.is_file() {
                if let Some(&(v, _)) = read_log(&path)?.last() {
                    run.valid_score.insert(epoch, v);
                    run.score_name = Some(name);
                }
            }
        }
    }
    if run.train_loss.is_empty() && run.valid_loss.is_empty() {
        bail!(
            "{} has no metric logs (train/epoch-N/Loss.log or valid/epoch-N/Loss.log)",
            dir.display()
        );
    }
    // Both optional: a run still training has no report, and an older run's config may not
    // read back; the curves are shown without them.
    if let Ok(Some(report)) = files.report() {
        run.seconds = Some(report.seconds);
        run.parameters = u64::try_from(report.parameters).ok();
        run.machine = report.machine.map(|m| m.to_string());
    }
    if let Ok(config) = files.config() {
        run.backend = Some(config.training.backend.to_string());
        run.threads = Some(config.training.threads);
    }
    for epoch in run.epoch_tokens.keys().copied().collect::<Vec<_>>() {
        let path = EvalRecord::path(dir, "test", Some(epoch));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let record: EvalRecord = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a score record", path.display()))?;
            run.test.insert(epoch, record);
        }
    }
    Ok(run)
}

fn moving_average(values: &[f64], k: usize) -> Vec<f64> {
    let k = k.max(1);
    let mut out = Vec::with_capacity(values.len());
    let mut acc = 0.0;
    for (i, v) in values.iter().enumerate() {
        acc += v;
        if i >= k {
            acc -= values[i - k];
        }
        out.push(acc / (i + 1).min(k) as f64);
    }
    out
}

fn series(map: &BTreeMap<usize, f64>) -> Vec<(f64, f64)> {
    map.iter().map(|(&e, &v)| (e as f64, v)).collect()
}

fn list(map: &BTreeMap<usize, f64>, digits: usize) -> String {
    if map.is_empty() {
        return "–".into();
    }
    map.values()
        .map(|v| format!("{v:.digits$}"))
        .collect::<Vec<_>>()
        .join(" → ")
}

pub fn markdown(runs: &[RunCurves], smooth: usize) -> String {
    let mut s = String::from(
        "| run | backend | epochs | train loss (last batches) | valid loss / epoch | valid \
         perplexity / epoch | valid score / epoch | wall time (s) | parameters |\n\
         |---|---|---:|---:|---|---|---|---:|---:|\n",
    );
    for r in runs {
        let tail = r.train_loss.len().saturating_sub(smooth);
        let last = &r.train_loss[tail..];
        let train = if last.is_empty() {
            "–".into()
        } else {
            format!("{:.3}", last.iter().sum::<f64>() / last.len() as f64)
        };
        let epochs = r
            .valid_loss
            .keys()
            .chain(r.valid_score.keys())
            .max()
            .copied()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "| {} | {} | {epochs} | {train} | {} | {} | {} | {} | {} |",
            r.label,
            r.backend.as_deref().unwrap_or("–"),
            list(&r.valid_loss, 3),
            list(&r.valid_perplexity, 1),
            match r.score_name {
                Some(name) => format!("{name} {}", list(&r.valid_score, 2)),
                None => "–".into(),
            },
            r.seconds.map_or("–".into(), |v| format!("{v:.0}")),
            r.parameters.map_or("–".into(), |v| v.to_string()),
        );
    }
    if runs.iter().any(|r| !r.epoch_seconds.is_empty()) {
        s.push_str(&time_to_quality(runs));
    }
    s
}

/// Per run and epoch: training minutes and tokens so far, the validation score and the test
/// scores of that epoch's checkpoint, with the machine, backend and threads that trained it.
fn time_to_quality(runs: &[RunCurves]) -> String {
    let mut s = String::from(
        "\n## Time to quality\n\n| run | machine | backend | threads | epoch | minutes | \
         target tokens (M) | valid score | test BLEU | test chrF2 |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let num = |v: Option<f64>, digits: usize| v.map_or("–".into(), |v| format!("{v:.digits$}"));
    for r in runs {
        for (&epoch, &seconds) in &r.epoch_seconds {
            let test = r.test.get(&epoch);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {epoch} | {:.1} | {} | {} | {} | {} |",
                r.label,
                r.machine.as_deref().unwrap_or("–"),
                r.backend.as_deref().unwrap_or("–"),
                r.threads.map_or("–".into(), |t| if t == 0 {
                    "all".into()
                } else {
                    t.to_string()
                }),
                seconds / 60.0,
                num(r.epoch_tokens.get(&epoch).map(|t| t / 1e6), 2),
                num(r.valid_score.get(&epoch).copied(), 2),
                num(test.and_then(|t| t.bleu), 2),
                num(test.and_then(|t| t.chrf), 2),
            );
        }
    }
    s
}

pub fn chart(runs: &[RunCurves], smooth: usize) -> Figure {
    let named = |f: &dyn Fn(&RunCurves) -> Vec<(f64, f64)>| -> Vec<(String, Vec<(f64, f64)>)> {
        runs.iter().map(|r| (r.label.clone(), f(r))).collect()
    };
    let mut names: Vec<&str> = runs.iter().filter_map(|r| r.score_name).collect();
    names.sort_unstable();
    names.dedup();
    let score = match names.as_slice() {
        [one] => (*one).to_string(),
        [] => "BLEU".to_string(),
        _ => names.join(" / "),
    };
    let mut panels = vec![
        LinePanel {
            title: format!("training loss (moving average of {smooth} batches)"),
            xlabel: "optimizer step".into(),
            ylabel: "loss".into(),
            series: named(&|r| {
                moving_average(&r.train_loss, smooth)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| ((i + 1) as f64, v))
                    .collect()
            }),
            markers: false,
        },
        LinePanel {
            title: "validation loss".into(),
            xlabel: "epoch".into(),
            ylabel: "loss".into(),
            series: named(&|r| series(&r.valid_loss)),
            markers: true,
        },
        LinePanel {
            title: "validation perplexity".into(),
            xlabel: "epoch".into(),
            ylabel: "perplexity".into(),
            series: named(&|r| series(&r.valid_perplexity)),
            markers: true,
        },
        LinePanel {
            title: format!("validation {score}"),
            xlabel: "epoch".into(),
            ylabel: score.clone(),
            series: named(&|r| series(&r.valid_score)),
            markers: true,
        },
    ];
    if runs.iter().any(|r| !r.epoch_seconds.is_empty()) {
        panels.extend(time_panels(runs, &score));
    }
    if runs.iter().any(|r| !r.learning_rate.is_empty()) {
        panels.push(LinePanel {
            title: "learning rate".into(),
            xlabel: "optimizer step".into(),
            ylabel: "learning rate".into(),
            series: named(&|r| {
                r.learning_rate
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i + 1) as f64, *v))
                    .collect()
            }),
            markers: false,
        });
    }
    Figure {
        title: "s2s compare".into(),
        panels: Panels::Lines(panels),
    }
}

/// Validation score, test BLEU and test chrF against training minutes and against training
/// tokens (test panels only when some run has test scores per epoch).
fn time_panels(runs: &[RunCurves], score: &str) -> Vec<LinePanel> {
    type Pick = fn(&RunCurves, usize) -> Option<f64>;
    let minutes: Pick = |r, e| r.epoch_seconds.get(&e).map(|s| s / 60.0);
    let tokens: Pick = |r, e| r.epoch_tokens.get(&e).map(|t| t / 1e6);
    let valid: Pick = |r, e| r.valid_score.get(&e).copied();
    let test_bleu: Pick = |r, e| r.test.get(&e).and_then(|t| t.bleu);
    let test_chrf: Pick = |r, e| r.test.get(&e).and_then(|t| t.chrf);
    let has_test = runs.iter().any(|r| !r.test.is_empty());
    let mut ys: Vec<(String, String, Pick)> =
        vec![(format!("validation {score}"), score.to_string(), valid)];
    if has_test {
        ys.push(("test BLEU".into(), "BLEU".into(), test_bleu));
        ys.push(("test chrF2".into(), "chrF2".into(), test_chrf));
    }
    let xs: [(&str, &str, Pick); 2] = [
        (
            "training minutes",
            "wall-clock minutes of training",
            minutes,
        ),
        (
            "training tokens",
            "target tokens trained on (millions)",
            tokens,
        ),
    ];
    let mut panels = Vec::new();
    for (x_name, xlabel, x) in xs {
        for (y_name, ylabel, y) in &ys {
            panels.push(LinePanel {
                title: format!("{y_name} against {x_name}"),
                xlabel: xlabel.to_string(),
                ylabel: ylabel.clone(),
                series: runs
                    .iter()
                    .map(|r| {
                        let points = r
                            .epoch_tokens
                            .keys()
                            .filter_map(|&e| Some((x(r, e)?, y(r, e)?)))
                            .collect();
                        (r.label.clone(), points)
                    })
                    .collect(),
                markers: true,
            });
        }
    }
    panels
}

/// `s2s compare RUN… [--out DIR] [--smooth K]`.
pub fn run(dirs: &[PathBuf], out: Option<PathBuf>, smooth: usize) -> anyhow::Result<()> {
    if dirs.is_empty() {
        bail!("name at least one run directory");
    }
    let mut runs = Vec::new();
    for dir in dirs {
        let label = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        runs.push(load(dir, label)?);
    }
    let out = out.unwrap_or_else(|| {
        let stamp = crate::bench_backends::utc_stamp().replace([':', '-'], "");
        PathBuf::from(format!("runs/compare-{stamp}"))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let table = markdown(&runs, smooth);
    let path = out.join("compare.md");
    s2s_data::write_atomic(&path, table.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    chart(&runs, smooth).write(&out, "compare")?;
    println!("{table}\nwritten to {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_burn_train_logs_as_the_learner_reports_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "train/epoch-1/Loss.log", "6.0,32\n5.0,32\n");
        write(d, "train/epoch-2/Loss.log", "4.0,32\n");
        // Validation loss: count-weighted mean (the last batch is smaller).
        write(d, "valid/epoch-1/Loss.log", "5.0,64\n6.5,16\n");
        // Perplexity: a running value over the tokens so far, so the last line is the epoch's.
        write(d, "valid/epoch-1/Perplexity.log", "100.0,64\n120.0,80\n");
        // BLEU: a running corpus score, so the last line is the epoch's value.
        write(d, "valid/epoch-1/BLEU.log", "1.5,64\n2.25,80\n");
        write(d, "valid/epoch-2/Loss.log", "4.5,80\n");
        write(d, "report.json", r#"{"seconds": 12.5, "parameters": 1234}"#);
        write(
            d,
            "config.toml",
            "[data]\ncorpus = \"bible-en-fr\"\n[training]\nbackend = \"flex\"\n",
        );
        let run = load(d, "a".into()).unwrap();
        assert_eq!(run.train_loss, vec![6.0, 5.0, 4.0]);
        assert_eq!(run.valid_loss[&1], (5.0 * 64.0 + 6.5 * 16.0) / 80.0);
        assert_eq!(run.valid_loss[&2], 4.5);
        assert_eq!(run.valid_perplexity[&1], 120.0);
        assert_eq!(run.valid_score[&1], 2.25);
        assert_eq!(run.score_name, Some("BLEU"));
        assert_eq!(run.backend.as_deref(), Some("flex"));
        assert_eq!((run.seconds, run.parameters), (Some(12.5), Some(1234)));
        let table = markdown(&[run], 2);
        assert!(
            table.contains(
                "| a | flex | 2 | 4.500 | 5.300 → 4.500 | 120.0 | BLEU 2.25 | 12 | 1234 |"
            ),
            "{table}"
        );
    }

    #[test]
    fn scores_are_read_against_training_time_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "train/epoch-1/Loss.log", "6.0,30\n5.0,20\n");
        write(d, "train/epoch-1/Elapsed.log", "1.5,1\n90.0,1\n");
        write(d, "train/epoch-2/Loss.log", "4.0,25\n");
        write(d, "train/epoch-2/Elapsed.log", "150.0,1\n");
        write(d, "valid/epoch-1/Loss.log", "5.0,64\n");
        write(d, "valid/epoch-1/BLEU.log", "3.0,64\n");
        write(d, "valid/epoch-2/Loss.log", "4.5,64\n");
        write(d, "valid/epoch-2/BLEU.log", "6.0,64\n");
        write(
            d,
            "eval/test-epoch-2.json",
            r#"{"split": "test", "epoch": 2, "pairs": 5, "decoding": "beam 4",
                "backend": "tch", "bleu": 7.5, "chrf": 30.25, "seconds": 1.0}"#,
        );
        write(
            d,
            "report.json",
            r#"{"seconds": 160.0, "parameters": 10,
                "machine": {"cpu": "Some CPU", "logical_cpus": 2}}"#,
        );
        write(
            d,
            "config.toml",
            "[data]\ncorpus = \"bible-en-fr\"\n[training]\nbackend = \"tch\"\nthreads = 2\n",
        );
        let run = load(d, "t".into()).unwrap();
        assert_eq!(run.epoch_seconds, BTreeMap::from([(1, 90.0), (2, 150.0)]));
        // Tokens add up across epochs: 50, then 50 + 25.
        assert_eq!(run.epoch_tokens, BTreeMap::from([(1, 50.0), (2, 75.0)]));
        assert_eq!(run.test.len(), 1);
        assert_eq!(run.test[&2].bleu, Some(7.5));
        assert_eq!(run.machine.as_deref(), Some("Some CPU, 2 logical CPUs"));
        let table = markdown(std::slice::from_ref(&run), 2);
        assert!(
            table.contains(
                "| t | Some CPU, 2 logical CPUs | tch | 2 | 1 | 1.5 | 0.00 | 3.00 | – | – |"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| t | Some CPU, 2 logical CPUs | tch | 2 | 2 | 2.5 | 0.00 | 6.00 | 7.50 | 30.25 |"
            ),
            "{table}"
        );
        let panels = time_panels(std::slice::from_ref(&run), "BLEU");
        let titles: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "validation BLEU against training minutes",
                "test BLEU against training minutes",
                "test chrF2 against training minutes",
                "validation BLEU against training tokens",
                "test BLEU against training tokens",
                "test chrF2 against training tokens",
            ]
        );
        assert_eq!(panels[0].series[0].1, vec![(1.5, 3.0), (2.5, 6.0)]);
        assert_eq!(panels[4].series[0].1, vec![(75.0 / 1e6, 7.5)]);
    }

    #[test]
    fn a_summarization_run_is_compared_by_rouge_l() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "valid/epoch-1/Loss.log",
            "5.0,64
",
        );
        write(
            d,
            "valid/epoch-1/ROUGE-1.log",
            "30.0,8
",
        );
        write(
            d,
            "valid/epoch-1/ROUGE-L.log",
            "20.0,4
25.5,8
",
        );
        write(
            d,
            "valid/epoch-2/Loss.log",
            "4.0,64
",
        );
        write(
            d,
            "valid/epoch-2/ROUGE-L.log",
            "27.0,8
",
        );
        let run = load(d, "s".into()).unwrap();
        assert_eq!(run.score_name, Some("ROUGE-L"));
        assert_eq!(
            run.valid_score.values().copied().collect::<Vec<_>>(),
            vec![25.5, 27.0]
        );
        let table = markdown(&[run], 2);
        assert!(table.contains("| ROUGE-L 25.50 → 27.00 |"), "{table}");
    }

    #[test]
    fn a_directory_without_logs_is_refused_in_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), "x".into()).unwrap_err().to_string();
        assert!(err.contains("has no metric logs"), "{err}");
        let err = load(&dir.path().join("missing"), "x".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a run directory"), "{err}");
        write(dir.path(), "train/epoch-1/Loss.log", "oops\n");
        let err = load(dir.path(), "x".into()).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("value,count"),
            "{err}"
        );
    }

    #[test]
    fn moving_average_uses_the_available_prefix() {
        assert_eq!(
            moving_average(&[1.0, 3.0, 5.0, 7.0], 2),
            vec![1.0, 2.0, 4.0, 6.0]
        );
    }
}
