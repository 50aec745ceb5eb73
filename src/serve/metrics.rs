//! The server's Prometheus metrics (`GET /metrics`, text format 0.0.4), through the
//! `prometheus` crate.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric of docs/serving.md, registered in one registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by HTTP status.
    pub requests: IntCounterVec,
    /// Seconds from receiving a `/generate` request to answering it.
    pub request_seconds: Histogram,
    /// Seconds from queueing a request to the start of its batch's decode.
    pub queue_wait_seconds: Histogram,
    /// Requests waiting for the model.
    pub queue_depth: IntGauge,
    /// Sentences per decoded batch.
    pub batch_size: Histogram,
    /// Decoded batches.
    pub batches: IntCounter,
    /// Tokens generated, `</s>` included.
    pub generated_tokens: IntCounter,
    /// Time spent decoding, in seconds.
    pub decode_seconds: prometheus::Counter,
    /// Generated tokens per second of the last batch.
    pub tokens_per_second: prometheus::Gauge,
}

/// Latency buckets in seconds, 1 ms to 60 s.
const SECONDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

impl Metrics {
    /// The metrics, with batch-size buckets up to `max_batch_size` (powers of two and itself).
    ///
    /// # Errors
    /// When a metric cannot be registered (a name registered twice: a bug).
    pub fn new(max_batch_size: usize) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("s2s_requests_total", "Requests answered, by HTTP status"),
            &["status"],
        )?;
        let request_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "s2s_request_duration_seconds",
                "Seconds from receiving a /generate request to answering it",
            )
            .buckets(SECONDS.to_vec()),
        )?;
        let queue_wait_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "s2s_queue_wait_seconds",
                "Seconds from queueing a request to the start of its batch's decode",
            )
            .buckets(SECONDS.to_vec()),
        )?;
        let queue_depth = IntGauge::new("s2s_queue_depth", "Requests waiting for the model")?;
        let mut sizes: Vec<f64> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
            .take_while(|&n| n < max_batch_size)
            .map(|n| n as f64)
            .collect();
        sizes.push(max_batch_size as f64);
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("s2s_batch_size", "Sentences per decoded batch").buckets(sizes),
        )?;
        let batches = IntCounter::new("s2s_batches_total", "Decoded batches")?;
        let generated_tokens = IntCounter::new(
            "s2s_generated_tokens_total",
            "Tokens generated, </s> included",
        )?;
        let decode_seconds =
            prometheus::Counter::new("s2s_decode_seconds_total", "Seconds spent decoding")?;
        let tokens_per_second = prometheus::Gauge::new(
            "s2s_tokens_per_second",
            "Generated tokens per second of the last decoded batch",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(queue_wait_seconds.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(batches.clone()))?;
        registry.register(Box::new(generated_tokens.clone()))?;
        registry.register(Box::new(decode_seconds.clone()))?;
        registry.register(Box::new(tokens_per_second.clone()))?;
        Ok(Self {
            registry,
            requests,
            request_seconds,
            queue_wait_seconds,
            queue_depth,
            batch_size,
            batches,
            generated_tokens,
            decode_seconds,
            tokens_per_second,
        })
    }

    /// One decoded batch of `sentences` sentences that generated `tokens` tokens in `seconds`.
    pub fn record_batch(&self, sentences: usize, tokens: usize, seconds: f64) {
        self.batches.inc();
        self.batch_size.observe(sentences as f64);
        self.generated_tokens.inc_by(tokens as u64);
        self.decode_seconds.inc_by(seconds);
        if seconds > 0.0 {
            self.tokens_per_second.set(tokens as f64 / seconds);
        }
    }

    /// Everything in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec fails only for metric families that cannot be written, which
        // this registry does not hold.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}
