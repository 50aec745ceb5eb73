//! Ids and scores between host vectors and device tensors: the search loops choose tokens on
//! the host and feed them back to the model.

use burn::prelude::*;

/// Ids as a `[len]` tensor.
pub(crate) fn int_tensor<B: Backend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// A float tensor's values in row-major order.
pub(crate) fn float_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap_or_default()
}

/// An int tensor's values in row-major order.
pub(crate) fn int_vec<B: Backend, const D: usize>(t: Tensor<B, D, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .into_vec()
        .unwrap_or_default()
}

/// `[0, 0, …, 1, 1, …]`: each of `n` rows repeated `times` times.
///
/// # Shapes
/// - output: `[n · times]`
pub(crate) fn repeat_rows<B: Backend>(
    n: usize,
    times: usize,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    int_tensor(
        (0..n as i64)
            .flat_map(|i| std::iter::repeat_n(i, times))
            .collect(),
        device,
    )
}
