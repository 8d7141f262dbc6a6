//! Restoring a partition's state by replay, when a member starts owning it.
//!
//! The state (occurrences, leader epochs; see `occurrence`) is not stored
//! anywhere: it is a deterministic function of the raw partition's records. A new
//! owner whose first record is at offset C (the group's committed offset) reads
//! the partition again from the offset whose timestamp is `horizon` before record
//! C's (Kafka `offsets_for_times`) up to C − 1, applying each record to the state
//! *without emitting*. Everything older than the horizon is, by construction, state
//! that no later record can use (entries expire after `horizon` of record time).
//! Then it processes from C, emitting. Because the step is deterministic given
//! (state, input):
//! - outputs after C are what the previous owner would have emitted;
//! - outputs the previous owner emitted past C but never committed (it crashed or
//!   lost the partition mid-flight) are re-emitted byte-identically — same ids,
//!   same `SourcePos`, same timestamps — and the sink stores them once.
//!
//! Precondition for exactness: record timestamps (producer time) track the
//! records' `observed_us` within the horizon's margin, which holds for the
//! collector (it sets both when it publishes). The cost: one horizon of raw
//! records per restored partition, read without classification (about as fast
//! as decoding). A member that gets back a partition it drained cleanly reuses
//! its state instead (`worker::Parked`).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::time::Duration;

use crate::step::{Engine, PartitionState};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("no record arrived within {0:?} while replaying up to offset {1}")]
    Stalled(Duration, i64),
}

/// The first offset to replay from: the offset of the first record at or after
/// `from_ms`, or the partition's start when timestamps are unknown or the
/// broker cannot answer by time.
pub fn start_offset(consumer: &BaseConsumer, topic: &str, partition: i32, from_ms: Option<i64>) -> Result<i64, KafkaError> {
    let (low, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
    let Some(from_ms) = from_ms else { return Ok(low) };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from_ms.max(0)))?;
    match consumer.offsets_for_times(tpl, TIMEOUT) {
        Ok(found) => Ok(match found.find_partition(topic, partition).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.max(low),
            // No record at or after that time.
            _ => high,
        }),
        Err(e) => {
            tracing::warn!(error = %e, topic, partition, "offsets_for_times failed: replaying the whole partition");
            Ok(low)
        }
    }
}

/// Replay records `[start, until)` of the partition into `state` (no outputs).
/// Returns the number of records replayed.
#[allow(clippy::too_many_arguments)]
pub fn replay(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    until: i64,
    from_ms: Option<i64>,
    codec: &Codec,
    engine: &Engine,
    state: &mut PartitionState,
) -> Result<u64, RestoreError> {
    if until <= 0 {
        return Ok(0);
    }
    let consumer: BaseConsumer = config.create()?;
    let start = start_offset(&consumer, topic, partition, from_ms)?;
    if start >= until {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    let mut n = 0;
    loop {
        match consumer.poll(TIMEOUT) {
            None => return Err(RestoreError::Stalled(TIMEOUT, until)),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                if m.offset() >= until {
                    break;
                }
                // Undecodable and contract-breaking records went to the dead-letter
                // topic and changed no state: skip them here too.
                if let Ok(raw) = codec.decode::<RawRecord>(m.payload().unwrap_or_default()) {
                    let _ = state.replay(engine, raw, m.offset());
                }
                n += 1;
                if m.offset() + 1 >= until {
                    break;
                }
            }
        }
    }
    Ok(n)
}

/// Client settings for the restore reader: the member's connection settings, no
/// group membership effects (assign only, nothing committed).
pub fn reader_config(base: &ClientConfig, group_id: &str) -> ClientConfig {
    let mut c = base.clone();
    c.set("group.id", format!("{group_id}-restore"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest");
    c
}
