//! Publishing to the raw topic, in order, with the cursor moving only behind
//! Kafka's acknowledgements.
//!
//! Guarantee: at-least-once, in order, per cluster. The producer is idempotent
//! (acks=all, no reordering, no duplicates from its own retries) and retries
//! forever (`message.timeout.ms=0`): while Kafka is down, sends pile up to the
//! in-flight budget ([`Budget`]: `max_in_flight` records, `max_in_flight_bytes`
//! bytes), then the publisher loop waits for acknowledgements, the bounded
//! channel fills, and the watch stops reading — backpressure all the way to the
//! API server, memory bounded in bytes, nothing dropped. A delivery that fails anyway
//! (message too large, authorization) is fatal: the collector stops and the next
//! start resumes from the cursor in the topic, so nothing is skipped.
//!
//! Partitioning: every record of a cluster is keyed by the cluster UID and sent to
//! `murmur2(key) % partitions` — the Java client's default, computed here so the
//! cursor reader ([`crate::cursor`]) knows which partition to read. One partition
//! per cluster keeps the cluster's records in order (the processor correlates across
//! the objects of a cluster), and one cluster's event rate (at most thousands/s) is
//! far below one partition's capacity.

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use schemas::avro::Codec;
use runtime::kafka::KafkaConfig;
use schemas::records::RawRecord;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("kafka config: {0}")]
    Config(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("encoding a record: {0}")]
    Encode(#[from] schemas::avro::CodecError),
    #[error("delivery of a {kind} record failed permanently: {error}")]
    Delivery { kind: String, error: String },
    #[error("topic {0} not found or has no partitions")]
    NoTopic(String),
}

/// Kafka's default partitioner (murmur2 of the key, positive, modulo partitions).
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let rem = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match rem.len() {
        3 => {
            h ^= (rem[2] as u32) << 16;
            h ^= (rem[1] as u32) << 8;
            h ^= rem[0] as u32;
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= (rem[1] as u32) << 8;
            h ^= rem[0] as u32;
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= rem[0] as u32;
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// What may be sent to Kafka and not yet acknowledged, at most: the one bound on
/// the collector's memory between the watch and Kafka (`CollectorConfig`'s
/// `max_in_flight` and `max_in_flight_bytes`). librdkafka's own limits are derived
/// from it ([`producer_config`]), so its queue never holds more than the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub records: usize,
    /// Encoded value + key bytes (what librdkafka counts against its queue).
    pub bytes: usize,
}

/// librdkafka's largest record (`message.max.bytes`, its default): room for one record
/// of that size beyond the budget, since a record larger than the budget goes alone.
const MESSAGE_MAX_BYTES: usize = 1_000_000;

impl Budget {
    /// `queue.buffering.max.kbytes`: the budget plus one maximum-size record, so
    /// librdkafka's queue never refuses what the budget admitted.
    pub fn queue_kbytes(&self) -> usize {
        (self.bytes + MESSAGE_MAX_BYTES).div_ceil(1024)
    }

    /// `queue.buffering.max.messages`: the record budget plus heartbeats' headroom.
    pub fn queue_messages(&self) -> usize {
        self.records + 1000
    }

    /// `batch.size`: an eighth of the budget, so several batches are in flight (the
    /// producer pipelines up to 5 requests), within 16 KiB..1 MB (librdkafka's default).
    pub fn batch_bytes(&self) -> usize {
        (self.bytes / 8).clamp(16 << 10, MESSAGE_MAX_BYTES)
    }
}

/// The producer settings the guarantee depends on, with librdkafka's memory derived
/// from the in-flight budget.
pub fn producer_config(kafka: &KafkaConfig, budget: Budget) -> Result<ClientConfig, PublishError> {
    let mut c = kafka.client_config().map_err(|e| PublishError::Config(e.to_string()))?;
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        // 100 ms, not librdkafka's 5: a cluster's events come a few hundred a second,
        // and each acks=all request costs the collector and the broker a wake-up; at
        // 5 ms that was most of the collector's CPU in the side-by-side bench
        // (BENCHMARKS.md). Batches fill by size first at high rates, so only a quiet
        // cluster's latency grows, by at most 0.1 s. (The broker thread's spin while
        // the idempotent in-flight limit is reached is fixed in vendor/rdkafka-sys.)
        .set("linger.ms", "100")
        .set("message.timeout.ms", "0")
        .set("message.max.bytes", MESSAGE_MAX_BYTES.to_string())
        .set("queue.buffering.max.messages", budget.queue_messages().to_string())
        .set("queue.buffering.max.kbytes", budget.queue_kbytes().to_string())
        .set("batch.size", budget.batch_bytes().to_string())
        .set("batch.num.messages", budget.records.clamp(1, 10_000).to_string());
    Ok(c)
}

/// Number of partitions of `topic`.
pub fn partitions_of(producer: &FutureProducer, topic: &str) -> Result<i32, PublishError> {
    let md = producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let n = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len() as i32)
        .unwrap_or(0);
    if n == 0 {
        return Err(PublishError::NoTopic(topic.into()));
    }
    Ok(n)
}

/// What the acker needs to know about a sent record.
struct Pending {
    kind: &'static str,
    sent: Instant,
    /// Event last-seen time (µs), for the end-to-end lag metric; 0 for heartbeats.
    event_us: i64,
    /// Value + key bytes, given back to the budget on acknowledgement.
    bytes: usize,
    delivery: rdkafka::producer::DeliveryFuture,
}

/// Sends records in order and reports acknowledgements in order.
pub struct Publisher {
    producer: FutureProducer,
    codec: Codec,
    topic: String,
    partition: i32,
    budget: Budget,
    pending: VecDeque<Pending>,
    /// Sum of `bytes` over `pending`.
    pending_bytes: usize,
    buf: Vec<u8>,
    metrics: Metrics,
}

impl Publisher {
    pub fn new(producer: FutureProducer, topic: &str, partition: i32, budget: Budget, codec: Codec, metrics: Metrics) -> Self {
        Publisher {
            producer,
            codec,
            topic: topic.into(),
            partition,
            budget,
            pending: VecDeque::new(),
            pending_bytes: 0,
            buf: Vec::with_capacity(2048),
            metrics,
        }
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Records sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Bytes (value + key) sent and not yet acknowledged.
    pub fn in_flight_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Encode and send. First waits for acknowledgements while the record would not
    /// fit the budget — that wait is the backpressure. A record alone may exceed the
    /// byte budget (it is sent when nothing else is in flight).
    pub async fn send(&mut self, rec: &RawRecord, kind: &'static str) -> Result<(), PublishError> {
        self.buf.clear();
        self.codec.encode_into(rec, &mut self.buf)?;
        let event_us = rec.event.as_ref().map(|e| e.event.effective_time_us()).unwrap_or(0);
        let key = rec.key().as_bytes();
        let bytes = self.buf.len() + key.len();
        while !self.pending.is_empty()
            && (self.pending.len() >= self.budget.records || self.pending_bytes + bytes > self.budget.bytes)
        {
            self.ack_one().await?;
        }
        loop {
            let record = FutureRecord::to(&self.topic)
                .key(key)
                .payload(&self.buf[..])
                .partition(self.partition);
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.pending.push_back(Pending { kind, sent: Instant::now(), event_us, bytes, delivery });
                    self.pending_bytes += bytes;
                    self.metrics.queue_depth.set(self.pending.len() as i64);
                    self.metrics.queue_bytes.set(self.pending_bytes as i64);
                    return Ok(());
                }
                Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                    // librdkafka's own queue is full: wait for an acknowledgement.
                    if self.pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.ack_one().await?;
                    }
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Wait for the oldest pending delivery. Cancel-safe: the record leaves `pending`
    /// only once its result is in hand.
    pub async fn ack_one(&mut self) -> Result<(), PublishError> {
        let Some(front) = self.pending.front_mut() else { return Ok(()) };
        let res = (&mut front.delivery).await;
        let p = self.pending.pop_front().expect("front exists");
        self.finish(p, res)
    }

    /// Wait until the oldest pending record is acknowledged (forever when nothing is
    /// in flight), then acknowledge it and everything delivered after it; returns how
    /// many. The publisher loop selects on this beside the watch, so acknowledgements
    /// (the metrics, the publish probe) keep up when the watch goes quiet, not only
    /// when the next event or heartbeat arrives. Cancel-safe, as [`Self::ack_one`].
    pub async fn acked(&mut self) -> Result<usize, PublishError> {
        if self.pending.is_empty() {
            return std::future::pending().await;
        }
        self.ack_one().await?;
        Ok(1 + self.ack_ready()?)
    }

    /// Acknowledge, in order, everything already delivered, without waiting.
    /// Returns how many were acknowledged.
    pub fn ack_ready(&mut self) -> Result<usize, PublishError> {
        let mut n = 0;
        while let Some(p) = self.pending.front_mut() {
            let Some(res) = futures::FutureExt::now_or_never(&mut p.delivery) else { break };
            let p = self.pending.pop_front().expect("front exists");
            self.finish(p, res)?;
            n += 1;
        }
        Ok(n)
    }

    fn finish(
        &mut self,
        p: Pending,
        res: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
    ) -> Result<(), PublishError> {
        self.pending_bytes -= p.bytes;
        self.metrics.queue_depth.set(self.pending.len() as i64);
        self.metrics.queue_bytes.set(self.pending_bytes as i64);
        match res {
            Ok(Ok(_)) => {
                self.metrics.published(p.kind);
                self.metrics.publish_latency.observe(p.sent.elapsed().as_secs_f64());
                if p.event_us > 0 {
                    let lag_us = (now_us() - p.event_us).max(0);
                    self.metrics.end_to_end_lag.observe(lag_us as f64 / 1e6);
                }
                Ok(())
            }
            Ok(Err((e, _))) => Err(PublishError::Delivery {
                kind: p.kind.into(),
                error: e.to_string(),
            }),
            Err(_) => Err(PublishError::Delivery {
                kind: p.kind.into(),
                error: "producer dropped the delivery".into(),
            }),
        }
    }

    /// Wait until every sent record is acknowledged (shutdown, leadership loss).
    pub async fn drain(&mut self) -> Result<(), PublishError> {
        while !self.pending.is_empty() {
            self.ack_one().await?;
        }
        Ok(())
    }

    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}

/// Now in µs since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librdkafka's limits follow the budget: its queue holds the budget plus one
    /// maximum-size record, batches are an eighth of it within 16 KiB..1 MB.
    #[test]
    fn librdkafka_limits_derive_from_the_budget() {
        let b = Budget { records: 4096, bytes: 4 << 20 };
        assert_eq!((b.queue_kbytes(), b.queue_messages(), b.batch_bytes()), (5073, 5096, 524_288));
        let small = Budget { records: 10, bytes: 64 << 10 };
        assert_eq!((small.queue_kbytes(), small.batch_bytes()), (1041, 16 << 10));
        let big = Budget { records: 4096, bytes: 64 << 20 };
        assert_eq!(big.batch_bytes(), 1_000_000);
    }

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest / the Java client's DefaultPartitioner.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58897971);
        assert_eq!(murmur2(b"abc") as i32, 479470107);
        for n in 1..10 {
            assert!((0..n).contains(&partition_for(b"cluster-uid", n)));
        }
    }
}
