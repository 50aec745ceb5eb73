//! `s2s generate`: translate one sentence per line with a trained run.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use s2s_infer::{AttentionMap, Translation};

use crate::backend::BackendKind;
use crate::chart::Drawable;
use crate::common::{read_lines, Serving};
use crate::generation_args::GenerationArgs;
use crate::heatmap::{HeadGrid, Heatmap};

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

/// Where `s2s generate` writes.
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    /// The outputs' format on stdout.
    pub format: OutputFormat,
    /// The directory for cross-attention maps, if asked for.
    pub attention: Option<&'a Path>,
}

/// Translates the lines of `input` (stdin if `None`) and writes them to stdout in `format`,
/// and the attention maps when asked.
pub fn generate(
    run_dir: &Path,
    input: Option<&Path>,
    output: Output<'_>,
    backend: Option<BackendKind>,
    args: &GenerationArgs,
) -> anyhow::Result<()> {
    let format = output.format;
    let serving = Serving::open(run_dir, backend, args)?;
    let sentences = read_lines(input)?;
    let outputs = match output.attention {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let (outputs, maps) = serving.translate_with_attention(&sentences)?;
            write_attention(dir, &maps)?;
            outputs
        }
        None => serving.translate(&sentences)?,
    };
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

/// Writes each input's attention map as JSON and heat-maps (blank inputs have none).
fn write_attention(dir: &Path, maps: &[Option<AttentionMap>]) -> anyhow::Result<()> {
    for (line, map) in maps.iter().enumerate() {
        let Some(map) = map else { continue };
        let stem = format!("{:04}", line + 1);
        let path = dir.join(format!("{stem}.json"));
        let json = serde_json::to_vec(map)?;
        s2s_data::write_atomic(&path, &json)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let heads: usize = map.layers.iter().map(Vec::len).sum();
        Heatmap {
            title: format!(
                "line {}: cross-attention{}",
                line + 1,
                if heads > 1 {
                    format!(" (mean of {heads} heads)")
                } else {
                    String::new()
                }
            ),
            source_tokens: &map.source_tokens,
            target_tokens: &map.target_tokens,
            weights: &map.average,
        }
        .write(dir, &stem)?;
        if heads > 1 {
            HeadGrid {
                title: format!("line {}: cross-attention per layer and head", line + 1),
                layers: &map.layers,
            }
            .write(dir, &format!("{stem}-heads"))?;
        }
    }
    Ok(())
}
