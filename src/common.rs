//! Helpers every command shares: logging, reading configs, runs and input lines, and the
//! backend and generation settings a command runs with.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::Context;
use burn::prelude::Backend;
use s2s_infer::{AttentionMap, ExperimentConfig, RunDir, Translation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::backend::{self, dispatch_infer, BackendKind, InferTask};
use crate::generation_args::GenerationArgs;

/// Logs go to stderr (unless the TUI owns the terminal) and, for runs, to `experiment.log`.
pub fn init_logging(log_file: Option<&Path>, stderr: bool) -> anyhow::Result<()> {
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

/// An experiment config file, parsed and checked; errors name the file.
pub fn read_config(path: &Path) -> anyhow::Result<ExperimentConfig> {
    read_config_with(path, &[])
}

/// [`read_config`] with `--set key=value` overrides applied
/// ([`ExperimentConfig::from_toml_with`]).
pub fn read_config_with(path: &Path, overrides: &[String]) -> anyhow::Result<ExperimentConfig> {
    let text = s2s_data::read_text(path)
        .with_context(|| format!("cannot read the config {}", path.display()))?;
    let config = ExperimentConfig::from_toml_with(&text, overrides)
        .with_context(|| format!("in {}", path.display()))?;
    config
        .validate()
        .with_context(|| format!("in {}", path.display()))?;
    Ok(config)
}

/// The name of a run whose config names none: the config file's stem.
pub fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

/// The run at `run_dir` and its resolved config, or one sentence saying why the directory is
/// not a run.
pub fn read_run(run_dir: &Path) -> anyhow::Result<(RunDir, ExperimentConfig)> {
    let run = RunDir::open(run_dir)?;
    let path = run.config_path();
    let config = run.config().map_err(|e| {
        let what = match e {
            s2s_infer::InferError::Data(_) => "cannot read the config",
            _ => "in",
        };
        anyhow::Error::new(e).context(format!("{what} {}", path.display()))
    })?;
    Ok((run, config))
}

/// The backend a command runs on: the flag, else the run's training.backend (the backend it
/// was trained on).
pub fn run_backend(
    flag: Option<BackendKind>,
    config: &ExperimentConfig,
) -> anyhow::Result<BackendKind> {
    let kind = flag.unwrap_or(config.training.backend);
    backend::ensure_compiled(kind)?;
    Ok(kind)
}

/// The lines of `input` (stdin if `None`), a leading byte-order mark dropped.
pub fn read_lines(input: Option<&Path>) -> anyhow::Result<Vec<String>> {
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

/// The metrics named on the command line, each once, in the order given.
pub fn parse_metrics(names: &[String]) -> anyhow::Result<Vec<s2s_eval::Metric>> {
    let mut metrics = Vec::new();
    for name in names {
        let metric: s2s_eval::Metric = name.parse()?;
        if !metrics.contains(&metric) {
            metrics.push(metric);
        }
    }
    Ok(metrics)
}

/// Loads a run's model on a plain backend and translates sentences with it: what
/// `s2s generate` and `s2s eval --run` both do.
struct TranslateTask<'a> {
    run: &'a RunDir,
    config: &'a ExperimentConfig,
    sentences: &'a [String],
    generation: &'a s2s_generate::GenerationConfig,
    /// Also compute the cross-attention of each line's best hypothesis.
    attention: bool,
}

/// Per input line, its hypotheses and (when asked) the best one's attention map.
type Translated = (Vec<Vec<Translation>>, Vec<Option<AttentionMap>>);

impl InferTask for TranslateTask<'_> {
    type Output = Translated;
    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Self::Output> {
        let (tokenizers, model) = self.run.load_model::<B>(self.config, &device)?;
        let lines = self
            .sentences
            .iter()
            .filter(|s| !s.trim().is_empty())
            .count();
        let bar = progress_bar(lines, "generating");
        let translations = s2s_infer::translate_with_progress(
            &model,
            &tokenizers,
            self.sentences,
            self.config.data.max_source_len,
            self.generation,
            &device,
            &mut |n| bar.inc(n as u64),
        )?;
        bar.finish_and_clear();
        let maps = if self.attention {
            s2s_infer::attention_maps(
                &model,
                &tokenizers,
                self.sentences,
                &translations,
                self.config.data.max_source_len,
                &device,
            )?
        } else {
            vec![None; self.sentences.len()]
        };
        Ok((translations, maps))
    }
}

/// A trained run opened for translating: what `s2s generate` and `s2s eval --run` start from.
#[derive(Debug)]
pub struct Serving {
    /// The run directory.
    pub run: RunDir,
    /// The config it was trained with.
    pub config: ExperimentConfig,
    /// The run's `[generation]` with the command-line flags applied (flags win, see
    /// [`crate::generation_args`]), resolved.
    pub generation: s2s_generate::GenerationConfig,
    /// The flag's backend, else the one the run was trained on.
    pub kind: BackendKind,
}

impl Serving {
    /// Opens the run at `run_dir` with the command line's backend and generation flags.
    pub fn open(
        run_dir: &Path,
        backend: Option<BackendKind>,
        args: &GenerationArgs,
    ) -> anyhow::Result<Self> {
        let (run, config) = read_run(run_dir)?;
        let generation = args.resolve(&config, &run.config_path())?;
        let kind = run_backend(backend, &config)?;
        Ok(Self {
            run,
            config,
            generation,
            kind,
        })
    }

    /// The translations of `sentences` by the run's model ([`s2s_infer::translate`]): per
    /// line, its `num_return_sequences` hypotheses; none for a blank line.
    pub fn translate(&self, sentences: &[String]) -> anyhow::Result<Vec<Vec<Translation>>> {
        Ok(self.run_task(sentences, false)?.0)
    }

    /// [`Self::translate`] and, per line, the cross-attention of its best hypothesis
    /// ([`s2s_infer::attention_maps`]; `None` for a blank line).
    pub fn translate_with_attention(&self, sentences: &[String]) -> anyhow::Result<Translated> {
        self.run_task(sentences, true)
    }

    fn run_task(&self, sentences: &[String], attention: bool) -> anyhow::Result<Translated> {
        let task = TranslateTask {
            run: &self.run,
            config: &self.config,
            sentences,
            generation: &self.generation,
            attention,
        };
        dispatch_infer(self.kind, task)
    }
}

/// A progress bar with ETA on stderr over `total` items (hidden when stderr is not a terminal,
/// so logs and tests see nothing of it).
pub fn progress_bar(total: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {pos}/{len} [{elapsed} elapsed, ETA {eta}]",
    ) {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}
