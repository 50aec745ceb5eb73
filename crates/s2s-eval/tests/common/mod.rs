//! What the two parity tests share: golden files written by a Python reference (sacrebleu for
//! parity.rs, rouge-score for rouge_parity.rs) in a fixtures directory.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its own part

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A fixtures directory under `crates/s2s-eval/tests/`.
pub fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir)
}

/// `golden.json` of a fixtures directory.
pub fn golden(dir: &str) -> Value {
    let text = std::fs::read_to_string(fixtures(dir).join("golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Lines as the reference reads a file: split on `\n` only, no final empty line.
pub fn read_lines(dir: &str, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures(dir).join(name)).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// Floats are stored as Python reprs: `str::parse` rounds them back to the exact same `f64`,
/// which a JSON number parser does not guarantee.
pub fn f64_of(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}
