//! Experiment preparation, shared by training and `s2s bench`: the pairs of each split, the
//! pre-trained encoder, the tokenizers and the tokenized, length-limited items.

use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use s2s_data::{SentencePair, TokenizedPair, TokenizerPair};
use s2s_infer::{DataConfig, ExperimentConfig, RunDir};
use s2s_model::{BertConfig, ModelConfig, Seq2Seq, SourceEncoder};

use crate::TrainError;

/// Sentence pairs of the three splits, as read from disk.
#[derive(Clone, Debug, Default)]
pub struct PreparedData {
    /// Training pairs, as in the file.
    pub train: Vec<SentencePair>,
    /// Validation pairs, as in the file.
    pub valid: Vec<SentencePair>,
    /// Held-out pairs for the sample translations (may be empty).
    pub test: Vec<SentencePair>,
    /// The pre-trained BERT directory when `model.bert` is set ([`resolve_encoder`]).
    pub bert: Option<PathBuf>,
}

/// The directory of the pre-trained BERT that `model.bert` names (a known name is fetched and
/// extracted under `data_dir` first if it is missing), or `None` without one.
///
/// # Errors
/// [`TrainError::Data`] when the BERT cannot be found or prepared.
fn resolve_encoder(model: &ModelConfig, data_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    match &model.bert {
        Some(name) => Ok(Some(s2s_data::resolve_bert(name, data_dir)?)),
        None => Ok(None),
    }
}

/// What an experiment reads before it trains: its pairs ([`load_data`]) and, when `model.bert`
/// is set, the pre-trained BERT directory ([`resolve_encoder`]); either is prepared under
/// `data_dir` first if it is missing.
///
/// # Errors
/// As [`load_data`] and [`resolve_encoder`].
pub fn load_experiment_data(
    config: &ExperimentConfig,
    data_dir: &Path,
) -> Result<PreparedData, TrainError> {
    let mut data = load_data(&config.data, data_dir)?;
    data.bert = resolve_encoder(&config.model, data_dir)?;
    Ok(data)
}

/// Reads the pairs a `[data]` section names, preparing a named corpus under `data_dir` first if
/// it is missing.
///
/// # Errors
/// A config without data files, a corpus that cannot be prepared, a file that is not pairs.
fn load_data(config: &DataConfig, data_dir: &Path) -> Result<PreparedData, TrainError> {
    let (train, valid, test) = config.split_paths(data_dir)?;
    Ok(PreparedData {
        train: config.read_pairs(&train)?,
        valid: config.read_pairs(&valid)?,
        test: match test {
            Some(path) => config.read_pairs(&path)?,
            None => Vec::new(),
        },
        bert: None,
    })
}

/// Where the tokenizers and the BERT's config come from.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// A new run (or a benchmark): tokenizers trained on the training pairs, the BERT's config
    /// from its directory.
    Fresh,
    /// A resumed run: both as the run saved them when it started.
    Resume(&'a RunDir),
}

/// An experiment ready to train: tokenizers, BERT shape and tokenized pairs.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// Source and target tokenizers.
    pub tokenizers: TokenizerPair,
    /// The pre-trained encoder's shape, with `model.bert`.
    pub bert: Option<BertConfig>,
    /// Training pairs within the length limits (the seeded `data.max_train_pairs` subset).
    pub train: Vec<TokenizedPair>,
    /// Validation pairs within the length limits (the first `data.max_valid_pairs`).
    pub valid: Vec<TokenizedPair>,
    /// Model input ids and raw reference of the first `training.metric_pairs` of `valid`:
    /// what validation decodes and scores.
    pub metric_rows: Vec<(Vec<u32>, String)>,
}

/// Tokenizes `data` the way `config` says (see [`Start`] for where the tokenizers come from).
///
/// # Errors
/// A BERT whose positions are fewer than `data.max_source_len`; tokenizer training or loading
/// failures; [`TrainError::NoTrainingData`] when the length limits leave no pair.
pub fn prepare(
    config: &ExperimentConfig,
    data: &PreparedData,
    start: Start<'_>,
) -> Result<Experiment, TrainError> {
    let (tokenizers, bert) = match start {
        Start::Fresh => {
            let bert = match (&config.model.bert, &data.bert) {
                (None, _) => None,
                (Some(_), Some(dir)) => Some(BertConfig::load_file(
                    &dir.join(s2s_data::BERT_CONFIG_FILE),
                )?),
                (Some(name), None) => {
                    return Err(TrainError::Config(format!(
                        "model.bert = \"{name}\" was not resolved to a directory before training"
                    )))
                }
            };
            (build_tokenizers(config, data)?, bert)
        }
        Start::Resume(run) => (run.tokenizers()?, run.bert_config(config)?),
    };
    if let Some(bert) = &bert {
        if config.data.max_source_len > bert.max_position_embeddings {
            return Err(TrainError::Config(format!(
                "data.max_source_len ({}) exceeds the BERT's {} positions",
                config.data.max_source_len, bert.max_position_embeddings
            )));
        }
    }
    let limits = config.data.length_limits();
    // tokenize_pairs logs what the limits did to each split (train first, then valid).
    let (mut train, _) = s2s_data::tokenize_pairs(&data.train, &tokenizers, &limits)?;
    let (mut valid, valid_stats) = s2s_data::tokenize_pairs(&data.valid, &tokenizers, &limits)?;
    if let Some(n) = config.data.max_train_pairs {
        train = seeded_subset(train, n, config.training.seed);
    }
    if let Some(n) = config.data.max_valid_pairs {
        valid.truncate(n);
    }
    if train.is_empty() || valid.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let metric_rows = valid
        .iter()
        .zip(&valid_stats.kept_indices)
        .take(config.training.metric_pairs)
        .map(|(item, &index)| (item.source.clone(), data.valid[index].target.clone()))
        .collect();
    Ok(Experiment {
        tokenizers,
        bert,
        train,
        valid,
        metric_rows,
    })
}

/// `model` with the pre-trained BERT weights of `data.bert` in its encoder, when it has a BERT
/// encoder and the directory is known (a fresh start; a resume loads its checkpoint instead).
///
/// # Errors
/// [`TrainError::Bert`] when the weights cannot be read or do not fit.
pub fn load_pretrained_encoder<B: Backend>(
    mut model: Seq2Seq<B>,
    data: &PreparedData,
) -> Result<Seq2Seq<B>, TrainError> {
    if let (Seq2Seq::Transformer(transformer), Some(dir)) = (&mut model, &data.bert) {
        if let SourceEncoder::Bert(encoder) = &transformer.source {
            let path = dir.join(s2s_data::BERT_WEIGHTS_FILE);
            tracing::info!("loading the pre-trained encoder from {}", path.display());
            transformer.source = SourceEncoder::Bert(encoder.clone().load(&path)?);
        }
    }
    Ok(model)
}

/// The tokenizers a fresh run trains: the BERT's WordPiece on the source side and a target-only
/// BPE when `data.bert` is resolved, else a BPE (joint or per side) on the training pairs.
///
/// # Errors
/// [`TrainError::Data`] when the BERT's tokenizer cannot be read or the BPE cannot be trained.
pub fn build_tokenizers(
    config: &ExperimentConfig,
    data: &PreparedData,
) -> Result<TokenizerPair, TrainError> {
    let t = &config.data.tokenizer;
    Ok(match (&data.bert, &config.model.bert) {
        (Some(dir), Some(_)) => {
            tracing::info!(
                "source: the BERT's WordPiece tokenizer; training a byte-level BPE \
                 (vocabulary {}) on the {} targets",
                t.vocab_size,
                data.train.len()
            );
            TokenizerPair::train_target(
                s2s_data::BertTokenizer::load(dir)?,
                &data.train,
                t.vocab_size,
                t.min_frequency,
            )?
        }
        _ => {
            tracing::info!(
                "training a byte-level BPE tokenizer (vocabulary {}) on {} pairs",
                t.vocab_size,
                data.train.len()
            );
            TokenizerPair::train(&data.train, t.joint, t.vocab_size, t.min_frequency)?
        }
    })
}

/// `n` items drawn without replacement with a seeded RNG, kept in corpus order. A corpus sorted
/// by book would otherwise give a prefix that misses whole parts of its vocabulary.
pub fn seeded_subset<T>(items: Vec<T>, n: usize, seed: u64) -> Vec<T> {
    if n >= items.len() {
        return items;
    }
    let mut keep = vec![false; items.len()];
    let mut indices: Vec<usize> = (0..items.len()).collect();
    indices.shuffle(&mut StdRng::seed_from_u64(seed));
    for &i in &indices[..n] {
        keep[i] = true;
    }
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, k)| k.then_some(item))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_subset_is_reproducible_ordered_and_spread() {
        let items: Vec<usize> = (0..1000).collect();
        let a = seeded_subset(items.clone(), 100, 42);
        assert_eq!(a, seeded_subset(items.clone(), 100, 42));
        assert_ne!(a, seeded_subset(items.clone(), 100, 43));
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "corpus order is kept");
        assert!(
            a[99] > 800 && a[0] < 200,
            "drawn from the whole corpus, not a prefix"
        );
        assert_eq!(seeded_subset(items.clone(), 5000, 1), items);
    }
}
