//! LSTM and GRU cells in PyTorch's parameter layout, stepped by the caller.
//!
//! burn-nn 0.21's `Lstm`/`Gru` were not used: they take no padding mask (the reverse direction
//! of `BiLstm`/`BiGru` starts on the padding of shorter sentences, and the final state is the
//! one after the padding), they return only the state after the last position, and each gate
//! is its own pair of `Linear`s (eight matrix products per LSTM step). These cells keep all
//! gates in one `[d_input, G·d_hidden]` input matrix and one `[d_hidden, G·d_hidden]` hidden
//! matrix (`G` = 4 for LSTM, 3 for GRU; gate order `i f g o` and `r z n` as `torch.nn.LSTM`
//! and `torch.nn.GRU`), so a whole sequence's input projection is one product and a step is one
//! more; [`RecurrentCell::run`] carries the state unchanged through padding.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, tanh};

use crate::config::CellKind;
use crate::linear::forward_flat;

/// Configuration of [`RecurrentCell`].
#[derive(Config, Debug)]
pub struct RecurrentCellConfig {
    /// `lstm` or `gru`.
    pub kind: CellKind,
    /// Width of the input at each step.
    pub d_input: usize,
    /// Width of the hidden state.
    pub d_hidden: usize,
}

impl RecurrentCellConfig {
    /// Builds the cell with PyTorch's initialisation: every weight and bias uniform in
    /// `±1/√d_hidden`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RecurrentCell<B> {
        let gates = match self.kind {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        };
        let bound = (self.d_hidden as f64).sqrt().recip();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let linear = |d_in: usize| {
            LinearConfig::new(d_in, gates * self.d_hidden)
                .with_initializer(init.clone())
                .init(device)
        };
        RecurrentCell {
            input: linear(self.d_input),
            hidden: linear(self.d_hidden),
            gates,
            d_hidden: self.d_hidden,
        }
    }
}

/// The state a cell carries from one step to the next.
///
/// # Shapes
/// - `hidden`, `cell`: `[batch_size, d_hidden]`; `cell` only for an LSTM
#[derive(Clone, Debug)]
pub struct CellState<B: Backend> {
    /// `h_t`, also the cell's output.
    pub hidden: Tensor<B, 2>,
    /// `c_t` of an LSTM; `None` for a GRU.
    pub cell: Option<Tensor<B, 2>>,
}

impl<B: Backend> CellState<B> {
    /// Rows `rows` of the state (beams follow their parents).
    ///
    /// # Shapes
    /// - `rows`: `[new_batch_size]`
    pub fn select(&self, rows: Tensor<B, 1, Int>) -> Self {
        Self {
            hidden: self.hidden.clone().select(0, rows.clone()),
            cell: self.cell.clone().map(|c| c.select(0, rows)),
        }
    }

    /// Keeps `self` where `pad` is true and takes `new` elsewhere.
    ///
    /// # Shapes
    /// - `pad`: `[batch_size, d_hidden]`
    fn keep_where(self, pad: Tensor<B, 2, Bool>, new: Self) -> Self {
        Self {
            hidden: new.hidden.mask_where(pad.clone(), self.hidden),
            cell: match (new.cell, self.cell) {
                (Some(new), Some(old)) => Some(new.mask_where(pad, old)),
                (new, _) => new,
            },
        }
    }
}

/// One LSTM or GRU layer, stepped by the caller or run over a masked sequence.
#[derive(Module, Debug)]
pub struct RecurrentCell<B: Backend> {
    /// `x·W_ih + b_ih`, all gates: `[d_input, G·d_hidden]` (PyTorch's `weight_ih_l0` transposed).
    pub input: Linear<B>,
    /// `h·W_hh + b_hh`, all gates: `[d_hidden, G·d_hidden]`.
    pub hidden: Linear<B>,
    gates: usize,
    d_hidden: usize,
}

impl<B: Backend> RecurrentCell<B> {
    /// Width of the hidden state.
    pub fn d_hidden(&self) -> usize {
        self.d_hidden
    }

    /// Whether this is an LSTM (it carries a cell state).
    pub fn is_lstm(&self) -> bool {
        self.gates == 4
    }

    /// The zero state PyTorch starts from.
    pub fn zero_state(&self, batch_size: usize, device: &B::Device) -> CellState<B> {
        let zeros = || Tensor::zeros([batch_size, self.d_hidden], device);
        CellState {
            hidden: zeros(),
            cell: self.is_lstm().then(zeros),
        }
    }

    /// The input projection of every position at once (one matrix product).
    ///
    /// # Shapes
    /// - `x`: `[batch_size, len, d_input]` → `[batch_size, len, G·d_hidden]`
    pub fn project_input(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        forward_flat(&self.input, x)
    }

    /// One step from the input `x`.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, d_input]`; state: `[batch_size, d_hidden]`
    pub fn step(&self, x: Tensor<B, 2>, state: CellState<B>) -> CellState<B> {
        self.step_projected(self.input.forward(x), state)
    }

    /// One step from an input already projected by [`Self::project_input`]: PyTorch's
    /// equations (`torch.nn.LSTMCell`, `torch.nn.GRUCell`).
    ///
    /// # Shapes
    /// - `input_gates`: `[batch_size, G·d_hidden]`; state: `[batch_size, d_hidden]`
    pub fn step_projected(&self, input_gates: Tensor<B, 2>, state: CellState<B>) -> CellState<B> {
        let hidden_gates = self.hidden.forward(state.hidden.clone());
        let [batch_size, _] = input_gates.dims();
        let h = self.d_hidden;
        let gate =
            |t: &Tensor<B, 2>, k: usize| t.clone().slice([0..batch_size, k * h..(k + 1) * h]);
        match state.cell {
            Some(c) => {
                // i, f, g, o
                let gates = input_gates + hidden_gates;
                let i = sigmoid(gate(&gates, 0));
                let f = sigmoid(gate(&gates, 1));
                let g = tanh(gate(&gates, 2));
                let o = sigmoid(gate(&gates, 3));
                let cell = f * c + i * g;
                CellState {
                    hidden: o * tanh(cell.clone()),
                    cell: Some(cell),
                }
            }
            None => {
                // r, z, n; the reset gate scales the hidden projection including its bias
                let r = sigmoid(gate(&input_gates, 0) + gate(&hidden_gates, 0));
                let z = sigmoid(gate(&input_gates, 1) + gate(&hidden_gates, 1));
                let n = tanh(gate(&input_gates, 2) + r * gate(&hidden_gates, 2));
                let hidden = n.clone() + z * (state.hidden - n);
                CellState { hidden, cell: None }
            }
        }
    }

    /// Runs the layer over a padded sequence, left to right or (`reverse`) right to left. At a
    /// padded position the state passes through unchanged and the output is 0, so a sentence's
    /// outputs and final state do not depend on how much padding its batch has, in either
    /// direction.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, len, d_input]`, `pad_mask`: `[batch_size, len]` (`true` = pad)
    /// - output: `[batch_size, len, d_hidden]` and the final state
    pub fn run(
        &self,
        x: Tensor<B, 3>,
        pad_mask: Tensor<B, 2, Bool>,
        reverse: bool,
    ) -> (Tensor<B, 3>, CellState<B>) {
        let steps = step_masks(pad_mask, self.d_hidden);
        self.run_masked(x, &steps, reverse)
    }

    /// [`Self::run`] with the padding mask already split by [`step_masks`], so that the layers
    /// and directions of a stack share one split.
    ///
    /// # Shapes
    /// - `x`: `[batch_size, len, d_input]`; `steps`: `len` masks `[batch_size, d_hidden]`
    pub fn run_masked(
        &self,
        x: Tensor<B, 3>,
        steps: &[Tensor<B, 2, Bool>],
        reverse: bool,
    ) -> (Tensor<B, 3>, CellState<B>) {
        let [batch_size, len, _] = x.dims();
        let device = x.device();
        let projected = self.project_input(x);
        let gates = projected.dims()[2];
        let mut state = self.zero_state(batch_size, &device);
        let mut outputs = vec![None; len];
        let order: Box<dyn Iterator<Item = usize>> = if reverse {
            Box::new((0..len).rev())
        } else {
            Box::new(0..len)
        };
        for t in order {
            let input = projected
                .clone()
                .slice([0..batch_size, t..t + 1, 0..gates])
                .reshape([batch_size, gates]);
            let pad = steps[t].clone();
            let new = self.step_projected(input, state.clone());
            outputs[t] = Some(
                new.hidden
                    .clone()
                    .mask_fill(pad.clone(), 0.0)
                    .unsqueeze_dim::<3>(1),
            );
            state = state.keep_where(pad, new);
        }
        let outputs = outputs.into_iter().flatten().collect::<Vec<_>>();
        (Tensor::cat(outputs, 1), state)
    }
}

/// The padding mask split by position and widened to the hidden state: what
/// [`RecurrentCell::run_masked`] reads at each step.
///
/// # Shapes
/// - `pad_mask`: `[batch_size, len]` (`true` = pad) → `len` masks `[batch_size, d_hidden]`
pub fn step_masks<B: Backend>(
    pad_mask: Tensor<B, 2, Bool>,
    d_hidden: usize,
) -> Vec<Tensor<B, 2, Bool>> {
    let [batch_size, len] = pad_mask.dims();
    (0..len)
        .map(|t| {
            pad_mask
                .clone()
                .slice([0..batch_size, t..t + 1])
                .expand([batch_size, d_hidden])
        })
        .collect()
}
