//! Backend-generic encoder–decoder modules for s2s: the Transformer family (encoder or
//! pre-trained BERT, adapter, decoder) and the RNN family (LSTM/GRU with attention).
//!
//! Every module follows burn-nn's triad (`FooConfig`, `FooConfig::init`, `Foo<B>`); the
//! experiment-facing [`ModelConfig`] is a serde struct that refuses unknown keys and validates
//! itself before anything is built.

pub mod adapter;
pub mod attention;
pub mod batch;
pub mod bert;
pub mod cache;
pub mod config;
pub mod decoder;
pub mod embedding;
pub mod encoder;
pub mod feedforward;
pub mod linear;
pub mod loss;
pub mod rnn;
pub mod seq2seq;
pub mod transformer;

pub use batch::{special, Seq2SeqBatch};
pub use bert::{mean_pool, BertConfig, BertEncoder, BertError};
pub use cache::{EncoderMemory, KvCache, MemoryKeyValue};
pub use config::{
    AdapterConfig, AdapterKind, AttentionKind, CellKind, ConfigError, ModelConfig, ModelFamily,
    PositionKind, RnnConfig, StackConfig, VocabSizes,
};
pub use feedforward::Activation;
pub use loss::{fused_cross_entropy, sequence_cross_entropy, FusedCrossEntropy, FusedLossOutput};
pub use rnn::{RnnMemory, RnnSeq2Seq, RnnState};
pub use seq2seq::{CrossAttention, DecoderMemory, DecoderState, Seq2Seq, Seq2SeqOutput};
pub use transformer::{SourceEncoder, TransformerSeq2Seq, TransformerSource};

#[cfg(test)]
mod tests;
