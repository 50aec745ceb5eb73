//! Sentences in, sentences out: tokenize, generate with any strategy, detokenize.

use burn::prelude::*;
use s2s_data::{Seq2SeqTokenizer, SourceTokenizer, TokenizerPair};
use s2s_generate::{GenerationConfig, Hypothesis, IncrementalDecoder};
use serde::Serialize;

use crate::TrainError;

/// One output of [`translate`]: the detokenized text and what the decoder produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Translation {
    pub text: String,
    /// Subword strings of the generated ids.
    pub tokens: Vec<String>,
    /// Generated ids (without `<s>`/`</s>`).
    pub ids: Vec<u32>,
    /// Ranking score (`log_prob / length^α`).
    pub score: f64,
    /// Sum of token log-probabilities, `</s>` included.
    pub log_prob: f64,
}

/// Model input ids of a source sentence: its tokens cut so that, with the specials (`</s>`, or
/// `[CLS]`/`[SEP]` for a BERT encoder), the input holds at most `max_source_len` ids, exactly
/// as training builds them.
pub fn source_ids(
    tokenizer: &SourceTokenizer,
    sentence: &str,
    max_source_len: usize,
) -> Result<Vec<u32>, TrainError> {
    Ok(tokenizer.input_ids(sentence, max_source_len)?)
}

/// Turns hypotheses into detokenized translations.
pub fn detokenize(
    tokenizer: &Seq2SeqTokenizer,
    hyps: Vec<Hypothesis>,
) -> Result<Vec<Translation>, TrainError> {
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
            })
        })
        .collect()
}

/// Translates `sentences` with `config` (greedy, beam or sampling). Returns, per input line,
/// its `num_return_sequences` translations (best first for beam search); a blank line gets no
/// translation and costs no decoder call. Sources longer than `max_source_len` tokens (with
/// specials) are cut, as during training.
pub fn translate<B: Backend, M: IncrementalDecoder<B>>(
    model: &M,
    tokenizers: &TokenizerPair,
    sentences: &[String],
    max_source_len: usize,
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Vec<Translation>>, TrainError> {
    let mut out = vec![Vec::new(); sentences.len()];
    let mut lines = Vec::new();
    let mut sources = Vec::new();
    for (index, sentence) in sentences.iter().enumerate() {
        if !sentence.trim().is_empty() {
            lines.push(index);
            sources.push(source_ids(&tokenizers.source, sentence, max_source_len)?);
        }
    }
    let generated = s2s_generate::generate(model, &sources, config, device)?;
    for (index, hyps) in lines.into_iter().zip(generated) {
        out[index] = detokenize(&tokenizers.target, hyps)?;
    }
    Ok(out)
}

/// The best translation's text per line (blank for a blank line).
pub fn best_texts(translations: &[Vec<Translation>]) -> Vec<String> {
    translations
        .iter()
        .map(|t| t.first().map(|t| t.text.clone()).unwrap_or_default())
        .collect()
}
