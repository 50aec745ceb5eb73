//! The end of a run: the final model's exact validation numbers, its BLEU/chrF, sample
//! translations, and `report.md`/`report.json` ([`s2s_infer::TrainReport`]).

use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use s2s_data::{SentencePair, Seq2SeqBatcher, TokenizedPair};
use s2s_infer::{describe, ExperimentConfig, RunDir, Sample, Scores, TrainReport};
use s2s_model::{special, Seq2Seq};

use crate::prepare::{Experiment, PreparedData};
use crate::TrainError;

/// Token-weighted validation loss, NLL and accuracy (%) of `model` over `items`.
pub fn evaluate<B: Backend>(
    model: &Seq2Seq<B>,
    items: &[TokenizedPair],
    batch_size: usize,
    device: &B::Device,
) -> (f64, f64, f64) {
    let (mut loss, mut nll, mut correct, mut tokens) = (0.0, 0.0, 0.0, 0.0);
    for chunk in items.chunks(batch_size.max(1)) {
        let batch = Batcher::<B, _, _>::batch(&Seq2SeqBatcher, chunk.to_vec(), device);
        let out = model.forward_loss(batch);
        let keep = out.labels.clone().not_equal_elem(special::PAD as i64);
        let n = keep.clone().int().sum().into_scalar().elem::<f64>();
        let hits = out
            .logits
            .argmax(2)
            .squeeze_dim::<2>(2)
            .equal(out.labels)
            .bool_and(keep);
        correct += hits.int().sum().into_scalar().elem::<f64>();
        loss += out.loss.into_scalar().elem::<f64>() * n;
        nll += out.nll.into_scalar().elem::<f64>() * n;
        tokens += n;
    }
    let tokens = tokens.max(1.0);
    (loss / tokens, nll / tokens, 100.0 * correct / tokens)
}

/// The first `training.samples` held-out pairs (test, else validation) with the model's best
/// translation of each.
fn samples<B: Backend>(
    config: &ExperimentConfig,
    data: &PreparedData,
    experiment: &Experiment,
    model: &Seq2Seq<B>,
    generation: &s2s_generate::GenerationConfig,
    device: &B::Device,
) -> Result<Vec<Sample>, TrainError> {
    let held_out = if data.test.is_empty() {
        &data.valid
    } else {
        &data.test
    };
    let picks: Vec<&SentencePair> = held_out.iter().take(config.training.samples).collect();
    let sources: Vec<String> = picks.iter().map(|p| p.source.clone()).collect();
    let translations = s2s_infer::translate(
        model,
        &experiment.tokenizers,
        &sources,
        config.data.max_source_len,
        generation,
        device,
    )?;
    Ok(picks
        .into_iter()
        .zip(s2s_infer::best_texts(&translations))
        .map(|(p, hypothesis)| Sample {
            source: p.source.clone(),
            reference: p.target.clone(),
            hypothesis,
        })
        .collect())
}

/// The model a run ends with.
#[derive(Debug)]
pub(crate) struct Trained<B: Backend> {
    pub model: Seq2Seq<B>,
    /// Parameters of the model as the last phase trained it.
    pub parameters: usize,
    /// Training pairs it was trained on.
    pub train_pairs: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Why training stopped before `training.epochs`, if it did.
    pub stopped: Option<String>,
    /// With early stopping: the best epoch and its value.
    pub best: Option<(usize, f64)>,
    /// Which weights `model` holds, in words.
    pub weights: String,
}

/// Evaluates the final `model` (exact, token-weighted validation numbers; BLEU/chrF of the
/// `metric_rows` decoded with the run's `[generation]`; sample translations of held-out
/// pairs) and writes `report.md` and `report.json` into the run.
///
/// # Errors
/// [`TrainError::Infer`] when decoding or the config's `[generation]` fails; a report that
/// cannot be written.
pub(crate) fn final_report<B: Backend>(
    config: &ExperimentConfig,
    run: &RunDir,
    data: &PreparedData,
    experiment: &Experiment,
    trained: &Trained<B>,
    started: Instant,
    device: &B::Device,
) -> Result<TrainReport, TrainError> {
    let model = &trained.model;
    let t = &config.training;
    let generation = config.generation_config()?;
    let (valid_loss, valid_nll, valid_accuracy) =
        evaluate(model, &experiment.valid, t.batch_size, device);
    let rows = &experiment.metric_rows;
    // BLEU, chrF2, ROUGE-1/2/L/Lsum F1 × 100 of the decoded rows, each computed once.
    let points = if rows.is_empty() {
        None
    } else {
        let scores = Scores::of_rows(
            model,
            &experiment.tokenizers.target,
            rows,
            &generation,
            device,
        )?;
        let rouge = scores.rouge.score().scores;
        let points = [
            scores.bleu.score().score,
            scores.chrf.score().score,
            100.0 * rouge.rouge1.fmeasure,
            100.0 * rouge.rouge2.fmeasure,
            100.0 * rouge.rouge_l.fmeasure,
            100.0 * rouge.rouge_lsum.fmeasure,
        ];
        tracing::info!(
            "validation BLEU {:.2}, chrF2 {:.2}, ROUGE-1/2/L {:.2}/{:.2}/{:.2} on {} pairs ({})",
            points[0],
            points[1],
            points[2],
            points[3],
            points[4],
            rows.len(),
            describe(&generation)
        );
        Some(points)
    };
    let [valid_bleu, valid_chrf, valid_rouge1, valid_rouge2, valid_rouge_l, valid_rouge_lsum] =
        points.map_or([None; 6], |points| points.map(Some));
    let samples = samples(config, data, experiment, model, &generation, device)?;
    let report = TrainReport {
        run_dir: run.path().to_path_buf(),
        epochs: trained.epochs,
        stopped: trained
            .stopped
            .clone()
            .unwrap_or_else(|| format!("all {} epochs (training.epochs) ran", trained.epochs)),
        weights: trained.weights.clone(),
        train_pairs: trained.train_pairs,
        valid_pairs: experiment.valid.len(),
        parameters: trained.parameters,
        valid_loss,
        valid_nll,
        valid_perplexity: valid_nll.exp(),
        valid_accuracy,
        metric_pairs: rows.len(),
        valid_bleu,
        valid_chrf,
        valid_rouge1,
        valid_rouge2,
        valid_rouge_l,
        valid_rouge_lsum,
        decoding: describe(&generation),
        seconds: started.elapsed().as_secs_f64(),
        samples,
        machine: Some(s2s_infer::MachineInfo::current()),
    };
    s2s_data::write_atomic(
        &run.file(RunDir::REPORT_MARKDOWN),
        report.to_markdown().as_bytes(),
    )?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    s2s_data::write_atomic(&run.file(RunDir::REPORT_JSON), json.as_bytes())?;
    Ok(report)
}
