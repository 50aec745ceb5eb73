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
        let path = dir.join("tokenizer.json");
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
        Ok(Self { inner })
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

    /// The prepared all-MiniLM-L6-v2 tokenizer (CI prepares it and sets S2S_REQUIRE_BERT).
    fn minilm() -> Option<BertTokenizer> {
        let dir = crate::data_dir().join(crate::MINILM_L6);
        if !dir.join("tokenizer.json").is_file() {
            assert!(
                std::env::var_os("S2S_REQUIRE_BERT").is_none(),
                "S2S_REQUIRE_BERT is set but {} is not prepared",
                dir.display()
            );
            return None;
        }
        Some(BertTokenizer::load(&dir).unwrap())
    }

    #[test]
    fn minilm_ids_match_the_reference_tokenizer() {
        let Some(tokenizer) = minilm() else {
            return;
        };
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
}
