//! kevents export: the processor's results into the OpenTelemetry pipeline people
//! already run. Reads the processed-events and incidents topics (`read_committed`:
//! the processor writes them in transactions) and sends them to any OTLP/HTTP
//! endpoint (protobuf, `/v1/logs` and `/v1/traces`): each processed event as a
//! log record, each incident version as a log record, and — with
//! `incidents: logs_and_spans` — each incident as a trace of its events
//! ([`spans`]).
//!
//! # Guarantee
//!
//! **Every record of the two topics reaches the endpoint (a 2xx for the request
//! that carried it) or the dead-letter topic, across restarts, `kill -9` and
//! rebalances: at least once. A record is sent again only when the exporter dies
//! (or is stopped) after the endpoint accepted a request of its batch and before
//! the broker acknowledged the commit of that batch's offsets, or when that
//! commit fails (`kevents_export_commit_failures_total`; e.g. a member frozen
//! past the session timeout, whose partitions moved on): then the whole batch —
//! at most `max_batch_records` records — is sent again by the next owner.**
//! Every log record carries a stable id (`log.record.uid`, and `kevents.event.id`
//! or `kevents.incident.id` + `kevents.incident.version`) and every span a
//! deterministic trace and span id, so a receiver can drop such a duplicate
//! itself.
//!
//! How:
//! - One batch at a time ([`pipeline`]): records are read up to
//!   `max_batch_records` or `max_batch_wait_ms`, converted, and sent (the logs request
//!   and the traces request at once); nothing more is read until the batch is done.
//! - A batch is done when the endpoint answered 2xx for all of it, or answered a
//!   permanent 4xx for single records that then went to the dead-letter topic
//!   with the answer as reason (Kafka acknowledged): [`send`] says which answers
//!   are retried (without limit), which split the batch, and why.
//! - Then the offsets after the batch are committed synchronously, before
//!   anything else happens: the duplicate window above runs from the batch's
//!   first 2xx to that commit's acknowledgement — the other signal's request
//!   (sent at the same time), any dead-letter writes, and one commit round trip
//!   (about 5 ms of a 10 ms batch against the local test broker) — plus, on a
//!   stop during retries, the batch being retried (stopping does not wait for an
//!   endpoint that is down).
//! - Rebalances happen only while a batch is being read (the consumer is polled
//!   only then): what was read and not sent is dropped and read again from the
//!   committed offsets, by this member or the next owner — never lost, not sent
//!   twice.
//!
//! A receiver that accepts a request and drops records itself (OTLP partial
//! success) decided so: counted (`kevents_export_receiver_dropped`) and logged.
//!
//! Layout (data flows top to bottom):
//! - [`config`]: `ExportConfig` and its validation.
//! - [`pipeline`]: the consumer loop: batches, rebalances, offsets.
//! - [`attributes`]: `k8s.*` resource attributes, severity numbers, trace/span ids.
//! - [`logs`]: processed events and incidents as log records; the logs request.
//! - [`spans`]: incidents and their events as spans; the traces request.
//! - [`send`]: the endpoint: one POST with retries, splitting rejected batches.
//! - [`dlq`]: the dead-letter topic.
//! - [`metrics`]: every `kevents_export_*` metric.

pub mod attributes;
pub mod config;
pub mod dlq;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod send;
pub mod spans;

pub use config::{EndpointConfig, ExportConfig, IncidentExport, TopicsConfig};
pub use metrics::Metrics;

use prometheus_client::registry::Registry;
use runtime::kafka::FieldError;
use runtime::ops::Health;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// The `/healthz` progress probe of the loop: touched on every poll that
/// returns, every request attempt and every commit.
pub const LOOP_PROBE: &str = "export loop";

/// Why the stage stopped with an error (the binary prints it and exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid config: {0}")]
    Config(#[from] FieldError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("schema registry: {0}")]
    Registry(#[from] runtime::registry::RegistryError),
    #[error("ops endpoint on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the export loop failed: {0}")]
    Loop(String),
}

/// A started exporter.
pub struct Running {
    /// Where `/healthz`, `/readyz` and `/metrics` are served (useful with port 0).
    pub addr: SocketAddr,
    pub metrics: Metrics,
    pub health: Health,
    task: tokio::task::JoinHandle<()>,
    _ops: runtime::ops::OpsServer,
}

impl Running {
    /// Wait until the exporter has stopped (after the shutdown future resolved).
    pub async fn wait(self) -> Result<(), ExportError> {
        self.task.await.map_err(|e| ExportError::Loop(match e.try_into_panic() {
            Ok(p) => runtime::shutdown::panic_message(&*p),
            Err(e) => e.to_string(),
        }))
    }
}

/// Run until `shutdown` resolves.
pub async fn run(cfg: ExportConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ExportError> {
    start(cfg, shutdown).await?.wait().await
}

/// Check the config, reach Kafka, serve the ops endpoint and start the loop.
///
/// Shutdown: when `shutdown` resolves, the loop stops reading; a batch whose
/// requests are still being retried is abandoned uncommitted (it is sent again
/// on the next start); the consumer leaves its group.
pub async fn start(cfg: ExportConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Running, ExportError> {
    cfg.validate()?;
    cfg.kafka.preflight(runtime::kafka::PREFLIGHT_WAIT.min(Duration::from_secs(3))).await?;
    let codec = runtime::registry::codec(cfg.schema_registry.as_ref()).await?;
    let base = cfg.kafka.client_config()?;

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let health = Health::default();
    // The longest the loop may go without progress: a request's timeout, and
    // the longest retry delay, with margin.
    health.probe(LOOP_PROBE, Duration::from_secs(2 * cfg.endpoint.timeout_secs + cfg.backoff_max_secs + 60));
    health.set_ready("endpoint", false, "not tried yet");
    let endpoint = send::Endpoint::new(&cfg, metrics.clone(), health.clone())?;
    let ops = runtime::ops::serve(cfg.listen, health.clone(), registry, shutdown).await.map_err(|source| ExportError::Listen { addr: cfg.listen, source })?;
    let pipeline = pipeline::Pipeline::new(&cfg, &base, endpoint, codec, metrics.clone(), health.clone(), ops.stop.clone())?;
    tracing::info!(
        processed = %cfg.topics.processed,
        incidents = %cfg.topics.incidents,
        group = %cfg.group_id,
        spans = cfg.incidents.spans(),
        "exporter started"
    );
    let task = tokio::spawn(pipeline.run());
    Ok(Running { addr: ops.addr, metrics, health, task, _ops: ops })
}
