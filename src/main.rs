//! `s2s`: train encoder–decoder models from experiment configs and serve them.
// stdout belongs to the CLI (the workspace lint keeps prints out of the libraries).
#![allow(clippy::print_stdout)]

mod backend;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand};
use s2s_train::{ExperimentConfig, TrainOptions, TrainReport};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::backend::{dispatch, BackendKind, BackendTask};

#[derive(Parser, Debug)]
#[command(
    name = "s2s",
    version,
    about = "Sequence-to-sequence models on Burn: train, compare, serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the experiment a TOML config describes (run directory: runs/<name>).
    Train {
        /// Experiment config, e.g. configs/quickstart.toml.
        config: PathBuf,
        /// Backend to train on; overrides `training.backend` in the config.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Continue from the last checkpoint of the run.
        #[arg(long)]
        resume: bool,
        /// Plain progress lines even when stdout is a terminal.
        #[arg(long)]
        no_tui: bool,
    },
    /// Translate one sentence per line (stdin or --input) with a trained run.
    Generate {
        /// Run directory written by `s2s train`.
        #[arg(long)]
        run: PathBuf,
        /// Read sentences from this file instead of stdin.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Longest output in tokens. Default: the run's data.max_target_len.
        #[arg(long)]
        max_new_tokens: Option<usize>,
        /// Sentences decoded together.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Backend to decode on. Default: the run's training.backend.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Fetch and prepare a named corpus (bible-en-fr) into the data directory.
    Prepare {
        /// Corpus name.
        name: String,
        /// Data directory. Default: $S2S_DATA_DIR, else the user cache dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train {
            config,
            backend,
            resume,
            no_tui,
        } => train(&config, backend, resume, no_tui),
        Command::Generate {
            run,
            input,
            max_new_tokens,
            batch_size,
            backend,
        } => {
            init_logging(None, true)?;
            generate(&run, input.as_deref(), max_new_tokens, batch_size, backend)
        }
        Command::Data {
            command: DataCommand::Prepare { name, data_dir },
        } => {
            init_logging(None, true)?;
            let dir = data_dir.unwrap_or_else(s2s_data::data_dir);
            let path = s2s_data::ensure_corpus(&name, &dir)?;
            println!("{name} is ready in {}", path.display());
            Ok(())
        }
    }
}

/// Logs go to stderr (unless the TUI owns the terminal) and, for runs, to `experiment.log`.
fn init_logging(log_file: Option<&Path>, stderr: bool) -> anyhow::Result<()> {
    // burn-train logs every iteration at info; our renderer already reports progress.
    let filter = || {
        EnvFilter::try_from_env("S2S_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,burn_train=warn"))
    };
    let stderr_layer = stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .with_filter(filter())
    });
    let file_layer = match log_file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_ansi(false)
                    .with_filter(filter()),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init()
        .ok();
    Ok(())
}

fn read_config(path: &Path) -> anyhow::Result<ExperimentConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config {}", path.display()))?;
    let config =
        ExperimentConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
    config
        .validate()
        .with_context(|| format!("in {}", path.display()))?;
    Ok(config)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

struct TrainTask<'a> {
    config: &'a ExperimentConfig,
    run_dir: &'a Path,
    options: TrainOptions,
}

impl BackendTask for TrainTask<'_> {
    type Output = TrainReport;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<TrainReport> {
        let data = s2s_train::load_data(&self.config.data, &s2s_data::data_dir())?;
        Ok(s2s_train::train::<B>(
            self.config,
            self.run_dir,
            data,
            device,
            self.options,
        )?)
    }
}

fn train(
    config_path: &Path,
    backend: Option<BackendKind>,
    resume: bool,
    no_tui: bool,
) -> anyhow::Result<()> {
    let config = read_config(config_path)?;
    let kind = match backend {
        Some(kind) => kind,
        None => BackendKind::parse(&config.training.backend)
            .with_context(|| format!("in {}", config_path.display()))?,
    };
    backend::ensure_compiled(kind)?;
    let run_dir = config.run_directory(&file_stem(config_path));
    let tui = cfg!(feature = "tui") && !no_tui && std::io::stdout().is_terminal();
    init_logging(Some(&run_dir.join("experiment.log")), !tui)?;
    tracing::info!(
        "training {} on {kind} into {}",
        config_path.display(),
        run_dir.display()
    );
    let options = TrainOptions { resume, tui };
    let report = dispatch(
        kind,
        TrainTask {
            config: &config,
            run_dir: &run_dir,
            options,
        },
    )?;
    print_report(&report);
    Ok(())
}

fn print_report(r: &TrainReport) {
    println!(
        "run {}: {} epochs on {} pairs in {:.0} s{}",
        r.run_dir.display(),
        r.epochs,
        r.train_pairs,
        r.seconds,
        if r.interrupted { " (interrupted)" } else { "" }
    );
    println!(
        "validation ({} pairs): loss {:.4} | nll {:.4} | perplexity {:.2} | token accuracy {:.2} %",
        r.valid_pairs, r.valid_loss, r.valid_nll, r.valid_perplexity, r.valid_accuracy
    );
    for s in &r.samples {
        println!(
            "\n  source:    {}\n  reference: {}\n  model:     {}",
            s.source, s.reference, s.hypothesis
        );
    }
}

struct GenerateTask<'a> {
    run_dir: &'a Path,
    config: &'a ExperimentConfig,
    sentences: Vec<String>,
    max_new_tokens: usize,
    batch_size: usize,
}

impl BackendTask for GenerateTask<'_> {
    type Output = Vec<String>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Vec<String>> {
        let (tokenizers, model) =
            s2s_train::load_model::<B::InnerBackend>(self.run_dir, &self.config.model, &device)?;
        Ok(s2s_train::translate(
            &model,
            &tokenizers,
            &self.sentences,
            self.config.data.max_source_len,
            self.max_new_tokens,
            self.batch_size,
            &device,
        )?)
    }
}

fn generate(
    run_dir: &Path,
    input: Option<&Path>,
    max_new_tokens: Option<usize>,
    batch_size: usize,
    backend: Option<BackendKind>,
) -> anyhow::Result<()> {
    if !run_dir.is_dir() {
        bail!(
            "{} is not a run directory (train one with `s2s train <config>`)",
            run_dir.display()
        );
    }
    let config = read_config(&run_dir.join("config.toml"))?;
    let kind = match backend {
        Some(kind) => kind,
        None => BackendKind::parse(&config.training.backend)?,
    };
    let sentences: Vec<String> = match input {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .map(str::to_string)
            .collect(),
        None => std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .context("cannot read standard input")?,
    };
    let max_new_tokens = max_new_tokens.unwrap_or(config.data.max_target_len);
    let task = GenerateTask {
        run_dir,
        config: &config,
        sentences,
        max_new_tokens,
        batch_size,
    };
    let outputs = dispatch(kind, task)?;
    let mut stdout = std::io::stdout().lock();
    for line in outputs {
        writeln!(stdout, "{line}").context("cannot write to standard output")?;
    }
    Ok(())
}
