//! `s2s sweep cfg.toml --grid training.lr_factor=0.5,1,2 --seeds 1,2,3`: every combination
//! of the grids' values and the seeds trained as its own `s2s train` process into
//! `<out>/<name>`, N at a time; finished runs are skipped and interrupted ones resumed, so
//! rerunning the same command continues a sweep. At the end, `sweep.md` and `sweep.json` (per
//! grid point the mean ± sample standard deviation over seeds of each run's `report.json`)
//! and the `s2s compare` plots of every run in `<out>/compare/`.
//!
//! Each run is a child process rather than a thread so that a crash, a NaN or an out-of-memory
//! kill takes one run down, not the sweep, and so that Ctrl-C reaches every run through the
//! terminal's process group and each checkpoints itself exactly as a lone `s2s train` does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context};
use s2s_infer::config::first_repeat;
use s2s_infer::{ExperimentConfig, RunDir, TrainReport};
use serde::Serialize;

use crate::backend::BackendKind;
use crate::common::{file_stem, read_config_with, run_backend};

/// Batches averaged in the training-loss curves of `<out>/compare/` (`s2s compare`'s default).
const COMPARE_SMOOTH: usize = 50;
/// The sweep's summary files in its output directory.
const SUMMARY_MARKDOWN: &str = "sweep.md";
const SUMMARY_JSON: &str = "sweep.json";
/// Each run's stdout and stderr, in its run directory (appended to by every process).
const RUN_LOG: &str = "sweep.log";
/// Keys the sweep sets itself: `training.seed` from `--seeds`, `run_dir` per run.
const SEED_KEY: &str = "training.seed";
const RUN_DIR_KEY: &str = "run_dir";

/// How `s2s sweep` was asked to run.
#[derive(Debug)]
pub struct SweepArgs<'a> {
    pub config_path: &'a Path,
    /// `--grid key=v1,v2,…`, in the order given (the first varies slowest).
    pub grids: &'a [String],
    /// `--seeds 1,2,3`; `None`: the config's `training.seed`.
    pub seeds: Option<&'a str>,
    pub parallel: usize,
    /// Default: `runs/<config stem>-sweep`.
    pub out: Option<PathBuf>,
    pub backend: Option<BackendKind>,
    /// `--set key=value`, applied to every run before its grid values.
    pub overrides: &'a [String],
}

/// One `--grid` key and the values it takes.
#[derive(Debug, Clone, PartialEq)]
struct Grid {
    /// The dotted key, e.g. `training.lr_factor`.
    key: String,
    /// Each value as written (TOML, or a bare word).
    values: Vec<String>,
}

/// One run of the sweep: a grid point trained with one seed.
#[derive(Debug)]
struct Run {
    /// Readable and stable: `lr_factor=0.5,seed=1`.
    name: String,
    /// Index into [`Plan::points`].
    point: usize,
    seed: u64,
    dir: RunDir,
    /// Every `--set` its `s2s train` gets: the sweep's, the grid values, the seed, the run dir.
    overrides: Vec<String>,
}

/// What the command line asks for, checked: every run's config already read and validated.
#[derive(Debug)]
struct Plan {
    grids: Vec<Grid>,
    /// Each grid point: the index of its value in every grid.
    points: Vec<Vec<usize>>,
    seeds: Vec<u64>,
    runs: Vec<Run>,
}

/// How one run of this invocation ended.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Its `report.json` existed before the sweep started.
    Skipped,
    Finished,
    /// Exit status (`None`: killed by a signal), or exit 0 without a report.
    Failed(Option<i32>),
    /// Stopped by Ctrl-C/SIGTERM: it wrote a checkpoint, and rerunning resumes it.
    Interrupted,
    /// Not started because the sweep was interrupted first.
    NotStarted,
}

/// Trains every run of the sweep that has not finished, then writes the summary and the
/// comparison plots.
pub fn sweep(args: SweepArgs<'_>) -> anyhow::Result<()> {
    if args.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let out = args.out.clone().unwrap_or_else(|| {
        Path::new("runs").join(format!("{}-sweep", file_stem(args.config_path)))
    });
    let plan = Plan::new(&args, &out)?;
    let stop = stop_on_signals()?;
    let outcomes = run_all(&plan, &args, &stop)?;
    let interrupted: Vec<&str> = names_with(&plan, &outcomes, |o| *o == Outcome::Interrupted);
    if stop.load(Ordering::SeqCst) {
        let waiting = names_with(&plan, &outcomes, |o| *o == Outcome::NotStarted).len();
        bail!(
            "interrupted: {} stopped with a checkpoint ({}) and {waiting} not started; run the \
             same command again to resume them",
            interrupted.len(),
            interrupted.join(", ")
        );
    }
    let summary = summarize(&plan, args.config_path)?;
    write_summary(&summary, &out)?;
    let finished: Vec<PathBuf> = plan
        .runs
        .iter()
        .filter(|r| r.dir.file(RunDir::REPORT_JSON).is_file())
        .map(|r| r.dir.path().to_path_buf())
        .collect();
    if !finished.is_empty() {
        crate::compare::run(&finished, Some(out.join("compare")), COMPARE_SMOOTH)?;
    }
    let failed = names_with(&plan, &outcomes, |o| matches!(o, Outcome::Failed(_)));
    if !failed.is_empty() {
        bail!(
            "{} of {} runs failed: {} (each one's output is in its {RUN_LOG})",
            failed.len(),
            plan.runs.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn names_with<'p>(
    plan: &'p Plan,
    outcomes: &[Outcome],
    which: impl Fn(&Outcome) -> bool,
) -> Vec<&'p str> {
    plan.runs
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| which(o))
        .map(|(r, _)| r.name.as_str())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The plan: parsing and checking the command line

impl Plan {
    /// Parses the grids and seeds and reads every run's config as its `s2s train` will, so
    /// that a misspelt key or a bad value fails before any run starts.
    fn new(args: &SweepArgs<'_>, out: &Path) -> anyhow::Result<Self> {
        let grids = args
            .grids
            .iter()
            .map(|g| parse_grid(g))
            .collect::<anyhow::Result<Vec<_>>>()?;
        check_keys(&grids, args.overrides)?;
        let seeds = match args.seeds {
            Some(text) => parse_seeds(text)?,
            None => vec![
                read_config_with(args.config_path, args.overrides)?
                    .training
                    .seed,
            ],
        };
        let points = cartesian(&grids);
        let labels = labels(&grids);
        let mut runs: Vec<Run> = Vec::new();
        for (point, indices) in points.iter().enumerate() {
            for &seed in &seeds {
                let mut parts: Vec<String> = grids
                    .iter()
                    .zip(indices)
                    .zip(&labels)
                    .map(|((g, &i), label)| format!("{label}={}", file_name_part(&g.values[i])))
                    .collect();
                parts.push(format!("seed={seed}"));
                let name = parts.join(",");
                let overrides = run_overrides(args.overrides, &grids, indices, seed, out, &name);
                if let Some(twin) = runs.iter().find(|r| r.name == name) {
                    bail!(
                        "two grid points would both write the run {name} (--set {} and --set \
                         {}); give values that differ in letters or digits",
                        twin.overrides.join(" --set "),
                        overrides.join(" --set ")
                    );
                }
                runs.push(Run {
                    dir: RunDir::new(out.join(&name)),
                    name,
                    point,
                    seed,
                    overrides,
                });
            }
        }
        for run in &runs {
            let config = read_config_with(args.config_path, &run.overrides)
                .with_context(|| format!("for the run {}", run.name))?;
            run_backend(args.backend, &config)?;
            same_experiment(run, &config)?;
        }
        Ok(Self {
            grids,
            points,
            seeds,
            runs,
        })
    }
}

/// A run directory left by an earlier sweep into the same `--out` must hold the experiment
/// this one would train: it is skipped when finished and resumed otherwise, so a changed
/// `--set` (or config) must not be taken for it.
fn same_experiment(run: &Run, config: &ExperimentConfig) -> anyhow::Result<()> {
    if !run.dir.config_path().is_file() {
        return Ok(());
    }
    let Ok(before) = run.dir.config() else {
        bail!(
            "{} cannot be read; remove {} or give another --out",
            run.dir.config_path().display(),
            run.dir.path().display()
        );
    };
    let mut keys = config.resume_conflicts(&before);
    if before.training.epochs != config.training.epochs {
        keys.push("training.epochs".into());
    }
    if !keys.is_empty() {
        bail!(
            "{} was trained with other settings ({}); give another --out, or remove it",
            run.dir.path().display(),
            keys.join(", ")
        );
    }
    Ok(())
}

/// `key=v1,v2,…`: the values split at commas outside brackets, braces and quotes, so that
/// `model.x=[1,2],[3,4]` is two arrays and `k="a,b",c` two strings.
fn parse_grid(text: &str) -> anyhow::Result<Grid> {
    let Some((key, values)) = text.split_once('=') else {
        bail!("--grid {text}: expected key=value1,value2,…, e.g. training.lr_factor=0.5,1,2");
    };
    let key = normalize_key(key);
    if key.split('.').any(str::is_empty) {
        bail!("--grid {text}: `{key}` is not a dotted key like training.lr_factor");
    }
    let Some(values) = split_top_level(values) else {
        bail!("--grid {text}: a bracket, brace or quote is not closed");
    };
    let values: Vec<String> = values.into_iter().map(|v| v.trim().to_string()).collect();
    if values.iter().all(String::is_empty) {
        bail!("--grid {key}= gives no values; list them, e.g. --grid {key}=0.1,0.3");
    }
    if values.iter().any(String::is_empty) {
        bail!("--grid {text} has an empty value (two commas in a row, or one at an end)");
    }
    if let Some(twice) = first_repeat(&values) {
        bail!("--grid {key} lists {twice} twice");
    }
    Ok(Grid { key, values })
}

/// The pieces of `values` between top-level commas; `None` when a bracket or quote is left
/// open. Inside `"…"`, a backslash escapes the next character (TOML's basic strings).
fn split_top_level(values: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut escaped, mut start) = (0i32, None, false, 0);
    for (i, c) in values.char_indices() {
        match (quote, c) {
            (Some('"'), _) if escaped => escaped = false,
            (Some('"'), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            (None, ',') if depth == 0 => {
                parts.push(&values[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&values[start..]);
    (depth == 0 && quote.is_none()).then_some(parts)
}

fn normalize_key(key: &str) -> String {
    key.split('.').map(str::trim).collect::<Vec<_>>().join(".")
}

/// No key twice among the grids, none both in a grid and in `--set`, and none of the keys
/// the sweep sets itself.
fn check_keys(grids: &[Grid], overrides: &[String]) -> anyhow::Result<()> {
    let keys: Vec<&String> = grids.iter().map(|g| &g.key).collect();
    if let Some(key) = first_repeat(&keys) {
        bail!("--grid {key} is given twice; list all its values in one --grid");
    }
    let set_keys: Vec<String> = overrides
        .iter()
        .filter_map(|o| o.split_once('='))
        .map(|(k, _)| normalize_key(k))
        .collect();
    if let Some(grid) = grids.iter().find(|g| set_keys.contains(&g.key)) {
        bail!(
            "{} is given both in --grid and in --set; keep one (a --set holds for every run)",
            grid.key
        );
    }
    let mine = grids.iter().map(|g| &g.key).chain(&set_keys);
    for key in mine {
        match key.as_str() {
            SEED_KEY => bail!("give the seeds with --seeds, not as {SEED_KEY} in --grid or --set"),
            RUN_DIR_KEY => bail!(
                "the sweep sets each run's {RUN_DIR_KEY} (<out>/<run name>); choose where with --out"
            ),
            _ => {}
        }
    }
    Ok(())
}

/// `1,2,3`: whole numbers, each once.
fn parse_seeds(text: &str) -> anyhow::Result<Vec<u64>> {
    let mut seeds = Vec::new();
    for part in text.split(',').map(str::trim) {
        let Ok(seed) = part.parse::<u64>() else {
            bail!("--seeds {text}: `{part}` is not a whole number (e.g. --seeds 1,2,3)");
        };
        if seeds.contains(&seed) {
            bail!("--seeds {text} lists {seed} twice");
        }
        seeds.push(seed);
    }
    Ok(seeds)
}

/// Every combination of one value per grid, the first grid varying slowest; one empty
/// combination without grids.
fn cartesian(grids: &[Grid]) -> Vec<Vec<usize>> {
    grids.iter().fold(vec![Vec::new()], |points, grid| {
        points
            .iter()
            .flat_map(|p| {
                (0..grid.values.len()).map(move |i| {
                    let mut p = p.clone();
                    p.push(i);
                    p
                })
            })
            .collect()
    })
}

/// What each grid is called in run names: the key's last part (`lr_factor`), or the whole
/// key when another grid's key ends the same (`model.encoder.n_layers`).
fn labels(grids: &[Grid]) -> Vec<String> {
    let last = |key: &str| key.rsplit('.').next().unwrap_or(key).to_string();
    grids
        .iter()
        .map(|g| {
            let short = last(&g.key);
            let shared = grids.iter().filter(|o| last(&o.key) == short).count() > 1;
            if shared {
                g.key.clone()
            } else {
                short
            }
        })
        .collect()
}

/// A value as a piece of a directory name: letters, digits, `.`, `+` and `-` kept, any run
/// of other characters (quotes, brackets, spaces, commas, slashes) one `_`, none at the ends:
/// `"adamw"` → `adamw`, `[1, 2]` → `1_2`.
fn file_name_part(value: &str) -> String {
    let mut part = String::new();
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
            part.push(c);
        } else if !part.ends_with('_') {
            part.push('_');
        }
    }
    let part = part.trim_matches('_');
    match part {
        "" | "." | ".." => "_".to_string(),
        _ => part.to_string(),
    }
}

/// The `--set`s of one run: the sweep's own, then its grid values, its seed and its
/// directory (quoted as a TOML string, so that no directory name reads as another type).
fn run_overrides(
    fixed: &[String],
    grids: &[Grid],
    point: &[usize],
    seed: u64,
    out: &Path,
    name: &str,
) -> Vec<String> {
    let dir = toml::Value::String(out.join(name).to_string_lossy().into_owned());
    fixed
        .iter()
        .cloned()
        .chain(
            grids
                .iter()
                .zip(point)
                .map(|(g, &i)| format!("{}={}", g.key, g.values[i])),
        )
        .chain([format!("{SEED_KEY}={seed}"), format!("{RUN_DIR_KEY}={dir}")])
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running: N children at a time

/// The first Ctrl-C or SIGTERM sets the flag: no new run starts, and the running ones, which
/// got the same Ctrl-C from the terminal, checkpoint and exit. A second one exits at once.
fn stop_on_signals() -> anyhow::Result<std::sync::Arc<AtomicBool>> {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let signals = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if signals.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "stopping the sweep: running runs write a checkpoint, no new run starts \
                 (Ctrl-C again to exit at once)"
            );
            flag.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// Skips the finished runs and trains the others, `args.parallel` at a time, each thread
/// waiting on one child process at a time.
fn run_all(plan: &Plan, args: &SweepArgs<'_>, stop: &AtomicBool) -> anyhow::Result<Vec<Outcome>> {
    let total = plan.runs.len();
    let mut outcomes = vec![Outcome::NotStarted; total];
    let mut pending = Vec::new();
    for (i, run) in plan.runs.iter().enumerate() {
        if run.dir.file(RunDir::REPORT_JSON).is_file() {
            eprintln!("[{}/{total}] {}: finished before, skipped", i + 1, run.name);
            outcomes[i] = Outcome::Skipped;
        } else {
            pending.push(i);
        }
    }
    if pending.is_empty() {
        return Ok(outcomes);
    }
    prepare_data(plan, args)?;
    let exe = std::env::current_exe().context("cannot find the s2s binary to run each run")?;
    let next = AtomicUsize::new(0);
    let results = Mutex::new(outcomes);
    std::thread::scope(|scope| {
        for _ in 0..args.parallel.min(pending.len()) {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Some(&i) = pending.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    break;
                };
                let outcome = train_one(&exe, args, &plan.runs[i], i + 1, total, stop);
                if let Ok(mut results) = results.lock() {
                    results[i] = outcome;
                }
            });
        }
    });
    results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a sweep thread panicked"))
}

/// Corpora named by the configs are prepared here, once, before runs that would each
/// prepare them at the same time start.
fn prepare_data(plan: &Plan, args: &SweepArgs<'_>) -> anyhow::Result<()> {
    let data_dir = s2s_data::data_dir();
    let mut prepared: Vec<s2s_infer::DataConfig> = Vec::new();
    for run in &plan.runs {
        let config = read_config_with(args.config_path, &run.overrides)?;
        if config.data.corpus.is_some() && !prepared.contains(&config.data) {
            config
                .data
                .split_paths(&data_dir)
                .with_context(|| format!("while preparing the data of the run {}", run.name))?;
            prepared.push(config.data);
        }
    }
    Ok(())
}

/// Trains one run in a child `s2s train` (resuming it when it has checkpoints) with its
/// output in `<run>/sweep.log`, and prints how it ended.
fn train_one(
    exe: &Path,
    args: &SweepArgs<'_>,
    run: &Run,
    number: usize,
    total: usize,
    stop: &AtomicBool,
) -> Outcome {
    let tag = format!("[{number}/{total}] {}", run.name);
    let log_path = run.dir.file(RUN_LOG);
    let resume = !s2s_train::checkpoint::list_checkpoints(run.dir.path()).is_empty();
    let mut command = Command::new(exe);
    command
        .arg("train")
        .arg(args.config_path)
        .arg("--no-tui")
        .stdin(Stdio::null());
    for o in &run.overrides {
        command.arg("--set").arg(o);
    }
    if let Some(kind) = args.backend {
        command.arg("--backend").arg(kind.to_string());
    }
    if resume {
        command.arg("--resume");
    }
    let started = Instant::now();
    let status = open_log(&log_path, &command).and_then(|(out, err)| {
        eprintln!("{tag}: {}", if resume { "resumed" } else { "started" });
        command
            .stdout(out)
            .stderr(err)
            .status()
            .with_context(|| format!("cannot start {}", exe.display()))
    });
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            eprintln!("{tag}: failed ({e:#})");
            return Outcome::Failed(None);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let report = run.dir.report().ok().flatten();
    match (status.success(), report) {
        (true, Some(report)) => {
            eprintln!("{tag}: finished in {seconds:.0} s ({})", headline(&report));
            Outcome::Finished
        }
        (false, _) if stop.load(Ordering::SeqCst) => {
            eprintln!("{tag}: interrupted (see {})", log_path.display());
            Outcome::Interrupted
        }
        (success, _) => {
            let why = match (success, status.code()) {
                (true, _) => "exit 0 without a report".to_string(),
                (false, Some(code)) => format!("exit {code}"),
                (false, None) => "killed by a signal".to_string(),
            };
            eprintln!("{tag}: failed ({why}, see {})", log_path.display());
            Outcome::Failed(status.code())
        }
    }
}

/// The run's log file, opened for appending, with the command line written first; one
/// handle for stdout and one for stderr.
fn open_log(path: &Path, command: &Command) -> anyhow::Result<(std::fs::File, std::fs::File)> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let words: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy()))
        .collect();
    writeln!(file, "$ {}", words.join(" "))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let err = file
        .try_clone()
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok((file, err))
}

/// The report's main score: BLEU, else ROUGE-L, else the validation loss.
fn headline(report: &TrainReport) -> String {
    match (report.valid_bleu, report.valid_rouge_l) {
        (Some(bleu), _) => format!("BLEU {bleu:.2}"),
        (None, Some(rouge)) => format!("ROUGE-L {rouge:.2}"),
        (None, None) => format!("valid loss {:.4}", report.valid_loss),
    }
}

// ---------------------------------------------------------------------------------------------
// The summary: one row per grid point, seeds aggregated

/// `sweep.json`.
#[derive(Debug, Serialize)]
struct Summary {
    /// The experiment config the sweep ran.
    config: PathBuf,
    /// The grid keys, in the order given.
    grid: Vec<String>,
    /// The seeds each grid point was asked for.
    seeds: Vec<u64>,
    rows: Vec<Row>,
}

/// One grid point.
#[derive(Debug, Serialize)]
struct Row {
    /// Each grid key's value here (a TOML value as JSON; a bare word as a string).
    values: BTreeMap<String, serde_json::Value>,
    /// The same values as written on the command line, in grid order.
    #[serde(skip)]
    written: Vec<String>,
    /// Runs finished (with a `report.json`), and their seeds and names.
    n: usize,
    seeds: Vec<u64>,
    runs: Vec<String>,
    valid_loss: Option<Stat>,
    valid_bleu: Option<Stat>,
    valid_chrf: Option<Stat>,
    valid_rouge_l: Option<Stat>,
    seconds: Option<Stat>,
}

/// A metric over the seeds that report it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct Stat {
    mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); `None` for one seed.
    std: Option<f64>,
    n: usize,
}

impl Stat {
    /// `None` for no values.
    fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (squares / (n - 1) as f64).sqrt()
        });
        Some(Self { mean, std, n })
    }
}

/// Reads every finished run's `report.json` and aggregates them per grid point.
fn summarize(plan: &Plan, config: &Path) -> anyhow::Result<Summary> {
    let mut rows = Vec::new();
    for (point, indices) in plan.points.iter().enumerate() {
        let mut reports: Vec<(&Run, TrainReport)> = Vec::new();
        for run in plan.runs.iter().filter(|r| r.point == point) {
            let report = run
                .dir
                .report()
                .with_context(|| format!("in the run {}", run.name))?;
            if let Some(report) = report {
                reports.push((run, report));
            }
        }
        let stat = |metric: fn(&TrainReport) -> Option<f64>| {
            Stat::of(
                &reports
                    .iter()
                    .filter_map(|(_, r)| metric(r))
                    .collect::<Vec<_>>(),
            )
        };
        let written: Vec<String> = plan
            .grids
            .iter()
            .zip(indices)
            .map(|(g, &i)| g.values[i].clone())
            .collect();
        rows.push(Row {
            values: plan
                .grids
                .iter()
                .zip(&written)
                .map(|(g, v)| (g.key.clone(), toml_value_as_json(v)))
                .collect(),
            written,
            n: reports.len(),
            seeds: reports.iter().map(|(r, _)| r.seed).collect(),
            runs: reports.iter().map(|(r, _)| r.name.clone()).collect(),
            valid_loss: stat(|r| Some(r.valid_loss)),
            valid_bleu: stat(|r| r.valid_bleu),
            valid_chrf: stat(|r| r.valid_chrf),
            valid_rouge_l: stat(|r| r.valid_rouge_l),
            seconds: stat(|r| Some(r.seconds)),
        });
    }
    Ok(Summary {
        config: config.to_path_buf(),
        grid: plan.grids.iter().map(|g| g.key.clone()).collect(),
        seeds: plan.seeds.clone(),
        rows,
    })
}

/// A `--grid` value as `--set` reads it (TOML, else a bare-word string), as JSON.
fn toml_value_as_json(text: &str) -> serde_json::Value {
    serde_json::to_value(s2s_infer::config::override_value(text))
        .unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// `sweep.md`: a line on what the numbers are, then the table (also printed on stdout).
fn markdown(summary: &Summary) -> String {
    type Column = (&'static str, fn(&Row) -> Option<Stat>, usize);
    let columns: [Column; 5] = [
        ("valid loss", |r| r.valid_loss, 4),
        ("BLEU", |r| r.valid_bleu, 2),
        ("chrF", |r| r.valid_chrf, 2),
        ("ROUGE-L", |r| r.valid_rouge_l, 2),
        ("seconds", |r| r.seconds, 0),
    ];
    // A metric no run reports (BLEU of a summarizer) gets no column.
    let shown: Vec<&Column> = columns
        .iter()
        .filter(|(_, stat, _)| summary.rows.iter().any(|r| stat(r).is_some()))
        .collect();
    let seeds: Vec<String> = summary.seeds.iter().map(u64::to_string).collect();
    let mut s = format!(
        "# Sweep of {}\n\nPer grid point: mean ± sample standard deviation over the seeds \
         ({}) of each run's final report; n: runs finished.\n\n",
        summary.config.display(),
        seeds.join(", ")
    );
    let header: Vec<&str> = summary
        .grid
        .iter()
        .map(String::as_str)
        .chain(["n"])
        .chain(shown.iter().map(|(name, _, _)| *name))
        .collect();
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for row in &summary.rows {
        let cells: Vec<String> = row
            .written
            .iter()
            .cloned()
            .chain([row.n.to_string()])
            .chain(shown.iter().map(|(_, stat, digits)| match stat(row) {
                None => "–".to_string(),
                Some(Stat {
                    mean, std: None, ..
                }) => format!("{mean:.digits$}"),
                Some(Stat {
                    mean,
                    std: Some(std),
                    ..
                }) => format!("{mean:.digits$} ± {std:.digits$}"),
            }))
            .map(|cell| cell.replace('|', "\\|"))
            .collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

/// Writes `sweep.md` and `sweep.json` into `out` and prints the table.
fn write_summary(summary: &Summary, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let table = markdown(summary);
    let json = serde_json::to_string_pretty(summary).context("cannot serialise the summary")?;
    for (name, text) in [(SUMMARY_MARKDOWN, &table), (SUMMARY_JSON, &json)] {
        let path = out.join(name);
        s2s_data::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{table}");
    eprintln!(
        "sweep summary in {} and {}",
        out.join(SUMMARY_MARKDOWN).display(),
        out.join(SUMMARY_JSON).display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grid_values_split_at_top_level_commas_only() {
        let grid = parse_grid("training.lr_factor=0.5,1,2").unwrap();
        assert_eq!(grid.key, "training.lr_factor");
        assert_eq!(grid.values, ["0.5", "1", "2"]);
        let grid = parse_grid("model.x=[1,2], [3,4],{ a = 1, b = 2 }").unwrap();
        assert_eq!(grid.values, ["[1,2]", "[3,4]", "{ a = 1, b = 2 }"]);
        let grid = parse_grid(r#"k="a,b",'c,d',"e\",f",bare"#).unwrap();
        assert_eq!(grid.values, [r#""a,b""#, "'c,d'", r#""e\",f""#, "bare"]);
    }

    #[test]
    fn bad_grids_are_refused_with_one_sentence() {
        let err = |text: &str| parse_grid(text).unwrap_err().to_string();
        assert!(err("training.lr_factor").contains("expected key=value1,value2"));
        assert!(err("training.lr_factor=").contains("gives no values"));
        assert!(err("training.lr_factor=1,,2").contains("an empty value"));
        assert!(err("model.x=[1,2").contains("not closed"));
        assert!(err("model.x=1]").contains("not closed"));
        assert!(err("training..x=1").contains("not a dotted key"));
        assert!(err("k=1,2,1").contains("lists 1 twice"));
    }

    #[test]
    fn keys_may_not_repeat_or_be_set_twice() {
        let grids = |texts: &[&str]| texts.iter().map(|t| parse_grid(t).unwrap()).collect();
        let g: Vec<Grid> = grids(&["a.b=1,2", " a . b =3"]);
        assert!(check_keys(&g, &[])
            .unwrap_err()
            .to_string()
            .contains("given twice"));
        let g: Vec<Grid> = grids(&["a.b=1,2"]);
        let both = check_keys(&g, &["a.b=3".into()]).unwrap_err().to_string();
        assert!(both.contains("both in --grid and in --set"), "{both}");
        let g: Vec<Grid> = grids(&["training.seed=1,2"]);
        assert!(check_keys(&g, &[])
            .unwrap_err()
            .to_string()
            .contains("--seeds"));
        assert!(check_keys(&[], &["run_dir=x".into()]).is_err());
    }

    #[test]
    fn seeds_are_distinct_whole_numbers() {
        assert_eq!(parse_seeds("1, 2,3").unwrap(), [1, 2, 3]);
        assert!(parse_seeds("1,x")
            .unwrap_err()
            .to_string()
            .contains("`x` is not a whole"));
        assert!(parse_seeds("1.5").is_err());
        assert!(parse_seeds("-1").is_err());
        assert!(parse_seeds("").is_err());
        assert!(parse_seeds("2,2")
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn combinations_vary_the_first_grid_slowest_and_names_are_file_names() {
        let grids = vec![
            parse_grid("a.x=1,2").unwrap(),
            parse_grid("b.y=p,q,r").unwrap(),
        ];
        let points = cartesian(&grids);
        assert_eq!(points.len(), 6);
        assert_eq!(points[0], [0, 0]);
        assert_eq!(points[1], [0, 1]);
        assert_eq!(points[3], [1, 0]);
        assert_eq!(cartesian(&[]), vec![Vec::<usize>::new()]);
        let shared = [
            parse_grid("model.encoder.n_layers=1").unwrap(),
            parse_grid("model.decoder.n_layers=1").unwrap(),
            parse_grid("model.dropout=1").unwrap(),
        ];
        assert_eq!(
            labels(&shared),
            [
                "model.encoder.n_layers",
                "model.decoder.n_layers",
                "dropout"
            ]
        );
        assert_eq!(file_name_part("0.5"), "0.5");
        assert_eq!(file_name_part("\"adamw\""), "adamw");
        assert_eq!(file_name_part("[1, 2]"), "1_2");
        assert_eq!(file_name_part("a/../b"), "a_.._b");
        assert_eq!(file_name_part(".."), "_");
        assert_eq!(file_name_part("1e-4"), "1e-4");
    }

    #[test]
    fn the_run_directory_is_a_toml_string_whatever_its_name() {
        let grids = vec![parse_grid("training.lr_factor=0.5").unwrap()];
        let sets = run_overrides(
            &["training.epochs=1".into()],
            &grids,
            &[0],
            7,
            Path::new("runs/x-sweep"),
            "lr_factor=0.5,seed=7",
        );
        assert_eq!(
            sets,
            [
                "training.epochs=1",
                "training.lr_factor=0.5",
                "training.seed=7",
                "run_dir=\"runs/x-sweep/lr_factor=0.5,seed=7\""
            ]
        );
    }

    #[test]
    fn the_spread_is_the_sample_standard_deviation() {
        let s = Stat::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.mean, 5.0);
        // Population std is 2; the sample std divides by n − 1 = 7.
        assert!((s.std.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(&[3.0]).unwrap().std, None);
        assert_eq!(Stat::of(&[]), None);
    }

    #[test]
    fn grid_values_read_as_toml_in_the_json() {
        assert_eq!(toml_value_as_json("0.5"), serde_json::json!(0.5));
        assert_eq!(toml_value_as_json("2"), serde_json::json!(2));
        assert_eq!(toml_value_as_json("[1,2]"), serde_json::json!([1, 2]));
        assert_eq!(toml_value_as_json("adamw"), serde_json::json!("adamw"));
        assert_eq!(toml_value_as_json("\"adamw\""), serde_json::json!("adamw"));
    }
}
