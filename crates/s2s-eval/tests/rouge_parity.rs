//! Parity with rouge-score 0.1.2 (and NLTK 3.9.1's Porter stemmer): every fixture pair and
//! inline case is scored here, with and without the stemmer, and compared with the numbers the
//! real rouge-score produced (`tests/fixtures/rouge/golden.json`, written by
//! `tests/fixtures/rouge/make-golden.sh`).
// clippy.toml allows unwrap in #[test] functions only, not in the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use common::f64_of;

use s2s_eval::rouge::ROUGE_TYPES;
use s2s_eval::{
    corpus_rouge, porter_stem, rouge_pair, rouge_tokenize, RougeScores, RougeStats, RougeTriple,
};
use serde_json::Value;

/// Scores must agree this closely. They agree to the last bit: per-segment scores are ratios
/// of counts and one F1 formula, computed with the same IEEE operations in the same order, and
/// both sides take the mean of an exactly rounded sum (`math.fsum`). 0 is the tightest
/// tolerance there is; the requirement is 4 decimals (5e-5).
const TOLERANCE: f64 = 0.0;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// `{"rouge1": [p, r, f], …}` compared with our four triples.
fn check_scores(ours: &RougeScores, golden: &Value, what: &str) {
    for (name, triple) in ours.named() {
        let theirs: Vec<f64> = golden[name]
            .as_array()
            .unwrap()
            .iter()
            .map(f64_of)
            .collect();
        let RougeTriple {
            precision,
            recall,
            fmeasure,
        } = triple;
        for (field, ours, theirs) in [
            ("precision", precision, theirs[0]),
            ("recall", recall, theirs[1]),
            ("fmeasure", fmeasure, theirs[2]),
        ] {
            assert!(
                (ours - theirs).abs() <= TOLERANCE,
                "{what} {name} {field}: ours {ours:?}, rouge-score {theirs:?}"
            );
        }
    }
}

/// One `runs` entry: per-segment scores and their means, for one stemmer setting.
fn check_run(hyps: &[String], refs: &[String], run: &Value, what: &str) {
    let use_stemmer = run["use_stemmer"].as_bool().unwrap();
    let what = format!("{what} (use_stemmer = {use_stemmer})");
    let segments = run["segments"].as_array().unwrap();
    assert_eq!(segments.len(), hyps.len(), "{what}");
    let mut stats = RougeStats::new(use_stemmer);
    for (i, ((hyp, reference), golden)) in hyps.iter().zip(refs).zip(segments).enumerate() {
        let scores = rouge_pair(hyp, reference, use_stemmer);
        check_scores(
            &scores,
            golden,
            &format!("{what} line {}: {hyp:?} vs {reference:?}", i + 1),
        );
        stats.add(hyp, reference);
    }
    let score = stats.score();
    assert_eq!(
        score,
        corpus_rouge(hyps, refs, use_stemmer).unwrap(),
        "{what}"
    );
    assert_eq!(score.segments, hyps.len());
    assert_eq!(score.use_stemmer, use_stemmer);
    check_scores(&score.scores, &run["mean"], &format!("{what} mean"));
}

#[test]
fn golden_was_made_by_rouge_score_0_1_2_and_nltk_3_9_1() {
    let golden = common::golden("fixtures/rouge");
    assert_eq!(golden["rouge_score_version"], s2s_eval::ROUGE_SCORE_VERSION);
    assert_eq!(golden["nltk_version"], s2s_eval::NLTK_VERSION);
    let names: Vec<&str> = golden["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bible-en-mild", "bible-en-heavy", "unicode", "edge-cases"]
    );
    assert_eq!(ROUGE_TYPES, ["rouge1", "rouge2", "rougeL", "rougeLsum"]);
}

#[test]
fn fixture_pairs_match_rouge_score() {
    let golden = common::golden("fixtures/rouge");
    for pair in golden["pairs"].as_array().unwrap() {
        let name = pair["name"].as_str().unwrap();
        let hyps = common::read_lines("fixtures/rouge", pair["hyp"].as_str().unwrap());
        let refs = common::read_lines("fixtures/rouge", pair["ref"].as_str().unwrap());
        assert_eq!(hyps.len() as u64, pair["lines"].as_u64().unwrap(), "{name}");
        assert_eq!(hyps.len(), refs.len(), "{name}");
        let runs = pair["runs"].as_array().unwrap();
        assert_eq!(
            runs.len(),
            2,
            "{name}: one run without the stemmer, one with"
        );
        for run in runs {
            check_run(&hyps, &refs, run, name);
        }
    }
}

#[test]
fn multi_sentence_cases_match_rouge_score() {
    let golden = common::golden("fixtures/rouge");
    let multi = &golden["multi_sentence"];
    let cases = multi["cases"].as_array().unwrap();
    assert!(cases.len() >= 80);
    let hyps: Vec<String> = cases
        .iter()
        .map(|c| c["hyp"].as_str().unwrap().to_owned())
        .collect();
    let refs: Vec<String> = cases
        .iter()
        .map(|c| c["ref"].as_str().unwrap().to_owned())
        .collect();
    // rougeLsum differs from rougeL somewhere, or the cases would not test it.
    assert!(hyps
        .iter()
        .zip(&refs)
        .any(|(h, r)| { rouge_pair(h, r, false).rouge_l != rouge_pair(h, r, false).rouge_lsum }));
    for run in multi["runs"].as_array().unwrap() {
        check_run(&hyps, &refs, run, "multi-sentence");
    }
}

#[test]
fn tokenizer_matches_rouge_score() {
    let golden = common::golden("fixtures/rouge");
    let cases = golden["tokenizer"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        assert_eq!(
            rouge_tokenize(input, false),
            strings(&case["tokens"]),
            "{input:?}"
        );
        assert_eq!(
            rouge_tokenize(input, true),
            strings(&case["stemmed"]),
            "{input:?} stemmed"
        );
    }
}

/// Only ASCII letters and digits make tokens, so what matters of Python's `str.lower()` is
/// which other characters lowercase to one. Rust's Unicode tables must agree on every
/// character, or a text with one of them would tokenise differently.
#[test]
fn lowercasing_makes_ascii_of_the_same_characters_as_python() {
    let golden = common::golden("fixtures/rouge");
    let python: Vec<(String, String)> = golden["lowercase_to_ascii"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["char"].as_str().unwrap().to_owned(),
                c["lower"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ours: Vec<(String, String)> = (0x80..=0x10ffff_u32)
        .filter_map(char::from_u32)
        .filter(|c| {
            c.to_lowercase()
                .any(|l| l.is_ascii_lowercase() || l.is_ascii_digit())
        })
        .map(|c| (c.to_string(), c.to_lowercase().collect()))
        .collect();
    assert_eq!(ours, python);
    assert_eq!(
        rouge_tokenize("\u{212a}elvin İzmir", false),
        ["kelvin", "i", "zmir"]
    );
}

#[test]
fn porter_stems_match_nltk() {
    let golden = common::golden("fixtures/rouge");
    let text = std::fs::read_to_string(common::fixtures("fixtures/rouge").join("porter-stems.tsv"))
        .unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in text.lines() {
        let (word, stem) = line.split_once('\t').unwrap();
        if porter_stem(word) != stem {
            wrong.push(format!("{word}: ours {}, NLTK {stem}", porter_stem(word)));
        }
        checked += 1;
    }
    assert_eq!(checked, golden["porter_words"].as_u64().unwrap());
    assert!(checked >= 5000);
    assert!(
        wrong.is_empty(),
        "{} of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn batch_by_batch_accumulation_equals_one_shot() {
    let hyps = common::read_lines("fixtures/rouge", "bible-en-heavy.hyp.txt");
    let refs = common::read_lines("fixtures/rouge", "bible-en.ref.txt");
    for use_stemmer in [false, true] {
        let mut merged = RougeStats::new(use_stemmer);
        let mut running = RougeStats::new(use_stemmer);
        for (hyp_batch, ref_batch) in hyps.chunks(7).zip(refs.chunks(7)) {
            let mut batch = RougeStats::new(use_stemmer);
            for (hyp, reference) in hyp_batch.iter().zip(ref_batch) {
                batch.add(hyp, reference);
                running.add(hyp, reference);
            }
            merged.merge(&batch);
        }
        assert_eq!(merged, running);
        assert_eq!(merged.segments(), hyps.len());
        // Exact sums: the same bits however the corpus was split.
        assert_eq!(
            merged.score(),
            corpus_rouge(&hyps, &refs, use_stemmer).unwrap()
        );
    }
}
