//! Property tests over the experiment-config parser (proptest, bounded: 256 cases): a shipped
//! config with random keys set to random values, or cut at a random byte, is parsed and
//! validated into a config or an error, never a panic; an error is one line.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use s2s_train::ExperimentConfig;

fn shipped() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.sort();
    assert!(!texts.is_empty());
    texts
}

const KEYS: &[&str] = &[
    "model.dropout",
    "model.max_positions",
    "model.encoder.d_model",
    "model.encoder.n_heads",
    "model.encoder.n_layers",
    "model.decoder.d_ff",
    "model.adapter.kind",
    "model.bert",
    "data.max_source_len",
    "data.max_target_len",
    "data.max_train_pairs",
    "data.length_policy",
    "data.length_policy.source",
    "data.task",
    "data.tokenizer.vocab_size",
    "data.tokenizer.min_frequency",
    "training.epochs",
    "training.batch_size",
    "training.bucket_pool",
    "training.lr_factor",
    "training.warmup_steps",
    "training.adam_beta2",
    "training.grad_clip_norm",
    "training.grad_clip",
    "training.grad_clip.norm",
    "training.grad_clip.kind",
    "training.max_tokens",
    "training.optimizer",
    "training.weight_decay",
    "training.lr_schedule",
    "training.lr",
    "training.min_lr",
    "training.early_stopping",
    "training.early_stopping.metric",
    "training.early_stopping.patience",
    "training.early_stopping.min_delta",
    "training.average_last",
    "training.label_smoothing",
    "training.grad_accumulation",
    "training.keep_checkpoints",
    "training.checkpoint_every_steps",
    "training.unfreeze_encoder_after",
    "training.encoder_lr_scale",
    "training.backend",
    "training.valid_metrics",
    "training.metric_pairs",
    "generation.num_beams",
    "generation.temperature",
    "generation.top_p",
    "generation.do_sample",
    "generation.max_new_tokens",
    "no.such.key",
];

const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "3",
    "1e30",
    "-1e30",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "1.5",
    "18446744073709551615",
    "true",
    "\"\"",
    "\"x\"",
    "\"linear\"",
    "\"truncate\"",
    "[]",
    "{}",
    "\"ndarray\"",
    "\"summarization\"",
    "[\"rouge\", \"bleu\"]",
    "[\"rouge\", \"rouge\"]",
    "{ source = \"truncate\" }",
    "\"global\"",
    "\"per_tensor\"",
    "\"adamw\"",
    "\"cosine\"",
    "\"inverse_sqrt\"",
    "\"rouge_l\"",
    "{ norm = 1.0, kind = \"global\" }",
    "{ metric = \"bleu\", patience = 2 }",
    "{ metric = \"valid_loss\", patience = 1, min_delta = 0.01 }",
];

/// Sets `key` (dotted) to `value` by appending a table header and the key: TOML refuses a
/// table defined twice, which is one of the errors under test, so the section's own header is
/// used when it already exists.
fn set(text: &str, key: &str, value: &str) -> String {
    let (table, name) = key.rsplit_once('.').unwrap_or(("", key));
    let header = format!("[{table}]");
    if !table.is_empty() && text.lines().any(|l| l.trim() == header) {
        text.replacen(&header, &format!("{header}\n{name} = {value}"), 1)
    } else if table.is_empty() {
        format!("{name} = {value}\n{text}")
    } else {
        format!("{text}\n{header}\n{name} = {value}\n")
    }
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match ExperimentConfig::from_toml(text) {
        Ok(config) => reads_back_if_valid(&config)?,
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

/// A valid config is written into its run and read back on resume: the resolved form must
/// read back as the same config. An invalid one must say why.
fn reads_back_if_valid(config: &ExperimentConfig) -> Result<(), TestCaseError> {
    if let Err(e) = config.validate() {
        prop_assert!(!e.to_string().is_empty());
        return Ok(());
    }
    let _ = config.generation_config();
    let written = config
        .to_toml()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let read = ExperimentConfig::from_toml(&written)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
    prop_assert_eq!(&read, config);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_values_in_shipped_configs_never_panic(
        which in 0..64usize,
        edits in prop::collection::vec((0..KEYS.len(), 0..VALUES.len()), 1..5),
    ) {
        let configs = shipped();
        let mut text = configs[which % configs.len()].clone();
        for (k, v) in edits {
            text = set(&text, KEYS[k], VALUES[v]);
        }
        check(&text)?;
    }

    #[test]
    fn random_overrides_never_panic_and_read_back(
        which in 0..64usize,
        edits in prop::collection::vec((0..KEYS.len(), 0..VALUES.len()), 1..5),
    ) {
        let configs = shipped();
        let text = &configs[which % configs.len()];
        let overrides: Vec<String> = edits
            .iter()
            .map(|(k, v)| format!("{}={}", KEYS[*k], VALUES[*v]))
            .collect();
        match ExperimentConfig::from_toml_with(text, &overrides) {
            Ok(config) => reads_back_if_valid(&config)?,
            // The shipped file parses, so every error is an override's, and names it.
            Err(e) => prop_assert!(e.to_string().contains("--set "), "{}", e),
        }
    }

    #[test]
    fn cut_or_garbled_configs_never_panic(
        which in 0..64usize,
        cut in 0.0..1.0f64,
        junk in "\\PC{0,40}",
    ) {
        let configs = shipped();
        let text = &configs[which % configs.len()];
        let mut at = (text.len() as f64 * cut) as usize;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        check(&format!("{}{junk}", &text[..at]))?;
        check(&format!("\u{feff}{}", &text[..at]))?;
    }
}
