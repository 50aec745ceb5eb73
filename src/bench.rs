//! `s2s bench decode`: decoding speed of a trained run, KV cache against recomputation, then
//! beam widths. Numbers are medians of repeated runs in one process, reported as tokens/s and
//! ratios (never asserted: speed belongs in benchmarks, not tests).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::prelude::*;
use s2s_data::Split;
use s2s_generate::{DecodeStrategy, GenerationConfig, IncrementalDecoder, Recompute};
use s2s_infer::{ExperimentConfig, RunDir};
use s2s_model::PositionKind;

use crate::backend::{dispatch_infer, BackendKind, InferTask};
use crate::common::{read_run, run_backend};

/// What `s2s bench decode` measures.
#[derive(Clone, Debug, clap::Args)]
pub struct DecodeBench {
    /// Output lengths in tokens (forced: </s> is suppressed until then).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub lengths: Vec<usize>,
    /// Beam widths for the beam table.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    pub beams: Vec<usize>,
    /// Output length of the beam table.
    #[arg(long, default_value_t = 64)]
    pub beam_length: usize,
    /// Sentences decoded together (from the run's validation split).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Timed repetitions per cell; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Skip recomputation at lengths above this (it grows quadratically).
    #[arg(long, default_value_t = 256)]
    pub max_recompute_length: usize,
}

/// One timed configuration: median seconds for `batch_size × length` output tokens.
struct Cell {
    seconds: f64,
    tokens: usize,
}

impl Cell {
    fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }
}

fn time<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    sources: &[Vec<u32>],
    config: &GenerationConfig,
    repeats: usize,
    device: &B::Device,
) -> anyhow::Result<Cell> {
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let out = s2s_generate::generate(model, sources, config, device)?;
        times.push(started.elapsed().as_secs_f64());
        // Forced lengths: every output has exactly max_new_tokens tokens (no </s> before).
        debug_assert!(out
            .iter()
            .flatten()
            .all(|h| h.tokens.len() == config.max_new_tokens));
    }
    times.sort_by(f64::total_cmp);
    Ok(Cell {
        seconds: times[times.len() / 2],
        tokens: sources.len() * config.max_new_tokens,
    })
}

/// Decoding of exactly `length` tokens per source (`</s>` suppressed until then).
fn forced(length: usize, batch_size: usize, strategy: DecodeStrategy) -> GenerationConfig {
    GenerationConfig {
        strategy,
        max_new_tokens: length,
        min_new_tokens: length,
        no_repeat_ngram_size: 0,
        batch_size,
    }
}

struct BenchTask<'a> {
    run: &'a RunDir,
    /// The run's config (its position table possibly extended to the longest output).
    config: &'a ExperimentConfig,
    sentences: Vec<String>,
    bench: DecodeBench,
}

impl BenchTask<'_> {
    fn table<B: Backend>(&self, device: &B::Device) -> anyhow::Result<String> {
        let (tokenizers, model) = self.run.load_model::<B>(self.config, device)?;
        let max_source_len = self.config.data.max_source_len;
        let sources = self
            .sentences
            .iter()
            .map(|s| s2s_infer::source_ids(&tokenizers.source, s, max_source_len))
            .collect::<Result<Vec<_>, _>>()?;
        let b = &self.bench;
        let batch = sources.len();
        // Warm-up (allocations, thread pools, kernel caches).
        let warm = forced(8, batch, DecodeStrategy::Greedy);
        s2s_generate::generate(&model, &sources, &warm, device)?;
        // Recomputing the prefix is the Transformer's alternative to its cache; an RNN's state
        // is its only way to decode.
        let transformer = match &model {
            s2s_model::Seq2Seq::Transformer(transformer) => Some(transformer),
            s2s_model::Seq2Seq::Rnn(_) => None,
        };
        if let Some(transformer) = transformer {
            s2s_generate::generate(&Recompute(transformer), &sources, &warm, device)?;
        }

        let mut out = format!(
            "Greedy decoding, {batch} sentences per batch, {} parameters, median of {} runs\n\n\
             | output tokens | KV cache tokens/s | cache ms/step | recompute tokens/s | \
             recompute ms/step | speed-up |\n|---:|---:|---:|---:|---:|---:|\n",
            model.num_params(),
            b.repeats
        );
        for &length in &b.lengths {
            let config = forced(length, batch, DecodeStrategy::Greedy);
            let cached = time(&model, &sources, &config, b.repeats, device)?;
            let ms_step = |c: &Cell| 1000.0 * c.seconds / length as f64;
            let (recompute, ratio) = match transformer {
                Some(transformer) if length <= b.max_recompute_length => {
                    let r = time(
                        &Recompute(transformer),
                        &sources,
                        &config,
                        b.repeats,
                        device,
                    )?;
                    (
                        format!("{:.0} | {:.2}", r.tokens_per_second(), ms_step(&r)),
                        format!("{:.2}×", r.seconds / cached.seconds),
                    )
                }
                Some(_) => ("skipped | –".into(), "–".into()),
                None => ("n/a (RNN) | –".into(), "–".into()),
            };
            out.push_str(&format!(
                "| {length} | {:.0} | {:.2} | {recompute} | {ratio} |\n",
                cached.tokens_per_second(),
                ms_step(&cached)
            ));
            tracing::info!("greedy length {length} done");
        }
        out.push_str(&format!(
            "\nBeam search with the KV cache, {} output tokens per sentence, {batch} sentences \
             per batch\n\n| beams | output tokens/s | ms/step | relative to greedy |\n\
             |---:|---:|---:|---:|\n",
            b.beam_length
        ));
        let mut greedy_seconds = None;
        for &num_beams in &b.beams {
            let strategy = DecodeStrategy::Beam {
                num_beams,
                length_penalty: 1.0,
                early_stopping: false,
                num_return_sequences: 1,
            };
            let cell = time(
                &model,
                &sources,
                &forced(b.beam_length, batch, strategy),
                b.repeats,
                device,
            )?;
            let base = *greedy_seconds.get_or_insert(cell.seconds);
            out.push_str(&format!(
                "| {num_beams} | {:.0} | {:.2} | {:.2}× |\n",
                cell.tokens_per_second(),
                1000.0 * cell.seconds / b.beam_length as f64,
                base / cell.seconds
            ));
            tracing::info!("beam {num_beams} done");
        }
        Ok(out)
    }
}

impl InferTask for BenchTask<'_> {
    type Output = String;
    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<String> {
        self.table::<B>(&device)
    }
}

/// `s2s bench decode --run DIR`.
pub fn decode(
    run_dir: &Path,
    bench: DecodeBench,
    backend: Option<BackendKind>,
) -> anyhow::Result<()> {
    let (run, mut config) = read_run(run_dir)?;
    let kind = run_backend(backend, &config)?;
    if bench.batch_size == 0 || bench.lengths.contains(&0) || bench.beams.contains(&0) {
        bail!("batch size, lengths and beam widths must be at least 1");
    }
    let longest = bench
        .lengths
        .iter()
        .copied()
        .chain([bench.beam_length])
        .max()
        .unwrap_or(1);
    let model = &mut config.model;
    if longest > model.max_positions {
        if model.positions != PositionKind::Sinusoidal {
            bail!(
                "outputs of {longest} tokens exceed the run's model.max_positions ({}) and its \
                 learned positions cannot be extended; lower --lengths",
                model.max_positions
            );
        }
        // Sinusoidal positions are a fixed table, not weights: extending it loads the same
        // checkpoint and leaves the first max_positions positions unchanged.
        tracing::info!(
            "extending the sinusoidal position table from {} to {longest} positions",
            model.max_positions
        );
        model.max_positions = longest;
    }
    let valid = config
        .data
        .read_split(Split::Valid, &s2s_data::data_dir())?;
    let sentences: Vec<String> = valid
        .iter()
        .take(bench.batch_size)
        .map(|p| p.source.clone())
        .collect();
    if sentences.is_empty() {
        bail!("the run's validation split is empty");
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let table = dispatch_infer(
        kind,
        BenchTask {
            run: &run,
            config: &config,
            sentences,
            bench,
        },
    )?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "s2s bench decode: run {}, backend {kind}, {threads} CPU threads available\n\n{table}",
        run_dir.display()
    )
    .context("cannot write to standard output")?;
    Ok(())
}
