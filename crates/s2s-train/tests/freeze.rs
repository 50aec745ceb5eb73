//! `training.freeze_encoder`: a frozen encoder (Transformer or BERT) is bit-identical after
//! optimizer steps while the decoder changes; unfrozen, both change; a frozen model stays frozen
//! when a checkpoint record is loaded into it (resume). `training.encoder_lr_scale`: the encoder
//! moves by exactly the scaled Adam step while the rest moves as with plain Adam.
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
use s2s_model::{
    AdapterConfig, AdapterKind, BertConfig, ModelConfig, Seq2Seq, StackConfig, VocabSizes,
};
use s2s_train::{EncoderLrOptimizer, Seq2SeqLearner};

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
    let _guard = SEEDING.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(&Default::default(), 5);
    materialized(config.init::<B>(vocab, &Default::default()).unwrap())
}

/// The backend's RNG is global and tests run on parallel threads: seeding and drawing happen
/// under this lock so that each seeded model is drawn in one piece.
static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Burn draws parameters lazily on first use, in use order; this draws them all now, in module
/// order, so that every copy of a seeded model starts from the same values.
fn materialized(model: Seq2Seq<B>) -> Seq2Seq<B> {
    let record = model.clone().into_record();
    model.load_record(record)
}

/// A randomly initialised 1-layer BERT (width 16) with a linear adapter to a width-8 decoder.
fn tiny_bert() -> Seq2Seq<B> {
    let bert = BertConfig {
        vocab_size: 30,
        hidden_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 16,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
        hidden_dropout_prob: 0.0,
    };
    let config = ModelConfig {
        bert: Some("tiny".into()),
        decoder: StackConfig {
            d_model: 8,
            n_heads: 2,
            n_layers: 1,
            d_ff: 16,
        },
        adapter: AdapterConfig {
            kind: AdapterKind::Linear,
            d_hidden: None,
        },
        max_positions: 16,
        dropout: 0.0,
        ..ModelConfig::default()
    };
    let _guard = SEEDING.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(&Default::default(), 5);
    materialized(
        config
            .init_with_bert::<B>(&bert, 20, &Default::default())
            .unwrap(),
    )
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

/// Paths are `<family>.<field>…` (the model is an enum over the families).
fn is_source_side(path: &str) -> bool {
    path.starts_with("Transformer.source.")
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
    let mut learner = Seq2SeqLearner {
        model,
        decoder: None,
    };
    let mut optimizer = AdamConfig::new().init();
    for _ in 0..steps {
        let out = TrainStep::step(&learner, batch.clone());
        learner = optimizer.step(1e-2, learner, out.grads);
    }
    learner.model
}

#[test]
fn a_frozen_encoder_does_not_move_while_the_decoder_learns() {
    for tiny in [tiny as fn() -> Seq2Seq<B>, tiny_bert] {
        frozen_stays_and_free_trains(tiny);
    }
}

fn frozen_stays_and_free_trains(tiny: fn() -> Seq2Seq<B>) {
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

/// Largest absolute change of any value, on the source side and elsewhere.
fn max_change(
    before: &BTreeMap<String, Vec<f32>>,
    after: &BTreeMap<String, Vec<f32>>,
) -> (f32, f32) {
    let (mut source, mut rest) = (0f32, 0f32);
    for (path, values) in before {
        let delta = values
            .iter()
            .zip(&after[path])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        if is_source_side(path) {
            source = source.max(delta);
        } else {
            rest = rest.max(delta);
        }
    }
    (source, rest)
}

/// One Adam step at learning rate 1e-3 with the encoder at `scale` times it (`None`: plain
/// Adam). Adam's first step moves each value by `lr · g/(|g| + ε)`, so with a tiny ε the
/// largest change is the learning rate itself.
fn one_step(model: Seq2Seq<B>, scale: Option<f64>) -> Seq2Seq<B> {
    let items = vec![TokenizedPair {
        source: vec![5, 6, 7, 2],
        target: vec![8, 9],
    }];
    let batch = Batcher::<B, _, _>::batch(&Seq2SeqBatcher, items, &Default::default());
    let learner = Seq2SeqLearner {
        model,
        decoder: None,
    };
    let adam = AdamConfig::new().with_epsilon(1e-12);
    let grads = TrainStep::step(&learner, batch).grads;
    match scale {
        Some(scale) => {
            let mut optimizer = EncoderLrOptimizer::new(adam.init(), scale);
            optimizer.step(1e-3, learner, grads).model
        }
        None => adam.init().step(1e-3, learner, grads).model,
    }
}

#[test]
fn the_encoder_learns_at_its_own_rate() {
    for tiny in [tiny as fn() -> Seq2Seq<B>, tiny_bert] {
        let before = params(&tiny());
        let plain = params(&one_step(tiny(), None));
        assert_eq!(before, params(&tiny()), "the seeded model is reproducible");
        let unscaled = params(&one_step(tiny(), Some(1.0)));
        assert!(unscaled == plain, "scale 1 = plain Adam");

        let scaled = params(&one_step(tiny(), Some(0.1)));
        let (source, rest) = max_change(&before, &scaled);
        assert!((source - 1e-4).abs() < 1e-6, "encoder step {source}");
        assert!((rest - 1e-3).abs() < 1e-5, "decoder step {rest}");
        // Everything outside the encoder is updated exactly as by plain Adam.
        for (path, values) in &plain {
            if !is_source_side(path) {
                assert!(&scaled[path] == values, "{path} differs from plain Adam");
            }
        }
        let (source, _) = max_change(&before, &plain);
        assert!((source - 1e-3).abs() < 1e-5, "plain encoder step {source}");
    }
}
