//! Decoding state kept outside the model (llama-burn's pattern): the encoder memory projected
//! once per source for every layer's cross-attention, and a preallocated self-attention
//! key/value cache that grows by one position per step and can follow beams.
//!
//! burn-nn's decoder cache lives inside the module and cannot be reordered, which rules out beam
//! search with a cache; here the model is immutable and every piece of state is a value the
//! caller owns, selects and reorders.

use burn::prelude::*;

/// Cross-attention keys and values of one layer, projected once from the encoder memory.
#[derive(Clone, Debug)]
pub struct MemoryKeyValue<B: Backend> {
    /// `[batch_size, n_heads, src_len, d_head]`
    pub key: Tensor<B, 4>,
    /// `[batch_size, n_heads, src_len, d_head]`
    pub value: Tensor<B, 4>,
}

/// The encoded source as the decoder consumes it at every step.
#[derive(Clone, Debug)]
pub struct EncoderMemory<B: Backend> {
    /// Cross-attention keys/values, one entry per decoder layer.
    pub key_values: Vec<MemoryKeyValue<B>>,
    /// `[batch_size, src_len]`, `true` at source padding.
    pub pad_mask: Tensor<B, 2, Bool>,
    /// `[d_model, vocab_size]`: a tied output projection (the target embedding transposed),
    /// laid out once per batch so that no decoding step copies the embedding matrix; `None`
    /// for an untied projection, whose weights are already in that layout.
    pub projection: Option<Tensor<B, 2>>,
}

impl<B: Backend> EncoderMemory<B> {
    /// Rows of the batch.
    pub fn batch_size(&self) -> usize {
        self.pad_mask.dims()[0]
    }

    /// Picks (and repeats) batch rows, e.g. each source `num_beams` times for beam search.
    ///
    /// # Shapes
    /// - `indices`: `[new_batch_size]` row indices into this memory
    pub fn select(&self, indices: Tensor<B, 1, Int>) -> Self {
        Self {
            key_values: self
                .key_values
                .iter()
                .map(|kv| MemoryKeyValue {
                    key: kv.key.clone().select(0, indices.clone()),
                    value: kv.value.clone().select(0, indices.clone()),
                })
                .collect(),
            pad_mask: self.pad_mask.clone().select(0, indices),
            projection: self.projection.clone(),
        }
    }
}

/// Self-attention keys and values of every decoder layer, preallocated as
/// `[batch_size, n_heads, capacity, d_head]` and filled one step at a time, so a step costs
/// O(current length) and never reallocates.
#[derive(Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
    len: usize,
    capacity: usize,
    batch_size: usize,
}

/// One layer's buffers. `Option` only so a buffer can be moved out and back while it is updated:
/// an updated tensor that is not shared is written in place (no copy of the whole buffer).
#[derive(Debug)]
struct LayerCache<B: Backend> {
    key: Option<Tensor<B, 4>>,
    value: Option<Tensor<B, 4>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `n_layers` layers holding up to `capacity` positions.
    pub fn new(
        n_layers: usize,
        batch_size: usize,
        n_heads: usize,
        capacity: usize,
        d_head: usize,
        device: &B::Device,
    ) -> Self {
        let shape = [batch_size, n_heads, capacity, d_head];
        let layers = (0..n_layers)
            .map(|_| LayerCache {
                key: Some(Tensor::zeros(shape, device)),
                value: Some(Tensor::zeros(shape, device)),
            })
            .collect();
        Self {
            layers,
            len: 0,
            capacity,
            batch_size,
        }
    }

    /// Positions filled so far (the offset of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no step has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows of the batch (sentences × beams).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Writes the keys/values of `new_len` new positions of layer `layer` after the filled part
    /// and returns the keys/values of every position so far. Call [`Self::advance`] once all
    /// layers have been written.
    ///
    /// # Shapes
    /// - `key`, `value`: `[batch_size, n_heads, new_len, d_head]`
    /// - output: two `[batch_size, n_heads, len + new_len, d_head]`
    ///
    /// # Panics
    /// If the cache would overflow its capacity (callers bound the output length by it).
    pub fn append(
        &mut self,
        layer: usize,
        key: Tensor<B, 4>,
        value: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [batch_size, n_heads, new_len, d_head] = key.dims();
        let start = self.len;
        let end = start + new_len;
        assert!(
            end <= self.capacity,
            "KV cache overflow: {end} positions, capacity {}",
            self.capacity
        );
        let slot = &mut self.layers[layer];
        let write = |buffer: &mut Option<Tensor<B, 4>>, update: Tensor<B, 4>| {
            let full = buffer.take().expect("cache buffer is always present");
            let full =
                full.slice_assign([0..batch_size, 0..n_heads, start..end, 0..d_head], update);
            let filled = full
                .clone()
                .slice([0..batch_size, 0..n_heads, 0..end, 0..d_head]);
            *buffer = Some(full);
            filled
        };
        let keys = write(&mut slot.key, key);
        let values = write(&mut slot.value, value);
        (keys, values)
    }

    /// Marks `steps` more positions as filled (after every layer was appended to).
    pub fn advance(&mut self, steps: usize) {
        self.len += steps;
    }

    /// Makes row `i` of the cache a copy of row `indices[i]`: beams follow their parents, and a
    /// shorter `indices` drops finished rows. Only the filled positions are copied when the batch
    /// size is unchanged.
    ///
    /// # Shapes
    /// - `indices`: `[new_batch_size]`
    pub fn reorder(&mut self, indices: Tensor<B, 1, Int>) {
        let new_batch = indices.dims()[0];
        let len = self.len;
        let same_size = new_batch == self.batch_size;
        for slot in &mut self.layers {
            for buffer in [&mut slot.key, &mut slot.value] {
                let full = buffer.take().expect("cache buffer is always present");
                let [batch_size, n_heads, capacity, d_head] = full.dims();
                *buffer = Some(if same_size && len == 0 {
                    full // nothing written yet
                } else if same_size && len < capacity {
                    let ranges = [0..batch_size, 0..n_heads, 0..len, 0..d_head];
                    let filled = full
                        .clone()
                        .slice(ranges.clone())
                        .select(0, indices.clone());
                    full.slice_assign(ranges, filled)
                } else {
                    full.select(0, indices.clone())
                });
            }
        }
        self.batch_size = new_batch;
    }
}
