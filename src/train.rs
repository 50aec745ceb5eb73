//! `s2s train`: train an experiment config into its run directory.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use s2s_infer::{ExperimentConfig, RunDir, TrainReport};
use s2s_train::TrainOptions;

use crate::backend::{self, dispatch, BackendKind, BackendTask};
use crate::common::{file_stem, init_logging, read_config_with, run_backend};

struct TrainTask<'a> {
    config: &'a ExperimentConfig,
    run: &'a RunDir,
    options: TrainOptions,
}

impl BackendTask for TrainTask<'_> {
    type Output = TrainReport;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<TrainReport> {
        let data = s2s_train::load_experiment_data(self.config, &s2s_data::data_dir())?;
        Ok(s2s_train::train::<B>(
            self.config,
            self.run,
            data,
            device,
            self.options,
        )?)
    }
}

/// How `s2s train` was asked to run.
#[derive(Debug)]
pub struct TrainArgs<'a> {
    pub config_path: &'a Path,
    /// `--set key=value`, applied in order.
    pub overrides: &'a [String],
    pub backend: Option<BackendKind>,
    /// `--devices`: replaces `training.devices`.
    pub devices: Option<Vec<usize>>,
    pub resume: bool,
    pub no_tui: bool,
}

/// Trains the config at `config_path`, with its `--set` overrides, on `backend` (default: its
/// `training.backend`); the run's `config.toml` records the result.
pub fn train(args: TrainArgs<'_>) -> anyhow::Result<()> {
    let TrainArgs {
        config_path,
        overrides,
        backend,
        devices,
        resume,
        no_tui,
    } = args;
    let mut config = read_config_with(config_path, overrides)?;
    // The flags a resume has to repeat, for the message of an interrupted run.
    let mut again: String = overrides.iter().map(|o| format!(" --set '{o}'")).collect();
    if let Some(kind) = backend {
        again.push_str(&format!(" --backend {kind}"));
    }
    if let Some(devices) = devices {
        let list: Vec<String> = devices.iter().map(usize::to_string).collect();
        again.push_str(&format!(" --devices {}", list.join(",")));
        config.training.devices = devices;
        config
            .validate()
            .with_context(|| format!("with --devices, in {}", config_path.display()))?;
    }
    let kind = run_backend(backend, &config)?;
    backend::set_threads(config.training.threads)?;
    config.training.backend = kind;
    let run = RunDir::new(config.run_directory(&file_stem(config_path)));
    let tui = cfg!(feature = "tui") && !no_tui && std::io::stdout().is_terminal();
    init_logging(Some(&run.file(RunDir::LOG)), !tui)?;
    tracing::info!(
        "training {} on {kind} into {}",
        config_path.display(),
        run.path().display()
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
            run: &run,
            options,
        },
    )
    .map_err(|e| match e.downcast_ref::<s2s_train::TrainError>() {
        Some(s2s_train::TrainError::Interrupted { .. }) => {
            anyhow::anyhow!("{e}: s2s train {}{again} --resume", config_path.display())
        }
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
    println!("{}; model.mpk: {}", r.stopped, r.weights);
    println!(
        "validation ({} pairs): loss {:.4} | nll {:.4} | perplexity {:.2} | token accuracy {:.2} %",
        r.valid_pairs, r.valid_loss, r.valid_nll, r.valid_perplexity, r.valid_accuracy
    );
    if let (Some(bleu), Some(chrf)) = (r.valid_bleu, r.valid_chrf) {
        let rouge = match (r.valid_rouge1, r.valid_rouge2, r.valid_rouge_l) {
            (Some(r1), Some(r2), Some(rl)) => format!(" | ROUGE-1/2/L {r1:.2}/{r2:.2}/{rl:.2}"),
            _ => String::new(),
        };
        println!(
            "validation BLEU {bleu:.2} | chrF2 {chrf:.2}{rouge} ({} pairs, {})",
            r.metric_pairs, r.decoding
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
