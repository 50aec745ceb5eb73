//! Property test of the byte-level BPE (proptest, bounded: 256 cases): any UTF-8 text, special
//! tokens' spellings, control characters and unassigned code points included, encodes and
//! decodes back to itself (in Unicode NFC, the tokenizer's normaliser), without a panic.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use s2s_data::{read_pairs, TokenizerPair};
use tokenizers::normalizers::NFC;
use tokenizers::{NormalizedString, Normalizer};

fn tokenizers() -> &'static TokenizerPair {
    static TOKENIZERS: OnceLock<TokenizerPair> = OnceLock::new();
    TOKENIZERS.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/bible-en-fr-train.tsv");
        TokenizerPair::train(&read_pairs(&path).unwrap(), true, 400, 2).unwrap()
    })
}

fn nfc(text: &str) -> String {
    let mut normalized = NormalizedString::from(text);
    NFC.normalize(&mut normalized).unwrap();
    normalized.get().to_string()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,60}",
        "[a-zA-Zàéèç' ,.!?\n\t\r]{0,60}",
        Just("<s> </s> <pad> <unk>".to_string()),
        Just("e\u{301} \u{1F600} \u{0} \u{FEFF}".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_round_trips_through_the_bpe(text in text()) {
        let t = &tokenizers().target;
        let ids = t.encode(&text).unwrap();
        prop_assert!(ids.iter().all(|&id| id > 3), "a special id in {:?}", ids);
        prop_assert_eq!(t.decode(&ids).unwrap(), nfc(&text));
    }
}
