//! Autoregressive decoding for s2s: greedy, batched beam search and sampling, written once
//! against the [`IncrementalDecoder`] trait (encode once, `decode_step` over a cache the caller owns,
//! `reorder` to follow beams) so every model family shares it.
//!
//! ```text
//! sources ──encode──▶ memory ──┐
//!                              ├─ decode_step(last tokens, memory, &mut cache) ─▶ logits
//!        <s> ──────────────────┘        ▲                                          │
//!                                       └──── next tokens (argmax / beams / draw) ◀┘
//! ```

pub mod config;
mod error;
pub mod generate;
mod hypothesis;
pub mod logits;
pub mod model;
mod search;

pub use config::{DecodeStrategy, GenerationConfig, GenerationSettings};
pub use error::GenerateError;
pub use generate::generate;
pub use hypothesis::Hypothesis;
pub use model::{IncrementalDecoder, Recompute};
