//! Maps encoder states into the decoder's space: identity, linear, or bottleneck MLP + LayerNorm.

use burn::nn::{Gelu, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::config::AdapterKind;
use crate::linear::forward_flat;

/// Configuration of [`Adapter`].
#[derive(Config, Debug)]
pub struct AdapterModuleConfig {
    /// `none`, `linear` or `mlp`.
    pub kind: AdapterKind,
    /// Encoder width.
    pub d_encoder: usize,
    /// Decoder width.
    pub d_decoder: usize,
    /// Hidden width of the `mlp` adapter. Default: `d_decoder`.
    pub d_hidden: Option<usize>,
    /// Default: 1e-5.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

impl AdapterModuleConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Adapter<B> {
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        let d_hidden = self.d_hidden.unwrap_or(self.d_decoder);
        match self.kind {
            AdapterKind::None => Adapter {
                down: None,
                up: None,
                norm: None,
                residual: false,
            },
            AdapterKind::Linear => Adapter {
                down: Some(linear(self.d_encoder, self.d_decoder)),
                up: None,
                norm: None,
                residual: false,
            },
            AdapterKind::Mlp => Adapter {
                down: Some(linear(self.d_encoder, d_hidden)),
                up: Some(linear(d_hidden, self.d_decoder)),
                norm: Some(
                    LayerNormConfig::new(self.d_decoder)
                        .with_epsilon(self.layer_norm_eps)
                        .init(device),
                ),
                residual: self.d_encoder == self.d_decoder,
            },
        }
    }
}

/// `none`: x; `linear`: W·x; `mlp`: LayerNorm(up(GELU(down(x))) [+ x]).
#[derive(Module, Debug)]
pub struct Adapter<B: Backend> {
    pub down: Option<Linear<B>>,
    pub up: Option<Linear<B>>,
    pub norm: Option<LayerNorm<B>>,
    residual: bool,
}

impl<B: Backend> Adapter<B> {
    /// # Shapes
    /// - `x`: `[batch_size, src_len, d_encoder]` → `[batch_size, src_len, d_decoder]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let Some(down) = &self.down else { return x };
        let Some(up) = &self.up else {
            return forward_flat(down, x);
        };
        let h = forward_flat(up, Gelu::new().forward(forward_flat(down, x.clone())));
        let h = if self.residual { h + x } else { h };
        match &self.norm {
            Some(norm) => norm.forward(h),
            None => h,
        }
    }
}
