//! The dead-letter topic: records the endpoint rejected for good (a permanent
//! 4xx on the record alone, see [`crate::send`]) and records that cannot be
//! decoded go there with the reason, never retried and never silently dropped.
//! The exporter waits for Kafka's acknowledgement before it commits past the
//! record, so a dead letter is never lost; a crash between that acknowledgement
//! and the commit writes it a second time (the headers say which record it is).
//!
//! The format is the sink's (`sink::dlq`): key and value are the original bytes;
//! headers `kevents.dlq.reason`, `kevents.dlq.topic`, `kevents.dlq.partition`,
//! `kevents.dlq.offset`, and `kevents.dlq.stage` = `export`.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use runtime::backoff::Backoff;
use runtime::shutdown::CancellationToken;
use std::time::Duration;

use crate::send::Stopped;

pub const HEADER_REASON: &str = "kevents.dlq.reason";
pub const HEADER_TOPIC: &str = "kevents.dlq.topic";
pub const HEADER_PARTITION: &str = "kevents.dlq.partition";
pub const HEADER_OFFSET: &str = "kevents.dlq.offset";
pub const HEADER_STAGE: &str = "kevents.dlq.stage";
pub const STAGE: &str = "export";

/// A record to dead-letter: where it came from, its bytes, why.
pub struct Letter<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub reason: &'a str,
}

/// Send one dead letter, retrying Kafka errors with backoff (the dead-letter
/// topic being unreachable is an outage, not a property of the record); returns
/// once Kafka acknowledged it, or `Err` when `stop` fired first.
pub async fn send(producer: &FutureProducer, dlq_topic: &str, l: &Letter<'_>, stop: &CancellationToken) -> Result<(), Stopped> {
    let partition = l.partition.to_string();
    let offset = l.offset.to_string();
    let mut backoff = Backoff::up_to(Duration::from_secs(10));
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header { key: HEADER_REASON, value: Some(l.reason) })
            .insert(Header { key: HEADER_TOPIC, value: Some(l.topic) })
            .insert(Header { key: HEADER_PARTITION, value: Some(&partition) })
            .insert(Header { key: HEADER_OFFSET, value: Some(&offset) })
            .insert(Header { key: HEADER_STAGE, value: Some(STAGE) });
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq_topic).headers(headers);
        if let Some(k) = l.key {
            rec = rec.key(k);
        }
        if let Some(p) = l.payload {
            rec = rec.payload(p);
        }
        let err = tokio::select! {
            biased;
            _ = stop.cancelled() => return Err(Stopped),
            r = producer.send(rec, Duration::from_secs(30)) => match r {
                Ok(_) => return Ok(()),
                Err((e, _)) => e,
            },
        };
        let delay = backoff.next_delay(None);
        tracing::warn!(error = %err, topic = dlq_topic, "dead-letter send failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return Err(Stopped),
        }
    }
}
