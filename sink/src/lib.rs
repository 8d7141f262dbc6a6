//! kevents sink: the processor's result topics into ClickHouse, exactly once.
//!
//! Guarantee: each record of `kevents.processed`, `kevents.heartbeats`,
//! `kevents.incidents`, `kevents.patterns` and `kevents.alerts` is stored once in its
//! table — across sink crashes, processor replays, Kafka re-deliveries and ClickHouse
//! outages — or, when it cannot be decoded or ClickHouse rejects its row, sent to the
//! dead-letter topic with the reason.
//! [`consume`] says how; [`progress`] holds the idea (high-water marks written by the
//! same INSERT as the rows).
//!
//! Tables and views (migrations in `schemas/clickhouse/`, applied by [`migrate`]):
//! `events` (raw, TTL `ttl_days`), `events_per_minute` / `events_per_hour` (rollups,
//! query with sum()), `incidents_latest` / `patterns_latest` / `alerts_latest` (one
//! row per id, latest version), `cluster_liveness` (one row per cluster), and
//! `sink_progress` (the sink's own bookkeeping).
//!
//! Layout (the data flows top to bottom):
//! - [`config`]: the `SinkConfig` and its validation.
//! - [`migrate`]: versioned, idempotent schema migrations.
//! - [`consume`]: the loop — poll, decode, batch, hand over, commit; rebalances.
//! - [`tables`]: the five tables and the per-table open batch.
//! - [`rows`]: row structs converted from the records.
//! - [`progress`]: high-water marks — what makes loading exactly-once.
//! - [`writer`]: the thread that writes batches while the loop decodes the next.
//! - [`batch`]: a batch's rows and original records; bisection of rejected batches.
//! - [`insert`]: one INSERT, retried with the same dedup token while retryable.
//! - [`classify`]: retryable or permanent, from ClickHouse's error code (rules in YAML).
//! - [`retrying`]: the `clickhouse` liveness probe — how long retrying has failed.
//! - [`dlq`]: the dead-letter topic.
//! - [`metrics`]: every metric name.

pub mod batch;
pub mod classify;
pub mod config;
pub mod consume;
pub mod dlq;
pub mod insert;
pub mod metrics;
pub mod migrate;
pub mod progress;
pub mod retrying;
pub mod rows;
pub mod tables;
pub mod writer;

pub use config::SinkConfig;

use prometheus_client::registry::Registry;
use runtime::ops::{self, Health};
use std::future::Future;

/// Readiness: the schema is in place.
pub const READY_MIGRATIONS: &str = "migrations";

/// Why the sink stopped with an error. The binary prints it and exits non-zero; a
/// supervisor restarts it, and the marks make that safe.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid config: {0}")]
    Config(#[from] runtime::kafka::FieldError),
    #[error("ops endpoint {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("migrations: {0}")]
    Migrate(#[from] migrate::MigrateError),
    #[error(transparent)]
    Consume(#[from] consume::ConsumeError),
}

/// Apply the migrations for `cfg.clickhouse` (what `kevents migrate` runs).
pub async fn migrate(cfg: &SinkConfig) -> Result<migrate::Report, SinkError> {
    cfg.validate()?;
    let client = cfg.clickhouse.client()?;
    Ok(migrate_or_check(cfg, &client, &cluster_nodes(cfg)?, true).await?)
}

/// The nodes the migrations run on one by one: every node of a cluster with
/// `Distributed` replication (see `migrate`); none otherwise.
fn cluster_nodes(cfg: &SinkConfig) -> Result<Vec<migrate::Node>, runtime::kafka::FieldError> {
    let ch = &cfg.clickhouse;
    if ch.cluster_replication != config::ClusterReplication::Distributed {
        return Ok(Vec::new());
    }
    ch.cluster_nodes
        .iter()
        .map(|url| Ok(migrate::Node { url: url.clone(), client: ch.client_for(url)? }))
        .collect()
}

/// Apply the migrations (`apply`) or check them, on `server` or on each of `nodes`.
async fn migrate_or_check(
    cfg: &SinkConfig,
    server: &clickhouse::Client,
    nodes: &[migrate::Node],
    apply: bool,
) -> Result<migrate::Report, migrate::MigrateError> {
    let ch = &cfg.clickhouse;
    match (&ch.cluster, nodes.is_empty(), apply) {
        (Some(_), false, true) => migrate::apply_each_node(server, nodes, &ch.render_options()).await,
        (Some(cluster), false, false) => migrate::check_each_node(server, cluster, nodes, &ch.database).await,
        (_, _, true) => migrate::apply(server, &ch.render_options()).await,
        (_, _, false) => migrate::check(server, &ch.database).await,
    }
}

/// Run the sink until `shutdown` resolves; then write the open batches, commit,
/// and return. Migrations are applied first (or checked, with `migrate: false`);
/// ClickHouse being unreachable at start-up is retried, not fatal.
pub async fn run(cfg: SinkConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), SinkError> {
    cfg.validate()?;
    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let health = Health::default();
    let ops = ops::serve(cfg.listen, health.clone(), registry, shutdown)
        .await
        .map_err(|source| SinkError::Listen { addr: cfg.listen, source })?;
    cfg.kafka.preflight(runtime::kafka::PREFLIGHT_WAIT).await?;
    let stop = ops.stop.clone();
    run_inner(&cfg, metrics, health, stop).await
}

async fn run_inner(
    cfg: &SinkConfig,
    metrics: metrics::Metrics,
    health: Health,
    stop: runtime::shutdown::CancellationToken,
) -> Result<(), SinkError> {
    let server = cfg.clickhouse.client()?;
    let nodes = cluster_nodes(cfg)?;
    let failing = retrying::Failing::start(&health, std::time::Duration::from_secs(cfg.clickhouse.unhealthy_after_secs));
    health.set_ready(READY_MIGRATIONS, false, "not applied yet");
    health.set_ready(insert::READY_CLICKHOUSE, false, "not reached yet");
    let mut backoff = runtime::backoff::Backoff::up_to(std::time::Duration::from_millis(cfg.max_backoff_ms));
    let mut streak = None;
    loop {
        let result = migrate_or_check(cfg, &server, &nodes, cfg.migrate).await;
        match result {
            Ok(report) => {
                tracing::info!(?report, "schema ready");
                break;
            }
            // Unreachable or failing server: wait for it. A statement ClickHouse
            // rejects or missing migrations: an operator must act.
            Err(migrate::MigrateError::ClickHouse(e)) => {
                streak.get_or_insert_with(|| failing.streak());
                let delay = backoff.next_delay(None);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "ClickHouse not reachable for migrations; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => {
                        failing.stop();
                        return Ok(());
                    }
                }
            }
            Err(e) => {
                failing.stop();
                return Err(e.into());
            }
        }
    }
    drop(streak);
    health.set_ready(READY_MIGRATIONS, true, "all known migrations present");
    health.set_ready(insert::READY_CLICKHOUSE, true, "reachable");
    let client = server.with_database(&cfg.clickhouse.database);
    let result = consume::run(cfg, &client, metrics, health, failing.clone(), stop).await;
    failing.stop();
    result?;
    Ok(())
}
