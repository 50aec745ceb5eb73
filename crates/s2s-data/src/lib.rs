//! Corpora, tokenizers, datasets and the batcher that feed s2s models.
//!
//! - [`corpus`]: real corpora prepared once into TSV splits with a checksummed manifest.
//! - [`pretrained`]: pre-trained checkpoints (a BERT) fetched and extracted the same way;
//!   [`bert_tokenizer`] reads their WordPiece tokenizer.
//! - [`pairs`]: [`SentencePair`] and the TSV/JSONL readers.
//! - [`tokenizer`]: byte-level BPE with `<pad> <s> </s> <unk>` at ids 0..=3.
//! - [`dataset`]: tokenisation under [`LengthLimits`] and the burn [`Seq2SeqDataset`].
//! - [`batcher`]: padding, masks and the teacher-forcing shift into a
//!   [`Seq2SeqBatch`](s2s_model::Seq2SeqBatch).

pub mod batcher;
pub mod bert_tokenizer;
pub mod bucket;
pub mod corpus;
pub mod dataset;
mod error;
mod fsutil;
pub mod pairs;
pub mod pretrained;
pub mod text;
pub mod tokenizer;
mod wheel;

pub use batcher::Seq2SeqBatcher;
pub use bert_tokenizer::{BertEncoding, BertTokenizer};
pub use bucket::{training_loader, EpochBatches, EpochLoader};
pub use corpus::{
    corpus_dir, data_dir, ensure_corpus, prepare_bible, prepare_bible_en_fr,
    prepare_debian_descriptions, AptSource, CorpusSource, Manifest, Split, DEBIAN_DESCRIPTIONS,
    KNOWN_CORPORA,
};
pub use dataset::{
    tokenize_pairs, LengthLimits, LengthPolicy, LengthStats, Seq2SeqDataset, SidePolicies,
    TokenizedPair,
};
pub use error::DataError;
pub use fsutil::{sha256_bytes, sha256_file, write_atomic};
pub use pairs::{read_pairs, read_pairs_with, write_pairs_tsv, PairFormat, SentencePair};
pub use pretrained::{
    known_names, prepare_named, prepare_pretrained, resolve_bert, BERT_CONFIG_FILE, BERT_FILES,
    BERT_TOKENIZER_FILE, BERT_WEIGHTS_FILE, KNOWN_PRETRAINED, MINILM_L6,
};
pub use text::{one_line, read_text, strip_bom};
pub use tokenizer::{Seq2SeqTokenizer, SourceTokenizer, TokenizerPair};
