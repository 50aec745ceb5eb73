//! One training run, from typed config to a run directory with checkpoints, the final model and
//! a report. The steps live in their own modules: [`crate::prepare`] (data and tokenizers),
//! [`crate::resume`] (what a resume checks and where it continues), [`crate::learner`]
//! (burn-train's wiring), [`crate::report`] (the final numbers).

use std::time::Instant;

use burn::module::Module;
use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use s2s_data::EpochBatches;
use s2s_infer::{init_model, save_model, ExperimentConfig, RunDir, TrainReport};

use crate::average;
use crate::checkpoint::{self, CheckpointRef};
use crate::early_stopping::StopVerdict;
use crate::learner::{launch, Phase, PhaseData, TrainOptions};
use crate::prepare::{load_pretrained_encoder, prepare, Experiment, PreparedData, Start};
use crate::report::{final_report, Trained};
use crate::resume::{check_resume, data_fingerprint, resume_point, tokenizer_fingerprint};
use crate::strategy::Outcome;
use crate::validation::{ValidDecoder, ValidItem};
use crate::{RunLock, TrainError};

/// Trains the experiment into `run` on `device` (with `training.devices`: on the devices of
/// its kind it lists, the first holding the weights) and returns the final report.
///
/// Takes the run directory's lock ([`RunLock`]) first. A resume checks, before it writes
/// anything, that the config differs from the run's only in keys that may change
/// ([`ExperimentConfig::resume_conflicts`]) and that the data is the same, then continues from
/// the newest intact checkpoint (damaged ones are named and passed over).
///
/// Writes, in order: `config.toml` (resolved, before the first step), the tokenizer(s),
/// `checkpoint/` every epoch (and every `training.checkpoint_every_steps` batches), `model.mpk`
/// and `report.md` at the end. All writes are atomic; [`RunDir`] names every file.
///
/// # Errors
/// Besides bad configs and data: [`TrainError::RunLocked`], [`TrainError::ResumeMismatch`],
/// [`TrainError::NoIntactCheckpoint`], [`TrainError::Interrupted`] (a checkpoint was written;
/// no final model) and [`TrainError::NonFinite`] (nothing written from the bad state).
pub fn train<B: AutodiffBackend>(
    config: &ExperimentConfig,
    run: &RunDir,
    data: PreparedData,
    device: B::Device,
    options: TrainOptions,
) -> Result<TrainReport, TrainError> {
    let started = Instant::now();
    config.validate()?;
    // With training.devices, the first listed holds the weights, the optimizer and the report.
    let device = crate::parallel::devices_of::<B>(&device, &config.training.devices)
        .map_err(TrainError::Config)?
        .swap_remove(0);
    let _lock = RunLock::acquire(run.path())?;
    let has_checkpoints = !checkpoint::list_checkpoints(run.path()).is_empty();
    match (options.resume, has_checkpoints) {
        (true, false) => return Err(TrainError::NothingToResume(run.path().to_path_buf())),
        (false, true) => return Err(TrainError::RunExists(run.path().to_path_buf())),
        _ => {}
    }
    let fingerprint = data_fingerprint(&data);
    let mut experiment = if options.resume {
        check_resume(config, run, &fingerprint)?;
        prepare(config, &data, Start::Resume(run))?
    } else {
        // The resolved config first, so that a run that fails from here on still says what it
        // was (and a second start is refused as an existing run only once it has checkpoints).
        s2s_data::write_atomic(&run.config_path(), config.to_toml()?.as_bytes())?;
        s2s_data::write_atomic(
            &run.file(RunDir::DATA_FINGERPRINT),
            format!("{fingerprint}\n").as_bytes(),
        )?;
        let experiment = prepare(config, &data, Start::Fresh)?;
        save_tokenizers(config, run, &data, &experiment)?;
        experiment
    };
    let batches = epoch_batches(config, std::mem::take(&mut experiment.train))?;
    let resume = match options.resume {
        true => Some(resume_point::<B>(
            config,
            run,
            &experiment,
            batches.batches_per_epoch(),
            &device,
        )?),
        false => None,
    };
    let generation = config.generation_config()?;
    let phase_data = PhaseData {
        batches,
        valid: valid_items(&experiment),
        decoder: (!experiment.metric_rows.is_empty()).then(|| ValidDecoder {
            tokenizer: std::sync::Arc::new(experiment.tokenizers.target.clone()),
            config: generation,
        }),
    };
    let setup = Setup {
        config,
        run,
        data: &data,
        experiment: &experiment,
        phase_data: &phase_data,
        options: &options,
    };
    let trained = train_phases::<B>(&setup, resume, &device)?;
    let trained = final_weights(config, run, trained, &device)?;
    save_model(&trained.model, run.file(RunDir::MODEL)).map_err(|e| TrainError::Weights {
        path: run.model_path(),
        message: e.to_string(),
    })?;
    final_report(config, run, &data, &experiment, &trained, started, &device)
}

/// The training pairs cut into batches: `training.batch_size` pairs each, or as many as fit
/// `training.max_tokens` tokens when that is set. The pairs move into the plan (no copy); the
/// report counts them there.
fn epoch_batches(
    config: &ExperimentConfig,
    train: Vec<s2s_data::TokenizedPair>,
) -> Result<EpochBatches, TrainError> {
    let t = &config.training;
    if t.max_tokens == 0 {
        return Ok(EpochBatches::new(
            train,
            t.batch_size,
            t.bucket_pool,
            t.seed,
        ));
    }
    let batches = EpochBatches::with_max_tokens(train, t.max_tokens, t.seed).map_err(|e| {
        TrainError::Config(format!(
            "training.max_tokens = {} is too small: the longest training pair needs {} tokens \
             once padded (its longer side, the target counted with one special token); raise \
             training.max_tokens to at least {}",
            e.max_tokens, e.longest, e.longest
        ))
    })?;
    // Batch sizes are the same every epoch; epoch 1's order is as good as any to count them.
    let plan = batches.plan(1);
    let per_epoch = plan.len().max(1) as f64;
    let padded: usize = plan.iter().map(|b| batches.padded_tokens(b)).sum();
    tracing::info!(
        max_tokens = t.max_tokens,
        batches_per_epoch = plan.len(),
        mean_pairs = format!("{:.1}", batches.num_items() as f64 / per_epoch),
        mean_padded_tokens = format!("{:.1}", padded as f64 / per_epoch),
        "token-based batches"
    );
    Ok(batches)
}

/// The weights `model.mpk` gets: the mean of the last `training.average_last` epoch
/// checkpoints, else with early stopping the best epoch's, else the last epoch's.
///
/// # Errors
/// [`TrainError::Checkpoint`] or [`TrainError::Average`] when a checkpoint to read is missing
/// or damaged.
fn final_weights<B: Backend>(
    config: &ExperimentConfig,
    run: &RunDir,
    trained: Trained<B>,
    device: &B::Device,
) -> Result<Trained<B>, TrainError> {
    let t = &config.training;
    if t.average_last > 1 {
        let epochs = average::last_epochs(run.path(), t.average_last)?;
        let model = average::average_epochs(trained.model.clone(), run.path(), &epochs, device)?;
        let weights = format!(
            "the mean of epochs {} (training.average_last = {})",
            average::epoch_list(&epochs),
            t.average_last
        );
        tracing::info!("model.mpk: {weights}");
        return Ok(Trained {
            model,
            weights,
            ..trained
        });
    }
    match (t.early_stopping, trained.best) {
        (Some(rule), Some((best, value))) if best != trained.epochs => {
            let model = average::load_epoch_model(trained.model.clone(), run.path(), best, device)?;
            let weights = format!("epoch {best}, the best by {} ({value:.4})", rule.metric);
            tracing::info!("model.mpk: {weights}");
            Ok(Trained {
                model,
                weights,
                ..trained
            })
        }
        (Some(rule), Some((best, value))) => Ok(Trained {
            weights: format!(
                "epoch {best}, the last and the best by {} ({value:.4})",
                rule.metric
            ),
            ..trained
        }),
        _ => Ok(trained),
    }
}

/// A new run's tokenizer(s), the BERT's config and the tokenizers' fingerprint. The BERT's
/// config.json is copied in (with its tokenizer) so that the run can be resumed, evaluated and
/// served without the cache.
fn save_tokenizers(
    config: &ExperimentConfig,
    run: &RunDir,
    data: &PreparedData,
    experiment: &Experiment,
) -> Result<(), TrainError> {
    if let Some(dir) = data.bert.as_deref().filter(|_| config.model.bert.is_some()) {
        let source = dir.join(s2s_data::BERT_CONFIG_FILE);
        let bytes = std::fs::read(&source).map_err(|e| TrainError::Io {
            action: "read",
            path: source,
            source: e,
        })?;
        s2s_data::write_atomic(&run.file(RunDir::BERT_CONFIG), &bytes)?;
    }
    experiment.tokenizers.save(run.path())?;
    s2s_data::write_atomic(
        &run.file(RunDir::TOKENIZER_FINGERPRINT),
        tokenizer_fingerprint(run).as_bytes(),
    )?;
    Ok(())
}

/// Validation pairs; the first `metric_pairs` carry their raw reference for the metrics.
fn valid_items(experiment: &Experiment) -> Vec<ValidItem> {
    experiment
        .valid
        .iter()
        .enumerate()
        .map(|(i, pair)| ValidItem {
            pair: pair.clone(),
            reference: experiment.metric_rows.get(i).map(|(_, r)| r.clone()),
        })
        .collect()
}

/// The phases of a run: the encoder frozen for the whole run, for the first
/// `unfreeze_encoder_after` epochs (then the run continues from that epoch's checkpoint with the
/// encoder trainable), or never. Returns `(end epoch, frozen)` per phase.
fn phases(config: &ExperimentConfig) -> Vec<(usize, bool)> {
    let t = &config.training;
    match (t.freeze_encoder, t.unfreeze_encoder_after) {
        (true, Some(n)) => vec![(n, true), (t.epochs, false)],
        (frozen, _) => vec![(t.epochs, frozen)],
    }
}

/// What every phase of a run shares.
struct Setup<'a> {
    config: &'a ExperimentConfig,
    run: &'a RunDir,
    data: &'a PreparedData,
    experiment: &'a Experiment,
    phase_data: &'a PhaseData,
    options: &'a TrainOptions,
}

/// Trains every phase not yet done, each from the checkpoint the previous one ended with.
fn train_phases<B: AutodiffBackend>(
    setup: &Setup<'_>,
    mut resume: Option<CheckpointRef>,
    device: &B::Device,
) -> Result<Trained<B::InnerBackend>, TrainError> {
    let Setup {
        config,
        run,
        experiment,
        phase_data,
        options,
        ..
    } = *setup;
    let t = &config.training;
    let per_epoch = phase_data.batches.batches_per_epoch();
    let mut start = resume.map(|c| c.epochs_done(per_epoch)).unwrap_or(0);
    let mut trained = None;
    for (end, frozen) in phases(config) {
        if end <= start && end < t.epochs {
            continue;
        }
        let frozen = frozen.then_some((start + 1, end));
        let model = phase_model::<B>(setup, frozen, resume.is_none(), device)?;
        let parameters = model.num_params();
        tracing::info!(
            "model: {parameters} parameters, vocab {:?}, {} train / {} valid pairs",
            experiment.tokenizers.vocab_sizes(),
            phase_data.batches.num_items(),
            experiment.valid.len()
        );
        let phase = Phase { start, end, resume };
        let phase_end = launch::<B>(config, run, model, phase, phase_data, options, device)?;
        let stopped = check_outcome(run, phase_end.outcome)?;
        let epochs = stopped.as_ref().map_or(end, |verdict| verdict.epoch);
        trained = Some(Trained {
            model: phase_end.model,
            parameters,
            train_pairs: phase_data.batches.num_items(),
            epochs,
            stopped: stopped.as_ref().map(StopVerdict::describe),
            best: phase_end.best,
            weights: format!("the last epoch ({epochs})"),
        });
        if stopped.is_some() {
            break;
        }
        start = end;
        resume = Some(CheckpointRef::Epoch(end));
    }
    // Every epoch is done: the mid-epoch checkpoints (of this process or an earlier one) are
    // older than the last epoch's and only take room.
    for point in checkpoint::list_checkpoints(run.path()) {
        if matches!(point, CheckpointRef::Step(_)) {
            checkpoint::remove_checkpoint(run.path(), point);
        }
    }
    checkpoint::remove_orphan_checksums(run.path());
    trained.ok_or_else(|| TrainError::NothingToResume(run.path().to_path_buf()))
}

/// The model a phase starts from: seeded weights (the pre-trained BERT loaded into a fresh
/// run's encoder; a resumed phase's weights come from its checkpoint), its encoder frozen for
/// epochs `first..=last` when `frozen` is `Some((first, last))`.
fn phase_model<B: AutodiffBackend>(
    setup: &Setup<'_>,
    frozen: Option<(usize, usize)>,
    fresh: bool,
    device: &B::Device,
) -> Result<s2s_model::Seq2Seq<B>, TrainError> {
    let (config, data, experiment) = (setup.config, setup.data, setup.experiment);
    B::seed(device, config.training.seed);
    let vocab = experiment.tokenizers.vocab_sizes();
    let mut model = init_model::<B>(&config.model, experiment.bert.as_ref(), vocab, device)?
        .with_label_smoothing(config.training.label_smoothing);
    if fresh {
        model = load_pretrained_encoder(model, data)?;
    }
    if let Some((first, last)) = frozen {
        tracing::info!(
            "freezing the source encoder ({} parameters) for epochs {first}..={last}",
            model.encoder_num_params(),
        );
        model = model.freeze_encoder();
    }
    Ok(model)
}

/// A phase that did not finish is the run's error (a checkpoint of where it stopped is kept);
/// one that early stopping ended returns its verdict.
fn check_outcome(run: &RunDir, outcome: Outcome) -> Result<Option<StopVerdict>, TrainError> {
    let run_dir = run.path().to_path_buf();
    match outcome {
        Outcome::Finished => Ok(None),
        Outcome::EarlyStopped(verdict) => Ok(Some(verdict)),
        Outcome::Stopped {
            epoch,
            step,
            reason,
        } => {
            checkpoint::remove_orphan_checksums(run.path());
            Err(TrainError::Interrupted {
                run_dir,
                reason,
                epoch,
                step,
            })
        }
        Outcome::NonFiniteLoss { epoch, step, loss } => Err(TrainError::NonFinite {
            what: format!("the loss of batch {step} (epoch {epoch}) is {loss}"),
            run_dir,
        }),
        Outcome::NonFiniteWeights { epoch, step } => Err(TrainError::NonFinite {
            what: format!("the weights after batch {step} (epoch {epoch}) are not finite"),
            run_dir,
        }),
    }
}
