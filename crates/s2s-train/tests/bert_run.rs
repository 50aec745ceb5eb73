//! A bert2transformer run on the real all-MiniLM-L6-v2 (`#[ignore]`d, so reported as such,
//! unless asked for: scripts/test.sh asks when `s2s data prepare minilm-l6` has run, CI always):
//! frozen for the first epoch, the checkpoint's encoder is bit-identical to the pre-trained one;
//! after unfreezing it has moved; the run directory holds everything needed to translate.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn_store::ModuleSnapshot;
use s2s_infer::{RunDir, RunRecorder};
use s2s_model::{BertConfig, BertEncoder, Seq2Seq, SourceEncoder, TransformerSeq2Seq};
use s2s_train::{ExperimentConfig, PreparedData, Seq2SeqLearner, TrainOptions};

type B = Autodiff<NdArray<f32>>;
type Inner = NdArray<f32>;

/// The prepared all-MiniLM-L6-v2; the tests that use it are `#[ignore]`d unless asked for
/// (scripts/test.sh asks when it is prepared, CI always).
fn minilm_dir() -> PathBuf {
    let dir = s2s_data::data_dir().join(s2s_data::MINILM_L6);
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is not prepared: run `s2s data prepare minilm-l6`",
        dir.display()
    );
    dir
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn values<M: ModuleSnapshot<Inner>>(module: &M) -> BTreeMap<String, Vec<f32>> {
    module
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let v = t.to_data().unwrap().convert::<f32>().into_vec().unwrap();
            (t.full_path(), v)
        })
        .collect()
}

fn transformer(model: &Seq2Seq<Inner>) -> &TransformerSeq2Seq<Inner> {
    match model {
        Seq2Seq::Transformer(transformer) => transformer,
        Seq2Seq::Rnn(_) => panic!("the model is not a Transformer"),
    }
}

fn bert_of(model: &Seq2Seq<Inner>) -> &BertEncoder<Inner> {
    match &transformer(model).source {
        SourceEncoder::Bert(bert) => bert,
        SourceEncoder::Transformer(_) => panic!("the model has no BERT encoder"),
    }
}

/// The model of the checkpoint of `epoch`.
fn checkpoint(run_dir: &Path, config: &ExperimentConfig, epoch: usize) -> Seq2Seq<Inner> {
    let bert = BertConfig::load_file(&run_dir.join(RunDir::BERT_CONFIG)).unwrap();
    let tokenizers = s2s_data::TokenizerPair::load(run_dir).unwrap();
    let device = Default::default();
    let model = s2s_infer::init_model::<Inner>(
        &config.model,
        Some(&bert),
        tokenizers.vocab_sizes(),
        &device,
    )
    .unwrap();
    Seq2SeqLearner {
        model,
        decoder: None,
    }
    .load_file(
        run_dir.join(format!("checkpoint/model-{epoch}")),
        &RunRecorder::default(),
        &device,
    )
    .unwrap()
    .model
}

#[test]
#[ignore = "needs the prepared all-MiniLM-L6-v2: s2s data prepare minilm-l6 (scripts/test.sh then runs it)"]
fn frozen_then_fine_tuned_bert_run_translates() {
    let bert_dir = minilm_dir();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let config = ExperimentConfig::from_toml(&format!(
        r#"
[model]
bert = "{}"
max_positions = 64
dropout = 0.0
[model.adapter]
kind = "linear"
[model.decoder]
d_model = 32
n_heads = 2
n_layers = 1
d_ff = 64
[data]
train = "x"
valid = "x"
max_source_len = 64
max_target_len = 48
[data.tokenizer]
joint = false
vocab_size = 300
[training]
epochs = 2
batch_size = 4
warmup_steps = 10
seed = 3
samples = 2
metric_pairs = 4
freeze_encoder = true
unfreeze_encoder_after = 1
encoder_lr_scale = 0.5
"#,
        bert_dir.display()
    ))
    .unwrap();
    let pairs = s2s_data::read_pairs(&fixture("bible-en-fr-eight.tsv")).unwrap();
    let data = PreparedData {
        train: pairs.clone(),
        valid: pairs.clone(),
        test: Vec::new(),
        bert: Some(bert_dir.clone()),
    };
    let report = s2s_train::train::<B>(
        &config,
        &RunDir::new(&run_dir),
        data,
        Default::default(),
        TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(report.train_pairs, 8);
    for file in [
        RunDir::BERT_CONFIG,
        "tokenizer-source-bert.json",
        "tokenizer-target.json",
        "model.mpk",
    ] {
        assert!(run_dir.join(file).is_file(), "{file} is missing");
    }

    // Metric logs: the learner relaunched for epoch 2 writes epoch-2/, not over epoch-1/.
    let losses = |split: &str, epoch: usize| {
        std::fs::read_to_string(run_dir.join(format!("{split}/epoch-{epoch}/Loss.log")))
            .unwrap_or_else(|e| panic!("{split}/epoch-{epoch}/Loss.log: {e}"))
    };
    for split in ["train", "valid"] {
        assert_eq!(
            losses(split, 1).lines().count(),
            2,
            "{split}: 8 pairs, batches of 4"
        );
        assert_eq!(losses(split, 2).lines().count(), 2, "{split}");
        assert_ne!(losses(split, 1), losses(split, 2), "{split}");
    }

    let device = Default::default();
    let pretrained = BertConfig::load(&bert_dir)
        .unwrap()
        .init::<Inner>(&device)
        .load(&bert_dir.join("model.safetensors"))
        .unwrap();
    let pretrained = values(&pretrained);
    // 104 tensors in the file, less the position-id buffer and the pooler's weight and bias.
    assert_eq!(pretrained.len(), 101);
    let epoch1 = checkpoint(&run_dir, &config, 1);
    let epoch2 = checkpoint(&run_dir, &config, 2);
    // Epoch 1 was frozen: every encoder value is still the pre-trained one, bit for bit.
    assert!(
        values(bert_of(&epoch1)) == pretrained,
        "the frozen encoder moved"
    );
    // Epoch 2 fine-tuned it: (nearly) every tensor moved, and so did the decoder.
    let after = values(bert_of(&epoch2));
    let moved = pretrained.iter().filter(|(k, v)| &after[*k] != *v).count();
    assert!(moved > 90, "only {moved} of 101 encoder tensors moved");
    assert!(values(&transformer(&epoch1).decoder) != values(&transformer(&epoch2).decoder));

    // The run directory alone is enough to translate (no BERT cache needed).
    let (tokenizers, model) = RunDir::new(&run_dir)
        .load_model::<Inner>(&config, &device)
        .unwrap();
    assert!(
        values(bert_of(&model)) == after,
        "model.mpk is the last epoch"
    );
    let sources: Vec<String> = pairs.iter().take(2).map(|p| p.source.clone()).collect();
    let ids = s2s_infer::source_ids(&tokenizers.source, &sources[0], 64).unwrap();
    assert_eq!((ids[0], *ids.last().unwrap()), (101, 102), "[CLS] … [SEP]");
    let out = s2s_infer::translate(
        &model,
        &tokenizers,
        &sources,
        64,
        &config.generation_config().unwrap(),
        &device,
    )
    .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|t| t.len() == 1), "one translation per line");
}
