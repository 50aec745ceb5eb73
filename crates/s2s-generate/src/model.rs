//! The one interface decoding needs from a model, and its implementations: every family's
//! incremental decoder ([`s2s_model::Seq2Seq`]: the Transformer's KV cache, the RNN's layer
//! states) and the Transformer recomputing the whole prefix ([`Recompute`], the reference that
//! tests and benchmarks compare the cache with).

use burn::prelude::*;
use s2s_model::{DecoderMemory, DecoderState, EncoderMemory};

/// An encoder–decoder model as incremental decoding sees it: encode once, then one step at a
/// time over a cache the caller owns and can reorder (beam search) or shrink.
pub trait IncrementalDecoder<B: Backend> {
    /// What the decoder reads from the source at every step.
    type Memory: Clone;
    /// The decoder's state between steps.
    type Cache;

    /// Encodes a padded batch of sources.
    ///
    /// # Shapes
    /// - `source`, `pad_mask`: `[batch_size, src_len]` (`true` = pad)
    fn encode(&self, source: Tensor<B, 2, Int>, pad_mask: Tensor<B, 2, Bool>) -> Self::Memory;

    /// Rows `rows` of `memory` (repeats allowed: one row per beam or sample).
    ///
    /// # Shapes
    /// - `rows`: `[new_batch_size]`, indices into `memory`'s batch
    fn select_memory(&self, memory: &Self::Memory, rows: Tensor<B, 1, Int>) -> Self::Memory;

    /// An empty cache for `memory`'s batch, holding up to `capacity` target positions (tokens
    /// fed, `<s>` included).
    fn init_cache(&self, memory: &Self::Memory, capacity: usize) -> Self::Cache;

    /// Feeds one token per row (`<s>` first) and returns the logits of the next position.
    ///
    /// # Shapes
    /// - `tokens`: `[batch_size]` → `[batch_size, vocab_size]`
    fn decode_step(
        &self,
        tokens: Tensor<B, 1, Int>,
        memory: &Self::Memory,
        cache: &mut Self::Cache,
    ) -> Tensor<B, 2>;

    /// Row `i` of the cache becomes row `rows[i]` (beams follow their parents); a shorter
    /// `rows` drops finished rows.
    ///
    /// # Shapes
    /// - `rows`: `[new_batch_size]`, indices into the cache's batch
    fn reorder_cache(&self, cache: &mut Self::Cache, rows: Tensor<B, 1, Int>);

    /// Longest target prefix (with `<s>`) the model can decode, in tokens.
    fn max_target_positions(&self) -> usize;
}

fn last_position<B: Backend>(logits: Tensor<B, 3>) -> Tensor<B, 2> {
    let [batch_size, len, vocab_size] = logits.dims();
    logits
        .slice([0..batch_size, len - 1..len, 0..vocab_size])
        .reshape([batch_size, vocab_size])
}

impl<B: Backend> IncrementalDecoder<B> for s2s_model::Seq2Seq<B> {
    type Memory = DecoderMemory<B>;
    type Cache = DecoderState<B>;

    fn encode(&self, source: Tensor<B, 2, Int>, pad_mask: Tensor<B, 2, Bool>) -> DecoderMemory<B> {
        self.encode_memory(source, pad_mask)
    }

    fn select_memory(
        &self,
        memory: &DecoderMemory<B>,
        rows: Tensor<B, 1, Int>,
    ) -> DecoderMemory<B> {
        memory.select(rows)
    }

    fn init_cache(&self, memory: &DecoderMemory<B>, capacity: usize) -> DecoderState<B> {
        self.init_state(memory, capacity)
    }

    fn decode_step(
        &self,
        tokens: Tensor<B, 1, Int>,
        memory: &DecoderMemory<B>,
        cache: &mut DecoderState<B>,
    ) -> Tensor<B, 2> {
        s2s_model::Seq2Seq::decode_step(self, tokens, memory, cache)
    }

    fn reorder_cache(&self, cache: &mut DecoderState<B>, rows: Tensor<B, 1, Int>) {
        cache.reorder(rows);
    }

    fn max_target_positions(&self) -> usize {
        s2s_model::Seq2Seq::max_target_positions(self)
    }
}

/// The Transformer without a self-attention cache: every step re-decodes the whole prefix
/// (O(length²) per sequence), as a decoder without incremental state must. Outputs equal the
/// cached model's; it exists to test and benchmark the cache against.
#[derive(Debug, Clone, Copy)]
pub struct Recompute<'a, B: Backend>(pub &'a s2s_model::TransformerSeq2Seq<B>);

impl<B: Backend> IncrementalDecoder<B> for Recompute<'_, B> {
    type Memory = EncoderMemory<B>;
    /// The prefix fed so far, `[batch_size, len]`.
    type Cache = Option<Tensor<B, 2, Int>>;

    fn encode(&self, source: Tensor<B, 2, Int>, pad_mask: Tensor<B, 2, Bool>) -> EncoderMemory<B> {
        self.0.encode_memory(source, pad_mask)
    }

    fn select_memory(
        &self,
        memory: &EncoderMemory<B>,
        rows: Tensor<B, 1, Int>,
    ) -> EncoderMemory<B> {
        memory.select(rows)
    }

    fn init_cache(&self, _memory: &EncoderMemory<B>, _capacity: usize) -> Self::Cache {
        None
    }

    fn decode_step(
        &self,
        tokens: Tensor<B, 1, Int>,
        memory: &EncoderMemory<B>,
        cache: &mut Self::Cache,
    ) -> Tensor<B, 2> {
        let [batch_size] = tokens.dims();
        let tokens = tokens.reshape([batch_size, 1]);
        let prefix = match cache.take() {
            Some(prefix) => Tensor::cat(vec![prefix, tokens], 1),
            None => tokens,
        };
        let logits = self.0.decode_prefix(prefix.clone(), memory);
        *cache = Some(prefix);
        last_position(logits)
    }

    fn reorder_cache(&self, cache: &mut Self::Cache, rows: Tensor<B, 1, Int>) {
        *cache = cache.take().map(|prefix| prefix.select(0, rows));
    }

    fn max_target_positions(&self) -> usize {
        self.0.max_target_positions()
    }
}
