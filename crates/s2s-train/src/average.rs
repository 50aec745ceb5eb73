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

/// The last `n` epoch checkpoints of `run_dir` (by epoch number), oldest first.
///
/// # Errors
/// [`TrainError::Average`] when `n` is 0 or the run has fewer than `n`, naming those it has.
pub fn last_epochs(run_dir: &Path, n: usize) -> Result<Vec<usize>, TrainError> {
    let epochs = epoch_checkpoints(run_dir);
    if n == 0 {
        return Err(TrainError::Average("--last must be at least 1".into()));
    }
    if epochs.len() < n {
        return Err(TrainError::Average(format!(
            "{} has {} epoch checkpoint(s) ({}), fewer than the {n} asked for; a run keeps \
             training.keep_checkpoints of them (plus the best)",
            run_dir.join(RunDir::CHECKPOINTS).display(),
            epochs.len(),
            epochs
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(epochs[epochs.len() - n..].to_vec())
}
