//! The WordPiece tokenizer of a pre-trained BERT, read from its Hugging Face `tokenizer.json`
//! (lower-casing, accent stripping and `[CLS] … [SEP]` as the checkpoint defines them), with the
//! file's truncation and padding turned off: s2s pads batches itself and cuts by its own limits.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::DataError;

/// A BERT tokenizer; `encode` adds `[CLS]` and `[SEP]`.
#[derive(Clone, Debug)]
pub struct BertTokenizer {
    inner: Tokenizer,
    /// Id of `[CLS]`, which starts every input.
    cls: u32,
    /// Id of `[SEP]`, which ends every input.
    sep: u32,
}

/// One encoded text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BertEncoding {
    /// `[CLS] x1 … xm [SEP]` ids.
    pub ids: Vec<u32>,
    /// The WordPiece strings of the same positions.
    pub tokens: Vec<String>,
}

impl BertTokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self, DataError> {
        Self::load_file(&dir.join("tokenizer.json"))
    }

    /// Loads a Hugging Face BERT `tokenizer.json`; it must define `[CLS]` and `[SEP]`.
    pub fn load_file(path: &Path) -> Result<Self, DataError> {
        let path = path.to_path_buf();
        let mut inner = Tokenizer::from_file(&path).map_err(|source| DataError::Tokenizer {
            action: format!("load {}", path.display()),
            source,
        })?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|source| DataError::Tokenizer {
                action: format!("turn off the truncation of {}", path.display()),
                source,
            })?;
        let special = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| DataError::Tokenizer {
                    action: format!("find {token} in {}", path.display()),
                    source: format!("{} has no {token} token", path.display()).into(),
                })
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        Ok(Self { inner, cls, sep })
    }

    /// WordPiece ids of `text` without `[CLS]`/`[SEP]` (see [`Self::wrap`]).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, DataError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|source| DataError::Tokenizer {
                action: format!("encode {text:?}"),
                source,
            })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// `[CLS] ids [SEP]`.
    pub fn wrap(&self, ids: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(ids.len() + 2);
        out.push(self.cls);
        out.extend_from_slice(ids);
        out.push(self.sep);
        out
    }

    /// The WordPiece string of one id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Writes the tokenizer as `tokenizer.json` (truncation and padding off), atomically.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|source| DataError::Tokenizer {
                action: format!("serialise to {}", path.display()),
                source,
            })?;
        crate::write_atomic(path, json.as_bytes())
    }

    /// `[CLS] text [SEP]` as ids and WordPiece strings.
    pub fn encode(&self, text: &str) -> Result<BertEncoding, DataError> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|source| DataError::Tokenizer {
                action: format!("encode {text:?}"),
                source,
            })?;
        Ok(BertEncoding {
            ids: encoding.get_ids().to_vec(),
            tokens: encoding.get_tokens().to_vec(),
        })
    }

    /// Number of ids (the size of BERT's word embedding table).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The prepared all-MiniLM-L6-v2 tokenizer; the tests that use it are `#[ignore]`d unless
    /// asked for (scripts/test.sh asks when it is prepared, CI always), and then it must exist.
    fn minilm() -> BertTokenizer {
        let dir = crate::data_dir().join(crate::MINILM_L6);
        assert!(
            dir.join("tokenizer.json").is_file(),
            "{} is not prepared: run `s2s data prepare minilm-l6`",
            dir.display()
        );
        BertTokenizer::load(&dir).unwrap()
    }

    #[test]
    #[ignore = "needs the prepared all-MiniLM-L6-v2: s2s data prepare minilm-l6 (scripts/test.sh then runs it)"]
    fn minilm_ids_match_the_reference_tokenizer() {
        let tokenizer = minilm();
        let e = tokenizer.encode("A man is eating food.").unwrap();
        assert_eq!(e.ids, [101, 1037, 2158, 2003, 5983, 2833, 1012, 102]);
        assert_eq!(
            e.tokens,
            ["[CLS]", "a", "man", "is", "eating", "food", ".", "[SEP]"]
        );
        assert_eq!(tokenizer.vocab_size(), 30_522);
        // Every sentence of the parity fixture, as the Python `tokenizers` package encoded it
        // (accents stripped, lower-cased, WordPiece), and no truncation at 128 tokens.
        let golden: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../tests/fixtures/minilm/golden.json"),
            )
            .unwrap(),
        )
        .unwrap();
        for s in golden["sentences"].as_array().unwrap() {
            let e = tokenizer.encode(s["text"].as_str().unwrap()).unwrap();
            let ids: Vec<u32> = s["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(e.ids, ids, "{}", s["text"]);
        }
        let long = "word ".repeat(300);
        assert_eq!(tokenizer.encode(&long).unwrap().ids.len(), 302);
    }

    #[test]
    #[ignore = "needs the prepared all-MiniLM-L6-v2: s2s data prepare minilm-l6 (scripts/test.sh then runs it)"]
    fn plain_ids_wrapped_equal_the_full_encoding_and_survive_save_load() {
        let tokenizer = minilm();
        let text = "In the beginning, God created the heavens and the earth.";
        let plain = tokenizer.encode_plain(text).unwrap();
        assert_eq!(plain.len() + 2, tokenizer.encode(text).unwrap().ids.len());
        assert_eq!(tokenizer.wrap(&plain), tokenizer.encode(text).unwrap().ids);
        assert_eq!(tokenizer.wrap(&[]), [101, 102]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        tokenizer.save(&path).unwrap();
        let loaded = BertTokenizer::load_file(&path).unwrap();
        let long = "word ".repeat(300);
        assert_eq!(loaded.encode_plain(text).unwrap(), plain);
        assert_eq!(loaded.encode_plain(&long).unwrap().len(), 300);
    }
}
