//! The optimizer and its schedule: Adam or AdamW ([`AdamOrAdamW`]), the learning-rate
//! schedules ([`Schedule`]), clipping by the global gradient norm ([`clip_global_norm`]) and a
//! separate learning rate for the source encoder (`training.encoder_lr_scale`), all behind one
//! [`EncoderLrOptimizer`].
//!
//! burn 0.21 has no parameter groups, so the gradients are split instead: the encoder's are
//! moved out (found by visiting the encoder's parameters) and the wrapped optimizer steps twice,
//! once with the decoder side at the scheduled rate and once with the encoder side at
//! `scale ×` that rate. Adam keeps its state per parameter and skips parameters without a
//! gradient, so each parameter is updated exactly once per step and the state record is the
//! wrapped optimizer's own (checkpoints of either form load into the other).

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{Adam, AdamConfig, AdamState, SimpleOptimizer};
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use s2s_infer::{ClipKind, ExperimentConfig, LrSchedule, OptimizerKind};

use crate::{Seq2SeqLearner, TrainError};

/// Wraps an optimizer so that the source encoder learns at `encoder_lr_scale` times the
/// scheduled learning rate (everything else at the scheduled rate), after clipping all
/// gradients together to `global_clip` when set.
#[derive(Clone, Debug)]
pub struct EncoderLrOptimizer<O> {
    inner: O,
    encoder_lr_scale: f64,
    global_clip: Option<f32>,
}

impl<O> EncoderLrOptimizer<O> {
    /// Wraps `inner`; the encoder learns at `encoder_lr_scale` × the scheduled rate.
    pub fn new(inner: O, encoder_lr_scale: f64) -> Self {
        Self {
            inner,
            encoder_lr_scale,
            global_clip: None,
        }
    }

    /// Before each step, every gradient is scaled by `min(1, max_norm / (‖g‖ + 1e-6))`
    /// ([`clip_global_norm`]).
    pub fn with_global_clip(self, max_norm: f32) -> Self {
        Self {
            global_clip: Some(max_norm),
            ..self
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

/// The squared L2 norms of the visited parameters' gradients, summed on the device.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let squared = grad.square().sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => {
                    let device = sum.device();
                    sum + squared.to_device(&device)
                }
                None => squared,
            });
        }
    }
}

/// Multiplies the visited parameters' gradients by `scale`.
struct ScaleGrads<'a> {
    grads: &'a mut GradientsParams,
    scale: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, grad.mul_scalar(self.scale));
        }
    }
}

/// Clips `grads` by their global norm, as PyTorch's `torch.nn.utils.clip_grad_norm_`:
/// `‖g‖ = sqrt(Σ_p Σ_i g_pi²)` over every parameter of `module` with a gradient, and each
/// gradient is multiplied by `min(1, max_norm / (‖g‖ + 1e-6))`. Returns `‖g‖` before clipping
/// (0 when no parameter has a gradient). One value is read back from the device.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f32,
) -> f64 {
    let mut norm = SquaredNorm::<B> { grads, sum: None };
    module.visit(&mut norm);
    let Some(sum) = norm.sum else {
        return 0.0;
    };
    let total = sum.into_scalar().elem::<f64>().sqrt();
    let scale = f64::from(max_norm) / (total + 1e-6);
    if scale < 1.0 {
        module.visit(&mut ScaleGrads { grads, scale });
    }
    total
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
        if let Some(max_norm) = self.global_clip {
            clip_global_norm(&module, &mut grads, max_norm);
        }
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

    /// burn-train's own multi-device strategies call this; s2s's loop never does (it sums the
    /// devices' gradients itself, [`crate::parallel`], and calls [`Self::step`]). The encoder's
    /// share is split per device as in `step`; the global clip is not applied here.
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

/// Adam with its weight decay either added to the gradient (L2, `torch.optim.Adam`) or
/// applied to the weights apart from the adaptive step (decoupled, `torch.optim.AdamW`,
/// Loshchilov & Hutter 2019: `θ ← θ·(1 − lr·λ) − lr·m̂/(√v̂ + ε)`). Its state is Adam's, so
/// checkpoints of either load into the other.
#[derive(Clone)]
pub struct AdamOrAdamW {
    adam: Adam,
    /// λ of the decoupled decay; 0 for Adam (whose L2 term is inside `adam`).
    decoupled_decay: f64,
}

impl std::fmt::Debug for AdamOrAdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdamOrAdamW")
            .field("decoupled_decay", &self.decoupled_decay)
            .finish_non_exhaustive()
    }
}

impl AdamOrAdamW {
    /// `adam` (built from an [`AdamConfig`], with any L2 weight decay in it) plus a decoupled
    /// decay `decoupled_decay` (0 for plain Adam).
    pub fn new(adam: Adam, decoupled_decay: f64) -> Self {
        Self {
            adam,
            decoupled_decay,
        }
    }
}

impl<B: Backend> SimpleOptimizer<B> for AdamOrAdamW {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let decay = lr * self.decoupled_decay;
        let tensor = if decay == 0.0 {
            tensor
        } else {
            tensor.mul_scalar(1.0 - decay)
        };
        SimpleOptimizer::<B>::step(&self.adam, lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <Adam as SimpleOptimizer<B>>::to_device(state, device)
    }
}

/// The learning rate at step `t` (1-based, counted in batches) of each
/// [`s2s_infer::LrSchedule`], with `w` warm-up steps and `T` steps in all; see its variants
/// for the formulas. Its record is the step count (as burn's `NoamLrScheduler`, whose
/// checkpoints load into it).
#[derive(Clone, Debug)]
pub struct Schedule {
    kind: LrSchedule,
    /// Noam: `factor · d_model^-0.5`; the others: the peak rate.
    peak: f64,
    min_lr: f64,
    warmup: f64,
    total: f64,
    step: usize,
}

impl Schedule {
    /// The schedule of `config` over `total_steps` batches.
    ///
    /// # Errors
    /// [`TrainError::Schedule`] for zero warm-up steps or model width.
    pub fn new(config: &ExperimentConfig, total_steps: usize) -> Result<Self, TrainError> {
        let t = &config.training;
        let width = config.model.decoder_width();
        let warmup_needed = matches!(t.lr_schedule, LrSchedule::Noam | LrSchedule::InverseSqrt);
        if (warmup_needed && t.warmup_steps == 0) || width == 0 {
            return Err(TrainError::Schedule(format!(
                "lr_schedule = \"{}\" needs warmup_steps and the model width greater than 0",
                t.lr_schedule.name()
            )));
        }
        let peak = match t.lr_schedule {
            LrSchedule::Noam => t.lr_factor * (width as f64).powf(-0.5),
            _ => t.lr,
        };
        Ok(Self {
            kind: t.lr_schedule,
            peak,
            min_lr: t.min_lr,
            warmup: t.warmup_steps as f64,
            total: total_steps as f64,
            step: 0,
        })
    }

    /// The learning rate of step `t` (1-based).
    pub fn lr_at(&self, t: usize) -> f64 {
        let (t, w) = (t.max(1) as f64, self.warmup);
        let warming = t < w;
        // The fraction of the post-warm-up steps done, in [0, 1].
        let done = || {
            let span = self.total - w;
            if span <= 0.0 {
                1.0
            } else {
                ((t - w) / span).clamp(0.0, 1.0)
            }
        };
        match self.kind {
            LrSchedule::Noam => self.peak * f64::min(t.powf(-0.5), t * w.powf(-1.5)),
            LrSchedule::InverseSqrt => self.peak * f64::min(t / w, (w / t).sqrt()),
            _ if warming => self.peak * t / w,
            LrSchedule::Linear => self.min_lr + (self.peak - self.min_lr) * (1.0 - done()),
            LrSchedule::Cosine => {
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * done()).cos());
                self.min_lr + (self.peak - self.min_lr) * cosine
            }
        }
    }
}

impl LrScheduler for Schedule {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        self.step += 1;
        self.lr_at(self.step)
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.step
    }

    fn load_record<B: Backend>(mut self, record: Self::Record<B>) -> Self {
        self.step = record;
        self
    }
}

/// The optimizer every experiment trains with.
pub(crate) type TrainingOptimizer<B> =
    EncoderLrOptimizer<OptimizerAdaptor<AdamOrAdamW, Seq2SeqLearner<B>, B>>;

/// The optimizer and learning-rate schedule an experiment trains with over `total_steps`
/// batches: Adam or AdamW with the config's betas, ε, weight decay and gradient clipping, the
/// encoder's learning-rate scale, and the config's schedule. `s2s bench` steps the same pair,
/// so its numbers are the training's.
///
/// # Errors
/// [`TrainError::Schedule`] when the schedule's settings are refused.
pub(crate) fn optimizer_and_schedule<B: AutodiffBackend>(
    config: &ExperimentConfig,
    total_steps: usize,
) -> Result<(TrainingOptimizer<B>, Schedule), TrainError> {
    let t = &config.training;
    let clip = t.grad_clip;
    let per_tensor = (clip.norm > 0.0 && clip.kind == ClipKind::PerTensor)
        .then_some(GradientClippingConfig::Norm(clip.norm));
    let (l2, decoupled) = match t.optimizer {
        OptimizerKind::Adam => (t.weight_decay, 0.0),
        OptimizerKind::AdamW => (0.0, t.weight_decay),
    };
    let adam = AdamConfig::new()
        .with_beta_1(t.adam_beta1)
        .with_beta_2(t.adam_beta2)
        .with_epsilon(t.adam_epsilon)
        .with_weight_decay((l2 > 0.0).then(|| WeightDecayConfig::new(l2 as f32)));
    let mut adaptor = OptimizerAdaptor::from(AdamOrAdamW::new(adam.build(), decoupled));
    if let Some(per_tensor) = per_tensor {
        adaptor = adaptor.with_grad_clipping(per_tensor.init());
    }
    let mut optimizer = EncoderLrOptimizer::new(adaptor, t.encoder_lr_scale);
    if clip.norm > 0.0 && clip.kind == ClipKind::Global {
        optimizer = optimizer.with_global_clip(clip.norm);
    }
    Ok((optimizer, Schedule::new(config, total_steps)?))
}
