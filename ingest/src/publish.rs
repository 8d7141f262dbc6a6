//! Writing a request's events to the raw topic, and knowing when they are stored.
//!
//! Guarantee: a request is answered 2xx only after Kafka acknowledged every one of
//! its records (the runtime's reliable producer: idempotent, acks=all). A batch is
//! refused whole (400, 403, 413, 429) before anything is sent; once sent, if any
//! record is not acknowledged within `delivery_timeout_ms` the request is answered
//! 503 — and some of its records may have been stored anyway. The client retries
//! the same request, and the deterministic ids ([`crate::incoming`]) make the
//! processor drop what was already stored, so "whole or not at all" holds for what
//! the pipeline emits.
//!
//! Partitioning: records are keyed by the cluster uid and partitioned with
//! librdkafka's `murmur2_random`, the Java client's default partitioner, which the
//! collector computes itself (`collector::publish::partition_for`): an application's
//! event lands in the same partition as its cluster's events, so one processor
//! member sees both, in order, and correlates them.

use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::time::Duration;

use crate::error::ApiError;

/// The producer settings: the runtime's reliable ones, the collector's
/// partitioner, and a delivery timeout so a request is answered.
///
/// `message.timeout.ms` is the one setting that differs from the other stages
/// (which retry for ever, 0): here a client is waiting, and a bounded wait is
/// answered 503 so that the client can retry or give up.
pub fn producer_config(base: &ClientConfig, delivery_timeout: Duration) -> ClientConfig {
    let mut c = runtime::kafka::producer_config(base);
    c.set("partitioner", "murmur2_random")
        .set("message.timeout.ms", delivery_timeout.as_millis().to_string())
        .set("linger.ms", "2");
    c
}

/// Sends the records of requests and waits for their acknowledgements.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    codec: Codec,
    timeout: Duration,
}

impl Publisher {
    pub fn new(producer: FutureProducer, topic: &str, codec: Codec, timeout: Duration) -> Self {
        Publisher { producer, topic: topic.into(), codec, timeout }
    }

    /// Send every record, then wait for all acknowledgements: `Ok` only when each
    /// is stored.
    pub async fn publish(&self, records: &[RawRecord]) -> Result<(), ApiError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for r in records {
            let payload = self.codec.encode(r).map_err(|e| ApiError::Internal(format!("encoding a record: {e}")))?;
            let record = FutureRecord::to(&self.topic).key(r.key()).payload(&payload);
            match self.producer.send_result(record) {
                Ok(d) => deliveries.push(d),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Err(ApiError::Unavailable("the producer's queue is full (Kafka slow or down)".into()))
                }
                Err((e, _)) => return Err(ApiError::Unavailable(format!("kafka: {e}"))),
            }
        }
        // librdkafka fails each delivery after `message.timeout.ms`; the outer
        // timeout only guards against a delivery report that never comes.
        let all = tokio::time::timeout(self.timeout + Duration::from_secs(2), join_all(deliveries))
            .await
            .map_err(|_| ApiError::Unavailable("Kafka did not acknowledge in time".into()))?;
        for d in all {
            match d {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(ApiError::Unavailable(format!("kafka: {e}"))),
                Err(_) => return Err(ApiError::Unavailable("the producer dropped a delivery".into())),
            }
        }
        Ok(())
    }

    /// Whether the raw topic's metadata can be fetched (for `/readyz`): the number
    /// of its partitions. Blocks for up to `wait`.
    pub fn check(&self, wait: Duration) -> Result<usize, String> {
        let md = self.producer.client().fetch_metadata(Some(&self.topic), wait).map_err(|e| format!("kafka: {e}"))?;
        let n = md.topics().iter().find(|t| t.name() == self.topic).map(|t| if t.error().is_some() { 0 } else { t.partitions().len() }).unwrap_or(0);
        if n == 0 {
            return Err(format!("topic {} not found", self.topic));
        }
        Ok(n)
    }

    /// Wait for what is still queued (shutdown).
    pub fn flush(&self, wait: Duration) {
        let _ = self.producer.flush(wait);
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliable_settings_with_a_bounded_delivery() {
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", "127.0.0.1:1");
        let c = producer_config(&base, Duration::from_secs(7));
        assert_eq!((c.get("acks"), c.get("enable.idempotence")), (Some("all"), Some("true")));
        assert_eq!((c.get("message.timeout.ms"), c.get("partitioner")), (Some("7000"), Some("murmur2_random")));
    }
}
