//! The exporter's loop: read a batch from the result topics, turn each record
//! into log records (and spans), deliver them, dead-letter what the endpoint
//! rejects for good, and only then commit the batch's offsets — synchronously,
//! before the next batch is read. The guarantee and its window are stated in
//! the crate doc.
//!
//! Why one batch at a time and no reading ahead: the consumer is polled only
//! while a batch is being read, so rebalance callbacks (which run inside the
//! poll) never meet a request in flight — a revoke finds everything delivered
//! committed, and what was read but not sent is dropped and read again from the
//! committed offsets by whoever owns the partitions next. The cost is that the
//! loop does not poll while the endpoint is down and requests are retried: the
//! poll interval is therefore set to Kafka's maximum (a day), so the member keeps
//! its partitions (another member could not deliver either) and a dead process is
//! still found by the session timeout (heartbeats run on librdkafka's thread).
//! The other side of that choice: a member joining while the endpoint is down
//! waits for the retrying member to poll again (eager rebalances need everyone),
//! i.e. until the endpoint answers — when neither could export anyway.

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use runtime::ops::Health;
use runtime::shutdown::CancellationToken;
use schemas::avro::Codec;
use schemas::records::{Incident, ProcessedEvent};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

use crate::config::ExportConfig;
use crate::dlq::{self, Letter};
use crate::logs::{self, Log};
use crate::metrics::Metrics;
use crate::send::{Endpoint, Signal, Stopped};
use crate::spans::{self, TraceSpan};
use crate::LOOP_PROBE;

/// Counts rebalances, so the loop can tell that what it read belongs to an
/// assignment that is gone; keeps `/readyz`'s `partitions` condition.
pub struct Ctx {
    generation: AtomicU64,
    health: Health,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, _c: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.health.set_ready("partitions", false, "revoked, waiting for an assignment");
            tracing::info!(partitions = tpl.count(), "partitions revoked (everything delivered is committed)");
        }
    }

    fn post_rebalance(&self, _c: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.health.set_ready("partitions", true, format!("{} assigned", tpl.count()));
            tracing::info!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

/// One Kafka record and what it became.
pub struct Item {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    pub logs: Vec<Log>,
    pub spans: Vec<TraceSpan>,
    /// Why it cannot be exported at all (undecodable): dead-lettered as it is.
    pub problem: Option<String>,
}

/// The loop's parts.
pub struct Pipeline {
    consumer: StreamConsumer<Ctx>,
    producer: FutureProducer,
    endpoint: Endpoint,
    codec: Codec,
    processed_topic: String,
    incidents_topic: String,
    dlq_topic: String,
    spans: bool,
    max_batch: usize,
    max_wait: Duration,
    metrics: Metrics,
    health: Health,
    stop: CancellationToken,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(cfg: &ExportConfig, base: &ClientConfig, endpoint: Endpoint, codec: Codec, metrics: Metrics, health: Health, stop: CancellationToken) -> Result<Pipeline, rdkafka::error::KafkaError> {
        let mut cc = runtime::kafka::consumer_config(base, &cfg.group_id);
        // Eager assignment: a revoke takes every partition at once (the loop drops
        // the batch it was reading and re-reads from the committed offsets).
        cc.set("partition.assignment.strategy", "range,roundrobin")
            // Kafka's maximum: the loop does not poll while a request is retried
            // (module doc).
            .set("max.poll.interval.ms", "86400000");
        let consumer: StreamConsumer<Ctx> = cc.create_with_context(Ctx { generation: AtomicU64::new(0), health: health.clone() })?;
        consumer.subscribe(&[&cfg.topics.processed, &cfg.topics.incidents])?;
        let producer: FutureProducer = runtime::kafka::producer_config(base).create()?;
        health.set_ready("partitions", false, "joining the group");
        Ok(Pipeline {
            consumer,
            producer,
            endpoint,
            codec,
            processed_topic: cfg.topics.processed.clone(),
            incidents_topic: cfg.topics.incidents.clone(),
            dlq_topic: cfg.topics.dlq.clone(),
            spans: cfg.incidents.spans(),
            max_batch: cfg.max_batch_records,
            max_wait: cfg.max_batch_wait(),
            metrics,
            health,
            stop,
        })
    }

    /// Read, deliver, commit — until the stop signal. A batch whose delivery
    /// the stop signal interrupts is not committed (the next run sends it).
    pub async fn run(self) {
        // An empty logs request: `/readyz` tells whether the endpoint answers
        // before the first record arrives.
        let empty = prost::Message::encode_to_vec(&logs::request(std::iter::empty()));
        if self.endpoint.post(Signal::Logs, &empty, &self.stop).await == crate::send::Posted::Stopped {
            return self.leave();
        }
        while let Some(batch) = self.read_batch().await {
            if batch.is_empty() {
                continue;
            }
            let started = Instant::now();
            if self.deliver(&batch).await.is_err() {
                tracing::info!(records = batch.len(), "stopped during delivery: this batch is not committed and is sent again on the next start");
                break;
            }
            tracing::debug!(records = batch.len(), took_ms = started.elapsed().as_millis() as u64, "batch delivered and committed");
        }
        self.leave()
    }

    fn leave(self) {
        self.consumer.unsubscribe();
        tracing::info!("exporter stopped");
    }

    fn generation(&self) -> u64 {
        self.consumer.context().generation.load(Ordering::SeqCst)
    }

    /// Up to `max_batch` records, waiting at most `max_wait` after the first;
    /// empty when a rebalance made the records read stale; `None` on stop.
    async fn read_batch(&self) -> Option<Vec<Item>> {
        let mut items = Vec::new();
        let mut generation = self.generation();
        let mut deadline: Option<Instant> = None;
        while items.len() < self.max_batch {
            let wait = deadline.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(Instant::now()));
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return None,
                r = tokio::time::timeout(wait, self.consumer.recv()) => match r {
                    Err(_) => {
                        self.health.touch(LOOP_PROBE);
                        if deadline.is_some() {
                            break;
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                    Ok(Ok(m)) => {
                        let g = self.generation();
                        if g != generation {
                            self.abandon(&mut items);
                            generation = g;
                            deadline = None;
                        }
                        items.push(self.item(&m));
                        deadline.get_or_insert_with(|| Instant::now() + self.max_wait);
                    }
                },
            }
        }
        if self.generation() != generation {
            self.abandon(&mut items);
        }
        Some(items)
    }

    fn abandon(&self, items: &mut Vec<Item>) {
        if !items.is_empty() {
            self.metrics.batches_abandoned.inc();
            tracing::info!(records = items.len(), "rebalance while reading: the records read are read again from the committed offsets");
            items.clear();
        }
    }

    /// Decode one record and convert it.
    fn item(&self, m: &BorrowedMessage<'_>) -> Item {
        let bytes = m.payload().unwrap_or_default();
        let mut item = Item {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            logs: vec![],
            spans: vec![],
            problem: None,
        };
        if item.topic == self.processed_topic {
            match self.codec.decode::<ProcessedEvent>(bytes) {
                Ok(e) => {
                    item.logs.push(logs::event(&e, self.spans));
                    item.spans.extend(self.spans.then(|| spans::event(&e)).flatten());
                }
                Err(e) => item.problem = Some(format!("undecodable processed event: {e}")),
            }
        } else if item.topic == self.incidents_topic {
            match self.codec.decode::<Incident>(bytes) {
                Ok(i) => {
                    item.logs.push(logs::incident(&i));
                    item.spans.extend(self.spans.then(|| spans::incident(&i)).flatten());
                }
                Err(e) => item.problem = Some(format!("undecodable incident: {e}")),
            }
        }
        item
    }

    /// Send every log and span of the batch, dead-letter what is rejected, then
    /// commit the batch's offsets.
    async fn deliver(&self, batch: &[Item]) -> Result<(), Stopped> {
        let mut rejected: BTreeMap<usize, String> = batch.iter().enumerate().filter_map(|(i, it)| it.problem.clone().map(|p| (i, p))).collect();
        let logs: Vec<(usize, &Log)> = batch.iter().enumerate().filter(|(i, _)| !rejected.contains_key(i)).flat_map(|(i, it)| it.logs.iter().map(move |l| (i, l))).collect();
        let spans: Vec<(usize, &TraceSpan)> = batch.iter().enumerate().filter(|(i, _)| !rejected.contains_key(i)).flat_map(|(i, it)| it.spans.iter().map(move |s| (i, s))).collect();
        let encode_logs = |u: &[(usize, &Log)]| prost::Message::encode_to_vec(&logs::request(u.iter().map(|(_, l)| *l)));
        let encode_spans = |u: &[(usize, &TraceSpan)]| prost::Message::encode_to_vec(&spans::request(u.iter().map(|(_, s)| *s)));
        // Both signals at once: the batch is done (and committed) sooner, which
        // also shortens the window in which a crash repeats it.
        let (logs_rejected, spans_rejected) = tokio::join!(
            async {
                if logs.is_empty() {
                    return Ok(vec![]);
                }
                self.endpoint.deliver(Signal::Logs, &logs, encode_logs, &self.stop).await
            },
            async {
                if spans.is_empty() {
                    return Ok(vec![]);
                }
                self.endpoint.deliver(Signal::Traces, &spans, encode_spans, &self.stop).await
            },
        );
        for (i, reason) in logs_rejected? {
            rejected.entry(i).or_insert(format!("the OTLP endpoint rejected the log record: {reason}"));
        }
        for (i, reason) in spans_rejected? {
            rejected.entry(i).or_insert(format!("the OTLP endpoint rejected the span: {reason}"));
        }
        for (i, reason) in &rejected {
            let it = &batch[*i];
            tracing::warn!(topic = %it.topic, partition = it.partition, offset = it.offset, %reason, "record dead-lettered");
            let letter = Letter { topic: &it.topic, partition: it.partition, offset: it.offset, key: it.key.as_deref(), payload: it.payload.as_deref(), reason };
            dlq::send(&self.producer, &self.dlq_topic, dlq::STAGE, &letter, &self.stop).await.map_err(|_| Stopped)?;
        }
        let mut done: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (i, it) in batch.iter().enumerate() {
            let d = done.entry(&it.topic).or_default();
            if rejected.contains_key(&i) {
                d.1 += 1;
            } else {
                d.0 += 1;
            }
        }
        for (topic, (ok, dead)) in done {
            self.metrics.record(topic, "exported", ok);
            self.metrics.record(topic, "dead_lettered", dead);
        }
        self.commit(batch);
        Ok(())
    }

    /// Commit the offsets after the batch's records, synchronously: the shorter
    /// the time between the endpoint's answer and this acknowledgement, the
    /// smaller the window in which a crash repeats the batch.
    fn commit(&self, batch: &[Item]) {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for it in batch {
            let e = next.entry((&it.topic, it.partition)).or_insert(0);
            *e = (*e).max(it.offset + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, p), off) in next {
            let _ = tpl.add_partition_offset(topic, p, Offset::Offset(off));
        }
        let started = Instant::now();
        let committed = self.consumer.commit(&tpl, CommitMode::Sync);
        tracing::debug!(took_ms = started.elapsed().as_millis() as u64, "offsets committed");
        if let Err(e) = committed {
            self.metrics.commit_failures.inc();
            tracing::warn!(error = %e, "offset commit failed: the batch is sent again after a restart or rebalance");
        }
        self.health.touch(LOOP_PROBE);
    }
}
