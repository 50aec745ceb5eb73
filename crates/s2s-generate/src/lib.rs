//! Autoregressive decoding for s2s: greedy, batched beam search and sampling, written once
//! against the [`IncrementalDecoder`] trait (encode once, `decode_step` over a cache the caller
//! owns, `reorder_cache` to follow beams) so every model family shares it.
//!
//! ```text
//! sources ──encode──▶ memory ──┐
//!                              ├─ decode_step(last tokens, memory, &mut cache) ─▶ logits
//!        <s> ──────────────────┘        ▲                                          │
//!                                       └──── next tokens (argmax / beams / draw) ◀┘
//! ```
//!
//! Every step is a named function, as in HF's generation code:
//! - [`generate()`] sorts and pads the sources, encodes each batch and hands it to a strategy;
//! - [`logits`]: the logits processors (log-softmax, banned tokens, `min_new_tokens`,
//!   `no_repeat_ngram_size`) and the sampling warpers (temperature, top-k, top-p);
//! - `sampling.rs`: greedy decoding and sampling (HF's `_sample`), one token picked per row;
//! - `beam.rs`: the beam-search loop (HF's `_beam_search`), and `beam_scorer.rs` its scorer,
//!   `process` one step and `finalize` at the end (HF's `BeamSearchScorer`);
//! - [`Hypothesis`]: what every strategy returns.
//!
//! Modules import only modules of a later layer, so the graph has no circle: `generate`;
//! `beam`, `sampling`; `beam_scorer`, `logits`, `model`, `host`; `config`, `hypothesis`;
//! `error`.

mod beam;
mod beam_scorer;
pub mod config;
mod error;
pub mod generate;
mod host;
mod hypothesis;
pub mod logits;
pub mod model;
mod sampling;

pub use config::{DecodeStrategy, GenerationConfig, GenerationSettings};
pub use error::GenerateError;
pub use generate::{generate, generate_keyed, generate_with_progress};
pub use hypothesis::Hypothesis;
pub use model::{IncrementalDecoder, Recompute};
