//! `s2s`: train encoder–decoder models from experiment configs and serve them.
// stdout belongs to the CLI (the workspace lint keeps prints out of the libraries).
#![allow(clippy::print_stdout)]

mod backend;
mod backends;
mod bench;
mod bench_backends;
mod bench_reference;
mod chart;
mod compare;
mod encode;
mod eval;
mod generation_args;

use std::io::{IsTerminal, Read, Write};
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
use crate::generation_args::GenerationArgs;

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
    /// Translate one sentence per line (stdin or --input) with a trained run: greedy, beam
    /// search or sampling over a KV cache; defaults from the run's [generation] section.
    Generate {
        /// Run directory written by `s2s train`.
        #[arg(long)]
        run: PathBuf,
        /// Read sentences from this file instead of stdin.
        #[arg(long)]
        input: Option<PathBuf>,
        /// `text`: the translations, one line per hypothesis (one per input unless
        /// --num-return-sequences > 1; line breaks inside a hypothesis become one space, so
        /// output line i always belongs to input line i); `jsonl`: one JSON object per input
        /// line with the exact text, tokens, ids and score of every hypothesis.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Backend to decode on. Default: the run's training.backend.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        #[command(flatten)]
        generation: GenerationArgs,
    },
    /// Score translations with corpus BLEU and chrF (sacrebleu 2.6.0 defaults): files given
    /// with --hyp/--ref, or a run's translations of a data split with --run.
    Eval {
        /// Hypotheses, one per line.
        #[arg(long, requires = "reference", conflicts_with = "run")]
        hyp: Option<PathBuf>,
        /// References, one per line, as many as hypotheses.
        #[arg(long = "ref", requires = "hyp")]
        reference: Option<PathBuf>,
        /// Run directory: translate --split with the run's generation settings, then score.
        #[arg(long, required_unless_present = "hyp")]
        run: Option<PathBuf>,
        /// Data split of the run's corpus to translate (with --run).
        #[arg(long, value_enum, default_value_t = SplitArg::Test, requires = "run")]
        split: SplitArg,
        /// Translate only the first N pairs of the split (with --run).
        #[arg(long, requires = "run")]
        max_pairs: Option<usize>,
        /// Write the translations here, one per line (with --run).
        #[arg(long, requires = "run")]
        output: Option<PathBuf>,
        /// Comma-separated metrics: bleu, chrf.
        #[arg(long, value_delimiter = ',', default_value = "bleu,chrf")]
        metrics: Vec<String>,
        /// Backend to decode on (with --run). Default: the run's training.backend.
        #[arg(long, value_enum, requires = "run")]
        backend: Option<BackendKind>,
        #[command(flatten)]
        generation: GenerationArgs,
    },
    /// Run a pre-trained BERT over one sentence per line (stdin or --input) and print JSON
    /// lines: tokens, ids, and hidden states or a pooled vector.
    Encode {
        /// `minilm-l6` (prepared on first use) or a directory with an HF BERT layout
        /// (config.json, model.safetensors, tokenizer.json).
        #[arg(long)]
        bert: String,
        /// `none`: every token's last hidden state; `mean`: their mean; `cls`: the [CLS] state.
        #[arg(long, value_enum, default_value_t = encode::Pooling::Mean)]
        pooling: encode::Pooling,
        /// Read sentences from this file instead of stdin.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Sentences encoded together.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Backend to run on.
        #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
        backend: BackendKind,
    },
    /// List the backends s2s knows: compiled into this binary or not, and whether each one
    /// runs here (probed in a child process: a forward and backward pass on its default device).
    Backends {
        /// Seconds a probe may take (GPU backends compile kernels on first use).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Probe one backend in this process and print its JSON line (what `s2s backends` runs
        /// in each child process).
        #[arg(long, value_enum, hide = true)]
        probe: Option<BackendKind>,
    },
    /// Compare backends on one experiment config (`--config F --backends a,b`): training
    /// tokens/s, greedy-decoding tokens/s, peak memory and loss after N steps, each backend in
    /// its own process; a table and a bar chart in runs/bench-<timestamp>/. `decode`: decoding
    /// speed of a trained run.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        #[command(flatten)]
        backends: bench_backends::BackendBench,
    },
    /// Loss, perplexity and BLEU curves of several runs side by side (different backends or
    /// configs): compare.svg, compare.png and compare.md in --out, the table on stdout.
    Compare {
        /// Run directories written by `s2s train`.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Output directory. Default: runs/compare-<UTC timestamp>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Batches averaged in the training-loss curve (and the table's last train loss).
        #[arg(long, default_value_t = 50)]
        smooth: usize,
    },
    /// Datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Decoding speed of a trained run: greedy tokens/s with the KV cache against recomputing
    /// the whole prefix at several output lengths, then beam search at several widths.
    Decode {
        /// Run directory written by `s2s train`.
        #[arg(long)]
        run: PathBuf,
        #[command(flatten)]
        bench: bench::DecodeBench,
        /// Backend to run on. Default: the run's training.backend.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Fetch and prepare a corpus (bible-en-fr) or a pre-trained checkpoint (minilm-l6) into
    /// the data directory.
    Prepare {
        /// Corpus or checkpoint name: bible-en-fr, minilm-l6.
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

/// Output of `s2s generate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Jsonl,
}

/// A data split named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SplitArg {
    Train,
    Valid,
    Test,
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
            format,
            backend,
            generation,
        } => {
            init_logging(None, true)?;
            generate(&run, input.as_deref(), format, backend, &generation)
        }
        Command::Eval {
            hyp,
            reference,
            run,
            split,
            max_pairs,
            output,
            metrics,
            backend,
            generation,
        } => {
            init_logging(None, true)?;
            let metrics = parse_metrics(&metrics)?;
            match (hyp, reference, run) {
                (Some(hyp), Some(reference), _) => eval::files(&hyp, &reference, &metrics),
                (_, _, Some(run)) => eval::run(
                    &run,
                    split,
                    max_pairs,
                    output.as_deref(),
                    &metrics,
                    backend,
                    &generation,
                ),
                _ => bail!("give --hyp and --ref, or --run"),
            }
        }
        Command::Encode {
            bert,
            pooling,
            input,
            batch_size,
            backend,
        } => {
            init_logging(None, true)?;
            encode::encode(&bert, input.as_deref(), pooling, batch_size, backend)
        }
        Command::Bench {
            command:
                Some(BenchCommand::Decode {
                    run,
                    bench,
                    backend,
                }),
            ..
        } => {
            init_logging(None, true)?;
            bench::decode(&run, bench, backend)
        }
        Command::Bench {
            command: None,
            backends,
        } => {
            init_logging(None, true)?;
            bench_backends::run(backends)
        }
        Command::Compare { runs, out, smooth } => compare::run(&runs, out, smooth),
        Command::Backends { timeout, probe } => match probe {
            Some(kind) => backends::probe(kind),
            None => backends::list(std::time::Duration::from_secs(timeout)),
        },
        Command::Data {
            command: DataCommand::Prepare { name, data_dir },
        } => {
            init_logging(None, true)?;
            let dir = data_dir.unwrap_or_else(s2s_data::data_dir);
            let path = s2s_data::prepare_named(&name, &dir)?;
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
    let text = s2s_data::read_text(path)
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
        let data = s2s_train::load_experiment_data(self.config, &s2s_data::data_dir())?;
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
    backend::set_threads(config.training.threads)?;
    let run_dir = config.run_directory(&file_stem(config_path));
    let tui = cfg!(feature = "tui") && !no_tui && std::io::stdout().is_terminal();
    init_logging(Some(&run_dir.join("experiment.log")), !tui)?;
    tracing::info!(
        "training {} on {kind} into {}",
        config_path.display(),
        run_dir.display()
    );
    let options = TrainOptions {
        resume,
        tui,
        interrupter: stop_on_signals()?,
    };
    let report = dispatch(
        kind,
        TrainTask {
            config: &config,
            run_dir: &run_dir,
            options,
        },
    )
    .map_err(|e| match e.downcast_ref::<s2s_train::TrainError>() {
        Some(s2s_train::TrainError::Interrupted { .. }) => anyhow::anyhow!(
            "{e}: s2s train {}{} --resume",
            config_path.display(),
            backend
                .map(|k| format!(" --backend {k}"))
                .unwrap_or_default()
        ),
        _ => e,
    })?;
    print_report(&report);
    Ok(())
}

/// The first Ctrl-C (SIGINT) or SIGTERM asks the training loop to stop after its current batch
/// and write a checkpoint; a second one exits at once (status 130). In the TUI, whose terminal
/// does not turn Ctrl-C into a signal, its quit (`q`, then `s`) does the same as the first.
fn stop_on_signals() -> anyhow::Result<burn::train::Interrupter> {
    let interrupter = burn::train::Interrupter::new();
    let handle = interrupter.clone();
    let signals = std::sync::atomic::AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if signals.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            eprintln!(
                "stopping after the current batch and writing a checkpoint \
                 (Ctrl-C again to exit at once)"
            );
            handle.stop(Some("Ctrl-C or SIGTERM"));
        } else {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(interrupter)
}

fn print_report(r: &TrainReport) {
    println!(
        "run {}: {} epochs on {} pairs in {:.0} s",
        r.run_dir.display(),
        r.epochs,
        r.train_pairs,
        r.seconds,
    );
    println!(
        "validation ({} pairs): loss {:.4} | nll {:.4} | perplexity {:.2} | token accuracy {:.2} %",
        r.valid_pairs, r.valid_loss, r.valid_nll, r.valid_perplexity, r.valid_accuracy
    );
    if let (Some(bleu), Some(chrf)) = (r.valid_bleu, r.valid_chrf) {
        println!(
            "validation BLEU {bleu:.2} | chrF2 {chrf:.2} ({} pairs, {})",
            r.bleu_pairs, r.decoding
        );
    }
    for s in &r.samples {
        println!(
            "\n  source:    {}\n  reference: {}\n  model:     {}",
            s2s_data::one_line(&s.source),
            s2s_data::one_line(&s.reference),
            s2s_data::one_line(&s.hypothesis)
        );
    }
}

fn parse_metrics(names: &[String]) -> anyhow::Result<Vec<s2s_eval::Metric>> {
    let mut metrics = Vec::new();
    for name in names {
        let metric: s2s_eval::Metric = name.parse()?;
        if !metrics.contains(&metric) {
            metrics.push(metric);
        }
    }
    Ok(metrics)
}

/// The run's resolved config, or one sentence saying why the directory is not a run.
fn read_run(run_dir: &Path) -> anyhow::Result<ExperimentConfig> {
    if !run_dir.is_dir() {
        bail!(
            "{} is not a run directory (train one with `s2s train <config>`)",
            run_dir.display()
        );
    }
    read_config(&run_dir.join("config.toml"))
}

/// The backend a command runs on: the flag, else the run's training.backend.
fn run_backend(
    flag: Option<BackendKind>,
    config: &ExperimentConfig,
) -> anyhow::Result<BackendKind> {
    let kind = match flag {
        Some(kind) => kind,
        None => BackendKind::parse(&config.training.backend)?,
    };
    backend::ensure_compiled(kind)?;
    Ok(kind)
}

/// The run's `[generation]` section with the command-line flags applied (flags win, see
/// [`generation_args`]), resolved.
fn generation_config(
    run_dir: &Path,
    config: &ExperimentConfig,
    args: &GenerationArgs,
) -> anyhow::Result<s2s_generate::GenerationConfig> {
    args.resolve(config, &run_dir.join("config.toml"))
}

/// The lines of `input` (stdin if `None`), a leading byte-order mark dropped.
fn read_lines(input: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let text = match input {
        Some(path) => s2s_data::read_text(path)?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            s2s_data::strip_bom(&text).to_owned()
        }
    };
    Ok(text.lines().map(str::to_string).collect())
}

struct GenerateTask<'a> {
    run_dir: &'a Path,
    config: &'a ExperimentConfig,
    sentences: &'a [String],
    generation: s2s_generate::GenerationConfig,
}

impl BackendTask for GenerateTask<'_> {
    type Output = Vec<Vec<s2s_train::Translation>>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output> {
        let (tokenizers, model) =
            s2s_train::load_model::<B::InnerBackend>(self.run_dir, &self.config.model, &device)?;
        Ok(s2s_train::translate(
            &model,
            &tokenizers,
            self.sentences,
            self.config.data.max_source_len,
            &self.generation,
            &device,
        )?)
    }
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    line: usize,
    source: &'a str,
    hypotheses: &'a [s2s_train::Translation],
}

fn generate(
    run_dir: &Path,
    input: Option<&Path>,
    format: OutputFormat,
    backend: Option<BackendKind>,
    args: &GenerationArgs,
) -> anyhow::Result<()> {
    let config = read_run(run_dir)?;
    let generation = generation_config(run_dir, &config, args)?;
    let kind = run_backend(backend, &config)?;
    let sentences = read_lines(input)?;
    let task = GenerateTask {
        run_dir,
        config: &config,
        sentences: &sentences,
        generation: generation.clone(),
    };
    let outputs = dispatch(kind, task)?;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let per_input = generation.num_return_sequences();
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
