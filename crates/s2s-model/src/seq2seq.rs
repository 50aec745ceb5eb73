//! The encoder–adapter–decoder model and its teacher-forced loss.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::adapter::{Adapter, AdapterModuleConfig};
use crate::batch::Seq2SeqBatch;
use crate::bert::{BertConfig, BertEncoder};
use crate::cache::{EncoderMemory, KvCache};
use crate::config::{ConfigError, ModelConfig, VocabSizes};
use crate::decoder::{TransformerDecoder, TransformerDecoderConfig};
use crate::embedding::{TokenEmbedding, TokenEmbeddingConfig};
use crate::encoder::{TransformerEncoder, TransformerEncoderConfig};
use crate::loss::{fused_cross_entropy, sequence_cross_entropy, FusedLossOutput};

impl ModelConfig {
    /// Validates the configuration, then builds the model with a Transformer encoder trained
    /// from scratch on `device`. A configuration with `bert` set needs
    /// [`Self::init_with_bert`].
    pub fn init<B: Backend>(
        &self,
        vocab: VocabSizes,
        device: &B::Device,
    ) -> Result<Seq2Seq<B>, ConfigError> {
        self.validate_with(vocab)?;
        if self.bert.is_some() {
            return Err(ConfigError::Invalid(
                "model.bert is set: the model needs the checkpoint's config.json (init_with_bert)"
                    .into(),
            ));
        }
        let enc = &self.encoder;
        let source = SourceEncoder::Transformer(TransformerSource {
            embedding: self.token_embedding(vocab.source, enc.d_model, device),
            encoder: TransformerEncoderConfig::new(
                enc.d_model,
                enc.n_heads,
                enc.n_layers,
                enc.d_ff,
            )
            .with_dropout(self.dropout)
            .with_attention_dropout(self.attention_dropout)
            .with_activation(self.activation)
            .with_norm_first(self.norm_first)
            .with_layer_norm_eps(self.layer_norm_eps)
            .init(device),
        });
        Ok(self.assemble(source, enc.d_model, vocab.target, device))
    }

    /// Builds the model with a BERT encoder of `bert`'s shape (randomly initialised: load the
    /// pre-trained weights into [`Seq2Seq::source`] with [`BertEncoder::load`]).
    pub fn init_with_bert<B: Backend>(
        &self,
        bert: &BertConfig,
        target_vocab: usize,
        device: &B::Device,
    ) -> Result<Seq2Seq<B>, ConfigError> {
        self.validate_with_bert(bert, target_vocab)?;
        let source = SourceEncoder::Bert(bert.init(device));
        Ok(self.assemble(source, bert.hidden_size, target_vocab, device))
    }

    fn token_embedding<B: Backend>(
        &self,
        vocab_size: usize,
        d_model: usize,
        device: &B::Device,
    ) -> TokenEmbedding<B> {
        TokenEmbeddingConfig::new(vocab_size, d_model, self.max_positions, self.positions)
            .with_dropout(self.dropout)
            .init(device)
    }

    /// Adapter, decoder and output layer around a source encoder of width `d_encoder`.
    fn assemble<B: Backend>(
        &self,
        source: SourceEncoder<B>,
        d_encoder: usize,
        target_vocab: usize,
        device: &B::Device,
    ) -> Seq2Seq<B> {
        let dec = &self.decoder;
        let output = (!self.tie_output_embedding).then(|| {
            LinearConfig::new(dec.d_model, target_vocab)
                .with_bias(false)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        });
        Seq2Seq {
            source,
            target_embedding: self.token_embedding(target_vocab, dec.d_model, device),
            adapter: AdapterModuleConfig::new(self.adapter.kind, d_encoder, dec.d_model)
                .with_d_hidden(self.adapter.d_hidden)
                .with_layer_norm_eps(self.layer_norm_eps)
                .init(device),
            decoder: TransformerDecoderConfig::new(
                dec.d_model,
                dec.n_heads,
                dec.n_layers,
                dec.d_ff,
            )
            .with_dropout(self.dropout)
            .with_attention_dropout(self.attention_dropout)
            .with_activation(self.activation)
            .with_norm_first(self.norm_first)
            .with_layer_norm_eps(self.layer_norm_eps)
            .init(device),
            output,
            label_smoothing: 0.0,
        }
    }
}

/// The source side: a Transformer trained from scratch on its own vocabulary, or a
/// pre-trained BERT reading `[CLS] … [SEP]` WordPiece ids.
#[derive(Module, Debug)]
pub enum SourceEncoder<B: Backend> {
    Transformer(TransformerSource<B>),
    Bert(BertEncoder<B>),
}

/// Source token embedding (with positions) and the Transformer encoder stack.
#[derive(Module, Debug)]
pub struct TransformerSource<B: Backend> {
    pub embedding: TokenEmbedding<B>,
    pub encoder: TransformerEncoder<B>,
}

impl<B: Backend> SourceEncoder<B> {
    /// Contextual states of the source tokens.
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    /// - output: `[batch_size, src_len, d_encoder]`
    pub fn forward(&self, source: Tensor<B, 2, Int>, pad_mask: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        match self {
            Self::Transformer(t) => t.encoder.forward(t.embedding.forward(source, 0), pad_mask),
            Self::Bert(bert) => bert.forward(source, pad_mask),
        }
    }
}

/// Encoder → adapter → decoder → vocabulary logits.
#[derive(Module, Debug)]
pub struct Seq2Seq<B: Backend> {
    /// Source embedding and encoder (Transformer or pre-trained BERT).
    pub source: SourceEncoder<B>,
    pub target_embedding: TokenEmbedding<B>,
    pub adapter: Adapter<B>,
    pub decoder: TransformerDecoder<B>,
    /// Untied output projection; `None` when tied to the target embedding.
    pub output: Option<Linear<B>>,
    /// Label-smoothing ε used by [`Seq2Seq::forward_loss`] (a training setting, not persisted).
    label_smoothing: f64,
}

/// What one teacher-forced step produces; `loss` is the training objective.
#[derive(Debug, Clone)]
pub struct Seq2SeqOutput<B: Backend> {
    /// Label-smoothed cross-entropy per non-pad token, `[1]`.
    pub loss: Tensor<B, 1>,
    /// Plain negative log-likelihood per non-pad token (its `exp` is the perplexity), `[1]`.
    pub nll: Tensor<B, 1>,
    /// `[batch_size, tgt_len, vocab_size]`
    pub logits: Tensor<B, 3>,
    /// `[batch_size, tgt_len]`, `<pad>` where ignored.
    pub labels: Tensor<B, 2, Int>,
}

impl<B: Backend> Seq2Seq<B> {
    /// Sets the label-smoothing ε (uniform over the vocabulary, as PyTorch's
    /// `CrossEntropyLoss(label_smoothing=ε)` and HF).
    pub fn with_label_smoothing(mut self, epsilon: f64) -> Self {
        self.label_smoothing = epsilon;
        self
    }

    /// Freezes the source side: the source embedding and the encoder stop requiring gradients,
    /// so the optimizer never updates them (the adapter, decoder and output still train). The
    /// flag survives loading a checkpoint into the frozen model, so a resumed run stays frozen.
    pub fn freeze_encoder(self) -> Self {
        Self {
            source: self.source.no_grad(),
            ..self
        }
    }

    /// Encodes the source and maps it into the decoder's space.
    ///
    /// # Shapes
    /// - `source`: `[batch_size, src_len]`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    /// - output: `[batch_size, src_len, d_decoder]`
    pub fn encode(&self, source: Tensor<B, 2, Int>, pad_mask: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        self.adapter.forward(self.source.forward(source, pad_mask))
    }

    /// Teacher-forced decoding of every target position at once.
    ///
    /// # Shapes
    /// - `target_input`: `[batch_size, tgt_len]` (`<s> y1 …`)
    /// - `memory`: `[batch_size, src_len, d_decoder]`, `memory_pad_mask`: `[batch_size, src_len]`
    /// - output: logits `[batch_size, tgt_len, vocab_size]`
    pub fn decode(
        &self,
        target_input: Tensor<B, 2, Int>,
        memory: Tensor<B, 3>,
        memory_pad_mask: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        self.project(self.decode_states(target_input, memory, memory_pad_mask))
    }

    /// [`Self::decode`] up to the decoder's output states, before the vocabulary projection.
    ///
    /// # Shapes
    /// - `target_input`: `[batch_size, tgt_len]`, `memory`: `[batch_size, src_len, d_decoder]`
    /// - output: `[batch_size, tgt_len, d_decoder]`
    pub fn decode_states(
        &self,
        target_input: Tensor<B, 2, Int>,
        memory: Tensor<B, 3>,
        memory_pad_mask: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        let x = self.target_embedding.forward(target_input, 0);
        self.decoder.forward(x, memory, memory_pad_mask)
    }

    /// The vocabulary projection as a matrix: logits = states · P. The transposed target
    /// embedding when tied, else the output layer's weight.
    ///
    /// # Shapes
    /// - output: `[d_decoder, vocab_size]`
    pub fn output_projection(&self) -> Tensor<B, 2> {
        match &self.output {
            Some(linear) => linear.weight.val(),
            None => self.target_embedding.token_weights().transpose(),
        }
    }

    /// The label-smoothing ε the training loss uses.
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }

    /// Maps decoder states to vocabulary logits (tied or untied).
    ///
    /// # Shapes
    /// - `h`: `[batch_size, tgt_len, d_decoder]` → `[batch_size, tgt_len, vocab_size]`
    pub fn project(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.output {
            Some(linear) => crate::linear::forward_flat(linear, h),
            None => {
                let [batch_size, tgt_len, d_model] = h.dims();
                // [V, D] -> [D, V]
                let weights = self.target_embedding.token_weights().transpose();
                let vocab_size = weights.dims()[1];
                h.reshape([batch_size * tgt_len, d_model])
                    .matmul(weights)
                    .reshape([batch_size, tgt_len, vocab_size])
            }
        }
    }

    /// [`Self::project`] with the tied projection `memory` laid out once per batch.
    fn project_with(&self, h: Tensor<B, 3>, memory: &EncoderMemory<B>) -> Tensor<B, 3> {
        match &memory.projection {
            Some(weights) => {
                let [batch_size, len, d_model] = h.dims();
                let vocab_size = weights.dims()[1];
                h.reshape([batch_size * len, d_model])
                    .matmul(weights.clone())
                    .reshape([batch_size, len, vocab_size])
            }
            None => self.project(h),
        }
    }

    /// Full forward pass: encode, decode, logits.
    ///
    /// # Shapes
    /// - output: `[batch_size, tgt_len, vocab_size]`
    pub fn forward(&self, batch: &Seq2SeqBatch<B>) -> Tensor<B, 3> {
        let memory = self.encode(batch.source.clone(), batch.source_pad_mask.clone());
        self.decode(
            batch.target_input.clone(),
            memory,
            batch.source_pad_mask.clone(),
        )
    }

    /// Encodes the source and projects it once into every decoder layer's cross-attention
    /// keys/values: everything incremental decoding needs from the source.
    ///
    /// # Shapes
    /// - `source`: `[batch_size, src_len]`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    pub fn encode_memory(
        &self,
        source: Tensor<B, 2, Int>,
        pad_mask: Tensor<B, 2, Bool>,
    ) -> EncoderMemory<B> {
        let memory = self.encode(source, pad_mask.clone());
        let projection = self.output.is_none().then(|| {
            let weights = self.target_embedding.token_weights();
            let [vocab_size, d_model] = weights.dims();
            // The reshape materialises the transposed layout (a no-op view on some backends).
            weights.transpose().reshape([d_model, vocab_size])
        });
        EncoderMemory {
            key_values: self.decoder.project_memory(memory),
            pad_mask,
            projection,
        }
    }

    /// An empty self-attention cache for `batch_size` rows and up to `capacity` target positions
    /// (at most [`Self::max_target_positions`]).
    pub fn init_cache(&self, batch_size: usize, capacity: usize, device: &B::Device) -> KvCache<B> {
        let (n_heads, d_head) = self
            .decoder
            .layers
            .first()
            .map(|layer| layer.self_attn.heads())
            .unwrap_or((1, 1));
        KvCache::new(
            self.decoder.layers.len(),
            batch_size,
            n_heads,
            capacity.min(self.max_target_positions()),
            d_head,
            device,
        )
    }

    /// Longest target prefix (with `<s>`) the position table covers.
    pub fn max_target_positions(&self) -> usize {
        self.target_embedding.max_positions()
    }

    /// One incremental decoding step: the logits of the positions after `tokens`, which continue
    /// the prefix already in `cache` (feed `<s>` first, then each chosen token).
    ///
    /// # Shapes
    /// - `tokens`: `[batch_size, new_len]` (usually `new_len = 1`)
    /// - output: `[batch_size, new_len, vocab_size]`
    pub fn decode_step(
        &self,
        tokens: Tensor<B, 2, Int>,
        memory: &EncoderMemory<B>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let x = self.target_embedding.forward(tokens, cache.len());
        let h = self.decoder.forward_step(x, memory, cache);
        self.project_with(h, memory)
    }

    /// Full causal decoding of a target prefix against projected memory (no cache): the logits
    /// of every position.
    ///
    /// # Shapes
    /// - `tokens`: `[batch_size, len]` → `[batch_size, len, vocab_size]`
    pub fn decode_prefix(
        &self,
        tokens: Tensor<B, 2, Int>,
        memory: &EncoderMemory<B>,
    ) -> Tensor<B, 3> {
        let x = self.target_embedding.forward(tokens, 0);
        let h = self
            .decoder
            .forward_with_memory(x, &memory.key_values, memory.pad_mask.clone());
        self.project_with(h, memory)
    }

    /// Teacher-forced loss over non-pad labels.
    pub fn forward_loss(&self, batch: Seq2SeqBatch<B>) -> Seq2SeqOutput<B> {
        let logits = self.forward(&batch);
        let (loss, nll) = sequence_cross_entropy(
            logits.clone(),
            batch.target_labels.clone(),
            self.label_smoothing,
        );
        Seq2SeqOutput {
            loss,
            nll,
            logits,
            labels: batch.target_labels,
        }
    }
}

impl<B: AutodiffBackend> Seq2Seq<B> {
    /// The teacher-forced training loss of [`Seq2Seq::forward_loss`] (same value, same
    /// gradients up to float rounding) with the output projection and the cross-entropy fused
    /// on the inner backend; see the module docs.
    pub fn forward_loss_fused(&self, batch: Seq2SeqBatch<B>) -> FusedLossOutput<B> {
        let memory = self.encode(batch.source.clone(), batch.source_pad_mask.clone());
        let h = self.decode_states(batch.target_input.clone(), memory, batch.source_pad_mask);
        let projection = self.output_projection();
        let fused = fused_cross_entropy(
            h.clone().inner(),
            projection.clone().inner(),
            batch.target_labels.clone().inner(),
            self.label_smoothing(),
        );
        let surrogate = dot(h, Tensor::from_inner(fused.grad_states))
            + dot(projection, Tensor::from_inner(fused.grad_projection));
        FusedLossOutput {
            surrogate,
            loss: Tensor::from_inner(fused.loss),
            nll: Tensor::from_inner(fused.nll),
            logits: Tensor::from_inner(fused.logits),
            labels: batch.target_labels,
        }
    }
}

/// `Σ a·c` as a `[1, n]·[n, 1]` matrix product, whose backward pass gives `∂/∂a = c`.
///
/// Not `(a * c).sum()`: burn-tch 0.21 computes an element-wise product in place in whichever
/// operand's storage looks unshared, and a transposed view of a parameter (the tied embedding
/// as the projection) passes that check, so `c * Wᵀ` wrote the product into the embedding
/// weights (caught by the backend parity test; docs/performance.md). A matrix product always
/// writes a new tensor.
fn dot<B: Backend, const D: usize>(a: Tensor<B, D>, c: Tensor<B, D>) -> Tensor<B, 1> {
    let n = a.shape().num_elements();
    a.reshape([1, n]).matmul(c.reshape([n, 1])).reshape([1])
}
