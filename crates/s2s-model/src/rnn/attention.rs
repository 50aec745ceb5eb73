//! Global attention of the RNN decoder over every encoder state: Bahdanau's additive score or
//! Luong's "general" score, with the encoder side projected once per source.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{softmax, tanh};

use crate::config::AttentionKind;
use crate::linear::forward_flat;

/// Value written into the scores of padded source positions; `exp` of it underflows to exactly
/// 0 in f32, so padding gets zero weight.
const MASKED_SCORE: f32 = -1.0e9;

/// Configuration of [`RnnAttention`].
#[derive(Config, Debug)]
pub struct RnnAttentionConfig {
    /// `bahdanau` or `luong`.
    pub kind: AttentionKind,
    /// Width of the decoder's hidden state (the query).
    pub d_query: usize,
    /// Width of an encoder state (the keys and values).
    pub d_memory: usize,
}

impl RnnAttentionConfig {
    /// Builds the module (Xavier-uniform weights).
    pub fn init<B: Backend>(&self, device: &B::Device) -> RnnAttention<B> {
        let linear = |d_in: usize, d_out: usize, bias: bool| {
            LinearConfig::new(d_in, d_out)
                .with_bias(bias)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        match self.kind {
            // Luong's W_a maps an encoder state into the query's space: score = h_t · (W_a h̄_s).
            AttentionKind::Luong => RnnAttention {
                key: linear(self.d_memory, self.d_query, false),
                query: None,
                score: None,
            },
            // Bahdanau: score = vᵀ tanh(W_k h̄_s + b + W_q h_t), attention width = d_query.
            AttentionKind::Bahdanau => RnnAttention {
                key: linear(self.d_memory, self.d_query, true),
                query: Some(linear(self.d_query, self.d_query, false)),
                score: Some(linear(self.d_query, 1, false)),
            },
        }
    }
}

/// Attention weights and the context vector they give.
///
/// # Shapes
/// - `context`: `[batch_size, d_memory]`, `weights`: `[batch_size, src_len]`
#[derive(Clone, Debug)]
pub struct Attended<B: Backend> {
    /// `Σ_s α_s h̄_s`.
    pub context: Tensor<B, 2>,
    /// `α`: 0 on padding, summing to 1 over the real source positions.
    pub weights: Tensor<B, 2>,
}

/// Bahdanau (additive) or Luong (general) attention; `query` and `score` exist only for
/// Bahdanau.
#[derive(Module, Debug)]
pub struct RnnAttention<B: Backend> {
    /// Projects encoder states: `W_a` (Luong) or `W_k` (Bahdanau), `[d_memory, d_query]`.
    pub key: Linear<B>,
    /// Bahdanau's `W_q`, `[d_query, d_query]`.
    pub query: Option<Linear<B>>,
    /// Bahdanau's `v`, `[d_query, 1]`.
    pub score: Option<Linear<B>>,
}

impl<B: Backend> RnnAttention<B> {
    /// The encoder side of the score, computed once per source.
    ///
    /// # Shapes
    /// - `memory`: `[batch_size, src_len, d_memory]` → `[batch_size, src_len, d_query]`
    pub fn project_keys(&self, memory: Tensor<B, 3>) -> Tensor<B, 3> {
        forward_flat(&self.key, memory)
    }

    /// Attends from the decoder state `query` over the encoder states.
    ///
    /// # Shapes
    /// - `query`: `[batch_size, d_query]`
    /// - `keys`: `[batch_size, src_len, d_query]` (from [`Self::project_keys`])
    /// - `memory`: `[batch_size, src_len, d_memory]`, `pad_mask`: `[batch_size, src_len]`
    pub fn forward(
        &self,
        query: Tensor<B, 2>,
        keys: Tensor<B, 3>,
        memory: Tensor<B, 3>,
        pad_mask: Tensor<B, 2, Bool>,
    ) -> Attended<B> {
        let [batch_size, src_len, d_query] = keys.dims();
        let scores = match (&self.query, &self.score) {
            (Some(w_q), Some(v)) => {
                // [B, S, A] + [B, 1, A] -> tanh -> [B, S, 1]
                let q = w_q.forward(query).unsqueeze_dim::<3>(1);
                forward_flat(v, tanh(keys + q))
            }
            // [B, S, D]·[B, D, 1] -> [B, S, 1]
            _ => keys.matmul(query.reshape([batch_size, d_query, 1])),
        };
        let scores = scores
            .reshape([batch_size, src_len])
            .mask_fill(pad_mask, MASKED_SCORE);
        let weights = softmax(scores, 1);
        // [B, 1, S]·[B, S, M] -> [B, M]
        let d_memory = memory.dims()[2];
        let context = weights
            .clone()
            .unsqueeze_dim::<3>(1)
            .matmul(memory)
            .reshape([batch_size, d_memory]);
        Attended { context, weights }
    }
}
