//! `training.freeze_encoder`: a frozen encoder is bit-identical after optimizer steps while the
//! decoder changes; unfrozen, both change; a frozen model stays frozen when a checkpoint record
//! is loaded into it (resume).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::optim::{AdamConfig, Optimizer};
use burn::prelude::*;
use burn::train::TrainStep;
use burn_store::ModuleSnapshot;
use s2s_data::{Seq2SeqBatcher, TokenizedPair};
use s2s_model::{ModelConfig, Seq2Seq, StackConfig, VocabSizes};
use s2s_train::Seq2SeqLearner;

type B = Autodiff<NdArray<f32>>;

fn tiny() -> Seq2Seq<B> {
    let stack = StackConfig {
        d_model: 16,
        n_heads: 2,
        n_layers: 1,
        d_ff: 32,
    };
    let config = ModelConfig {
        encoder: stack.clone(),
        decoder: stack,
        max_positions: 16,
        dropout: 0.0,
        ..ModelConfig::default()
    };
    let vocab = VocabSizes {
        source: 20,
        target: 20,
    };
    B::seed(&Default::default(), 5);
    config.init::<B>(vocab, &Default::default()).unwrap()
}

/// Every parameter's values by path.
fn params(model: &Seq2Seq<B>) -> BTreeMap<String, Vec<f32>> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let values = t.to_data().unwrap().convert::<f32>().into_vec().unwrap();
            (t.full_path(), values)
        })
        .collect()
}

fn is_source_side(path: &str) -> bool {
    path.starts_with("encoder.") || path.starts_with("source_embedding.")
}

/// Number of tensors that changed: (source side, the rest).
fn changed(
    before: &BTreeMap<String, Vec<f32>>,
    after: &BTreeMap<String, Vec<f32>>,
) -> (usize, usize) {
    let (mut source, mut rest) = (0, 0);
    for (path, values) in before {
        if &after[path] != values {
            if is_source_side(path) {
                source += 1;
            } else {
                rest += 1;
            }
        }
    }
    (source, rest)
}

fn train_steps(model: Seq2Seq<B>, steps: usize) -> Seq2Seq<B> {
    let items = vec![
        TokenizedPair {
            source: vec![5, 6, 7],
            target: vec![8, 9],
        },
        TokenizedPair {
            source: vec![10, 11],
            target: vec![12, 13, 14],
        },
    ];
    let batch = Batcher::<B, _, _>::batch(&Seq2SeqBatcher, items, &Default::default());
    let mut learner = Seq2SeqLearner { model, bleu: None };
    let mut optimizer = AdamConfig::new().init();
    for _ in 0..steps {
        let out = TrainStep::step(&learner, batch.clone());
        learner = optimizer.step(1e-2, learner, out.grads);
    }
    learner.model
}

#[test]
fn a_frozen_encoder_does_not_move_while_the_decoder_learns() {
    let frozen = tiny().freeze_encoder();
    let before = params(&frozen);
    let source_tensors = before.keys().filter(|p| is_source_side(p)).count();
    assert!(source_tensors > 10, "{:?}", before.keys());
    let after = params(&train_steps(frozen, 3));
    let (source, rest) = changed(&before, &after);
    assert_eq!(source, 0, "frozen parameters changed");
    assert!(
        rest > 10,
        "the decoder did not train ({rest} tensors changed)"
    );

    let free = tiny();
    let before = params(&free);
    let after = params(&train_steps(free, 3));
    let (source, rest) = changed(&before, &after);
    assert_eq!(
        source, source_tensors,
        "unfrozen: every encoder tensor trains"
    );
    assert!(rest > 10);
}

#[test]
fn a_frozen_model_stays_frozen_after_loading_a_record() {
    let trained = train_steps(tiny(), 1);
    let record = trained.clone().into_record();
    let resumed = tiny().freeze_encoder().load_record(record);
    let before = params(&resumed);
    assert_eq!(before, params(&trained), "the record was loaded");
    let after = params(&train_steps(resumed, 2));
    let (source, rest) = changed(&before, &after);
    assert_eq!(source, 0);
    assert!(rest > 10);
}
