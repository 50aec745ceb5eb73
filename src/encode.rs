//! `s2s encode`: a pre-trained BERT's token ids and hidden states or pooled vectors as JSON
//! lines, to compare with any reference implementation.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use burn::prelude::*;
use s2s_data::BertTokenizer;
use s2s_model::{mean_pool, BertConfig};

use crate::backend::{dispatch_infer, BackendKind, InferTask};

/// What `s2s encode` prints per input line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooling {
    /// Every token's last-layer hidden state (`hidden`, `[tokens][hidden_size]`).
    None,
    /// The mean over tokens (sentence-transformers' pooling), `embedding`.
    Mean,
    /// The `[CLS]` token's hidden state, `embedding`.
    Cls,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    line: usize,
    text: &'a str,
    tokens: &'a [String],
    ids: &'a [u32],
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<Vec<Vec<f32>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<Vec<f32>>,
}

struct EncodeTask<'a> {
    dir: PathBuf,
    sentences: &'a [String],
    pooling: Pooling,
    batch_size: usize,
}

impl InferTask for EncodeTask<'_> {
    type Output = Vec<String>;
    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Vec<String>> {
        let config = BertConfig::load(&self.dir)?;
        let tokenizer = BertTokenizer::load(&self.dir)?;
        let encoder = config
            .init::<B>(&device)
            .load(&self.dir.join(s2s_data::BERT_WEIGHTS_FILE))?;
        let mut out = Vec::with_capacity(self.sentences.len());
        let mut index = 0;
        for chunk in self.sentences.chunks(self.batch_size.max(1)) {
            let encodings = chunk
                .iter()
                .map(|s| tokenizer.encode(s))
                .collect::<Result<Vec<_>, _>>()?;
            let len = encodings.iter().map(|e| e.ids.len()).max().unwrap_or(1);
            if len > config.max_position_embeddings {
                anyhow::bail!(
                    "a line has {len} tokens but the model has {} positions",
                    config.max_position_embeddings
                );
            }
            let rows = encodings.len();
            let mut ids = Vec::with_capacity(rows * len);
            let mut pad = Vec::with_capacity(rows * len);
            for e in &encodings {
                ids.extend(e.ids.iter().map(|&i| i64::from(i)));
                ids.resize(ids.len() + len - e.ids.len(), 0);
                pad.extend((0..len).map(|i| i >= e.ids.len()));
            }
            let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, len]), &device);
            let pad = Tensor::<B, 2, Bool>::from_data(TensorData::new(pad, [rows, len]), &device);
            let hidden = encoder.forward(ids, pad.clone());
            let d = config.hidden_size;
            let values: Vec<f32> = match self.pooling {
                Pooling::None => hidden
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .unwrap_or_default(),
                Pooling::Mean => mean_pool(hidden, pad)
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .unwrap_or_default(),
                Pooling::Cls => hidden
                    .slice([0..rows, 0..1, 0..d])
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .unwrap_or_default(),
            };
            for (row, (text, e)) in chunk.iter().zip(&encodings).enumerate() {
                index += 1;
                let (hidden, embedding) = match self.pooling {
                    Pooling::None => {
                        let start = row * len * d;
                        let states = (0..e.ids.len())
                            .map(|t| values[start + t * d..start + (t + 1) * d].to_vec())
                            .collect();
                        (Some(states), None)
                    }
                    Pooling::Mean | Pooling::Cls => {
                        (None, Some(values[row * d..(row + 1) * d].to_vec()))
                    }
                };
                let line = Line {
                    line: index,
                    text,
                    tokens: &e.tokens,
                    ids: &e.ids,
                    hidden,
                    embedding,
                };
                out.push(serde_json::to_string(&line)?);
            }
        }
        Ok(out)
    }
}

/// `s2s encode --bert <name|dir>`.
pub fn encode(
    bert: &str,
    input: Option<&std::path::Path>,
    pooling: Pooling,
    batch_size: usize,
    backend: BackendKind,
) -> anyhow::Result<()> {
    crate::backend::ensure_compiled(backend)?;
    let dir = s2s_data::resolve_bert(bert, &s2s_data::data_dir())?;
    let sentences = crate::common::read_lines(input)?;
    let lines = dispatch_infer(
        backend,
        EncodeTask {
            dir,
            sentences: &sentences,
            pooling,
            batch_size,
        },
    )?;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    for line in lines {
        writeln!(stdout, "{line}").context("cannot write to standard output")?;
    }
    stdout.flush().context("cannot write to standard output")?;
    Ok(())
}
