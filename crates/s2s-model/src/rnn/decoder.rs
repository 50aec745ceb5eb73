//! The RNN family's decoder: stacked LSTM/GRU layers with global attention and input feeding
//! (Luong et al., 2015, §3.3), started from the encoder's final states.

use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::tanh;

use super::attention::{Attended, RnnAttention, RnnAttentionConfig};
use super::cell::{CellState, RecurrentCell, RecurrentCellConfig};
use crate::config::{AttentionKind, CellKind};

/// Configuration of [`RnnDecoder`].
#[derive(Config, Debug)]
pub struct RnnDecoderConfig {
    /// `lstm` or `gru`.
    pub kind: CellKind,
    /// `bahdanau` or `luong`.
    pub attention: AttentionKind,
    /// Width of the target embeddings.
    pub d_embedding: usize,
    /// Hidden size of every layer and of the attentional state `h̃_t`.
    pub d_hidden: usize,
    /// Width of an encoder state, which is also the width of its final state per layer; a
    /// bridge maps the final states to `d_hidden` when the two differ.
    pub d_memory: usize,
    /// Stacked layers.
    pub n_layers: usize,
    /// Dropout between layers and on `h̃_t`.
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl RnnDecoderConfig {
    /// Builds the decoder.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RnnDecoder<B> {
        let linear = |d_in: usize, d_out: usize, bias: bool| {
            LinearConfig::new(d_in, d_out)
                .with_bias(bias)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        let layers = (0..self.n_layers)
            .map(|index| {
                // The first layer reads the embedding and the previous h̃ (input feeding).
                let d_input = if index == 0 {
                    self.d_embedding + self.d_hidden
                } else {
                    self.d_hidden
                };
                RecurrentCellConfig::new(self.kind, d_input, self.d_hidden).init(device)
            })
            .collect();
        let bridge = (self.d_memory != self.d_hidden).then(|| Bridge {
            hidden: linear(self.d_memory, self.d_hidden, true),
            cell: (self.kind == CellKind::Lstm).then(|| linear(self.d_memory, self.d_hidden, true)),
        });
        RnnDecoder {
            layers,
            attention: RnnAttentionConfig::new(self.attention, self.d_hidden, self.d_memory)
                .init(device),
            combine: linear(self.d_memory + self.d_hidden, self.d_hidden, false),
            bridge,
            dropout: DropoutConfig::new(self.dropout).init(),
            d_embedding: self.d_embedding,
        }
    }
}

/// Maps the encoder's final states to the decoder's initial ones, `tanh(W s + b)` per layer
/// (Bahdanau et al., 2015, A.2.2: `s_0 = tanh(W_s h̄_1)`), when their widths differ.
#[derive(Module, Debug)]
pub struct Bridge<B: Backend> {
    /// For the hidden state.
    pub hidden: Linear<B>,
    /// For an LSTM's cell state.
    pub cell: Option<Linear<B>>,
}

/// The decoder's state between steps: every layer's cell state and the input-feeding vector.
///
/// # Shapes
/// every tensor has `batch_size` rows
#[derive(Clone, Debug)]
pub struct RnnState<B: Backend> {
    /// Per layer, `[batch_size, d_hidden]`.
    pub layers: Vec<CellState<B>>,
    /// `h̃_{t-1}`, `[batch_size, d_hidden]` (zeros before the first step).
    pub feed: Tensor<B, 2>,
    /// Tokens fed so far.
    pub len: usize,
}

impl<B: Backend> RnnState<B> {
    /// Row `i` becomes row `rows[i]` (beams follow their parents; a shorter `rows` drops rows).
    ///
    /// # Shapes
    /// - `rows`: `[new_batch_size]`
    pub fn reorder(&mut self, rows: Tensor<B, 1, Int>) {
        for layer in &mut self.layers {
            *layer = layer.select(rows.clone());
        }
        self.feed = self.feed.clone().select(0, rows);
    }
}

/// What the decoder reads from the source: encoder states, their attention keys and the
/// decoder's initial state.
#[derive(Clone, Debug)]
pub struct RnnMemory<B: Backend> {
    /// `[batch_size, src_len, d_memory]`
    pub states: Tensor<B, 3>,
    /// `[batch_size, src_len, d_hidden]`, the encoder side of the attention score.
    pub keys: Tensor<B, 3>,
    /// `[batch_size, src_len]`, `true` at padding.
    pub pad_mask: Tensor<B, 2, Bool>,
    /// The decoder's initial state per layer, `[batch_size, d_hidden]`.
    pub initial: Vec<CellState<B>>,
    /// `[d_hidden, G·d_hidden]`: the input-feeding rows of the first layer's input matrix
    /// ([`RnnDecoder::feed_weight`]), sliced once per batch rather than per step.
    pub feed_weight: Tensor<B, 2>,
    /// `[d_hidden, vocab_size]`: the tied output projection laid out once per batch; `None`
    /// when untied.
    pub projection: Option<Tensor<B, 2>>,
}

impl<B: Backend> RnnMemory<B> {
    /// Rows of the batch.
    pub fn batch_size(&self) -> usize {
        self.pad_mask.dims()[0]
    }

    /// Picks (and repeats) batch rows.
    ///
    /// # Shapes
    /// - `rows`: `[new_batch_size]`
    pub fn select(&self, rows: Tensor<B, 1, Int>) -> Self {
        Self {
            states: self.states.clone().select(0, rows.clone()),
            keys: self.keys.clone().select(0, rows.clone()),
            pad_mask: self.pad_mask.clone().select(0, rows.clone()),
            initial: self
                .initial
                .iter()
                .map(|s| s.select(rows.clone()))
                .collect(),
            feed_weight: self.feed_weight.clone(),
            projection: self.projection.clone(),
        }
    }
}

/// Stacked LSTM/GRU layers, attention and the attentional layer `h̃_t = tanh(W_c [c_t; h_t])`.
#[derive(Module, Debug)]
pub struct RnnDecoder<B: Backend> {
    /// The recurrent layers; the first reads `[embedding; h̃_{t-1}]`.
    pub layers: Vec<RecurrentCell<B>>,
    /// Bahdanau or Luong attention over the encoder states.
    pub attention: RnnAttention<B>,
    /// `W_c`, `[d_memory + d_hidden, d_hidden]` (Luong et al., 2015, eq. 5).
    pub combine: Linear<B>,
    /// Maps encoder final states to the decoder's width (bidirectional encoders).
    pub bridge: Option<Bridge<B>>,
    dropout: Dropout,
    d_embedding: usize,
}

impl<B: Backend> RnnDecoder<B> {
    /// Width of `h̃_t`.
    pub fn d_hidden(&self) -> usize {
        self.layers.first().map_or(0, RecurrentCell::d_hidden)
    }

    /// The decoder's initial state per layer from the encoder's final states (through the
    /// bridge when the widths differ).
    ///
    /// # Shapes
    /// - `finals`: per layer `[batch_size, d_memory]` → per layer `[batch_size, d_hidden]`
    pub fn initial_state(&self, finals: Vec<CellState<B>>) -> Vec<CellState<B>> {
        let Some(bridge) = &self.bridge else {
            return finals;
        };
        finals
            .into_iter()
            .map(|state| CellState {
                hidden: tanh(bridge.hidden.forward(state.hidden)),
                cell: match (&bridge.cell, state.cell) {
                    (Some(linear), Some(cell)) => Some(tanh(linear.forward(cell))),
                    _ => None,
                },
            })
            .collect()
    }

    /// A state for `memory`'s batch, before the first token.
    pub fn init_state(&self, memory: &RnnMemory<B>) -> RnnState<B> {
        RnnState {
            layers: memory.initial.clone(),
            feed: Tensor::zeros(
                [memory.batch_size(), self.d_hidden()],
                &memory.pad_mask.device(),
            ),
            len: 0,
        }
    }

    /// The embedding part of the first layer's input projection for every position at once
    /// (the input-feeding part depends on the previous step and is added per step).
    ///
    /// # Shapes
    /// - `embedded`: `[batch_size, len, d_embedding]` → `[batch_size, len, G·d_hidden]`
    pub fn project_embedded(&self, embedded: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch_size, len, d_embedding] = embedded.dims();
        let first = &self.layers[0].input;
        let weight = first.weight.val();
        let gates = weight.dims()[1];
        let projected = embedded
            .reshape([batch_size * len, d_embedding])
            .matmul(weight.slice([0..d_embedding, 0..gates]));
        let projected = match &first.bias {
            Some(bias) => projected + bias.val().unsqueeze_dim(0),
            None => projected,
        };
        projected.reshape([batch_size, len, gates])
    }

    /// The input-feeding rows of the first layer's input matrix, `[d_hidden, G·d_hidden]` (what
    /// [`RnnMemory::feed_weight`] holds).
    pub fn feed_weight(&self) -> Tensor<B, 2> {
        let weight = self.layers[0].input.weight.val();
        let [rows, gates] = weight.dims();
        weight.slice([self.d_embedding..rows, 0..gates])
    }

    /// One step: the first layer's embedding projection of this position in, `h̃_t` and the
    /// attention weights out; `state` advances by one token.
    ///
    /// # Shapes
    /// - `embedded_gates`: `[batch_size, G·d_hidden]` (a row of [`Self::project_embedded`])
    /// - output: `h̃_t` `[batch_size, d_hidden]`, weights `[batch_size, src_len]`
    pub fn step(
        &self,
        embedded_gates: Tensor<B, 2>,
        memory: &RnnMemory<B>,
        state: &mut RnnState<B>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let input_gates = embedded_gates + state.feed.clone().matmul(memory.feed_weight.clone());
        let n_layers = self.layers.len();
        let mut x = None;
        for (index, (layer, slot)) in self.layers.iter().zip(&mut state.layers).enumerate() {
            let new = match x.take() {
                None => layer.step_projected(input_gates.clone(), slot.clone()),
                Some(x) => layer.step(x, slot.clone()),
            };
            let h = new.hidden.clone();
            *slot = new;
            x = Some(if index + 1 < n_layers {
                self.dropout.forward(h)
            } else {
                h
            });
        }
        let top = x.expect("the decoder has at least one layer");
        let Attended { context, weights } = self.attention.forward(
            top.clone(),
            memory.keys.clone(),
            memory.states.clone(),
            memory.pad_mask.clone(),
        );
        let attentional = tanh(self.combine.forward(Tensor::cat(vec![context, top], 1)));
        let attentional = self.dropout.forward(attentional);
        state.feed = attentional.clone();
        state.len += 1;
        (attentional, weights)
    }
}
