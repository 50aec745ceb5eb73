//! Position-wise feed-forward block.

use burn::nn::{Dropout, DropoutConfig, Gelu, Initializer, Linear, LinearConfig, Relu};
use burn::prelude::*;

use serde::{Deserialize, Serialize};

/// Non-linearity inside the feed-forward blocks.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Gelu,
}

/// Configuration of [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Input and output width.
    pub d_model: usize,
    /// Inner width.
    pub d_ff: usize,
    /// Dropout on the inner activations. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Non-linearity. Default: ReLU.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

impl FeedForwardConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> FeedForward<B> {
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        FeedForward {
            inner: linear(self.d_model, self.d_ff),
            outer: linear(self.d_ff, self.d_model),
            dropout: DropoutConfig::new(self.dropout).init(),
            gelu: matches!(self.activation, Activation::Gelu),
        }
    }
}

/// `outer(dropout(act(inner(x))))`.
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    pub inner: Linear<B>,
    pub outer: Linear<B>,
    dropout: Dropout,
    gelu: bool,
}

impl<B: Backend> FeedForward<B> {
    /// # Shapes
    /// - `x`: `[batch_size, seq_len, d_model]` → `[batch_size, seq_len, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch_size, len, d_model] = x.dims();
        // [B, T, D] -> [B*T, D]: one GEMM per layer and per gradient (crate::linear).
        let h = self.inner.forward(x.reshape([batch_size * len, d_model]));
        let h = if self.gelu {
            Gelu::new().forward(h)
        } else {
            Relu::new().forward(h)
        };
        self.outer
            .forward(self.dropout.forward(h))
            .reshape([batch_size, len, d_model])
    }
}
