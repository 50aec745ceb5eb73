//! Multi-head scaled dot-product attention, split into projection and attention steps so that a
//! decoding cache can store projected keys/values (and cross-attention projects the encoder
//! memory once per source, never per step).

use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::linear::forward_flat;

/// Value written into masked attention scores before the softmax. Finite so that f16 backends
/// do not produce NaN, and small enough that `exp` of it underflows to exactly 0 in f32.
const MASKED_SCORE: f32 = -1.0e9;

/// Configuration of [`MultiHeadAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Width of queries, keys, values and output.
    pub d_model: usize,
    /// Number of heads; divides `d_model`.
    pub n_heads: usize,
    /// Dropout on attention probabilities. Default: 0.0.
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl MultiHeadAttentionConfig {
    /// Builds the module (Xavier-uniform projections, as fairseq and the original Transformer).
    pub fn init<B: Backend>(&self, device: &B::Device) -> MultiHeadAttention<B> {
        let linear = || {
            LinearConfig::new(self.d_model, self.d_model)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        MultiHeadAttention {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_heads: self.n_heads,
            d_head: self.d_model / self.n_heads,
        }
    }
}

/// Multi-head attention with separate query/key/value/output projections.
#[derive(Module, Debug)]
pub struct MultiHeadAttention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub output: Linear<B>,
    dropout: Dropout,
    n_heads: usize,
    d_head: usize,
}

impl<B: Backend> MultiHeadAttention<B> {
    /// Attends from `query` to `key_value`.
    ///
    /// # Shapes
    /// - `query`: `[batch_size, q_len, d_model]`, `key_value`: `[batch_size, k_len, d_model]`
    /// - `mask`: `[batch_size, q_len, k_len]`, `true` where a key must not be attended
    /// - output: `[batch_size, q_len, d_model]`
    pub fn forward(
        &self,
        query: Tensor<B, 3>,
        key_value: Tensor<B, 3>,
        mask: Option<Tensor<B, 3, Bool>>,
    ) -> Tensor<B, 3> {
        let q = self.project_query(query);
        let (k, v) = self.project_key_value(key_value);
        self.attend(q, k, v, mask)
    }

    /// # Shapes
    /// - `x`: `[batch_size, q_len, d_model]` → `[batch_size, n_heads, q_len, d_head]`
    pub fn project_query(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        self.split_heads(forward_flat(&self.query, x))
    }

    /// # Shapes
    /// - `x`: `[batch_size, k_len, d_model]` → two `[batch_size, n_heads, k_len, d_head]`
    pub fn project_key_value(&self, x: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (
            self.split_heads(forward_flat(&self.key, x.clone())),
            self.split_heads(forward_flat(&self.value, x)),
        )
    }

    /// Scaled dot-product attention over already projected heads, then the output projection.
    ///
    /// Written out ([`Self::attend_unfused`]) on every backend. Burn's fused
    /// [`burn::tensor::module::attention`] was measured and is not used (the backend parity test
    /// still checks it against this path):
    /// burn-autodiff 0.21 has no fused attention node (it records the same decomposition, with
    /// extra NaN-guarding passes), and for decoding flex's kernel loops over batch × heads on
    /// one thread (greedy decoding fell from 4,281 to 1,665 tokens/s) while libtorch's was no
    /// faster than this path (docs/performance.md).
    ///
    /// # Shapes
    /// - `q`: `[batch_size, n_heads, q_len, d_head]`, `k`/`v`: `[batch_size, n_heads, k_len, d_head]`
    /// - `mask`: `[batch_size, q_len, k_len]` (`true` = masked); no row may be fully masked
    /// - output: `[batch_size, q_len, d_model]`
    pub fn attend(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        mask: Option<Tensor<B, 3, Bool>>,
    ) -> Tensor<B, 3> {
        let [batch_size, n_heads, q_len, d_head] = q.dims();
        let k_len = k.dims()[2];
        // [B, Tq, Tk] -> [B, H, Tq, Tk]
        let mask = mask.map(|mask| {
            mask.unsqueeze_dim::<4>(1)
                .expand([batch_size, n_heads, q_len, k_len])
        });
        let context = self.attend_unfused(q, k, v, mask);
        // [B, H, Tq, Dh] -> [B, Tq, H, Dh] -> [B, Tq, D]
        let context = context
            .swap_dims(1, 2)
            .reshape([batch_size, q_len, n_heads * d_head]);
        forward_flat(&self.output, context)
    }

    /// `softmax(q·kᵀ/√d_head + mask)·v` as separate operations (with attention dropout).
    ///
    /// # Shapes
    /// - `mask`: `[batch_size, n_heads, q_len, k_len]`; output: `[batch_size, n_heads, q_len, d_head]`
    pub fn attend_unfused(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 4> {
        let d_head = q.dims()[3];
        let scale = (d_head as f64).sqrt().recip();
        // [B, H, Tq, Tk]
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        if let Some(mask) = mask {
            scores = scores.mask_fill(mask, MASKED_SCORE);
        }
        self.dropout.forward(softmax(scores, 3)).matmul(v)
    }

    /// The attention probabilities `softmax(q·kᵀ/√d_head + mask)` (no dropout): what
    /// [`Self::attend`] weights the values with, for inspection (attention heat-maps).
    ///
    /// # Shapes
    /// - `q`: `[batch_size, n_heads, q_len, d_head]`, `k`: `[batch_size, n_heads, k_len, d_head]`
    /// - `mask`: `[batch_size, q_len, k_len]` (`true` = masked)
    /// - output: `[batch_size, n_heads, q_len, k_len]`
    pub fn probabilities(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        mask: Option<Tensor<B, 3, Bool>>,
    ) -> Tensor<B, 4> {
        let [batch_size, n_heads, q_len, d_head] = q.dims();
        let k_len = k.dims()[2];
        let scale = (d_head as f64).sqrt().recip();
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        if let Some(mask) = mask {
            let mask = mask
                .unsqueeze_dim::<4>(1)
                .expand([batch_size, n_heads, q_len, k_len]);
            scores = scores.mask_fill(mask, MASKED_SCORE);
        }
        softmax(scores, 3)
    }

    /// `(n_heads, d_head)`.
    pub fn heads(&self) -> (usize, usize) {
        (self.n_heads, self.d_head)
    }

    fn split_heads(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [batch_size, len, _] = x.dims();
        // [B, T, D] -> [B, T, H, Dh] -> [B, H, T, Dh]
        x.reshape([batch_size, len, self.n_heads, self.d_head])
            .swap_dims(1, 2)
    }
}

/// Mask of future positions for causal self-attention, `true` above the diagonal.
///
/// # Shapes
/// - output: `[batch_size, tgt_len, tgt_len]`
pub fn causal_mask<B: Backend>(
    batch_size: usize,
    tgt_len: usize,
    device: &B::Device,
) -> Tensor<B, 3, Bool> {
    Tensor::<B, 2, Bool>::tril_mask([tgt_len, tgt_len], 0, device)
        .unsqueeze_dim::<3>(0)
        .expand([batch_size, tgt_len, tgt_len])
}

/// Key-padding mask broadcast over queries.
///
/// # Shapes
/// - `pad_mask`: `[batch_size, k_len]` (`true` = pad) → `[batch_size, q_len, k_len]`
pub fn key_padding_mask<B: Backend>(
    pad_mask: Tensor<B, 2, Bool>,
    q_len: usize,
) -> Tensor<B, 3, Bool> {
    let [batch_size, k_len] = pad_mask.dims();
    pad_mask
        .unsqueeze_dim::<3>(1)
        .expand([batch_size, q_len, k_len])
}
