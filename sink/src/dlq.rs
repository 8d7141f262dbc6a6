//! The dead-letter topic: records the sink cannot decode, and rows ClickHouse rejects
//! with a permanent error (see `batch`), go there with why and where they came from,
//! and are never retried (retrying cannot make bad bytes good). The sink waits for
//! Kafka's acknowledgement before it counts the record as consumed, so a
//! dead-lettered record is never lost; a crash between that acknowledgement and the
//! offset commit can send it a second time (the headers say which record it is).
//!
//! Headers: `kevents.dlq.reason`, `kevents.dlq.topic`, `kevents.dlq.partition`,
//! `kevents.dlq.offset`, `kevents.dlq.stage` (= `sink`). Key and value are the
//! original bytes.

use runtime::backoff::Backoff;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

pub const HEADER_REASON: &str = "kevents.dlq.reason";
pub const HEADER_TOPIC: &str = "kevents.dlq.topic";
pub const HEADER_PARTITION: &str = "kevents.dlq.partition";
pub const HEADER_OFFSET: &str = "kevents.dlq.offset";
pub const HEADER_STAGE: &str = "kevents.dlq.stage";

/// Where a poison record came from.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Send one poison record, retrying Kafka errors with backoff (the dead-letter
/// topic being unreachable is an outage, not a property of the record). Returns
/// when Kafka acknowledged it, or `Err` when `stop` fired first.
pub async fn send(
    producer: &FutureProducer,
    dlq_topic: &str,
    origin: &Origin<'_>,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    reason: &str,
    stop: &runtime::shutdown::CancellationToken,
) -> Result<(), String> {
    let partition = origin.partition.to_string();
    let offset = origin.offset.to_string();
    let mut backoff = Backoff::up_to(Duration::from_secs(10));
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header { key: HEADER_REASON, value: Some(reason) })
            .insert(Header { key: HEADER_TOPIC, value: Some(origin.topic) })
            .insert(Header { key: HEADER_PARTITION, value: Some(&partition) })
            .insert(Header { key: HEADER_OFFSET, value: Some(&offset) })
            .insert(Header { key: HEADER_STAGE, value: Some("sink") });
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq_topic).headers(headers);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(p) = payload {
            rec = rec.payload(p);
        }
        let err = match producer.send(rec, Duration::from_secs(30)).await {
            Ok(_) => return Ok(()),
            Err((e, _)) => e,
        };
        let delay = backoff.next_delay(None);
        tracing::warn!(error = %err, topic = dlq_topic, "dead-letter send failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return Err(format!("stopped while dead-lettering: {err}")),
        }
    }
}
