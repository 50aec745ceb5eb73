//! Linear layers applied to `[batch_size, len, d]` activations as one `[batch_size·len, d]`
//! matrix product.
//!
//! burn 0.21's `Linear::forward` on a rank-3 input broadcasts the weight to
//! `[batch_size, d_in, d_out]` and runs a batched matmul; its backward pass then computes one
//! `[d_in, d_out]` weight gradient per batch row and sums them (`linear_weight_backward` in
//! burn-backend's `modules/linear.rs`): `batch_size` times the memory and an extra reduction
//! over it. At Transformer-base width that reduction was 8.5 % of a libtorch training step
//! (docs/performance.md). Flattening first gives the single GEMM `xᵀ·∂y` that PyTorch's
//! `nn.Linear` computes.

use burn::nn::Linear;
use burn::prelude::*;

/// `linear.forward(x)` with the leading dimensions flattened into one.
///
/// # Shapes
/// - `x`: `[batch_size, len, d_in]` → `[batch_size, len, d_out]`
pub fn forward_flat<B: Backend>(linear: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch_size, len, d_in] = x.dims();
    // [B, T, Din] -> [B*T, Din] -> [B*T, Dout]
    let y = linear.forward(x.reshape([batch_size * len, d_in]));
    let d_out = y.dims()[1];
    // [B*T, Dout] -> [B, T, Dout]
    y.reshape([batch_size, len, d_out])
}

/// `h · weights` over the flattened leading dimensions: the vocabulary projection of decoder
/// states by a `[d_model, vocab_size]` matrix (a transposed tied embedding, or a laid-out one).
///
/// # Shapes
/// - `h`: `[batch_size, len, d_model]`, `weights`: `[d_model, vocab_size]`
/// - output: `[batch_size, len, vocab_size]`
pub fn matmul_flat<B: Backend>(h: Tensor<B, 3>, weights: Tensor<B, 2>) -> Tensor<B, 3> {
    let [batch_size, len, d_model] = h.dims();
    let vocab_size = weights.dims()[1];
    h.reshape([batch_size * len, d_model])
        .matmul(weights)
        .reshape([batch_size, len, vocab_size])
}

/// A tied output projection laid out once per batch: the `[vocab_size, d_model]` embedding
/// transposed and materialised, so that no decoding step copies the embedding matrix (the
/// reshape is a no-op view on some backends).
///
/// # Shapes
/// - `embedding`: `[vocab_size, d_model]` → `[d_model, vocab_size]`
pub fn tied_projection<B: Backend>(embedding: Tensor<B, 2>) -> Tensor<B, 2> {
    let [vocab_size, d_model] = embedding.dims();
    embedding.transpose().reshape([d_model, vocab_size])
}
