//! Sink throughput, Kafka → ClickHouse including Avro decode, against a raw
//! RowBinary insert of the same rows already decoded — same run, same server,
//! same schema (views included), medians of 3 and their ratio; and the cores each
//! side kept busy (CPU seconds of this process and of the ClickHouse server per
//! second of wall time, from /proc).
//!
//! Run: `cargo bench -p kevents-sink --bench sink_throughput`
//! (`KEVENTS_BENCH_EVENTS`, default 300000). The broker is a private Apache Kafka
//! broker (testkit `OwnedBroker`) and ClickHouse a private server (testkit
//! `OwnedClickHouse`), so no other client's queries land on it; both share the
//! machine's cores with the sink (and with whatever else runs: note `uptime`).

extern crate kevents_sink as sink;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schemas::avro::Codec;
use schemas::clickhouse::RenderOptions;
use schemas::records::{ProcessedEvent, SourcePos, WatchKind};
use schemas::{ClusterId, Severity};
use sink::rows::EventRow;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::services::{OwnedBroker, OwnedClickHouse};

const PARTITIONS: i32 = 3;
const BATCH: usize = 50_000;

fn event(i: i64, base_us: i64) -> ProcessedEvent {
    let rp = (i % PARTITIONS as i64) as i32;
    let mut p = ProcessedEvent {
        source: SourcePos { partition: rp, offset: i, seq: 0 },
        id: schemas::ids::stable_id(&["bench", &i.to_string()]),
        cluster: ClusterId { name: format!("prod-{rp}").into(), uid: format!("uid-{rp}").into() },
        watch_kind: WatchKind::Modified,
        observed_us: base_us,
        category: ["workload", "scheduling", "image", "storage"][(i % 4) as usize].into(),
        severity: [Severity::Info, Severity::Warning, Severity::Error][(i % 3) as usize],
        rule: "kubelet-backoff".into(),
        correlation_id: format!("inc-{}", i % 97),
        occurrences: 1 + i % 3,
        ..Default::default()
    };
    let e = &mut p.event;
    e.uid = format!("5f0c{i:012x}-aaaa-bbbb-cccc-0123456789ab").into();
    e.namespace = format!("team-{}", i % 40).into();
    e.name = format!("api-{}.17a9{:08x}", i % 500, i).into();
    e.resource_version = (100_000 + i).to_string().into();
    e.event_type = "Warning".into();
    e.reason = ["BackOff", "FailedScheduling", "Failed", "FailedMount"][(i % 4) as usize].into();
    e.note = format!("Back-off restarting failed container app in pod api-{}-7d9f8b6c5-x{} (attempt {})", i % 500, i % 1000, i % 7).into();
    e.regarding.kind = "Pod".into();
    e.regarding.namespace = e.namespace.clone();
    e.regarding.name = format!("api-{}-7d9f8b6c5-x{}", i % 500, i % 1000).into();
    e.regarding.uid = format!("pod-uid-{}", i % 500).into();
    e.regarding.field_path = "spec.containers{app}".into();
    e.reporting_controller = "kubelet".into();
    e.reporting_instance = format!("node-{}", i % 30).into();
    e.count = 1 + i % 9;
    e.last_seen_us = base_us - (i % 3600) * 1_000_000;
    e.created_us = e.last_seen_us;
    p.metadata = [("container".to_string(), "app".to_string()), ("node".into(), format!("node-{}", i % 30)), ("backoff".into(), "5m0s".into())].into_iter().collect();
    p
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// CPU seconds (user + system, all threads) of process `pid` so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the ")" closing the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // /proc reports clock ticks of USER_HZ, 100 per second on Linux.
    (ticks(14) + ticks(15)) / 100.0
}

/// Cores kept busy between two readings: (this process, ClickHouse).
struct Cores {
    at: Instant,
    me: f64,
    ch: f64,
    ch_pid: u32,
}

impl Cores {
    fn start(ch_pid: u32) -> Cores {
        Cores { at: Instant::now(), me: cpu_secs(std::process::id()), ch: cpu_secs(ch_pid), ch_pid }
    }
    fn busy(&self) -> (f64, f64) {
        let wall = self.at.elapsed().as_secs_f64();
        ((cpu_secs(std::process::id()) - self.me) / wall, (cpu_secs(self.ch_pid) - self.ch) / wall)
    }
}

/// One measured run: rows/s and the cores busy (this process, ClickHouse).
struct Measured {
    rate: f64,
    cores: (f64, f64),
}

async fn count(c: &clickhouse::Client) -> i64 {
    c.query("SELECT toInt64(count()) FROM events").fetch_one::<i64>().await.unwrap_or(0)
}

/// One run of the sink over the whole topic; rows/s from partition assignment to
/// the last row stored.
async fn sink_run(broker: &OwnedBroker, ch: &OwnedClickHouse, topic: &str, n: i64, run: usize) -> Measured {
    let db = ch.fresh_database(&format!("bench_sink_{run}")).await;
    let server = ch.client();
    sink::migrate::apply(&server, &RenderOptions::single(&db.name)).await.unwrap();
    let mut cfg = sink::SinkConfig::default();
    cfg.kafka.brokers = broker.bootstrap();
    cfg.group_id = format!("bench-{run}-{}", rand::random::<u32>());
    cfg.topics.processed = topic.to_string();
    for (i, t) in [&mut cfg.topics.heartbeats, &mut cfg.topics.incidents, &mut cfg.topics.patterns, &mut cfg.topics.alerts, &mut cfg.topics.dlq]
        .into_iter()
        .enumerate()
    {
        *t = format!("{topic}-unused-{i}");
    }
    cfg.clickhouse.url = ch.url();
    cfg.clickhouse.database = db.name.clone();
    cfg.batch.max_rows = BATCH;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sink::run(cfg, async move {
        let _ = rx.await;
    }));
    let ready = format!("http://127.0.0.1:{port}/readyz");
    loop {
        if let Ok(r) = reqwest::get(&ready).await {
            if r.status().is_success() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t0 = Instant::now();
    let cores = Cores::start(ch.pid().unwrap());
    while count(&db.client).await < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cores = cores.busy();
    let _ = tx.send(());
    task.await.unwrap().unwrap();
    assert_eq!(count(&db.client).await, n);
    Measured { rate: n as f64 / secs, cores }
}

/// The same rows, decoded beforehand, inserted in the same batch size.
async fn raw_run(ch: &OwnedClickHouse, rows: &[EventRow], run: usize) -> Measured {
    let db = ch.fresh_database(&format!("bench_raw_{run}")).await;
    let server = ch.client();
    sink::migrate::apply(&server, &RenderOptions::single(&db.name)).await.unwrap();
    let client = db.client.clone().with_compression(clickhouse::Compression::Lz4);
    let t0 = Instant::now();
    let cores = Cores::start(ch.pid().unwrap());
    for chunk in rows.chunks(BATCH) {
        let mut ins = client.insert::<EventRow>("events").await.unwrap();
        for r in chunk {
            ins.write(r).await.unwrap();
        }
        ins.end().await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let cores = cores.busy();
    assert_eq!(count(&db.client).await, rows.len() as i64);
    Measured { rate: rows.len() as f64 / secs, cores }
}

fn main() {
    let n: i64 = std::env::var("KEVENTS_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let broker = tokio::task::spawn_blocking(|| OwnedBroker::spawn().unwrap()).await.unwrap();
        let ch = tokio::task::spawn_blocking(|| OwnedClickHouse::spawn().unwrap()).await.unwrap();
        let topics = broker.create_topics("bench", &[("processed", PARTITIONS)]).await;
        let topic = topics.name("processed").to_string();
        let base = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
        let codec = Codec::default();
        let events: Vec<ProcessedEvent> = (0..n).map(|i| event(i, base)).collect();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .create()
            .unwrap();
        let mut bytes = 0usize;
        let mut decode_secs = 0.0;
        let mut plain_secs = 0.0;
        for chunk in events.chunks(20_000) {
            let payloads: Vec<(i32, Vec<u8>)> =
                chunk.iter().map(|e| (e.source.partition, codec.encode(e).unwrap())).collect();
            bytes += payloads.iter().map(|(_, p)| p.len()).sum::<usize>();
            // Where the sink's time goes: Avro decode alone, same codec as the sink.
            let t = Instant::now();
            for (_, b) in &payloads {
                std::hint::black_box(codec.decode::<ProcessedEvent>(b).unwrap());
            }
            decode_secs += t.elapsed().as_secs_f64();
            // The same without schema resolution (writer schema = reader schema).
            let t = Instant::now();
            let schema = schemas::avro::current_schema(schemas::avro::RecordType::Processed);
            for (_, b) in &payloads {
                let mut datum = &b[5..];
                let v = apache_avro::from_avro_datum(schema, &mut datum, None).unwrap();
                std::hint::black_box(apache_avro::from_value::<ProcessedEvent>(&v).unwrap());
            }
            plain_secs += t.elapsed().as_secs_f64();
            let futs: Vec<_> = payloads
                .iter()
                .map(|(p, b)| producer.send_result(FutureRecord::<[u8], [u8]>::to(&topic).partition(*p).payload(b)).unwrap())
                .collect();
            for f in futs {
                f.await.unwrap().unwrap();
            }
        }
        let rows: Vec<EventRow> = events.into_iter().map(|e| { let p = e.source.partition; EventRow::new(e, p) }).collect();
        println!("sink_throughput: {n} events ({} bytes Avro on average), batches of {BATCH}", bytes / n as usize);
        println!("  Avro decode alone (schemas::avro::Codec): {:.0} records/s ({:.1} µs each)", n as f64 / decode_secs, decode_secs * 1e6 / n as f64);
        println!("  Avro decode without schema resolution: {:.0} records/s ({:.1} µs each)", n as f64 / plain_secs, plain_secs * 1e6 / n as f64);
        let (mut sink_rates, mut raw_rates) = (Vec::new(), Vec::new());
        for run in 0..3 {
            let s = sink_run(&broker, &ch, &topic, n, run).await;
            let r = raw_run(&ch, &rows, run).await;
            println!(
                "  run {run}: sink {:>7.0} rows/s (cores: sink {:.2}, ClickHouse {:.2})   raw insert {:>7.0} rows/s (cores: client {:.2}, ClickHouse {:.2})",
                s.rate, s.cores.0, s.cores.1, r.rate, r.cores.0, r.cores.1
            );
            sink_rates.push(s.rate);
            raw_rates.push(r.rate);
        }
        let (s, r) = (median(sink_rates), median(raw_rates));
        println!("median: sink (Kafka → decode → ClickHouse) {s:.0} rows/s; raw RowBinary insert {r:.0} rows/s; ratio {:.2}", s / r);
    });
}
