//! `s2s serve` through the real binary: every endpoint, batched answers equal to unbatched
//! ones, bad requests answered with one sentence while the server goes on, a full queue,
//! shutdown with requests in flight, and the page in headless Chromium (docs/serving.md).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{command, fixture, s2s, text, tiny_model};
use serde_json::{json, Value};

/// A tiny run trained once for every test of this file, in a directory kept for the process:
/// it memorises the eight pairs of tests/fixtures/bible-en-fr-eight.tsv, so every input has its
/// own output (an answer given to the wrong request shows).
fn run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let config = dir.join("tiny.toml");
        let pairs = fixture("bible-en-fr-eight.tsv");
        std::fs::write(
            &config,
            format!(
                r#"name = "tiny"
{}[data]
train = "{pairs}"
valid = "{pairs}"
max_source_len = 64
max_target_len = 48
[training]
seed = 3
epochs = 120
batch_size = 8
lr_factor = 1.0
warmup_steps = 30
label_smoothing = 0.0
keep_checkpoints = 1
metric_pairs = 0
[generation]
num_beams = 2
"#,
                tiny_model(0.0),
                pairs = pairs.display(),
            ),
        )
        .unwrap();
        let out = s2s(&["train", config.to_str().unwrap(), "--no-tui"], None, &dir);
        assert!(out.status.success(), "{}", text(&out.stderr));
        dir.join("runs/tiny")
    })
}

/// The eight sources the run memorised, and their translations.
fn pairs() -> (Vec<String>, Vec<String>) {
    std::fs::read_to_string(fixture("bible-en-fr-eight.tsv"))
        .unwrap()
        .lines()
        .map(|line| {
            let (source, target) = line.split_once('\t').unwrap();
            (source.to_string(), target.to_string())
        })
        .unzip()
}

/// Two answers are the same: equal texts, tokens and fields, scores equal to 1e-5 relative
/// (a batch of other lengths pads differently, which moves the last float digits).
fn assert_same(got: &Value, want: &Value, what: &str) {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0),
                "{what}: {a} != {b}"
            );
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{what}: {got} != {want}");
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                assert_same(a, b, &format!("{what}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(b), "{what}");
            for (key, a) in a {
                assert_same(a, &b[key], &format!("{what}.{key}"));
            }
        }
        _ => assert_eq!(got, want, "{what}"),
    }
}

/// A running `s2s serve` on a free port; killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// `s2s serve --run <tiny run> --port 0 extra…`, once it prints where it listens.
    fn start(extra: &[&str]) -> Self {
        let run = run().to_str().unwrap();
        let mut args = vec!["serve", "--run", run, "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = command(&args, run.as_ref()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(address) = line.trim().strip_prefix("listening on http://") else {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("no address on stdout: {line:?}\nstderr: {stderr}");
        };
        Self {
            address: address.to_string(),
            child,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// GET `path`: status, API version header, body.
    fn get(&self, path: &str) -> (u16, Option<String>, String) {
        answer(ureq::get(&self.url(path)).call())
    }

    /// POST `body` to /generate: status and the parsed JSON answer.
    fn generate(&self, body: &str) -> (u16, Value) {
        let (status, _, value) = self.post(body);
        (status, value)
    }

    /// POST `body` to /generate: status, `Retry-After` header and the parsed JSON answer.
    fn post(&self, body: &str) -> (u16, Option<String>, Value) {
        let response = response(
            ureq::post(&self.url("/generate"))
                .set("content-type", "application/json")
                .send_string(body),
        );
        let status = response.status();
        let retry_after = response.header("retry-after").map(str::to_string);
        let text = response.into_string().unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text:?} for {body}"));
        (status, retry_after, value)
    }

    /// A request the server refuses: its status, and the error's one sentence.
    fn refused(&self, body: &str) -> (u16, String) {
        let (status, value) = self.generate(body);
        assert!(status >= 400, "{body} was answered {status}: {value}");
        let message = error_sentence(&value).unwrap_or_else(|| panic!("no error: {value}"));
        (status, message)
    }

    /// Waits (up to a minute) until the metric `name` is at least `value`.
    fn wait_for_metric(&self, name: &str, value: f64) {
        let start = Instant::now();
        while self.metric(name) < value {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} never reached {value}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The value of the metric `name` (a line `name value`) in /metrics.
    fn metric(&self, name: &str) -> f64 {
        let (_, _, body) = self.get("/metrics");
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status, `s2s-api-version` header and body of a ureq answer, error statuses included.
fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Option<String>, String) {
    let response = response(result);
    let status = response.status();
    let version = response.header("s2s-api-version").map(str::to_string);
    (status, version, response.into_string().unwrap())
}

/// The response of a request, error statuses included.
fn response(result: Result<ureq::Response, ureq::Error>) -> ureq::Response {
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("no answer: {e}"),
    }
}

/// The documented error body: `{"error": one sentence, "error_type": …}`.
fn error_sentence(value: &Value) -> Option<String> {
    let message = value["error"].as_str()?;
    assert!(value["error_type"].is_string(), "{value}");
    assert!(
        !message.contains('\n') && !message.contains("panicked") && !message.is_empty(),
        "{message:?}"
    );
    Some(message.to_string())
}

fn body(inputs: Value, parameters: Value) -> String {
    json!({ "inputs": inputs, "parameters": parameters }).to_string()
}

/// `s2s generate --run <tiny run> args…` over `lines`: one output line per input.
fn cli_outputs(lines: &[String], args: &[&str]) -> Vec<String> {
    let run = run().to_str().unwrap();
    let mut all = vec!["generate", "--run", run];
    all.extend_from_slice(args);
    let out = s2s(&all, Some(&(lines.join("\n") + "\n")), run.as_ref());
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn every_endpoint_answers() {
    let server = Server::start(&[]);

    let (status, version, health) = server.get("/health");
    assert_eq!((status, version.as_deref()), (200, Some("1")));
    assert_eq!(
        serde_json::from_str::<Value>(&health).unwrap(),
        json!({"status": "ok"})
    );

    let (status, _, info) = server.get("/info");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["api_version"], 1);
    assert_eq!(info["backend"], "ndarray");
    assert_eq!(info["task"], "translation");
    assert_eq!(info["max_source_len"], 64);
    assert_eq!(info["max_target_positions"], 64);
    assert_eq!(info["model"]["family"], "transformer");
    assert!(
        info["model"]["parameters"].as_u64().unwrap() > 10_000,
        "{info}"
    );
    assert!(info["source_vocab_size"].as_u64().unwrap() > 100, "{info}");
    assert_eq!(info["generation"]["num_beams"], 2);
    assert_eq!(info["limits"]["max_batch_size"], 32);

    let (status, _, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("<textarea") && page.contains("/generate"),
        "{page}"
    );

    // One sentence: the run's defaults (beam search of width 2), as `s2s generate` decodes it:
    // the memorised translation.
    let (sources, targets) = pairs();
    let expected = cli_outputs(&sources[..2], &[]);
    assert_eq!(expected, targets[..2]);
    let (status, one) = server.generate(&json!({ "inputs": sources[0] }).to_string());
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["generated_text"], expected[0].as_str(), "{one}");
    let sequence = &one["sequences"][0];
    assert_eq!(one["sequences"].as_array().unwrap().len(), 1);
    assert_eq!(sequence["generated_text"], one["generated_text"]);
    assert!(sequence["score"].as_f64().unwrap() < 0.0, "{one}");
    assert!(sequence["log_prob"].as_f64().unwrap() < 0.0, "{one}");
    assert!(["eos_token", "length"].contains(&sequence["finish_reason"].as_str().unwrap()));
    assert!(sequence.get("tokens").is_none() && one.get("attentions").is_none());

    // A list gives a list, in order; details and attentions on request.
    let parameters = json!({"details": true, "output_attentions": true});
    let (status, many) = server.generate(&body(json!(&sources[..2]), parameters));
    assert_eq!(status, 200, "{many}");
    let many = many.as_array().unwrap();
    assert_eq!(many.len(), 2);
    for (output, expected) in many.iter().zip(&expected) {
        assert_eq!(output["generated_text"], expected.as_str());
        let tokens = output["sequences"][0]["tokens"].as_array().unwrap();
        let finished = output["sequences"][0]["finish_reason"] == "eos_token";
        assert_eq!(
            output["sequences"][0]["generated_tokens"].as_u64().unwrap() as usize,
            tokens.len() + usize::from(finished)
        );
        let attentions = &output["attentions"];
        let weights = attentions["weights"].as_array().unwrap();
        let source_tokens = attentions["source_tokens"].as_array().unwrap();
        assert_eq!(
            weights.len(),
            attentions["target_tokens"].as_array().unwrap().len()
        );
        for row in weights {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), source_tokens.len());
            let sum: f64 = row.iter().map(|w| w.as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-3, "a row of attention sums to {sum}");
        }
    }

    // Parameters override the run's defaults as the flags do: greedy with num_beams 1.
    let greedy = cli_outputs(&sources[2..3], &["--num-beams", "1"]);
    let (_, one) = server.generate(&body(json!(sources[2]), json!({"num_beams": 1})));
    assert_eq!(one["generated_text"], greedy[0].as_str());

    let (status, _, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    for name in [
        "s2s_requests_total{status=\"200\"}",
        "s2s_request_duration_seconds_bucket",
        "s2s_queue_wait_seconds_bucket",
        "s2s_queue_depth 0",
        "s2s_batch_size_bucket",
        "s2s_batches_total 3",
        "s2s_generated_tokens_total",
        "s2s_decode_seconds_total",
        "s2s_tokens_per_second",
    ] {
        assert!(metrics.contains(name), "no {name} in {metrics}");
    }
    // 1 + 2 + 1 sentences in three batches
    assert_eq!(server.metric("s2s_batch_size_sum"), 4.0);
    assert!(server.metric("s2s_generated_tokens_total") >= 4.0);
}

#[test]
fn batched_answers_equal_unbatched_ones() {
    // Long enough a wait that concurrent requests meet in one batch.
    let server = Server::start(&["--max-wait-ms", "300"]);
    let (sources, _) = pairs();
    let sources = &sources;
    let settings = [
        json!({}),
        json!({"num_beams": 3, "num_return_sequences": 2, "length_penalty": 0.6}),
        json!({"num_beams": 1}),
        json!({"do_sample": true, "seed": 5, "num_return_sequences": 2, "top_k": 20}),
    ];
    // Alone, one after the other.
    let mut alone = Vec::new();
    for parameters in &settings {
        for verse in sources {
            let (status, value) = server.generate(&body(json!(verse), parameters.clone()));
            assert_eq!(status, 200, "{value}");
            alone.push(value);
        }
    }
    let batches_alone = server.metric("s2s_batches_total");
    assert_eq!(batches_alone, alone.len() as f64);

    // All at once, from one thread per request.
    let together: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = settings
            .iter()
            .flat_map(|parameters| sources.iter().map(move |verse| (parameters, verse)))
            .map(|(parameters, verse)| {
                let server = &server;
                scope.spawn(move || server.generate(&body(json!(verse), parameters.clone())))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (status, value) = h.join().unwrap();
                assert_eq!(status, 200, "{value}");
                value
            })
            .collect()
    });
    for (i, (together, alone)) in together.iter().zip(&alone).enumerate() {
        assert_same(together, alone, &format!("request {i} batched"));
    }
    // They were batched: fewer batches than requests, and more than one sentence per batch.
    let batches = server.metric("s2s_batches_total") - batches_alone;
    assert!(
        batches < alone.len() as f64,
        "{batches} batches for {} requests",
        alone.len()
    );

    // A request of several sentences equals its sentences sent alone (sampling included: each
    // input's stream is keyed by its index in its own request).
    for (i, parameters) in settings.iter().enumerate() {
        let (status, list) = server.generate(&body(json!(sources[..1]), parameters.clone()));
        assert_eq!(status, 200);
        assert_same(&list[0], &alone[i * sources.len()], "a list of one");
    }
    // Requests of several sentences of different lengths, batched with each other: each gets
    // what it gets alone, sampling included.
    let lists: Vec<Vec<String>> = (0..4).map(|i| sources[i..i + 2 + i % 2].to_vec()).collect();
    for parameters in [&settings[0], &settings[3]] {
        let alone: Vec<Value> = lists
            .iter()
            .map(|list| server.generate(&body(json!(list), parameters.clone())).1)
            .collect();
        let before = server.metric("s2s_batches_total");
        let together: Vec<Value> = std::thread::scope(|scope| {
            let handles: Vec<_> = lists
                .iter()
                .map(|list| {
                    let server = &server;
                    scope.spawn(move || server.generate(&body(json!(list), parameters.clone())).1)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(server.metric("s2s_batches_total") - before < lists.len() as f64);
        for (i, (together, alone)) in together.iter().zip(&alone).enumerate() {
            assert_same(together, alone, &format!("list {i} batched with others"));
        }
    }
    let (_, list) = server.generate(&body(json!(sources), settings[1].clone()));
    let list = list.as_array().unwrap();
    for (i, (got, alone)) in list.iter().zip(&alone[sources.len()..]).enumerate() {
        assert_same(got, alone, &format!("inputs[{i}] of one request"));
    }
}

#[test]
fn bad_requests_get_one_sentence_and_the_server_goes_on() {
    let server = Server::start(&["--max-inputs", "4", "--max-body-bytes", "4096"]);
    let long_input = ["Jesus wept."; 30].join(" ");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "{\"inputs\": ".into(),
            400,
            "the request body is not valid JSON",
        ),
        ("not json".into(), 400, "the request body is not valid JSON"),
        ("{}".into(), 400, "missing field `inputs`"),
        (
            body(json!("Jesus wept."), json!({"beams": 4})),
            400,
            "parameters.beams: unknown field `beams`, expected one of `max_new_tokens`",
        ),
        (
            body(json!("Jesus wept."), json!({"num_beams": "4"})),
            400,
            "parameters.num_beams: invalid type: string \"4\"",
        ),
        (
            json!({"inputs": "Jesus wept.", "stream": true}).to_string(),
            400,
            "unknown field `stream`",
        ),
        (body(json!(""), json!({})), 400, "inputs is empty"),
        (
            body(json!(["a", " "]), json!({})),
            400,
            "inputs[1] is empty",
        ),
        (body(json!([]), json!({})), 400, "inputs is an empty list"),
        (
            body(json!(5), json!({})),
            400,
            "inputs must be a string or a list of strings, not a number",
        ),
        (
            body(json!(["a", 1]), json!({})),
            400,
            "inputs[1] must be a string, not a number",
        ),
        (
            body(json!(["a", "b", "c", "d", "e"]), json!({})),
            400,
            "inputs holds 5 sentences, more than this server takes in one request (4, \
             --max-inputs)",
        ),
        (
            body(json!(long_input), json!({})),
            400,
            "tokens long, more than the model's 64 (data.max_source_len); shorten it or set \
             \"truncate\": true",
        ),
        (
            body(json!("Jesus wept."), json!({"max_new_tokens": 1000})),
            400,
            "max_new_tokens (1000) exceeds model.max_positions (64) (the request's parameters \
             applied to the run's [generation] defaults); set \"max_new_tokens\" in \"parameters\"",
        ),
        (
            body(
                json!("Jesus wept."),
                json!({"do_sample": true, "num_beams": 4}),
            ),
            400,
            "\"do_sample\": true cannot be combined with \"num_beams\": 4 (beam sampling is \
             not supported); pass \"num_beams\": 1 to sample, or drop \"do_sample\" for beam \
             search",
        ),
        (
            body(
                json!("Jesus wept."),
                json!({"temperature": 0.5, "num_beams": 1}),
            ),
            400,
            "\"temperature\" only applies with sampling; add \"do_sample\": true",
        ),
        (
            body(
                json!("Jesus wept."),
                json!({"do_sample": true, "top_p": 1.5}),
            ),
            400,
            "top_p must be in (0, 1], got 1.5 (the request's parameters applied to the run's \
             [generation] defaults); set \"top_p\" in \"parameters\"",
        ),
        (
            body(json!("Jesus wept."), json!({"num_beams": 17})),
            400,
            "\"num_beams\": 17 is more than this server decodes per sentence (16, --max-beams)",
        ),
        (
            body(json!("x".repeat(5000)), json!({})),
            413,
            "the request body is larger than this server takes (4096 bytes, --max-body-bytes)",
        ),
    ];
    for (request, status, expected) in &cases {
        let (got, message) = server.refused(request);
        assert_eq!(got, *status, "{request}: {message}");
        assert!(
            message.contains(expected),
            "{request}: {message:?} lacks {expected:?}"
        );
        // still serving
        assert_eq!(server.get("/health").0, 200);
    }
    // truncate cuts instead of refusing
    let (status, value) = server.generate(&body(json!(long_input), json!({"truncate": true})));
    assert_eq!(status, 200, "{value}");

    for (path, status) in [("/nope", 404), ("/generate", 405)] {
        let (got, version, text) = server.get(path);
        assert_eq!((got, version.as_deref()), (status, Some("1")), "{text}");
        let message = error_sentence(&serde_json::from_str(&text).unwrap()).unwrap();
        assert!(message.contains(path), "{message}");
    }

    let (status, value) = server.generate(&body(json!("Jesus wept."), json!({})));
    assert_eq!(status, 200, "{value}");
    assert_eq!(server.metric("s2s_queue_depth"), 0.0);
    let (_, _, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("s2s_requests_total{status=\"400\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("s2s_requests_total{status=\"413\"}"),
        "{metrics}"
    );
}

/// A request that keeps the model busy for a while: 16 sentences, beam search of 4 over 40 to
/// 48 tokens each.
fn heavy() -> String {
    let sentences: Vec<String> = pairs().0.into_iter().cycle().take(16).collect();
    body(
        json!(sentences),
        json!({"num_beams": 4, "max_new_tokens": 48, "min_new_tokens": 40}),
    )
}

#[test]
fn a_client_that_leaves_is_not_decoded_and_the_server_goes_on() {
    let server = Server::start(&["--max-batch-size", "1", "--max-wait-ms", "0"]);
    // A client that sends half a body and goes.
    let mut half = TcpStream::connect(&server.address).unwrap();
    write!(
        half,
        "POST /generate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: 200\r\n\r\n{{\"inputs\": "
    )
    .unwrap();
    drop(half);
    std::thread::scope(|scope| {
        // Keep the model busy, then queue a whole request behind it and leave.
        let busy = scope.spawn(|| server.generate(&heavy()));
        server.wait_for_metric("s2s_queue_wait_seconds_count", 1.0);
        let whole = body(json!(pairs().0), json!({"num_beams": 4}));
        let mut gone = TcpStream::connect(&server.address).unwrap();
        write!(
            gone,
            "POST /generate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{whole}",
            whole.len()
        )
        .unwrap();
        server.wait_for_metric("s2s_queue_depth", 1.0);
        drop(gone);
        assert_eq!(busy.join().unwrap().0, 200);
    });
    let (status, value) = server.generate(&body(json!("Jesus wept."), json!({})));
    assert_eq!(status, 200, "{value}");
    // The busy request and the last one were decoded; the one whose client left was not.
    assert_eq!(server.metric("s2s_batches_total"), 2.0);
    assert_eq!(server.metric("s2s_queue_depth"), 0.0);
}

#[test]
fn a_full_queue_answers_503() {
    // One request decoded at a time, one waiting: the rest of a burst is turned away.
    let server = Server::start(&[
        "--max-queue",
        "1",
        "--max-batch-size",
        "1",
        "--max-wait-ms",
        "0",
    ]);
    let heavy = heavy();
    let answers: Vec<(u16, Option<String>, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| scope.spawn(|| server.post(&heavy)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy: Vec<&(u16, Option<String>, Value)> = answers
        .iter()
        .filter(|(status, _, _)| *status == 503)
        .collect();
    assert!(!busy.is_empty(), "no request was turned away");
    for (_, retry_after, value) in &busy {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(value["error_type"], "overloaded");
        assert_eq!(
            value["error"],
            "the server is busy: 1 requests are already waiting; retry later"
        );
    }
    assert!(
        answers
            .iter()
            .all(|(status, _, _)| *status == 200 || *status == 503),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(status, _, _)| *status == 200));
    // and it serves again once the burst is over, every place given back
    assert_eq!(
        server.generate(&body(json!("Jesus wept."), json!({}))).0,
        200
    );
    assert_eq!(server.metric("s2s_queue_depth"), 0.0);
}

#[test]
fn shutdown_answers_the_requests_in_flight() {
    let mut server = Server::start(&["--max-batch-size", "1", "--max-wait-ms", "0"]);
    let heavy = heavy();
    let expected = server.generate(&heavy);
    assert_eq!(expected.0, 200);
    let answers = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| server.generate(&heavy)))
            .collect();
        // Signal once three of them wait behind the one being decoded.
        server.wait_for_metric("s2s_queue_depth", 3.0);
        let pid = server.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for answer in &answers {
        assert_eq!(answer, &expected);
    }
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(
        TcpStream::connect(&server.address).is_err(),
        "still listening"
    );
}

/// Where Debian's Chromium is, if installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

#[test]
fn the_page_shows_outputs_and_attention_in_chromium() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("S2S_REQUIRE_CHROMIUM").is_none(),
            "S2S_REQUIRE_CHROMIUM is set but Chromium is not installed"
        );
        eprintln!("note: the page test is SKIPPED: no Chromium (apt-get install chromium)");
        return;
    };
    let server = Server::start(&[]);
    let (sources, _) = pairs();
    let (_, expected) = server.generate(&body(json!(sources[..2]), json!({})));
    let query: String = sources[..2]
        .join("\n")
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=30000",
            "--dump-dom",
            &server.url(&format!("/?text={query}&autorun=1")),
        ])
        .output()
        .unwrap();
    let dom = text(&out.stdout);
    assert!(
        dom.contains("data-state=\"done\""),
        "{}\n{dom}",
        text(&out.stderr)
    );
    for output in expected.as_array().unwrap() {
        let escaped = output["generated_text"]
            .as_str()
            .unwrap()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            dom.contains(&escaped),
            "{escaped:?} is not on the page:\n{dom}"
        );
    }
    assert_eq!(dom.matches("class=\"output\"").count(), 2, "{dom}");
    assert!(dom.contains("class=\"attention"), "no heat-map:\n{dom}");
}

#[test]
fn bad_flags_and_a_taken_port_are_one_sentence() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = run().to_str().unwrap();
    let cwd: &Path = run.as_ref();
    for (args, expected) in [
        (
            vec!["serve", "--run", run, "--port", &port],
            format!("cannot listen on 127.0.0.1:{port}: "),
        ),
        (
            vec!["serve", "--run", run, "--max-batch-size", "0"],
            "--max-batch-size must be at least 1".to_string(),
        ),
        (
            vec!["serve", "--run", run, "--max-wait-ms", "60001"],
            "--max-wait-ms must be at most 60000 (one minute)".to_string(),
        ),
        (
            vec!["serve", "--run", "no/such/run"],
            "no/such/run is not a run directory".to_string(),
        ),
    ] {
        let out = s2s(&args, None, cwd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(&expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
