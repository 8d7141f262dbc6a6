//! Reading a whole topic back, for tests that count what a stage wrote: every
//! partition from its low watermark to its end at the time of the call, as a
//! `read_committed` consumer sees it (records of aborted or still open
//! transactions are not returned; the sink and the notifiers read the same way).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::ServicesError;

/// One message as read back.
#[derive(Debug, Clone)]
pub struct ReadMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Every message of `topic` present now, ordered by (partition, offset). Blocking.
pub fn read_topic(bootstrap: &str, topic: &str) -> Result<Vec<ReadMessage>, ServicesError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kevents-test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        // The end of a partition for read_committed is its last stable offset, and
        // transaction markers take offsets no message has: stop at the EOF event,
        // not at the high watermark.
        .set("enable.partition.eof", "true")
        .create()
        ?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        ?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut out = Vec::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            ?;
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(low))?;
        consumer.assign(&tpl)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut next = low;
        while next < high {
            if Instant::now() > deadline {
                return Err(ServicesError::ReadTimeout { topic: topic.to_string(), partition: p, at: next, high });
            }
            let Some(m) = consumer.poll(Duration::from_millis(500)) else { continue };
            let m = match m {
                Err(rdkafka::error::KafkaError::PartitionEOF(_)) => break,
                other => other?,
            };
            next = m.offset() + 1;
            if m.offset() >= high {
                break;
            }
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(ReadMessage {
                partition: p,
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
    }
    Ok(out)
}
