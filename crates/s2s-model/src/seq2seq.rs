//! The model a config describes, whichever family it is, and its teacher-forced loss.
//!
//! [`Seq2Seq`] is an enum over the two families so that training, checkpoints, decoding and
//! serving handle one type: each method matches once and calls the family's own code.

use burn::module::ModuleVisitor;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::batch::Seq2SeqBatch;
use crate::bert::BertConfig;
use crate::cache::{EncoderMemory, KvCache};
use crate::config::{ConfigError, ModelConfig, ModelFamily, VocabSizes};
use crate::loss::{fused_cross_entropy, sequence_cross_entropy, FusedLossOutput};
use crate::rnn::{RnnMemory, RnnSeq2Seq, RnnState};
use crate::transformer::TransformerSeq2Seq;

impl ModelConfig {
    /// Validates the configuration, then builds the model it describes on `device`: a
    /// Transformer with an encoder trained from scratch, or the RNN family. A configuration
    /// with `bert` set needs [`Self::init_with_bert`].
    ///
    /// # Errors
    /// [`ConfigError`] with one sentence for the first constraint the config breaks.
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
        Ok(match self.family {
            ModelFamily::Transformer => Seq2Seq::Transformer(self.init_transformer(vocab, device)),
            ModelFamily::Rnn => Seq2Seq::Rnn(self.init_rnn(vocab, device)),
        })
    }

    /// Builds the Transformer with a BERT encoder of `bert`'s shape (randomly initialised: load
    /// the pre-trained weights into [`TransformerSeq2Seq::source`] with
    /// [`crate::BertEncoder::load`]).
    ///
    /// # Errors
    /// [`ConfigError`] when the config does not fit the BERT (or is not a Transformer).
    pub fn init_with_bert<B: Backend>(
        &self,
        bert: &BertConfig,
        target_vocab: usize,
        device: &B::Device,
    ) -> Result<Seq2Seq<B>, ConfigError> {
        self.validate_with_bert(bert, target_vocab)?;
        Ok(Seq2Seq::Transformer(self.init_transformer_with_bert(
            bert,
            target_vocab,
            device,
        )))
    }
}

/// An encoder–decoder of either family.
#[derive(Module, Debug)]
pub enum Seq2Seq<B: Backend> {
    /// Transformer (or BERT) encoder, adapter, Transformer decoder.
    Transformer(TransformerSeq2Seq<B>),
    /// LSTM/GRU encoder and attentional LSTM/GRU decoder.
    Rnn(RnnSeq2Seq<B>),
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

/// The encoded source as either family's decoder reads it at every step.
#[derive(Clone, Debug)]
pub enum DecoderMemory<B: Backend> {
    /// Cross-attention keys/values of every Transformer layer.
    Transformer(EncoderMemory<B>),
    /// Encoder states, attention keys and the bridged initial state.
    Rnn(RnnMemory<B>),
}

/// The decoder's state between incremental steps.
#[derive(Debug)]
pub enum DecoderState<B: Backend> {
    /// The Transformer's self-attention key/value cache.
    Transformer(KvCache<B>),
    /// The RNN's layer states and input-feeding vector.
    Rnn(RnnState<B>),
}

/// Cross-attention weights of a teacher-forced pass: per layer `[batch_size, n_heads, tgt_len,
/// src_len]` (the RNN family has one layer of one head).
pub type CrossAttention<B> = Vec<Tensor<B, 4>>;

impl<B: Backend> DecoderMemory<B> {
    /// Rows of the batch.
    pub fn batch_size(&self) -> usize {
        match self {
            Self::Transformer(memory) => memory.batch_size(),
            Self::Rnn(memory) => memory.batch_size(),
        }
    }

    /// Picks (and repeats) batch rows, e.g. each source `num_beams` times.
    ///
    /// # Shapes
    /// - `rows`: `[new_batch_size]`
    pub fn select(&self, rows: Tensor<B, 1, Int>) -> Self {
        match self {
            Self::Transformer(memory) => Self::Transformer(memory.select(rows)),
            Self::Rnn(memory) => Self::Rnn(memory.select(rows)),
        }
    }

    fn device(&self) -> B::Device {
        match self {
            Self::Transformer(memory) => memory.pad_mask.device(),
            Self::Rnn(memory) => memory.pad_mask.device(),
        }
    }
}

impl<B: Backend> DecoderState<B> {
    /// Tokens fed so far.
    pub fn len(&self) -> usize {
        match self {
            Self::Transformer(cache) => cache.len(),
            Self::Rnn(state) => state.len,
        }
    }

    /// Whether no token has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` becomes row `rows[i]` (beams follow their parents); a shorter `rows` drops rows.
    ///
    /// # Shapes
    /// - `rows`: `[new_batch_size]`
    pub fn reorder(&mut self, rows: Tensor<B, 1, Int>) {
        match self {
            Self::Transformer(cache) => cache.reorder(rows),
            Self::Rnn(state) => state.reorder(rows),
        }
    }
}

/// The one place a mismatched memory/state pair is refused: both come from the same model, so
/// a mismatch is a bug in the caller.
fn mismatch() -> ! {
    panic!("decoder memory and state come from different model families")
}

impl<B: Backend> Seq2Seq<B> {
    /// Sets the label-smoothing ε (uniform over the vocabulary, as PyTorch's
    /// `CrossEntropyLoss(label_smoothing=ε)` and HF).
    pub fn with_label_smoothing(mut self, epsilon: f64) -> Self {
        match &mut self {
            Self::Transformer(model) => model.label_smoothing = epsilon,
            Self::Rnn(model) => model.label_smoothing = epsilon,
        }
        self
    }

    /// The label-smoothing ε the training loss uses.
    pub fn label_smoothing(&self) -> f64 {
        match self {
            Self::Transformer(model) => model.label_smoothing,
            Self::Rnn(model) => model.label_smoothing,
        }
    }

    /// Which family this model is.
    pub fn family(&self) -> ModelFamily {
        match self {
            Self::Transformer(_) => ModelFamily::Transformer,
            Self::Rnn(_) => ModelFamily::Rnn,
        }
    }

    /// Freezes the source side (embedding and encoder): the optimizer never updates it. The
    /// flag survives loading a checkpoint into the frozen model, so a resumed run stays frozen.
    pub fn freeze_encoder(self) -> Self {
        match self {
            Self::Transformer(model) => Self::Transformer(model.freeze_encoder()),
            Self::Rnn(model) => Self::Rnn(model.freeze_encoder()),
        }
    }

    /// Visits the source side's parameters (source embedding and encoder), e.g. to give them
    /// their own learning rate.
    pub fn visit_encoder<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        match self {
            Self::Transformer(model) => model.source.visit(visitor),
            Self::Rnn(model) => {
                model.source_embedding.visit(visitor);
                model.encoder.visit(visitor);
            }
        }
    }

    /// Parameters of the source side (embedding and encoder).
    pub fn encoder_num_params(&self) -> usize {
        match self {
            Self::Transformer(model) => model.source.num_params(),
            Self::Rnn(model) => model.source_embedding.num_params() + model.encoder.num_params(),
        }
    }

    /// The encoder states the decoder attends to.
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    /// - output: `[batch_size, src_len, d_memory]`
    pub fn encode(&self, source: Tensor<B, 2, Int>, pad_mask: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        match self {
            Self::Transformer(model) => model.encode(source, pad_mask),
            Self::Rnn(model) => model.encode(source, pad_mask).states,
        }
    }

    /// Teacher-forced decoder output states, before the vocabulary projection.
    ///
    /// # Shapes
    /// - output: `[batch_size, tgt_len, d_decoder]`
    pub fn decode_states(&self, batch: &Seq2SeqBatch<B>) -> Tensor<B, 3> {
        match self {
            Self::Transformer(model) => {
                let memory = model.encode(batch.source.clone(), batch.source_pad_mask.clone());
                model.decode_states(
                    batch.target_input.clone(),
                    memory,
                    batch.source_pad_mask.clone(),
                )
            }
            Self::Rnn(model) => {
                let memory =
                    model.encode_memory(batch.source.clone(), batch.source_pad_mask.clone());
                model.decode_states(batch.target_input.clone(), &memory).0
            }
        }
    }

    /// The vocabulary projection: logits = states · P.
    ///
    /// # Shapes
    /// - output: `[d_decoder, vocab_size]`
    pub fn output_projection(&self) -> Tensor<B, 2> {
        match self {
            Self::Transformer(model) => model.output_projection(),
            Self::Rnn(model) => model.output_projection(),
        }
    }

    /// Full teacher-forced forward pass: encode, decode, logits.
    ///
    /// # Shapes
    /// - output: `[batch_size, tgt_len, vocab_size]`
    pub fn forward(&self, batch: &Seq2SeqBatch<B>) -> Tensor<B, 3> {
        match self {
            Self::Transformer(model) => model.forward(batch),
            Self::Rnn(model) => {
                crate::linear::matmul_flat(self.decode_states(batch), model.output_projection())
            }
        }
    }

    /// Teacher-forced loss over non-pad labels.
    pub fn forward_loss(&self, batch: Seq2SeqBatch<B>) -> Seq2SeqOutput<B> {
        let logits = self.forward(&batch);
        let (loss, nll) = sequence_cross_entropy(
            logits.clone(),
            batch.target_labels.clone(),
            self.label_smoothing(),
        );
        Seq2SeqOutput {
            loss,
            nll,
            logits,
            labels: batch.target_labels,
        }
    }

    /// The cross-attention weights when `target_input` is teacher-forced: per Transformer layer
    /// `[batch_size, n_heads, tgt_len, src_len]`; for the RNN family one entry
    /// `[batch_size, 1, tgt_len, src_len]`. Row `t` holds the weights behind the token at
    /// position `t + 1`; padded source positions get 0 and every row sums to 1.
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]`; `target_input`: `[batch_size, tgt_len]`
    pub fn cross_attention(
        &self,
        source: Tensor<B, 2, Int>,
        pad_mask: Tensor<B, 2, Bool>,
        target_input: Tensor<B, 2, Int>,
    ) -> CrossAttention<B> {
        match self {
            Self::Transformer(model) => model.cross_attention(source, pad_mask, target_input),
            Self::Rnn(model) => {
                let memory = model.encode_memory(source, pad_mask);
                let (_, weights) = model.decode_states(target_input, &memory);
                vec![weights.unsqueeze_dim::<4>(1)]
            }
        }
    }

    /// Encodes the source once into everything incremental decoding reads from it.
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    pub fn encode_memory(
        &self,
        source: Tensor<B, 2, Int>,
        pad_mask: Tensor<B, 2, Bool>,
    ) -> DecoderMemory<B> {
        match self {
            Self::Transformer(model) => {
                DecoderMemory::Transformer(model.encode_memory(source, pad_mask))
            }
            Self::Rnn(model) => DecoderMemory::Rnn(model.encode_memory(source, pad_mask)),
        }
    }

    /// An empty decoder state for `memory`'s batch, for up to `capacity` tokens fed (at most
    /// [`Self::max_target_positions`]).
    pub fn init_state(&self, memory: &DecoderMemory<B>, capacity: usize) -> DecoderState<B> {
        match (self, memory) {
            (Self::Transformer(model), DecoderMemory::Transformer(_)) => DecoderState::Transformer(
                model.init_cache(memory.batch_size(), capacity, &memory.device()),
            ),
            (Self::Rnn(model), DecoderMemory::Rnn(memory)) => {
                DecoderState::Rnn(model.decoder.init_state(memory))
            }
            _ => mismatch(),
        }
    }

    /// One incremental step: feeds one token per row (`<s>` first) and returns the logits of
    /// the next position.
    ///
    /// # Shapes
    /// - `tokens`: `[batch_size]` → `[batch_size, vocab_size]`
    pub fn decode_step(
        &self,
        tokens: Tensor<B, 1, Int>,
        memory: &DecoderMemory<B>,
        state: &mut DecoderState<B>,
    ) -> Tensor<B, 2> {
        match (self, memory, state) {
            (
                Self::Transformer(model),
                DecoderMemory::Transformer(memory),
                DecoderState::Transformer(cache),
            ) => {
                let [batch_size] = tokens.dims();
                let logits = model.decode_step(tokens.reshape([batch_size, 1]), memory, cache);
                let vocab_size = logits.dims()[2];
                logits.reshape([batch_size, vocab_size])
            }
            (Self::Rnn(model), DecoderMemory::Rnn(memory), DecoderState::Rnn(state)) => {
                model.decode_step(tokens, memory, state).0
            }
            _ => mismatch(),
        }
    }

    /// Longest target prefix (with `<s>`) the model can decode, in tokens.
    pub fn max_target_positions(&self) -> usize {
        match self {
            Self::Transformer(model) => model.max_target_positions(),
            Self::Rnn(model) => model.max_target_positions(),
        }
    }
}

impl<B: AutodiffBackend> Seq2Seq<B> {
    /// The teacher-forced training loss of [`Seq2Seq::forward_loss`] (same value, same
    /// gradients up to float rounding) with the output projection and the cross-entropy fused
    /// on the inner backend (`crate::loss`).
    pub fn forward_loss_fused(&self, batch: Seq2SeqBatch<B>) -> FusedLossOutput<B> {
        let h = self.decode_states(&batch);
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
