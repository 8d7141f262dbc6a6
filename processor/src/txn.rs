//! Exactly-once: the outputs of the raw records a member processed, and the raw
//! offsets of those records, are committed in one Kafka transaction.
//!
//! The way Kafka Streams does it (exactly-once v2, KIP-447): one transactional
//! producer per member, whose transactions may span every raw partition the member
//! owns; the offsets are sent into the transaction with the consumer's group
//! metadata, so the group coordinator fences a member that lost its partitions in a
//! rebalance (an older generation) and the transaction coordinator fences an older
//! producer with the same `transactional.id`. One producer per member rather than
//! one per partition (exactly-once v1): a commit costs the same few round trips
//! whatever the number of partitions, and a member keeps one set of connections.
//!
//! Who holds which half:
//! - workers (`worker`) send a whole batch of raw records' outputs while holding the
//!   [`Gate`]'s read side, then publish in `handled` the offset of the batch's last
//!   record: every output of it and of every earlier record is in the producer;
//! - the consume loop (`consume`) commits: every `commit_interval_ms`, before a
//!   partition is revoked, and at shutdown. [`Transactions::commit`] takes the write
//!   side (no worker is inside a batch), reads every partition's `handled` under it
//!   (read before, a batch finishing in between would put outputs in this transaction
//!   whose offsets are not), sends `handled + 1` of each partition that moved, and
//!   commits.
//!
//! Failure: a commit that fails is aborted, the member stops with an error, and no
//! later commit is attempted (not even the shutdown's); the same after any other
//! fatal error ([`Transactions::poison`]: a worker may have stopped in the middle of
//! a batch whose first outputs are in the open transaction). The
//! aborted outputs are never seen by `read_committed` readers (the sink and the
//! notifiers); the restarted member (or the partitions' next owner) resumes at the
//! committed offsets and makes them again, byte-identically. A broker without
//! transactions stops the processor at start with [`TxnError::Unsupported`].

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use crate::deliveries::MemberProducer;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Why a transaction could not be started or committed. All are fatal for the
/// member: the error says what happened, the restart recovers.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error(
        "transactions could not be initialised with the Kafka broker ({0}); kevents' processor commits its \
         outputs and offsets in transactions and needs a reachable broker that supports them (Apache Kafka 2.5 \
         or newer with its transaction state topic available)"
    )]
    Unsupported(KafkaError),
    #[error("fenced: another producer with transactional.id {id} took over, or this member left the group ({error})")]
    Fenced { id: String, error: KafkaError },
    #[error("{step} failed, transaction aborted: {error}")]
    Aborted { step: &'static str, error: KafkaError },
    #[error("no consumer group metadata (the consumer has not joined its group)")]
    NoGroupMetadata,
    #[error("an earlier transaction failed; nothing more is committed")]
    Failed,
}

/// What a commit did: how long it held the workers, and the offsets it committed.
pub type Committed = (Duration, Vec<(i32, i64)>);

/// The write side excludes every worker's batch: a commit sees whole batches only.
pub type Gate = tokio::sync::RwLock<()>;

/// The member's transactional producer and the gate around it.
pub struct Transactions {
    pub gate: Gate,
    id: String,
    timeout: Duration,
    failed: std::sync::atomic::AtomicBool,
    /// The open transaction was aborted already (or fenced: nothing to abort).
    ended: std::sync::atomic::AtomicBool,
}

/// The default `transactional.id`: stable across restarts of the same container
/// (a pod keeps its host name, and its process is pid 1), distinct between members,
/// and between several members in one process (tests).
pub fn default_transactional_id(group_id: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .unwrap_or_else(|| "localhost".into());
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{group_id}-{host}-{}-{seq}", std::process::id())
}

impl Transactions {
    /// Register the producer's `transactional.id` with the broker (fencing an older
    /// producer of the same id and aborting its open transaction) and begin the first
    /// transaction. Blocking: up to `timeout`.
    pub fn init(producer: &MemberProducer, id: String, timeout: Duration) -> Result<Transactions, TxnError> {
        producer.init_transactions(timeout).map_err(TxnError::Unsupported)?;
        producer.begin_transaction().map_err(TxnError::Unsupported)?;
        tracing::info!(transactional_id = %id, "transactions initialised");
        Ok(Transactions { gate: Gate::new(()), id, timeout, failed: Default::default(), ended: Default::default() })
    }

    /// Commit nothing from now on (the member stops after a failure: the open
    /// transaction may hold part of a batch, and the broker aborts it).
    pub fn poison(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the member failed: nothing is committed any more.
    pub fn is_failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// After a failure (the member stops): commit nothing more, and abort the open
    /// transaction unless a failed commit already did (or the member was fenced), so
    /// `read_committed` readers of the outputs are not held up until the transaction
    /// times out. Blocking: up to the transaction timeout.
    pub fn abort(&self, producer: &MemberProducer) {
        self.poison();
        if self.ended.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        match producer.abort_transaction(self.timeout) {
            Ok(()) => tracing::info!("open transaction aborted"),
            Err(e) => tracing::warn!(error = %e, "abort_transaction failed (the broker aborts it at the transaction timeout)"),
        }
    }

    /// Commit the open transaction with the raw offsets `snapshot` returns
    /// (partition, next offset to read), then begin the next one. Called on the
    /// consume thread (the consumer's group metadata must be current); blocks until
    /// every worker left its batch, then calls `snapshot` with none inside one.
    /// Returns how long the workers were held and the offsets committed (`None`:
    /// no partition moved, nothing to commit).
    pub fn commit<C: ConsumerContext>(
        &self,
        producer: &MemberProducer,
        consumer: &BaseConsumer<C>,
        raw_topic: &str,
        snapshot: impl FnOnce() -> Vec<(i32, i64)>,
    ) -> Result<Option<Committed>, TxnError> {
        use std::sync::atomic::Ordering;
        if self.failed.load(Ordering::Acquire) {
            return Err(TxnError::Failed);
        }
        let _quiet = self.gate.blocking_write();
        let held = Instant::now();
        let next = snapshot();
        if next.is_empty() {
            return Ok(None);
        }
        let result = self.commit_quiet(producer, consumer, raw_topic, &next);
        if let Err(e) = &result {
            self.failed.store(true, Ordering::Release);
            self.ended.store(true, Ordering::Release);
            tracing::error!(error = %e, "transaction failed");
            if !matches!(e, TxnError::Fenced { .. }) {
                if let Err(abort) = producer.abort_transaction(self.timeout) {
                    tracing::error!(error = %abort, "abort_transaction failed too");
                }
            }
        }
        result.map(|()| Some((held.elapsed(), next)))
    }

    fn commit_quiet<C: ConsumerContext>(
        &self,
        producer: &MemberProducer,
        consumer: &BaseConsumer<C>,
        raw_topic: &str,
        next: &[(i32, i64)],
    ) -> Result<(), TxnError> {
        let step = |step: &'static str| {
            let id = self.id.clone();
            move |error: KafkaError| classify(step, &id, error)
        };
        // Wait for every output to be acknowledged before committing. rdkafka's
        // `commit_transaction` (and `flush`) would do it too, but in polls of up to
        // 100 ms on a queue the producer's own thread is also serving, so each one
        // waits the whole 100 ms: a tenth of a second per commit with the workers
        // held. Polling the count costs nothing; the commit then finds nothing left.
        let deadline = Instant::now() + self.timeout;
        while producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(TxnError::Aborted {
                    step: "waiting for deliveries",
                    error: KafkaError::Flush(rdkafka::types::RDKafkaErrorCode::RequestTimedOut),
                });
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let mut tpl = TopicPartitionList::new();
        for &(p, offset) in next {
            tpl.add_partition_offset(raw_topic, p, Offset::Offset(offset))
                .map_err(step("offsets"))?;
        }
        let group = consumer.group_metadata().ok_or(TxnError::NoGroupMetadata)?;
        producer
            .send_offsets_to_transaction(&tpl, &group, self.timeout)
            .map_err(step("send_offsets_to_transaction"))?;
        producer.commit_transaction(self.timeout).map_err(step("commit_transaction"))?;
        producer.begin_transaction().map_err(step("begin_transaction"))?;
        Ok(())
    }
}

fn classify(step: &'static str, id: &str, error: KafkaError) -> TxnError {
    let fenced = matches!(&error, KafkaError::Transaction(e) if e.is_fatal())
        || matches!(
            error.rdkafka_error_code(),
            Some(
                rdkafka::types::RDKafkaErrorCode::Fenced
                    | rdkafka::types::RDKafkaErrorCode::ProducerFenced
                    | rdkafka::types::RDKafkaErrorCode::InvalidProducerEpoch
            )
        );
    if fenced {
        TxnError::Fenced { id: id.to_owned(), error }
    } else {
        TxnError::Aborted { step, error }
    }
}
