//! Sentence pairs and the two on-disk formats s2s reads them from (TSV and JSONL).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::DataError;

/// One source sentence and its reference target, as raw text.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentencePair {
    pub source: String,
    pub target: String,
}

impl SentencePair {
    /// Builds a pair from anything string-like.
    pub fn new(source: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            target: target.into(),
        }
    }
}

/// Which JSONL keys hold the source and the target. TSV files ignore it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairFormat {
    /// Key of the source sentence. Default: `"source"`.
    pub source_field: String,
    /// Key of the target sentence. Default: `"target"`.
    pub target_field: String,
}

impl Default for PairFormat {
    fn default() -> Self {
        Self {
            source_field: "source".into(),
            target_field: "target".into(),
        }
    }
}

/// Reads pairs from a `.tsv` (`source<TAB>target` per line) or `.jsonl` file (one object per
/// line with `source` and `target` keys).
pub fn read_pairs(path: &Path) -> Result<Vec<SentencePair>, DataError> {
    read_pairs_with(path, &PairFormat::default())
}

/// Like [`read_pairs`], with the JSONL keys given by `format`.
///
/// TSV: every line, blank ones included, must hold exactly two tab-separated fields; a trailing
/// `\r` (CRLF files) is ignored. JSONL: blank lines are skipped; extra keys are ignored. Both: a
/// leading UTF-8 byte-order mark is ignored.
pub fn read_pairs_with(path: &Path, format: &PairFormat) -> Result<Vec<SentencePair>, DataError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let parse = match extension.as_deref() {
        Some("tsv") => parse_tsv,
        Some("jsonl") => parse_jsonl,
        _ => {
            return Err(DataError::UnknownPairFormat {
                path: path.to_path_buf(),
            })
        }
    };
    let text = crate::text::read_text(path)?;
    parse(&text, path, format)
}

fn parse_tsv(text: &str, path: &Path, _: &PairFormat) -> Result<Vec<SentencePair>, DataError> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let mut fields = line.split('\t');
            match (fields.next(), fields.next(), fields.next()) {
                (Some(source), Some(target), None) => Ok(SentencePair::new(source, target)),
                _ => Err(DataError::MalformedTsv {
                    path: path.to_path_buf(),
                    line: i + 1,
                    fields: line.split('\t').count(),
                }),
            }
        })
        .collect()
}

fn parse_jsonl(
    text: &str,
    path: &Path,
    format: &PairFormat,
) -> Result<Vec<SentencePair>, DataError> {
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|source| DataError::MalformedJsonl {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| DataError::MissingJsonlField {
                    path: path.to_path_buf(),
                    line: i + 1,
                    field: name.to_owned(),
                })
        };
        pairs.push(SentencePair {
            source: field(&format.source_field)?,
            target: field(&format.target_field)?,
        });
    }
    Ok(pairs)
}

/// Writes pairs as `source<TAB>target` lines, atomically. A sentence holding a tab or a line
/// break is refused rather than silently corrupting the file.
pub fn write_pairs_tsv(path: &Path, pairs: &[SentencePair]) -> Result<(), DataError> {
    write_atomic(path, &tsv_bytes(path, pairs)?)
}

/// The exact bytes [`write_pairs_tsv`] writes (used to checksum a split before writing it).
pub(crate) fn tsv_bytes(path: &Path, pairs: &[SentencePair]) -> Result<Vec<u8>, DataError> {
    let mut out = String::with_capacity(pairs.len() * 200);
    for pair in pairs {
        for text in [&pair.source, &pair.target] {
            if text.contains(['\t', '\n', '\r']) {
                return Err(DataError::FieldNotTsvSafe {
                    path: path.to_path_buf(),
                    text: text.clone(),
                });
            }
        }
        out.push_str(&pair.source);
        out.push('\t');
        out.push_str(&pair.target);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_tsv() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "p.tsv",
            "Hello.\tBonjour.\r\nI don't know.\tJe ne sais pas.\n",
        );
        let pairs = read_pairs(&path).unwrap();
        assert_eq!(
            pairs,
            vec![
                SentencePair::new("Hello.", "Bonjour."),
                SentencePair::new("I don't know.", "Je ne sais pas."),
            ]
        );
    }

    #[test]
    fn a_leading_byte_order_mark_is_not_text() {
        // A BOM made line 1 of a JSONL file "not a valid JSON object" and glued itself to the
        // first TSV source.
        let dir = tempfile::tempdir().unwrap();
        let expected = vec![
            SentencePair::new("Hello.", "Bonjour."),
            SentencePair::new("Yes.", "Oui."),
        ];
        let tsv = write(
            dir.path(),
            "bom.tsv",
            "\u{feff}Hello.\tBonjour.\r\nYes.\tOui.\r\n",
        );
        assert_eq!(read_pairs(&tsv).unwrap(), expected);
        let jsonl = write(
            dir.path(),
            "bom.jsonl",
            "\u{feff}{\"source\": \"Hello.\", \"target\": \"Bonjour.\"}\n\
             {\"source\": \"Yes.\", \"target\": \"Oui.\"}\n",
        );
        assert_eq!(read_pairs(&jsonl).unwrap(), expected);
    }

    #[test]
    fn tsv_line_with_three_fields_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.tsv", "a\tb\nc\td\te\n");
        let err = read_pairs(&path).unwrap_err();
        assert!(matches!(
            err,
            DataError::MalformedTsv {
                line: 2,
                fields: 3,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(msg.contains("line 2") && msg.contains("bad.tsv"), "{msg}");
    }

    #[test]
    fn tsv_line_without_tab_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.tsv", "a\tb\n\nc\td\n");
        let err = read_pairs(&path).unwrap_err();
        assert!(matches!(
            err,
            DataError::MalformedTsv {
                line: 2,
                fields: 1,
                ..
            }
        ));
    }

    #[test]
    fn reads_jsonl_with_default_and_custom_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "p.jsonl",
            "{\"source\": \"Hi\", \"target\": \"Salut\", \"id\": 1}\n\n{\"source\": \"Tab\\there\", \"target\": \"l'été\"}\n",
        );
        let pairs = read_pairs(&path).unwrap();
        assert_eq!(
            pairs,
            vec![
                SentencePair::new("Hi", "Salut"),
                SentencePair::new("Tab\there", "l'été"),
            ]
        );

        let path = write(
            dir.path(),
            "q.JSONL",
            "{\"en\": \"Hi\", \"fr\": \"Salut\"}\n",
        );
        let format = PairFormat {
            source_field: "en".into(),
            target_field: "fr".into(),
        };
        assert_eq!(
            read_pairs_with(&path, &format).unwrap(),
            vec![SentencePair::new("Hi", "Salut")]
        );
        // The default keys are absent in that file.
        let err = read_pairs(&path).unwrap_err();
        assert!(matches!(
            err,
            DataError::MissingJsonlField { line: 1, ref field, .. } if field == "source"
        ));
    }

    #[test]
    fn malformed_jsonl_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "p.jsonl",
            "{\"source\": \"a\", \"target\": \"b\"}\n{\"source\": \"a\"\n",
        );
        let err = read_pairs(&path).unwrap_err();
        assert!(matches!(err, DataError::MalformedJsonl { line: 2, .. }));
        assert!(err.to_string().contains("line 2"));
    }

    #[test]
    fn unknown_extension_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "p.csv", "a,b\n");
        let err = read_pairs(&path).unwrap_err();
        assert!(matches!(err, DataError::UnknownPairFormat { .. }));
        assert!(err.to_string().contains(".tsv"));
    }

    #[test]
    fn tsv_write_read_round_trip_and_refuses_tabs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.tsv");
        let pairs = vec![
            SentencePair::new("In the beginning.", "Au commencement."),
            SentencePair::new("God's Spirit", "l'esprit de Dieu"),
        ];
        write_pairs_tsv(&path, &pairs).unwrap();
        assert_eq!(read_pairs(&path).unwrap(), pairs);

        let bad = [SentencePair::new("a\tb", "c")];
        assert!(matches!(
            write_pairs_tsv(&path, &bad),
            Err(DataError::FieldNotTsvSafe { .. })
        ));
        // The earlier file is untouched by the refused write.
        assert_eq!(read_pairs(&path).unwrap(), pairs);
    }
}
