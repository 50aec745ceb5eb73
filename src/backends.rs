//! `s2s backends`: which backends this binary has, and whether each one runs here.
//!
//! Each backend is probed in a child process (`s2s backends --probe <name>`): a GPU driver that
//! crashes (Mesa's lavapipe has segfaulted in pipeline creation) or hangs must not take the
//! listing down with it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::backend::{compiled, dispatch, BackendKind, BackendTask};

/// What a probe prints (one JSON line on stdout).
#[derive(Debug, Serialize, Deserialize)]
pub struct Probe {
    pub backend: String,
    /// The device it ran on, as the backend names it.
    pub device: String,
    /// Milliseconds for the probe's forward and backward pass, first call included (kernel
    /// compilation on GPU backends).
    pub millis: f64,
    /// The gradient sum the probe computed; identical inputs everywhere, so it should agree
    /// across backends up to float rounding.
    pub checksum: f64,
}

/// A forward and backward pass through the operations a Transformer step uses (matmul,
/// softmax, layer-norm-like reductions, an embedding gather), on fixed inputs.
struct ProbeTask {
    kind: BackendKind,
}

impl BackendTask for ProbeTask {
    type Output = Probe;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Probe> {
        let name = describe_device::<B>(self.kind, &device);
        let started = Instant::now();
        let x = Tensor::<B, 1, Int>::arange(0..64 * 96, &device)
            .reshape([64, 96])
            .float()
            .div_scalar(1000.0)
            .sin()
            .require_grad();
        let w = Tensor::<B, 1, Int>::arange(0..96 * 48, &device)
            .reshape([96, 48])
            .float()
            .div_scalar(700.0)
            .cos();
        let ids = Tensor::<B, 1, Int>::from_ints([3, 1, 4, 1, 5, 9, 2, 6], &device);
        let h = x.clone().matmul(w);
        let h = (h.clone() - h.clone().mean_dim(1)) / (h.var(1) + 1e-5).sqrt();
        let p = burn::tensor::activation::softmax(h, 1);
        let loss = p.select(0, ids).powf_scalar(2.0).sum();
        let grads = loss.backward();
        let grad = x
            .grad(&grads)
            .context("the probe's input has no gradient")?;
        let checksum: f32 = grad.abs().sum().into_scalar().elem();
        Ok(Probe {
            backend: self.kind.to_string(),
            device: name,
            millis: started.elapsed().as_secs_f64() * 1e3,
            checksum: f64::from(checksum),
        })
    }
}

pub(crate) fn describe_device<B: Backend>(kind: BackendKind, device: &B::Device) -> String {
    match kind {
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => describe_wgpu(),
        #[cfg(feature = "tch")]
        BackendKind::Tch => {
            let cuda = tch::Cuda::device_count();
            format!("{device:?} (libtorch sees {cuda} CUDA device(s))")
        }
        _ => format!("{device:?}"),
    }
}

/// The adapter wgpu picks for the default device: name, type, driver and graphics API.
#[cfg(feature = "wgpu")]
fn describe_wgpu() -> String {
    use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, RuntimeOptions, WgpuDevice};
    let setup =
        init_setup::<AutoGraphicsApi>(&WgpuDevice::DefaultDevice, RuntimeOptions::default());
    let info = setup.adapter.get_info();
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    )
}

/// `s2s backends --probe <kind>`: runs the probe in this process and prints its JSON line.
pub fn probe(kind: BackendKind) -> anyhow::Result<()> {
    crate::backend::ensure_compiled(kind)?;
    let probe = dispatch(kind, ProbeTask { kind })?;
    println!("{}", serde_json::to_string(&probe)?);
    Ok(())
}

/// How one backend fared in its child process.
#[derive(Debug)]
pub enum Status {
    Usable(Probe),
    /// Not usable: one sentence (the error, the signal, or the time-out).
    Failed(String),
}

/// What a child process left: its exit status and what it wrote to the pipes it was given.
pub(crate) struct ChildOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with stdout piped (stderr as the caller set it), reading the pipes while it
/// runs so that a chatty child cannot fill one and stall; `None` when it ran past `limit` and
/// was killed.
pub(crate) fn run_with_limit(
    mut command: Command,
    limit: Duration,
) -> anyhow::Result<Option<ChildOutput>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start a child s2s process")?;
    fn drain(
        pipe: Option<impl Read + Send + 'static>,
    ) -> std::thread::JoinHandle<std::io::Result<String>> {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_string(&mut text)?;
            }
            Ok(text)
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |h: std::thread::JoinHandle<std::io::Result<String>>| {
        h.join()
            .map_err(|_| anyhow::anyhow!("a child process's output could not be read"))?
            .context("cannot read a child process's output")
    };
    let (stdout, stderr) = (read(stdout)?, read(stderr)?);
    Ok(status.map(|status| ChildOutput {
        status,
        stdout,
        stderr,
    }))
}

/// Runs `s2s backends --probe <kind>` in a child process, with a time limit.
pub fn probe_in_child(kind: BackendKind, limit: Duration) -> anyhow::Result<Status> {
    let exe = std::env::current_exe().context("cannot find the s2s executable")?;
    let mut command = Command::new(exe);
    command
        .args(["backends", "--probe", &kind.to_string()])
        .env(crate::backend::PROBING, "1")
        .env("RUST_BACKTRACE", "0")
        .stderr(Stdio::piped());
    let Some(out) = run_with_limit(command, limit)? else {
        return Ok(Status::Failed(format!(
            "no answer within {} s (killed)",
            limit.as_secs()
        )));
    };
    if out.status.success() {
        let line = out.stdout.lines().last().unwrap_or_default();
        let probe: Probe = serde_json::from_str(line)
            .with_context(|| format!("unreadable probe output: {line}"))?;
        return Ok(Status::Usable(probe));
    }
    Ok(Status::Failed(failure(out.status, &out.stderr)))
}

/// A crash by signal in words, or the exit status.
pub(crate) fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            return format!("crashed: killed by signal {signal}{name}");
        }
    }
    format!("failed ({status})")
}

fn failure(status: std::process::ExitStatus, stderr: &str) -> String {
    let exit = describe_exit(status);
    if exit.starts_with("crashed") {
        return exit;
    }
    // A panic: its message, the line after the first "panicked at" (a library's panic in a
    // device thread comes first; the main thread's follows from it), cut to one line's length.
    let lines: Vec<&str> = stderr.lines().map(str::trim).collect();
    if let Some(at) = lines.iter().position(|l| l.contains("panicked at")) {
        if let Some(message) = lines.get(at + 1).filter(|l| !l.is_empty()) {
            let short: String = message.chars().take(160).collect();
            let cut = if short.len() < message.len() {
                "…"
            } else {
                ""
            };
            return format!("{exit}: {short}{cut}");
        }
    }
    // Otherwise the last meaningful line: our "error: …" sentence.
    let last = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: "))
        .rev()
        .find(|l| l.starts_with("error:") || l.contains("panicked") || !l.starts_with(' '))
        .unwrap_or("no message");
    format!("{exit}: {last}")
}

/// `s2s backends`: a table of every backend s2s knows.
pub fn list(limit: Duration) -> anyhow::Result<()> {
    let have = compiled();
    println!(
        "{:<8} {:<12} {:<10} {:>9} {:>12}  device",
        "backend", "compiled", "status", "probe ms", "checksum"
    );
    for kind in [
        BackendKind::Ndarray,
        BackendKind::Flex,
        BackendKind::Wgpu,
        BackendKind::Tch,
        BackendKind::Cuda,
    ] {
        if !have.contains(&kind) {
            println!(
                "{:<8} {:<12} {:<10} {:>9} {:>12}  (rebuild with --features {kind})",
                kind.to_string(),
                "no",
                "-",
                "-",
                "-"
            );
            continue;
        }
        match probe_in_child(kind, limit)? {
            Status::Usable(p) => println!(
                "{:<8} {:<12} {:<10} {:>9.1} {:>12.6}  {}",
                kind.to_string(),
                "yes",
                "usable",
                p.millis,
                p.checksum,
                p.device
            ),
            Status::Failed(why) => println!(
                "{:<8} {:<12} {:<10} {:>9} {:>12}  {why}",
                kind.to_string(),
                "yes",
                "unusable",
                "-",
                "-"
            ),
        }
    }
    Ok(())
}
