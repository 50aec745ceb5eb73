//! A BERT-compatible encoder (Devlin et al., 2019) that loads Hugging Face checkpoints:
//! word + learned position + token-type embeddings, an embedding LayerNorm, then post-norm
//! layers of self-attention and a GELU feed-forward block. Dimensions come from the checkpoint's
//! `config.json`; weights from its `model.safetensors` through burn-store.
//!
//! # Key map (Hugging Face → s2s)
//!
//! | Hugging Face (`bert.` prefix optional) | s2s |
//! |---|---|
//! | `embeddings.word_embeddings.weight` | `embeddings.word.weight` |
//! | `embeddings.position_embeddings.weight` | `embeddings.position.weight` |
//! | `embeddings.token_type_embeddings.weight` | `embeddings.token_type.weight` |
//! | `embeddings.LayerNorm.{weight,bias}` | `embeddings.norm.{gamma,beta}` |
//! | `encoder.layer.N.attention.self.{query,key,value}.*` | `layers.N.attention.{query,key,value}.*` |
//! | `encoder.layer.N.attention.output.dense.*` | `layers.N.attention.output.*` |
//! | `encoder.layer.N.attention.output.LayerNorm.{weight,bias}` | `layers.N.attention_norm.{gamma,beta}` |
//! | `encoder.layer.N.intermediate.dense.*` | `layers.N.ffn.inner.*` |
//! | `encoder.layer.N.output.dense.*` | `layers.N.ffn.outer.*` |
//! | `encoder.layer.N.output.LayerNorm.{weight,bias}` | `layers.N.ffn_norm.{gamma,beta}` |
//! | `embeddings.position_ids` (int64 buffer), `pooler.*` | not loaded |
//!
//! Linear weights are transposed from PyTorch's `[out, in]` to Burn's `[in, out]` (burn-store's
//! `PyTorchToBurnAdapter`).

use std::path::Path;

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;
use burn_store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use serde::Deserialize;

use crate::attention::{key_padding_mask, MultiHeadAttention, MultiHeadAttentionConfig};
use crate::feedforward::Activation;
use crate::feedforward::{FeedForward, FeedForwardConfig};

/// What can go wrong reading a BERT checkpoint; each message names the file or tensor.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is not a BERT config.json s2s can use: {message}")]
    Config { path: String, message: String },
    #[error("{path} does not match the BERT its config.json describes: {message}")]
    Weights { path: String, message: String },
}

/// The fields of a Hugging Face BERT `config.json` that s2s reads (others are ignored).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// Must be `gelu` (the erf form, as Hugging Face's `"gelu"`).
    pub hidden_act: String,
    /// Dropout inside the encoder when it is fine-tuned. Default: 0.1.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
}

fn default_dropout() -> f64 {
    0.1
}

impl BertConfig {
    /// Parses and checks `config.json` text; `path` names the file in errors.
    pub fn from_json(text: &str, path: &str) -> Result<Self, BertError> {
        let config: Self = serde_json::from_str(text).map_err(|e| BertError::Config {
            path: path.into(),
            message: e.to_string(),
        })?;
        let bad = |message: String| {
            Err(BertError::Config {
                path: path.into(),
                message,
            })
        };
        if config.hidden_act != "gelu" {
            return bad(format!(
                "hidden_act is \"{}\", only \"gelu\" is supported",
                config.hidden_act
            ));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            ));
        }
        Ok(config)
    }

    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self, BertError> {
        Self::load_file(&dir.join("config.json"))
    }

    /// Reads a Hugging Face BERT `config.json` at `path`.
    pub fn load_file(path: &Path) -> Result<Self, BertError> {
        let text = std::fs::read_to_string(path).map_err(|e| BertError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// A randomly initialised encoder of this shape (load weights with [`BertEncoder::load`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> BertEncoder<B> {
        let norm = || {
            LayerNormConfig::new(self.hidden_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let embedding = |n| EmbeddingConfig::new(n, self.hidden_size).init(device);
        let layers = (0..self.num_hidden_layers)
            .map(|_| BertLayer {
                attention: MultiHeadAttentionConfig::new(
                    self.hidden_size,
                    self.num_attention_heads,
                )
                .with_dropout(self.hidden_dropout_prob)
                .init(device),
                attention_norm: norm(),
                ffn: FeedForwardConfig::new(self.hidden_size, self.intermediate_size)
                    .with_dropout(0.0)
                    .with_activation(Activation::Gelu)
                    .init(device),
                ffn_norm: norm(),
                dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            })
            .collect();
        BertEncoder {
            embeddings: BertEmbeddings {
                word: embedding(self.vocab_size),
                position: embedding(self.max_position_embeddings),
                token_type: embedding(self.type_vocab_size),
                norm: norm(),
                dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            },
            layers,
        }
    }
}

/// Word + position + token-type embeddings, then LayerNorm.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word: Embedding<B>,
    pub position: Embedding<B>,
    pub token_type: Embedding<B>,
    pub norm: LayerNorm<B>,
    dropout: Dropout,
}

/// One post-norm layer: `x = norm(x + attn(x))`, `x = norm(x + ffn(x))`.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub attention: MultiHeadAttention<B>,
    pub attention_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
    pub ffn_norm: LayerNorm<B>,
    dropout: Dropout,
}

/// The BERT encoder (without the pooler).
#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub layers: Vec<BertLayer<B>>,
}

/// Checkpoint tensors that are deliberately not loaded.
fn ignored(name: &str) -> bool {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    name == "embeddings.position_ids" || name.starts_with("pooler.")
}

impl<B: Backend> BertEncoder<B> {
    /// Hidden states of the last layer (token type 0 everywhere, positions from 0).
    ///
    /// # Shapes
    /// - `ids`, `pad_mask`: `[batch_size, seq_len]` (`true` = padding)
    /// - output: `[batch_size, seq_len, hidden_size]`
    pub fn forward(&self, ids: Tensor<B, 2, Int>, pad_mask: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        let [batch_size, seq_len] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..seq_len as i64, &device)
            .unsqueeze_dim::<2>(0)
            .expand([batch_size, seq_len]);
        let types = Tensor::<B, 2, Int>::zeros([batch_size, seq_len], &device);
        let e = &self.embeddings;
        let x = e.word.forward(ids) + e.position.forward(positions) + e.token_type.forward(types);
        let mut x = e.dropout.forward(e.norm.forward(x));
        let mask = key_padding_mask(pad_mask, seq_len);
        for layer in &self.layers {
            let attended = layer
                .attention
                .forward(x.clone(), x.clone(), Some(mask.clone()));
            x = layer
                .attention_norm
                .forward(x + layer.dropout.forward(attended));
            let h = layer.ffn.forward(x.clone());
            x = layer.ffn_norm.forward(x + layer.dropout.forward(h));
        }
        x
    }

    /// Loads `model.safetensors` (Hugging Face names, see the module docs) into this encoder.
    /// Every parameter must be present with its shape; checkpoint tensors other than the
    /// position-id buffer and the pooler must all be used.
    pub fn load(mut self, path: &Path) -> Result<Self, BertError> {
        let display = path.display().to_string();
        let weights_error = |message: String| BertError::Weights {
            path: display.clone(),
            message,
        };
        let remapper = bert_key_map().map_err(weights_error)?;
        let mut store = SafetensorsStore::from_file(path)
            .remap(remapper)
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(true);
        let result = self.load_from(&mut store).map_err(|e| match e {
            burn_store::SafetensorsStoreError::Io(e) => BertError::Read {
                path: display.clone(),
                message: e.to_string(),
            },
            other => weights_error(other.to_string()),
        })?;
        let mut problems = Vec::new();
        if !result.errors.is_empty() {
            problems.push(
                result
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        if !result.missing.is_empty() {
            let names: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
            problems.push(format!("missing tensors: {}", names.join(", ")));
        }
        let unexpected: Vec<&str> = result
            .unused
            .iter()
            .map(String::as_str)
            .filter(|name| !ignored(name))
            .collect();
        if !unexpected.is_empty() {
            problems.push(format!("unexpected tensors: {}", unexpected.join(", ")));
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(weights_error(problems.join("; ")))
        }
    }
}

/// Hugging Face BERT names → s2s names (the table in the module docs), as regex patterns.
pub const BERT_KEY_MAP: &[(&str, &str)] = &[
    (
        r"^(?:bert\.)?embeddings\.word_embeddings\.",
        "embeddings.word.",
    ),
    (
        r"^(?:bert\.)?embeddings\.position_embeddings\.",
        "embeddings.position.",
    ),
    (
        r"^(?:bert\.)?embeddings\.token_type_embeddings\.",
        "embeddings.token_type.",
    ),
    (
        r"^(?:bert\.)?embeddings\.LayerNorm\.weight$",
        "embeddings.norm.gamma",
    ),
    (
        r"^(?:bert\.)?embeddings\.LayerNorm\.bias$",
        "embeddings.norm.beta",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.",
        "layers.$1.attention.$2.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.",
        "layers.$1.attention.output.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.weight$",
        "layers.$1.attention_norm.gamma",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.bias$",
        "layers.$1.attention_norm.beta",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.",
        "layers.$1.ffn.inner.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.dense\.",
        "layers.$1.ffn.outer.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.weight$",
        "layers.$1.ffn_norm.gamma",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.bias$",
        "layers.$1.ffn_norm.beta",
    ),
];

fn bert_key_map() -> Result<KeyRemapper, String> {
    BERT_KEY_MAP
        .iter()
        .try_fold(KeyRemapper::new(), |remapper, (from, to)| {
            remapper.add_pattern(*from, *to).map_err(|e| e.to_string())
        })
}

/// Mean of the hidden states over non-padding positions (sentence-transformers' mean pooling).
///
/// # Shapes
/// - `hidden`: `[batch_size, seq_len, d]`, `pad_mask`: `[batch_size, seq_len]` → `[batch_size, d]`
pub fn mean_pool<B: Backend>(hidden: Tensor<B, 3>, pad_mask: Tensor<B, 2, Bool>) -> Tensor<B, 2> {
    let [batch_size, seq_len, d] = hidden.dims();
    let keep = pad_mask
        .bool_not()
        .float()
        .reshape([batch_size, seq_len, 1]);
    let count = keep
        .clone()
        .sum_dim(1)
        .clamp_min(1e-9)
        .reshape([batch_size, 1]);
    (hidden * keep).sum_dim(1).reshape([batch_size, d]) / count
}
