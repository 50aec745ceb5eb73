//! Byte-level BPE tokenizers (HF `tokenizers`) with s2s's fixed special ids.
//!
//! Byte-level BPE (GPT-2/BART style) is used rather than Metaspace/SentencePiece-style BPE because
//! it never produces `<unk>` and `decode(encode(s)) == s` holds for every NFC string, including
//! runs of spaces and characters never seen in training; Metaspace loses both.

use std::path::{Path, PathBuf};

use s2s_model::special;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use crate::fsutil::write_atomic;
use crate::{BertTokenizer, DataError, SentencePair};

/// The special tokens in id order: `<pad>`=0, `<s>`=1, `</s>`=2, `<unk>`=3.
pub const SPECIAL_TOKENS: [(&str, u32); 4] = [
    ("<pad>", special::PAD),
    ("<s>", special::BOS),
    ("</s>", special::EOS),
    ("<unk>", special::UNK),
];

/// Smallest vocabulary a byte-level BPE can have: the specials plus the 256 byte symbols.
pub const MIN_VOCAB_SIZE: usize = SPECIAL_TOKENS.len() + 256;

/// File name of a joint (shared source/target) tokenizer in a run directory.
pub const JOINT_FILE: &str = "tokenizer.json";
/// File name of the source tokenizer when source and target have separate vocabularies.
pub const SOURCE_FILE: &str = "tokenizer-source.json";
/// File name of the target tokenizer when source and target have separate vocabularies.
pub const TARGET_FILE: &str = "tokenizer-target.json";
/// File name of a pre-trained BERT's WordPiece source tokenizer in a run directory.
pub const BERT_SOURCE_FILE: &str = "tokenizer-source-bert.json";

fn tok_err(action: impl Into<String>) -> impl FnOnce(tokenizers::Error) -> DataError {
    let action = action.into();
    move |source| DataError::Tokenizer { action, source }
}

/// A trained byte-level BPE tokenizer whose ids 0..=3 are `<pad> <s> </s> <unk>`.
#[derive(Clone, Debug)]
pub struct Seq2SeqTokenizer {
    inner: Tokenizer,
}

impl Seq2SeqTokenizer {
    /// Trains a byte-level BPE on `texts` (NFC-normalised, no progress bar).
    ///
    /// `vocab_size` counts the specials and must be at least [`MIN_VOCAB_SIZE`]; merges seen fewer
    /// than `min_frequency` times are not learnt.
    pub fn train_bpe<'a>(
        texts: impl Iterator<Item = &'a str>,
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self, DataError> {
        if vocab_size < MIN_VOCAB_SIZE {
            return Err(DataError::VocabTooSmall {
                vocab_size,
                minimum: MIN_VOCAB_SIZE,
            });
        }
        let specials: Vec<AddedToken> = SPECIAL_TOKENS
            .iter()
            .map(|(token, _)| AddedToken::from(*token, true))
            .collect();
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            // The TUI owns the terminal.
            .show_progress(false)
            .build();
        let mut builder = TokenizerBuilder::<_, _, _, PostProcessorWrapper, _>::new()
            .with_model(BPE::default())
            .with_normalizer(Some(NFC))
            .with_pre_tokenizer(Some(byte_level()))
            .with_decoder(Some(ByteLevelDecoder::default()))
            .build()
            .map_err(tok_err("build an empty BPE tokenizer"))?;
        // `train` needs a `Send` iterator; the borrowed texts are cheap to collect.
        let texts: Vec<&str> = texts.collect();
        builder
            .train(&mut trainer, texts.into_iter())
            .map_err(tok_err("train a BPE vocabulary"))?;
        let tokenizer = Self::from_inner(Tokenizer::from(builder), "being trained")?;
        tracing::info!(
            vocab_size = tokenizer.vocab_size(),
            requested = vocab_size,
            "trained byte-level BPE tokenizer"
        );
        Ok(tokenizer)
    }

    fn from_inner(mut inner: Tokenizer, origin: &str) -> Result<Self, DataError> {
        for (token, expected) in SPECIAL_TOKENS {
            let actual = inner.token_to_id(token);
            if actual != Some(expected) {
                return Err(DataError::SpecialTokenId {
                    origin: origin.to_owned(),
                    token,
                    expected,
                    actual,
                });
            }
        }
        // Text that happens to contain "</s>" must be encoded as plain characters, never as the
        // EOS id, or a sentence could end itself early. The flag is not serialised, so it is set
        // on every construction.
        inner.set_encode_special_tokens(true);
        Ok(Self { inner })
    }

    /// Token ids of `text`, without any special token.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(tok_err(format!("encode {text:?}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, skipping the special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, DataError> {
        self.inner
            .decode(ids, true)
            .map_err(tok_err("decode token ids"))
    }

    /// Number of ids, special tokens included (the embedding table size).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The token string of one id, if it exists (for inspecting vocabularies).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Writes the tokenizer as HF `tokenizer.json`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let json = self
            .inner
            .to_string(true)
            .map_err(tok_err(format!("serialise to {}", path.display())))?;
        write_atomic(path, json.as_bytes())
    }

    /// Reads a tokenizer written by [`save`](Self::save) (or any HF `tokenizer.json` with the same
    /// special ids).
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let inner =
            Tokenizer::from_file(path).map_err(tok_err(format!("load {}", path.display())))?;
        Self::from_inner(inner, &path.display().to_string())
    }
}

fn byte_level() -> ByteLevel {
    // No prefix space: decode would otherwise return it, breaking the round trip.
    ByteLevel::new(false, false, true)
}

/// How source sentences become model input ids: s2s's BPE (`x1 … xm </s>`) or a pre-trained
/// BERT's WordPiece (`[CLS] x1 … xm [SEP]`).
#[derive(Clone, Debug)]
pub enum SourceTokenizer {
    Bpe(Seq2SeqTokenizer),
    Bert(BertTokenizer),
}

impl SourceTokenizer {
    /// Ids of `text` without the specials [`Self::wrap`] adds.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        match self {
            Self::Bpe(t) => t.encode(text),
            Self::Bert(t) => t.encode_plain(text),
        }
    }

    /// The model input: `ids </s>` (BPE) or `[CLS] ids [SEP]` (BERT).
    pub fn wrap(&self, ids: &[u32]) -> Vec<u32> {
        match self {
            Self::Bpe(_) => ids.iter().copied().chain([special::EOS]).collect(),
            Self::Bert(t) => t.wrap(ids),
        }
    }

    /// How many ids [`Self::wrap`] adds.
    pub fn num_specials(&self) -> usize {
        match self {
            Self::Bpe(_) => 1,
            Self::Bert(_) => 2,
        }
    }

    /// Model input ids of `text`, its tokens cut so that the input (specials included) holds
    /// at most `max_len` ids.
    pub fn input_ids(&self, text: &str, max_len: usize) -> Result<Vec<u32>, DataError> {
        let mut ids = self.encode(text)?;
        ids.truncate(max_len.saturating_sub(self.num_specials()));
        Ok(self.wrap(&ids))
    }

    /// Number of ids (the source embedding table size).
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Bpe(t) => t.vocab_size(),
            Self::Bert(t) => t.vocab_size(),
        }
    }

    /// The token string of one id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match self {
            Self::Bpe(t) => t.id_to_token(id),
            Self::Bert(t) => t.id_to_token(id),
        }
    }
}

/// The tokenizers of one run: one shared BPE vocabulary (`joint`), one BPE per side, or a
/// pre-trained BERT's WordPiece for the source and a BPE for the target.
#[derive(Clone, Debug)]
pub struct TokenizerPair {
    pub source: SourceTokenizer,
    pub target: Seq2SeqTokenizer,
    /// `true` when source and target share one vocabulary (saved as `tokenizer.json`).
    pub joint: bool,
}

impl TokenizerPair {
    /// Source and target vocabulary sizes, which fix the model's embedding shapes.
    pub fn vocab_sizes(&self) -> s2s_model::VocabSizes {
        s2s_model::VocabSizes {
            source: self.source.vocab_size(),
            target: self.target.vocab_size(),
        }
    }

    /// Trains a joint tokenizer on both sides, or one tokenizer per side.
    pub fn train(
        pairs: &[SentencePair],
        joint: bool,
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self, DataError> {
        let sources = pairs.iter().map(|p| p.source.as_str());
        let targets = pairs.iter().map(|p| p.target.as_str());
        if joint {
            let tokenizer =
                Seq2SeqTokenizer::train_bpe(sources.chain(targets), vocab_size, min_frequency)?;
            Ok(Self {
                source: SourceTokenizer::Bpe(tokenizer.clone()),
                target: tokenizer,
                joint,
            })
        } else {
            Ok(Self {
                source: SourceTokenizer::Bpe(Seq2SeqTokenizer::train_bpe(
                    sources,
                    vocab_size,
                    min_frequency,
                )?),
                target: Seq2SeqTokenizer::train_bpe(targets, vocab_size, min_frequency)?,
                joint,
            })
        }
    }

    /// A pre-trained BERT's tokenizer for the source and a BPE trained on the targets only.
    pub fn train_target(
        source: BertTokenizer,
        pairs: &[SentencePair],
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self, DataError> {
        let targets = pairs.iter().map(|p| p.target.as_str());
        Ok(Self {
            source: SourceTokenizer::Bert(source),
            target: Seq2SeqTokenizer::train_bpe(targets, vocab_size, min_frequency)?,
            joint: false,
        })
    }

    /// Writes `tokenizer.json` (joint), `tokenizer-source.json` + `tokenizer-target.json`, or
    /// `tokenizer-source-bert.json` + `tokenizer-target.json` into `run_dir`, removing files of
    /// the other layouts so [`load`](Self::load) stays unambiguous.
    pub fn save(&self, run_dir: &Path) -> Result<(), DataError> {
        let all = [JOINT_FILE, SOURCE_FILE, TARGET_FILE, BERT_SOURCE_FILE];
        let keep: Vec<&str> = match (&self.source, self.joint) {
            (SourceTokenizer::Bpe(source), true) => {
                source.save(&run_dir.join(JOINT_FILE))?;
                vec![JOINT_FILE]
            }
            (SourceTokenizer::Bpe(source), false) => {
                source.save(&run_dir.join(SOURCE_FILE))?;
                self.target.save(&run_dir.join(TARGET_FILE))?;
                vec![SOURCE_FILE, TARGET_FILE]
            }
            (SourceTokenizer::Bert(source), _) => {
                source.save(&run_dir.join(BERT_SOURCE_FILE))?;
                self.target.save(&run_dir.join(TARGET_FILE))?;
                vec![BERT_SOURCE_FILE, TARGET_FILE]
            }
        };
        for file in all.into_iter().filter(|f| !keep.contains(f)) {
            let path = run_dir.join(file);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|source| DataError::Io {
                    action: "remove the stale tokenizer",
                    path,
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Reads the tokenizer(s) that [`save`](Self::save) wrote, detecting the layout.
    pub fn load(run_dir: &Path) -> Result<Self, DataError> {
        let path = |file: &str| -> PathBuf { run_dir.join(file) };
        let files = [JOINT_FILE, SOURCE_FILE, TARGET_FILE, BERT_SOURCE_FILE];
        let present = files.map(|f| path(f).is_file());
        match present {
            [true, false, false, false] => {
                let tokenizer = Seq2SeqTokenizer::load(&path(JOINT_FILE))?;
                Ok(Self {
                    source: SourceTokenizer::Bpe(tokenizer.clone()),
                    target: tokenizer,
                    joint: true,
                })
            }
            [false, true, true, false] => Ok(Self {
                source: SourceTokenizer::Bpe(Seq2SeqTokenizer::load(&path(SOURCE_FILE))?),
                target: Seq2SeqTokenizer::load(&path(TARGET_FILE))?,
                joint: false,
            }),
            [false, false, true, true] => Ok(Self {
                source: SourceTokenizer::Bert(BertTokenizer::load_file(&path(BERT_SOURCE_FILE))?),
                target: Seq2SeqTokenizer::load(&path(TARGET_FILE))?,
                joint: false,
            }),
            _ => {
                let found: Vec<&str> = files
                    .into_iter()
                    .zip(present)
                    .filter_map(|(f, p)| p.then_some(f))
                    .collect();
                Err(DataError::TokenizerFiles {
                    dir: run_dir.to_path_buf(),
                    found: if found.is_empty() {
                        "found none".into()
                    } else {
                        format!("found {}", found.join(", "))
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SENTENCES: &[(&str, &str)] = &[
        (
            "In the beginning, God created the heavens and the earth.",
            "Au commencement, Dieu créa les cieux et la terre.",
        ),
        (
            "God's Spirit was hovering over the surface of the waters.",
            "L'esprit de Dieu se mouvait au-dessus des eaux.",
        ),
        ("Don't be afraid!", "Ne crains pas! Où est l'été, ô mère?"),
        (
            "The children of Israel went into the sea.",
            "Les enfants d'Israël entrèrent au milieu de la mer à sec.",
        ),
        (
            "They didn't know; \"Why?\" he asked.",
            "Ils ne savaient pas; «Pourquoi?» demanda-t-il. Ça coûte 3,50 €.",
        ),
    ];

    fn pairs() -> Vec<SentencePair> {
        SENTENCES
            .iter()
            .map(|(s, t)| SentencePair::new(*s, *t))
            .collect()
    }

    #[test]
    fn specials_have_the_model_ids() {
        let tok = TokenizerPair::train(&pairs(), true, 400, 1).unwrap().target;
        for (token, id) in SPECIAL_TOKENS {
            assert_eq!(tok.inner.token_to_id(token), Some(id), "{token}");
            assert_eq!(tok.id_to_token(id).as_deref(), Some(token));
        }
        assert_eq!(
            SPECIAL_TOKENS.map(|(_, id)| id),
            [special::PAD, special::BOS, special::EOS, special::UNK]
        );
        assert_eq!([0, 1, 2, 3], SPECIAL_TOKENS.map(|(_, id)| id));
        assert!(tok.vocab_size() > MIN_VOCAB_SIZE && tok.vocab_size() <= 400);
    }

    #[test]
    fn round_trips_english_and_french() {
        let tok = TokenizerPair::train(&pairs(), true, 400, 1).unwrap().target;
        let unseen = [
            "Où êtes-vous, François? Je suis à l'hôpital, ça va.",
            "Naïve façade: « déjà vu » — Œuvre, cœur, Noël.",
            "It's  two   spaces and a trailing space ",
        ];
        for text in SENTENCES.iter().flat_map(|(s, t)| [*s, *t]).chain(unseen) {
            let ids = tok.encode(text).unwrap();
            assert!(!ids.is_empty());
            assert!(
                ids.iter().all(|&id| id > special::UNK),
                "no special id in {ids:?}"
            );
            assert_eq!(tok.decode(&ids).unwrap(), text);
        }
        // Training learnt merges: a seen sentence takes fewer ids than it has bytes.
        let seen = SENTENCES[0].1;
        assert!(tok.encode(seen).unwrap().len() < seen.len() / 2);
    }

    #[test]
    fn specials_in_text_are_plain_characters_and_skipped_on_decode() {
        let tok = TokenizerPair::train(&pairs(), true, 300, 1).unwrap().target;
        let ids = tok.encode("a </s> b <pad>").unwrap();
        assert!(ids.iter().all(|&id| id > special::UNK), "{ids:?}");
        assert_eq!(tok.decode(&ids).unwrap(), "a </s> b <pad>");

        let mut with_specials = vec![special::BOS];
        with_specials.extend(tok.encode("Dieu créa").unwrap());
        with_specials.extend([special::EOS, special::PAD, special::PAD]);
        assert_eq!(tok.decode(&with_specials).unwrap(), "Dieu créa");
    }

    #[test]
    fn save_load_gives_identical_ids_for_both_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let text = "Au commencement, Dieu créa les cieux et la terre.";
        for joint in [true, false, true] {
            let pair = TokenizerPair::train(&pairs(), joint, 350, 1).unwrap();
            pair.save(dir.path()).unwrap();
            let loaded = TokenizerPair::load(dir.path()).unwrap();
            assert_eq!(loaded.joint, joint);
            let (SourceTokenizer::Bpe(source), SourceTokenizer::Bpe(loaded_source)) =
                (&pair.source, &loaded.source)
            else {
                panic!("a BPE pair loads as a BPE pair");
            };
            for (a, b) in [(source, loaded_source), (&pair.target, &loaded.target)] {
                assert_eq!(a.encode(text).unwrap(), b.encode(text).unwrap());
                assert_eq!(a.vocab_size(), b.vocab_size());
                // The "encode specials as text" flag survives loading.
                assert!(b.encode("</s>").unwrap().iter().all(|&id| id > 3));
            }
            let input = loaded.source.input_ids(text, 4).unwrap();
            assert_eq!(input.len(), 4);
            assert_eq!(input[3], special::EOS);
            assert_eq!(dir.path().join(JOINT_FILE).exists(), joint);
            assert_eq!(dir.path().join(SOURCE_FILE).exists(), !joint);
        }
        // Separate vocabularies really are separate.
        let pair = TokenizerPair::train(&pairs(), false, 350, 1).unwrap();
        let word = "commencement";
        assert!(pair.target.encode(word).unwrap().len() < pair.source.encode(word).unwrap().len());
    }

    #[test]
    fn load_reports_missing_or_partial_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let err = TokenizerPair::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("found none"), "{err}");

        let tok = TokenizerPair::train(&pairs(), true, 300, 1).unwrap().target;
        tok.save(&dir.path().join(SOURCE_FILE)).unwrap();
        let err = TokenizerPair::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("found tokenizer-source.json"),
            "{err}"
        );
    }

    #[test]
    fn refuses_too_small_vocab_and_foreign_special_ids() {
        let err = Seq2SeqTokenizer::train_bpe(["abc"].into_iter(), 100, 1).unwrap_err();
        assert!(matches!(err, DataError::VocabTooSmall { minimum: 260, .. }));

        // A tokenizer.json whose specials sit elsewhere is refused on load.
        let dir = tempfile::tempdir().unwrap();
        let tok = TokenizerPair::train(&pairs(), true, 300, 1).unwrap().target;
        let path = dir.path().join("t.json");
        tok.save(&path).unwrap();
        let json = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"<pad>\"", "\"<PAD>\"");
        std::fs::write(&path, json).unwrap();
        let err = Seq2SeqTokenizer::load(&path).unwrap_err();
        assert!(matches!(
            err,
            DataError::SpecialTokenId { token: "<pad>", .. }
        ));
    }
}
