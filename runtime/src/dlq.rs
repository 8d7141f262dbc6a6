//! The dead-letter topic's record format, and sending one dead letter, shared by the
//! stages that consume a topic and must never drop what they cannot handle (the
//! sink: undecodable records, rows ClickHouse rejects for good; the exporter:
//! undecodable records, records the OTLP endpoint rejects for good). The processor
//! writes its dead letters inside its transaction, with the same header names.
//!
//! Key and value are the original bytes; headers `kevents.dlq.reason`,
//! `kevents.dlq.topic`, `kevents.dlq.partition`, `kevents.dlq.offset` say why and
//! where the record came from, `kevents.dlq.stage` which stage gave up on it.
//! A caller waits for Kafka's acknowledgement before it commits past the record, so
//! a dead letter is never lost; a crash between that acknowledgement and the commit
//! writes it a second time (the headers say which record it is).

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

use crate::backoff::Backoff;
use crate::shutdown::CancellationToken;

pub const HEADER_REASON: &str = "kevents.dlq.reason";
pub const HEADER_TOPIC: &str = "kevents.dlq.topic";
pub const HEADER_PARTITION: &str = "kevents.dlq.partition";
pub const HEADER_OFFSET: &str = "kevents.dlq.offset";
pub const HEADER_STAGE: &str = "kevents.dlq.stage";

/// A record to dead-letter: where it came from, its bytes, why.
pub struct Letter<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub reason: &'a str,
}

/// Send one dead letter from `stage`, retrying Kafka errors with backoff (the
/// dead-letter topic being unreachable is an outage, not a property of the record).
/// Returns once Kafka acknowledged it, or `Err` (what failed last, if anything) when
/// `stop` fired first: the record is then not dead-lettered and the caller must not
/// commit past it.
pub async fn send(producer: &FutureProducer, dlq_topic: &str, stage: &str, l: &Letter<'_>, stop: &CancellationToken) -> Result<(), String> {
    let partition = l.partition.to_string();
    let offset = l.offset.to_string();
    let mut backoff = Backoff::up_to(Duration::from_secs(10));
    let mut last = String::from("no attempt finished");
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header { key: HEADER_REASON, value: Some(l.reason) })
            .insert(Header { key: HEADER_TOPIC, value: Some(l.topic) })
            .insert(Header { key: HEADER_PARTITION, value: Some(&partition) })
            .insert(Header { key: HEADER_OFFSET, value: Some(&offset) })
            .insert(Header { key: HEADER_STAGE, value: Some(stage) });
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq_topic).headers(headers);
        if let Some(k) = l.key {
            rec = rec.key(k);
        }
        if let Some(p) = l.payload {
            rec = rec.payload(p);
        }
        let err = tokio::select! {
            biased;
            _ = stop.cancelled() => return Err(format!("stopped while dead-lettering: {last}")),
            r = producer.send(rec, Duration::from_secs(30)) => match r {
                Ok(_) => return Ok(()),
                Err((e, _)) => e,
            },
        };
        tracing::warn!(error = %err, topic = dlq_topic, "dead-letter send failed; retrying");
        last = err.to_string();
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay(None)) => {}
            _ = stop.cancelled() => return Err(format!("stopped while dead-lettering: {last}")),
        }
    }
}
