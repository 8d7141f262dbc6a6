//! One worker per assigned raw partition: restore the partition's state, then
//! decode → step → encode → send, a batch of raw records at a time.
//!
//! Guarantee (exactly-once, with `txn`; precondition: outputs are deterministic,
//! see `step`): a batch's outputs are sent inside the member's open transaction
//! while the worker holds the transaction gate's read side; then the batch's last
//! offset is published in `handled`, which the consume loop commits in the same
//! transaction as those outputs. The work itself (decode, step, encode) happens
//! before the gate is taken, into a buffer of the batch's encoded outputs
//! ([`Staged`]): nothing leaves the worker until it is sent, so a commit in progress
//! holds up only the sending, and the workers compute their next batch meanwhile
//! (holding the gate for the whole batch kept them idle for every commit, up to a
//! third of the time at 100 ms commits). Restoring state (a replay that can take
//! seconds) also happens before the gate is taken. Deliveries are counted per
//! worker (`deliveries`); a worker takes no new batch while `max_in_flight` of its
//! outputs await acknowledgement (so at most that plus one batch wait), and memory
//! stays bounded.
//!
//! A record that cannot be decoded, or breaks the contract, goes to the
//! dead-letter topic with its original bytes and `kevents.dlq.*` headers, in the
//! same transaction as every other output, so it is never retried and never stops
//! the partition. A delivery failure is fatal (the transaction aborts, the
//! processor stops; the restart resumes at the committed offsets).

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::deliveries::{Acks, MemberProducer};
use crate::metrics::{Metrics, PartitionLabel};
use crate::output::{Output, OutputKind, OutputTopics};
use crate::restore;
use crate::step::{Engine, PartitionState};

/// Consecutive raw records of one partition copied out of the consumer, their
/// payloads and keys back to back in one buffer: one allocation per batch, not
/// one per record (the consume loop allocates, the worker frees, on another
/// thread).
#[derive(Debug, Default)]
pub struct RawBatch {
    buf: Vec<u8>,
    records: Vec<RawEntry>,
}

#[derive(Debug)]
struct RawEntry {
    offset: i64,
    timestamp_ms: Option<i64>,
    /// Payload is `buf[start..key_start]`, key `buf[key_start..end]`.
    start: usize,
    key_start: usize,
    end: usize,
    has_key: bool,
}

/// One record of a [`RawBatch`].
#[derive(Debug, Clone, Copy)]
pub struct RawMsg<'a> {
    pub offset: i64,
    /// Kafka timestamp (ms), if the record has one.
    pub timestamp_ms: Option<i64>,
    pub payload: &'a [u8],
    pub key: Option<&'a [u8]>,
}

impl RawBatch {
    pub fn push(&mut self, offset: i64, timestamp_ms: Option<i64>, payload: &[u8], key: Option<&[u8]>) {
        let start = self.buf.len();
        self.buf.extend_from_slice(payload);
        let key_start = self.buf.len();
        self.buf.extend_from_slice(key.unwrap_or_default());
        self.records.push(RawEntry { offset, timestamp_ms, start, key_start, end: self.buf.len(), has_key: key.is_some() });
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.records.clear();
    }

    /// The records so far, leaving in their place an empty batch from `pool`
    /// (one a worker gave back, its buffers already grown).
    pub fn take(&mut self, pool: &BatchPool) -> RawBatch {
        std::mem::replace(self, pool.get())
    }

    /// The records in offset order.
    pub fn iter(&self) -> impl Iterator<Item = RawMsg<'_>> {
        self.records.iter().map(|e| RawMsg {
            offset: e.offset,
            timestamp_ms: e.timestamp_ms,
            payload: &self.buf[e.start..e.key_start],
            key: e.has_key.then(|| &self.buf[e.key_start..e.end]),
        })
    }
}

/// Batches the workers are done with, on their way back to the consume loop:
/// their buffers are reused rather than allocated for every batch (a fresh
/// buffer of a few hundred kB per batch, allocated on the consume thread and
/// freed on a worker's).
#[derive(Debug, Default, Clone)]
pub struct BatchPool(Arc<std::sync::Mutex<Vec<RawBatch>>>);

impl BatchPool {
    /// At most this many wait (bounded memory).
    const MAX: usize = 64;

    pub fn give(&self, mut b: RawBatch) {
        b.clear();
        let mut pool = self.0.lock().unwrap();
        if pool.len() < Self::MAX {
            pool.push(b);
        }
    }

    pub fn get(&self) -> RawBatch {
        self.0.lock().unwrap().pop().unwrap_or_default()
    }
}

/// What the consume loop tells a worker.
#[derive(Debug)]
pub enum Cmd {
    /// Consecutive records of the partition, in offset order.
    Records(RawBatch),
    /// Stop reading, wait for in-flight outputs until `deadline`, reply with the
    /// state when everything was acknowledged.
    Drain { deadline: Instant, reply: std::sync::mpsc::SyncSender<Option<Parked>> },
}

/// A partition's state after a clean drain, kept by the member in case the
/// partition comes back (an eager rebalance revokes and re-assigns everything).
#[derive(Debug)]
pub struct Parked {
    pub state: PartitionState,
    /// The offset the state is exactly "before": reusable only if consumption
    /// resumes there.
    pub next_offset: i64,
}

/// Why a worker stopped the processor.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("partition {partition}: delivery to {topic} failed: {error}")]
    Delivery { partition: i32, topic: String, error: String },
    #[error("partition {partition}: sending to {topic}: {error}")]
    Send { partition: i32, topic: String, error: KafkaError },
    #[error("partition {partition}: encoding an output: {error}")]
    Encode { partition: i32, error: schemas::avro::CodecError },
    #[error("partition {partition}: restoring state: {error}")]
    Restore { partition: i32, error: restore::RestoreError },
    #[error(transparent)]
    Transaction(#[from] crate::txn::TxnError),
}

/// What every worker of a member shares.
pub struct Shared {
    pub engine: Arc<Engine>,
    /// The member's transactional producer (see `txn`).
    pub producer: MemberProducer,
    pub txn: crate::txn::Transactions,
    pub topics: OutputTopics,
    pub raw_topic: String,
    /// Client settings for the restore consumer.
    pub restore_config: ClientConfig,
    pub horizon_us: i64,
    pub max_entries: usize,
    pub max_in_flight: usize,
    /// Avro codec (ids from the schema registry or the built-in table).
    pub codec: Codec,
    pub metrics: Metrics,
    /// Emptied raw batches going back to the consume loop.
    pub batches: BatchPool,
    /// Fault injection (`debug.panic_on_text`), off by default.
    pub fault: crate::fault::Fault,
}

/// The encoded outputs of one batch, not sent yet: keys and payloads back to back
/// in one buffer (reused from batch to batch).
#[derive(Debug, Default)]
struct Staged {
    buf: Vec<u8>,
    outs: Vec<StagedOut>,
}

#[derive(Debug)]
struct StagedOut {
    kind: OutputKind,
    /// `buf[start..key_end]` is the key, `buf[key_end..end]` the payload.
    start: usize,
    key_end: usize,
    end: usize,
    has_key: bool,
    timestamp_ms: Option<i64>,
    /// A dead letter: the raw offset and why (its `kevents.dlq.*` headers).
    dead: Option<(i64, String)>,
}

impl Staged {
    fn clear(&mut self) {
        self.buf.clear();
        self.outs.clear();
    }

    fn push(&mut self, kind: OutputKind, key: Option<&[u8]>, timestamp_ms: Option<i64>, dead: Option<(i64, String)>, payload: impl FnOnce(&mut Vec<u8>) -> Result<(), schemas::avro::CodecError>) -> Result<(), schemas::avro::CodecError> {
        let start = self.buf.len();
        self.buf.extend_from_slice(key.unwrap_or_default());
        let key_end = self.buf.len();
        if let Err(e) = payload(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        self.outs.push(StagedOut { kind, start, key_end, end: self.buf.len(), has_key: key.is_some(), timestamp_ms, dead });
        Ok(())
    }
}

pub struct Worker {
    shared: Arc<Shared>,
    partition: i32,
    rx: mpsc::Receiver<Cmd>,
    /// Offset of the last input whose outputs (and all earlier ones) are in the
    /// producer, inside the open transaction: the consume loop commits `handled + 1`.
    handled: Arc<AtomicI64>,
    state: PartitionState,
    parked: Option<Parked>,
    next_offset: Option<i64>,
    /// Delivery reports of this worker's outputs (see `deliveries`).
    acks: Arc<Acks>,
    /// Outputs handed to the producer so far (in flight: `sent - acks.done()`).
    sent: u64,
    /// Acknowledged outputs by kind already counted in the metrics.
    delivered_seen: [u64; OutputKind::COUNT],
    codec: Codec,
    outs: Vec<Output>,
    staged: Staged,
    evictions_seen: crate::occurrence::Evictions,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, partition: i32, rx: mpsc::Receiver<Cmd>, handled: Arc<AtomicI64>, parked: Option<Parked>) -> Self {
        let state = PartitionState::for_engine(&shared.engine, partition, shared.horizon_us, shared.max_entries);
        let codec = shared.codec.clone();
        Worker {
            shared,
            partition,
            rx,
            handled,
            state,
            parked,
            next_offset: None,
            acks: Arc::default(),
            sent: 0,
            delivered_seen: [0; OutputKind::COUNT],
            codec,
            outs: Vec::with_capacity(4),
            staged: Staged::default(),
            evictions_seen: Default::default(),
        }
    }

    /// Run until drained or the channel closes (then in-flight outputs are
    /// awaited without a deadline: the consume loop only closes it on a crash path).
    pub async fn run(mut self) -> Result<(), WorkerError> {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let max = self.shared.max_in_flight as u64;
        let result = loop {
            if let Err(e) = self.check_deliveries() {
                break Err(e);
            }
            let (acks, sent) = (self.acks.clone(), self.sent);
            let full = sent - acks.done() >= max;
            tokio::select! {
                biased;
                _ = acks.wait_until(|a| sent - a.done() < max || a.failure().is_some()), if full => {}
                _ = tick.tick() => self.flush_metrics(),
                cmd = self.rx.recv(), if !full => match cmd {
                    Some(Cmd::Records(batch)) => {
                        let r = self.batch(&batch).await;
                        self.shared.batches.give(batch);
                        if let Err(e) = r {
                            break Err(e);
                        }
                    }
                    Some(Cmd::Drain { deadline, reply }) => {
                        let parked = self.drain(deadline).await;
                        self.flush_metrics();
                        let _ = reply.send(parked);
                        return Ok(());
                    }
                    None => {
                        let _ = self.drain(Instant::now() + Duration::from_secs(3600)).await;
                        break Ok(());
                    }
                },
            }
        };
        self.flush_metrics();
        result
    }

    /// Compute a batch's outputs (outside the transaction gate), then send them
    /// inside the open transaction (holding the gate's read side) and publish the
    /// batch's last offset as handled.
    async fn batch(&mut self, batch: &RawBatch) -> Result<(), WorkerError> {
        let Some(first) = batch.iter().next() else { return Ok(()) };
        if self.next_offset.is_none() {
            self.restore(first.offset, first.timestamp_ms).await?;
        }
        let mut staged = std::mem::take(&mut self.staged);
        staged.clear();
        let computed = batch.iter().try_for_each(|m| self.stage(m, &mut staged));
        let sent = match computed {
            Ok(()) => self.send_staged(&staged).await,
            Err(e) => Err(e),
        };
        self.staged = staged;
        sent
    }

    /// Decode, step and encode one record into `staged`.
    fn stage(&mut self, m: RawMsg<'_>, staged: &mut Staged) -> Result<(), WorkerError> {
        self.shared.fault.check(crate::fault::FaultSite::Worker, m.payload, || format!("partition {} offset {}", self.partition, m.offset));
        self.next_offset = Some(m.offset + 1);
        self.state.counts.consumed += 1;
        let mut outs = std::mem::take(&mut self.outs);
        outs.clear();
        let verdict = match self.codec.decode::<RawRecord>(m.payload) {
            Err(e) => Err(e.to_string()),
            Ok(raw) => self.state.process(&self.shared.engine, raw, m.offset, &mut outs).map_err(|e| e.to_string()),
        };
        let result = match verdict {
            Err(reason) => {
                self.state.counts.dead_letters += 1;
                tracing::warn!(partition = self.partition, offset = m.offset, %reason, "raw record sent to the dead-letter topic");
                staged
                    .push(OutputKind::DeadLetter, m.key, m.timestamp_ms, Some((m.offset, reason)), |b| {
                        b.extend_from_slice(m.payload);
                        Ok(())
                    })
                    .map_err(|error| WorkerError::Encode { partition: self.partition, error })
            }
            // The input's timestamp, not the send time: a replay writes identical records.
            Ok(()) => outs.iter().try_for_each(|o| {
                staged
                    .push(o.kind(), Some(o.key().as_bytes()), m.timestamp_ms, None, |b| o.encode_into(&self.codec, b))
                    .map_err(|error| WorkerError::Encode { partition: self.partition, error })
            }),
        };
        self.outs = outs;
        result
    }

    /// Send a batch's outputs inside the open transaction; never awaits a delivery
    /// (only a full local queue makes it wait).
    async fn send_staged(&mut self, staged: &Staged) -> Result<(), WorkerError> {
        let shared = self.shared.clone();
        let _in_transaction = shared.txn.gate.read().await;
        for o in &staged.outs {
            let key = o.has_key.then(|| &staged.buf[o.start..o.key_end]);
            let mut rec: BaseRecord<'_, [u8], [u8], _> = BaseRecord::with_opaque_to(shared.topics.get(o.kind), self.acks.tag(o.kind)).payload(&staged.buf[o.key_end..o.end]);
            rec.key = key;
            rec.timestamp = o.timestamp_ms;
            let (partition, offset);
            if let Some((raw_offset, reason)) = &o.dead {
                partition = self.partition.to_string();
                offset = raw_offset.to_string();
                rec.headers = Some(
                    OwnedHeaders::new()
                        .insert(Header { key: runtime::dlq::HEADER_REASON, value: Some(reason.as_str()) })
                        .insert(Header { key: runtime::dlq::HEADER_TOPIC, value: Some(shared.raw_topic.as_str()) })
                        .insert(Header { key: runtime::dlq::HEADER_PARTITION, value: Some(partition.as_str()) })
                        .insert(Header { key: runtime::dlq::HEADER_OFFSET, value: Some(offset.as_str()) }),
                );
            }
            enqueue(&shared.producer, rec, self.partition).await?;
            self.sent += 1;
        }
        if let Some(next) = self.next_offset {
            self.handled.store(next - 1, Ordering::Release);
        }
        Ok(())
    }

    /// A failed delivery is fatal (the transaction aborts, the member stops).
    fn check_deliveries(&self) -> Result<(), WorkerError> {
        match self.acks.failure() {
            None => Ok(()),
            Some((kind, error)) => Err(WorkerError::Delivery { partition: self.partition, topic: self.shared.topics.get(kind).to_string(), error }),
        }
    }

    /// Wait until every output sent is acknowledged (or `deadline`); the state
    /// when all were, without a failure.
    async fn drain(&mut self, deadline: Instant) -> Option<Parked> {
        let (acks, sent) = (self.acks.clone(), self.sent);
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, acks.wait_until(|a| a.done() >= sent)).await.is_err() {
            tracing::warn!(partition = self.partition, in_flight = sent - acks.done(), "drain deadline passed");
            return None;
        }
        if let Err(e) = self.check_deliveries() {
            tracing::error!(error = %e, "drain: delivery failed");
            return None;
        }
        let next_offset = self.next_offset?;
        let state = std::mem::replace(&mut self.state, PartitionState::new(self.partition, 1, 1));
        Some(Parked { state, next_offset })
    }

    /// Rebuild the state the previous owner had before offset `first`.
    async fn restore(&mut self, first: i64, timestamp_ms: Option<i64>) -> Result<(), WorkerError> {
        let m = &self.shared.metrics;
        if let Some(p) = self.parked.take() {
            if p.next_offset == first {
                self.state = p.state;
                Metrics::cause(&m.restores, "kept", 1);
                return Ok(());
            }
        }
        let from_ms = timestamp_ms.map(|t| t - self.shared.horizon_us / 1000);
        let shared = self.shared.clone();
        let partition = self.partition;
        let mut state = std::mem::replace(&mut self.state, PartitionState::new(partition, 1, 1));
        let started = Instant::now();
        let (state, result) = tokio::task::spawn_blocking(move || {
            let r = restore::replay(&shared.restore_config, &shared.raw_topic, partition, first, from_ms, &shared.codec, &shared.engine, &mut state);
            (state, r)
        })
        .await
        .expect("restore task does not panic");
        self.state = state;
        let replayed = result.map_err(|error| WorkerError::Restore { partition, error })?;
        Metrics::cause(&m.restores, if replayed == 0 { "empty" } else { "replay" }, 1);
        tracing::info!(partition, first, replayed, entries = self.state.occurrences().len(), took_ms = started.elapsed().as_millis() as u64, "partition state restored");
        Ok(())
    }

    fn flush_metrics(&mut self) {
        for kind in OutputKind::ALL {
            let d = self.acks.delivered(kind);
            self.state.counts.produced[kind as usize] += d - self.delivered_seen[kind as usize];
            self.delivered_seen[kind as usize] = d;
        }
        let m = &self.shared.metrics;
        self.state.counts.flush(m, &self.shared.topics.all());
        let label = PartitionLabel { partition: self.partition.to_string() };
        m.state_entries.get_or_create(&label).set(self.state.occurrences().len() as i64);
        m.in_flight.get_or_create(&label).set(self.sent.saturating_sub(self.acks.done()) as i64);
        m.open_incidents.get_or_create(&label).set(self.state.correlation().open_incidents() as i64);
        let ev = self.state.occurrences().evictions();
        Metrics::cause(&m.evictions, "horizon", ev.horizon.saturating_sub(self.evictions_seen.horizon));
        Metrics::cause(&m.evictions, "cap", ev.cap.saturating_sub(self.evictions_seen.cap));
        self.evictions_seen = ev;
    }
}

/// Hand a record to librdkafka, waiting while its local queue is full.
async fn enqueue(producer: &MemberProducer, mut rec: BaseRecord<'_, [u8], [u8], crate::deliveries::Tagged>, partition: i32) -> Result<(), WorkerError> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((error, r)) => {
                return Err(WorkerError::Send { partition, topic: r.topic.to_string(), error });
            }
        }
    }
}
