//! Sentence in, sentence out: tokenize, batch, greedy-decode, detokenize.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use s2s_data::{Seq2SeqBatcher, TokenizedPair, TokenizerPair};
use s2s_model::{Seq2Seq, Seq2SeqBatch};

use crate::TrainError;

/// Translates `sentences` in batches of `batch_size` with greedy decoding. Sources longer than
/// `max_source_len` tokens (with `</s>`) are cut, as during training.
pub fn translate<B: Backend>(
    model: &Seq2Seq<B>,
    tokenizers: &TokenizerPair,
    sentences: &[String],
    max_source_len: usize,
    max_new_tokens: usize,
    batch_size: usize,
    device: &B::Device,
) -> Result<Vec<String>, TrainError> {
    // Blank lines stay blank (one output line per input line) without a decoder call.
    let mut out = vec![String::new(); sentences.len()];
    let work: Vec<(usize, &String)> = sentences
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.trim().is_empty())
        .collect();
    for chunk in work.chunks(batch_size.max(1)) {
        let mut items = Vec::with_capacity(chunk.len());
        for (_, sentence) in chunk {
            let mut source = tokenizers.source.encode(sentence)?;
            source.truncate(max_source_len.saturating_sub(1));
            items.push(TokenizedPair {
                source,
                target: Vec::new(),
            });
        }
        // The training batcher pads and appends `</s>` exactly as during training.
        let batch: Seq2SeqBatch<B> = Seq2SeqBatcher.batch(items, device);
        let (source, pad_mask) = (batch.source, batch.source_pad_mask);
        let decoded = model.greedy_decode(source, pad_mask, max_new_tokens);
        for ((index, _), ids) in chunk.iter().zip(decoded) {
            out[*index] = tokenizers.target.decode(&ids)?;
        }
    }
    Ok(out)
}
