//! Dynamic batching: the one model thread takes queued requests, decodes together those with
//! the same generation settings (up to `max_batch_size` sentences, waiting up to `max_wait` for
//! more) and answers each with its own outputs (docs/serving.md).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use burn::prelude::Backend;
use s2s_data::TokenizerPair;
use s2s_generate::GenerationConfig;
use s2s_model::Seq2Seq;
use tokio::sync::oneshot;

use super::api::{generated_tokens, ApiError, Generated};
use super::metrics::Metrics;

/// What one request asks of the model thread.
#[derive(Debug)]
pub struct Job {
    /// Model input ids (specials included), one per input sentence.
    pub sources: Vec<Vec<u32>>,
    /// The resolved generation settings; requests decode together only when theirs are equal.
    pub config: GenerationConfig,
    /// Also compute each input's best output's cross-attention.
    pub output_attentions: bool,
    /// When the request was queued.
    pub queued_at: Instant,
    /// Where its outputs go, one per source in order.
    pub reply: oneshot::Sender<Result<Vec<Generated>, ApiError>>,
}

/// The requests waiting for the model thread (queued or held back for a later batch), bounded.
/// The count is the atomic (its bound is checked and taken in one step); `s2s_queue_depth` shows
/// it.
#[derive(Debug)]
pub struct Queue {
    waiting: AtomicUsize,
    max: usize,
    depth: prometheus::IntGauge,
}

impl Queue {
    /// A queue for at most `max` waiting requests, its depth shown in `depth`.
    pub fn new(max: usize, depth: prometheus::IntGauge) -> Self {
        Self {
            waiting: AtomicUsize::new(0),
            max,
            depth,
        }
    }

    /// Claims a place, or `None` when `max` requests are waiting.
    pub fn claim(&self) -> Option<()> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        self.depth.inc();
        Some(())
    }

    /// Gives a place back (its request is being decoded, or was dropped).
    pub fn release(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.depth.dec();
    }

    /// The most requests that may wait.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// How batches are formed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most sentences decoded together (a larger request is decoded alone).
    pub max_batch_size: usize,
    /// How long the oldest request of a batch waits for more.
    pub max_wait: Duration,
}

/// The model and what decoding needs beside it.
#[derive(Debug)]
pub struct Model<'a, B: Backend> {
    /// The run's model on its device.
    pub model: &'a Seq2Seq<B>,
    /// The run's tokenizers (detokenizing, attention labels).
    pub tokenizers: &'a TokenizerPair,
    /// The device the model is on.
    pub device: &'a B::Device,
}

/// Serves `jobs` until every sender is gone and every job answered.
pub fn run<B: Backend>(
    model: &Model<'_, B>,
    jobs: &Receiver<Job>,
    queue: &Queue,
    limits: Limits,
    metrics: &Metrics,
) {
    let mut held: VecDeque<Job> = VecDeque::new();
    while let Some(batch) = next_batch(jobs, &mut held, limits) {
        let (live, gone): (Vec<Job>, Vec<Job>) =
            batch.into_iter().partition(|job| !job.reply.is_closed());
        let started = Instant::now();
        for job in live.iter().chain(&gone) {
            queue.release();
            metrics
                .queue_wait_seconds
                .observe(started.duration_since(job.queued_at).as_secs_f64());
        }
        if !gone.is_empty() {
            tracing::debug!("{} request(s) dropped: their clients left", gone.len());
        }
        if !live.is_empty() {
            decode(model, live, metrics);
        }
    }
}

/// The next batch: the oldest waiting job, then every compatible job already waiting or arriving
/// before its `max_wait` is up, while the batch stays within `max_batch_size` sentences.
/// Incompatible jobs are held for later batches, in order. `None` once the queue is closed and
/// nothing is held.
fn next_batch(jobs: &Receiver<Job>, held: &mut VecDeque<Job>, limits: Limits) -> Option<Vec<Job>> {
    let first = match held.pop_front() {
        Some(job) => job,
        None => jobs.recv().ok()?,
    };
    let deadline = first.queued_at + limits.max_wait;
    let mut sentences = first.sources.len();
    let mut batch = vec![first];
    let fits = |job: &Job, batch: &[Job], sentences: usize| {
        job.config == batch[0].config && sentences + job.sources.len() <= limits.max_batch_size
    };
    let mut i = 0;
    while i < held.len() && sentences < limits.max_batch_size {
        if fits(&held[i], &batch, sentences) {
            if let Some(job) = held.remove(i) {
                sentences += job.sources.len();
                batch.push(job);
            }
        } else {
            i += 1;
        }
    }
    while sentences < limits.max_batch_size {
        let now = Instant::now();
        let next = if now < deadline {
            jobs.recv_timeout(deadline - now)
        } else {
            // Past the wait, what is already queued still joins.
            jobs.try_recv().map_err(|_| RecvTimeoutError::Timeout)
        };
        let Ok(job) = next else { break };
        if fits(&job, &batch, sentences) {
            sentences += job.sources.len();
            batch.push(job);
        } else {
            held.push_back(job);
        }
    }
    Some(batch)
}

/// Decodes `batch` as one call and answers every job; when the batch fails, each job is
/// decoded alone so that only the one that fails gets the error.
fn decode<B: Backend>(model: &Model<'_, B>, batch: Vec<Job>, metrics: &Metrics) {
    let started = Instant::now();
    let sentences: usize = batch.iter().map(|job| job.sources.len()).sum();
    match decode_jobs(model, &batch) {
        Ok(outputs) => {
            let tokens = outputs
                .iter()
                .flatten()
                .flat_map(|g| &g.hypotheses)
                .map(generated_tokens)
                .sum();
            metrics.record_batch(sentences, tokens, started.elapsed().as_secs_f64());
            tracing::debug!(
                "decoded {} request(s), {sentences} sentence(s), {tokens} tokens in {:.0} ms",
                batch.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
            for (job, outputs) in batch.into_iter().zip(outputs) {
                // A client that left meanwhile no longer waits for its answer.
                let _ = job.reply.send(Ok(outputs));
            }
        }
        Err(message) if batch.len() > 1 => {
            tracing::warn!(
                "a batch of {} requests failed ({message}); decoding each alone",
                batch.len()
            );
            for job in batch.into_iter().filter(|job| !job.reply.is_closed()) {
                decode(model, vec![job], metrics);
            }
        }
        Err(message) => {
            tracing::warn!("a request failed: {message}");
            for job in batch {
                let _ = job.reply.send(Err(ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: message.clone(),
                }));
            }
        }
    }
}

/// The outputs of every job of `batch` (all with the same settings), decoded in one call: each
/// source samples from the streams of its index in its own job, so a job gets what it gets
/// alone. A panic in the backend becomes an error message, and the server goes on.
fn decode_jobs<B: Backend>(
    model: &Model<'_, B>,
    batch: &[Job],
) -> Result<Vec<Vec<Generated>>, String> {
    let sources: Vec<Vec<u32>> = batch.iter().flat_map(|job| job.sources.clone()).collect();
    let keys: Vec<usize> = batch.iter().flat_map(|job| 0..job.sources.len()).collect();
    let config = &batch[0].config;
    let translations = guarded("decoding", || {
        s2s_infer::translate_ids_keyed(
            model.model,
            &model.tokenizers.target,
            &sources,
            &keys,
            config,
            model.device,
            &mut |_| {},
        )
    })?;
    let mut translations = translations.into_iter();
    let mut outputs = Vec::with_capacity(batch.len());
    for job in batch {
        let mut generated = Vec::with_capacity(job.sources.len());
        for source in &job.sources {
            let hypotheses = translations
                .next()
                .ok_or("the decoder returned fewer outputs than it was given sources")?;
            let attention = match (job.output_attentions, hypotheses.first()) {
                (true, Some(best)) => Some(guarded("computing the attention", || {
                    s2s_infer::attention_map(
                        model.model,
                        model.tokenizers,
                        source,
                        best,
                        model.device,
                    )
                })?),
                _ => None,
            };
            generated.push(Generated {
                hypotheses,
                attention,
            });
        }
        outputs.push(generated);
    }
    Ok(outputs)
}

/// `f`'s value, or one sentence: its error, or its panic (`what` failed: …), so that a backend
/// panic answers a 500 and the server goes on.
fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, s2s_infer::InferError>,
) -> Result<T, String> {
    s2s_infer::without_panic(f)
        .map_err(|panic| format!("{what} failed: {panic}"))?
        .map_err(|e| e.to_string())
}
