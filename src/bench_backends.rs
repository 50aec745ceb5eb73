//! `s2s bench --config <file> --backends ndarray,flex,…,pytorch`: the same experiment on several
//! backends in one run. Each backend runs in its own child process (`--worker <name>`), so that
//! peak memory is its own and a crashing driver costs one row, not the whole benchmark.
//! `pytorch` is the reference column: `benches/reference/seq2seq_torch.py`, the same
//! architecture in PyTorch eager, on the same token batches, with the Python of
//! `scripts/setup-tch.sh`. Results: a printed table, and `bench.md`, `bench.json` and
//! `bench.svg` and `bench.png` in `runs/bench-<timestamp>/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burn::tensor::backend::AutodiffBackend;
use s2s_infer::ExperimentConfig;
use s2s_train::{BenchOptions, BenchResult};
use serde::Serialize;

use crate::backend::{compiled, dispatch, ensure_compiled, BackendKind, BackendTask};
use crate::backends::run_with_limit;
use crate::bench_reference::WorkerLine;
use crate::chart::{BarPanel, Drawable, Figure, Panels};

/// What `s2s bench --config` takes.
#[derive(Clone, Debug, clap::Args)]
pub struct BackendBench {
    /// Experiment config to benchmark (its model, data, batch size, optimizer and schedule).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Backends to compare, comma-separated: any compiled in, and `pytorch` for the PyTorch
    /// reference (skipped with a note when torch is not installed). Default: every backend
    /// compiled in, then pytorch.
    #[arg(long, value_delimiter = ',', value_parser = parse_column)]
    pub backends: Vec<Column>,
    /// Timed optimizer steps per backend (the median step time is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps before them (allocation, kernel compilation, autotuning).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Validation sentences decoded greedily after training.
    #[arg(long, default_value_t = 32)]
    pub decode_sentences: usize,
    /// Tokens generated per sentence (`</s>` suppressed until then).
    #[arg(long, default_value_t = 32)]
    pub decode_tokens: usize,
    /// Beam width of the beam-search measurement (1 skips it).
    #[arg(long, default_value_t = 4)]
    pub num_beams: usize,
    /// Output directory. Default: runs/bench-<UTC timestamp>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds one backend may take before it is stopped.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Run one backend in this process and print its JSON line (what the parent runs in each
    /// child process).
    #[arg(long, value_enum, hide = true)]
    pub worker: Option<BackendKind>,
}

/// A column of the benchmark: a Burn backend, or the PyTorch reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Burn(BackendKind),
    Pytorch,
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Burn(kind) => kind.fmt(f),
            Self::Pytorch => f.write_str("pytorch"),
        }
    }
}

fn parse_column(name: &str) -> Result<Column, String> {
    if name.eq_ignore_ascii_case("pytorch") {
        return Ok(Column::Pytorch);
    }
    <BackendKind as clap::ValueEnum>::from_str(name, true)
        .map(Column::Burn)
        .map_err(|_| {
            format!(
                "unknown backend \"{name}\"; expected ndarray, flex, wgpu, tch, cuda or pytorch"
            )
        })
}

/// A row of the report: measured, or why not.
#[derive(Debug, Serialize)]
struct Row {
    backend: String,
    #[serde(flatten)]
    outcome: Outcome,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Measured(WorkerLine),
    Failed(String),
    /// Not run, and why (the PyTorch reference without torch installed).
    Skipped(String),
}

#[derive(Debug, Serialize)]
struct Report {
    config: String,
    options: BenchOptions,
    machine: Machine,
    rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpu: String,
    logical_cpus: usize,
    memory_gib: Option<f64>,
    os: String,
    s2s: String,
    burn: String,
    date_utc: String,
}

struct WorkerTask<'a> {
    kind: BackendKind,
    config: &'a ExperimentConfig,
    options: BenchOptions,
}

impl BackendTask for WorkerTask<'_> {
    type Output = WorkerLine;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<WorkerLine> {
        let data = s2s_train::load_experiment_data(self.config, &s2s_data::data_dir())?;
        let device_name = crate::backends::describe_device::<B>(self.kind, &device);
        // Weights drawn on ndarray (the default backend) when it is compiled in, so that every
        // backend starts from the same ones.
        #[cfg(feature = "ndarray")]
        let result = s2s_train::bench::<B, burn::backend::NdArray<f32>>(
            self.config,
            &data,
            self.options,
            &device,
            &Default::default(),
        )?;
        #[cfg(not(feature = "ndarray"))]
        let result = s2s_train::bench::<B, B::InnerBackend>(
            self.config,
            &data,
            self.options,
            &device,
            &device,
        )?;
        Ok(WorkerLine {
            backend: self.kind.to_string(),
            device: device_name,
            result,
            peak_rss_bytes: peak_rss(),
        })
    }
}

/// VmHWM of this process (Linux), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn options(args: &BackendBench) -> anyhow::Result<BenchOptions> {
    if args.steps == 0
        || args.decode_sentences == 0
        || args.decode_tokens == 0
        || args.num_beams == 0
    {
        bail!("--steps, --decode-sentences, --decode-tokens and --num-beams must be at least 1");
    }
    Ok(BenchOptions {
        warmup_steps: args.warmup,
        steps: args.steps,
        decode_sentences: args.decode_sentences,
        decode_tokens: args.decode_tokens,
        num_beams: args.num_beams,
    })
}

/// `s2s bench --config …`.
pub fn run(args: BackendBench) -> anyhow::Result<()> {
    let Some(config_path) = args.config.clone() else {
        bail!("s2s bench needs --config <file> (or the `decode` subcommand)");
    };
    let config = crate::common::read_config(&config_path)?;
    let options = options(&args)?;
    if let Some(kind) = args.worker {
        ensure_compiled(kind)?;
        crate::backend::set_threads(config.training.threads)?;
        let line = dispatch(
            kind,
            WorkerTask {
                kind,
                config: &config,
                options,
            },
        )?;
        println!("{}", serde_json::to_string(&line)?);
        return Ok(());
    }
    let columns = if args.backends.is_empty() {
        let mut all: Vec<Column> = compiled().into_iter().map(Column::Burn).collect();
        all.push(Column::Pytorch);
        all
    } else {
        args.backends.clone()
    };
    for column in &columns {
        if let Column::Burn(kind) = column {
            ensure_compiled(*kind)?;
        }
    }
    // The data once in the parent, so that the workers do not race to prepare it (the PyTorch
    // reference's batches are made from it here).
    let data = s2s_train::load_experiment_data(&config, &s2s_data::data_dir())?;

    let stamp = utc_stamp();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/bench-{}", stamp.replace([':', '-'], ""))));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let mut rows = Vec::new();
    let bar = crate::common::progress_bar(columns.len(), "backends");
    for &column in &columns {
        bar.set_message(format!("benchmarking {column}"));
        tracing::info!("benchmarking {column}");
        let started = Instant::now();
        let outcome = measure(column, &config_path, &config, &data, options, &args, &out);
        tracing::info!("{column} done in {:.0} s", started.elapsed().as_secs_f64());
        bar.inc(1);
        rows.push(Row {
            backend: column.to_string(),
            outcome,
        });
    }
    bar.finish_and_clear();
    let report = Report {
        config: config_path.display().to_string(),
        options,
        machine: machine(stamp),
        rows,
    };
    let markdown = markdown(&report);
    write(&out.join("bench.md"), &markdown)?;
    write(
        &out.join("bench.json"),
        &serde_json::to_string_pretty(&report)?,
    )?;
    chart(&report).write(&out, "bench")?;
    println!("{markdown}\nwritten to {}", out.display());
    Ok(())
}

/// One column of the table: a Burn backend in its own worker process, or the PyTorch
/// reference (skipped with the reason when torch is not installed).
fn measure(
    column: Column,
    config_path: &Path,
    config: &ExperimentConfig,
    data: &s2s_train::PreparedData,
    options: BenchOptions,
    args: &BackendBench,
    out: &Path,
) -> Outcome {
    match column {
        Column::Burn(kind) => match worker(config_path, kind, args) {
            Ok(line) => Outcome::Measured(line),
            Err(why) => Outcome::Failed(format!("{why:#}")),
        },
        Column::Pytorch => match crate::bench_reference::python() {
            Err(why) => {
                tracing::warn!("pytorch column skipped: {why}");
                Outcome::Skipped(why)
            }
            Ok(python) => {
                match crate::bench_reference::run(&python, config, data, options, out, args.timeout)
                {
                    Ok(line) => Outcome::Measured(line),
                    Err(why) => Outcome::Failed(format!("{why:#}")),
                }
            }
        },
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    s2s_data::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs one backend in a child process and reads its JSON line.
fn worker(config: &Path, kind: BackendKind, args: &BackendBench) -> anyhow::Result<WorkerLine> {
    let exe = std::env::current_exe().context("cannot find the s2s executable")?;
    let mut command = Command::new(exe);
    command
        .arg("bench")
        .arg("--config")
        .arg(config)
        .args(["--worker", &kind.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--decode-sentences", &args.decode_sentences.to_string()])
        .args(["--decode-tokens", &args.decode_tokens.to_string()])
        .args(["--num-beams", &args.num_beams.to_string()])
        .stderr(Stdio::inherit());
    let Some(out) = run_with_limit(command, Duration::from_secs(args.timeout))? else {
        bail!("stopped after {} s (--timeout)", args.timeout);
    };
    if !out.status.success() {
        bail!("{}", crate::backends::describe_exit(out.status));
    }
    let line = out.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("unreadable worker output: {line}"))
}

fn machine(date_utc: String) -> Machine {
    let s2s_infer::MachineInfo { cpu, logical_cpus } = s2s_infer::MachineInfo::current();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Machine {
        cpu,
        logical_cpus,
        memory_gib,
        os: format!("{} {kernel}", std::env::consts::OS),
        s2s: env!("CARGO_PKG_VERSION").to_string(),
        burn: "0.21.0".to_string(),
        date_utc,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from the system clock (no time-zone database needed).
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("–".into(), |b| format!("{:.0}", b as f64 / 1048576.0))
}

/// The row the ratios are taken against: the PyTorch reference when it was measured, else
/// the first measured row. Returns its name and result.
fn baseline(r: &Report) -> Option<(&str, &BenchResult)> {
    fn measured(row: &Row) -> Option<&BenchResult> {
        match &row.outcome {
            Outcome::Measured(l) => Some(&l.result),
            _ => None,
        }
    }
    let pytorch = r
        .rows
        .iter()
        .filter(|row| row.backend == "pytorch")
        .find_map(|row| measured(row).map(|m| (row.backend.as_str(), m)));
    pytorch.or_else(|| {
        r.rows
            .iter()
            .find_map(|row| measured(row).map(|m| (row.backend.as_str(), m)))
    })
}

fn markdown(r: &Report) -> String {
    let m = &r.machine;
    let o = &r.options;
    let mut s = format!(
        "# s2s bench: {}\n\n{} · {} logical CPUs · {} · {} · s2s {} · burn {} · {}\n\n\
         {} timed optimizer steps after {} warm-up steps (median step time); greedy decoding and \
         beam search (width {}) of {} validation sentences × {} tokens.\n\n",
        r.config,
        m.cpu,
        m.logical_cpus,
        m.memory_gib
            .map_or("memory unknown".into(), |g| format!("{g:.0} GiB")),
        m.os,
        m.s2s,
        m.burn,
        m.date_utc,
        o.steps,
        o.warmup_steps,
        o.num_beams,
        o.decode_sentences,
        o.decode_tokens
    );
    let base = baseline(r);
    let vs = base.map_or("vs –".to_string(), |(name, _)| format!("vs {name}"));
    let _ = writeln!(
        s,
        "| backend | device | train target tokens/s | {vs} | ms/step | greedy tokens/s | {vs} | \
         beam-{} tokens/s | {vs} | peak RSS (MiB) | loss after N steps |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        o.num_beams
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}×", a / b),
        _ => "–".into(),
    };
    let num = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
    for row in &r.rows {
        match &row.outcome {
            Outcome::Measured(l) => {
                let x = &l.result;
                let b = base.map(|(_, b)| b);
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {} | {:.1} | {:.0} | {} | {} | {} | {} | {:.4} |",
                    row.backend,
                    l.device,
                    x.train_tokens_per_second,
                    ratio(
                        Some(x.train_tokens_per_second),
                        b.map(|b| b.train_tokens_per_second)
                    ),
                    x.median_step_seconds * 1e3,
                    x.decode_tokens_per_second,
                    ratio(
                        Some(x.decode_tokens_per_second),
                        b.map(|b| b.decode_tokens_per_second)
                    ),
                    num(x.beam_tokens_per_second),
                    ratio(
                        x.beam_tokens_per_second,
                        b.and_then(|b| b.beam_tokens_per_second)
                    ),
                    mib(l.peak_rss_bytes),
                    x.losses.last().copied().unwrap_or(f64::NAN)
                );
            }
            Outcome::Failed(why) | Outcome::Skipped(why) => {
                let what = match row.outcome {
                    Outcome::Skipped(_) => "skipped",
                    _ => "failed",
                };
                let _ = writeln!(
                    s,
                    "| {} | {what}: {} | | | | | | | | | |",
                    row.backend,
                    why.replace('|', "/")
                );
            }
        }
    }
    s.push_str(
        "\nPeak RSS is host memory of the backend's own process (GPU memory is not counted). \
         Every Burn backend starts from the same weights and batches; with dropout each draws its \
         own masks, so the losses differ from the first step, without it they agree to float \
         rounding at first and drift apart slowly (different summation orders). The pytorch row \
         is benches/reference/seq2seq_torch.py: the same architecture in plain torch.nn \
         (PyTorch eager; scaled_dot_product_attention for the Transformer, nn.LSTM/GRU over \
         packed sequences and LSTMCell/GRUCell steps for the RNN family; Adam, \
         clip_grad_norm_) on the same token batches, from its own random initialisation, so \
         its loss agrees only roughly.\n",
    );
    s
}

fn chart(r: &Report) -> Figure {
    let value = |f: fn(&BenchResult) -> Option<f64>| -> Vec<(String, Option<f64>)> {
        r.rows
            .iter()
            .map(|row| {
                let v = match &row.outcome {
                    Outcome::Measured(l) => f(&l.result),
                    _ => None,
                };
                (row.backend.clone(), v)
            })
            .collect()
    };
    Figure {
        title: format!("s2s bench: {} ({})", r.config, r.machine.cpu),
        panels: Panels::Bars(vec![
            BarPanel {
                title: "training".into(),
                unit: "target tokens/s".into(),
                bars: value(|x| Some(x.train_tokens_per_second)),
            },
            BarPanel {
                title: "greedy decoding".into(),
                unit: "generated tokens/s".into(),
                bars: value(|x| Some(x.decode_tokens_per_second)),
            },
            BarPanel {
                title: format!("beam search ({})", r.options.num_beams),
                unit: "generated tokens/s".into(),
                bars: value(|x| x.beam_tokens_per_second),
            },
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_has_the_iso_shape() {
        let s = utc_stamp();
        assert_eq!(s.len(), 20, "{s}");
        assert!(
            s.starts_with("20") && s.ends_with('Z') && &s[10..11] == "T",
            "{s}"
        );
    }
}
