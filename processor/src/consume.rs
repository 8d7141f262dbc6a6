//! The consume loop: one dedicated thread polls the group consumer, hands each
//! record to its partition's worker, commits the member's transactions, and
//! handles rebalances.
//!
//! Offsets: never committed by librdkafka (`enable.auto.commit=false`). Every
//! `commit_interval_ms` this loop commits the open transaction with, for each
//! partition whose worker moved on, the offset after the last record the worker
//! handled (`txn`: the outputs of those records are in the same transaction).
//!
//! Rebalances (callbacks run on this thread, inside `poll`, so they may block):
//! - revoke: each revoked partition's worker drains (in-flight outputs awaited
//!   until `drain_timeout`), then the transaction is committed with their final
//!   offsets before the partitions move (with the group generation they were
//!   read in: a member that was already expelled is fenced). A cleanly drained
//!   state is parked, reused if the partition comes back at the same offset (an
//!   eager rebalance revokes everything and re-assigns most of it).
//! - assign: a worker is started per partition; it restores state on its first
//!   record (`restore`).
//!   Shutdown is a revoke of everything, then the consumer closes.
//!   Why a thread and not a task: the revoke callback must wait for the drain,
//!   and blocking there must not block the workers' runtime.
//!
//! Failures: this loop owns every worker's task handle and looks at them on every
//! round; a worker that returned an error or panicked, or a failed commit, stops
//! the member (`shutdown`): nothing more is committed, the workers are aborted
//! and the loop returns the error.
//!
//! Backpressure is per partition: when a worker's queue is full, its partition
//! is paused in librdkafka and its collected records wait in the loop (in
//! order, more appended behind them) until the worker takes them, then it is
//! resumed. The loop never blocks on one worker, so a slow or hot partition
//! does not starve the others, and polling (group liveness) goes on.

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{Message, TopicPartitionList};
use rustc_hash::{FxHashMap, FxHashSet};
use runtime::ops::Health;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::fault::FaultSite;
use crate::metrics::Metrics;
use crate::shutdown::{self, CancellationToken};
use crate::worker::{Cmd, Parked, RawBatch, Shared, Worker, WorkerError};
use crate::ProcessorError;

/// The probe the consume loop touches: `/healthz` fails when it stalls.
pub const PROBE: &str = "consume_loop";
/// The readiness condition: the member got its (possibly empty) assignment.
pub const READY: &str = "partitions";

/// Batches queued per worker (each up to `BATCH` records).
const CHANNEL: usize = 16;
/// Records collected from one poll round before handing them over.
const BATCH: usize = 512;

struct Handle {
    tx: mpsc::Sender<Cmd>,
    /// The last offset whose outputs the worker put in the open transaction.
    handled: Arc<AtomicI64>,
    /// The last offset committed (its next offset is the group's committed one).
    committed: i64,
    /// The worker's task: joined after a drain, looked at on every round of the
    /// loop (an end before a drain is a failure), aborted when dropped unjoined.
    task: tokio::task::JoinHandle<Result<(), WorkerError>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn worker_name(p: i32) -> String {
    format!("partition worker {p}")
}

/// The workers of this member, by raw partition.
#[derive(Default)]
struct Members {
    workers: FxHashMap<i32, Handle>,
    parked: FxHashMap<i32, Parked>,
}

/// Consumer context: rebalance callbacks start and drain workers.
pub struct Ctx {
    members: Mutex<Members>,
    /// Incremented by every rebalance callback, so the loop can tell that
    /// records it collected predate a rebalance.
    generation: std::sync::atomic::AtomicU64,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    /// The member's stop signal (cancelled on a failure too).
    stop: CancellationToken,
    /// The first failure; the loop returns it.
    failure: Mutex<Option<ProcessorError>>,
    drain_timeout: Duration,
    health: Health,
    /// Offsets of revoked partitions not committed yet (the revoke commits them).
    revoked: Mutex<Vec<(i32, i64)>>,
}

impl ClientContext for Ctx {
    /// Lag per partition, from librdkafka's statistics (`statistics.interval.ms`):
    /// records between the partition's end and the group's committed offset, i.e.
    /// not yet processed and committed.
    fn stats(&self, stats: rdkafka::Statistics) {
        let assigned: Vec<i32> = self.members.lock().unwrap().workers.keys().copied().collect();
        let Some(topic) = stats.topics.get(&self.shared.raw_topic) else { return };
        for p in assigned {
            if let Some(part) = topic.partitions.get(&p) {
                if part.consumer_lag >= 0 {
                    Metrics::partition(&self.shared.metrics.lag, p).set(part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        match rebalance {
            Rebalance::Revoke(tpl) => {
                Metrics::cause(&self.shared.metrics.rebalances, "revoke", 1);
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(partitions = ?parts, "partitions revoked: draining");
                self.drain(consumer, &parts);
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                Metrics::cause(&self.shared.metrics.rebalances, "error", 1);
                tracing::warn!(error = %e, "rebalance error");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        if let Rebalance::Assign(tpl) = rebalance {
            Metrics::cause(&self.shared.metrics.rebalances, "assign", 1);
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(partitions = ?parts, "partitions assigned");
            let mut m = self.members.lock().unwrap();
            for p in parts {
                if m.workers.contains_key(&p) {
                    continue;
                }
                let parked = m.parked.remove(&p);
                let (tx, rx) = mpsc::channel(CHANNEL);
                let handled = Arc::new(AtomicI64::new(-1));
                let worker = Worker::new(self.shared.clone(), p, rx, handled.clone(), parked);
                let task = self.runtime.spawn(worker.run());
                m.workers.insert(p, Handle { tx, handled, committed: -1, task });
            }
            self.shared.metrics.assigned.set(m.workers.len() as i64);
            self.health.set_ready(READY, true, format!("{} raw partitions assigned", m.workers.len()));
        }
    }
}

impl Ctx {
    /// Drain the workers of `parts`, then commit the transaction with their final
    /// offsets (and every other partition's progress).
    fn drain(&self, consumer: &BaseConsumer<Self>, parts: &[i32]) {
        let deadline = Instant::now() + self.drain_timeout;
        let mut m = self.members.lock().unwrap();
        if self.shared.txn.is_failed() {
            // After a failure nothing is committed: no use waiting for the workers
            // (dropping their handles aborts them).
            for p in parts {
                m.workers.remove(p);
            }
            return;
        }
        let mut waiting = Vec::new();
        for p in parts {
            if let Some(mut h) = m.workers.remove(p) {
                let (reply, rx) = std::sync::mpsc::sync_channel(1);
                if h.tx.blocking_send(Cmd::Drain { deadline, reply }).is_ok() {
                    waiting.push((*p, h, rx));
                } else {
                    // Its channel is closed: the worker ended before being told to.
                    let r = self.join(*p, &mut h, Duration::from_secs(1));
                    self.fail(r.err().unwrap_or(ProcessorError::Ended { what: worker_name(*p) }));
                }
            }
        }
        let mut revoked = self.revoked.lock().unwrap();
        for (p, mut h, rx) in waiting {
            let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(500);
            if let Ok(Some(parked)) = rx.recv_timeout(left) {
                m.parked.insert(p, parked);
            }
            // It returns right after its reply; one that failed or panicked while
            // draining stops the member. One still busy after the deadline is
            // aborted (its outputs in the producer are awaited by the commit).
            if let Err(e) = self.join(p, &mut h, Duration::from_millis(500)) {
                self.fail(e);
            }
            let handled = h.handled.load(Ordering::Acquire);
            if handled > h.committed {
                revoked.push((p, handled + 1));
            }
            Metrics::partition(&self.shared.metrics.lag, p).set(0);
        }
        self.shared.metrics.assigned.set(m.workers.len() as i64);
        drop(revoked);
        drop(m);
        self.commit(consumer);
    }

    /// Commit the open transaction with every partition's progress since the last
    /// commit, read while no worker is inside a batch (nothing to do when no worker
    /// moved). A failed commit is fatal.
    fn commit(&self, consumer: &BaseConsumer<Self>) {
        let mut m = self.members.lock().unwrap();
        let snapshot = || {
            let mut next: Vec<(i32, i64)> = std::mem::take(&mut *self.revoked.lock().unwrap());
            for (p, h) in m.workers.iter() {
                let handled = h.handled.load(Ordering::Acquire);
                if handled > h.committed {
                    next.push((*p, handled + 1));
                }
            }
            next
        };
        match self.shared.txn.commit(&self.shared.producer, consumer, &self.shared.raw_topic, snapshot) {
            Ok(None) => {}
            Ok(Some((held, next))) => {
                for (p, offset) in next {
                    if let Some(h) = m.workers.get_mut(&p) {
                        h.committed = h.committed.max(offset - 1);
                    }
                }
                self.shared.metrics.commits.inc();
                self.shared.metrics.commit_seconds.observe(held.as_secs_f64());
            }
            // An earlier failure, already reported: nothing is committed any more.
            Err(crate::txn::TxnError::Failed) => {}
            Err(e) => {
                // Nothing of this transaction is visible; the restart resumes at the
                // committed offsets.
                self.fail(WorkerError::Transaction(e).into());
            }
        }
    }

    /// Record the member's failure (the first one wins), commit nothing more, and
    /// raise the stop signal.
    fn fail(&self, e: ProcessorError) {
        self.shared.txn.poison();
        let mut f = self.failure.lock().unwrap();
        if f.is_none() {
            tracing::error!(error = %e, "the member stops");
            *f = Some(e);
        }
        drop(f);
        self.stop.cancel();
    }

    /// Wait up to `wait` for a worker's task to end and say how it ended (`Ok`
    /// also when it is still running: then it is aborted when its handle drops).
    fn join(&self, p: i32, h: &mut Handle, wait: Duration) -> Result<(), ProcessorError> {
        match self.runtime.block_on(async { tokio::time::timeout(wait, &mut h.task).await }) {
            Ok(r) => shutdown::task_result(&worker_name(p), r),
            Err(_) => {
                tracing::warn!(partition = p, "worker still busy after its drain: aborted");
                Ok(())
            }
        }
    }

    /// A worker whose task ended without being told to drain (an error, a panic)
    /// stops the member.
    fn check_workers(&self) {
        let mut m = self.members.lock().unwrap();
        let ended: Vec<i32> = m.workers.iter().filter(|(_, h)| h.task.is_finished()).map(|(p, _)| *p).collect();
        for p in ended {
            let mut h = m.workers.remove(&p).expect("listed");
            let r = futures::FutureExt::now_or_never(&mut h.task).expect("finished");
            let e = shutdown::task_result(&worker_name(p), r).err();
            self.fail(e.unwrap_or(ProcessorError::Ended { what: worker_name(p) }));
        }
    }
}

/// Raises the stop signal and forbids any further commit if the loop unwinds
/// from a panic (its thread's own guard comes too late: the consumer's close,
/// which revokes and commits, runs while the loop unwinds).
struct PanicGuard<'a>(&'a Ctx);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.shared.txn.poison();
            self.0.stop.cancel();
        }
    }
}

/// Everything the consume thread needs.
pub struct Loop {
    pub consumer: BaseConsumer<Ctx>,
    commit_interval: Duration,
}

impl Loop {
    pub fn new(
        config: &rdkafka::ClientConfig,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Handle,
        drain_timeout: Duration,
        commit_interval: Duration,
        health: Health,
        stop: CancellationToken,
    ) -> KafkaResult<Self> {
        let raw_topic = shared.raw_topic.clone();
        let ctx = Ctx {
            members: Mutex::default(),
            generation: Default::default(),
            shared,
            runtime,
            stop,
            failure: Mutex::default(),
            drain_timeout,
            health,
            revoked: Mutex::default(),
        };
        let consumer: BaseConsumer<Ctx> = config.create_with_context(ctx)?;
        consumer.subscribe(&[&raw_topic])?;
        Ok(Loop { consumer, commit_interval })
    }

    /// Poll until the stop signal, then drain everything, commit and leave the
    /// group; after a failure, abort the workers and return it (nothing more is
    /// committed).
    pub fn run(self) -> Result<(), ProcessorError> {
        let ctx = self.consumer.context();
        // Dropped before the consumer, whose close revokes (and would commit).
        let _unwinding = PanicGuard(ctx);
        let health = ctx.health.clone();
        let mut last_commit = Instant::now();
        // Per partition, the records collected and not yet taken by its worker.
        let mut batches: FxHashMap<i32, RawBatch> = FxHashMap::default();
        // Partitions paused because their worker was full.
        let mut paused: FxHashSet<i32> = FxHashSet::default();
        while !ctx.stop.is_cancelled() {
            health.touch(PROBE);
            // Collect what librdkafka has ready (up to BATCH) and hand it over per
            // partition: one wake-up per batch instead of per record. While a
            // partition waits for its worker, come back soon to retry.
            let mut wait = if paused.is_empty() { Duration::from_millis(100) } else { Duration::from_millis(1) };
            let mut generation = ctx.generation.load(Ordering::Relaxed);
            for _ in 0..BATCH {
                match self.consumer.poll(wait) {
                    None => break,
                    Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                    Some(Ok(msg)) => {
                        let g = ctx.generation.load(Ordering::Relaxed);
                        if g != generation {
                            // A rebalance ran inside this poll (eager: everything was
                            // revoked and committed). Records collected before it are
                            // fetched again from the committed offsets: drop them.
                            self.forget(&mut batches, &mut paused);
                            generation = g;
                        }
                        let payload = msg.payload().unwrap_or_default();
                        ctx.shared.fault.check(FaultSite::ConsumeLoop, payload, || format!("partition {} offset {}", msg.partition(), msg.offset()));
                        batches.entry(msg.partition()).or_default().push(msg.offset(), msg.timestamp().to_millis(), payload, msg.key());
                    }
                }
                wait = Duration::ZERO;
            }
            if ctx.generation.load(Ordering::Relaxed) != generation {
                self.forget(&mut batches, &mut paused);
            }
            self.hand_over(&mut batches, &mut paused);
            ctx.check_workers();
            // Measured from the end of the last commit: the workers always get a
            // whole interval of work between two commits, however long one takes.
            if last_commit.elapsed() >= self.commit_interval {
                ctx.commit(&self.consumer);
                last_commit = Instant::now();
            }
        }
        if let Some(e) = ctx.failure.lock().unwrap().take() {
            health.set_ready(READY, false, "failed");
            // Dropping the handles aborts the workers where they are; the
            // supervisor aborts the open transaction.
            ctx.members.lock().unwrap().workers.clear();
            self.consumer.unsubscribe();
            return Err(e);
        }
        tracing::info!("consume loop stopping: draining all partitions");
        let parts: Vec<i32> = ctx.members.lock().unwrap().workers.keys().copied().collect();
        ctx.drain(&self.consumer, &parts);
        self.consumer.unsubscribe();
        health.set_ready(READY, false, "stopped");
        ctx.failure.lock().unwrap().take().map_or(Ok(()), Err)
    }

    /// Give each partition's collected records to its worker; pause the
    /// partitions whose worker is full, resume those whose worker took them.
    fn hand_over(&self, batches: &mut FxHashMap<i32, RawBatch>, paused: &mut FxHashSet<i32>) {
        let ctx = self.consumer.context();
        let m = ctx.members.lock().unwrap();
        for (p, batch) in batches.iter_mut() {
            if batch.is_empty() {
                continue;
            }
            let Some(h) = m.workers.get(p) else {
                tracing::debug!(partition = p, "partition not assigned; records left for its owner");
                batch.clear();
                continue;
            };
            // A slot first: a full worker leaves the batch where it is (the
            // retries of a paused partition take and copy nothing).
            match h.tx.try_reserve() {
                Ok(slot) => {
                    slot.send(Cmd::Records(batch.take(&ctx.shared.batches)));
                    if paused.remove(p) {
                        self.pause_resume(*p, false);
                    }
                }
                Err(TrySendError::Full(())) => {
                    if paused.insert(*p) {
                        ctx.shared.metrics.pauses.inc();
                        self.pause_resume(*p, true);
                    }
                }
                Err(TrySendError::Closed(())) => {
                    tracing::debug!(partition = p, "worker gone; records left for the next owner");
                    batch.clear();
                }
            }
        }
        // A partition no longer ours needs no resume (it was revoked).
        paused.retain(|p| m.workers.contains_key(p));
        ctx.shared.metrics.paused.set(paused.len() as i64);
    }

    /// After a rebalance: drop what was collected (it is fetched again from the
    /// committed offsets) and lift the pauses this loop set.
    fn forget(&self, batches: &mut FxHashMap<i32, RawBatch>, paused: &mut FxHashSet<i32>) {
        batches.values_mut().for_each(RawBatch::clear);
        for p in paused.drain() {
            self.pause_resume(p, false);
        }
    }

    fn pause_resume(&self, p: i32, pause: bool) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.consumer.context().shared.raw_topic, p);
        let r = if pause { self.consumer.pause(&tpl) } else { self.consumer.resume(&tpl) };
        match r {
            Ok(()) => tracing::debug!(partition = p, pause, "worker backpressure"),
            // Not assigned any more (a rebalance moved it): nothing to lift.
            Err(e) => tracing::debug!(partition = p, pause, error = %e, "pause/resume not applied"),
        }
    }
}
