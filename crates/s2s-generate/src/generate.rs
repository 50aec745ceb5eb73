//! The entry point: sources in, hypotheses out.

use burn::prelude::*;
use s2s_model::special;

use crate::beam::beam_search;
use crate::config::{DecodeStrategy, GenerationConfig};
use crate::error::GenerateError;
use crate::hypothesis::Hypothesis;
use crate::model::IncrementalDecoder;
use crate::sampling::greedy_or_sample;

/// Generates for every source (model input ids, e.g. `x1 … xm </s>`) with the configured
/// strategy. Returns, per source and in input order, `num_return_sequences` hypotheses: beam
/// search's best first, samples in draw order.
///
/// Sources are sorted by length and decoded `batch_size` at a time, so padding stays small; a
/// source's result does not depend on what it is batched with.
///
/// Hypotheses never contain `<pad>`, `<s>` or `<unk>`, and their scores are finite.
///
/// # Errors
/// An invalid `config` ([`GenerateError::Invalid`]), `max_new_tokens` beyond the model's
/// positions ([`GenerateError::TooLong`]), NaN model scores ([`GenerateError::NonFinite`]) and
/// a step where no token is possible ([`GenerateError::NoCandidate`]); see [`crate::logits`]
/// for the rule on degenerate distributions.
pub fn generate<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    sources: &[Vec<u32>],
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Vec<Hypothesis>>, GenerateError> {
    generate_with_progress(model, sources, config, device, &mut |_| {})
}

/// [`generate()`], calling `progress(n)` after each batch with the number of sources it
/// finished (for a progress bar; the results are the same).
///
/// # Errors
/// As [`generate()`].
pub fn generate_with_progress<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    sources: &[Vec<u32>],
    config: &GenerationConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<Hypothesis>>, GenerateError> {
    let stream_keys: Vec<usize> = (0..sources.len()).collect();
    generate_keyed(model, sources, &stream_keys, config, device, progress)
}

/// [`generate_with_progress()`] where source `i` samples from the random streams of
/// `stream_keys[i]` instead of `i`: a server that decodes several requests together passes each
/// source's index in its own request, so a request gets the samples it gets alone. (Greedy and
/// beam search ignore the keys.)
///
/// # Errors
/// As [`generate()`]; [`GenerateError::Invalid`] when `stream_keys` and `sources` differ in
/// length.
pub fn generate_keyed<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    sources: &[Vec<u32>],
    stream_keys: &[usize],
    config: &GenerationConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<Hypothesis>>, GenerateError> {
    config.validate()?;
    if stream_keys.len() != sources.len() {
        return Err(GenerateError::Invalid(format!(
            "{} stream keys for {} sources",
            stream_keys.len(),
            sources.len()
        )));
    }
    let available = model.max_target_positions();
    if config.max_new_tokens > available {
        return Err(GenerateError::TooLong {
            requested: config.max_new_tokens,
            available,
        });
    }
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sources[i].len()));
    let mut out: Vec<Vec<Hypothesis>> = vec![Vec::new(); sources.len()];
    for chunk in order.chunks(config.batch_size) {
        let (source, pad_mask) = pad_batch::<B>(chunk.iter().map(|&i| &sources[i]), device);
        let memory = model.encode(source, pad_mask);
        let results = match config.strategy {
            DecodeStrategy::Beam { .. } => beam_search(model, memory, chunk.len(), config, device)?,
            DecodeStrategy::Greedy | DecodeStrategy::Sample { .. } => {
                let keys: Vec<usize> = chunk.iter().map(|&i| stream_keys[i]).collect();
                greedy_or_sample(model, memory, &keys, config, device)?
            }
        };
        for (&index, hyps) in chunk.iter().zip(results) {
            out[index] = hyps;
        }
        progress(chunk.len());
    }
    Ok(out)
}

/// Pads sources to the longest (at least one position) with `<pad>`.
///
/// # Shapes
/// - output: ids and pad mask (`true` = pad), both `[batch_size, src_len]`
fn pad_batch<'a, B: Backend>(
    sources: impl ExactSizeIterator<Item = &'a Vec<u32>> + Clone,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
    let rows = sources.len();
    let len = sources.clone().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(rows * len);
    let mut pad = Vec::with_capacity(rows * len);
    for source in sources {
        ids.extend(source.iter().map(|&t| i64::from(t)));
        ids.resize(ids.len() + len - source.len(), i64::from(special::PAD));
        pad.extend((0..len).map(|i| i >= source.len()));
    }
    (
        Tensor::from_data(TensorData::new(ids, [rows, len]), device),
        Tensor::from_data(TensorData::new(pad, [rows, len]), device),
    )
}
