//! Helpers shared by the sink's integration tests: records with positions, a
//! producer that keeps many deliveries in flight, a sink started as a task, and
//! polling ClickHouse until a condition holds.

#![allow(dead_code)]

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schemas::avro::Codec;
use schemas::records::{ClusterHeartbeat, CollectorMeta, ProcessedEvent, SourcePos, WatchKind};
use schemas::{ClusterId, Severity};
use sink::SinkConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// A sink config for the test's topics and database; flushes every 200 ms.
pub fn config(bootstrap: &str, clickhouse_url: &str, database: &str, topic: impl Fn(&str) -> String) -> SinkConfig {
    let mut c = SinkConfig::default();
    c.kafka.brokers = bootstrap.to_string();
    c.group_id = format!("sink-{}", rand_suffix());
    c.topics.processed = topic("processed");
    c.topics.heartbeats = topic("heartbeats");
    c.topics.incidents = topic("incidents");
    c.topics.patterns = topic("patterns");
    c.topics.alerts = topic("alerts");
    c.topics.dlq = topic("dlq");
    c.clickhouse.url = clickhouse_url.to_string();
    c.clickhouse.database = database.to_string();
    c.batch.max_wait_ms = 200;
    c.max_backoff_ms = 1000;
    c.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    c
}

pub const TOPICS: &[(&str, i32)] =
    &[("processed", 3), ("heartbeats", 2), ("incidents", 1), ("patterns", 1), ("alerts", 1), ("dlq", 1)];

pub fn rand_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running sink task and the way to stop it gracefully.
pub struct RunningSink {
    pub handle: JoinHandle<Result<(), sink::SinkError>>,
    stop: Option<oneshot::Sender<()>>,
    pub listen: std::net::SocketAddr,
}

impl RunningSink {
    pub fn start(cfg: SinkConfig) -> Self {
        let (tx, rx) = oneshot::channel::<()>();
        let listen = cfg.listen;
        let handle = tokio::spawn(sink::run(cfg, async move {
            let _ = rx.await;
        }));
        RunningSink { handle, stop: Some(tx), listen }
    }

    /// Graceful stop; the run must end without error.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(60), &mut self.handle)
            .await
            .expect("sink stops within 60 s")
            .expect("sink task did not panic")
            .expect("sink run ends without error");
    }

    /// A crash stand-in: the task is dropped wherever it is (mid-INSERT included).
    pub async fn abort(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    /// GET on the ops endpoint; waits up to 10 s for it to listen (a sink just
    /// started binds it from its own task).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.listen);
        let start = Instant::now();
        loop {
            match reqwest::get(&url).await {
                Ok(r) => return (r.status().as_u16(), r.text().await.unwrap()),
                Err(e) if e.is_connect() && start.elapsed() < Duration::from_secs(10) && !self.handle.is_finished() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("GET {url}: {e} (sink task ended: {})", self.handle.is_finished()),
            }
        }
    }

    /// A counter from /metrics, e.g. `kevents_sink_replays_skipped_total{table="events"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }
}

/// Processed event number `n` of raw input (`raw_partition`, `raw_offset`), output
/// `seq`: deterministic, so a replay produces the same record.
pub fn event(raw_partition: i32, raw_offset: i64, seq: i32, base_us: i64) -> ProcessedEvent {
    let mut p = ProcessedEvent {
        source: SourcePos { partition: raw_partition, offset: raw_offset, seq },
        id: schemas::ids::stable_id(&["test", &raw_partition.to_string(), &raw_offset.to_string(), &seq.to_string()]),
        cluster: ClusterId { name: format!("c{raw_partition}").into(), uid: format!("uid-{raw_partition}").into() },
        watch_kind: WatchKind::Added,
        observed_us: base_us,
        category: ["workload", "scheduling", "image"][(raw_offset % 3) as usize].into(),
        severity: [Severity::Info, Severity::Warning, Severity::Error][(raw_offset % 3) as usize],
        rule: "test".into(),
        correlation_id: format!("corr-{}", raw_offset % 7),
        occurrences: 1 + (raw_offset % 4),
        ..Default::default()
    };
    p.event.uid = format!("ev-{raw_partition}-{raw_offset}-{seq}").into();
    p.event.namespace = format!("ns-{}", raw_offset % 5).into();
    p.event.regarding.namespace = p.event.namespace.clone();
    p.event.regarding.kind = "Pod".into();
    p.event.regarding.name = format!("pod-{}", raw_offset % 11).into();
    p.event.reason = ["BackOff", "FailedScheduling", "Pulled"][(raw_offset % 3) as usize].into();
    p.event.event_type = "Warning".into();
    p.event.note = format!("message {raw_offset}").into();
    p.event.count = 1;
    p.event.last_seen_us = base_us - raw_offset * 1000;
    p.event.created_us = base_us - raw_offset * 1000;
    p.metadata = [("container", "app"), ("signal", "SIGKILL")].into_iter().collect();
    p
}

pub fn heartbeat(raw_partition: i32, raw_offset: i64, base_us: i64) -> ClusterHeartbeat {
    ClusterHeartbeat {
        source: SourcePos { partition: raw_partition, offset: raw_offset, seq: 0 },
        cluster: ClusterId { name: format!("c{raw_partition}").into(), uid: format!("uid-{raw_partition}").into() },
        collector: CollectorMeta { instance: "col-1".into(), leader_epoch: 1 },
        observed_us: base_us + raw_offset * 1_000_000,
        resource_version: raw_offset.to_string(),
        last_bookmark_us: base_us,
    }
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .unwrap()
}

/// Send framed payloads to explicit partitions, many in flight, and wait for all.
pub async fn produce(producer: &FutureProducer, topic: &str, msgs: Vec<(i32, Vec<u8>)>) {
    let futs: Vec<_> = msgs
        .iter()
        .map(|(p, bytes)| {
            producer.send_result(FutureRecord::<[u8], [u8]>::to(topic).partition(*p).payload(bytes)).unwrap()
        })
        .collect();
    for f in futs {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// The test's events: raw inputs 0..inputs, two outputs each, on Kafka partition
/// = raw partition = offset % 3.
pub fn events(inputs: i64, base_us: i64) -> Vec<(i32, ProcessedEvent)> {
    let mut out = Vec::new();
    for o in 0..inputs {
        let rp = (o % 3) as i32;
        for seq in 0..2 {
            out.push((rp, event(rp, o, seq, base_us)));
        }
    }
    out
}

pub fn encode<T: schemas::avro::AvroRecord>(recs: &[(i32, T)]) -> Vec<(i32, Vec<u8>)> {
    let codec = Codec::default();
    recs.iter().map(|(p, r)| (*p, codec.encode(r).unwrap())).collect()
}

pub async fn scalar(client: &clickhouse::Client, sql: &str) -> i64 {
    client.query(sql).fetch_one::<i64>().await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `scalar`, or None while the query fails (e.g. before the sink made the tables).
pub async fn try_scalar(client: &clickhouse::Client, sql: &str) -> Option<i64> {
    client.query(sql).fetch_one::<i64>().await.ok()
}

/// Poll until `f` is true or `limit` passes (then panic with `what`).
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every message of a topic (read from the beginning until `idle` passes without one):
/// (headers as pairs, payload).
pub async fn read_all(bootstrap: &str, topic: &str, idle: Duration) -> Vec<(Vec<(String, String)>, Vec<u8>)> {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", rand_suffix()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(idle, c.recv()).await {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).to_string()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((headers, m.payload().unwrap_or_default().to_vec()));
    }
    out
}

/// Counts that must all equal the number of distinct events loaded.
pub struct EventCounts {
    pub rows: i64,
    pub distinct_ids: i64,
    pub minute_events: i64,
    pub hour_events: i64,
    pub occurrences: i64,
    pub minute_occurrences: i64,
    pub hour_occurrences: i64,
}

pub async fn event_counts(c: &clickhouse::Client) -> EventCounts {
    EventCounts {
        rows: scalar(c, "SELECT toInt64(count()) FROM events").await,
        distinct_ids: scalar(c, "SELECT toInt64(uniqExact(id)) FROM events").await,
        minute_events: scalar(c, "SELECT toInt64(sum(events)) FROM events_per_minute").await,
        hour_events: scalar(c, "SELECT toInt64(sum(events)) FROM events_per_hour").await,
        occurrences: scalar(c, "SELECT toInt64(sum(occurrences)) FROM events").await,
        minute_occurrences: scalar(c, "SELECT toInt64(sum(occurrences)) FROM events_per_minute").await,
        hour_occurrences: scalar(c, "SELECT toInt64(sum(occurrences)) FROM events_per_hour").await,
    }
}

impl EventCounts {
    /// Exactly `n` events with `occ` occurrences, everywhere.
    pub fn assert_exact(&self, n: i64, occ: i64) {
        assert_eq!(
            (self.rows, self.distinct_ids, self.minute_events, self.hour_events),
            (n, n, n, n),
            "rows, distinct ids, per-minute and per-hour event counts"
        );
        assert_eq!(
            (self.occurrences, self.minute_occurrences, self.hour_occurrences),
            (occ, occ, occ),
            "occurrences in raw rows and rollups"
        );
    }
}

/// Produce `rate` events per second (and a heartbeat every 100 events) until
/// `stop`, paced by the clock: each round sends what is due by now, so waiting
/// for acknowledgements makes the next batch bigger, not the rate lower.
/// Returns (events, occurrences, heartbeats) produced.
pub async fn flow(rate: i64, bootstrap: String, processed: String, heartbeats: String, stop: Arc<AtomicBool>) -> (i64, i64, i64) {
    let producer = producer(&bootstrap);
    let base = now_us();
    let (mut n, mut occ, mut hb) = (0i64, 0i64, 0i64);
    let mut raw_offset = 0i64;
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let due = start.elapsed().as_millis() as i64 * rate / 1000;
        let mut evs = Vec::with_capacity(((due - n).max(0) + 2) as usize);
        let mut hbs = Vec::new();
        while n + (evs.len() as i64) < due {
            let rp = (raw_offset % 3) as i32;
            for seq in 0..2 {
                let e = event(rp, raw_offset, seq, base);
                occ += e.occurrences;
                evs.push((rp, e));
            }
            if raw_offset % 50 == 0 {
                let hp = (raw_offset % 2) as i32;
                hbs.push((hp, heartbeat(hp, raw_offset, base)));
                hb += 1;
            }
            raw_offset += 1;
        }
        n += evs.len() as i64;
        if !hbs.is_empty() {
            produce(&producer, &heartbeats, encode(&hbs)).await;
        }
        produce(&producer, &processed, encode(&evs)).await;
    }
    eprintln!("flow: {n} events in {:.1} s = {:.0} events/s", start.elapsed().as_secs_f64(), n as f64 / start.elapsed().as_secs_f64());
    (n, occ, hb)
}
