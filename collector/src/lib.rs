//! kevents collector: one small process per cluster that watches Kubernetes Events
//! and publishes them, losslessly and in order, to the raw Kafka topic.
//!
//! Guarantee: every watch event the API server serves (ADDED, every MODIFIED —
//! repeats carry the occurrences — and DELETED) reaches the raw topic, in
//! resourceVersion order per scope. The resume point is not a file but the last
//! record Kafka acknowledged for this cluster (see [`cursor`]), so restarts, `410
//! Gone` and leader handovers neither skip nor repeat. Two paths can repeat a
//! record, both with the same (cluster, uid, resourceVersion), which the processor
//! drops: a deposed leader's late writes (also marked by an older leader epoch), and
//! a crash in the middle of a relist (the relist is redone).
//!
//! Layout (the data flows top to bottom):
//! - [`config`]: the `CollectorConfig` and its validation.
//! - [`source`]: the `Source` trait the watch runs over, and its kube-rs list/watch
//!   of either API shape, normalized on arrival; errors classified (410 or retryable).
//! - [`watch`]: the per-scope watch state machine (relist, watch, 410, empty 200,
//!   idle timeout), a pure `step`; [`watch::driver`] runs it with the drop rules,
//!   metrics and the bounded channel to the publisher.
//! - [`publish`]: ordered, acknowledged publishing with bounded memory.
//! - [`cursor`]: reading where to resume from the raw topic.
//! - [`leader`]: Lease-based leader election and the leader epoch.
//! - [`pipeline`]: wires watches, heartbeats and the publisher for one leadership term.
//! - [`metrics`]: every metric name.

pub mod config;
pub mod cursor;
pub mod leader;
pub mod metrics;
pub mod pipeline;
pub mod publish;
pub mod source;
pub mod watch;

pub use config::CollectorConfig;

use prometheus_client::registry::Registry;
use runtime::ops::{self, Health};
use std::future::Future;

/// Why the collector stopped with an error. The binary prints it and exits
/// non-zero; a supervisor restarts it and the cursor makes that safe.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("invalid config: {0}")]
    Config(#[from] runtime::kafka::FieldError),
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("ops endpoint {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
}

/// Build the kube client from the config (kubeconfig file, else the defaults).
pub async fn kube_client(cfg: &CollectorConfig) -> Result<kube::Client, CollectorError> {
    let config = match &cfg.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| CollectorError::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| CollectorError::Kubeconfig(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| CollectorError::Kubeconfig(e.to_string()))?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Run the collector until `shutdown` resolves; then stop watching, wait for Kafka
/// to acknowledge what was sent (bounded), release the lease, and return.
pub async fn run(cfg: CollectorConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), CollectorError> {
    cfg.validate()?;
    let client = kube_client(&cfg).await?;
    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let health = Health::default();
    let ops = ops::serve(cfg.listen, health.clone(), registry, shutdown)
        .await
        .map_err(|source| CollectorError::Listen { addr: cfg.listen, source })?;
    cfg.kafka.preflight(runtime::kafka::PREFLIGHT_WAIT).await?;
    let stop = ops.stop.clone();
    Ok(pipeline::supervise(cfg, client, metrics, health, stop).await?)
}
