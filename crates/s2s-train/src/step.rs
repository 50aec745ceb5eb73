//! burn-train glue: the training/validation step of a [`Seq2Seq`] model.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{InferenceStep, SequenceOutput, TrainOutput, TrainStep};
use s2s_model::{Seq2Seq, Seq2SeqBatch};

use crate::validation::{ValidBatch, ValidDecoder, ValidOutput};

/// Wraps the model so that burn-train's step traits can be implemented here (the orphan rule
/// forbids implementing them on `Seq2Seq` outside s2s-model, which stays free of burn-train).
#[derive(Module, Debug)]
pub struct Seq2SeqLearner<B: Backend> {
    /// The model being trained.
    pub model: Seq2Seq<B>,
    /// Decodes the metric rows of validation batches; `None` turns validation decoding off.
    #[module(skip)]
    pub decoder: Option<ValidDecoder>,
}

impl<B: AutodiffBackend> TrainStep for Seq2SeqLearner<B> {
    type Input = Seq2SeqBatch<B>;
    type Output = SequenceOutput<B>;

    fn step(&self, batch: Seq2SeqBatch<B>) -> TrainOutput<SequenceOutput<B>> {
        self.step_weighted(batch, 1.0)
    }
}

impl<B: AutodiffBackend> Seq2SeqLearner<B> {
    /// A training step whose gradients are those of `weight ×` the batch's loss (the item's
    /// loss stays unweighted): a shard's share of a batch split over devices
    /// ([`crate::parallel`]).
    pub fn step_weighted(
        &self,
        batch: Seq2SeqBatch<B>,
        weight: f64,
    ) -> TrainOutput<SequenceOutput<B>> {
        // The output projection and cross-entropy fused on the inner backend (docs/performance.md).
        let out = self.model.forward_loss_fused(batch);
        let surrogate = if weight == 1.0 {
            out.surrogate
        } else {
            out.surrogate.mul_scalar(weight)
        };
        let grads = surrogate.backward();
        TrainOutput::new(
            self,
            grads,
            SequenceOutput::new(out.loss, out.logits, None, out.labels),
        )
    }
}

impl<B: Backend> InferenceStep for Seq2SeqLearner<B> {
    type Input = ValidBatch<B>;
    type Output = ValidOutput<B>;

    fn step(&self, input: ValidBatch<B>) -> ValidOutput<B> {
        let device = input.batch.source.device();
        let out = self.model.forward_loss(input.batch);
        let scores = match &self.decoder {
            Some(decoder) if !input.decode.is_empty() => {
                Some(decoder.score(&self.model, &input.decode, &device))
            }
            _ => None,
        };
        ValidOutput {
            sequence: SequenceOutput::new(out.loss, out.logits, None, out.labels),
            scores,
        }
    }
}
