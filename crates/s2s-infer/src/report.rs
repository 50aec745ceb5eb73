//! What a finished run reports: `report.md` for people, `report.json` for programs
//! ([`crate::RunDir::report`] reads it back).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A held-out sentence, its reference and the model's translation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The source sentence, as in the data.
    pub source: String,
    /// Its reference translation, as in the data.
    pub reference: String,
    /// The model's best translation, detokenized.
    pub hypothesis: String,
}

/// What a finished run reports. Read back leniently: a field an older s2s did not write is
/// its default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainReport {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Epochs trained (`training.epochs`, fewer when early stopping ended the run).
    pub epochs: usize,
    /// Why training ended: every epoch ran, or early stopping's sentence.
    pub stopped: String,
    /// Which weights `model.mpk` holds: the last epoch's, the best epoch's (early stopping) or
    /// the mean of the last N (`training.average_last`).
    pub weights: String,
    /// Training pairs within the length limits (the `max_train_pairs` subset).
    pub train_pairs: usize,
    /// Validation pairs within the length limits (the first `max_valid_pairs`).
    pub valid_pairs: usize,
    /// Parameters of the model as its last phase trained it.
    pub parameters: usize,
    /// Label-smoothed loss per validation token (the training objective).
    pub valid_loss: f64,
    /// Negative log-likelihood per validation token.
    pub valid_nll: f64,
    /// `exp(valid_nll)`.
    pub valid_perplexity: f64,
    /// Teacher-forced next-token accuracy on validation, in percent.
    pub valid_accuracy: f64,
    /// Validation pairs decoded for the metrics (`training.metric_pairs`, at most all).
    #[serde(alias = "bleu_pairs")]
    pub metric_pairs: usize,
    /// Corpus BLEU of the final model on those pairs, decoded with `[generation]`.
    pub valid_bleu: Option<f64>,
    /// chrF2 of the same outputs.
    pub valid_chrf: Option<f64>,
    /// ROUGE-1 F1 × 100 of the same outputs (mean of per-segment scores, Porter stemmer).
    #[serde(default)]
    pub valid_rouge1: Option<f64>,
    /// ROUGE-2 F1 × 100.
    #[serde(default)]
    pub valid_rouge2: Option<f64>,
    /// ROUGE-L F1 × 100.
    #[serde(default)]
    pub valid_rouge_l: Option<f64>,
    /// ROUGE-Lsum F1 × 100.
    #[serde(default)]
    pub valid_rouge_lsum: Option<f64>,
    /// How they were decoded (e.g. `greedy`, `beam 4`).
    pub decoding: String,
    /// Wall time of the run (of its last process, when resumed), in seconds.
    pub seconds: f64,
    /// The first `training.samples` held-out pairs (test, else validation) translated.
    pub samples: Vec<Sample>,
    /// The machine the run's last process trained on (absent in reports of older runs).
    pub machine: Option<MachineInfo>,
}

/// The CPU a run trained on, so that its wall times can be read against others.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// `model name` from `/proc/cpuinfo`, else the architecture (`x86_64`).
    pub cpu: String,
    /// Logical CPUs the process may use (`std::thread::available_parallelism`).
    pub logical_cpus: usize,
}

impl MachineInfo {
    /// This machine.
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Self {
            cpu,
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl std::fmt::Display for MachineInfo {
    /// `AMD EPYC 7B13, 2 logical CPUs`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {} logical CPUs", self.cpu, self.logical_cpus)
    }
}

impl TrainReport {
    /// `report.md`: final metrics and samples.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# Run report\n\n| metric | value |\n|---|---|\n| epochs | {} |\n| train pairs | {} |\n\
             | valid pairs | {} |\n| parameters | {} |\n| valid loss (label-smoothed) | {:.4} |\n\
             | valid NLL / token | {:.4} |\n| valid perplexity | {:.2} |\n\
             | valid token accuracy | {:.2} % |\n| wall time | {:.0} s |\n",
            self.epochs,
            self.train_pairs,
            self.valid_pairs,
            self.parameters,
            self.valid_loss,
            self.valid_nll,
            self.valid_perplexity,
            self.valid_accuracy,
            self.seconds
        );
        if let Some(machine) = &self.machine {
            s.push_str(&format!("| machine | {machine} |\n"));
        }
        if !self.stopped.is_empty() {
            s.push_str(&format!("| stopped | {} |\n", self.stopped));
        }
        if !self.weights.is_empty() {
            s.push_str(&format!("| model.mpk | {} |\n", self.weights));
        }
        if let (Some(bleu), Some(chrf)) = (self.valid_bleu, self.valid_chrf) {
            s.push_str(&format!(
                "| valid BLEU ({} pairs, {}) | {:.2} |\n| valid chrF2 | {:.2} |\n",
                self.metric_pairs, self.decoding, bleu, chrf
            ));
        }
        if let (Some(r1), Some(r2), Some(rl), Some(rlsum)) = (
            self.valid_rouge1,
            self.valid_rouge2,
            self.valid_rouge_l,
            self.valid_rouge_lsum,
        ) {
            s.push_str(&format!(
                "| valid ROUGE-1 / 2 / L / Lsum F1 (stemmed) | {r1:.2} / {r2:.2} / {rl:.2} / \
                 {rlsum:.2} |\n"
            ));
        }
        s.push_str(&format!("\n## Samples ({})\n", self.decoding));
        for sample in &self.samples {
            // One line each, whatever line breaks the texts hold (docs/generation.md).
            s.push_str(&format!(
                "\n- source: {}\n  - reference: {}\n  - model: {}\n",
                s2s_data::one_line(&sample.source),
                s2s_data::one_line(&sample.reference),
                s2s_data::one_line(&sample.hypothesis)
            ));
        }
        s
    }
}
