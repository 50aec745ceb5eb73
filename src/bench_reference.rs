//! The `pytorch` column of `s2s bench`: the same architecture trained and decoded in PyTorch
//! eager by `benches/reference/seq2seq_torch.py`, on the token batches the s2s backends train on.
//! The script is compiled into the binary and written beside the input it reads, so the column
//! works from any directory; it runs under the Python of `scripts/setup-tch.sh`'s venv.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use burn::tensor::backend::AutodiffBackend;
use s2s_infer::ExperimentConfig;
use s2s_train::{BenchOptions, BenchResult, PreparedData};
use serde::{Deserialize, Serialize};

use crate::backend::{compiled, dispatch, BackendTask};
use crate::backends::run_with_limit;

/// One backend's line of JSON from its worker process (`s2s bench --worker`); the PyTorch
/// reference prints the same.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerLine {
    pub backend: String,
    pub device: String,
    pub result: BenchResult,
    /// Peak resident memory of the worker process (VmHWM), bytes; host memory only.
    pub peak_rss_bytes: Option<u64>,
}

/// The reference script, as shipped in the repository.
const SCRIPT: &str = include_str!("../benches/reference/seq2seq_torch.py");

/// PyTorch version `scripts/setup-tch.sh` installs (and libtorch for the tch backend is).
const TORCH_VERSION: &str = "2.9.0";

/// Environment variable naming another Python with torch installed.
const PYTHON_ENV: &str = "S2S_TORCH_PYTHON";

/// The Python that runs the reference: `$S2S_TORCH_PYTHON`, else the venv of
/// `scripts/setup-tch.sh` in the s2s cache; it must import torch.
///
/// # Errors
/// One sentence saying what is missing and how to install it (the column is then skipped).
pub(crate) fn python() -> Result<PathBuf, String> {
    let python = match std::env::var_os(PYTHON_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => s2s_data::data_dir()
            .join(format!("torch-{TORCH_VERSION}"))
            .join("bin")
            .join("python"),
    };
    let imports = Command::new(&python)
        .args(["-c", "import torch"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if imports {
        Ok(python)
    } else {
        Err(format!(
            "PyTorch is not installed ({} cannot import torch); run scripts/setup-tch.sh to \
             install PyTorch {TORCH_VERSION}, or set {PYTHON_ENV} to a Python that has torch",
            python.display()
        ))
    }
}

struct InputTask<'a> {
    config: &'a ExperimentConfig,
    data: &'a PreparedData,
    options: BenchOptions,
}

impl BackendTask for InputTask<'_> {
    type Output = s2s_train::ReferenceInput;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output> {
        let threads = crate::backend::effective_threads(self.config.training.threads);
        Ok(s2s_train::reference_input::<B>(
            self.config,
            self.data,
            self.options,
            threads,
            &device,
        )?)
    }
}

/// Writes the script and its input (the batches of `config` over `data`) under
/// `out/reference/`, runs it with `python` for at most `timeout` seconds and reads its JSON line.
pub(crate) fn run(
    python: &Path,
    config: &ExperimentConfig,
    data: &PreparedData,
    options: BenchOptions,
    out: &Path,
    timeout: u64,
) -> anyhow::Result<WorkerLine> {
    // The batches come from the data loader alone; any compiled backend yields the same ids.
    let Some(&kind) = compiled().first() else {
        bail!("no backend is compiled in");
    };
    let input = dispatch(
        kind,
        InputTask {
            config,
            data,
            options,
        },
    )?;
    let dir = out.join("reference");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let script = dir.join("seq2seq_torch.py");
    let input_path = dir.join("input.json");
    s2s_data::write_atomic(&script, SCRIPT.as_bytes())
        .with_context(|| format!("cannot write {}", script.display()))?;
    s2s_data::write_atomic(&input_path, serde_json::to_string(&input)?.as_bytes())
        .with_context(|| format!("cannot write {}", input_path.display()))?;

    let mut command = Command::new(python);
    command
        .arg(&script)
        .arg(&input_path)
        .stderr(Stdio::inherit());
    let Some(output) = run_with_limit(command, Duration::from_secs(timeout))? else {
        bail!("stopped after {timeout} s (--timeout)");
    };
    if !output.status.success() {
        bail!(
            "the PyTorch reference {}",
            crate::backends::describe_exit(output.status)
        );
    }
    let line = output.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("unreadable reference output: {line}"))
}
