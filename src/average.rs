//! `s2s average`: the element-wise mean of a run's last N epoch checkpoints as a run directory
//! of its own, which `s2s generate`, `s2s eval --run` and `s2s bench decode` load like any
//! other (fairseq's `scripts/average_checkpoints.py --num-epoch-checkpoints N`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::backend::NdArray;
use s2s_infer::{init_model, save_model, RunDir};

use crate::common::read_run;

/// Averages the last `last` epoch checkpoints of `run_dir` into `out` (default: a sibling
/// directory `<run>-avg<N>`) and returns that directory. The new directory holds the run's
/// config (named after it), its tokenizer files and fingerprints, and the averaged
/// `model.mpk`; the run itself is left as it is.
pub fn average(run_dir: &Path, last: usize, out: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let (run, _) = read_run(run_dir)?;
    let epochs = s2s_train::average::last_epochs(run.path(), last)?;
    let out = out.unwrap_or_else(|| sibling(run.path(), last));
    if out.exists()
        && std::fs::read_dir(&out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} already exists; give another --out or remove it",
            out.display()
        );
    }
    write_mean(run_dir, &epochs, &out)?;
    println!(
        "{}: the mean of epochs {} of {}",
        RunDir::new(&out).model_path().display(),
        s2s_train::average::epoch_list(&epochs),
        run.path().display()
    );
    Ok(out)
}

/// Writes into `out` a run directory whose `model.mpk` is the mean of the epoch checkpoints
/// `epochs` of `run_dir` (one epoch: that epoch's weights), beside the run's config (named
/// after `out`), tokenizer files and fingerprints.
///
/// # Errors
/// One sentence for a run that cannot be read, a checkpoint that is missing, damaged or does
/// not fit, or a file that cannot be written.
pub fn write_mean(run_dir: &Path, epochs: &[usize], out: &Path) -> anyhow::Result<()> {
    let (run, mut config) = read_run(run_dir)?;
    let device = Default::default();
    let tokenizers = run.tokenizers()?;
    let bert = run.bert_config(&config)?;
    let template = init_model::<NdArray<f32>>(
        &config.model,
        bert.as_ref(),
        tokenizers.vocab_sizes(),
        &device,
    )?;
    let model = s2s_train::average::average_epochs(template, run.path(), epochs, &device)?;

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let target = RunDir::new(out);
    for name in run
        .tokenizer_files()
        .into_iter()
        .chain([RunDir::DATA_FINGERPRINT, RunDir::TOKENIZER_FINGERPRINT])
    {
        let from = run.file(name);
        if from.is_file() {
            let bytes =
                std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?;
            s2s_data::write_atomic(&target.file(name), &bytes)?;
        }
    }
    config.name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    config.run_dir = Some(out.to_path_buf());
    s2s_data::write_atomic(&target.config_path(), config.to_toml()?.as_bytes())?;
    save_model(&model, target.file(RunDir::MODEL))
        .with_context(|| format!("cannot write {}", target.model_path().display()))?;
    Ok(())
}

/// `<run>-avg<N>` beside the run.
fn sibling(run: &Path, n: usize) -> PathBuf {
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    run.with_file_name(format!("{name}-avg{n}"))
}
