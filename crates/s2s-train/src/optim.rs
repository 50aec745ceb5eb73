//! A separate learning rate for the source encoder (`training.encoder_lr_scale`).
//!
//! burn 0.21 has no parameter groups, so the gradients are split instead: the encoder's are
//! moved out (found by visiting the encoder's parameters) and the wrapped optimizer steps twice,
//! once with the decoder side at the scheduled rate and once with the encoder side at
//! `scale ×` that rate. Adam keeps its state per parameter and skips parameters without a
//! gradient, so each parameter is updated exactly once per step and the state record is the
//! wrapped optimizer's own (checkpoints of either form load into the other).

use burn::module::{ModuleVisitor, Param};
use burn::optim::LearningRate;
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::lr_scheduler::noam::{NoamLrScheduler, NoamLrSchedulerConfig};
use burn::optim::{Adam, AdamConfig};
use s2s_infer::ExperimentConfig;

use crate::{Seq2SeqLearner, TrainError};

/// Wraps an optimizer so that the source encoder learns at `encoder_lr_scale` times the
/// scheduled learning rate; everything else learns at the scheduled rate.
#[derive(Clone, Debug)]
pub struct EncoderLrOptimizer<O> {
    inner: O,
    encoder_lr_scale: f64,
}

impl<O> EncoderLrOptimizer<O> {
    /// Wraps `inner`; the encoder learns at `encoder_lr_scale` × the scheduled rate.
    pub fn new(inner: O, encoder_lr_scale: f64) -> Self {
        Self {
            inner,
            encoder_lr_scale,
        }
    }
}

/// Moves the gradients of the visited parameters from one set into another.
struct MoveGrads<'a> {
    from: &'a mut GradientsParams,
    to: &'a mut GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for MoveGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.from.remove::<B::InnerBackend, D>(param.id) {
            self.to.register::<B::InnerBackend, D>(param.id, grad);
        }
    }
}

/// Takes the encoder's gradients out of `grads`.
fn split_encoder<B: AutodiffBackend>(
    learner: &Seq2SeqLearner<B>,
    grads: &mut GradientsParams,
) -> GradientsParams {
    let mut encoder = GradientsParams::new();
    learner.model.visit_encoder(&mut MoveGrads {
        from: grads,
        to: &mut encoder,
    });
    encoder
}

impl<B, O> Optimizer<Seq2SeqLearner<B>, B> for EncoderLrOptimizer<O>
where
    B: AutodiffBackend,
    O: Optimizer<Seq2SeqLearner<B>, B>,
{
    type Record = O::Record;

    fn step(
        &mut self,
        lr: LearningRate,
        module: Seq2SeqLearner<B>,
        mut grads: GradientsParams,
    ) -> Seq2SeqLearner<B> {
        if self.encoder_lr_scale == 1.0 {
            return self.inner.step(lr, module, grads);
        }
        let encoder = split_encoder(&module, &mut grads);
        let module = self.inner.step(lr, module, grads);
        if encoder.is_empty() {
            return module;
        }
        self.inner.step(lr * self.encoder_lr_scale, module, encoder)
    }

    fn step_multi(
        &mut self,
        lr: LearningRate,
        module: Seq2SeqLearner<B>,
        mut grads: MultiGradientsParams,
    ) -> Seq2SeqLearner<B> {
        if self.encoder_lr_scale == 1.0 {
            return self.inner.step_multi(lr, module, grads);
        }
        let mut encoder = MultiGradientsParams { grads: Vec::new() };
        for (device_grads, device) in &mut grads.grads {
            encoder
                .grads
                .push((split_encoder(&module, device_grads), *device));
        }
        let module = self.inner.step_multi(lr, module, grads);
        self.inner
            .step_multi(lr * self.encoder_lr_scale, module, encoder)
    }

    fn to_record(&self) -> Self::Record {
        self.inner.to_record()
    }

    fn load_record(self, record: Self::Record) -> Self {
        Self {
            inner: self.inner.load_record(record),
            ..self
        }
    }
}

/// Adam behind the encoder learning-rate scale: what every experiment trains with.
pub(crate) type TrainingOptimizer<B> =
    EncoderLrOptimizer<OptimizerAdaptor<Adam, Seq2SeqLearner<B>, B>>;

/// The optimizer and learning-rate schedule an experiment trains with: Adam with the config's
/// betas, ε and gradient clipping, the encoder's learning-rate scale, Noam warm-up on the
/// decoder's width. `s2s bench` steps the same pair, so its numbers are the training's.
///
/// # Errors
/// [`TrainError::Schedule`] when burn refuses the schedule's settings.
pub(crate) fn optimizer_and_schedule<B: AutodiffBackend>(
    config: &ExperimentConfig,
) -> Result<(TrainingOptimizer<B>, NoamLrScheduler), TrainError> {
    let t = &config.training;
    let adam = AdamConfig::new()
        .with_beta_1(t.adam_beta1)
        .with_beta_2(t.adam_beta2)
        .with_epsilon(t.adam_epsilon)
        .with_grad_clipping(
            (t.grad_clip.norm > 0.0).then_some(GradientClippingConfig::Norm(t.grad_clip.norm)),
        )
        .init();
    let scheduler = NoamLrSchedulerConfig::new(t.lr_factor)
        .with_warmup_steps(t.warmup_steps)
        .with_model_size(config.model.decoder_width())
        .init()
        .map_err(TrainError::Schedule)?;
    Ok((EncoderLrOptimizer::new(adam, t.encoder_lr_scale), scheduler))
}
