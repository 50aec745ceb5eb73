//! The training loss with the output projection and the label-smoothed cross-entropy fused on
//! the inner (non-autodiff) backend.
//!
//! Written through autodiff, `log_softmax` over `[batch_size·tgt_len, vocab_size]` logits,
//! the label gather, the smoothing term and their backward passes are some twenty tensor
//! operations over the largest tensor of the step, each recorded in the graph (burn-autodiff
//! 0.21 has no fused log-softmax or cross-entropy node). Their gradient has a closed form,
//! `∂L/∂z = w · (softmax(z) − q)` with `q = (1−ε)·onehot(y) + ε/V` and `w = 1/#tokens` on
//! non-pad rows (0 on pad rows), so it is computed directly: the logits, the loss and the
//! gradients of the projection's two inputs are computed on the inner backend (libtorch's and
//! flex's own softmax kernels), and the graph receives them through a surrogate
//! `Σ h·∂L/∂h + Σ P·∂L/∂P` whose gradient is exactly `(∂L/∂h, ∂L/∂P)`. The same device work as
//! autodiff's matmul backward, none of the per-element graph.
//!
//! This is PyTorch's fused `cross_entropy` (log-softmax and NLL forward and backward as single
//! kernels) written against Burn's public API; `tests` checks it against the autodiff path.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::IndexingUpdateOp;

use crate::batch::special;

/// What [`crate::Seq2Seq::forward_loss_fused`] produces.
#[derive(Debug, Clone)]
pub struct FusedLossOutput<B: AutodiffBackend> {
    /// Call `.backward()` on this: its gradient is the loss's gradient (its value is not the
    /// loss).
    pub surrogate: Tensor<B, 1>,
    /// Label-smoothed cross-entropy per non-pad token, `[1]`, outside the graph.
    pub loss: Tensor<B, 1>,
    /// Plain negative log-likelihood per non-pad token, `[1]`, outside the graph.
    pub nll: Tensor<B, 1>,
    /// `[batch_size, tgt_len, vocab_size]`, outside the graph (for metrics).
    pub logits: Tensor<B, 3>,
    /// `[batch_size, tgt_len]`, `<pad>` where ignored.
    pub labels: Tensor<B, 2, Int>,
}

/// Token-level cross-entropy averaged over non-pad labels (so padding never changes the loss),
/// with uniform label smoothing: `(1-ε)·nll + ε·mean_v(−log p_v)`.
/// Returns `(smoothed, nll)`, both `[1]`.
///
/// # Shapes
/// - `logits`: `[batch_size, tgt_len, vocab_size]`, `labels`: `[batch_size, tgt_len]`
pub fn sequence_cross_entropy<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
    label_smoothing: f64,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [batch_size, tgt_len, vocab_size] = logits.dims();
    let n = batch_size * tgt_len;
    // [B*T, V]
    let log_probs = log_softmax(logits.reshape([n, vocab_size]), 1);
    let ce = token_cross_entropy(log_probs, labels.reshape([n]), label_smoothing);
    (ce.loss, ce.nll)
}

/// [`sequence_cross_entropy`] from log-probabilities, with the non-pad mask and token count it
/// averages over (the fused loss weighs its gradient with them).
struct TokenCrossEntropy<B: Backend> {
    /// `[1]`
    loss: Tensor<B, 1>,
    /// `[1]`
    nll: Tensor<B, 1>,
    /// `[n]`, 1 on non-pad labels
    keep: Tensor<B, 1>,
    /// `[1]`, the number of non-pad labels (at least 1)
    count: Tensor<B, 1>,
}

/// # Shapes
/// - `log_probs`: `[n, vocab_size]`, `labels`: `[n]`
fn token_cross_entropy<B: Backend>(
    log_probs: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    label_smoothing: f64,
) -> TokenCrossEntropy<B> {
    let [n, _vocab_size] = log_probs.dims();
    let keep = labels.clone().not_equal_elem(special::PAD as i64).float();
    let count = keep.clone().sum().clamp_min(1.0);
    let picked = log_probs
        .clone()
        .gather(1, labels.reshape([n, 1]))
        .reshape([n]);
    let nll = (picked.neg() * keep.clone()).sum() / count.clone();
    let loss = if label_smoothing == 0.0 {
        nll.clone()
    } else {
        let uniform = log_probs.mean_dim(1).reshape([n]).neg();
        let smooth = (uniform * keep.clone()).sum() / count.clone();
        nll.clone().mul_scalar(1.0 - label_smoothing) + smooth.mul_scalar(label_smoothing)
    };
    TokenCrossEntropy {
        loss,
        nll,
        keep,
        count,
    }
}

/// Loss, logits and gradients of [`fused_cross_entropy`].
#[derive(Debug, Clone)]
pub struct FusedCrossEntropy<B: Backend> {
    /// `(1−ε)·nll + ε·mean_v(−log p_v)` averaged over non-pad tokens, `[1]`.
    pub loss: Tensor<B, 1>,
    /// `[1]`
    pub nll: Tensor<B, 1>,
    /// `[batch_size, tgt_len, vocab_size]`
    pub logits: Tensor<B, 3>,
    /// `∂loss/∂h`, `[batch_size, tgt_len, d_model]`
    pub grad_states: Tensor<B, 3>,
    /// `∂loss/∂P`, `[d_model, vocab_size]`
    pub grad_projection: Tensor<B, 2>,
}

/// Logits `z = h·P`, the label-smoothed cross-entropy over non-pad labels (as
/// [`sequence_cross_entropy`] and PyTorch's `cross_entropy(ignore_index=pad,
/// label_smoothing=ε)`) and its gradients with respect to `h` and `P`, without autodiff.
///
/// # Shapes
/// - `h`: `[batch_size, tgt_len, d_model]`, `projection`: `[d_model, vocab_size]`
/// - `labels`: `[batch_size, tgt_len]`
pub fn fused_cross_entropy<B: Backend>(
    h: Tensor<B, 3>,
    projection: Tensor<B, 2>,
    labels: Tensor<B, 2, Int>,
    label_smoothing: f64,
) -> FusedCrossEntropy<B> {
    let [batch_size, tgt_len, d_model] = h.dims();
    let vocab_size = projection.dims()[1];
    let n = batch_size * tgt_len;
    // [B*T, D]
    let h = h.reshape([n, d_model]);
    // [B*T, V]
    let logits = h.clone().matmul(projection.clone());
    let log_probs = log_softmax(logits.clone(), 1);
    let labels = labels.reshape([n]);
    let eps = label_smoothing;
    let ce = token_cross_entropy(log_probs.clone(), labels.clone(), eps);
    // Weight of each row: 1/#tokens, 0 on padding. [B*T, 1]
    let weight = (ce.keep / ce.count).reshape([n, 1]);
    // ∂L/∂z = w·(p − ε/V − (1−ε)·onehot(y)). [B*T, V]
    let target = Tensor::<B, 2>::full([n, 1], -(1.0 - eps), &logits.device());
    let grad_logits = log_probs
        .exp()
        .sub_scalar(eps / vocab_size as f64)
        .scatter(1, labels.reshape([n, 1]), target, IndexingUpdateOp::Add)
        .mul(weight);
    // [B*T, V] x [V, D] -> [B*T, D]
    let grad_states = grad_logits
        .clone()
        .matmul(projection.transpose())
        .reshape([batch_size, tgt_len, d_model]);
    // [D, B*T] x [B*T, V] -> [D, V]
    let grad_projection = h.transpose().matmul(grad_logits);
    FusedCrossEntropy {
        loss: ce.loss,
        nll: ce.nll,
        logits: logits.reshape([batch_size, tgt_len, vocab_size]),
        grad_states,
        grad_projection,
    }
}
