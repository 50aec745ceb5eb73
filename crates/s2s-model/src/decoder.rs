//! Autoregressive Transformer decoder: causal self-attention, cross-attention to the adapted
//! encoder memory, feed-forward. Written with our own layers rather than burn-nn's
//! `TransformerDecoder`, whose autoregressive cache lives inside the module and cannot be
//! reordered for beam search: here attention is split into projection and attention steps so
//! that an external cache can hold per-layer keys/values.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::attention::{
    causal_mask, key_padding_mask, MultiHeadAttention, MultiHeadAttentionConfig,
};
use crate::cache::{EncoderMemory, KvCache, MemoryKeyValue};
use crate::feedforward::Activation;
use crate::feedforward::{FeedForward, FeedForwardConfig};

/// Configuration of [`TransformerDecoder`].
#[derive(Config, Debug)]
pub struct TransformerDecoderConfig {
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

impl TransformerDecoderConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> TransformerDecoder<B> {
        let norm = || {
            LayerNormConfig::new(self.d_model)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let attn = || {
            MultiHeadAttentionConfig::new(self.d_model, self.n_heads)
                .with_dropout(self.attention_dropout)
                .init(device)
        };
        let layers = (0..self.n_layers)
            .map(|_| DecoderLayer {
                self_attn: attn(),
                self_attn_norm: norm(),
                cross_attn: attn(),
                cross_attn_norm: norm(),
                ffn: FeedForwardConfig::new(self.d_model, self.d_ff)
                    .with_dropout(self.dropout)
                    .with_activation(self.activation)
                    .init(device),
                ffn_norm: norm(),
                dropout: DropoutConfig::new(self.dropout).init(),
                norm_first: self.norm_first,
            })
            .collect();
        TransformerDecoder {
            layers,
            final_norm: self.norm_first.then(norm),
        }
    }
}

/// A stack of decoder layers; pre-norm stacks end with a final LayerNorm.
#[derive(Module, Debug)]
pub struct TransformerDecoder<B: Backend> {
    pub layers: Vec<DecoderLayer<B>>,
    pub final_norm: Option<LayerNorm<B>>,
}

/// One decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: MultiHeadAttention<B>,
    pub self_attn_norm: LayerNorm<B>,
    pub cross_attn: MultiHeadAttention<B>,
    pub cross_attn_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
    pub ffn_norm: LayerNorm<B>,
    dropout: Dropout,
    norm_first: bool,
}

impl<B: Backend> TransformerDecoder<B> {
    /// Projects the memory into every layer's cross-attention keys/values (once per source).
    ///
    /// # Shapes
    /// - `memory`: `[batch_size, src_len, d_model]`
    pub fn project_memory(&self, memory: Tensor<B, 3>) -> Vec<MemoryKeyValue<B>> {
        self.layers
            .iter()
            .map(|layer| {
                let (key, value) = layer.cross_attn.project_key_value(memory.clone());
                MemoryKeyValue { key, value }
            })
            .collect()
    }

    /// Full (teacher-forced) decoding of all target positions at once.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, tgt_len, d_model]` (embedded decoder input)
    /// - `memory`: `[batch_size, src_len, d_model]`, `memory_pad_mask`: `[batch_size, src_len]`
    /// - output: `[batch_size, tgt_len, d_model]` (after the final norm)
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        memory: Tensor<B, 3>,
        memory_pad_mask: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        let memory_kv = self.project_memory(memory);
        self.forward_with_memory(x, &memory_kv, memory_pad_mask)
    }

    /// Like [`Self::forward`] with the memory already projected by [`Self::project_memory`], so
    /// step-by-step decoding never recomputes cross-attention keys/values.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, tgt_len, d_model]`, `memory_pad_mask`: `[batch_size, src_len]`
    /// - output: `[batch_size, tgt_len, d_model]`
    pub fn forward_with_memory(
        &self,
        x: Tensor<B, 3>,
        memory_kv: &[MemoryKeyValue<B>],
        memory_pad_mask: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        self.run_with_memory(x, memory_kv, memory_pad_mask, None)
    }

    /// The cross-attention probabilities of every layer in teacher-forced decoding.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, tgt_len, d_model]`, `memory_pad_mask`: `[batch_size, src_len]`
    /// - output: per layer `[batch_size, n_heads, tgt_len, src_len]`
    pub fn cross_attention(
        &self,
        x: Tensor<B, 3>,
        memory_kv: &[MemoryKeyValue<B>],
        memory_pad_mask: Tensor<B, 2, Bool>,
    ) -> Vec<Tensor<B, 4>> {
        let mut weights = Vec::with_capacity(self.layers.len());
        self.run_with_memory(x, memory_kv, memory_pad_mask, Some(&mut weights));
        weights
    }

    fn run_with_memory(
        &self,
        x: Tensor<B, 3>,
        memory_kv: &[MemoryKeyValue<B>],
        memory_pad_mask: Tensor<B, 2, Bool>,
        mut probe: Option<&mut Vec<Tensor<B, 4>>>,
    ) -> Tensor<B, 3> {
        let [batch_size, tgt_len, _d_model] = x.dims();
        let self_mask = causal_mask::<B>(batch_size, tgt_len, &x.device());
        let cross_mask = key_padding_mask(memory_pad_mask, tgt_len);
        let x = self.layers.iter().zip(memory_kv).fold(x, |x, (layer, kv)| {
            layer.forward(
                x,
                |h| {
                    layer
                        .self_attn
                        .forward(h.clone(), h, Some(self_mask.clone()))
                },
                kv,
                cross_mask.clone(),
                probe.as_deref_mut(),
            )
        });
        self.normalize(x)
    }

    /// Incremental decoding: `x` embeds the next `new_len` target positions (usually one), whose
    /// self-attention reads every earlier position from `cache` and writes its own keys/values
    /// into it; cross-attention reuses the projected memory. A step costs O(current length).
    ///
    /// # Shapes
    /// - `x`: `[batch_size, new_len, d_model]` (positions `cache.len()..cache.len() + new_len`)
    /// - output: `[batch_size, new_len, d_model]` (after the final norm)
    pub fn forward_step(
        &self,
        x: Tensor<B, 3>,
        memory: &EncoderMemory<B>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let [batch_size, new_len, _d_model] = x.dims();
        let offset = cache.len();
        let total = offset + new_len;
        // A single new position may attend to everything cached; several need a causal mask
        // shifted by the offset ([new_len, total], true where key j > offset + query i).
        let self_mask = (new_len > 1).then(|| {
            Tensor::<B, 2, Bool>::tril_mask([new_len, total], offset as i64, &x.device())
                .unsqueeze_dim::<3>(0)
                .expand([batch_size, new_len, total])
        });
        let cross_mask = key_padding_mask(memory.pad_mask.clone(), new_len);
        let mut x = x;
        for (index, (layer, kv)) in self.layers.iter().zip(&memory.key_values).enumerate() {
            x = layer.forward(
                x,
                |h| {
                    let q = layer.self_attn.project_query(h.clone());
                    let (k, v) = layer.self_attn.project_key_value(h);
                    let (k, v) = cache.append(index, k, v);
                    layer.self_attn.attend(q, k, v, self_mask.clone())
                },
                kv,
                cross_mask.clone(),
                None,
            );
        }
        cache.advance(new_len);
        self.normalize(x)
    }

    /// Applies the final LayerNorm of pre-norm stacks.
    pub fn normalize(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.final_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }
}

impl<B: Backend> DecoderLayer<B> {
    /// One layer, with self-attention supplied by the caller so that full decoding (causal mask
    /// over all positions) and cached step-by-step decoding share every other line.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, tgt_len, d_model]`
    /// - `self_attention`: maps the (normed) `[batch_size, tgt_len, d_model]` to the same shape
    /// - `cross_mask`: `[batch_size, tgt_len, src_len]`
    /// - `probe`: when given, receives the cross-attention probabilities
    ///   `[batch_size, n_heads, tgt_len, src_len]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        self_attention: impl FnOnce(Tensor<B, 3>) -> Tensor<B, 3>,
        memory: &MemoryKeyValue<B>,
        cross_mask: Tensor<B, 3, Bool>,
        probe: Option<&mut Vec<Tensor<B, 4>>>,
    ) -> Tensor<B, 3> {
        let cross = |h: Tensor<B, 3>| {
            let q = self.cross_attn.project_query(h);
            if let Some(probe) = probe {
                probe.push(self.cross_attn.probabilities(
                    q.clone(),
                    memory.key.clone(),
                    Some(cross_mask.clone()),
                ));
            }
            self.cross_attn.attend(
                q,
                memory.key.clone(),
                memory.value.clone(),
                Some(cross_mask),
            )
        };
        if self.norm_first {
            let h = self.self_attn_norm.forward(x.clone());
            let x = x + self.dropout.forward(self_attention(h));
            let h = self.cross_attn_norm.forward(x.clone());
            let x = x + self.dropout.forward(cross(h));
            let h = self.ffn_norm.forward(x.clone());
            x + self.dropout.forward(self.ffn.forward(h))
        } else {
            let x = self
                .self_attn_norm
                .forward(x.clone() + self.dropout.forward(self_attention(x)));
            let x = self
                .cross_attn_norm
                .forward(x.clone() + self.dropout.forward(cross(x)));
            self.ffn_norm
                .forward(x.clone() + self.dropout.forward(self.ffn.forward(x)))
        }
    }
}
