//! The RNN family's encoder: stacked LSTM/GRU layers, optionally bidirectional, over the padded
//! source.

use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use super::cell::{step_masks, CellState, RecurrentCell, RecurrentCellConfig};
use crate::config::CellKind;

/// Configuration of [`RnnEncoder`].
#[derive(Config, Debug)]
pub struct RnnEncoderConfig {
    /// `lstm` or `gru`.
    pub kind: CellKind,
    /// Width of the source embeddings.
    pub d_input: usize,
    /// Hidden size of each direction.
    pub d_hidden: usize,
    /// Stacked layers.
    pub n_layers: usize,
    /// Whether a right-to-left layer runs beside each left-to-right one.
    pub bidirectional: bool,
    /// Dropout on the outputs of every layer but the last (as `torch.nn.LSTM(dropout=…)`).
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl RnnEncoderConfig {
    /// Builds the encoder.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RnnEncoder<B> {
        let directions = if self.bidirectional { 2 } else { 1 };
        let layer = |index: usize| {
            let d_input = if index == 0 {
                self.d_input
            } else {
                directions * self.d_hidden
            };
            RecurrentCellConfig::new(self.kind, d_input, self.d_hidden).init(device)
        };
        RnnEncoder {
            forward: (0..self.n_layers).map(layer).collect(),
            backward: if self.bidirectional {
                (0..self.n_layers).map(layer).collect()
            } else {
                Vec::new()
            },
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// Encoder states and the final state of every layer.
#[derive(Clone, Debug)]
pub struct RnnEncoderOutput<B: Backend> {
    /// `[batch_size, src_len, directions·d_hidden]`, 0 at padding.
    pub states: Tensor<B, 3>,
    /// Per layer, the state after each sentence's last real token: `[batch_size,
    /// directions·d_hidden]` (left-to-right and right-to-left concatenated).
    pub finals: Vec<CellState<B>>,
}

/// Stacked (bi)directional LSTM/GRU layers.
#[derive(Module, Debug)]
pub struct RnnEncoder<B: Backend> {
    /// Left-to-right layers.
    pub forward: Vec<RecurrentCell<B>>,
    /// Right-to-left layers (empty when unidirectional).
    pub backward: Vec<RecurrentCell<B>>,
    dropout: Dropout,
}

impl<B: Backend> RnnEncoder<B> {
    /// Width of an encoder state: `directions · d_hidden`.
    pub fn d_output(&self) -> usize {
        let d_hidden = self.forward.first().map_or(0, RecurrentCell::d_hidden);
        if self.backward.is_empty() {
            d_hidden
        } else {
            2 * d_hidden
        }
    }

    /// Encodes a padded batch; padding never reaches a real token's state in either direction.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, src_len, d_input]`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    pub fn forward(&self, x: Tensor<B, 3>, pad_mask: Tensor<B, 2, Bool>) -> RnnEncoderOutput<B> {
        let n_layers = self.forward.len();
        let d_hidden = self.forward.first().map_or(0, RecurrentCell::d_hidden);
        // Split once for every layer and direction.
        let steps = step_masks(pad_mask, d_hidden);
        let mut x = x;
        let mut finals = Vec::with_capacity(n_layers);
        for index in 0..n_layers {
            let (out, last) = self.forward[index].run_masked(x.clone(), &steps, false);
            let (out, last) = match self.backward.get(index) {
                Some(backward) => {
                    let (back, back_last) = backward.run_masked(x, &steps, true);
                    let last = CellState {
                        hidden: Tensor::cat(vec![last.hidden, back_last.hidden], 1),
                        cell: match (last.cell, back_last.cell) {
                            (Some(f), Some(b)) => Some(Tensor::cat(vec![f, b], 1)),
                            _ => None,
                        },
                    };
                    (Tensor::cat(vec![out, back], 2), last)
                }
                None => (out, last),
            };
            finals.push(last);
            x = if index + 1 < n_layers {
                self.dropout.forward(out)
            } else {
                out
            };
        }
        RnnEncoderOutput { states: x, finals }
    }
}
