//! The measurements behind `s2s bench --config … --backends …`: training throughput and loss
//! over N optimizer steps, then greedy and beam-search decoding throughput, on one backend. The
//! CLI runs this once per backend (each in its own process) and compares; [`reference_input`]
//! hands the same token batches to the PyTorch reference (`benches/reference/`).

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::TrainStep;
use s2s_data::TokenizedPair;
use s2s_generate::{DecodeStrategy, GenerationConfig};
use s2s_model::{special, Activation, AdapterKind, PositionKind};
use serde::{Deserialize, Serialize};

use s2s_infer::{init_model, ExperimentConfig};

use crate::optim::optimizer_and_schedule;
use crate::prepare::{load_pretrained_encoder, prepare, Experiment, PreparedData, Start};
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
    /// Beam width of the beam-search measurement (1 skips it).
    pub num_beams: usize,
}

/// What one backend measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResult {
    /// Parameters of the benchmarked model.
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
    /// Tokens generated in the timed decoding run.
    pub decode_tokens: usize,
    /// Tokens per second of the best hypotheses of beam search (`num_beams` wide, same
    /// sentences and length); `None` when `num_beams` is 1.
    #[serde(default)]
    pub beam_tokens_per_second: Option<f64>,
    /// Seconds of the timed beam-search run.
    #[serde(default)]
    pub beam_seconds: Option<f64>,
    /// Beam width of the beam-search measurement.
    #[serde(default)]
    pub num_beams: usize,
}

/// Trains `warmup_steps + steps` optimizer steps from the seeded initialisation (the
/// pre-trained BERT loaded when the config has one) on the config's first batches, with its
/// optimizer, schedule and gradient clipping, then decodes `decode_sentences` validation sources.
///
/// The weights are drawn on the backend `R` (on `init_device`) and moved to `B` through a
/// record, so that backends compared with the same `R` start from identical weights whatever
/// their own random number generators do.
///
/// # Errors
/// An invalid config or options, data that cannot be prepared, a backend failure.
pub fn bench<B: AutodiffBackend, R: Backend>(
    config: &ExperimentConfig,
    data: &PreparedData,
    options: BenchOptions,
    device: &B::Device,
    init_device: &R::Device,
) -> Result<BenchResult, TrainError> {
    check_options(config, &options)?;
    // The tokenizers, BERT and pairs a new run of this config would train with.
    let Experiment {
        tokenizers,
        bert,
        train: train_items,
        valid: valid_items,
        ..
    } = prepare(config, data, Start::Fresh)?;
    let model = initial_model::<B, R>(
        config,
        data,
        &tokenizers,
        bert.as_ref(),
        device,
        init_device,
    )?;
    let parameters = model.num_params();

    let (learner, steps) = time_training::<B>(config, model, train_items, &options, device)?;
    let TrainSteps {
        losses,
        mut times,
        target_tokens,
        all_tokens,
    } = steps;
    let median = median(&mut times);
    let per_step = |tokens: usize| tokens as f64 / options.steps as f64 / median;

    // Greedy and beam decoding with the trained weights on the inference backend.
    let model = learner.model.valid();
    let inner = device.clone();
    let sources = decode_sources(&valid_items, &options);
    let greedy = time_decoding(
        &model,
        &sources,
        DecodeStrategy::Greedy,
        config,
        &options,
        &inner,
    )?;
    let beam = if options.num_beams > 1 {
        let strategy = DecodeStrategy::Beam {
            num_beams: options.num_beams,
            length_penalty: 1.0,
            early_stopping: false,
            num_return_sequences: 1,
        };
        Some(time_decoding(
            &model, &sources, strategy, config, &options, &inner,
        )?)
    } else {
        None
    };
    Ok(BenchResult {
        parameters,
        median_step_seconds: median,
        train_tokens_per_second: per_step(target_tokens),
        train_all_tokens_per_second: per_step(all_tokens),
        losses,
        decode_tokens_per_second: greedy.tokens as f64 / greedy.seconds,
        decode_seconds: greedy.seconds,
        decode_tokens: greedy.tokens,
        beam_tokens_per_second: beam.as_ref().map(|b| b.tokens as f64 / b.seconds),
        beam_seconds: beam.as_ref().map(|b| b.seconds),
        num_beams: options.num_beams,
    })
}

/// What the timed optimizer steps measured.
struct TrainSteps {
    /// Loss of every step, warm-up included.
    losses: Vec<f64>,
    /// Seconds of each timed (post-warm-up) step, synchronised.
    times: Vec<f64>,
    /// Non-pad target tokens, and source + target tokens, of the timed steps.
    target_tokens: usize,
    all_tokens: usize,
}

/// Steps the config's optimizer `warmup_steps + steps` times over the config's batches (several
/// passes if one epoch is shorter), timing each step after the warm-up.
fn time_training<B: AutodiffBackend>(
    config: &ExperimentConfig,
    model: s2s_model::Seq2Seq<B>,
    train_items: Vec<TokenizedPair>,
    options: &BenchOptions,
    device: &B::Device,
) -> Result<(Seq2SeqLearner<B>, TrainSteps), TrainError> {
    let total = options.warmup_steps + options.steps;
    let (mut optimizer, mut scheduler) = optimizer_and_schedule::<B>(config, total)?;
    let loader = bench_loader::<B>(config, train_items, device);
    let mut learner = Seq2SeqLearner {
        model,
        decoder: None,
    };
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
    Ok((
        learner,
        TrainSteps {
            losses,
            times,
            target_tokens,
            all_tokens,
        },
    ))
}

/// The seeded initial model of `config` (the pre-trained BERT loaded when it has one), drawn
/// on `R` and moved to `B` through a record so that every backend starts from the same weights.
fn initial_model<B: AutodiffBackend, R: Backend>(
    config: &ExperimentConfig,
    data: &PreparedData,
    tokenizers: &s2s_data::TokenizerPair,
    bert: Option<&s2s_model::BertConfig>,
    device: &B::Device,
    init_device: &R::Device,
) -> Result<s2s_model::Seq2Seq<B>, TrainError> {
    let t = &config.training;
    R::seed(init_device, t.seed);
    let vocab = tokenizers.vocab_sizes();
    let initial = init_model::<R>(&config.model, bert, vocab, init_device)?;
    let initial = load_pretrained_encoder(initial, data)?;
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder
        .record(initial.into_record(), ())
        .map_err(|e| TrainError::Backend(e.to_string()))?;
    let record = Recorder::<B>::load(&recorder, bytes, device)
        .map_err(|e| TrainError::Backend(e.to_string()))?;
    let mut model = init_model::<B>(&config.model, bert, vocab, device)?
        .load_record(record)
        .with_label_smoothing(t.label_smoothing);
    if t.freeze_encoder {
        model = model.freeze_encoder();
    }
    Ok(model)
}

/// The training loader of `config` (batch size, length buckets, seed): the batches every
/// backend and the PyTorch reference train on, in the same order.
fn bench_loader<B: Backend>(
    config: &ExperimentConfig,
    train_items: Vec<TokenizedPair>,
    device: &B::Device,
) -> std::sync::Arc<dyn burn::data::dataloader::DataLoader<B, s2s_model::Seq2SeqBatch<B>>> {
    let t = &config.training;
    s2s_data::training_loader::<B>(
        train_items,
        t.batch_size,
        t.bucket_pool,
        t.seed,
        device.clone(),
    )
}

fn check_options(config: &ExperimentConfig, options: &BenchOptions) -> Result<(), TrainError> {
    config.validate()?;
    if options.steps == 0
        || options.decode_sentences == 0
        || options.decode_tokens == 0
        || options.num_beams == 0
    {
        return Err(TrainError::Config(
            "the benchmark needs at least one step, sentence, token and beam".into(),
        ));
    }
    Ok(())
}

/// The first `decode_sentences` validation sources (as tokenised, specials included).
fn decode_sources(valid_items: &[TokenizedPair], options: &BenchOptions) -> Vec<Vec<u32>> {
    valid_items
        .iter()
        .take(options.decode_sentences)
        .map(|pair| pair.source.clone())
        .collect()
}

struct Timed {
    seconds: f64,
    tokens: usize,
}

/// Decodes `sources` once untimed (two sentences, to warm up) and once timed, with `</s>`
/// suppressed for `decode_tokens` tokens; counts the tokens of each sentence's best hypothesis.
fn time_decoding<B: Backend>(
    model: &s2s_model::Seq2Seq<B>,
    sources: &[Vec<u32>],
    strategy: DecodeStrategy,
    config: &ExperimentConfig,
    options: &BenchOptions,
    device: &B::Device,
) -> Result<Timed, TrainError> {
    let generation = GenerationConfig {
        strategy,
        max_new_tokens: options.decode_tokens,
        min_new_tokens: options.decode_tokens,
        no_repeat_ngram_size: 0,
        batch_size: config.training.batch_size,
    };
    let warm: Vec<Vec<u32>> = sources.iter().take(2).cloned().collect();
    s2s_generate::generate(model, &warm, &generation, device)?;
    let started = Instant::now();
    let hypotheses = s2s_generate::generate(model, sources, &generation, device)?;
    B::sync(device).map_err(|e| TrainError::Backend(format!("{e:?}")))?;
    let seconds = started.elapsed().as_secs_f64();
    let tokens = hypotheses
        .iter()
        .filter_map(|h| h.first())
        .map(|h| h.tokens.len())
        .sum();
    Ok(Timed { seconds, tokens })
}

/// What the PyTorch reference (`benches/reference/seq2seq_torch.py`) needs to train the same
/// architecture on the same token batches and decode the same sentences: written as JSON by
/// `s2s bench` and read by the script.
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceInput {
    /// `training.seed`.
    pub seed: u64,
    /// Intra-op threads the reference may use (the s2s backends use every logical CPU).
    pub threads: usize,
    /// Untimed steps before the timed ones.
    pub warmup_steps: usize,
    /// The architecture.
    pub model: ReferenceModel,
    /// The optimizer and schedule.
    pub training: ReferenceTraining,
    /// The special token ids.
    pub special: ReferenceSpecial,
    /// `warmup_steps + steps` batches, in the order the s2s backends train on them.
    pub batches: Vec<ReferenceBatch>,
    /// The decoding measurement.
    pub decode: ReferenceDecode,
}

/// The model's shape (a Transformer source encoder or the RNN family; BERT encoders have no
/// reference); each field is the `[model]` key of the same name (`*_encoder`/`*_decoder`:
/// `model.encoder.*`/`model.decoder.*`), the vocabularies are the trained tokenizers'.
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceModel {
    pub family: s2s_model::ModelFamily,
    /// `[model.rnn]` in effect, for `family = "rnn"`.
    pub rnn: Option<s2s_model::RnnConfig>,
    pub source_vocab: usize,
    pub target_vocab: usize,
    pub d_model_encoder: usize,
    pub n_heads_encoder: usize,
    pub n_layers_encoder: usize,
    pub d_ff_encoder: usize,
    pub d_model_decoder: usize,
    pub n_heads_decoder: usize,
    pub n_layers_decoder: usize,
    pub d_ff_decoder: usize,
    pub dropout: f64,
    pub attention_dropout: f64,
    pub activation: Activation,
    pub norm_first: bool,
    pub layer_norm_eps: f64,
    pub positions: PositionKind,
    pub max_positions: usize,
    pub tie_output_embedding: bool,
    /// `none` or `linear` (the reference has no MLP adapter).
    pub adapter: AdapterKind,
}

/// The optimizer and schedule: each field is the `[training]` key of the same name, except
/// `total_steps`, the steps the schedule spans (the bench's warm-up and timed steps, as the
/// s2s side's [`optimizer_and_schedule`]).
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceTraining {
    pub optimizer: s2s_infer::OptimizerKind,
    pub weight_decay: f64,
    pub lr_schedule: s2s_infer::LrSchedule,
    pub lr_factor: f64,
    pub lr: f64,
    pub min_lr: f64,
    pub total_steps: usize,
    pub warmup_steps: usize,
    pub label_smoothing: f64,
    /// `training.grad_clip.norm`.
    pub grad_clip_norm: f32,
    /// `training.grad_clip.kind`: `global` or `per_tensor`.
    pub grad_clip_kind: s2s_infer::ClipKind,
    pub adam_beta1: f32,
    pub adam_beta2: f32,
    pub adam_epsilon: f32,
}

/// The special token ids (`s2s_model::special`).
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceSpecial {
    pub pad: u32,
    pub bos: u32,
    pub eos: u32,
}

/// One padded batch: `[batch_size, src_len]` / `[batch_size, tgt_len]` row-major ids, and the
/// source pad mask (`true` = pad).
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceBatch {
    pub source: Vec<Vec<i64>>,
    pub source_pad: Vec<Vec<bool>>,
    pub target_input: Vec<Vec<i64>>,
    pub target_labels: Vec<Vec<i64>>,
}

/// What the reference decodes after training, as [`bench`] does.
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceDecode {
    /// Unpadded source ids, as s2s decodes them.
    pub sources: Vec<Vec<u32>>,
    /// Tokens generated per source (`</s>` suppressed until then).
    pub tokens: usize,
    /// Beam width of the beam-search measurement (1: none).
    pub num_beams: usize,
    /// Sources decoded together.
    pub batch_size: usize,
}

/// The batches and shapes of [`bench`] for the PyTorch reference: the same tokenizer, items,
/// loader (seed, buckets) and decoding sentences, so that the reference measures the same work.
/// The loader runs on `B` only to produce the ids.
///
/// # Errors
/// A BERT source encoder (the reference has no BERT), an invalid config or no data.
pub fn reference_input<B: Backend>(
    config: &ExperimentConfig,
    data: &PreparedData,
    options: BenchOptions,
    threads: usize,
    device: &B::Device,
) -> Result<ReferenceInput, TrainError> {
    check_options(config, &options)?;
    if config.model.bert.is_some() {
        return Err(TrainError::Config(
            "the PyTorch reference has no BERT encoder: benchmark a config without model.bert"
                .into(),
        ));
    }
    let m = &config.model;
    if !matches!(m.adapter.kind, AdapterKind::None | AdapterKind::Linear) {
        return Err(TrainError::Config(
            "the PyTorch reference has no MLP adapter: benchmark model.adapter.kind = \"none\" \
             or \"linear\""
                .into(),
        ));
    }
    let Experiment {
        tokenizers,
        train: train_items,
        valid: valid_items,
        ..
    } = prepare(config, data, Start::Fresh)?;
    let vocab = tokenizers.vocab_sizes();
    let t = &config.training;
    let total = options.warmup_steps + options.steps;
    let batches = reference_batches::<B>(config, train_items, total, device)?;
    Ok(ReferenceInput {
        seed: t.seed,
        threads,
        warmup_steps: options.warmup_steps,
        model: ReferenceModel {
            family: m.family,
            rnn: (m.family == s2s_model::ModelFamily::Rnn).then(|| m.rnn()),
            source_vocab: vocab.source,
            target_vocab: vocab.target,
            d_model_encoder: m.encoder.d_model,
            n_heads_encoder: m.encoder.n_heads,
            n_layers_encoder: m.encoder.n_layers,
            d_ff_encoder: m.encoder.d_ff,
            d_model_decoder: m.decoder.d_model,
            n_heads_decoder: m.decoder.n_heads,
            n_layers_decoder: m.decoder.n_layers,
            d_ff_decoder: m.decoder.d_ff,
            dropout: m.dropout,
            attention_dropout: m.attention_dropout,
            activation: m.activation,
            norm_first: m.norm_first,
            layer_norm_eps: m.layer_norm_eps,
            positions: m.positions,
            max_positions: m.max_positions,
            tie_output_embedding: m.tie_output_embedding,
            adapter: m.adapter.kind,
        },
        training: ReferenceTraining {
            optimizer: t.optimizer,
            weight_decay: t.weight_decay,
            lr_schedule: t.lr_schedule,
            lr_factor: t.lr_factor,
            lr: t.lr,
            min_lr: t.min_lr,
            total_steps: total,
            warmup_steps: t.warmup_steps,
            label_smoothing: t.label_smoothing,
            grad_clip_norm: t.grad_clip.norm,
            grad_clip_kind: t.grad_clip.kind,
            adam_beta1: t.adam_beta1,
            adam_beta2: t.adam_beta2,
            adam_epsilon: t.adam_epsilon,
        },
        special: ReferenceSpecial {
            pad: special::PAD,
            bos: special::BOS,
            eos: special::EOS,
        },
        batches,
        decode: ReferenceDecode {
            sources: decode_sources(&valid_items, &options),
            tokens: options.decode_tokens,
            num_beams: options.num_beams,
            batch_size: t.batch_size,
        },
    })
}

/// The first `total` batches of the config's training loader (several passes if one epoch is
/// shorter), as plain rows for the PyTorch reference.
fn reference_batches<B: Backend>(
    config: &ExperimentConfig,
    train_items: Vec<TokenizedPair>,
    total: usize,
    device: &B::Device,
) -> Result<Vec<ReferenceBatch>, TrainError> {
    let loader = bench_loader::<B>(config, train_items, device);
    let mut batches = Vec::with_capacity(total);
    while batches.len() < total {
        let before = batches.len();
        for batch in loader.iter().take(total - before) {
            batches.push(ReferenceBatch {
                source: rows(batch.source),
                source_pad: bool_rows(batch.source_pad_mask),
                target_input: rows(batch.target_input),
                target_labels: rows(batch.target_labels),
            });
        }
        if batches.len() == before {
            return Err(TrainError::NoTrainingData);
        }
    }
    Ok(batches)
}

fn rows<B: Backend>(t: Tensor<B, 2, Int>) -> Vec<Vec<i64>> {
    let [_, width] = t.dims();
    let ids: Vec<i64> = t
        .into_data()
        .convert::<i64>()
        .into_vec()
        .unwrap_or_default();
    ids.chunks(width.max(1)).map(<[i64]>::to_vec).collect()
}

fn bool_rows<B: Backend>(t: Tensor<B, 2, Bool>) -> Vec<Vec<bool>> {
    let [_, width] = t.dims();
    let flags: Vec<bool> = t.into_data().into_vec().unwrap_or_default();
    flags.chunks(width.max(1)).map(<[bool]>::to_vec).collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
