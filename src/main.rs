//! `s2s`: train encoder–decoder models from experiment configs and serve them.
//!
//! This file parses the command line and dispatches; each command is its own module, and the
//! helpers they share are in `common` and `backend` (docs/architecture.md).
// stdout belongs to the CLI (the workspace lint keeps prints out of the libraries).
#![allow(clippy::print_stdout)]

mod average;
mod backend;
mod backends;
mod bench;
mod bench_backends;
mod bench_reference;
mod chart;
mod common;
mod compare;
mod encode;
mod eval;
mod generate;
mod generation_args;
mod heatmap;
mod serve;
mod sweep;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Parser, Subcommand};
use s2s_infer::Task;

use crate::backend::BackendKind;
use crate::common::{init_logging, parse_metrics};
use crate::eval::SplitArg;
use crate::generate::OutputFormat;
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
        /// Override a config key: `--set training.epochs=5 --set model.dropout=0.2` (dotted
        /// key, TOML value; a bare word is a string). Checked like the file and recorded in
        /// the run's config.toml. Repeatable; a resume must repeat the same overrides.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Backend to train on; overrides `training.backend` in the config.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Devices to train on, e.g. `0,1` (CUDA 0 and 1): every batch is split over them;
        /// overrides `training.devices` in the config.
        #[arg(long, value_delimiter = ',', value_name = "I,J")]
        devices: Option<Vec<usize>>,
        /// Continue from the last checkpoint of the run.
        #[arg(long)]
        resume: bool,
        /// Plain progress lines even when stdout is a terminal.
        #[arg(long)]
        no_tui: bool,
    },
    /// Train every combination of the --grid values and --seeds, each as its own
    /// `s2s train --no-tui` process into <out>/<name> (e.g. lr_factor=0.5,seed=1), N at a time:
    /// finished runs (report.json) are skipped and interrupted ones resumed, so rerunning the
    /// same command continues a sweep. Then <out>/sweep.md and sweep.json (per grid point,
    /// mean ± sample std over seeds of each run's final metrics; the table on stdout) and the
    /// `s2s compare` plots of every finished run in <out>/compare/.
    Sweep {
        /// Experiment config, e.g. configs/quickstart.toml.
        config: PathBuf,
        /// A config key and the values to try: `--grid training.lr_factor=0.5,1,2` (dotted
        /// key; TOML values split at commas outside brackets, braces and quotes, so
        /// `--grid 'model.x=[1,2],[3]'` tries two arrays; a bare word is a string).
        /// Repeatable: every combination of the grids runs.
        #[arg(long = "grid", value_name = "KEY=V1,V2")]
        grids: Vec<String>,
        /// Seeds (`training.seed`) every grid point trains with, e.g. `1,2,3`.
        /// Default: the config's training.seed.
        #[arg(long, value_name = "S1,S2")]
        seeds: Option<String>,
        /// Runs trained at the same time (each its own process; set training.threads so
        /// that they share the cores).
        #[arg(long, default_value_t = 1, value_name = "N")]
        parallel: usize,
        /// Output directory. Default: runs/<config stem>-sweep.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Backend every run trains on; overrides `training.backend` in the config.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Override a config key in every run, as `s2s train --set` does (a key may not be
        /// both here and in --grid). Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Average the weights of a run's last N epoch checkpoints (element-wise mean, as
    /// fairseq's average_checkpoints.py) into a new run directory that generate, eval and
    /// bench load like any run. The run keeps its last `training.keep_checkpoints` epochs.
    Average {
        /// Run directory written by `s2s train`.
        #[arg(long)]
        run: PathBuf,
        /// How many of the newest epoch checkpoints to average.
        #[arg(long, value_name = "N")]
        last: usize,
        /// Where the averaged run goes. Default: <run>-avg<N> beside the run.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generate an output (a translation, a summary) for each input line (stdin or --input)
    /// with a trained run: greedy, beam search or sampling over a KV cache; defaults from the
    /// run's [generation] section.
    Generate {
        /// Run directory written by `s2s train`.
        #[arg(long)]
        run: PathBuf,
        /// Read inputs (one per line) from this file instead of stdin.
        #[arg(long)]
        input: Option<PathBuf>,
        /// `text`: the outputs, one line per hypothesis (one per input unless
        /// --num-return-sequences > 1; line breaks inside a hypothesis become one space, so
        /// output line i always belongs to input line i); `jsonl`: one JSON object per input
        /// line with the exact text, tokens, ids and score of every hypothesis.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Backend to decode on. Default: the run's training.backend.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Also write the cross-attention of each input's best hypothesis into this directory:
        /// `NNNN.json` (the weights per layer and head, their average, the tokens), `NNNN.svg`
        /// and `NNNN.png` (heat-map of the average), and for a Transformer `NNNN-heads.svg`/
        /// `.png` (every layer and head); NNNN is the input line number.
        #[arg(long, value_name = "DIR")]
        attention_out: Option<PathBuf>,
        #[command(flatten)]
        generation: GenerationArgs,
    },
    /// Serve a trained run over HTTP (docs/serving.md): POST /generate with HF generate()'s
    /// parameters, requests with the same settings decoded together (dynamic batching), a page
    /// to try the model at /, /health, /info and Prometheus /metrics. Ctrl-C or SIGTERM
    /// answers the requests already received, then exits.
    Serve(serve::ServeArgs),
    /// Score outputs with corpus BLEU and chrF (sacrebleu 2.6.0 defaults) and ROUGE
    /// (rouge-score 0.1.2): files given with --hyp/--ref, or a run's outputs for a data split
    /// with --run.
    Eval {
        /// Hypotheses, one per line.
        #[arg(long, requires = "reference", conflicts_with = "run")]
        hyp: Option<PathBuf>,
        /// References, one per line, as many as hypotheses.
        #[arg(long = "ref", requires = "hyp")]
        reference: Option<PathBuf>,
        /// Run directory: decode --split with the run's generation settings, then score.
        #[arg(long, required_unless_present = "hyp")]
        run: Option<PathBuf>,
        /// Data split of the run's corpus to decode (with --run).
        #[arg(long, value_enum, default_value_t = SplitArg::Test, requires = "run")]
        split: SplitArg,
        /// Decode only the first N pairs of the split (with --run).
        #[arg(long, requires = "run")]
        max_pairs: Option<usize>,
        /// Write the outputs here, one per line (with --run).
        #[arg(long, requires = "run")]
        output: Option<PathBuf>,
        /// Comma-separated metrics: bleu, chrf, rouge (ROUGE-1/2/L/Lsum, Porter stemmer).
        /// Default: bleu,chrf; with --run, the run's task's (summarization: rouge).
        #[arg(long, value_delimiter = ',')]
        metrics: Option<Vec<String>>,
        /// Backend to decode on (with --run). Default: the run's training.backend.
        #[arg(long, value_enum, requires = "run")]
        backend: Option<BackendKind>,
        /// Score the checkpoint of this epoch (kept by training.keep_checkpoints) instead of
        /// the run's model.mpk (with --run).
        #[arg(long, requires = "run")]
        epoch: Option<usize>,
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
    /// Loss, perplexity and validation BLEU (or ROUGE-L) curves of several runs side by side
    /// (different backends or configs): compare.svg, compare.png and compare.md in --out, the
    /// table on stdout.
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
    /// Fetch and prepare a corpus (bible-en-fr, debian-descriptions) or a pre-trained
    /// checkpoint (minilm-l6) into the data directory.
    Prepare {
        /// Corpus or checkpoint name: bible-en-fr, debian-descriptions, minilm-l6.
        name: String,
        /// Data directory. Default: $S2S_DATA_DIR, else the user cache dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// debian-descriptions only: read the archive indexes from this apt lists directory
        /// (e.g. /var/lib/apt/lists after `apt-get -o Acquire::Languages=en update`) instead of
        /// fetching them with apt-get.
        #[arg(long, value_name = "DIR")]
        apt_lists: Option<PathBuf>,
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
            overrides,
            backend,
            devices,
            resume,
            no_tui,
        } => train::train(train::TrainArgs {
            config_path: &config,
            overrides: &overrides,
            backend,
            devices,
            resume,
            no_tui,
        }),
        Command::Sweep {
            config,
            grids,
            seeds,
            parallel,
            out,
            backend,
            overrides,
        } => sweep::sweep(sweep::SweepArgs {
            config_path: &config,
            grids: &grids,
            seeds: seeds.as_deref(),
            parallel,
            out,
            backend,
            overrides: &overrides,
        }),
        Command::Average { run, last, out } => {
            init_logging(None, true)?;
            average::average(&run, last, out).map(|_| ())
        }
        Command::Generate {
            run,
            input,
            format,
            backend,
            attention_out,
            generation,
        } => {
            init_logging(None, true)?;
            let output = generate::Output {
                format,
                attention: attention_out.as_deref(),
            };
            generate::generate(&run, input.as_deref(), output, backend, &generation)
        }
        Command::Serve(args) => {
            init_logging(None, true)?;
            serve::serve(args)
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
            epoch,
            generation,
        } => {
            init_logging(None, true)?;
            let metrics = metrics.as_deref().map(parse_metrics).transpose()?;
            match (hyp, reference, run) {
                (Some(hyp), Some(reference), _) => {
                    let metrics = metrics.unwrap_or_else(|| Task::Translation.eval_metrics());
                    eval::files(&hyp, &reference, &metrics)
                }
                (_, _, Some(run)) => eval::run(
                    &run,
                    eval::RunEval {
                        split,
                        max_pairs,
                        output: output.as_deref(),
                        metrics: metrics.as_deref(),
                        backend,
                        epoch,
                    },
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
            command:
                DataCommand::Prepare {
                    name,
                    data_dir,
                    apt_lists,
                },
        } => {
            init_logging(None, true)?;
            let dir = data_dir.unwrap_or_else(s2s_data::data_dir);
            let spinner = indicatif::ProgressBar::new_spinner()
                .with_message(format!("preparing {name} (fetching, checking, splitting)"));
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            let prepared = match (&apt_lists, name.as_str()) {
                (None, _) => s2s_data::prepare_named(&name, &dir),
                (Some(lists), s2s_data::DEBIAN_DESCRIPTIONS) => {
                    s2s_data::prepare_debian_descriptions(&dir, Some(lists))
                        .map(|_| dir.join(&name))
                }
                (Some(_), _) => {
                    spinner.finish_and_clear();
                    bail!("--apt-lists applies to debian-descriptions only, not {name}")
                }
            };
            spinner.finish_and_clear();
            let path = prepared?;
            println!("{name} is ready in {}", path.display());
            Ok(())
        }
    }
}
