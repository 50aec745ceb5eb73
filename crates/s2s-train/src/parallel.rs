//! Data parallelism over several devices (`training.devices`): each batch is split row-wise
//! into one shard per device, every device runs the forward and backward pass of its shard on
//! its own copy of the model, and the gradients are summed on the first device before the one
//! optimizer step, so the weights stay identical everywhere.
//!
//! Each shard's loss is weighted by its share of the batch's target tokens before the backward
//! pass, so the summed gradient is the gradient of the whole batch's token-mean loss: two
//! devices with half a batch each make the same update as one device with all of it (fairseq
//! normalises the summed gradients of its workers by the total sample size the same way).
//! burn-train 0.21's own multi-device strategy instead gives every device a batch of its own
//! and sums their mean-loss gradients, which scales the step with the number of devices and
//! cannot keep s2s's resumable batch order.
//!
//! The shards are launched one after another from the training thread; burn's GPU backends
//! queue kernels asynchronously, so the devices compute at the same time, and the dropout
//! masks depend only on the seed and the step (the run stays reproducible). On the CPU
//! backends every device index names the same processor: the split is exact but brings no
//! speed.

use burn::optim::GradientsAccumulator;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::BasicOps;
use burn::train::{SequenceOutput, TrainOutput};
use s2s_data::EpochBatches;
use s2s_model::Seq2SeqBatch;

use crate::Seq2SeqLearner;

/// The devices `indices` name, of the kind of `main` (the backend's default device, or the
/// CUDA device libtorch picked): `DeviceId { type of main, index }` for each; `[main]` when
/// `indices` is empty. A backend with one device of that kind (the CPU backends) takes every
/// index as that device.
///
/// # Errors
/// One sentence when an index is beyond the devices the backend sees.
pub fn devices_of<B: Backend>(
    main: &B::Device,
    indices: &[usize],
) -> Result<Vec<B::Device>, String> {
    use burn::tensor::backend::{Device as _, DeviceId};
    if indices.is_empty() {
        return Ok(vec![main.clone()]);
    }
    let kind = main.to_id().type_id;
    let count = B::device_count(kind);
    indices
        .iter()
        .map(|&i| {
            let id = DeviceId::new(kind, u16::try_from(i).unwrap_or(u16::MAX));
            let device = B::Device::from_id(id);
            // An index the backend keeps (CUDA's, wgpu's GPUs) must exist; one it folds into
            // its only device (ndarray's and flex's Cpu) is that device.
            if device.to_id() == id && i >= count {
                return Err(format!(
                    "training.devices names device {i}, but the backend sees {count} device(s) \
                     of its kind (indices 0 to {})",
                    count.saturating_sub(1)
                ));
            }
            Ok(device)
        })
        .collect()
}

/// The rows `start..end` of `tensor`, on `device`.
fn rows<B: Backend, K: BasicOps<B>>(
    tensor: &Tensor<B, 2, K>,
    start: usize,
    end: usize,
    device: &B::Device,
) -> Tensor<B, 2, K> {
    tensor
        .clone()
        .narrow(0, start, end - start)
        .to_device(device)
}

/// The rows `start..end` of every tensor of `batch`, on `device`.
fn shard<B: Backend>(
    batch: &Seq2SeqBatch<B>,
    start: usize,
    end: usize,
    device: &B::Device,
) -> Seq2SeqBatch<B> {
    Seq2SeqBatch {
        source: rows(&batch.source, start, end, device),
        source_pad_mask: rows(&batch.source_pad_mask, start, end, device),
        target_input: rows(&batch.target_input, start, end, device),
        target_labels: rows(&batch.target_labels, start, end, device),
        target_pad_mask: rows(&batch.target_pad_mask, start, end, device),
    }
}

/// Row ranges splitting `rows` into `parts` near-equal contiguous shards (the first ones one
/// row larger), none empty.
pub fn shard_ranges(rows: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, rows.max(1));
    let (size, extra) = (rows / parts, rows % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let end = start + size + usize::from(i < extra);
            let range = start..end;
            start = end;
            range
        })
        .collect()
}

/// One training step of the pairs `indices` over `devices` (the first is where the weights,
/// the optimizer and the summed gradients live): the gradients of `weight ×` the whole
/// batch's token-mean loss (`weight`: its share of an accumulated step, 1 otherwise), and its
/// loss, logits and labels for the metrics, on the first device.
pub fn data_parallel_step<B: AutodiffBackend>(
    learner: &Seq2SeqLearner<B>,
    batches: &EpochBatches,
    indices: &[usize],
    devices: &[B::Device],
    weight: f64,
) -> TrainOutput<SequenceOutput<B>> {
    let main = &devices[0];
    let batch = batches.batch::<B>(indices, main);
    let total = batches.label_tokens(indices).max(1) as f64;
    let mut accumulator = GradientsAccumulator::<Seq2SeqLearner<B>>::new();
    let (mut losses, mut logits, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for (range, device) in shard_ranges(indices.len(), devices.len())
        .into_iter()
        .zip(devices)
    {
        let share = batches.label_tokens(&indices[range.clone()]) as f64 / total;
        let replica = learner.clone().fork(device);
        let part = shard(&batch, range.start, range.end, device);
        let output = replica.step_weighted(part, share * weight);
        accumulator.accumulate(learner, output.grads.to_device(main, learner));
        let item = output.item;
        losses.push(item.loss.to_device(main).mul_scalar(share));
        logits.push(item.logits.to_device(main));
        labels.push(item.targets.to_device(main));
    }
    let loss = losses
        .into_iter()
        .reduce(|a, b| a + b)
        .expect("at least one shard");
    TrainOutput {
        grads: accumulator.grads(),
        item: SequenceOutput::new(loss, Tensor::cat(logits, 0), None, Tensor::cat(labels, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::shard_ranges;

    #[test]
    fn shards_cover_every_row_once_and_differ_by_at_most_one() {
        for (rows, parts) in [(10, 2), (7, 3), (3, 8), (64, 4), (1, 1)] {
            let ranges = shard_ranges(rows, parts);
            assert_eq!(ranges.len(), parts.min(rows));
            assert_eq!(ranges.first().unwrap().start, 0);
            assert_eq!(ranges.last().unwrap().end, rows);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            assert!(sizes.iter().all(|s| *s > 0));
        }
    }
}
