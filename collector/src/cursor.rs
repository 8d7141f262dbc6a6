//! The cursor is the data: where to resume is read back from the raw topic itself.
//!
//! The collector keeps no local state. On start and on every leadership takeover it
//! reads its cluster's partition backwards, chunk by chunk, from the end, and finds
//! the last record it (or a previous leader) published for each watch scope — an
//! event or a heartbeat, both carry the resourceVersion the scope had reached.
//! Because the producer is idempotent and in order, everything before that record
//! is in the topic too, so watching from that resourceVersion loses nothing and
//! repeats nothing. Heartbeats every few seconds keep the scan short.
//!
//! The consumer's prefetch is capped at the collector's in-flight budget in bytes
//! (librdkafka's default would buffer up to 64 MiB of a busy partition at takeover).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use schemas::avro::Codec;
use runtime::kafka::KafkaConfig;
use schemas::records::RawRecord;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Records read per step backwards.
const CHUNK: i64 = 2000;

#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("kafka config: {0}")]
    Config(String),
    #[error("timed out reading offsets {from}..{to} of partition {partition}")]
    Timeout { partition: i32, from: i64, to: i64 },
}

/// Where each scope resumes: `scope → resourceVersion`, plus the epoch of the
/// newest leader seen (a new leader must write with a higher one).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cursor {
    pub resume: HashMap<String, String>,
    pub last_epoch: i64,
    /// Records of this cluster read while scanning (diagnostics).
    pub scanned: u64,
}

/// Which scope a record belongs to, given the watched scopes.
pub fn scope_of(rec: &RawRecord, scoped_by_namespace: bool) -> String {
    if let Some(h) = &rec.heartbeat {
        return h.scope.clone();
    }
    match (&rec.event, scoped_by_namespace) {
        (Some(e), true) => e.event.namespace.as_str().to_owned(),
        _ => String::new(),
    }
}

/// The cursor reader's consumer settings: no group offsets, end-of-partition events,
/// and a prefetch of at most one chunk and `prefetch_bytes` (at least one fetch of
/// librdkafka's default 1 MiB per partition).
pub fn consumer_config(kafka: &KafkaConfig, prefetch_bytes: usize) -> Result<ClientConfig, CursorError> {
    let mut cfg = kafka.client_config().map_err(|e| CursorError::Config(e.to_string()))?;
    let prefetch = prefetch_bytes.max(1 << 20);
    cfg.set("group.id", "kevents-collector-cursor")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("queued.min.messages", CHUNK.to_string())
        .set("queued.max.messages.kbytes", prefetch.div_ceil(1024).to_string())
        .set("fetch.max.bytes", prefetch.to_string());
    Ok(cfg)
}

/// Read the cursor of `cluster_uid` for `scopes` from `topic`/`partition`, with a
/// consumer made from `cfg` ([`consumer_config`]).
pub fn read_cursor(
    cfg: ClientConfig,
    topic: &str,
    partition: i32,
    cluster_uid: &str,
    scopes: &[String],
    scoped_by_namespace: bool,
    codec: &Codec,
) -> Result<Cursor, CursorError> {
    let consumer: BaseConsumer = cfg.create()?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
    let mut cursor = Cursor::default();
    let mut end = high;
    while end > low && cursor.resume.len() < scopes.len() {
        let start = (end - CHUNK).max(low);
        let mut found: HashMap<String, String> = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
        consumer.assign(&tpl)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut next = start;
        while next < end {
            if Instant::now() > deadline {
                return Err(CursorError::Timeout { partition, from: start, to: end });
            }
            let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
            let msg = match msg {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(_)) => break,
                Err(e) => return Err(e.into()),
            };
            next = msg.offset() + 1;
            if msg.offset() >= end || msg.key() != Some(cluster_uid.as_bytes()) {
                continue;
            }
            // Undecodable records are not ours to judge here: the processor
            // dead-letters them. Skip them for the cursor.
            let Ok(rec) = codec.decode::<RawRecord>(msg.payload().unwrap_or_default()) else { continue };
            cursor.scanned += 1;
            cursor.last_epoch = cursor.last_epoch.max(rec.collector.leader_epoch);
            let scope = scope_of(&rec, scoped_by_namespace);
            if scopes.contains(&scope) && !rec.resource_version.is_empty() {
                found.insert(scope, rec.resource_version.clone());
            }
        }
        // Later chunks were read first: only fill scopes not already found.
        for (scope, rv) in found {
            cursor.resume.entry(scope).or_insert(rv);
        }
        end = start;
    }
    Ok(cursor)
}
