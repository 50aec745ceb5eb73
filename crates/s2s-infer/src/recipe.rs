//! The training recipe's choices beyond numbers: the optimizer, the learning-rate schedule,
//! gradient clipping and early stopping (`[training]` keys; the training crate carries them out).

use s2s_eval::Metric;
use serde::{Deserialize, Serialize};

/// `training.optimizer`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba, 2015); `weight_decay` is an L2 term added to the gradient, as
    /// PyTorch's `torch.optim.Adam(weight_decay=…)`.
    #[default]
    Adam,
    /// AdamW (Loshchilov & Hutter, 2019): `weight_decay` shrinks the weights by
    /// `lr · weight_decay` each step, apart from the adaptive update, as `torch.optim.AdamW`.
    #[serde(rename = "adamw")]
    AdamW,
}

/// `training.lr_schedule`: the learning rate at optimizer step `t` (1-based), with
/// `w = warmup_steps`, `T` = the run's optimizer steps (`epochs` × batches per epoch /
/// `grad_accumulation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `lr_factor · d_model^-0.5 · min(t^-0.5, t · w^-1.5)` (Vaswani et al., 2017, §5.3;
    /// burn's `NoamLrScheduler`).
    #[default]
    Noam,
    /// `lr · min(t / w, sqrt(w / t))`: linear warm-up to `lr`, then decay with the inverse
    /// square root of the step (fairseq's `inverse_sqrt` with `warmup_init_lr = 0`).
    InverseSqrt,
    /// Linear warm-up to `lr`, then linear decay to `min_lr` at step `T` (HF's
    /// `get_linear_schedule_with_warmup` when `min_lr = 0`).
    Linear,
    /// Linear warm-up to `lr`, then `min_lr + (lr - min_lr) · (1 + cos(π · p)) / 2` with `p`
    /// the fraction of the post-warm-up steps done (HF's `get_cosine_schedule_with_warmup`,
    /// half a cycle, when `min_lr = 0`).
    Cosine,
}

impl LrSchedule {
    /// The name as written in a config.
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Noam => "noam",
            LrSchedule::InverseSqrt => "inverse_sqrt",
            LrSchedule::Linear => "linear",
            LrSchedule::Cosine => "cosine",
        }
    }
}

/// How `training.grad_clip.norm` is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipKind {
    /// Every gradient is scaled by `min(1, norm / (‖g‖ + 1e-6))` with `‖g‖` the L2 norm of all
    /// gradients together, as PyTorch's `torch.nn.utils.clip_grad_norm_` (fairseq's
    /// `--clip-norm`, HF Trainer's `max_grad_norm`).
    Global,
    /// Each parameter's gradient is clipped to the norm on its own (burn's
    /// `GradientClipping::Norm`).
    #[default]
    PerTensor,
}

/// `training.grad_clip = { norm = 1.0, kind = "global" }`. A bare number (and the older key
/// `grad_clip_norm = x`) reads as `{ norm = x, kind = "per_tensor" }`, what it meant before.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GradClip {
    /// The largest gradient norm; 0 turns clipping off.
    pub norm: f32,
    /// Global or per tensor. Default: `per_tensor`.
    pub kind: ClipKind,
}

impl GradClip {
    fn default_norm() -> f32 {
        1.0
    }
}

impl Default for GradClip {
    fn default() -> Self {
        Self {
            norm: Self::default_norm(),
            kind: ClipKind::PerTensor,
        }
    }
}

impl<'de> Deserialize<'de> for GradClip {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default = "GradClip::default_norm")]
            norm: f32,
            #[serde(default)]
            kind: ClipKind,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Norm(f32),
            Table(Table),
        }
        match Either::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "training.grad_clip must be a number or { norm = <number>, kind = \"global\" | \
                 \"per_tensor\" } (no other keys)",
            )
        })? {
            Either::Norm(norm) => Ok(Self {
                norm,
                kind: ClipKind::PerTensor,
            }),
            Either::Table(t) => Ok(Self {
                norm: t.norm,
                kind: t.kind,
            }),
        }
    }
}

/// The validation number early stopping watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    /// The validation loss (lower is better).
    ValidLoss,
    /// Validation BLEU of the decoded metric pairs (needs `bleu` in `valid_metrics`).
    Bleu,
    /// Validation chrF2 (needs `chrf`).
    Chrf,
    /// Validation ROUGE-1 F (needs `rouge`).
    Rouge1,
    /// Validation ROUGE-2 F (needs `rouge`).
    Rouge2,
    /// Validation ROUGE-L F (needs `rouge`).
    #[serde(rename = "rouge_l")]
    RougeL,
}

impl StopMetric {
    /// The validation metric that must be computed for this one to exist (`None`: the loss,
    /// always there).
    pub fn needs(self) -> Option<Metric> {
        match self {
            StopMetric::ValidLoss => None,
            StopMetric::Bleu => Some(Metric::Bleu),
            StopMetric::Chrf => Some(Metric::Chrf),
            StopMetric::Rouge1 | StopMetric::Rouge2 | StopMetric::RougeL => Some(Metric::Rouge),
        }
    }

    /// Whether a larger value is better (scores), or a smaller (the loss).
    pub fn higher_is_better(self) -> bool {
        self != StopMetric::ValidLoss
    }

    /// The name as written in a config.
    pub fn name(self) -> &'static str {
        match self {
            StopMetric::ValidLoss => "valid_loss",
            StopMetric::Bleu => "bleu",
            StopMetric::Chrf => "chrf",
            StopMetric::Rouge1 => "rouge1",
            StopMetric::Rouge2 => "rouge2",
            StopMetric::RougeL => "rouge_l",
        }
    }
}

impl std::fmt::Display for StopMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `training.early_stopping = { metric = "bleu", patience = 3, min_delta = 0.1 }`: training
/// stops once `patience` validation epochs in a row have not improved on the best by more than
/// `min_delta` (Keras' `EarlyStopping`), and the best epoch's
/// weights become `model.mpk`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// What is watched.
    pub metric: StopMetric,
    /// Epochs without improvement before training stops (at least 1).
    pub patience: usize,
    /// The least change that counts as an improvement, in the metric's units (loss, or BLEU
    /// points). Default: 0.
    #[serde(default)]
    pub min_delta: f64,
}

impl EarlyStopping {
    /// Whether `value` improves on `best` by more than `min_delta` in the metric's direction.
    /// Any finite value improves on no best yet.
    pub fn improves(&self, value: f64, best: Option<f64>) -> bool {
        match best {
            None => value.is_finite(),
            Some(best) if self.metric.higher_is_better() => value > best + self.min_delta,
            Some(best) => value < best - self.min_delta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        clip: GradClip,
    }

    fn clip(text: &str) -> Result<GradClip, String> {
        toml::from_str::<Holder>(text)
            .map(|h| h.clip)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn grad_clip_reads_a_number_or_a_table() {
        assert_eq!(
            clip("clip = 0.5").unwrap(),
            GradClip {
                norm: 0.5,
                kind: ClipKind::PerTensor
            }
        );
        assert_eq!(
            clip("clip = { norm = 2.0, kind = \"global\" }").unwrap(),
            GradClip {
                norm: 2.0,
                kind: ClipKind::Global
            }
        );
        assert_eq!(
            clip("clip = { norm = 1 }").unwrap().kind,
            ClipKind::PerTensor
        );
        let err = clip("clip = { norm = 1, kind = \"globl\" }").unwrap_err();
        assert!(err.contains("\"global\" | \"per_tensor\""), "{err}");
    }

    #[test]
    fn improvement_respects_direction_and_min_delta() {
        let bleu = EarlyStopping {
            metric: StopMetric::Bleu,
            patience: 2,
            min_delta: 0.5,
        };
        assert!(bleu.improves(10.0, None));
        assert!(!bleu.improves(f64::NAN, None));
        assert!(bleu.improves(10.6, Some(10.0)));
        assert!(!bleu.improves(10.5, Some(10.0)));
        assert!(!bleu.improves(9.0, Some(10.0)));
        let loss = EarlyStopping {
            metric: StopMetric::ValidLoss,
            ..bleu
        };
        assert!(loss.improves(9.4, Some(10.0)));
        assert!(!loss.improves(9.5, Some(10.0)));
        assert!(!loss.improves(11.0, Some(10.0)));
    }
}
