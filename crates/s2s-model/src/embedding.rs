//! Token embeddings scaled by √d_model plus sinusoidal or learned positions.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

use crate::config::PositionKind;

/// Configuration of [`TokenEmbedding`].
#[derive(Config, Debug)]
pub struct TokenEmbeddingConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Embedding width.
    pub d_model: usize,
    /// Longest sequence covered by the position table.
    pub max_positions: usize,
    /// Sinusoidal or learned positions.
    pub positions: PositionKind,
    /// Dropout after adding positions. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl TokenEmbeddingConfig {
    /// Token weights ~ N(0, d_model^-1/2) so that the √d_model scale gives unit variance
    /// (fairseq's `Embedding` initialisation).
    pub fn init<B: Backend>(&self, device: &B::Device) -> TokenEmbedding<B> {
        let std = (self.d_model as f64).powf(-0.5);
        let tokens = EmbeddingConfig::new(self.vocab_size, self.d_model)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        let (learned, sinusoids) = match self.positions {
            PositionKind::Learned => (
                Some(
                    EmbeddingConfig::new(self.max_positions, self.d_model)
                        .with_initializer(Initializer::Normal { mean: 0.0, std })
                        .init(device),
                ),
                None,
            ),
            PositionKind::Sinusoidal => (
                None,
                Some(sinusoid_table(self.max_positions, self.d_model, device)),
            ),
        };
        TokenEmbedding {
            tokens,
            learned_positions: learned,
            sinusoids,
            dropout: DropoutConfig::new(self.dropout).init(),
            scale: (self.d_model as f64).sqrt(),
            max_positions: self.max_positions,
        }
    }
}

/// Scaled token embedding plus positions, then dropout.
#[derive(Module, Debug)]
pub struct TokenEmbedding<B: Backend> {
    pub tokens: Embedding<B>,
    pub learned_positions: Option<Embedding<B>>,
    /// Fixed table, not a parameter (burn keeps plain tensors out of records).
    sinusoids: Option<Tensor<B, 2>>,
    dropout: Dropout,
    scale: f64,
    max_positions: usize,
}

impl<B: Backend> TokenEmbedding<B> {
    /// Embeds `ids` whose first token sits at position `offset` (non-zero when decoding step by
    /// step).
    ///
    /// # Shapes
    /// - `ids`: `[batch_size, seq_len]` → `[batch_size, seq_len, d_model]`
    ///
    /// # Panics
    /// If `offset + seq_len` exceeds `max_positions`; the batcher's length limits prevent this.
    pub fn forward(&self, ids: Tensor<B, 2, Int>, offset: usize) -> Tensor<B, 3> {
        let [batch_size, seq_len] = ids.dims();
        let device = ids.device();
        assert!(
            offset + seq_len <= self.max_positions,
            "sequence of {} tokens exceeds max_positions = {}",
            offset + seq_len,
            self.max_positions
        );
        let x = self.tokens.forward(ids).mul_scalar(self.scale);
        let x = match (&self.learned_positions, &self.sinusoids) {
            (Some(pos), _) => {
                let idx =
                    Tensor::<B, 1, Int>::arange(offset as i64..(offset + seq_len) as i64, &device)
                        .unsqueeze_dim::<2>(0)
                        .expand([batch_size, seq_len]);
                x + pos.forward(idx)
            }
            (None, Some(table)) => {
                // [T, D] -> [1, T, D], broadcast over the batch
                x + table
                    .clone()
                    .narrow(0, offset, seq_len)
                    .unsqueeze_dim::<3>(0)
            }
            (None, None) => x,
        };
        self.dropout.forward(x)
    }

    /// Longest sequence the position table covers.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The `[vocab_size, d_model]` token matrix, for tying the output projection.
    pub fn token_weights(&self) -> Tensor<B, 2> {
        self.tokens.weight.val()
    }
}

/// `PE(pos, 2i) = sin(pos / 10000^(2i/d))`, `PE(pos, 2i+1) = cos(…)` (Vaswani et al., 2017, §3.5).
///
/// # Shapes
/// - output: `[max_positions, d_model]`
pub fn sinusoid_table<B: Backend>(
    max_positions: usize,
    d_model: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut data = Vec::with_capacity(max_positions * d_model);
    for pos in 0..max_positions {
        for i in 0..d_model {
            let exponent = (2 * (i / 2)) as f64 / d_model as f64;
            let angle = pos as f64 / 10_000f64.powf(exponent);
            data.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    Tensor::from_data(TensorData::new(data, [max_positions, d_model]), device)
}
