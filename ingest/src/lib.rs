//! kevents ingest: applications' own events — a deploy tool's "payment-gateway
//! failover started", an operator's, a batch job's — into the pipeline beside the
//! cluster's. An HTTP API writes them to the raw topic as ordinary raw records of
//! a named source (`kevents-ingest/<instance>`, see
//! [`schemas::records::INGEST_INSTANCE_PREFIX`] for why a named source and how
//! the processor and the collector's cursor treat it), so the processor
//! classifies, correlates and stores them like any other event.
//!
//! Guarantee: a 2xx means every event of the request is stored in Kafka; a batch
//! is checked whole before anything is sent; a retry of the same request is
//! stored once (deterministic ids). See [`publish`] for the one window (a 503
//! after a partial write) and why a retry closes it.
//!
//! Layout (the data flows top to bottom):
//! - [`config`]: `IngestConfig` and its validation.
//! - [`auth`]: bearer tokens from a file, constant-time comparison, scopes.
//! - [`ratelimit`]: the per-token token bucket (429 with `Retry-After`).
//! - [`events`]: `POST /v1/events`, Kubernetes Event JSON → events.
//! - [`otlp`]: `POST /v1/logs`, OTLP logs (protobuf, JSON) → events.
//! - [`incoming`]: cluster, scope and deterministic ids → the raw record.
//! - [`publish`]: the producer, and waiting for Kafka's acknowledgements.
//! - [`api`]: the routes and the path every request takes; `openapi.json`.
//! - [`error`]: what a refusal says (status, reason, field).
//! - [`metrics`]: every `kevents_ingest_*` metric.
//! - [`emit`]: the client side, `kevents emit`.

pub mod api;
pub mod auth;
pub mod config;
pub mod emit;
pub mod error;
pub mod events;
pub mod incoming;
pub mod metrics;
pub mod otlp;
pub mod publish;
pub mod ratelimit;

pub use config::{ClusterEntry, IngestConfig};

use prometheus_client::registry::Registry;
use runtime::kafka::FieldError;
use runtime::ops::Health;
use runtime::shutdown::CancellationToken;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why the stage stopped with an error (the binary prints it and exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid config: {0}")]
    Config(#[from] FieldError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("schema registry: {0}")]
    Registry(#[from] runtime::registry::RegistryError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// A started ingest stage.
pub struct Running {
    /// Where the API and ops routes are served (useful with port 0).
    pub addr: SocketAddr,
    pub metrics: metrics::Metrics,
    /// Cancelled when the stage stops (shutdown resolved).
    pub stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), IngestError>>,
}

impl Running {
    /// Wait until the stage has stopped: requests in flight answered, the
    /// producer flushed.
    pub async fn wait(self) -> Result<(), IngestError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(IngestError::Serve(std::io::Error::other(runtime::shutdown::panic_message(&*e.into_panic())))),
        }
    }
}

/// Run until `shutdown` resolves.
pub async fn run(cfg: IngestConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), IngestError> {
    start(cfg, shutdown).await?.wait().await
}

/// Start serving; returns once the listener is bound.
///
/// Shutdown: when `shutdown` resolves, the listener stops accepting, requests in
/// flight finish (each waits at most `delivery_timeout_ms` for Kafka), the
/// producer is flushed, and the stage returns.
pub async fn start(cfg: IngestConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Running, IngestError> {
    cfg.validate()?;
    let tokens = auth::Tokens::load(cfg.tokens_file.as_deref().expect("validated: tokens_file is set"))?;
    let limiter = ratelimit::RateLimiter::new(tokens.configs().iter().map(|t| (t.events_per_sec, t.burst)));
    cfg.kafka.preflight(runtime::kafka::PREFLIGHT_WAIT.min(Duration::from_secs(3))).await?;
    let codec = runtime::registry::codec(cfg.schema_registry.as_ref()).await?;
    let base = cfg.kafka.client_config()?;
    let producer: rdkafka::producer::FutureProducer = publish::producer_config(&base, cfg.delivery_timeout()).create()?;
    let publisher = publish::Publisher::new(producer, &cfg.topic, codec, cfg.delivery_timeout());

    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let health = Health::default();
    health.set_ready("kafka", false, "not checked yet");
    health.set_ready("tokens", true, format!("{} tokens loaded", tokens.configs().len()));
    let ops = runtime::ops::router(health.clone(), Arc::new(registry));

    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|source| IngestError::Listen { addr: cfg.listen, source })?;
    let addr = listener.local_addr().map_err(|source| IngestError::Listen { addr: cfg.listen, source })?;
    let instance = cfg.instance_name();
    let check_every = Duration::from_secs(cfg.kafka_check_interval_secs);
    let api = Arc::new(api::Api { cfg, instance, tokens, limiter, publisher: publisher.clone(), metrics: metrics.clone() });
    let app = api::router(api, ops);

    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        cancel.cancel();
    });
    tokio::spawn(check_kafka(publisher.clone(), health, check_every, stop.clone()));
    tracing::info!(%addr, topic = %publisher.topic(), "ingest API listening (/v1/events, /v1/logs, /openapi.json, /healthz, /readyz, /metrics)");
    let serve_stop = stop.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { serve_stop.cancelled().await }).await;
        // Every answered request was acknowledged already; this only waits for
        // sends of requests whose client went away.
        let p = publisher.clone();
        let _ = tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(5))).await;
        tracing::info!("ingest stopped");
        served.map_err(IngestError::Serve)
    });
    Ok(Running { addr, metrics, stop, task })
}

/// `/readyz` tells whether the raw topic is reachable: checked every `every`
/// (a metadata request), so a load balancer stops sending while Kafka is away.
async fn check_kafka(publisher: publish::Publisher, health: Health, every: Duration, stop: CancellationToken) {
    loop {
        let p = publisher.clone();
        let wait = every.min(Duration::from_secs(5));
        let r = tokio::task::spawn_blocking(move || p.check(wait)).await.unwrap_or_else(|e| Err(e.to_string()));
        match r {
            Ok(n) => health.set_ready("kafka", true, format!("topic {}: {n} partitions", publisher.topic())),
            Err(e) => health.set_ready("kafka", false, e),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
