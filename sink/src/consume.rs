//! The consume loop: result topics in, batches out, offsets committed behind
//! ClickHouse's acknowledgement.
//!
//! Guarantee: every record of the five result topics is stored exactly once, or
//! dead-lettered when it cannot be decoded or ClickHouse rejects its row.
//! Precondition: the processor's `SourcePos` contract (positions grow per raw
//! partition within a Kafka partition).
//! How:
//! - offsets are committed only after the batch holding a partition's records was
//!   written (stored, or its rejected rows dead-lettered and acknowledged by Kafka),
//!   so a crash re-reads, never skips — at-least-once;
//! - re-read and replayed records are dropped against the high-water marks of
//!   `sink_progress` (see `progress`), which the same INSERT writes — the "once";
//! - a retried INSERT carries the same deduplication token (see `insert`).
//!
//! Two threads share the work (see `writer`): this task polls, decodes into the open
//! batch of the message's table and lane, and hands batches that are full or older
//! than `max_wait` to the writer, which inserts them while this task decodes the next
//! ones. Each table has `batch.concurrent_inserts` lanes, lane j taking the Kafka
//! partitions p with p % lanes == j, so that many INSERTs of a table run at once on
//! disjoint partitions. At most one batch per lane is with the writer: when a lane's
//! next batch is due before its previous one is written, this task waits without
//! polling (backpressure; memory is two batches per lane). One batch per lane at a
//! time keeps each Kafka partition's rows landing in order, which the high-water
//! marks need (see `writer`).
//!
//! Rebalances: callbacks run inside a poll. A revocation first waits, in the
//! callback, until the writer has finished every batch it holds (`InFlight`), so no
//! INSERT of a revoked partition can land after its new owner loaded the marks; then
//! the revoked partitions' unwritten rows are dropped (the new owner reads them again
//! from the committed offset), and a newly assigned partition's marks are loaded
//! before its first record is looked at.

use runtime::backoff::Backoff;
use crate::batch::WriteCtx;
use crate::config::SinkConfig;
use crate::dlq;
use crate::insert::{InsertCtx, InsertError};
use crate::metrics::{Metrics, PartitionLabel, TopicLabel};
use crate::retrying::Failing;
use crate::tables::{Alerts, Events, Heartbeats, Incidents, Loader, Patterns, TableLoader};
use crate::writer::{Done, InFlight, Writer};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use runtime::ops::Health;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The progress probe of the consume loop (`/healthz`).
pub const PROBE: &str = "consume";
/// Readiness: partitions assigned.
pub const READY_PARTITIONS: &str = "partitions";

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("invalid config: {0}")]
    Config(#[from] runtime::kafka::FieldError),
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("starting the writer thread: {0}")]
    Writer(#[from] std::io::Error),
    /// A bug: the writer panicked while writing a batch of this table. The sink stops
    /// (non-zero exit, the supervisor restarts it; the marks make that safe).
    #[error("the writer panicked while writing a batch of {0}")]
    WriterPanicked(String),
}

#[derive(Debug)]
enum RebalanceEvent {
    Assign(Vec<(String, i32)>),
    Revoke(Vec<(String, i32)>),
}

/// The consumer's context: records rebalances for the loop (which acts on them
/// right after the poll that delivered them), holds a revocation until the writer
/// is idle, and turns statistics into lag gauges.
struct SinkContext {
    events: Arc<Mutex<Vec<RebalanceEvent>>>,
    in_flight: InFlight,
    metrics: Metrics,
}

fn list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

impl ClientContext for SinkContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in stats.topics {
            for (p, part) in t.partitions {
                if p >= 0 && part.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&PartitionLabel { topic: topic.clone(), partition: p.to_string() })
                        .set(part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let ev = match rebalance {
            Rebalance::Assign(tpl) => RebalanceEvent::Assign(list(tpl)),
            Rebalance::Revoke(tpl) => RebalanceEvent::Revoke(list(tpl)),
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "rebalance error");
                return;
            }
        };
        tracing::info!(event = ?ev, "rebalance");
        if let RebalanceEvent::Revoke(_) = ev {
            // Before the partitions can go to another member: every INSERT that may
            // hold their rows has landed (or the sink is stopping).
            let n = self.in_flight.count();
            if n > 0 {
                let t = Instant::now();
                self.in_flight.wait_idle();
                tracing::info!(batches = n, waited_ms = t.elapsed().as_millis() as u64, "revocation waited for the writer");
            }
        }
        self.events.lock().unwrap().push(ev);
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.metrics.commit_failures.inc();
            tracing::warn!(error = %e, "offset commit failed (the records will be re-read and skipped)");
        }
    }
}

/// Everything the loop works with.
struct Loop<'a> {
    cfg: &'a SinkConfig,
    client: &'a clickhouse::Client,
    consumer: StreamConsumer<SinkContext>,
    producer: FutureProducer,
    events: Arc<Mutex<Vec<RebalanceEvent>>>,
    loaders: Vec<Box<dyn TableLoader>>,
    writer: Writer,
    /// Per loader: the offsets to commit when its batch with the writer is done
    /// (None: no batch of that table is with the writer).
    pending: Vec<Option<Vec<(i32, i64)>>>,
    failing: Failing,
    /// Topic → table number k (its loaders are k * lanes .. (k + 1) * lanes).
    by_topic: HashMap<String, usize>,
    /// Batches in flight per table (`batch.concurrent_inserts`).
    lanes: usize,
    /// (loader index, partition) currently assigned.
    assigned: BTreeSet<(usize, i32)>,
    metrics: Metrics,
    health: Health,
    stop: runtime::shutdown::CancellationToken,
}

/// Run the loop until `stop` turns true; then write the open batches and commit.
pub async fn run(
    cfg: &SinkConfig,
    client: &clickhouse::Client,
    metrics: Metrics,
    health: Health,
    failing: Failing,
    stop: runtime::shutdown::CancellationToken,
) -> Result<(), ConsumeError> {
    let codec = Arc::new(
        runtime::registry::codec(cfg.schema_registry.as_ref())
            .await
            .map_err(|e| ConsumeError::Registry(e.to_string()))?,
    );
    let (rows, wait, lanes) = (cfg.batch.max_rows, cfg.max_wait(), cfg.batch.concurrent_inserts);
    let t = &cfg.topics;
    // Table k's lane j is loader k * lanes + j; lane j takes the Kafka partitions p
    // with p % lanes == j.
    let mut loaders: Vec<Box<dyn TableLoader>> = Vec::new();
    for _ in 0..lanes {
        loaders.push(Box::new(Loader::<Events>::new(&t.processed, codec.clone(), rows, wait, metrics.clone())));
    }
    for _ in 0..lanes {
        loaders.push(Box::new(Loader::<Heartbeats>::new(&t.heartbeats, codec.clone(), rows, wait, metrics.clone())));
    }
    for _ in 0..lanes {
        loaders.push(Box::new(Loader::<Incidents>::new(&t.incidents, codec.clone(), rows, wait, metrics.clone())));
    }
    for _ in 0..lanes {
        loaders.push(Box::new(Loader::<Patterns>::new(&t.patterns, codec.clone(), rows, wait, metrics.clone())));
    }
    for _ in 0..lanes {
        loaders.push(Box::new(Loader::<Alerts>::new(&t.alerts, codec.clone(), rows, wait, metrics.clone())));
    }
    let by_topic = loaders.iter().step_by(lanes).enumerate().map(|(k, l)| (l.topic().to_string(), k)).collect();
    let events = Arc::new(Mutex::new(Vec::new()));
    let producer: FutureProducer = cfg
        .kafka
        .client_config()?
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    // The writer has its own connections: its runtime is its own thread's.
    let writer = Writer::start(WriteCtx {
        insert: InsertCtx {
            client: cfg.clickhouse.client()?.with_database(&cfg.clickhouse.database),
            metrics: metrics.clone(),
            health: health.clone(),
            failing: failing.clone(),
            max_backoff: Duration::from_millis(cfg.max_backoff_ms),
            timeout: Duration::from_secs(cfg.clickhouse.insert_timeout_secs),
            stop: stop.clone(),
        },
        producer: producer.clone(),
        dlq_topic: cfg.topics.dlq.clone(),
    })?;
    let mut base = cfg.kafka.client_config()?;
    if base.get("fetch.wait.max.ms").is_none() {
        // End-to-end latency: a fetch answers within 100 ms even when little is
        // new (librdkafka's default lets the broker hold it 500 ms).
        base.set("fetch.wait.max.ms", "100");
    }
    let consumer: StreamConsumer<SinkContext> = base
        .set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        // Only what the processor's transactions committed: an aborted
        // transaction's outputs are never loaded.
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Bounds what librdkafka prefetches while the loop is busy writing.
        .set("queued.max.messages.kbytes", "32768")
        .set("statistics.interval.ms", "5000")
        .create_with_context(SinkContext { events: events.clone(), in_flight: writer.in_flight(), metrics: metrics.clone() })?;
    let topics: Vec<&str> = loaders.iter().step_by(lanes).map(|l| l.topic()).collect();
    consumer.subscribe(&topics)?;
    health.probe(PROBE, Duration::from_secs(cfg.stall_timeout_secs));
    health.set_ready(READY_PARTITIONS, false, "waiting for a partition assignment");
    tracing::info!(?topics, group = %cfg.group_id, "consuming");
    let mut lp = Loop {
        cfg,
        client,
        consumer,
        producer,
        events,
        pending: loaders.iter().map(|_| None).collect(),
        loaders,
        writer,
        failing,
        by_topic,
        lanes,
        assigned: BTreeSet::new(),
        metrics,
        health,
        stop,
    };
    lp.run().await
}

impl Loop<'_> {
    async fn run(&mut self) -> Result<(), ConsumeError> {
        loop {
            // Commit what the writer finished; hand over what is due.
            while let Some(done) = self.writer.try_done() {
                if !self.finished(done, CommitMode::Async)? {
                    return Ok(()); // stopped while ClickHouse was failing
                }
            }
            let now = Instant::now();
            for i in 0..self.loaders.len() {
                let l = &self.loaders[i];
                let due = l.is_full() || l.deadline().is_some_and(|d| d <= now);
                if due && !self.hand_over(i, CommitMode::Async).await? {
                    return Ok(());
                }
            }
            if self.stop.is_cancelled() {
                break;
            }
            // Wake for the earliest batch deadline, and at least every second so
            // rebalances and the health probe are seen in quiet times.
            let wake = self
                .loaders
                .iter()
                .filter_map(|l| l.deadline())
                .min()
                .unwrap_or(now + Duration::from_secs(1))
                .min(now + Duration::from_secs(1));
            let stop = self.stop.clone();
            let msg = tokio::select! {
                biased;
                _ = stop.cancelled() => None,
                r = self.consumer.recv() => match r {
                    Ok(m) => Some(m.detach()),
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka consume error");
                        None
                    }
                },
                _ = tokio::time::sleep_until(wake.into()) => None,
            };
            if !self.rebalance().await {
                return Ok(());
            }
            if let Some(m) = msg {
                if !self.handle(&m).await {
                    return Ok(());
                }
            }
            self.health.touch(PROBE);
        }
        // Graceful shutdown: hand over the open batches (one attempt each if
        // ClickHouse fails now), wait for the writer, commit synchronously.
        for i in 0..self.loaders.len() {
            if self.loaders[i].is_open() && !self.hand_over(i, CommitMode::Sync).await? {
                break;
            }
        }
        while self.pending.iter().any(Option::is_some) {
            match self.writer.next_done().await {
                Some(done) => {
                    if !self.finished(done, CommitMode::Sync)? {
                        break;
                    }
                }
                None => break,
            }
        }
        self.failing.stop();
        tracing::info!("sink stopped");
        Ok(())
    }

    /// One message: decode into its table's batch, or dead-letter it.
    /// Returns false when stopped while dead-lettering.
    async fn handle(&mut self, m: &rdkafka::message::OwnedMessage) -> bool {
        let (p, off) = (m.partition(), m.offset());
        let Some(i) = self.loader_of(m.topic(), p) else { return true };
        if !self.assigned.contains(&(i, p)) {
            return true; // fetched before a revocation; the new owner reads it
        }
        let result = match m.payload() {
            Some(bytes) => self.loaders[i].push(p, off, m.key(), bytes).map(|_| ()).map_err(|e| e.to_string()),
            None => Err("empty message (no value)".to_string()),
        };
        if let Err(reason) = result {
            tracing::warn!(topic = m.topic(), partition = p, offset = off, %reason, "undecodable record → dead-letter topic");
            let letter = dlq::Letter { topic: m.topic(), partition: p, offset: off, key: m.key(), payload: m.payload(), reason: &reason };
            let stop = self.stop.clone();
            if let Err(e) = dlq::send(&self.producer, &self.cfg.topics.dlq, dlq::STAGE, &letter, &stop).await {
                tracing::warn!(error = %e, "not dead-lettered; the record will be read again");
                return false;
            }
            self.metrics.dead_lettered.get_or_create(&TopicLabel { topic: m.topic().to_string() }).inc();
            self.loaders[i].consumed(p, off);
        }
        true
    }

    /// Give loader `i`'s open batch to the writer, after its previous batch is
    /// written (one per table with the writer: rows land in order). Waits without
    /// polling. False when stopped.
    async fn hand_over(&mut self, i: usize, mode: CommitMode) -> Result<bool, ConsumeError> {
        while self.pending[i].is_some() {
            let Some(done) = self.writer.next_done().await else { return Ok(false) };
            if !self.finished(done, mode)? {
                return Ok(false);
            }
        }
        let taken = self.loaders[i].take();
        self.pending[i] = Some(taken.commit);
        self.writer.submit(i, taken.job);
        Ok(true)
    }

    /// A batch the writer finished: commit its offsets for the partitions still
    /// assigned. False when it ended because the sink is stopping.
    fn finished(&mut self, done: Done, mode: CommitMode) -> Result<bool, ConsumeError> {
        let i = done.loader;
        let commit = self.pending[i].take().unwrap_or_default();
        match done.result {
            Ok(written) => {
                if written.rejected > 0 {
                    tracing::warn!(table = self.loaders[i].table(), stored = written.stored, rejected = written.rejected, "batch written; rejected rows dead-lettered");
                }
            }
            Err(InsertError::Stopped { table, last }) => {
                tracing::warn!(%table, error = %last, "stopping with an unwritten batch; its offsets stay uncommitted");
                return Ok(false);
            }
            Err(InsertError::Rejected { table, message, .. }) => {
                // `batch` turns rejections into dead letters; a rejection here is a bug.
                tracing::error!(%table, %message, "a rejected batch reached the loop; its offsets stay uncommitted");
                return Ok(false);
            }
            Err(InsertError::Panicked { table }) => return Err(ConsumeError::WriterPanicked(table)),
        }
        let mut tpl = TopicPartitionList::new();
        let topic = self.loaders[i].topic().to_string();
        for (p, next) in &commit {
            if self.assigned.contains(&(i, *p)) {
                let _ = tpl.add_partition_offset(&topic, *p, Offset::Offset(*next));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, mode) {
                self.metrics.commit_failures.inc();
                tracing::warn!(error = %e, "offset commit failed (the records will be re-read and skipped)");
            }
        }
        Ok(true)
    }

    /// Act on the rebalances the last poll delivered. False when stopped.
    async fn rebalance(&mut self) -> bool {
        let events: Vec<RebalanceEvent> = std::mem::take(&mut *self.events.lock().unwrap());
        for ev in events {
            match ev {
                RebalanceEvent::Revoke(parts) => {
                    for (i, ps) in self.group(&parts) {
                        self.loaders[i].revoke(&ps);
                        for p in ps {
                            self.assigned.remove(&(i, p));
                        }
                    }
                }
                RebalanceEvent::Assign(parts) => {
                    for (i, ps) in self.group(&parts) {
                        let mut backoff = Backoff::up_to(Duration::from_millis(self.cfg.max_backoff_ms));
                        let mut streak = None;
                        loop {
                            match self.loaders[i].assign(self.client, &ps).await {
                                Ok(()) => break,
                                Err(e) => {
                                    streak.get_or_insert_with(|| self.failing.streak());
                                    let delay = backoff.next_delay(None);
                                    tracing::warn!(table = self.loaders[i].table(), error = %e, "loading high-water marks failed; retrying");
                                    self.health.set_ready(crate::insert::READY_CLICKHOUSE, false, format!("loading marks: {e}"));
                                    self.health.touch(PROBE);
                                    let stop = self.stop.clone();
                                    tokio::select! {
                                        _ = tokio::time::sleep(delay) => {}
                                        _ = stop.cancelled() => return false,
                                    }
                                }
                            }
                        }
                        for p in ps {
                            self.assigned.insert((i, p));
                        }
                    }
                }
            }
        }
        let n = self.assigned.len();
        self.health.set_ready(READY_PARTITIONS, n > 0, format!("{n} partitions assigned"));
        true
    }

    /// The loader of a topic's partition: its table's lane `p % lanes`.
    fn loader_of(&self, topic: &str, p: i32) -> Option<usize> {
        let k = *self.by_topic.get(topic)?;
        Some(k * self.lanes + p.rem_euclid(self.lanes as i32) as usize)
    }

    /// Partitions grouped by the loader that owns them.
    fn group(&self, parts: &[(String, i32)]) -> Vec<(usize, Vec<i32>)> {
        let mut out: HashMap<usize, Vec<i32>> = HashMap::new();
        for (t, p) in parts {
            if let Some(i) = self.loader_of(t, *p) {
                out.entry(i).or_default().push(*p);
            }
        }
        out.into_iter().collect()
    }
}
