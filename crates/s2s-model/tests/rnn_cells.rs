//! The LSTM and GRU cells against PyTorch: one step (`torch.nn.LSTMCell`/`GRUCell`) and a whole
//! sequence in both directions (`torch.nn.LSTM`/`GRU`, `bidirectional=True`), on the weights,
//! inputs and outputs that `fixtures/rnn/make_rnn_cells.py` wrote with torch 2.9.0.
#![allow(clippy::unwrap_used)]

use burn::backend::NdArray;
use burn::module::Param;
use burn::prelude::*;
use s2s_model::rnn::{CellState, RecurrentCell, RecurrentCellConfig};
use s2s_model::CellKind;
use serde_json::Value;

type B = NdArray<f32>;

const FIXTURE: &str = include_str!("fixtures/rnn/rnn_cells.json");

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn tensor<const D: usize>(v: &Value, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(floats(v), shape), &Default::default())
}

/// A cell holding PyTorch's weights `weight_ih{suffix}` etc. (transposed into burn's
/// `[d_in, d_out]`).
fn cell(
    case: &Value,
    kind: CellKind,
    suffix: &str,
    d_input: usize,
    d_hidden: usize,
) -> RecurrentCell<B> {
    let gates = match kind {
        CellKind::Lstm => 4,
        CellKind::Gru => 3,
    };
    let w = &case["weights"];
    let mut cell = RecurrentCellConfig::new(kind, d_input, d_hidden).init::<B>(&Default::default());
    let weight = |name: &str, d_in: usize| {
        Param::from_tensor(
            tensor(&w[format!("{name}{suffix}")], [gates * d_hidden, d_in]).transpose(),
        )
    };
    let bias = |name: &str| {
        Some(Param::from_tensor(tensor(
            &w[format!("{name}{suffix}")],
            [gates * d_hidden],
        )))
    };
    cell.input.weight = weight("weight_ih_l0", d_input);
    cell.input.bias = bias("bias_ih_l0");
    cell.hidden.weight = weight("weight_hh_l0", d_hidden);
    cell.hidden.bias = bias("bias_hh_l0");
    cell
}

fn max_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

#[test]
fn cells_match_pytorch_step_and_bidirectional_sequence() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let dim = |k: &str| fixture[k].as_u64().unwrap() as usize;
    let (d_input, d_hidden, batch, steps) =
        (dim("d_input"), dim("d_hidden"), dim("batch"), dim("steps"));
    for (name, kind) in [("lstm", CellKind::Lstm), ("gru", CellKind::Gru)] {
        let case = &fixture[name];
        let x: Tensor<B, 3> = tensor(&case["input"], [batch, steps, d_input]);
        let forward = cell(case, kind, "", d_input, d_hidden);

        // One step from a non-zero state.
        let state = CellState {
            hidden: tensor(&case["h0"], [batch, d_hidden]),
            cell: (kind == CellKind::Lstm).then(|| tensor(&case["c0"], [batch, d_hidden])),
        };
        let first = x
            .clone()
            .slice([0..batch, 0..1, 0..d_input])
            .reshape([batch, d_input]);
        let next = forward.step(first, state);
        let diff = max_diff(next.hidden, tensor(&case["step_hidden"], [batch, d_hidden]));
        assert!(
            diff < 1e-5,
            "{name}: one step's h differs from PyTorch by {diff}"
        );
        if kind == CellKind::Lstm {
            let diff = max_diff(
                next.cell.unwrap(),
                tensor(&case["step_cell"], [batch, d_hidden]),
            );
            assert!(
                diff < 1e-5,
                "{name}: one step's c differs from PyTorch by {diff}"
            );
        }

        // Both directions over the whole (unpadded) sequence from a zero state.
        let no_pad = Tensor::<B, 2, Int>::zeros([batch, steps], &Default::default()).equal_elem(1);
        let backward = cell(case, kind, "_reverse", d_input, d_hidden);
        let (out_f, _) = forward.run(x.clone(), no_pad.clone(), false);
        let (out_b, _) = backward.run(x, no_pad, true);
        let expected: Tensor<B, 3> =
            tensor(&case["bidirectional_output"], [batch, steps, 2 * d_hidden]);
        let diff = max_diff(Tensor::cat(vec![out_f, out_b], 2), expected);
        assert!(
            diff < 1e-5,
            "{name}: bidirectional outputs differ from PyTorch by {diff}"
        );
    }
}
