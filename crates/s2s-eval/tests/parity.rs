//! Parity with sacrebleu 2.6.0: every fixture pair and inline case is scored here and compared
//! with the numbers and printed strings the real sacrebleu produced (`tests/fixtures/golden.json`,
//! written by `tests/fixtures/make-golden.sh`).
// clippy.toml allows unwrap in #[test] functions only, not in the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use common::f64_of;

use s2s_eval::{
    corpus_bleu, corpus_chrf, tokenize_13a, BleuScore, BleuStats, ChrfScore, ChrfStats, EvalError,
};
use serde_json::Value;

/// Floats must agree this closely (sacrebleu prints 2 decimals; in practice they are equal
/// to the last bit on the same libm).
const TOLERANCE: f64 = 1e-9;

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn assert_close(ours: f64, theirs: f64, what: &str) {
    assert!(
        (ours - theirs).abs() <= TOLERANCE,
        "{what}: ours {ours:?}, sacrebleu {theirs:?}"
    );
}

/// sacrebleu's `Score.format(signature=...)`, which is also what its CLI prints.
fn check_bleu(ours: &BleuScore, golden: &Value, what: &str) {
    assert_close(
        ours.score,
        f64_of(&golden["score"]),
        &format!("{what} BLEU"),
    );
    assert_eq!(
        ours.counts.to_vec(),
        u64s(&golden["counts"]),
        "{what} counts"
    );
    assert_eq!(
        ours.totals.to_vec(),
        u64s(&golden["totals"]),
        "{what} totals"
    );
    for (n, (ours_p, theirs_p)) in ours
        .precisions
        .iter()
        .zip(golden["precisions"].as_array().unwrap())
        .enumerate()
    {
        assert_close(
            *ours_p,
            f64_of(theirs_p),
            &format!("{what} precision {}", n + 1),
        );
    }
    assert_close(ours.bp, f64_of(&golden["bp"]), &format!("{what} BP"));
    assert_eq!(
        ours.sys_len,
        golden["sys_len"].as_u64().unwrap(),
        "{what} sys_len"
    );
    assert_eq!(
        ours.ref_len,
        golden["ref_len"].as_u64().unwrap(),
        "{what} ref_len"
    );
    assert_eq!(
        ours.to_string(),
        golden["format"].as_str().unwrap(),
        "{what}"
    );
    assert_eq!(
        ours.signature(),
        golden["signature"].as_str().unwrap(),
        "{what}"
    );
    assert_eq!(
        ours.format_with_signature(),
        golden["format_with_signature"].as_str().unwrap(),
        "{what}"
    );
}

fn check_chrf(ours: &ChrfScore, stats: &ChrfStats, golden: &Value, what: &str) {
    assert_close(
        ours.score,
        f64_of(&golden["score"]),
        &format!("{what} chrF"),
    );
    let theirs: Vec<Vec<u64>> = golden["order_stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(u64s)
        .collect();
    if theirs.is_empty() {
        // sacrebleu has no statistics for an empty corpus.
        assert_eq!(stats.segments(), 0, "{what}");
    } else {
        let ours_stats: Vec<Vec<u64>> = stats
            .orders()
            .iter()
            .map(|o| vec![o.hypothesis, o.reference, o.matched])
            .collect();
        assert_eq!(
            ours_stats, theirs,
            "{what} chrF [hyp, ref, match] per order"
        );
    }
    assert_eq!(
        ours.to_string(),
        golden["format"].as_str().unwrap(),
        "{what}"
    );
    assert_eq!(
        ours.signature(),
        golden["signature"].as_str().unwrap(),
        "{what}"
    );
    assert_eq!(
        ours.format_with_signature(),
        golden["format_with_signature"].as_str().unwrap(),
        "{what}"
    );
}

fn chrf_stats(hyps: &[String], refs: &[String]) -> ChrfStats {
    let mut stats = ChrfStats::default();
    for (hyp, reference) in hyps.iter().zip(refs) {
        stats.add(hyp, reference);
    }
    stats
}

#[test]
fn golden_was_made_by_sacrebleu_2_6_0() {
    let golden = common::golden("fixtures");
    assert_eq!(golden["sacrebleu_version"], s2s_eval::SACREBLEU_VERSION);
    let names: Vec<&str> = golden["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bible-mild",
            "bible-heavy",
            "unicode",
            "empty-lines",
            "short",
            "no-match"
        ]
    );
}

#[test]
fn fixture_pairs_match_sacrebleu() {
    let golden = common::golden("fixtures");
    for pair in golden["pairs"].as_array().unwrap() {
        let name = pair["name"].as_str().unwrap();
        let hyps = common::read_lines("fixtures", pair["hyp"].as_str().unwrap());
        let refs = common::read_lines("fixtures", pair["ref"].as_str().unwrap());
        assert_eq!(hyps.len() as u64, pair["lines"].as_u64().unwrap(), "{name}");

        let bleu = corpus_bleu(&hyps, &refs).unwrap();
        check_bleu(&bleu, &pair["bleu"], name);
        // The CLI line of `sacrebleu REF -i HYP -m bleu chrf -w 2`, verbatim.
        assert_eq!(
            bleu.format_with_signature(),
            pair["bleu"]["cli"].as_str().unwrap()
        );

        let chrf = corpus_chrf(&hyps, &refs).unwrap();
        check_chrf(&chrf, &chrf_stats(&hyps, &refs), &pair["chrf"], name);
        assert_eq!(
            chrf.format_with_signature(),
            pair["chrf"]["cli"].as_str().unwrap()
        );
    }
}

#[test]
fn inline_sentence_cases_match_sacrebleu() {
    let golden = common::golden("fixtures");
    let cases = golden["sentence_cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let (mut all_hyps, mut all_refs) = (Vec::new(), Vec::new());
    for case in cases {
        let hyp = case["hyp"].as_str().unwrap().to_owned();
        let reference = case["ref"].as_str().unwrap().to_owned();
        let what = format!("{hyp:?} vs {reference:?}");
        let (hyps, refs) = (vec![hyp], vec![reference]);
        check_bleu(&corpus_bleu(&hyps, &refs).unwrap(), &case["bleu"], &what);
        let chrf = corpus_chrf(&hyps, &refs).unwrap();
        check_chrf(&chrf, &chrf_stats(&hyps, &refs), &case["chrf"], &what);
        all_hyps.extend(hyps);
        all_refs.extend(refs);
    }
    let corpus = &golden["sentence_cases_corpus"];
    check_bleu(
        &corpus_bleu(&all_hyps, &all_refs).unwrap(),
        &corpus["bleu"],
        "all cases",
    );
    let chrf = corpus_chrf(&all_hyps, &all_refs).unwrap();
    check_chrf(
        &chrf,
        &chrf_stats(&all_hyps, &all_refs),
        &corpus["chrf"],
        "all cases",
    );
}

#[test]
fn tokenizer_13a_matches_sacrebleu() {
    let golden = common::golden("fixtures");
    let cases = golden["tokenizer_13a"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        assert_eq!(
            tokenize_13a(input),
            case["output"].as_str().unwrap(),
            "input {input:?}"
        );
    }
}

#[test]
fn batch_by_batch_accumulation_equals_one_shot() {
    for (hyp_file, ref_file) in [
        ("bible-heavy.hyp.fr", "bible.ref.fr"),
        ("unicode.hyp.txt", "unicode.ref.txt"),
        ("empty-lines.hyp.txt", "empty-lines.ref.txt"),
    ] {
        let hyps = common::read_lines("fixtures", hyp_file);
        let refs = common::read_lines("fixtures", ref_file);

        // As training does: one stats object per validation batch, merged at the end,
        // plus a single running accumulator.
        let (mut bleu, mut chrf) = (BleuStats::default(), ChrfStats::default());
        let (mut running_bleu, mut running_chrf) = (BleuStats::default(), ChrfStats::default());
        for (hyp_batch, ref_batch) in hyps.chunks(7).zip(refs.chunks(7)) {
            let (mut batch_bleu, mut batch_chrf) = (BleuStats::default(), ChrfStats::default());
            for (hyp, reference) in hyp_batch.iter().zip(ref_batch) {
                batch_bleu.add(hyp, reference);
                batch_chrf.add(hyp, reference);
                running_bleu.add(hyp, reference);
                running_chrf.add(hyp, reference);
            }
            bleu.merge(&batch_bleu);
            chrf.merge(&batch_chrf);
        }
        assert_eq!(bleu, running_bleu, "{hyp_file}");
        assert_eq!(chrf, running_chrf, "{hyp_file}");
        assert_eq!(bleu.segments(), hyps.len() as u64);
        assert_eq!(
            bleu.score(),
            corpus_bleu(&hyps, &refs).unwrap(),
            "{hyp_file}"
        );
        assert_eq!(
            chrf.score(),
            corpus_chrf(&hyps, &refs).unwrap(),
            "{hyp_file}"
        );

        // Merging into an empty accumulator, or merging an empty one, changes nothing.
        let mut merged = BleuStats::default();
        merged.merge(&bleu);
        merged.merge(&BleuStats::default());
        assert_eq!(merged, bleu);
    }
}

#[test]
fn line_count_mismatch_is_an_error() {
    let hyps = ["a", "b", "c"];
    let refs = ["a", "b"];
    let expected = EvalError::LineCountMismatch {
        hypotheses: 3,
        references: 2,
    };
    assert_eq!(corpus_bleu(&hyps, &refs).unwrap_err(), expected);
    assert_eq!(corpus_chrf(&hyps, &refs).unwrap_err(), expected);
    assert_eq!(
        expected.to_string(),
        "got 3 hypothesis lines but 2 reference lines; each hypothesis needs exactly one reference"
    );
}

#[test]
fn empty_corpus_scores_zero_without_nan() {
    let none: [&str; 0] = [];
    let bleu = corpus_bleu(&none, &none).unwrap();
    let chrf = corpus_chrf(&none, &none).unwrap();
    assert_eq!(bleu.score, 0.0);
    assert_eq!(chrf.score, 0.0);
    assert!(bleu
        .precisions
        .iter()
        .chain([&bleu.bp])
        .all(|x| x.is_finite()));
    assert_eq!(bleu, BleuStats::default().score());
    assert_eq!(chrf, ChrfStats::default().score());
}

#[test]
fn identical_hypotheses_score_100() {
    let refs = common::read_lines("fixtures", "bible.ref.fr");
    let bleu = corpus_bleu(&refs, &refs).unwrap();
    let chrf = corpus_chrf(&refs, &refs).unwrap();
    assert_close(bleu.score, 100.0, "BLEU");
    assert_eq!(bleu.counts, bleu.totals);
    assert_eq!(bleu.bp, 1.0);
    assert_eq!(chrf.score, 100.0);
    assert!(bleu
        .to_string()
        .starts_with("BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000"));
    assert_eq!(chrf.to_string(), "chrF2 = 100.00");
}
