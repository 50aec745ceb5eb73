//! Bidirectional Transformer encoder.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::attention::{key_padding_mask, MultiHeadAttention, MultiHeadAttentionConfig};
use crate::feedforward::Activation;
use crate::feedforward::{FeedForward, FeedForwardConfig};

/// Configuration of [`TransformerEncoder`].
#[derive(Config, Debug)]
pub struct TransformerEncoderConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    pub d_ff: usize,
    /// Residual and FFN dropout. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Attention-probability dropout. Default: 0.0.
    #[config(default = 0.0)]
    pub attention_dropout: f64,
    /// Default: ReLU.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Pre-norm when true. Default: true.
    #[config(default = true)]
    pub norm_first: bool,
    /// Default: 1e-5.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

impl TransformerEncoderConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> TransformerEncoder<B> {
        let norm = || {
            LayerNormConfig::new(self.d_model)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let layers = (0..self.n_layers)
            .map(|_| EncoderLayer {
                self_attn: MultiHeadAttentionConfig::new(self.d_model, self.n_heads)
                    .with_dropout(self.attention_dropout)
                    .init(device),
                self_attn_norm: norm(),
                ffn: FeedForwardConfig::new(self.d_model, self.d_ff)
                    .with_dropout(self.dropout)
                    .with_activation(self.activation)
                    .init(device),
                ffn_norm: norm(),
                dropout: DropoutConfig::new(self.dropout).init(),
                norm_first: self.norm_first,
            })
            .collect();
        TransformerEncoder {
            layers,
            final_norm: self.norm_first.then(norm),
        }
    }
}

/// A stack of encoder layers; pre-norm stacks end with a final LayerNorm.
#[derive(Module, Debug)]
pub struct TransformerEncoder<B: Backend> {
    pub layers: Vec<EncoderLayer<B>>,
    pub final_norm: Option<LayerNorm<B>>,
}

/// Self-attention and feed-forward, each in a residual branch.
#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    pub self_attn: MultiHeadAttention<B>,
    pub self_attn_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
    pub ffn_norm: LayerNorm<B>,
    dropout: Dropout,
    norm_first: bool,
}

impl<B: Backend> TransformerEncoder<B> {
    /// # Shapes
    /// - `x`: `[batch_size, src_len, d_model]` (embedded source)
    /// - `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    /// - output: `[batch_size, src_len, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>, pad_mask: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        let [_batch_size, src_len, _d_model] = x.dims();
        let mask = key_padding_mask(pad_mask, src_len);
        let x = self
            .layers
            .iter()
            .fold(x, |x, layer| layer.forward(x, mask.clone()));
        match &self.final_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }
}

impl<B: Backend> EncoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch_size, src_len, d_model]`, `mask`: `[batch_size, src_len, src_len]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 3, Bool>) -> Tensor<B, 3> {
        if self.norm_first {
            let h = self.self_attn_norm.forward(x.clone());
            let x = x + self
                .dropout
                .forward(self.self_attn.forward(h.clone(), h, Some(mask)));
            let h = self.ffn_norm.forward(x.clone());
            x.clone() + self.dropout.forward(self.ffn.forward(h))
        } else {
            let a = self.self_attn.forward(x.clone(), x.clone(), Some(mask));
            let x = self.self_attn_norm.forward(x + self.dropout.forward(a));
            let f = self.ffn.forward(x.clone());
            self.ffn_norm.forward(x + self.dropout.forward(f))
        }
    }
}
