//! The measurements behind `s2s bench --config … --backends …`: training throughput and loss
//! over N optimizer steps, then greedy decoding throughput, on one backend. The CLI runs this
//! once per backend (each in its own process) and compares.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::TrainStep;
use s2s_generate::{DecodeStrategy, GenerationConfig};
use s2s_model::{BertConfig, SourceEncoder};
use serde::{Deserialize, Serialize};

use crate::experiment::ExperimentConfig;
use crate::run::{
    build_tokenizers, init_model, optimizer_and_schedule, seeded_subset, PreparedData,
};
use crate::{Seq2SeqLearner, TrainError};

/// How much to measure.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Untimed optimizer steps first (allocation, thread pools, kernel compilation, autotuning).
    pub warmup_steps: usize,
    /// Timed optimizer steps; the median step time is reported.
    pub steps: usize,
    /// Validation sources decoded greedily for the decoding throughput.
    pub decode_sentences: usize,
    /// Tokens generated per source (`</s>` suppressed until then, so every backend generates
    /// exactly the same number of tokens).
    pub decode_tokens: usize,
}

/// What one backend measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResult {
    pub parameters: usize,
    /// Median seconds of one optimizer step (forward, backward, clipping, Adam), synchronised.
    pub median_step_seconds: f64,
    /// Non-pad target tokens per second at the median step time (fairseq's "wps"): mean target
    /// tokens per timed batch / median step time.
    pub train_tokens_per_second: f64,
    /// Source + target non-pad tokens per second, the same way.
    pub train_all_tokens_per_second: f64,
    /// Training loss (label-smoothed, as the config trains) of every step, warm-up included.
    pub losses: Vec<f64>,
    /// Generated tokens per second of greedy decoding with the KV cache.
    pub decode_tokens_per_second: f64,
    /// Seconds of the timed decoding run.
    pub decode_seconds: f64,
    pub decode_tokens: usize,
}

/// Trains `warmup_steps + steps` optimizer steps from the seeded initialisation (the
/// pre-trained BERT loaded when the config has one) on the config's first batches, with its
/// optimizer, schedule and gradient clipping, then decodes `decode_sentences` validation sources.
///
/// The weights are drawn on the backend `R` (on `init_device`) and moved to `B` through a
/// record, so that backends compared with the same `R` start from identical weights whatever
/// their own random number generators do.
pub fn bench<B: AutodiffBackend, R: Backend>(
    config: &ExperimentConfig,
    data: &PreparedData,
    options: BenchOptions,
    device: &B::Device,
    init_device: &R::Device,
) -> Result<BenchResult, TrainError> {
    config.validate()?;
    if options.steps == 0 || options.decode_sentences == 0 || options.decode_tokens == 0 {
        return Err(TrainError::Config(
            "the benchmark needs at least one step, sentence and token".into(),
        ));
    }
    let tokenizers = build_tokenizers(config, data)?;
    let limits = config.data.length_limits();
    let (mut train_items, _) = s2s_data::tokenize_pairs(&data.train, &tokenizers, &limits)?;
    let (valid_items, _) = s2s_data::tokenize_pairs(&data.valid, &tokenizers, &limits)?;
    if let Some(n) = config.data.max_train_pairs {
        train_items = seeded_subset(train_items, n, config.training.seed);
    }
    if train_items.is_empty() || valid_items.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let t = &config.training;
    let bert = match &data.bert {
        Some(dir) if config.model.bert.is_some() => {
            Some(BertConfig::load_file(&dir.join("config.json"))?)
        }
        _ => None,
    };
    R::seed(init_device, t.seed);
    let vocab = tokenizers.vocab_sizes();
    let mut initial = init_model::<R>(&config.model, bert.as_ref(), vocab, init_device)?;
    if let (SourceEncoder::Bert(encoder), Some(dir)) = (&initial.source, &data.bert) {
        initial.source = SourceEncoder::Bert(encoder.clone().load(&dir.join("model.safetensors"))?);
    }
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder
        .record(initial.into_record(), ())
        .map_err(|e| TrainError::Backend(e.to_string()))?;
    let record = Recorder::<B>::load(&recorder, bytes, device)
        .map_err(|e| TrainError::Backend(e.to_string()))?;
    let mut model = init_model::<B>(&config.model, bert.as_ref(), vocab, device)?
        .load_record(record)
        .with_label_smoothing(t.label_smoothing);
    if t.freeze_encoder {
        model = model.freeze_encoder();
    }
    let parameters = model.num_params();

    let (mut optimizer, mut scheduler) = optimizer_and_schedule::<B>(config)?;

    let total = options.warmup_steps + options.steps;
    let loader = s2s_data::training_loader::<B>(
        train_items,
        t.batch_size,
        t.bucket_pool,
        t.seed,
        device.clone(),
    );
    let mut learner = Seq2SeqLearner { model, bleu: None };
    let mut losses = Vec::with_capacity(total);
    let mut times = Vec::with_capacity(options.steps);
    let (mut target_tokens, mut all_tokens) = (0usize, 0usize);
    let mut step = 0;
    // Several passes over the data if one epoch has fewer batches than asked for.
    while step < total {
        let mut empty = true;
        for batch in loader.iter() {
            if step == total {
                break;
            }
            empty = false;
            let count = |mask: &Tensor<B, 2, Bool>| -> usize {
                let n: i64 = mask.clone().bool_not().int().sum().into_scalar().elem();
                n as usize
            };
            let (targets, sources) = (count(&batch.target_pad_mask), count(&batch.source_pad_mask));
            B::sync(device).map_err(|e| TrainError::Backend(format!("{e:?}")))?;
            let started = Instant::now();
            let output = TrainStep::step(&learner, batch);
            let lr = LrScheduler::step(&mut scheduler);
            learner = optimizer.step(lr, learner, output.grads);
            let loss: f64 = output.item.loss.into_scalar().elem();
            B::sync(device).map_err(|e| TrainError::Backend(format!("{e:?}")))?;
            let seconds = started.elapsed().as_secs_f64();
            if step >= options.warmup_steps {
                times.push(seconds);
                target_tokens += targets;
                all_tokens += targets + sources;
            }
            tracing::info!(
                "step {}/{total}: loss {loss:.4}, {:.1} ms{}",
                step + 1,
                seconds * 1e3,
                if step < options.warmup_steps {
                    " (warm-up)"
                } else {
                    ""
                }
            );
            losses.push(loss);
            step += 1;
        }
        if empty {
            return Err(TrainError::NoTrainingData);
        }
    }
    let median = median(&mut times);
    let per_step = |tokens: usize| tokens as f64 / options.steps as f64 / median;

    // Greedy decoding with the trained weights on the inference backend.
    let model = learner.model.valid();
    let inner = device.clone();
    let sources: Vec<Vec<u32>> = valid_items
        .iter()
        .take(options.decode_sentences)
        .map(|pair| pair.source.clone())
        .collect();
    let generation = GenerationConfig {
        strategy: DecodeStrategy::Greedy,
        max_new_tokens: options.decode_tokens,
        min_new_tokens: options.decode_tokens,
        no_repeat_ngram_size: 0,
        batch_size: config.training.batch_size,
    };
    let warm: Vec<Vec<u32>> = sources.iter().take(2).cloned().collect();
    s2s_generate::generate(&model, &warm, &generation, &inner)?;
    let started = Instant::now();
    let hypotheses = s2s_generate::generate(&model, &sources, &generation, &inner)?;
    <B::InnerBackend as Backend>::sync(&inner)
        .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
    let decode_seconds = started.elapsed().as_secs_f64();
    let decode_tokens: usize = hypotheses
        .iter()
        .filter_map(|h| h.first())
        .map(|h| h.tokens.len())
        .sum();
    Ok(BenchResult {
        parameters,
        median_step_seconds: median,
        train_tokens_per_second: per_step(target_tokens),
        train_all_tokens_per_second: per_step(all_tokens),
        losses,
        decode_tokens_per_second: decode_tokens as f64 / decode_seconds,
        decode_seconds,
        decode_tokens,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
