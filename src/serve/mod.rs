//! `s2s serve`: a trained run behind HTTP (docs/serving.md). The model lives on one thread
//! (the one the backend was dispatched on) that decodes batches of queued requests
//! ([`batcher`]); axum on a tokio runtime in another thread parses, checks and queues them
//! ([`http`]).

mod api;
mod batcher;
mod http;
mod metrics;

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use burn::module::Module;
use burn::prelude::Backend;
use clap::Args;
use s2s_infer::{ExperimentConfig, RunDir};

use crate::backend::{dispatch_infer, BackendKind, InferTask};
use crate::common::{read_run, run_backend};

/// The longest `--max-wait-ms`.
const MAX_WAIT_MS: u64 = 60_000;

/// The flags of `s2s serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Run directory written by `s2s train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Backend to decode on (plain, without autodiff). Default: the run's training.backend.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Address to listen on; 0.0.0.0 exposes the server to the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Most sentences decoded together.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_batch_size: usize,
    /// How long, in milliseconds, the first request of a batch waits for more.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub max_wait_ms: u64,
    /// Requests that may wait for the model; one more is answered 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_queue: usize,
    /// Most sentences in one request.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_inputs: usize,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Most beams (beam search) or samples (sampling) one sentence may ask for.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_beams: usize,
    /// Seconds the requests in flight get to finish after Ctrl-C or SIGTERM; then, or at a
    /// second signal, the server closes what is left and exits.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub shutdown_timeout: u64,
    /// CPU threads of the CPU backends (0: every core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
}

/// Serves the run until Ctrl-C or SIGTERM, then answers what it has received and returns.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    for (value, flag) in [
        (args.max_batch_size, "--max-batch-size"),
        (args.max_queue, "--max-queue"),
        (args.max_inputs, "--max-inputs"),
        (args.max_body_bytes, "--max-body-bytes"),
        (args.max_beams, "--max-beams"),
    ] {
        if value == 0 {
            bail!("{flag} must be at least 1");
        }
    }
    if args.max_wait_ms > MAX_WAIT_MS {
        bail!("--max-wait-ms must be at most {MAX_WAIT_MS} (one minute)");
    }
    let (run, config) = read_run(&args.run)?;
    let kind = run_backend(args.backend, &config)?;
    crate::backend::set_threads(args.threads)?;
    dispatch_infer(
        kind,
        ServeTask {
            run,
            config,
            kind,
            args,
        },
    )
}

struct ServeTask {
    run: RunDir,
    config: ExperimentConfig,
    kind: BackendKind,
    args: ServeArgs,
}

impl InferTask for ServeTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let Self {
            run,
            config,
            kind,
            args,
        } = self;
        let (tokenizers, model) = run.load_model::<B>(&config, &device)?;
        let metrics = metrics::Metrics::new(args.max_batch_size)
            .map_err(|e| anyhow::anyhow!("cannot register the metrics: {e}"))?;
        let listener = TcpListener::bind((args.host.as_str(), args.port))
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        listener
            .set_nonblocking(true)
            .context("cannot make the listening socket non-blocking")?;
        let address = listener
            .local_addr()
            .context("cannot read the bound address")?;

        let vocab = tokenizers.vocab_sizes();
        let info = serde_json::json!({
            "api_version": api::API_VERSION,
            "s2s_version": env!("CARGO_PKG_VERSION"),
            "run": run.path().display().to_string(),
            "task": config.data.task,
            "backend": kind,
            "model": {
                "family": model.family(),
                "parameters": model.num_params(),
                "config": &config.model,
            },
            "source_vocab_size": vocab.source,
            "target_vocab_size": vocab.target,
            "max_source_len": config.data.max_source_len,
            "max_target_len": config.data.max_target_len,
            "max_target_positions": model.max_target_positions(),
            "generation": &config.generation,
            "limits": {
                "max_batch_size": args.max_batch_size,
                "max_wait_ms": args.max_wait_ms,
                "max_queue": args.max_queue,
                "max_inputs": args.max_inputs,
                "max_body_bytes": args.max_body_bytes,
                "max_beams": args.max_beams,
            },
        });
        let (jobs, queued) = std::sync::mpsc::channel();
        let queue = Arc::new(batcher::Queue::new(
            args.max_queue,
            metrics.queue_depth.clone(),
        ));
        let shared = Arc::new(http::Shared {
            jobs,
            queue: Arc::clone(&queue),
            tokenizers: tokenizers.clone(),
            config,
            max_batch_size: args.max_batch_size,
            max_beams: args.max_beams,
            max_inputs: args.max_inputs,
            max_body_bytes: args.max_body_bytes,
            info,
            metrics: metrics.clone(),
        });
        // The HTTP side; when it returns (after a signal and every response), the router and
        // with it the last sender to the model thread are gone, which ends the loop below.
        let (ready, started) = std::sync::mpsc::channel();
        let shutdown_timeout = Duration::from_secs(args.shutdown_timeout);
        let server = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .context("cannot start the HTTP runtime")?;
                runtime.block_on(async move {
                    let mut signals =
                        http::Signals::new().context("cannot listen for Ctrl-C and SIGTERM")?;
                    let listener =
                        tokio::net::TcpListener::from_std(listener).context("cannot listen")?;
                    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
                    let server = std::future::IntoFuture::into_future(
                        axum::serve(listener, http::router(shared)).with_graceful_shutdown(
                            async move {
                                let _ = stopping.await;
                            },
                        ),
                    );
                    let _ = ready.send(());
                    tokio::pin!(server);
                    tokio::select! {
                        result = &mut server => return result.context("the HTTP server failed"),
                        () = signals.next() => {}
                    }
                    tracing::info!("shutting down: answering the requests already received");
                    let _ = stop.send(());
                    tokio::select! {
                        result = &mut server => result.context("the HTTP server failed"),
                        () = tokio::time::sleep(shutdown_timeout) => {
                            tracing::warn!(
                                "requests still open after {} s (--shutdown-timeout): closing them",
                                shutdown_timeout.as_secs()
                            );
                            Ok(())
                        }
                        () = signals.next() => {
                            tracing::warn!("second signal: closing the open requests");
                            Ok(())
                        }
                    }
                })
            })
            .context("cannot start the HTTP thread")?;
        if started.recv().is_err() {
            // The HTTP thread ended before serving: its error says why.
            return match server.join() {
                Ok(result) => result,
                Err(_) => bail!("the HTTP thread panicked"),
            };
        }
        tracing::info!(
            "serving {} on {kind} (batches of up to {} sentences, {} ms wait)",
            run.path().display(),
            args.max_batch_size,
            args.max_wait_ms
        );
        {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "listening on http://{address}")
                .and_then(|()| stdout.flush())
                .context("cannot write to standard output")?;
        }
        let model = batcher::Model {
            model: &model,
            tokenizers: &tokenizers,
            device: &device,
        };
        let limits = batcher::Limits {
            max_batch_size: args.max_batch_size,
            max_wait: Duration::from_millis(args.max_wait_ms),
        };
        batcher::run(&model, &queued, &queue, limits, &metrics);
        match server.join() {
            Ok(result) => result,
            Err(_) => bail!("the HTTP thread panicked"),
        }
    }
}
