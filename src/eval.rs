//! `s2s eval`: corpus BLEU/chrF/ROUGE of files, or of a run's outputs for a data split.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use s2s_data::Split;
use s2s_eval::Metric;
use s2s_infer::{best_texts, describe, Scores};

use crate::backend::BackendKind;
use crate::common::Serving;
use crate::generation_args::GenerationArgs;

/// A data split named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    Train,
    Valid,
    Test,
}

/// The lines of an evaluation input (a leading byte-order mark dropped). A file with no text
/// at all — empty, or only blank lines — is refused: a metric over no segments is undefined
/// (sacrebleu refuses it too), and such a file is almost always the wrong one.
fn lines(path: &Path, what: &str) -> anyhow::Result<Vec<String>> {
    let text = s2s_data::read_text(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.iter().all(|line| line.trim().is_empty()) {
        bail!(
            "the {what} file {} has no text ({}); a score over no segments is undefined",
            path.display(),
            match lines.len() {
                0 => "it is empty".to_string(),
                1 => "its one line is blank".to_string(),
                n => format!("all {n} lines are blank"),
            }
        );
    }
    Ok(lines)
}

/// Prints one `sacrebleu --format text` line per metric and returns the scores.
fn report(
    hypotheses: &[String],
    references: &[String],
    metrics: &[Metric],
) -> anyhow::Result<Scores> {
    let scores = Scores::of(hypotheses, references)?;
    let mut stdout = std::io::stdout().lock();
    for metric in metrics {
        let line = match metric {
            Metric::Bleu => scores.bleu.score().format_with_signature(),
            Metric::Chrf => scores.chrf.score().format_with_signature(),
            // With the Porter stemmer, as HF's run_summarization.py and most summarization
            // papers report ROUGE (Scores::rouge).
            Metric::Rouge => scores.rouge.score().format_with_signature(),
        };
        writeln!(stdout, "{line}").context("cannot write to standard output")?;
    }
    Ok(scores)
}

/// `s2s eval --hyp FILE --ref FILE`.
pub fn files(hyp: &Path, reference: &Path, metrics: &[Metric]) -> anyhow::Result<()> {
    let hypotheses = lines(hyp, "hypothesis")?;
    let references = lines(reference, "reference")?;
    report(&hypotheses, &references, metrics).map(drop)
}

/// What `s2s eval --run` decodes and how.
#[derive(Clone, Copy, Debug)]
pub struct RunEval<'a> {
    pub split: SplitArg,
    /// Decode only the first N pairs.
    pub max_pairs: Option<usize>,
    /// Write the outputs here, one per line.
    pub output: Option<&'a Path>,
    /// Default: the run's task's.
    pub metrics: Option<&'a [Metric]>,
    /// Default: the run's `training.backend`.
    pub backend: Option<BackendKind>,
    /// Score the end-of-epoch checkpoint of this epoch instead of `model.mpk`.
    pub epoch: Option<usize>,
}

/// The scores `s2s eval --run` writes into the run, `eval/<split>.json` (the final model) or
/// `eval/<split>-epoch-N.json` (`--epoch N`), as HF's `run_translation.py` writes
/// `eval_results.json`: `s2s compare` draws them against the run's training time and tokens.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalRecord {
    /// `train`, `valid` or `test`.
    pub split: String,
    /// The checkpoint's epoch; `None` for `model.mpk`.
    pub epoch: Option<usize>,
    /// Pairs decoded.
    pub pairs: usize,
    /// How they were decoded (`beam 4, length penalty 1`).
    pub decoding: String,
    pub backend: String,
    /// Corpus BLEU and its sacrebleu signature.
    pub bleu: Option<f64>,
    pub bleu_signature: Option<String>,
    /// chrF2 and its signature.
    pub chrf: Option<f64>,
    pub chrf_signature: Option<String>,
    /// ROUGE-L F1 × 100 (stemmed).
    pub rouge_l: Option<f64>,
    /// Decoding wall time in seconds.
    pub seconds: f64,
}

impl EvalRecord {
    /// Where `s2s eval --run` writes the record of `split` and `epoch` in `run`.
    pub fn path(run: &Path, split: &str, epoch: Option<usize>) -> PathBuf {
        let name = match epoch {
            Some(e) => format!("{split}-epoch-{e}.json"),
            None => format!("{split}.json"),
        };
        run.join(EVAL_DIR).join(name)
    }
}

/// The directory of a run that holds its [`EvalRecord`]s.
pub const EVAL_DIR: &str = "eval";

/// `s2s eval --run DIR --split SPLIT`: translate the split with the run's generation settings
/// (and any flags), then score against its references; with `--epoch N` the weights are
/// epoch N's checkpoint. The scores are printed and written to [`EvalRecord::path`].
pub fn run(run_dir: &Path, what: RunEval<'_>, args: &GenerationArgs) -> anyhow::Result<()> {
    // A checkpoint is served from a run directory of its own, written as `s2s average` writes
    // the mean of one epoch.
    let scratch = match what.epoch {
        Some(epoch) => {
            let kept = s2s_train::average::epoch_checkpoints(run_dir);
            if !kept.contains(&epoch) {
                bail!(
                    "{} keeps no checkpoint of epoch {epoch} ({}; training.keep_checkpoints sets \
                     how many are kept)",
                    run_dir.display(),
                    match kept.as_slice() {
                        [] => "it keeps none".to_string(),
                        _ => format!("it keeps epochs {}", s2s_train::average::epoch_list(&kept)),
                    }
                );
            }
            let dir = tempfile::Builder::new()
                .prefix("s2s-eval-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            crate::average::write_mean(run_dir, &[epoch], dir.path())?;
            Some(dir)
        }
        None => None,
    };
    let serving = Serving::open(
        scratch.as_ref().map_or(run_dir, |d| d.path()),
        what.backend,
        args,
    )?;
    let (config, generation, kind) = (&serving.config, &serving.generation, serving.kind);
    let metrics = what
        .metrics
        .map_or_else(|| config.data.task.eval_metrics(), <[Metric]>::to_vec);
    let (name, split) = match what.split {
        SplitArg::Train => ("train", Split::Train),
        SplitArg::Valid => ("valid", Split::Valid),
        SplitArg::Test => ("test", Split::Test),
    };
    let mut pairs = config.data.read_split(split, &s2s_data::data_dir())?;
    if pairs.is_empty() {
        bail!("the run's data has no {name} split (set data.test, or pass --split valid)");
    }
    if let Some(n) = what.max_pairs {
        pairs.truncate(n);
    }
    let sources: Vec<String> = pairs.iter().map(|p| p.source.clone()).collect();
    let references: Vec<String> = pairs.iter().map(|p| p.target.clone()).collect();
    let started = Instant::now();
    let hypotheses = best_texts(&serving.translate(&sources)?);
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "decoded {} {name} pairs with {} on {kind} in {seconds:.1} s ({:.1} sentences/s)",
        pairs.len(),
        describe(generation),
        pairs.len() as f64 / seconds.max(1e-9)
    );
    if let Some(path) = what.output {
        // One line per pair, whatever the hypotheses hold (as `s2s generate` writes them).
        let mut text = hypotheses
            .iter()
            .map(|h| s2s_data::one_line(h))
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        s2s_data::write_atomic(path, text.as_bytes())?;
    }
    let scores = report(&hypotheses, &references, &metrics)?;
    let has = |m: Metric| metrics.contains(&m);
    // Each corpus score computed once, for its value and its signature.
    let bleu = has(Metric::Bleu).then(|| scores.bleu.score());
    let chrf = has(Metric::Chrf).then(|| scores.chrf.score());
    let record = EvalRecord {
        split: name.to_string(),
        epoch: what.epoch,
        pairs: pairs.len(),
        decoding: describe(generation),
        backend: kind.to_string(),
        bleu: bleu.as_ref().map(|b| b.score),
        bleu_signature: bleu.as_ref().map(|b| b.signature().to_string()),
        chrf: chrf.as_ref().map(|c| c.score),
        chrf_signature: chrf.as_ref().map(|c| c.signature().to_string()),
        rouge_l: has(Metric::Rouge).then(|| scores.rouge.score().scores.rouge_l.fmeasure * 100.0),
        seconds,
    };
    let path = EvalRecord::path(run_dir, name, what.epoch);
    let json = serde_json::to_string_pretty(&record).context("cannot write the scores as JSON")?;
    s2s_data::write_atomic(&path, json.as_bytes())?;
    Ok(())
}
