//! kevents processor: consumes the raw topic in a consumer group, counts
//! occurrences, classifies, extracts metadata, correlates, detects patterns,
//! raises alerts, and writes the results — exactly once: each member commits the
//! outputs of the records it processed together with their raw offsets in one
//! Kafka transaction (see [`txn`]), and the outputs are deterministic, so what a
//! crashed member's aborted transaction held is made again byte-identically.
//!
//! State restore by replay: per-partition state (occurrences, leader epochs) is
//! never written anywhere. A member that starts owning a raw partition replays
//! one horizon (default 2 h) of it before its committed offset without emitting,
//! which rebuilds exactly the state the previous owner had (the step is a pure
//! function of state and input; time is record time). See [`restore`].
//!
//! Layout (data flows top to bottom):
//! - [`config`]: `ProcessorConfig` and its validation.
//! - [`shutdown`]: the one stop signal, who owns which task, how a panic or an
//!   error ends the member (read this first).
//! - [`consume`]: the group consumer thread, rebalances, when to commit.
//! - [`txn`]: the member's transactions (outputs and offsets committed together).
//! - [`worker`]: one task per raw partition: ordered, acknowledged output.
//! - [`deliveries`]: the member's producer and its delivery reports, counted per worker.
//! - [`restore`]: rebuilding a partition's state by replay.
//! - [`step`]: the per-record step (pure): decide, classify, extract, build.
//! - [`occurrence`]: occurrence counting, duplicates, leader epochs, eviction.
//! - [`output`]: output record kinds and their topics.
//! - [`metrics`]: every metric name.
//! - `classify`: category and severity of each event, from the ordered rules of
//!   `rules/classify.yaml` plus users' rule files (where severity is decided).
//! - `metadata`: facts pulled out of each event (container, image, node, exit
//!   code, scheduling breakdown, owner, ...), extractors in `rules/metadata.yaml`.
//! - `alerts`: alert rules and engine (per partition). The notifiers (webhook,
//!   Slack, Alertmanager) that read the alerts topic are the `kevents-notify`
//!   crate (`notify`), which [`start`] starts with the member's stop signal.
//! - `memo`: the bounded per-worker memo both of them cache results in.
//! - [`fault`]: the fault-injection setting the panic tests use (off by default).

pub mod alerts;
pub mod classify;
pub mod config;
pub mod consume;
pub mod correlate;
pub mod deliveries;
pub mod fault;
pub mod memo;
pub mod metadata;
pub mod metrics;
pub mod occurrence;
pub mod output;
pub mod patterns;
pub mod restore;
pub mod shutdown;
pub mod step;
pub mod txn;
pub mod worker;

pub use config::ProcessorConfig;
pub use runtime::kafka::{consumer_config, producer_config};
use runtime::kafka::set_default;

use prometheus_client::registry::Registry;
use rdkafka::ClientConfig;
use runtime::kafka::FieldError;
use runtime::ops::{self, Health};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::metrics::Metrics;
use crate::output::OutputTopics;
use crate::step::Engine;
use crate::worker::{Shared, WorkerError};

/// Why the processor stopped with an error. The binary prints it and exits
/// non-zero; a supervisor restarts it and the committed offsets make that safe.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("invalid config: {0}")]
    Config(#[from] FieldError),
    #[error("rules: {0}")]
    Rules(#[from] classify::RuleError),
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("creating topic {topic}: {message}")]
    Topic { topic: String, message: String },
    #[error("ops endpoint {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The notifiers could not start, or one of them failed or panicked.
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
    #[error("{what} panicked: {message}")]
    Panicked { what: String, message: String },
    #[error("{what} ended unexpectedly")]
    Ended { what: String },
    /// A progress probe went stale (`stall_timeout_secs`): the consume loop made no
    /// progress, typically stuck inside a librdkafka call that outlived its own
    /// timeout (see [`shutdown`]). The member exits so that any supervisor restarts it.
    #[error("stalled: {report}")]
    Stalled { report: String },
}

impl From<runtime::kafka::TopicError> for ProcessorError {
    fn from(e: runtime::kafka::TopicError) -> Self {
        match e {
            runtime::kafka::TopicError::Kafka(e) => ProcessorError::Kafka(e),
            runtime::kafka::TopicError::Refused { topic, message } => ProcessorError::Topic { topic, message },
        }
    }
}

/// A started processor: where its ops endpoint listens, its metrics, and the
/// handle to wait for it.
pub struct Running {
    pub ops_addr: SocketAddr,
    pub metrics: Metrics,
    done: tokio::task::JoinHandle<Result<(), ProcessorError>>,
}

impl Running {
    /// Wait until the processor stopped (after `shutdown` resolved, or an error).
    pub async fn wait(self) -> Result<(), ProcessorError> {
        shutdown::task_result::<ProcessorError>("the supervisor", self.done.await)
    }
}

/// Run the processor until `shutdown` resolves; then stop reading, drain
/// in-flight outputs (up to `drain_timeout_secs`), commit, leave the group.
pub async fn run(cfg: ProcessorConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ProcessorError> {
    start(cfg, shutdown).await?.wait().await
}


/// The member's producer, which the exactly-once guarantee depends on:
/// [`producer_config`] made transactional with `transactional_id`. A delivery
/// cannot outlive the transaction timeout (librdkafka caps it there): a broker
/// outage longer than that fails the transaction, which aborts, and the restart
/// makes its outputs again.
pub fn transactional_producer_config(base: &ClientConfig, transactional_id: &str, transaction_timeout_ms: u64) -> ClientConfig {
    let mut c = producer_config(base);
    c.remove("message.timeout.ms");
    c.set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", transaction_timeout_ms.to_string());
    // Right after a commit the coordinator is still writing the transaction markers and
    // answers the next transaction's first request with CONCURRENT_TRANSACTIONS; the
    // client retries after `retry.backoff.ms`, 100 ms by default: a tenth of a second
    // per commit, during which the workers wait. (Kafka's Java producer shortens this
    // backoff for that error by itself, KAFKA-5477.)
    set_default(&mut c, "retry.backoff.ms", "10");
    c
}



/// Start the processor: validate, load rules, create output topics if asked,
/// bind the ops endpoint, join the group. Returns once started.
pub async fn start(cfg: ProcessorConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Running, ProcessorError> {
    cfg.validate()?;
    // Before creating topics, which would wait on a broker refusing us.
    cfg.kafka.preflight(runtime::kafka::PREFLIGHT_WAIT).await?;
    let engine = Arc::new(Engine::from_config(&cfg)?);
    let base = cfg.kafka.client_config()?;
    if cfg.create_topic_partitions > 0 {
        for t in OutputTopics::from_config(&cfg.topics).all() {
            runtime::kafka::ensure_topic(&base, t, cfg.create_topic_partitions, &[]).await?;
        }
    }
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let notify_metrics = notify::NotifyMetrics::register(&mut registry);
    let health = Health::default();
    health.probe(consume::PROBE, std::time::Duration::from_secs(cfg.stall_timeout_secs));
    health.set_ready(consume::READY, false, "joining the consumer group");

    // The member's one stop signal (see `shutdown`). The ops endpoint outlives the
    // drain: the supervisor aborts it last.
    let stop = shutdown::CancellationToken::new();
    let (ops_addr, ops_task) = ops::bind(cfg.listen, health.clone(), Arc::new(registry), std::future::pending())
        .await
        .map_err(|source| ProcessorError::Listen { addr: cfg.listen, source })?;
    tracing::info!(%ops_addr, "ops endpoint listening (/healthz, /readyz, /metrics)");

    let transactional_id = cfg.transactional_id.clone().unwrap_or_else(|| txn::default_transactional_id(&cfg.group_id));
    let producer: deliveries::MemberProducer =
        transactional_producer_config(&base, &transactional_id, cfg.transaction_timeout_ms).create_with_context(deliveries::Deliveries)?;
    let txn = {
        let producer = producer.clone();
        let timeout = cfg.transaction_timeout();
        tokio::task::spawn_blocking(move || txn::Transactions::init(&producer, transactional_id, timeout))
            .await
            .expect("init_transactions does not panic")
            .map_err(WorkerError::from)?
    };
    let codec = runtime::registry::codec(cfg.schema_registry.as_ref())
        .await
        .map_err(|e| ProcessorError::Registry(e.to_string()))?;
    let fault = fault::Fault::from_config(&cfg.debug);
    // Notifiers (when configured): their own consumer groups on the alerts
    // topic, so a down receiver never holds up event processing. They stop on
    // the member's signal and raise it when they end; the fault setting reaches
    // them as a hook on every alert record they read.
    let on_record: Option<notify::RecordHook> = fault.armed_at(fault::FaultSite::Notifier).then(|| {
        let fault = fault.clone();
        std::sync::Arc::new(move |payload: &[u8], what: &dyn Fn() -> String| fault.check(fault::FaultSite::Notifier, payload, what)) as notify::RecordHook
    });
    let notifier = notify::start(&cfg.alerts.notify, &base, &cfg.topics.alerts, cfg.create_topic_partitions, codec.clone(), notify_metrics, stop.clone(), on_record).await?;
    let shared = Arc::new(Shared {
        engine,
        producer,
        txn,
        topics: OutputTopics::from_config(&cfg.topics),
        raw_topic: cfg.topics.raw.clone(),
        restore_config: restore::reader_config(&base, &cfg.group_id),
        horizon_us: cfg.horizon_us(),
        max_entries: cfg.max_state_entries,
        max_in_flight: cfg.max_in_flight,
        codec,
        metrics: metrics.clone(),
        batches: Default::default(),
        fault,
    });
    let lp = consume::Loop::new(
        &consumer_config(&base, &cfg.group_id),
        shared.clone(),
        tokio::runtime::Handle::current(),
        cfg.drain_timeout(),
        cfg.commit_interval(),
        health.clone(),
        stop.clone(),
    )?;
    let guard = stop.clone();
    let consume = std::thread::Builder::new()
        .name("kevents-consume".into())
        .spawn(move || {
            // However the loop ends (a panic included), the member stops.
            let _stop_all = guard.drop_guard();
            lp.run()
        })
        .map_err(|source| ProcessorError::Listen { addr: cfg.listen, source })?;
    let bound = Bound { join: cfg.drain_timeout() + cfg.transaction_timeout(), health };
    let done = tokio::spawn(supervise(stop, shutdown, consume, notifier, ops_task, shared, bound));
    Ok(Running { ops_addr, metrics, done })
}

/// What the supervisor watches besides the stop signal, and how long it waits for
/// the consume loop once stopping.
struct Bound {
    /// The drain plus one transaction: a consume loop that has not ended by then is
    /// stuck in a blocking call and is left behind (the process exits).
    join: std::time::Duration,
    /// Its probes: a stale one stops the member ([`ProcessorError::Stalled`]).
    health: runtime::ops::Health,
}

/// Resolves when a progress probe of `health` is stale, with its report.
async fn stalled(health: &runtime::ops::Health) -> String {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(report) = health.liveness() {
            return report;
        }
    }
}

/// Wait for the stop signal (or `shutdown`, which raises it, or a stall), then join
/// what runs and return the first error (see [`shutdown`]).
async fn supervise(
    stop: shutdown::CancellationToken,
    requested: impl Future<Output = ()>,
    consume: std::thread::JoinHandle<Result<(), ProcessorError>>,
    notifier: Option<notify::Notifier>,
    mut ops_task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
    bound: Bound,
) -> Result<(), ProcessorError> {
    // The ops endpoint ending by itself is a failure too: nobody would see the health.
    let mut ops_failure = None;
    let mut stall = None;
    tokio::select! {
        _ = requested => tracing::info!("shutdown requested: draining"),
        _ = stop.cancelled() => {}
        r = &mut ops_task => {
            let what = "the ops endpoint";
            ops_failure = Some(shutdown::task_result::<ProcessorError>(what, r.map(Ok)).err().unwrap_or(ProcessorError::Ended { what: what.into() }));
        }
        report = stalled(&bound.health) => {
            tracing::error!(%report, "the member stalled: stopping it, so that its supervisor restarts it");
            shared.txn.poison();
            stall = Some(ProcessorError::Stalled { report });
        }
    }
    stop.cancel();
    let joined = tokio::time::timeout(bound.join, shutdown::join_thread("the consume loop", consume)).await;
    let Ok(mut result) = joined else {
        // Stuck in a call that ignores its timeout (librdkafka's
        // send_offsets_to_transaction with its group coordinator gone): nothing of
        // this member can be trusted to end, so neither the notifiers nor the abort
        // are waited for. The broker aborts the open transaction at its timeout.
        tracing::error!(waited = ?bound.join, "the consume loop did not stop: leaving it behind");
        return Err(stall.unwrap_or(ProcessorError::Stalled { report: "the consume loop did not stop when told to".into() }));
    };
    if let Some(e) = stall {
        result = result.and(Err(e));
    }
    if let Some(n) = notifier {
        let r = n.join().await.map_err(ProcessorError::from);
        result = result.and(r);
    }
    match ops_failure {
        Some(e) => result = result.and(Err(e)),
        None => {
            ops_task.abort();
            let _ = ops_task.await;
        }
    }
    let failed = result.is_err();
    // Bounded like the join: an abort into a wedged producer must not keep a failed
    // member from exiting.
    let finish = tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer;
        if failed {
            // Nothing of the open transaction may be committed; aborting it now
            // frees `read_committed` readers at once instead of at its timeout.
            shared.txn.abort(&shared.producer);
        } else {
            // Deliver whatever is still queued (nothing is, after a clean drain).
            let _ = shared.producer.flush(std::time::Duration::from_secs(5));
        }
    });
    if tokio::time::timeout(bound.join, finish).await.is_err() {
        tracing::error!(waited = ?bound.join, "ending the open transaction did not return: leaving it to the broker's timeout");
    }
    result
}
