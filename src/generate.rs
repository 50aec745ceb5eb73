//! `s2s generate`: translate one sentence per line with a trained run.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use s2s_infer::Translation;

use crate::backend::BackendKind;
use crate::common::{read_lines, Serving};
use crate::generation_args::GenerationArgs;

/// Output of `s2s generate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Jsonl,
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    line: usize,
    source: &'a str,
    hypotheses: &'a [Translation],
}

/// Translates the lines of `input` (stdin if `None`) and writes them to stdout in `format`.
pub fn generate(
    run_dir: &Path,
    input: Option<&Path>,
    format: OutputFormat,
    backend: Option<BackendKind>,
    args: &GenerationArgs,
) -> anyhow::Result<()> {
    let serving = Serving::open(run_dir, backend, args)?;
    let sentences = read_lines(input)?;
    let outputs = serving.translate(&sentences)?;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let per_input = serving.generation.num_return_sequences();
    for (line, (source, hyps)) in sentences.iter().zip(&outputs).enumerate() {
        match format {
            OutputFormat::Text => {
                // A blank input line gives as many blank lines as hypotheses per input, and a
                // hypothesis holding line breaks keeps one line.
                for i in 0..per_input {
                    let text = hyps.get(i).map(|h| h.text.as_str()).unwrap_or_default();
                    writeln!(stdout, "{}", s2s_data::one_line(text))
                        .context("cannot write to standard output")?;
                }
            }
            OutputFormat::Jsonl => {
                let record = JsonLine {
                    line: line + 1,
                    source,
                    hypotheses: hyps,
                };
                let json = serde_json::to_string(&record)?;
                writeln!(stdout, "{json}").context("cannot write to standard output")?;
            }
        }
    }
    stdout.flush().context("cannot write to standard output")?;
    Ok(())
}
