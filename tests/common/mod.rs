//! What the end-to-end tests (cli.rs, commands.rs, reliability.rs) share: the fixtures, the
//! real `s2s` binary run in a scratch directory, and the tiny model they train.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of tests/fixtures (see tests/fixtures/README.md).
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// `s2s args…` in `cwd`, with a data directory there (nothing is fetched), stdout and stderr
/// piped and no stdin; for a process to spawn, signal or kill.
pub fn command(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_s2s"));
    command
        .args(args)
        .current_dir(cwd)
        .env("S2S_DATA_DIR", cwd.join("no-data-needed"))
        // A debug log would fill the stderr pipe of a long-running command nobody reads.
        .env_remove("S2S_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `s2s args…` to the end, with `stdin` as its input.
pub fn s2s(args: &[&str], stdin: Option<&str>, cwd: &Path) -> Output {
    s2s_with_env(args, stdin, cwd, &[])
}

/// [`s2s`] with extra environment variables.
pub fn s2s_with_env(
    args: &[&str],
    stdin: Option<&str>,
    cwd: &Path,
    envs: &[(&str, &str)],
) -> Output {
    let mut command = command(args, cwd);
    command.envs(envs.iter().copied());
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().unwrap();
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that fails before reading its input closes the pipe; its exit status and
        // stderr are what the tests check, so a broken pipe here is not an error.
        match pipe.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
    }
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The sections of the tiny model the end-to-end tests train (1+1 layers of width 32, a
/// 300-token BPE); the caller adds `[data]` with its files and `[training]`.
pub fn tiny_model(dropout: f64) -> String {
    format!(
        r#"[model]
max_positions = 64
dropout = {dropout:?}
[model.encoder]
d_model = 32
n_heads = 2
n_layers = 1
d_ff = 64
[model.decoder]
d_model = 32
n_heads = 2
n_layers = 1
d_ff = 64
[data.tokenizer]
vocab_size = 300
"#
    )
}

/// Every float parameter of the run's `model.mpk` (loaded on ndarray), in module order: what
/// "the same weights" means for two runs.
pub fn weights(run: &Path) -> Vec<Vec<f32>> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::prelude::*;
    type B = burn::backend::NdArray<f32>;
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0
                .push(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let run = s2s_infer::RunDir::open(run).unwrap();
    let config = run.config().unwrap();
    let (_, model) = run.load_model::<B>(&config, &Default::default()).unwrap();
    assert_eq!(model.family(), config.model.family);
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}
