//! What a resume checks before it touches a run (the config's fixed keys, the data, the
//! tokenizers) and where it continues from (the newest intact checkpoint that fits the model).

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use s2s_infer::{init_model, ExperimentConfig, RunDir, RunRecorder};

use crate::checkpoint::{self, CheckpointRef};
use crate::prepare::{Experiment, PreparedData};
use crate::{Seq2SeqLearner, TrainError};

/// `<sha256>  <name>` lines, one per tokenizer file and `bert-config.json` of the run, sorted
/// ([`RunDir::TOKENIZER_FINGERPRINT`], [`RunDir::tokenizer_files`]).
pub(crate) fn tokenizer_fingerprint(run: &RunDir) -> String {
    run.tokenizer_files()
        .into_iter()
        .map(|name| {
            let sum = s2s_data::sha256_file(&run.file(name)).unwrap_or_default();
            format!("{sum}  {name}\n")
        })
        .collect()
}

/// SHA-256 over the training and validation pairs, in order: each split's name, then its
/// pairs as `source\ttarget\n` ([`RunDir::DATA_FINGERPRINT`]).
pub(crate) fn data_fingerprint(data: &PreparedData) -> String {
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

/// Refuses a resume whose config changes keys that may not change, whose tokenizer files were
/// edited, or whose data is not the data the run started with; reads only.
///
/// # Errors
/// [`TrainError::ResumeMismatch`] naming what changed; the run's own config unreadable.
pub(crate) fn check_resume(
    config: &ExperimentConfig,
    run: &RunDir,
    fingerprint: &str,
) -> Result<(), TrainError> {
    let path = run.config_path();
    let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    let started = ExperimentConfig::from_toml(&text).map_err(|e| {
        TrainError::Config(format!(
            "{} (the run's own config) cannot be read back: {e}",
            path.display()
        ))
    })?;
    let mismatch = |keys: String| TrainError::ResumeMismatch {
        run_dir: run.path().to_path_buf(),
        keys,
    };
    let keys = config.resume_conflicts(&started);
    if !keys.is_empty() {
        return Err(mismatch(keys.join(", ")));
    }
    if let Ok(saved) = std::fs::read_to_string(run.file(RunDir::TOKENIZER_FINGERPRINT)) {
        let now = tokenizer_fingerprint(run);
        if saved != now {
            let mut changed: Vec<&str> = now
                .lines()
                .chain(saved.lines())
                .filter(|l| !(saved.lines().any(|s| s == *l) && now.lines().any(|n| n == *l)))
                .filter_map(|l| l.split_whitespace().nth(1))
                .collect();
            changed.sort_unstable();
            changed.dedup();
            return Err(mismatch(format!(
                "the run's tokenizer files ({} changed since it started)",
                changed.join(", ")
            )));
        }
    }
    match std::fs::read_to_string(run.file(RunDir::DATA_FINGERPRINT)) {
        Ok(saved) if saved.trim() != fingerprint => Err(mismatch(
            "the training/validation pairs (their contents changed)".into(),
        )),
        Ok(_) => Ok(()),
        Err(_) => {
            tracing::warn!(
                "{} has no {}; cannot check that the data is unchanged",
                run.path().display(),
                RunDir::DATA_FINGERPRINT
            );
            Ok(())
        }
    }
}

/// The checkpoint a resume continues from: the newest intact one whose weights load into the
/// model this run describes (a file copied in from another run has a valid checksum but other
/// shapes); damaged ones are named in a warning and passed over. Rewrites `config.toml` (the
/// keys that may change take effect) once it is found, and nothing before.
///
/// # Errors
/// [`TrainError::NoIntactCheckpoint`] when every checkpoint is damaged;
/// [`TrainError::NothingToResume`] without any; [`TrainError::Config`] when `training.epochs`
/// is below the epochs already trained.
pub(crate) fn resume_point<B: AutodiffBackend>(
    config: &ExperimentConfig,
    run: &RunDir,
    experiment: &Experiment,
    per_epoch: usize,
    device: &B::Device,
) -> Result<CheckpointRef, TrainError> {
    let vocab = experiment.tokenizers.vocab_sizes();
    let fresh = Seq2SeqLearner {
        model: init_model::<B::InnerBackend>(
            &config.model,
            experiment.bert.as_ref(),
            vocab,
            device,
        )?,
        decoder: None,
    };
    let recorder = RunRecorder::default();
    let fits = |point: CheckpointRef| {
        let file = point.files(run.path()).swap_remove(0);
        s2s_infer::without_panic(|| {
            fresh
                .clone()
                .load_file(file.with_extension(""), &recorder, device)
        })
        .and_then(|loaded| loaded.map(|_| ()).map_err(|e| e.to_string()))
        .map_err(|why| {
            format!(
                "{} does not fit the model of this run's config ({why})",
                file.display()
            )
        })
    };
    let point = match checkpoint::newest_intact(run.path(), per_epoch, fits) {
        Ok(Some((point, skipped))) => {
            for why in skipped {
                tracing::warn!("passing over a damaged checkpoint: {why}");
            }
            point
        }
        Ok(None) => return Err(TrainError::NothingToResume(run.path().to_path_buf())),
        Err(damaged) => {
            return Err(TrainError::NoIntactCheckpoint {
                run_dir: run.path().to_path_buf(),
                why: damaged.join("; "),
            })
        }
    };
    let (epoch, done) = point.next_position(per_epoch);
    let trained = point.epochs_done(per_epoch);
    if config.training.epochs < trained {
        return Err(TrainError::Config(format!(
            "training.epochs = {} is below the {trained} epochs {} has trained; raise it to \
             train longer (a finished run is not shortened)",
            config.training.epochs,
            run.path().display()
        )));
    }
    tracing::info!("resuming from {point}: epoch {epoch}, {done} of its {per_epoch} batches done");
    // The keys that may change (epochs, …) take effect; nothing was written before.
    s2s_data::write_atomic(&run.config_path(), config.to_toml()?.as_bytes())?;
    checkpoint::remove_orphan_checksums(run.path());
    Ok(point)
}
