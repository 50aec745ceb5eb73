//! Sentences in, sentences out: tokenize, generate with any strategy, detokenize.

use burn::prelude::*;
use s2s_data::{Seq2SeqTokenizer, SourceTokenizer, TokenizerPair};
use s2s_generate::{GenerationConfig, Hypothesis, IncrementalDecoder};
use serde::Serialize;

use crate::InferError;

/// One output of [`translate`]: the detokenized text and what the decoder produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Translation {
    /// The detokenized text.
    pub text: String,
    /// Subword strings of the generated ids.
    pub tokens: Vec<String>,
    /// Generated ids (without `<s>`/`</s>`).
    pub ids: Vec<u32>,
    /// Ranking score (`log_prob / length^α`).
    pub score: f64,
    /// Sum of token log-probabilities, `</s>` included.
    pub log_prob: f64,
    /// Whether it ended with `</s>` (false: cut at `max_new_tokens`).
    pub finished: bool,
}

/// Model input ids of a source sentence: its tokens cut so that, with the specials (`</s>`, or
/// `[CLS]`/`[SEP]` for a BERT encoder), the input holds at most `max_source_len` ids, exactly
/// as training builds them.
///
/// # Errors
/// [`InferError::Data`] when the tokenizer fails on the sentence.
pub fn source_ids(
    tokenizer: &SourceTokenizer,
    sentence: &str,
    max_source_len: usize,
) -> Result<Vec<u32>, InferError> {
    Ok(tokenizer.input_ids(sentence, max_source_len)?)
}

/// Turns hypotheses into detokenized translations.
///
/// # Errors
/// [`InferError::Data`] when the tokenizer cannot decode an id.
pub fn detokenize(
    tokenizer: &Seq2SeqTokenizer,
    hyps: Vec<Hypothesis>,
) -> Result<Vec<Translation>, InferError> {
    hyps.into_iter()
        .map(|h| {
            Ok(Translation {
                text: tokenizer.decode(&h.tokens)?,
                tokens: h
                    .tokens
                    .iter()
                    .map(|&id| tokenizer.id_to_token(id).unwrap_or_default())
                    .collect(),
                ids: h.tokens,
                score: h.score,
                log_prob: h.log_prob,
                finished: h.finished,
            })
        })
        .collect()
}

/// Translates `sentences` with `config` (greedy, beam or sampling). Returns, per input line,
/// its `num_return_sequences` translations (best first for beam search); a blank line gets no
/// translation and costs no decoder call. Sources longer than `max_source_len` tokens (with
/// specials) are cut, as during training.
///
/// # Errors
/// As [`source_ids`] and [`translate_ids`].
pub fn translate<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    tokenizers: &TokenizerPair,
    sentences: &[String],
    max_source_len: usize,
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Vec<Translation>>, InferError> {
    translate_with_progress(
        model,
        tokenizers,
        sentences,
        max_source_len,
        config,
        device,
        &mut |_| {},
    )
}

/// [`translate()`], calling `progress(n)` each time `n` more non-blank lines are translated
/// (for a progress bar; the translations are the same).
///
/// # Errors
/// As [`translate()`].
pub fn translate_with_progress<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    tokenizers: &TokenizerPair,
    sentences: &[String],
    max_source_len: usize,
    config: &GenerationConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<Translation>>, InferError> {
    let mut out = vec![Vec::new(); sentences.len()];
    let mut lines = Vec::new();
    let mut sources = Vec::new();
    for (index, sentence) in sentences.iter().enumerate() {
        if !sentence.trim().is_empty() {
            lines.push(index);
            sources.push(source_ids(&tokenizers.source, sentence, max_source_len)?);
        }
    }
    let translated = translate_ids_with_progress(
        model,
        &tokenizers.target,
        &sources,
        config,
        device,
        progress,
    )?;
    for (index, translations) in lines.into_iter().zip(translated) {
        out[index] = translations;
    }
    Ok(out)
}

/// Translates model inputs (ids with specials, as [`source_ids`] makes them) with `config`:
/// per source, its `num_return_sequences` translations, best first for beam search.
///
/// # Errors
/// [`InferError::Generate`] when decoding fails (e.g. non-finite scores);
/// [`InferError::Data`] when the target tokenizer cannot decode an id.
pub fn translate_ids<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    tokenizer: &Seq2SeqTokenizer,
    sources: &[Vec<u32>],
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Vec<Translation>>, InferError> {
    translate_ids_with_progress(model, tokenizer, sources, config, device, &mut |_| {})
}

fn translate_ids_with_progress<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    tokenizer: &Seq2SeqTokenizer,
    sources: &[Vec<u32>],
    config: &GenerationConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<Translation>>, InferError> {
    let stream_keys: Vec<usize> = (0..sources.len()).collect();
    translate_ids_keyed(
        model,
        tokenizer,
        sources,
        &stream_keys,
        config,
        device,
        progress,
    )
}

/// [`translate_ids`] where source `i` samples from the random streams of `stream_keys[i]`
/// ([`s2s_generate::generate_keyed`]): several requests decoded together, each source keyed by
/// its index in its own request, get the translations each gets alone.
///
/// # Errors
/// As [`translate_ids`].
pub fn translate_ids_keyed<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    tokenizer: &Seq2SeqTokenizer,
    sources: &[Vec<u32>],
    stream_keys: &[usize],
    config: &GenerationConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<Translation>>, InferError> {
    s2s_generate::generate_keyed(model, sources, stream_keys, config, device, progress)?
        .into_iter()
        .map(|hyps| detokenize(tokenizer, hyps))
        .collect()
}

/// The best translation's text per line (blank for a blank line).
pub fn best_texts(translations: &[Vec<Translation>]) -> Vec<String> {
    translations
        .iter()
        .map(|t| t.first().map(|t| t.text.clone()).unwrap_or_default())
        .collect()
}
