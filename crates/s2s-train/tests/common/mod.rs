//! What the end-to-end tests of s2s-train share: the fixture verses, a tiny Transformer's
//! config, and a model's weights as one flat vector.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use s2s_train::{ExperimentConfig, PreparedData};

/// The backend the weights are read back on.
pub type Inner = NdArray<f32>;

/// A file of the repository's `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A Transformer of width 16, one layer each side, a 300-token BPE, no dropout, limits of 64
/// tokens, and the caller's `sections` (`[training]` with its keys, then any other section).
/// The data comes from [`fixture_data`].
pub fn tiny_config(sections: &str) -> ExperimentConfig {
    ExperimentConfig::from_toml(&format!(
        r#"
[model]
max_positions = 64
dropout = 0.0
[model.encoder]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 32
[model.decoder]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 32
[data]
train = "x"
valid = "x"
max_source_len = 64
max_target_len = 64
[data.tokenizer]
vocab_size = 300
{sections}
"#
    ))
    .unwrap()
}

/// The first `train` fixture training pairs (all with `usize::MAX`) and the first `valid`
/// validation pairs.
pub fn fixture_data(train: usize, valid: usize) -> PreparedData {
    let train_pairs = s2s_data::read_pairs(&fixture("bible-en-fr-train.tsv")).unwrap();
    let valid_pairs = s2s_data::read_pairs(&fixture("bible-en-fr-valid.tsv")).unwrap();
    PreparedData {
        train: train_pairs[..train.min(train_pairs.len())].to_vec(),
        valid: valid_pairs[..valid.min(valid_pairs.len())].to_vec(),
        test: Vec::new(),
        bert: None,
    }
}

/// Every float weight of `model`, flattened in visiting order.
pub fn flat<M: Module<Inner>>(model: &M) -> Vec<f32> {
    struct Flat(Vec<f32>);
    impl ModuleVisitor<Inner> for Flat {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Inner, D>>) {
            self.0
                .extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let mut flat = Flat(Vec::new());
    model.visit(&mut flat);
    flat.0
}
