//! The `/generate` request and response (docs/serving.md, API version 1) and the server's JSON
//! errors: parsing a body into what the model thread decodes, and its outputs back into JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use s2s_infer::{AttentionMap, Translation};

use crate::generation_args::GenerationArgs;

/// The version of the API in docs/serving.md, sent as the `s2s-api-version` header and in
/// `/info`.
pub const API_VERSION: u32 = 1;

/// A refused or failed request: its status and one sentence.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// One sentence for the client.
    pub message: String,
}

impl ApiError {
    /// A `400`: the request cannot be served as it is.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// The `error_type` of docs/serving.md.
    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "validation",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::SERVICE_UNAVAILABLE => "overloaded",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            _ => "generation",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_type: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(ErrorBody {
            error: &self.message,
            error_type: self.kind(),
        });
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// The body of `POST /generate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    /// One sentence or a list of them (checked by [`inputs`]).
    inputs: serde_json::Value,
    #[serde(default)]
    parameters: Parameters,
}

/// The request's generation parameters: HF `generate()`'s names (TGI's where they share one),
/// each overriding the run's `[generation]` as `s2s generate`'s flag of the same name does,
/// and what the response should hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    max_new_tokens: Option<usize>,
    min_new_tokens: Option<usize>,
    num_beams: Option<usize>,
    length_penalty: Option<f64>,
    early_stopping: Option<bool>,
    num_return_sequences: Option<usize>,
    do_sample: Option<bool>,
    temperature: Option<f64>,
    top_k: Option<usize>,
    top_p: Option<f64>,
    seed: Option<u64>,
    no_repeat_ngram_size: Option<usize>,
    /// Cut an input longer than the model's `max_source_len` instead of refusing it.
    #[serde(default)]
    pub truncate: bool,
    /// Each output's tokens in the response.
    #[serde(default)]
    pub details: bool,
    /// The best output's cross-attention in the response.
    #[serde(default)]
    pub output_attentions: bool,
}

impl Parameters {
    /// The generation settings as `s2s generate`'s flags would give them.
    pub fn generation_args(&self) -> GenerationArgs {
        GenerationArgs {
            num_beams: self.num_beams,
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping,
            num_return_sequences: self.num_return_sequences,
            do_sample: self.do_sample,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            max_new_tokens: self.max_new_tokens,
            min_new_tokens: self.min_new_tokens,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            batch_size: None,
        }
    }
}

/// A parsed `/generate` body: the sentences, whether they came as a list, the parameters.
#[derive(Debug)]
pub struct Request {
    /// The input sentences.
    pub inputs: Vec<String>,
    /// `inputs` was a list (the response is then a list too).
    pub batched: bool,
    /// The generation parameters.
    pub parameters: Parameters,
}

impl Request {
    /// How messages name input `i`: `inputs[i]` in a list, `inputs` alone.
    pub fn input_name(&self, i: usize) -> String {
        input_name(self.batched, i)
    }
}

fn input_name(batched: bool, i: usize) -> String {
    if batched {
        format!("inputs[{i}]")
    } else {
        "inputs".to_string()
    }
}

/// Tokens generated for `translation`, `</s>` included when it finished.
pub fn generated_tokens(translation: &Translation) -> usize {
    translation.ids.len() + usize::from(translation.finished)
}

/// Parses a `/generate` body; a refusal names the field (`parameters.num_beams: invalid type:
/// string "4", expected usize`).
///
/// # Errors
/// [`ApiError::invalid`] for a body that is not JSON, an unknown field, a wrong type, inputs that
/// are not a string or a list of strings, no input, an empty input, more than `max_inputs`.
pub fn parse(body: &[u8], max_inputs: usize) -> Result<Request, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let request: GenerateRequest = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!("the request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::invalid(format!("invalid request: {inner}"))
        } else {
            ApiError::invalid(format!("{path}: {inner}"))
        }
    })?;
    let (inputs, batched) = inputs(request.inputs)?;
    if inputs.len() > max_inputs {
        return Err(ApiError::invalid(format!(
            "inputs holds {} sentences, more than this server takes in one request ({max_inputs}, \
             --max-inputs)",
            inputs.len()
        )));
    }
    Ok(Request {
        inputs,
        batched,
        parameters: request.parameters,
    })
}

/// `inputs` as sentences, and whether it was a list.
fn inputs(value: serde_json::Value) -> Result<(Vec<String>, bool), ApiError> {
    let (inputs, batched) = match value {
        serde_json::Value::String(text) => (vec![text], false),
        serde_json::Value::Array(items) => {
            let texts = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    serde_json::Value::String(text) => Ok(text),
                    other => Err(ApiError::invalid(format!(
                        "inputs[{i}] must be a string, not {}",
                        json_kind(&other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            (texts, true)
        }
        other => {
            return Err(ApiError::invalid(format!(
                "inputs must be a string or a list of strings, not {}",
                json_kind(&other)
            )))
        }
    };
    if inputs.is_empty() {
        return Err(ApiError::invalid("inputs is an empty list"));
    }
    for (i, text) in inputs.iter().enumerate() {
        if text.trim().is_empty() {
            return Err(ApiError::invalid(format!(
                "{} is empty",
                input_name(batched, i)
            )));
        }
    }
    Ok((inputs, batched))
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// What the model thread returns for one input: its hypotheses and, when asked, the best one's
/// cross-attention.
#[derive(Clone, Debug)]
pub struct Generated {
    /// Best first for beam search, in draw order for sampling.
    pub hypotheses: Vec<Translation>,
    /// The best hypothesis's cross-attention (`output_attentions`).
    pub attention: Option<AttentionMap>,
}

/// One input's entry in the response.
#[derive(Debug, Serialize)]
pub struct Output {
    generated_text: String,
    sequences: Vec<Sequence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attentions: Option<Attentions>,
}

#[derive(Debug, Serialize)]
struct Sequence {
    generated_text: String,
    score: f64,
    log_prob: f64,
    generated_tokens: usize,
    finish_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<Vec<Token>>,
}

#[derive(Debug, Serialize)]
struct Token {
    id: u32,
    text: String,
}

#[derive(Debug, Serialize)]
struct Attentions {
    source_tokens: Vec<String>,
    target_tokens: Vec<String>,
    /// `[target][source]`, the mean over layers and heads.
    weights: Vec<Vec<f32>>,
}

impl Output {
    /// The response entry of one input; `details` adds each sequence's tokens.
    pub fn new(generated: Generated, details: bool) -> Self {
        let sequences: Vec<Sequence> = generated
            .hypotheses
            .into_iter()
            .map(|t| Sequence {
                generated_tokens: generated_tokens(&t),
                finish_reason: if t.finished { "eos_token" } else { "length" },
                tokens: details.then(|| {
                    t.ids
                        .iter()
                        .zip(&t.tokens)
                        .map(|(&id, text)| Token {
                            id,
                            text: text.clone(),
                        })
                        .collect()
                }),
                generated_text: t.text,
                score: t.score,
                log_prob: t.log_prob,
            })
            .collect();
        Self {
            generated_text: sequences
                .first()
                .map(|s| s.generated_text.clone())
                .unwrap_or_default(),
            sequences,
            attentions: generated.attention.map(|map| Attentions {
                source_tokens: map.source_tokens,
                target_tokens: map.target_tokens,
                weights: map.average,
            }),
        }
    }
}
