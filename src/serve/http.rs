//! The HTTP side of `s2s serve`: axum routes, request checks, queueing to the model thread,
//! status metrics, graceful shutdown.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use s2s_data::TokenizerPair;
use s2s_generate::DecodeStrategy;
use s2s_infer::ExperimentConfig;
use tokio::sync::oneshot;

use super::api::{self, ApiError, Output, API_VERSION};
use super::batcher::{Job, Queue};
use super::metrics::Metrics;
use crate::generation_args::Spelling;

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    /// To the model thread.
    pub jobs: Sender<Job>,
    /// The bound on waiting requests.
    pub queue: Arc<Queue>,
    /// The run's tokenizers (inputs are tokenized here, off the model thread).
    pub tokenizers: TokenizerPair,
    /// The run's config (its `[generation]` defaults, `max_source_len`).
    pub config: ExperimentConfig,
    /// Sentences decoded together (the decode's `batch_size`).
    pub max_batch_size: usize,
    /// The most beams (and returned sequences) a request may ask for.
    pub max_beams: usize,
    /// Sentences per request.
    pub max_inputs: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// `GET /info`'s body.
    pub info: serde_json::Value,
    /// The metrics.
    pub metrics: Metrics,
}

type AppState = Arc<Shared>;

/// The server's routes (docs/serving.md).
pub fn router(shared: AppState) -> Router {
    let limit = shared.max_body_bytes;
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .route("/generate", post(generate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(shared.clone(), track))
        .with_state(shared)
}

/// Every response: the API version header, and counted by status.
async fn track(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("s2s-api-version", HeaderValue::from(API_VERSION));
    shared
        .metrics
        .requests
        .with_label_values(&[response.status().as_str()])
        .inc();
    response
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn info(State(shared): State<AppState>) -> Json<serde_json::Value> {
    Json(shared.info.clone())
}

async fn metrics(State(shared): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}

async fn not_found(request: Request) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "there is no {} (the routes are /, /health, /info, /metrics and POST /generate)",
            request.uri().path()
        ),
    }
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!(
            "{} does not take {} (POST /generate; GET for the others)",
            request.uri().path(),
            request.method()
        ),
    }
}

/// `POST /generate`.
async fn generate(State(shared): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let response = match generate_json(&shared, body).await {
        Ok(json) => Json(json).into_response(),
        Err(error) => error.into_response(),
    };
    shared
        .metrics
        .request_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn generate_json(
    shared: &Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Value, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body is larger than this server takes ({} bytes, --max-body-bytes)",
                shared.max_body_bytes
            )
        } else {
            format!("cannot read the request body: {}", rejection.body_text())
        };
        ApiError { status, message }
    })?;
    let request = api::parse(&body, shared.max_inputs)?;
    let mut config = request
        .parameters
        .generation_args()
        .resolve_as(&shared.config, Spelling::Json)
        .map_err(|e| ApiError::invalid(format!("{e:#}")))?;
    config.batch_size = shared.max_batch_size;
    // Each sentence decodes this many rows at once; unbounded, one request could take all the
    // memory (an abort, not a panic) or hold the model thread for minutes.
    let (rows, setting) = match config.strategy {
        DecodeStrategy::Beam { num_beams, .. } => (num_beams, "num_beams"),
        _ => (config.num_return_sequences(), "num_return_sequences"),
    };
    if rows > shared.max_beams {
        return Err(ApiError::invalid(format!(
            "\"{setting}\": {rows} is more than this server decodes per sentence ({}, \
             --max-beams)",
            shared.max_beams
        )));
    }
    let sources = tokenize(shared, &request)?;
    if shared.queue.claim().is_none() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "the server is busy: {} requests are already waiting; retry later",
                shared.queue.max()
            ),
        });
    }
    let (reply, answer) = oneshot::channel();
    let job = Job {
        sources,
        config,
        output_attentions: request.parameters.output_attentions,
        queued_at: Instant::now(),
        reply,
    };
    if shared.jobs.send(job).is_err() {
        shared.queue.release();
        return Err(stopped());
    }
    let generated = answer.await.map_err(|_| stopped())??;
    let details = request.parameters.details;
    let mut outputs = generated
        .into_iter()
        .map(|g| Output::new(g, details))
        .collect::<Vec<_>>();
    let json = if request.batched {
        serde_json::to_value(outputs)
    } else {
        serde_json::to_value(outputs.pop())
    };
    json.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("cannot write the response: {e}"),
    })
}

fn stopped() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "the model thread has stopped; the server is shutting down".into(),
    }
}

/// The model inputs of the request's sentences; one longer than `max_source_len` tokens is
/// refused, or cut with `truncate`.
fn tokenize(shared: &Shared, request: &api::Request) -> Result<Vec<Vec<u32>>, ApiError> {
    let max_len = shared.config.data.max_source_len;
    let tokenizer = &shared.tokenizers.source;
    request
        .inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let tokens = tokenizer.encode(text).map_err(|e| {
                ApiError::invalid(format!("cannot tokenize {}: {e}", request.input_name(i)))
            })?;
            // As `input_ids` builds a model input: the tokens, cut to leave room for the
            // specials when `truncate` allows it, then wrapped in them.
            let keep = max_len.saturating_sub(tokenizer.num_specials());
            if tokens.len() > keep && !request.parameters.truncate {
                return Err(ApiError::invalid(format!(
                    "{} is {} tokens long, more than the model's {max_len} (data.max_source_len); \
                     shorten it or set \"truncate\": true",
                    request.input_name(i),
                    tokens.len() + tokenizer.num_specials()
                )));
            }
            Ok(tokenizer.wrap(&tokens[..tokens.len().min(keep)]))
        })
        .collect()
}

/// Ctrl-C and SIGTERM, listened for from the moment this is made (so a signal right after the
/// server says it listens is not lost).
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; call inside the runtime.
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    pub fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next Ctrl-C or SIGTERM.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
