//! One training run, from typed config to a run directory with checkpoints, the final model and
//! a report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::lr_scheduler::noam::NoamLrSchedulerConfig;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, PerplexityMetric};
use burn::train::{Learner, SupervisedTraining};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use s2s_data::{SentencePair, Seq2SeqBatcher, TokenizedPair, TokenizerPair};
use s2s_model::{special, ModelConfig, Seq2Seq};
use serde::Serialize;

use crate::experiment::{DataConfig, ExperimentConfig};
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
    })
}

/// How a run is launched.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the last checkpoint in the run directory.
    pub resume: bool,
    /// Use burn's TUI dashboard (only when stdout is a terminal); plain log lines otherwise.
    pub tui: bool,
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
    pub interrupted: bool,
    pub samples: Vec<Sample>,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TrainError + 'a {
    move |source| TrainError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Epoch numbers of the model checkpoints burn-train wrote into `run_dir/checkpoint`.
pub fn checkpoint_epochs(run_dir: &Path) -> Vec<usize> {
    let mut epochs: Vec<usize> = std::fs::read_dir(run_dir.join("checkpoint"))
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("model-")?
                .strip_suffix(".mpk")?
                .parse()
                .ok()
        })
        .collect();
    epochs.sort_unstable();
    epochs
}

/// Trains the experiment into `run_dir` on `device` and returns the final report.
///
/// Writes, in order: `config.toml` (resolved, before the first step), the tokenizer(s),
/// `checkpoint/` every epoch, `model.mpk` and `report.md` at the end. All writes are atomic.
pub fn train<B: AutodiffBackend>(
    config: &ExperimentConfig,
    run_dir: &Path,
    data: PreparedData,
    device: B::Device,
    options: TrainOptions,
) -> Result<TrainReport, TrainError> {
    let started = Instant::now();
    config.validate()?;
    let existing = checkpoint_epochs(run_dir);
    let resume_from = match (options.resume, existing.last()) {
        (true, Some(&epoch)) => Some(epoch),
        (true, None) => return Err(TrainError::NothingToResume(run_dir.to_path_buf())),
        (false, Some(_)) => return Err(TrainError::RunExists(run_dir.to_path_buf())),
        (false, None) => None,
    };
    std::fs::create_dir_all(run_dir).map_err(io("create", run_dir))?;
    s2s_data::write_atomic(&run_dir.join("config.toml"), config.to_toml()?.as_bytes())?;

    let tokenizers = if resume_from.is_some() {
        TokenizerPair::load(run_dir)?
    } else {
        let t = &config.data.tokenizer;
        tracing::info!(
            "training a byte-level BPE tokenizer (vocabulary {}) on {} pairs",
            t.vocab_size,
            data.train.len()
        );
        let tokenizers = TokenizerPair::train(&data.train, t.joint, t.vocab_size, t.min_frequency)?;
        tokenizers.save(run_dir)?;
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
        .map(|(item, &index)| {
            let mut source = item.source.clone();
            source.push(special::EOS);
            (source, data.valid[index].target.clone())
        })
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
    B::seed(&device, t.seed);
    let model = config
        .model
        .init::<B>(vocab, &device)?
        .with_label_smoothing(t.label_smoothing);
    let model = if t.freeze_encoder {
        let frozen = model.source_embedding.num_params() + model.encoder.num_params();
        tracing::info!("freezing the source embedding and encoder ({frozen} parameters)");
        model.freeze_encoder()
    } else {
        model
    };
    let parameters = model.num_params();
    tracing::info!(
        "model: {parameters} parameters, vocab {vocab:?}, {} train / {} valid pairs",
        train_items.len(),
        valid_items.len()
    );

    let optimizer = AdamConfig::new()
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

    let train_loader = s2s_data::training_loader::<B>(
        train_items,
        t.batch_size,
        t.bucket_pool,
        t.seed,
        device.clone(),
    );
    let valid_loader = DataLoaderBuilder::new(ValidBatcher)
        .batch_size(t.batch_size)
        .set_device(device.clone())
        .build(InMemDataset::new(valid_dataset));

    let recorder = RunRecorder::default();
    let mut training = SupervisedTraining::new(run_dir, train_loader, valid_loader)
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
        .num_epochs(t.epochs)
        .summary();
    if bleu_decoder.is_some() {
        training = training.metric_valid_numeric(BleuMetric::new());
    }
    if t.grad_accumulation > 1 {
        training = training.grads_accumulation(t.grad_accumulation);
    }
    if !options.tui {
        training = training.renderer(PlainRenderer::new(std::time::Duration::from_secs(10)));
    }
    if let Some(epoch) = resume_from {
        tracing::info!("resuming from the checkpoint of epoch {epoch}");
        training = training.checkpoint(epoch);
    }
    let interrupter = training.interrupter();
    let learner = Learner::new(
        Seq2SeqLearner {
            model,
            bleu: bleu_decoder.clone(),
        },
        optimizer,
        scheduler,
    );
    let result = training.launch(learner);
    let model: Seq2Seq<B::InnerBackend> = result.model.model;
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
        interrupted: interrupter.should_stop(),
        samples,
    };
    s2s_data::write_atomic(&run_dir.join("report.md"), report.to_markdown().as_bytes())?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    s2s_data::write_atomic(&run_dir.join("report.json"), json.as_bytes())?;
    Ok(report)
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
    let model = model_config
        .init::<B>(vocab, device)?
        .load_file(run_dir.join(MODEL_FILE), &RunRecorder::default(), device)
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
        if self.interrupted {
            s.push_str("\nTraining was interrupted; the model is the last one trained.\n");
        }
        s.push_str(&format!("\n## Samples ({})\n", self.decoding));
        for sample in &self.samples {
            s.push_str(&format!(
                "\n- source: {}\n  - reference: {}\n  - model: {}\n",
                sample.source, sample.reference, sample.hypothesis
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
