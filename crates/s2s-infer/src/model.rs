//! Building the model a config describes, and the recorder every run file is written with.

use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use s2s_model::{BertConfig, ModelConfig, Seq2Seq};

use crate::{AtomicRecorder, InferError};

/// The recorder of every checkpoint and of `model.mpk`: named MessagePack in full precision,
/// written atomically with a checksum ([`AtomicRecorder`]).
pub type RunRecorder = AtomicRecorder<NamedMpkFileRecorder<FullPrecisionSettings>>;

/// Builds the model a config describes: a Transformer encoder, or a BERT of `bert`'s shape
/// (randomly initialised; the caller loads the pre-trained or trained weights).
///
/// # Errors
/// [`InferError::Config`] when the source tokenizer has more ids than the BERT embeds;
/// [`InferError::Model`] for a config the model cannot be built from.
pub fn init_model<B: Backend>(
    config: &ModelConfig,
    bert: Option<&BertConfig>,
    vocab: s2s_model::VocabSizes,
    device: &B::Device,
) -> Result<Seq2Seq<B>, InferError> {
    match bert {
        Some(bert) => {
            if vocab.source > bert.vocab_size {
                return Err(InferError::Config(format!(
                    "the source tokenizer has {} ids but the BERT embeds only {}",
                    vocab.source, bert.vocab_size
                )));
            }
            Ok(config.init_with_bert(bert, vocab.target, device)?)
        }
        None => Ok(config.init(vocab, device)?),
    }
}
