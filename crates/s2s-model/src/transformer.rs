//! The Transformer family: encoder (or pre-trained BERT) → adapter → Transformer decoder, and
//! its teacher-forced loss.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

use crate::adapter::{Adapter, AdapterModuleConfig};
use crate::batch::Seq2SeqBatch;
use crate::bert::{BertConfig, BertEncoder};
use crate::cache::{EncoderMemory, KvCache};
use crate::config::{ModelConfig, VocabSizes};
use crate::decoder::{TransformerDecoder, TransformerDecoderConfig};
use crate::embedding::{TokenEmbedding, TokenEmbeddingConfig};
use crate::encoder::{TransformerEncoder, TransformerEncoderConfig};
use crate::linear::{matmul_flat, tied_projection};

impl ModelConfig {
    /// Builds the Transformer with an encoder trained from scratch (the caller validated
    /// `self` and checked that no BERT is named).
    pub(crate) fn init_transformer<B: Backend>(
        &self,
        vocab: VocabSizes,
        device: &B::Device,
    ) -> TransformerSeq2Seq<B> {
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
        self.assemble(source, enc.d_model, vocab.target, device)
    }

    /// Builds the Transformer with a BERT encoder of `bert`'s shape (the caller validated
    /// `self` against `bert`).
    pub(crate) fn init_transformer_with_bert<B: Backend>(
        &self,
        bert: &BertConfig,
        target_vocab: usize,
        device: &B::Device,
    ) -> TransformerSeq2Seq<B> {
        let source = SourceEncoder::Bert(bert.init(device));
        self.assemble(source, bert.hidden_size, target_vocab, device)
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
    ) -> TransformerSeq2Seq<B> {
        let dec = &self.decoder;
        let output = (!self.tie_output_embedding).then(|| {
            LinearConfig::new(dec.d_model, target_vocab)
                .with_bias(false)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        });
        TransformerSeq2Seq {
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
pub struct TransformerSeq2Seq<B: Backend> {
    /// Source embedding and encoder (Transformer or pre-trained BERT).
    pub source: SourceEncoder<B>,
    pub target_embedding: TokenEmbedding<B>,
    pub adapter: Adapter<B>,
    pub decoder: TransformerDecoder<B>,
    /// Untied output projection; `None` when tied to the target embedding.
    pub output: Option<Linear<B>>,
    /// Label-smoothing ε of the training loss (a training setting, not persisted).
    pub(crate) label_smoothing: f64,
}

impl<B: Backend> TransformerSeq2Seq<B> {
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

    /// The cross-attention probabilities of every decoder layer when `target_input` is
    /// teacher-forced: the weights the decoder gave each source token while producing each
    /// target position (equal to what cached decoding of the same tokens computes).
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]`; `target_input`: `[batch_size, tgt_len]`
    /// - output: per layer `[batch_size, n_heads, tgt_len, src_len]`
    pub fn cross_attention(
        &self,
        source: Tensor<B, 2, Int>,
        pad_mask: Tensor<B, 2, Bool>,
        target_input: Tensor<B, 2, Int>,
    ) -> Vec<Tensor<B, 4>> {
        let memory = self.encode(source, pad_mask.clone());
        let key_values = self.decoder.project_memory(memory);
        let x = self.target_embedding.forward(target_input, 0);
        self.decoder.cross_attention(x, &key_values, pad_mask)
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

    /// Maps decoder states to vocabulary logits (tied or untied).
    ///
    /// # Shapes
    /// - `h`: `[batch_size, tgt_len, d_decoder]` → `[batch_size, tgt_len, vocab_size]`
    pub fn project(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.output {
            Some(linear) => crate::linear::forward_flat(linear, h),
            // [V, D] -> [D, V]
            None => matmul_flat(h, self.target_embedding.token_weights().transpose()),
        }
    }

    /// [`Self::project`] with the tied projection `memory` laid out once per batch.
    fn project_with(&self, h: Tensor<B, 3>, memory: &EncoderMemory<B>) -> Tensor<B, 3> {
        match &memory.projection {
            Some(weights) => matmul_flat(h, weights.clone()),
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
        let projection = self
            .output
            .is_none()
            .then(|| tied_projection(self.target_embedding.token_weights()));
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
}
