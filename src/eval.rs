//! `s2s eval`: corpus BLEU/chrF/ROUGE of files, or of a run's outputs for a data split.

use std::io::Write;
use std::path::Path;
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

/// Prints one `sacrebleu --format text` line per metric.
fn report(hypotheses: &[String], references: &[String], metrics: &[Metric]) -> anyhow::Result<()> {
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
    Ok(())
}

/// `s2s eval --hyp FILE --ref FILE`.
pub fn files(hyp: &Path, reference: &Path, metrics: &[Metric]) -> anyhow::Result<()> {
    let hypotheses = lines(hyp, "hypothesis")?;
    let references = lines(reference, "reference")?;
    report(&hypotheses, &references, metrics)
}

/// `s2s eval --run DIR --split SPLIT`: translate the split with the run's generation settings
/// (and any flags), then score against its references.
pub fn run(
    run_dir: &Path,
    split: SplitArg,
    max_pairs: Option<usize>,
    output: Option<&Path>,
    metrics: Option<&[Metric]>,
    backend: Option<BackendKind>,
    args: &GenerationArgs,
) -> anyhow::Result<()> {
    let serving = Serving::open(run_dir, backend, args)?;
    let (config, generation, kind) = (&serving.config, &serving.generation, serving.kind);
    let metrics = metrics.map_or_else(|| config.data.task.eval_metrics(), <[Metric]>::to_vec);
    let (name, split) = match split {
        SplitArg::Train => ("train", Split::Train),
        SplitArg::Valid => ("valid", Split::Valid),
        SplitArg::Test => ("test", Split::Test),
    };
    let mut pairs = config.data.read_split(split, &s2s_data::data_dir())?;
    if pairs.is_empty() {
        bail!("the run's data has no {name} split (set data.test, or pass --split valid)");
    }
    if let Some(n) = max_pairs {
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
    if let Some(path) = output {
        // One line per pair, whatever the hypotheses hold (as `s2s generate` writes them).
        let mut text = hypotheses
            .iter()
            .map(|h| s2s_data::one_line(h))
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        s2s_data::write_atomic(path, text.as_bytes())?;
    }
    report(&hypotheses, &references, &metrics)
}
