//! The recurrent family: an LSTM/GRU encoder (optionally bidirectional) and an LSTM/GRU decoder
//! with Bahdanau or Luong attention and input feeding — the pre-Transformer seq2seq of
//! Bahdanau et al. (2015) and Luong et al. (2015), as fairseq's `lstm` and OpenNMT-py's `rnn`
//! build it.

pub mod attention;
pub mod cell;
pub mod decoder;
pub mod encoder;

use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig,
};
use burn::prelude::*;

pub use attention::{Attended, RnnAttention, RnnAttentionConfig};
pub use cell::{CellState, RecurrentCell, RecurrentCellConfig};
pub use decoder::{Bridge, RnnDecoder, RnnDecoderConfig, RnnMemory, RnnState};
pub use encoder::{RnnEncoder, RnnEncoderConfig, RnnEncoderOutput};

use crate::config::{ModelConfig, VocabSizes};
use crate::linear::tied_projection;

impl ModelConfig {
    /// Builds the RNN family's model (the caller validated `self`).
    pub(crate) fn init_rnn<B: Backend>(
        &self,
        vocab: VocabSizes,
        device: &B::Device,
    ) -> RnnSeq2Seq<B> {
        let rnn = self.rnn();
        // N(0, 1), PyTorch's `nn.Embedding` default. fairseq's LSTM init, uniform in ±0.1, left
        // the quickstart-sized model (tied output) at the unigram loss for three epochs (valid
        // loss 6.53): the token signal entering the first layer is too weak against the
        // biases and the recurrent input. The PyTorch reference on the same 200 batches:
        // 6.78 (±0.1) against 5.64 (N(0, 1)); docs/performance.md.
        let embedding = |vocab_size: usize| {
            EmbeddingConfig::new(vocab_size, rnn.embedding_size)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 1.0,
                })
                .init(device)
        };
        let encoder = RnnEncoderConfig::new(
            rnn.cell,
            rnn.embedding_size,
            rnn.hidden_size,
            rnn.n_layers,
            rnn.bidirectional,
        )
        .with_dropout(self.dropout)
        .init(device);
        let d_memory = encoder.d_output();
        let decoder = RnnDecoderConfig::new(
            rnn.cell,
            rnn.attention,
            rnn.embedding_size,
            rnn.hidden_size,
            d_memory,
            rnn.n_layers,
        )
        .with_dropout(self.dropout)
        .init(device);
        let output = (!self.tie_output_embedding).then(|| {
            LinearConfig::new(rnn.hidden_size, vocab.target)
                .with_bias(false)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        });
        RnnSeq2Seq {
            source_embedding: embedding(vocab.source),
            target_embedding: embedding(vocab.target),
            encoder,
            decoder,
            output,
            dropout: DropoutConfig::new(self.dropout).init(),
            max_positions: self.max_positions,
            label_smoothing: 0.0,
        }
    }
}

/// Source embedding → RNN encoder → attentional RNN decoder → vocabulary.
#[derive(Module, Debug)]
pub struct RnnSeq2Seq<B: Backend> {
    /// `[source_vocab, embedding_size]`
    pub source_embedding: Embedding<B>,
    /// `[target_vocab, embedding_size]`; also the output projection when tied.
    pub target_embedding: Embedding<B>,
    /// The (bi)directional LSTM/GRU stack.
    pub encoder: RnnEncoder<B>,
    /// The attentional LSTM/GRU stack.
    pub decoder: RnnDecoder<B>,
    /// Untied output projection `[hidden_size, target_vocab]`; `None` when tied.
    pub output: Option<Linear<B>>,
    dropout: Dropout,
    max_positions: usize,
    /// Label-smoothing ε of the training loss (a training setting, not persisted).
    pub(crate) label_smoothing: f64,
}

impl<B: Backend> RnnSeq2Seq<B> {
    /// The encoder's states and final states.
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    pub fn encode(
        &self,
        source: Tensor<B, 2, Int>,
        pad_mask: Tensor<B, 2, Bool>,
    ) -> RnnEncoderOutput<B> {
        let embedded = self.dropout.forward(self.source_embedding.forward(source));
        self.encoder.forward(embedded, pad_mask)
    }

    /// Encodes the source, projects the attention keys once and bridges the final states; the
    /// weights every step reads (the input-feeding rows, a tied projection) are laid out here,
    /// once per batch.
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    pub fn encode_memory(
        &self,
        source: Tensor<B, 2, Int>,
        pad_mask: Tensor<B, 2, Bool>,
    ) -> RnnMemory<B> {
        let encoded = self.encode(source, pad_mask.clone());
        let projection = self
            .output
            .is_none()
            .then(|| tied_projection(self.target_embedding.weight.val()));
        RnnMemory {
            keys: self.decoder.attention.project_keys(encoded.states.clone()),
            states: encoded.states,
            pad_mask,
            initial: self.decoder.initial_state(encoded.finals),
            feed_weight: self.decoder.feed_weight(),
            projection,
        }
    }

    /// Teacher-forced decoding: the attentional states `h̃_t` of every position and the
    /// attention weights behind them. Input feeding makes this a loop over positions.
    ///
    /// # Shapes
    /// - `target_input`: `[batch_size, tgt_len]`
    /// - output: `[batch_size, tgt_len, hidden_size]`, weights `[batch_size, tgt_len, src_len]`
    pub fn decode_states(
        &self,
        target_input: Tensor<B, 2, Int>,
        memory: &RnnMemory<B>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [batch_size, tgt_len] = target_input.dims();
        let embedded = self
            .dropout
            .forward(self.target_embedding.forward(target_input));
        let projected = self.decoder.project_embedded(embedded);
        let gates = projected.dims()[2];
        let mut state = self.decoder.init_state(memory);
        let mut outputs = Vec::with_capacity(tgt_len);
        let mut weights = Vec::with_capacity(tgt_len);
        for t in 0..tgt_len {
            let row = projected
                .clone()
                .slice([0..batch_size, t..t + 1, 0..gates])
                .reshape([batch_size, gates]);
            let (h, alpha) = self.decoder.step(row, memory, &mut state);
            outputs.push(h.unsqueeze_dim::<3>(1));
            weights.push(alpha.unsqueeze_dim::<3>(1));
        }
        (Tensor::cat(outputs, 1), Tensor::cat(weights, 1))
    }

    /// One incremental step: feeds `tokens` (one per row, `<s>` first) and returns the logits of
    /// the next position and the attention weights of this step.
    ///
    /// # Shapes
    /// - `tokens`: `[batch_size]` → `[batch_size, vocab_size]`, weights `[batch_size, src_len]`
    pub fn decode_step(
        &self,
        tokens: Tensor<B, 1, Int>,
        memory: &RnnMemory<B>,
        state: &mut RnnState<B>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [batch_size] = tokens.dims();
        let embedded = self.dropout.forward(
            self.target_embedding
                .forward(tokens.reshape([batch_size, 1])),
        );
        let projected = self.decoder.project_embedded(embedded);
        let gates = projected.dims()[2];
        let (h, weights) = self
            .decoder
            .step(projected.reshape([batch_size, gates]), memory, state);
        let logits = match &memory.projection {
            Some(projection) => h.matmul(projection.clone()),
            None => h.matmul(self.output_projection()),
        };
        (logits, weights)
    }

    /// The vocabulary projection as a matrix: the transposed target embedding when tied, else
    /// the output layer's weight.
    ///
    /// # Shapes
    /// - output: `[hidden_size, vocab_size]`
    pub fn output_projection(&self) -> Tensor<B, 2> {
        match &self.output {
            Some(linear) => linear.weight.val(),
            None => self.target_embedding.weight.val().transpose(),
        }
    }

    /// Longest target prefix (with `<s>`) decoding may produce: `model.max_positions`.
    pub fn max_target_positions(&self) -> usize {
        self.max_positions
    }

    /// Freezes the source embedding and the encoder (the bridge, attention and decoder train).
    pub fn freeze_encoder(self) -> Self {
        Self {
            source_embedding: self.source_embedding.no_grad(),
            encoder: self.encoder.no_grad(),
            ..self
        }
    }
}

#[cfg(test)]
mod tests;
