//! Cross-attention maps of finished translations: which source tokens the decoder looked at for
//! each token it produced, for heat-maps (`s2s generate --attention-out`).
//!
//! The weights come from one teacher-forced pass over `<s>` and the chosen tokens. The model is
//! deterministic at inference, so this is exactly the attention the decoder computed while
//! producing them (cached decoding equals teacher forcing, a tested invariant), and for beam
//! search it is the chosen hypothesis' attention, not that of beams it discarded.

use burn::prelude::*;
use s2s_data::{Seq2SeqTokenizer, SourceTokenizer, TokenizerPair};
use s2s_model::special;
use s2s_model::Seq2Seq;
use serde::Serialize;

use crate::{source_ids, InferError, Translation};

/// The cross-attention of one translation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionMap {
    /// One label per model input id (specials included): the token's text.
    pub source_tokens: Vec<String>,
    /// One label per produced token, `</s>` last when the hypothesis finished.
    pub target_tokens: Vec<String>,
    /// `[layer][head][target][source]`: the Transformer's per layer and head; the RNN family's
    /// one layer of one head.
    pub layers: Vec<Vec<Vec<Vec<f32>>>>,
    /// `[target][source]`: the mean over layers and heads. Each row sums to 1.
    pub average: Vec<Vec<f32>>,
}

/// A token's text for an axis label: the id decoded alone, or the raw vocabulary entry when
/// that is empty (specials) or not whole characters (a byte-level piece of a character).
fn label(decoded: Option<String>, raw: Option<String>) -> String {
    match decoded {
        Some(text) if !text.trim().is_empty() && !text.contains('\u{FFFD}') => {
            text.trim().to_string()
        }
        _ => raw.unwrap_or_default(),
    }
}

fn target_label(tokenizer: &Seq2SeqTokenizer, id: u32) -> String {
    label(tokenizer.decode(&[id]).ok(), tokenizer.id_to_token(id))
}

fn source_label(tokenizer: &SourceTokenizer, id: u32) -> String {
    match tokenizer {
        SourceTokenizer::Bpe(bpe) => target_label(bpe, id),
        SourceTokenizer::Bert(bert) => bert.id_to_token(id).unwrap_or_default(),
    }
}

/// The attention map of each line's best translation, line for line with `translations` (as
/// [`crate::translate()`] returns them): `None` for a line without one (a blank line). Each
/// source is read as [`crate::source_ids`] reads it for translation.
///
/// # Errors
/// [`InferError::Data`] when the source tokenizer fails; [`InferError::Config`] when a
/// translation is longer than the model's target positions.
pub fn attention_maps<B: Backend>(
    model: &Seq2Seq<B>,
    tokenizers: &TokenizerPair,
    sentences: &[String],
    translations: &[Vec<Translation>],
    max_source_len: usize,
    device: &B::Device,
) -> Result<Vec<Option<AttentionMap>>, InferError> {
    sentences
        .iter()
        .zip(translations)
        .map(|(sentence, hyps)| {
            hyps.first()
                .map(|best| {
                    let source = source_ids(&tokenizers.source, sentence, max_source_len)?;
                    attention_map(model, tokenizers, &source, best, device)
                })
                .transpose()
        })
        .collect()
}

/// The attention map of `translation` of the model input `source` (ids with specials, as
/// [`source_ids`] makes them).
///
/// # Errors
/// As [`attention_maps`].
pub fn attention_map<B: Backend>(
    model: &Seq2Seq<B>,
    tokenizers: &TokenizerPair,
    source: &[u32],
    translation: &Translation,
    device: &B::Device,
) -> Result<AttentionMap, InferError> {
    let mut produced = translation.ids.clone();
    if translation.finished {
        produced.push(special::EOS);
    }
    // Row t of the weights belongs to the token after input position t.
    let mut input = vec![special::BOS];
    input.extend(&produced[..produced.len().saturating_sub(1)]);
    if input.len() > model.max_target_positions() {
        return Err(InferError::Config(format!(
            "an output of {} tokens is longer than the model's {} target positions",
            input.len(),
            model.max_target_positions()
        )));
    }
    let ids = |ids: &[u32]| {
        let ints: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        Tensor::<B, 2, Int>::from_data(TensorData::new(ints, [1, ids.len()]), device)
    };
    let source_tensor = ids(source);
    let pad = source_tensor.clone().equal_elem(i64::from(special::PAD));
    let layers = model
        .cross_attention(source_tensor, pad, ids(&input))
        .into_iter()
        .map(|layer| {
            let [_, heads, rows, cols] = layer.dims();
            let values: Vec<f32> = layer.into_data().iter::<f32>().collect();
            (0..heads)
                .map(|h| {
                    (0..rows)
                        .map(|r| {
                            let start = (h * rows + r) * cols;
                            values[start..start + cols].to_vec()
                        })
                        .collect()
                })
                .collect::<Vec<Vec<Vec<f32>>>>()
        })
        .collect::<Vec<_>>();
    Ok(AttentionMap {
        source_tokens: source
            .iter()
            .map(|&id| source_label(&tokenizers.source, id))
            .collect(),
        target_tokens: produced
            .iter()
            .map(|&id| target_label(&tokenizers.target, id))
            .collect(),
        average: average(&layers),
        layers,
    })
}

/// The mean over layers and heads, `[target][source]`.
fn average(layers: &[Vec<Vec<Vec<f32>>>]) -> Vec<Vec<f32>> {
    let maps: Vec<&Vec<Vec<f32>>> = layers.iter().flatten().collect();
    let Some(first) = maps.first() else {
        return Vec::new();
    };
    let n = maps.len() as f32;
    (0..first.len())
        .map(|r| {
            (0..first[r].len())
                .map(|c| maps.iter().map(|m| m[r][c]).sum::<f32>() / n)
                .collect()
        })
        .collect()
}
