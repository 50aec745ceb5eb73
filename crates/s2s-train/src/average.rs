//! Checkpoint averaging: the element-wise mean of several epochs' weights (Vaswani et al.,
//! 2017, §6.1, averaged the last 5 or 20 checkpoints; fairseq's
//! `scripts/average_checkpoints.py`). Used by `training.average_last` at the end of a run and by
//! `s2s average`.

use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use s2s_infer::recorder::verify_checksum;
use s2s_infer::{RunDir, RunRecorder};
use s2s_model::Seq2Seq;

use crate::checkpoint::{list_checkpoints, CheckpointRef};
use crate::{Seq2SeqLearner, TrainError};

/// The epochs of `run_dir`'s end-of-epoch checkpoints, oldest first.
pub fn epoch_checkpoints(run_dir: &Path) -> Vec<usize> {
    let mut epochs: Vec<usize> = list_checkpoints(run_dir)
        .into_iter()
        .filter_map(|c| match c {
            CheckpointRef::Epoch(e) => Some(e),
            CheckpointRef::Step(_) => None,
        })
        .collect();
    epochs.sort_unstable();
    epochs
}

/// The weights of the end-of-epoch checkpoint `epoch` of `run_dir`, loaded into `template`
/// (a model built from the run's config) after checking the file's checksum.
///
/// # Errors
/// [`TrainError::Checkpoint`] when the file is missing, damaged or does not fit the model.
pub fn load_epoch_model<B: Backend>(
    template: Seq2Seq<B>,
    run_dir: &Path,
    epoch: usize,
    device: &B::Device,
) -> Result<Seq2Seq<B>, TrainError> {
    let file = CheckpointRef::Epoch(epoch).files(run_dir).swap_remove(0);
    let error = |message: String| TrainError::Checkpoint {
        path: file.clone(),
        message,
    };
    verify_checksum(&file).map_err(error)?;
    let learner = Seq2SeqLearner {
        model: template,
        decoder: None,
    };
    let recorder = RunRecorder::default();
    let loaded =
        s2s_infer::without_panic(|| learner.load_file(file.with_extension(""), &recorder, device))
            .map_err(|why| error(format!("it does not fit the run's model ({why})")))?
            .map_err(|e| error(e.to_string()))?;
    Ok(loaded.model)
}

/// The float parameters of a module, flattened, in visiting order.
struct Collect<B: Backend> {
    tensors: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = param.val();
        let n = tensor.shape().num_elements();
        self.tensors.push(tensor.reshape([n]));
    }
}

/// Adds the collected tensors (same visiting order) to the module's, or scales its own.
struct Accumulate<B: Backend> {
    others: std::vec::IntoIter<Tensor<B, 1>>,
    scale: Option<f64>,
}

impl<B: Backend> ModuleMapper<B> for Accumulate<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|tensor| match self.scale {
            Some(scale) => tensor.mul_scalar(scale),
            None => {
                let shape = tensor.shape();
                let other = self
                    .others
                    .next()
                    .expect("models of the same config have the same parameters");
                tensor + other.reshape(shape)
            }
        })
    }
}

/// The element-wise mean of the weights of the epoch checkpoints `epochs` of `run_dir`
/// (summed in f32 in the given order, then divided by their number, as fairseq's
/// `average_checkpoints.py`). `template` is a model built from the run's config.
///
/// # Errors
/// [`TrainError::Checkpoint`] for a checkpoint that is missing, damaged or does not fit;
/// [`TrainError::Average`] for an empty list.
pub fn average_epochs<B: Backend>(
    template: Seq2Seq<B>,
    run_dir: &Path,
    epochs: &[usize],
    device: &B::Device,
) -> Result<Seq2Seq<B>, TrainError> {
    let (first, rest) = epochs
        .split_first()
        .ok_or_else(|| TrainError::Average("no checkpoints to average".into()))?;
    let mut sum = load_epoch_model(template.clone(), run_dir, *first, device)?;
    for epoch in rest {
        let other = load_epoch_model(template.clone(), run_dir, *epoch, device)?;
        let mut collect = Collect {
            tensors: Vec::new(),
        };
        other.visit(&mut collect);
        sum = sum.map(&mut Accumulate {
            others: collect.tensors.into_iter(),
            scale: None,
        });
    }
    if epochs.len() == 1 {
        return Ok(sum);
    }
    Ok(sum.map(&mut Accumulate {
        others: Vec::new().into_iter(),
        scale: Some(1.0 / epochs.len() as f64),
    }))
}

/// The last `n` epochs of `run_dir`, `E-n+1..=E` with `E` its newest epoch checkpoint; each
/// must have its checkpoint (a kept best epoch older than that range is not used).
///
/// # Errors
/// [`TrainError::Average`] when `n` is 0, the run has no epoch checkpoint, or one of those
/// epochs' checkpoints is gone, naming the ones it has.
pub fn last_epochs(run_dir: &Path, n: usize) -> Result<Vec<usize>, TrainError> {
    if n == 0 {
        return Err(TrainError::Average("--last must be at least 1".into()));
    }
    let have = epoch_checkpoints(run_dir);
    let dir = run_dir.join(RunDir::CHECKPOINTS);
    let Some(&newest) = have.last() else {
        return Err(TrainError::Average(format!(
            "{} has no epoch checkpoint",
            dir.display()
        )));
    };
    if newest < n {
        return Err(TrainError::Average(format!(
            "the run has {newest} epoch(s), fewer than the {n} asked for"
        )));
    }
    let wanted: Vec<usize> = (newest + 1 - n..=newest).collect();
    let missing: Vec<usize> = wanted
        .iter()
        .copied()
        .filter(|e| !have.contains(e))
        .collect();
    if !missing.is_empty() {
        return Err(TrainError::Average(format!(
            "the last {n} epochs are {}, but {} holds the checkpoints of epochs {} only (a run \
             keeps training.keep_checkpoints of them, and its best)",
            epoch_list(&wanted),
            dir.display(),
            epoch_list(&have)
        )));
    }
    Ok(wanted)
}

/// `1, 2, 3`.
pub fn epoch_list(epochs: &[usize]) -> String {
    epochs
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
