//! One training run, from typed config to a run directory with checkpoints, the final model and
//! a report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::lr_scheduler::noam::{NoamLrScheduler, NoamLrSchedulerConfig};
use burn::optim::{Adam, AdamConfig};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, PerplexityMetric};
use burn::train::{Interrupter, Learner, SupervisedTraining, TrainingStrategy};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use s2s_data::{
    EpochBatches, EpochLoader, SentencePair, Seq2SeqBatcher, TokenizedPair, TokenizerPair,
};
use s2s_model::{special, BertConfig, ModelConfig, Seq2Seq, SourceEncoder};
use serde::Serialize;

use crate::checkpoint::CheckpointRef;
use crate::experiment::{DataConfig, ExperimentConfig};
use crate::lock::RunLock;
use crate::logger::ResumedFileLogger;
use crate::optim::EncoderLrOptimizer;
use crate::strategy::{Outcome, RunStrategy};
use crate::validation::{BleuDecoder, BleuMetric, ValidBatcher, ValidItem};
use crate::{AtomicRecorder, PlainRenderer, Seq2SeqLearner, TrainError};

/// The recorder of every checkpoint and of `model.mpk`.
pub type RunRecorder = AtomicRecorder<NamedMpkFileRecorder<FullPrecisionSettings>>;

/// File name (without extension) of the final weights inside a run directory.
pub const MODEL_FILE: &str = "model";

/// Sentence pairs of the three splits, as read from disk.
#[derive(Clone, Debug, Default)]
pub struct PreparedData {
    pub train: Vec<SentencePair>,
    pub valid: Vec<SentencePair>,
    /// Held-out pairs for the sample translations (may be empty).
    pub test: Vec<SentencePair>,
    /// The pre-trained BERT directory when `model.bert` is set ([`resolve_encoder`]).
    pub bert: Option<PathBuf>,
}

/// The directory of the pre-trained BERT that `model.bert` names (a known name is fetched and
/// extracted under `data_dir` first if it is missing), or `None` without one.
pub fn resolve_encoder(
    model: &ModelConfig,
    data_dir: &Path,
) -> Result<Option<PathBuf>, TrainError> {
    match &model.bert {
        Some(name) => Ok(Some(s2s_data::resolve_bert(name, data_dir)?)),
        None => Ok(None),
    }
}

/// What an experiment reads before it trains: its pairs ([`load_data`]) and, when `model.bert`
/// is set, the pre-trained BERT directory ([`resolve_encoder`]); either is prepared under
/// `data_dir` first if it is missing.
pub fn load_experiment_data(
    config: &ExperimentConfig,
    data_dir: &Path,
) -> Result<PreparedData, TrainError> {
    let mut data = load_data(&config.data, data_dir)?;
    data.bert = resolve_encoder(&config.model, data_dir)?;
    Ok(data)
}

/// Reads the pairs a `[data]` section names, preparing a named corpus under `data_dir` first if
/// it is missing.
pub fn load_data(config: &DataConfig, data_dir: &Path) -> Result<PreparedData, TrainError> {
    let (train, valid, test) = match &config.corpus {
        Some(name) => {
            let dir = s2s_data::ensure_corpus(name, data_dir)?;
            (
                s2s_data::Split::Train.path(&dir),
                s2s_data::Split::Valid.path(&dir),
                Some(s2s_data::Split::Test.path(&dir)),
            )
        }
        None => match (&config.train, &config.valid) {
            (Some(t), Some(v)) => (t.clone(), v.clone(), config.test.clone()),
            _ => {
                return Err(TrainError::Config(
                    "set data.corpus or data.train and data.valid".into(),
                ))
            }
        },
    };
    Ok(PreparedData {
        train: s2s_data::read_pairs(&train)?,
        valid: s2s_data::read_pairs(&valid)?,
        test: match test {
            Some(path) => s2s_data::read_pairs(&path)?,
            None => Vec::new(),
        },
        bert: None,
    })
}

/// How a run is launched.
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest intact checkpoint in the run directory.
    pub resume: bool,
    /// Use burn's TUI dashboard (only when stdout is a terminal); plain log lines otherwise.
    pub tui: bool,
    /// Stops the run after the current batch, with a checkpoint ([`TrainError::Interrupted`]);
    /// the CLI triggers it on Ctrl-C/SIGTERM, the TUI on its quit.
    pub interrupter: Interrupter,
}

impl std::fmt::Debug for TrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("resume", &self.resume)
            .field("tui", &self.tui)
            .field("stopped", &self.interrupter.should_stop())
            .finish()
    }
}

/// A held-out sentence, its reference and the model's translation.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub source: String,
    pub reference: String,
    pub hypothesis: String,
}

/// What a finished run reports.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub run_dir: PathBuf,
    pub epochs: usize,
    pub train_pairs: usize,
    pub valid_pairs: usize,
    pub parameters: usize,
    /// Label-smoothed loss per validation token (the training objective).
    pub valid_loss: f64,
    /// Negative log-likelihood per validation token.
    pub valid_nll: f64,
    pub valid_perplexity: f64,
    /// Teacher-forced next-token accuracy on validation, in percent.
    pub valid_accuracy: f64,
    /// Validation pairs translated for BLEU/chrF (`training.bleu_pairs`, at most all).
    pub bleu_pairs: usize,
    /// Corpus BLEU of the final model on those pairs, decoded with `[generation]`.
    pub valid_bleu: Option<f64>,
    /// chrF2 of the same translations.
    pub valid_chrf: Option<f64>,
    /// How they were decoded (e.g. `greedy`, `beam 4`).
    pub decoding: String,
    pub seconds: f64,
    pub samples: Vec<Sample>,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TrainError + 'a {
    move |source| TrainError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// File of a run directory with the SHA-256 of the training and validation pairs it started
/// from; a resume on other data is refused.
pub const DATA_FINGERPRINT_FILE: &str = "data.sha256";

/// Trains the experiment into `run_dir` on `device` and returns the final report.
///
/// Takes the run directory's lock ([`RunLock`]) first. A resume checks, before it writes
/// anything, that the config differs from the run's only in keys that may change
/// ([`ExperimentConfig::resume_conflicts`]) and that the data is the same, then continues from
/// the newest intact checkpoint (damaged ones are named and passed over).
///
/// Writes, in order: `config.toml` (resolved, before the first step), the tokenizer(s),
/// `checkpoint/` every epoch (and every `training.checkpoint_every_steps` batches), `model.mpk`
/// and `report.md` at the end. All writes are atomic.
///
/// # Errors
/// Besides bad configs and data: [`TrainError::RunLocked`], [`TrainError::ResumeMismatch`],
/// [`TrainError::NoIntactCheckpoint`], [`TrainError::Interrupted`] (a checkpoint was written;
/// no final model) and [`TrainError::NonFinite`] (nothing written from the bad state).
pub fn train<B: AutodiffBackend>(
    config: &ExperimentConfig,
    run_dir: &Path,
    data: PreparedData,
    device: B::Device,
    options: TrainOptions,
) -> Result<TrainReport, TrainError> {
    let started = Instant::now();
    config.validate()?;
    let _lock = RunLock::acquire(run_dir)?;
    let has_checkpoints = !crate::checkpoint::list_checkpoints(run_dir).is_empty();
    match (options.resume, has_checkpoints) {
        (true, false) => return Err(TrainError::NothingToResume(run_dir.to_path_buf())),
        (false, true) => return Err(TrainError::RunExists(run_dir.to_path_buf())),
        _ => {}
    }
    let fingerprint = data_fingerprint(&data);
    if options.resume {
        check_resume(config, run_dir, &fingerprint)?;
    }
    if !options.resume {
        s2s_data::write_atomic(&run_dir.join("config.toml"), config.to_toml()?.as_bytes())?;
        s2s_data::write_atomic(
            &run_dir.join(DATA_FINGERPRINT_FILE),
            format!("{fingerprint}\n").as_bytes(),
        )?;
    }

    // A pre-trained BERT encoder: its config.json is copied into the run directory (with its
    // tokenizer, below) so the run can be resumed, evaluated and served without the cache.
    let bert = match (&config.model.bert, options.resume) {
        (None, _) => None,
        (Some(_), true) => Some(BertConfig::load_file(&run_dir.join(BERT_CONFIG_FILE))?),
        (Some(name), false) => {
            let dir = data.bert.as_deref().ok_or_else(|| {
                TrainError::Config(format!(
                    "model.bert = \"{name}\" was not resolved to a directory before training"
                ))
            })?;
            let text = std::fs::read(dir.join("config.json"))
                .map_err(io("read", &dir.join("config.json")))?;
            s2s_data::write_atomic(&run_dir.join(BERT_CONFIG_FILE), &text)?;
            Some(BertConfig::load_file(&run_dir.join(BERT_CONFIG_FILE))?)
        }
    };
    if let Some(bert) = &bert {
        if config.data.max_source_len > bert.max_position_embeddings {
            return Err(TrainError::Config(format!(
                "data.max_source_len ({}) exceeds the BERT's {} positions",
                config.data.max_source_len, bert.max_position_embeddings
            )));
        }
    }

    let tokenizers = if options.resume {
        TokenizerPair::load(run_dir)?
    } else {
        let tokenizers = build_tokenizers(config, &data)?;
        tokenizers.save(run_dir)?;
        s2s_data::write_atomic(
            &run_dir.join(TOKENIZER_FINGERPRINT_FILE),
            tokenizer_fingerprint(run_dir).as_bytes(),
        )?;
        tokenizers
    };
    let limits = config.data.length_limits();
    // tokenize_pairs logs what the limits did to each split (train first, then valid).
    let (mut train_items, _) = s2s_data::tokenize_pairs(&data.train, &tokenizers, &limits)?;
    let (mut valid_items, valid_stats) =
        s2s_data::tokenize_pairs(&data.valid, &tokenizers, &limits)?;
    if let Some(n) = config.data.max_train_pairs {
        train_items = seeded_subset(train_items, n, config.training.seed);
    }
    if let Some(n) = config.data.max_valid_pairs {
        valid_items.truncate(n);
    }
    if train_items.is_empty() || valid_items.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let train_pairs = train_items.len();
    let vocab = tokenizers.vocab_sizes();
    let generation = config.generation_config()?;
    // The first `bleu_pairs` validation pairs are also translated, against their raw references.
    let bleu_rows: Vec<(Vec<u32>, String)> = valid_items
        .iter()
        .zip(&valid_stats.kept_indices)
        .take(config.training.bleu_pairs)
        .map(|(item, &index)| (item.source.clone(), data.valid[index].target.clone()))
        .collect();
    let valid_dataset: Vec<ValidItem> = valid_items
        .iter()
        .enumerate()
        .map(|(i, pair)| ValidItem {
            pair: pair.clone(),
            reference: bleu_rows.get(i).map(|(_, r)| r.clone()),
        })
        .collect();
    let bleu_decoder = (!bleu_rows.is_empty()).then(|| BleuDecoder {
        tokenizer: std::sync::Arc::new(tokenizers.target.clone()),
        config: generation.clone(),
    });

    let t = &config.training;
    let batches = EpochBatches::new(train_items, t.batch_size, t.bucket_pool, t.seed);
    let per_epoch = batches.batches_per_epoch();
    let recorder = RunRecorder::default();
    let mut resume = if !options.resume {
        None
    } else {
        // A checkpoint's weights must load into the model this run describes (a file copied
        // in from another run has a valid checksum but other shapes).
        let fresh = Seq2SeqLearner {
            model: init_model::<B::InnerBackend>(&config.model, bert.as_ref(), vocab, &device)?,
            bleu: None,
        };
        match crate::checkpoint::newest_intact(run_dir, per_epoch, |checkpoint| {
            let file = checkpoint.files(run_dir).swap_remove(0);
            crate::checkpoint::without_panic(|| {
                fresh
                    .clone()
                    .load_file(file.with_extension(""), &recorder, &device)
            })
            .and_then(|loaded| loaded.map(|_| ()).map_err(|e| e.to_string()))
            .map_err(|why| {
                format!(
                    "{} does not fit the model of this run's config ({why})",
                    file.display()
                )
            })
        }) {
            Ok(Some((checkpoint, skipped))) => {
                for why in skipped {
                    tracing::warn!("passing over a damaged checkpoint: {why}");
                }
                let (epoch, done) = checkpoint.next_position(per_epoch);
                let trained = checkpoint.epochs_done(per_epoch);
                if t.epochs < trained {
                    return Err(TrainError::Config(format!(
                        "training.epochs = {} is below the {trained} epochs {} has trained; \
                         raise it to train longer (a finished run is not shortened)",
                        t.epochs,
                        run_dir.display()
                    )));
                }
                tracing::info!(
                    "resuming from {checkpoint}: epoch {epoch}, {done} of its {per_epoch} \
                     batches done"
                );
                // The keys that may change (epochs, …) take effect; nothing is written before.
                s2s_data::write_atomic(&run_dir.join("config.toml"), config.to_toml()?.as_bytes())?;
                crate::checkpoint::remove_orphan_checksums(run_dir);
                Some(checkpoint)
            }
            Ok(None) => return Err(TrainError::NothingToResume(run_dir.to_path_buf())),
            Err(damaged) => {
                return Err(TrainError::NoIntactCheckpoint {
                    run_dir: run_dir.to_path_buf(),
                    why: damaged.join("; "),
                })
            }
        }
    };
    // The encoder is frozen for the whole run, for the first `unfreeze_encoder_after` epochs
    // (then the run continues from that epoch's checkpoint with the encoder trainable), or never.
    let phases: Vec<(usize, bool)> = match (t.freeze_encoder, t.unfreeze_encoder_after) {
        (true, Some(n)) => vec![(n, true), (t.epochs, false)],
        (frozen, _) => vec![(t.epochs, frozen)],
    };
    let mut start = resume.map(|c| c.epochs_done(per_epoch)).unwrap_or(0);
    let mut parameters = 0;
    let mut trained = None;
    for (end, frozen) in phases {
        if end <= start && end < t.epochs {
            continue;
        }
        B::seed(&device, t.seed);
        let mut model = init_model::<B>(&config.model, bert.as_ref(), vocab, &device)?
            .with_label_smoothing(t.label_smoothing);
        if resume.is_none() {
            if let (SourceEncoder::Bert(encoder), Some(dir)) = (&model.source, &data.bert) {
                let path = dir.join("model.safetensors");
                tracing::info!("loading the pre-trained encoder from {}", path.display());
                model.source = SourceEncoder::Bert(encoder.clone().load(&path)?);
            }
        }
        if frozen {
            tracing::info!(
                "freezing the source encoder ({} parameters) for epochs {}..={end}",
                model.source.num_params(),
                start + 1
            );
            model = model.freeze_encoder();
        }
        parameters = model.num_params();
        tracing::info!(
            "model: {parameters} parameters, vocab {vocab:?}, {} train / {} valid pairs",
            batches.num_items(),
            valid_items.len()
        );
        let (model, outcome) = launch::<B>(
            config,
            run_dir,
            model,
            Phase { start, end },
            resume,
            batches.clone(),
            valid_dataset.clone(),
            bleu_decoder.clone(),
            &recorder,
            &device,
            &options,
        )?;
        match outcome {
            Outcome::Finished => {}
            Outcome::Stopped {
                epoch,
                step,
                reason,
            } => {
                crate::checkpoint::remove_orphan_checksums(run_dir);
                return Err(TrainError::Interrupted {
                    run_dir: run_dir.to_path_buf(),
                    reason,
                    epoch,
                    step,
                });
            }
            Outcome::NonFiniteLoss { epoch, step, loss } => {
                return Err(TrainError::NonFinite {
                    what: format!("the loss of batch {step} (epoch {epoch}) is {loss}"),
                    run_dir: run_dir.to_path_buf(),
                });
            }
            Outcome::NonFiniteWeights { epoch, step } => {
                return Err(TrainError::NonFinite {
                    what: format!("the weights after batch {step} (epoch {epoch}) are not finite"),
                    run_dir: run_dir.to_path_buf(),
                });
            }
        }
        trained = Some(model);
        start = end;
        resume = Some(CheckpointRef::Epoch(end));
    }
    // Every epoch is done: the mid-epoch checkpoints (of this process or an earlier one) are
    // older than the last epoch's and only take room.
    for checkpoint in crate::checkpoint::list_checkpoints(run_dir) {
        if matches!(checkpoint, CheckpointRef::Step(_)) {
            crate::checkpoint::remove_checkpoint(run_dir, checkpoint);
        }
    }
    crate::checkpoint::remove_orphan_checksums(run_dir);
    let Some(model) = trained else {
        return Err(TrainError::NothingToResume(run_dir.to_path_buf()));
    };
    model
        .clone()
        .save_file(run_dir.join(MODEL_FILE), &recorder)
        .map_err(|e| TrainError::Weights {
            path: run_dir.join("model.mpk"),
            message: e.to_string(),
        })?;

    let inner_device = device.clone();
    let (valid_loss, valid_nll, valid_accuracy) =
        evaluate::<B::InnerBackend>(&model, &valid_items, t.batch_size, &inner_device);
    let held_out = if data.test.is_empty() {
        &data.valid
    } else {
        &data.test
    };
    let picks: Vec<&SentencePair> = held_out.iter().take(t.samples).collect();
    let sources: Vec<String> = picks.iter().map(|p| p.source.clone()).collect();
    let translations = crate::translate(
        &model,
        &tokenizers,
        &sources,
        config.data.max_source_len,
        &generation,
        &inner_device,
    )?;
    let hypotheses = crate::best_texts(&translations);
    let (valid_bleu, valid_chrf) = if bleu_rows.is_empty() {
        (None, None)
    } else {
        let (bleu, chrf) = score_rows(&model, &tokenizers, &bleu_rows, &generation, &inner_device)?;
        tracing::info!(
            "validation BLEU {:.2}, chrF2 {:.2} on {} pairs ({})",
            bleu.score,
            chrf.score,
            bleu_rows.len(),
            describe(&generation)
        );
        (Some(bleu.score), Some(chrf.score))
    };
    let samples = picks
        .into_iter()
        .zip(hypotheses)
        .map(|(p, hypothesis)| Sample {
            source: p.source.clone(),
            reference: p.target.clone(),
            hypothesis,
        })
        .collect();
    let report = TrainReport {
        run_dir: run_dir.to_path_buf(),
        epochs: t.epochs,
        train_pairs,
        valid_pairs: valid_items.len(),
        parameters,
        valid_loss,
        valid_nll,
        valid_perplexity: valid_nll.exp(),
        valid_accuracy,
        bleu_pairs: bleu_rows.len(),
        valid_bleu,
        valid_chrf,
        decoding: describe(&generation),
        seconds: started.elapsed().as_secs_f64(),
        samples,
    };
    s2s_data::write_atomic(&run_dir.join("report.md"), report.to_markdown().as_bytes())?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    s2s_data::write_atomic(&run_dir.join("report.json"), json.as_bytes())?;
    Ok(report)
}

/// The tokenizers a fresh run trains: the BERT's WordPiece on the source side and a target-only
/// BPE when `data.bert` is resolved, else a BPE (joint or per side) on the training pairs.
pub fn build_tokenizers(
    config: &ExperimentConfig,
    data: &PreparedData,
) -> Result<TokenizerPair, TrainError> {
    let t = &config.data.tokenizer;
    Ok(match (&data.bert, &config.model.bert) {
        (Some(dir), Some(_)) => {
            tracing::info!(
                "source: the BERT's WordPiece tokenizer; training a byte-level BPE \
                 (vocabulary {}) on the {} targets",
                t.vocab_size,
                data.train.len()
            );
            TokenizerPair::train_target(
                s2s_data::BertTokenizer::load(dir)?,
                &data.train,
                t.vocab_size,
                t.min_frequency,
            )?
        }
        _ => {
            tracing::info!(
                "training a byte-level BPE tokenizer (vocabulary {}) on {} pairs",
                t.vocab_size,
                data.train.len()
            );
            TokenizerPair::train(&data.train, t.joint, t.vocab_size, t.min_frequency)?
        }
    })
}

/// File name of the BERT's `config.json` copied into a run directory.
pub const BERT_CONFIG_FILE: &str = "bert-config.json";

/// Builds the model a config describes: a Transformer encoder, or a BERT of `bert`'s shape
/// (randomly initialised; the caller loads the pre-trained or checkpointed weights).
pub fn init_model<B: Backend>(
    config: &ModelConfig,
    bert: Option<&BertConfig>,
    vocab: s2s_model::VocabSizes,
    device: &B::Device,
) -> Result<Seq2Seq<B>, TrainError> {
    match bert {
        Some(bert) => {
            if vocab.source > bert.vocab_size {
                return Err(TrainError::Config(format!(
                    "the source tokenizer has {} ids but the BERT embeds only {}",
                    vocab.source, bert.vocab_size
                )));
            }
            Ok(config.init_with_bert(bert, vocab.target, device)?)
        }
        None => Ok(config.init(vocab, device)?),
    }
}

/// Epochs `start + 1 ..= end` of one launch of burn-train's learner.
#[derive(Clone, Copy, Debug)]
struct Phase {
    start: usize,
    end: usize,
}

/// Runs the training loop ([`RunStrategy`]) over one phase, from `resume` (already verified)
/// or from fresh weights. Returns the trained model and how the phase ended.
#[allow(clippy::too_many_arguments)]
fn launch<B: AutodiffBackend>(
    config: &ExperimentConfig,
    run_dir: &Path,
    model: Seq2Seq<B>,
    phase: Phase,
    resume: Option<CheckpointRef>,
    batches: EpochBatches,
    valid_dataset: Vec<ValidItem>,
    bleu_decoder: Option<BleuDecoder>,
    recorder: &RunRecorder,
    device: &B::Device,
    options: &TrainOptions,
) -> Result<(Seq2Seq<B::InnerBackend>, Outcome), TrainError> {
    let t = &config.training;
    let (optimizer, scheduler) = optimizer_and_schedule::<B>(config)?;

    // Only its size is read by burn-train; the loop draws the batches from `batches` itself.
    let train_loader = Arc::new(EpochLoader::<B>::new(batches.clone(), 1, device.clone()));
    let outcome = Arc::new(Mutex::new(Outcome::Finished));
    let strategy = RunStrategy::<B> {
        device: device.clone(),
        batches,
        seed: t.seed,
        checkpoint_every_steps: t.checkpoint_every_steps,
        grad_accumulation: t.grad_accumulation,
        resume,
        run_dir: run_dir.to_path_buf(),
        recorder: recorder.clone(),
        outcome: outcome.clone(),
    };
    let valid_loader = DataLoaderBuilder::new(ValidBatcher)
        .batch_size(t.batch_size)
        .set_device(device.clone())
        .build(InMemDataset::new(valid_dataset));

    let mut training = SupervisedTraining::new(run_dir, train_loader, valid_loader)
        .with_metric_logger(ResumedFileLogger::new(run_dir, phase.start))
        .metrics((
            LossMetric::new(),
            AccuracyMetric::new().with_pad_token(special::PAD as usize),
            PerplexityMetric::new().with_pad_token(special::PAD as usize),
        ))
        .metric_train_numeric(LearningRateMetric::new())
        .with_file_checkpointer(recorder.clone())
        .with_checkpointing_strategy(
            ComposedCheckpointingStrategy::builder()
                .add(KeepLastNCheckpoints::new(t.keep_checkpoints))
                .add(MetricCheckpointingStrategy::new(
                    &LossMetric::<B>::new(),
                    Aggregate::Mean,
                    Direction::Lowest,
                    Split::Valid,
                ))
                .build(),
        )
        .with_application_logger(None)
        .with_interrupter(options.interrupter.clone())
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)))
        .num_epochs(phase.end)
        .summary();
    if bleu_decoder.is_some() {
        training = training.metric_valid_numeric(BleuMetric::new());
    }
    if !options.tui {
        training = training.renderer(PlainRenderer::new(std::time::Duration::from_secs(10)));
    }
    let learner = Learner::new(
        Seq2SeqLearner {
            model,
            bleu: bleu_decoder,
        },
        optimizer,
        scheduler,
    );
    let result = training.launch(learner);
    let outcome = outcome
        .lock()
        .map(|o| o.clone())
        .map_err(|_| TrainError::Backend("the training loop panicked".into()))?;
    Ok((result.model.model, outcome))
}

/// File of a run directory with the SHA-256 of each of its tokenizer files (and the BERT's
/// config): a resume refuses tokenizers edited since the run started.
pub const TOKENIZER_FINGERPRINT_FILE: &str = "tokenizer.sha256";

/// `<sha256>  <name>` lines, one per `tokenizer*.json` and `bert-config.json` of `run_dir`, sorted.
fn tokenizer_fingerprint(run_dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| (n.starts_with("tokenizer") && n.ends_with(".json")) || n == BERT_CONFIG_FILE)
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let sum = s2s_data::sha256_file(&run_dir.join(&name)).unwrap_or_default();
            format!("{sum}  {name}\n")
        })
        .collect()
}

/// SHA-256 over the training and validation pairs, in order: each split's name, then its
/// pairs as `source\ttarget\n`.
fn data_fingerprint(data: &PreparedData) -> String {
    let mut text = String::new();
    for (split, pairs) in [("train", &data.train), ("valid", &data.valid)] {
        text.push_str(split);
        for pair in pairs {
            text.push_str(&pair.source);
            text.push('\t');
            text.push_str(&pair.target);
            text.push('\n');
        }
    }
    s2s_data::sha256_bytes(text.as_bytes())
}

/// Refuses a resume whose config changes keys that may not change, or whose data is not the
/// data the run started with; reads only.
fn check_resume(
    config: &ExperimentConfig,
    run_dir: &Path,
    fingerprint: &str,
) -> Result<(), TrainError> {
    let path = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
    let run = ExperimentConfig::from_toml(&text).map_err(|e| {
        TrainError::Config(format!(
            "{} (the run's own config) cannot be read back: {e}",
            path.display()
        ))
    })?;
    let keys = config.resume_conflicts(&run);
    if !keys.is_empty() {
        return Err(TrainError::ResumeMismatch {
            run_dir: run_dir.to_path_buf(),
            keys: keys.join(", "),
        });
    }
    if let Ok(saved) = std::fs::read_to_string(run_dir.join(TOKENIZER_FINGERPRINT_FILE)) {
        let now = tokenizer_fingerprint(run_dir);
        if saved != now {
            let changed: Vec<&str> = now
                .lines()
                .chain(saved.lines())
                .filter(|l| !(saved.lines().any(|s| s == *l) && now.lines().any(|n| n == *l)))
                .filter_map(|l| l.split_whitespace().nth(1))
                .collect();
            let mut changed = changed;
            changed.sort_unstable();
            changed.dedup();
            return Err(TrainError::ResumeMismatch {
                run_dir: run_dir.to_path_buf(),
                keys: format!(
                    "the run's tokenizer files ({} changed since it started)",
                    changed.join(", ")
                ),
            });
        }
    }
    match std::fs::read_to_string(run_dir.join(DATA_FINGERPRINT_FILE)) {
        Ok(saved) if saved.trim() != fingerprint => Err(TrainError::ResumeMismatch {
            run_dir: run_dir.to_path_buf(),
            keys: "the training/validation pairs (their contents changed)".into(),
        }),
        Ok(_) => Ok(()),
        Err(_) => {
            tracing::warn!(
                "{} has no {DATA_FINGERPRINT_FILE}; cannot check that the data is unchanged",
                run_dir.display()
            );
            Ok(())
        }
    }
}

/// A short name of a decoding strategy for reports (`greedy`, `beam 4 (α 0.6)`, `sampling …`).
pub fn describe(config: &s2s_generate::GenerationConfig) -> String {
    use s2s_generate::DecodeStrategy;
    match &config.strategy {
        DecodeStrategy::Greedy => "greedy".into(),
        DecodeStrategy::Beam {
            num_beams,
            length_penalty,
            ..
        } => format!("beam {num_beams}, length penalty {length_penalty}"),
        DecodeStrategy::Sample {
            temperature,
            top_k,
            top_p,
            seed,
            ..
        } => format!("sampling t={temperature} top-k {top_k} top-p {top_p} seed {seed}"),
    }
}

/// Translates `rows` (model input ids and raw reference) and scores the best translations
/// with corpus BLEU and chrF.
pub fn score_rows<B: Backend>(
    model: &Seq2Seq<B>,
    tokenizers: &TokenizerPair,
    rows: &[(Vec<u32>, String)],
    generation: &s2s_generate::GenerationConfig,
    device: &B::Device,
) -> Result<(s2s_eval::BleuScore, s2s_eval::ChrfScore), TrainError> {
    let sources: Vec<Vec<u32>> = rows.iter().map(|(s, _)| s.clone()).collect();
    let generated = s2s_generate::generate(model, &sources, generation, device)?;
    let mut bleu = s2s_eval::BleuStats::default();
    let mut chrf = s2s_eval::ChrfStats::default();
    for (hyps, (_, reference)) in generated.into_iter().zip(rows) {
        let text = match hyps.first() {
            Some(h) => tokenizers.target.decode(&h.tokens)?,
            None => String::new(),
        };
        bleu.add(&text, reference);
        chrf.add(&text, reference);
    }
    Ok((bleu.score(), chrf.score()))
}

/// `n` items drawn without replacement with a seeded RNG, kept in corpus order. A corpus sorted
/// by book would otherwise give a prefix that misses whole parts of its vocabulary.
pub fn seeded_subset<T>(items: Vec<T>, n: usize, seed: u64) -> Vec<T> {
    if n >= items.len() {
        return items;
    }
    let mut keep = vec![false; items.len()];
    let mut indices: Vec<usize> = (0..items.len()).collect();
    indices.shuffle(&mut StdRng::seed_from_u64(seed));
    for &i in &indices[..n] {
        keep[i] = true;
    }
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, k)| k.then_some(item))
        .collect()
}

/// Adam behind the encoder learning-rate scale: what every experiment trains with.
pub(crate) type TrainingOptimizer<B> =
    EncoderLrOptimizer<OptimizerAdaptor<Adam, Seq2SeqLearner<B>, B>>;

/// The optimizer and learning-rate schedule an experiment trains with: Adam with the config's
/// betas, ε and gradient clipping, the encoder's learning-rate scale, Noam warm-up on the
/// decoder's width. `s2s bench` steps the same pair, so its numbers are the training's.
pub(crate) fn optimizer_and_schedule<B: AutodiffBackend>(
    config: &ExperimentConfig,
) -> Result<(TrainingOptimizer<B>, NoamLrScheduler), TrainError> {
    let t = &config.training;
    let adam = AdamConfig::new()
        .with_beta_1(t.adam_beta1)
        .with_beta_2(t.adam_beta2)
        .with_epsilon(t.adam_epsilon)
        .with_grad_clipping(
            (t.grad_clip_norm > 0.0).then_some(GradientClippingConfig::Norm(t.grad_clip_norm)),
        )
        .init();
    let scheduler = NoamLrSchedulerConfig::new(t.lr_factor)
        .with_warmup_steps(t.warmup_steps)
        .with_model_size(config.model.decoder.d_model)
        .init()
        .map_err(TrainError::Schedule)?;
    Ok((EncoderLrOptimizer::new(adam, t.encoder_lr_scale), scheduler))
}

/// Token-weighted validation loss, NLL and accuracy (%) of `model` over `items`.
pub fn evaluate<B: Backend>(
    model: &Seq2Seq<B>,
    items: &[TokenizedPair],
    batch_size: usize,
    device: &B::Device,
) -> (f64, f64, f64) {
    let (mut loss, mut nll, mut correct, mut tokens) = (0.0, 0.0, 0.0, 0.0);
    for chunk in items.chunks(batch_size.max(1)) {
        let batch = Batcher::<B, _, _>::batch(&Seq2SeqBatcher, chunk.to_vec(), device);
        let out = model.forward_loss(batch);
        let keep = out.labels.clone().not_equal_elem(special::PAD as i64);
        let n = keep.clone().int().sum().into_scalar().elem::<f64>();
        let hits = out
            .logits
            .argmax(2)
            .squeeze_dim::<2>(2)
            .equal(out.labels)
            .bool_and(keep);
        correct += hits.int().sum().into_scalar().elem::<f64>();
        loss += out.loss.into_scalar().elem::<f64>() * n;
        nll += out.nll.into_scalar().elem::<f64>() * n;
        tokens += n;
    }
    let tokens = tokens.max(1.0);
    (loss / tokens, nll / tokens, 100.0 * correct / tokens)
}

/// Loads the tokenizer(s) and `model.mpk` of a finished run.
pub fn load_model<B: Backend>(
    run_dir: &Path,
    model_config: &ModelConfig,
    device: &B::Device,
) -> Result<(TokenizerPair, Seq2Seq<B>), TrainError> {
    let weights = run_dir.join("model.mpk");
    if !weights.is_file() {
        return Err(TrainError::NoModel {
            path: run_dir.to_path_buf(),
        });
    }
    let tokenizers = TokenizerPair::load(run_dir)?;
    let vocab = tokenizers.vocab_sizes();
    let bert = match model_config.bert {
        Some(_) => Some(BertConfig::load_file(&run_dir.join(BERT_CONFIG_FILE))?),
        None => None,
    };
    let model = init_model::<B>(model_config, bert.as_ref(), vocab, device)?;
    let model = crate::checkpoint::without_panic(|| {
        model.load_file(run_dir.join(MODEL_FILE), &RunRecorder::default(), device)
    })
    .map_err(|why| TrainError::Weights {
        path: weights.clone(),
        message: format!(
            "it does not fit the model of the run's config.toml ({why}); was config.toml or \
             model.mpk changed?"
        ),
    })?
    .map_err(|e| TrainError::Weights {
        path: weights,
        message: e.to_string(),
    })?;
    Ok((tokenizers, model))
}

impl TrainReport {
    /// `report.md`: final metrics and samples.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# Run report\n\n| metric | value |\n|---|---|\n| epochs | {} |\n| train pairs | {} |\n\
             | valid pairs | {} |\n| parameters | {} |\n| valid loss (label-smoothed) | {:.4} |\n\
             | valid NLL / token | {:.4} |\n| valid perplexity | {:.2} |\n\
             | valid token accuracy | {:.2} % |\n| wall time | {:.0} s |\n",
            self.epochs,
            self.train_pairs,
            self.valid_pairs,
            self.parameters,
            self.valid_loss,
            self.valid_nll,
            self.valid_perplexity,
            self.valid_accuracy,
            self.seconds
        );
        if let (Some(bleu), Some(chrf)) = (self.valid_bleu, self.valid_chrf) {
            s.push_str(&format!(
                "| valid BLEU ({} pairs, {}) | {:.2} |\n| valid chrF2 | {:.2} |\n",
                self.bleu_pairs, self.decoding, bleu, chrf
            ));
        }
        s.push_str(&format!("\n## Samples ({})\n", self.decoding));
        for sample in &self.samples {
            // One line each, whatever line breaks the texts hold (docs/generation.md).
            s.push_str(&format!(
                "\n- source: {}\n  - reference: {}\n  - model: {}\n",
                s2s_data::one_line(&sample.source),
                s2s_data::one_line(&sample.reference),
                s2s_data::one_line(&sample.hypothesis)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_subset_is_reproducible_ordered_and_spread() {
        let items: Vec<usize> = (0..1000).collect();
        let a = seeded_subset(items.clone(), 100, 42);
        assert_eq!(a, seeded_subset(items.clone(), 100, 42));
        assert_ne!(a, seeded_subset(items.clone(), 100, 43));
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "corpus order is kept");
        assert!(
            a[99] > 800 && a[0] < 200,
            "drawn from the whole corpus, not a prefix"
        );
        assert_eq!(seeded_subset(items.clone(), 5000, 1), items);
    }
}
