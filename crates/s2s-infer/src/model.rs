//! Building the model a config describes, and the recorder every run file is written with.

use burn::prelude::*;
use std::path::PathBuf;

use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, RecorderError};
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

/// Writes the final weights (`model.mpk`, without the extension in `path`) in the family's own
/// record layout: a Transformer's file is the same as before the RNN family existed, so older
/// runs keep loading. (Checkpoints hold the [`Seq2Seq`] enum, whose record names the family.)
///
/// # Errors
/// [`RecorderError`] when the file cannot be written.
pub fn save_model<B: Backend>(model: &Seq2Seq<B>, path: PathBuf) -> Result<(), RecorderError> {
    let recorder = RunRecorder::default();
    match model.clone() {
        Seq2Seq::Transformer(model) => model.save_file(path, &recorder),
        Seq2Seq::Rnn(model) => model.save_file(path, &recorder),
    }
}

/// Loads weights written by [`save_model`] into `model` (built from the same config).
///
/// # Errors
/// [`RecorderError`] when the file cannot be read or does not fit the model.
pub fn load_model_file<B: Backend>(
    model: Seq2Seq<B>,
    path: PathBuf,
    device: &B::Device,
) -> Result<Seq2Seq<B>, RecorderError> {
    let recorder = RunRecorder::default();
    Ok(match model {
        Seq2Seq::Transformer(model) => {
            Seq2Seq::Transformer(model.load_file(path, &recorder, device)?)
        }
        Seq2Seq::Rnn(model) => Seq2Seq::Rnn(model.load_file(path, &recorder, device)?),
    })
}
