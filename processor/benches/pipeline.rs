//! Processor throughput through Kafka against two consume → produce passthroughs
//! of the same records, on the same broker, in the same run.
//!
//! Broker: a private Apache Kafka broker (testkit `OwnedBroker`, the same broker the
//! tests and the demo use). Every contender reads the same 6-partition raw topic
//! (N records, encoded once) with a fresh consumer group and writes with the same
//! producer settings (idempotent, acks=all, lz4, linger 5 ms):
//! - `at-least-once passthrough`: copies each record to an output topic, stores
//!   offsets after delivery (librdkafka commits them); the floor of any design;
//! - `transactional passthrough`: copies each record inside transactions committed
//!   every 100 ms with the consumed offsets (`send_offsets_to_transaction`), the
//!   same protocol as the processor: the fair baseline for exactly-once;
//! - `processor`: decodes, counts, classifies, extracts metadata, correlates,
//!   detects patterns, raises alerts, encodes and writes all of them and the
//!   heartbeats, in its transactions (`commit_interval_ms` 100).
//!
//! A run ends when the group's committed offsets cover all N raw records (for the
//! processor and the transactional passthrough: outputs and offsets committed
//! together), or when all N copies are acknowledged (at-least-once). It includes
//! joining the group (about 3 s on Apache Kafka, whose coordinator waits for the
//! join), so the rate after each contender's first output is printed too. Medians
//! of 3 runs each, alternating, and the ratios.
//!
//! The records (`KEVENTS_BENCH_STREAM`):
//! - `sim` (default): the simulator's scenarios and noise in 6 clusters with
//!   the collector's heartbeats (`support/sim_stream.rs`): incidents, patterns
//!   and alerts as rare as in real traffic, about 1.06 outputs per input.
//! - `synthetic`: `support/stream.rs`, correlation's worst case (about 1.45
//!   outputs per input, a third of them incident versions).
//!
//! Run: `cargo bench -p kevents-processor --bench pipeline` (N: `KEVENTS_BENCH_N`,
//! default 300000; `KEVENTS_BENCH_RDKAFKA_DEBUG=eos,protocol` logs librdkafka's
//! transaction steps of the processor, which is how the 100 ms commits were found).

/// The allocator the `kevents` binary ships with, so the figures are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kevents_processor::output::Output;
use kevents_processor::step::{Engine, PartitionState};
use kevents_processor::ProcessorConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use schemas::avro::Codec;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::services::{OwnedBroker};

#[path = "support/sim_stream.rs"]
mod sim_stream;
#[path = "support/stream.rs"]
mod stream;

const PARTITIONS: i32 = 6;

fn main() {
    let n: usize = std::env::var("KEVENTS_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(300_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let broker = OwnedBroker::spawn().expect("start a private broker");
    let bootstrap = broker.bootstrap();
    let codec = Codec::default();
    let which = std::env::var("KEVENTS_BENCH_STREAM").unwrap_or_else(|_| "sim".into());
    let records = match which.as_str() {
        "sim" => sim_stream::sim_stream(n),
        "synthetic" => stream::stream(n),
        other => panic!("KEVENTS_BENCH_STREAM={other}: expected sim or synthetic"),
    };
    let n = records.len();

    // Expected outputs of the processor: run the step once (it is deterministic).
    let engine = Engine::builtin();
    let mut states: Vec<PartitionState> = (0..PARTITIONS).map(|p| PartitionState::new(p, 7_200_000_000, 1_000_000)).collect();
    let mut expected_outputs = 0usize;
    let mut out: Vec<Output> = Vec::new();
    let raw: Vec<(i32, String, Vec<u8>)> = records
        .iter()
        .map(|r| {
            let p = stream::partition_of(&r.cluster.uid) as i32;
            out.clear();
            states[p as usize].process(&engine, r.clone(), 0, &mut out).unwrap();
            expected_outputs += out.len();
            (p, r.cluster.uid.to_string(), codec.encode(r).unwrap())
        })
        .collect();
    let bytes: usize = raw.iter().map(|r| r.2.len()).sum();

    create(&bootstrap, "raw", PARTITIONS).await;
    let t = Instant::now();
    let p = producer(&bootstrap);
    let mut futs = VecDeque::new();
    for (part, key, payload) in &raw {
        futs.push_back(p.send_result(FutureRecord::to("raw").partition(*part).key(key).payload(payload)).map_err(|(e, _)| e).unwrap());
        while futs.len() > 50_000 {
            futs.pop_front().unwrap().await.unwrap().unwrap();
        }
    }
    for f in futs {
        f.await.unwrap().unwrap();
    }
    println!(
        "raw topic ({which} stream): {n} records ({:.0} bytes avg) written in {:.2}s; the processor must write {expected_outputs} outputs",
        bytes as f64 / n as f64,
        t.elapsed().as_secs_f64()
    );

    let (mut pass, mut txn, mut proc) = (Rates::default(), Rates::default(), Rates::default());
    for i in 0..3 {
        let out = format!("pt-out-{i}");
        create(&bootstrap, &out, 3).await;
        let (secs, first) = passthrough(&bootstrap, &format!("pt-{i}"), &out, n).await;
        pass.record(i, "passthrough", "first output", n, secs, first);

        let out = format!("tx-out-{i}");
        create(&bootstrap, &out, 3).await;
        let (secs, first) = txn_passthrough(&bootstrap, &format!("tx-{i}"), &out, n).await;
        txn.record(i, "txn passthr.", "first commit", n, secs, first);

        let topics = ["proc", "hb", "inc", "pat", "al", "dlq"].map(|t| format!("{t}-{i}"));
        for t in &topics {
            create(&bootstrap, t, 3).await;
        }
        let (secs, first) = processor(&bootstrap, &format!("pr-{i}"), &topics, n).await;
        proc.record(i, "processor", "first output", n, secs, first);
    }
    let (mp, mt, mq) = (median(&mut pass.all), median(&mut txn.all), median(&mut proc.all));
    println!(
        "median: at-least-once passthrough {mp:.0} records/s, transactional passthrough {mt:.0}, processor {mq:.0}; \
         processor / transactional passthrough {:.2}, processor / at-least-once passthrough {:.2}",
        mq / mt,
        mq / mp
    );
    // Without the group join (a few seconds on this broker for every contender).
    let (sp, st, sq) = (median(&mut pass.steady), median(&mut txn.steady), median(&mut proc.steady));
    println!(
        "after the first output: at-least-once passthrough {sp:.0} records/s, transactional passthrough {st:.0}, processor {sq:.0}; \
         processor / transactional passthrough {:.2}, processor / at-least-once passthrough {:.2}",
        sq / st,
        sq / sp
    );
    drop(broker);
}

/// Consume `raw`, copy each record to `out`, store offsets after delivery (in
/// order), until `n` are delivered. Returns seconds in all and until the first delivery.
async fn passthrough(bootstrap: &str, group: &str, out: &str, n: usize) -> (f64, f64) {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut cc = kevents_processor::consumer_config(&base(bootstrap), group);
    cc.set("enable.auto.commit", "true");
    let c: BaseConsumer = cc.create().unwrap();
    c.subscribe(&["raw"]).unwrap();
    let p: FutureProducer = kevents_processor::producer_config(&base(bootstrap)).create().unwrap();
    let out = out.to_string();
    let rt = tokio::runtime::Handle::current();
    let s2 = stop.clone();
    // The processor's in-flight budget: `max_in_flight` outputs per raw partition.
    let window = ProcessorConfig::default().max_in_flight * PARTITIONS as usize;
    let h = std::thread::spawn(move || {
        let mut pending: VecDeque<(i32, i64, rdkafka::producer::DeliveryFuture)> = VecDeque::new();
        let mut delivered = 0usize;
        let mut first = 0.0;
        while delivered < n && !s2.load(Ordering::Relaxed) {
            if let Some(m) = c.poll(Duration::from_millis(if pending.len() >= window { 0 } else { 100 })) {
                let m = m.unwrap();
                let rec = FutureRecord::to(&out).key(m.key().unwrap_or_default()).payload(m.payload().unwrap_or_default());
                pending.push_back((m.partition(), m.offset(), p.send_result(rec).map_err(|(e, _)| e).unwrap()));
            }
            loop {
                let full = pending.len() >= window;
                let Some((_, _, f)) = pending.front_mut() else { break };
                let ready = if full { Some(rt.block_on(f)) } else { futures::FutureExt::now_or_never(f) };
                match ready {
                    Some(r) => {
                        r.unwrap().unwrap();
                        let (part, off, _) = pending.pop_front().unwrap();
                        c.store_offset("raw", part, off).unwrap();
                        if delivered == 0 {
                            first = start.elapsed().as_secs_f64();
                        }
                        delivered += 1;
                    }
                    None => break,
                }
            }
        }
        first
    });
    let first = tokio::task::spawn_blocking(move || h.join().unwrap()).await.unwrap();
    (start.elapsed().as_secs_f64(), first)
}

/// Consume `raw` and copy each record to `out` inside transactions committed
/// every 100 ms with the consumed offsets (the processor's protocol without its
/// work), until all `n` are committed. Returns seconds in all and until the first
/// commit.
async fn txn_passthrough(bootstrap: &str, group: &str, out: &str, n: usize) -> (f64, f64) {
    use rdkafka::producer::Producer;
    let start = Instant::now();
    let c: BaseConsumer = kevents_processor::consumer_config(&base(bootstrap), group).create().unwrap();
    c.subscribe(&["raw"]).unwrap();
    let p: FutureProducer = kevents_processor::transactional_producer_config(&base(bootstrap), &format!("{group}-txn"), 15_000).create().unwrap();
    let out = out.to_string();
    let window = ProcessorConfig::default().max_in_flight * PARTITIONS as usize;
    let watch = committed_watcher(bootstrap, group, start, n);
    std::thread::spawn(move || {
        let t = Duration::from_secs(15);
        p.init_transactions(t).unwrap();
        p.begin_transaction().unwrap();
        let mut next = std::collections::BTreeMap::<i32, i64>::new();
        let mut in_txn = 0usize;
        let mut committed = 0usize;
        let mut last = Instant::now();
        while committed < n {
            if let Some(m) = c.poll(Duration::from_millis(if in_txn >= window { 0 } else { 10 })) {
                let m = m.unwrap();
                let mut rec = FutureRecord::to(&out).key(m.key().unwrap_or_default()).payload(m.payload().unwrap_or_default());
                loop {
                    match p.send_result(rec) {
                        Ok(_) => break,
                        Err((_, r)) => {
                            rec = r;
                            p.poll(Duration::from_millis(1));
                        }
                    }
                }
                next.insert(m.partition(), m.offset() + 1);
                in_txn += 1;
            }
            if (last.elapsed() >= Duration::from_millis(100) || in_txn >= window) && in_txn > 0 {
                // As the processor does (`txn`): wait for the deliveries by their
                // count, not with rdkafka's flush, which polls in 100 ms steps.
                while p.in_flight_count() > 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
                let mut tpl = rdkafka::TopicPartitionList::new();
                for (part, off) in &next {
                    tpl.add_partition_offset("raw", *part, rdkafka::Offset::Offset(*off)).unwrap();
                }
                p.send_offsets_to_transaction(&tpl, &c.group_metadata().unwrap(), t).unwrap();
                p.commit_transaction(t).unwrap();
                p.begin_transaction().unwrap();
                committed += in_txn;
                in_txn = 0;
                last = Instant::now();
            }
        }
    });
    tokio::task::spawn_blocking(move || watch.join().unwrap()).await.unwrap()
}

/// A thread that polls the committed offsets of `group` on `raw` every 10 ms
/// until they cover `n` records; returns (seconds to that, seconds to the first
/// commit), both from `start`.
fn committed_watcher(bootstrap: &str, group: &str, start: Instant, n: usize) -> std::thread::JoinHandle<(f64, f64)> {
    let mut cfg = base(bootstrap);
    cfg.set("group.id", group);
    std::thread::spawn(move || {
        let watcher: BaseConsumer = cfg.create().unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition("raw", p);
        }
        let mut first = None;
        loop {
            let total: i64 = watcher
                .committed_offsets(tpl.clone(), Duration::from_secs(5))
                .map(|c| c.elements().iter().filter_map(|e| e.offset().to_raw()).filter(|o| *o > 0).sum())
                .unwrap_or(0);
            if total > 0 && first.is_none() {
                first = Some(start.elapsed().as_secs_f64());
            }
            if total >= n as i64 {
                let secs = start.elapsed().as_secs_f64();
                return (secs, first.unwrap_or(secs));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// Run the processor until the group's committed offsets cover all `n` raw
/// records (each commit carries the outputs of the records it covers). Returns
/// seconds in all and until the first commit.
async fn processor(bootstrap: &str, group: &str, topics: &[String; 6], n: usize) -> (f64, f64) {
    let mut cfg = ProcessorConfig::default();
    cfg.kafka.brokers = bootstrap.into();
    cfg.topics.raw = "raw".into();
    cfg.topics.processed = topics[0].clone();
    cfg.topics.heartbeats = topics[1].clone();
    cfg.topics.incidents = topics[2].clone();
    cfg.topics.patterns = topics[3].clone();
    cfg.topics.alerts = topics[4].clone();
    cfg.topics.dlq = topics[5].clone();
    cfg.group_id = group.into();
    cfg.create_topic_partitions = 0;
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    if let Some(ms) = std::env::var("KEVENTS_BENCH_COMMIT_MS").ok().and_then(|v| v.parse().ok()) { cfg.commit_interval_ms = ms; }
    if let Some(n) = std::env::var("KEVENTS_BENCH_MAX_IN_FLIGHT").ok().and_then(|v| v.parse().ok()) { cfg.max_in_flight = n; }
    if let Ok(d) = std::env::var("KEVENTS_BENCH_RDKAFKA_DEBUG") { cfg.kafka.extra.insert("debug".into(), d); let _ = tracing_subscriber::fmt().with_env_filter("debug").try_init(); }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let running = kevents_processor::start(cfg, async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
    // The watcher's calls block, so it gets its own thread: on the runtime it
    // would hold one of the two worker threads the processor runs on.
    let watch = committed_watcher(bootstrap, group, start, n);
    let (secs, first) = tokio::task::spawn_blocking(move || watch.join().unwrap()).await.unwrap();
    tx.send(()).unwrap();
    let m = running.metrics.clone();
    running.wait().await.unwrap();
    // What the transactions cost: how many, and how long each held the workers.
    let mut enc = String::new();
    let mut reg = prometheus_client::registry::Registry::default();
    reg.register("c", "", m.commit_seconds.clone());
    prometheus_client::encoding::text::encode(&mut enc, &reg).unwrap();
    let sum: f64 = enc.lines().find_map(|l| l.strip_prefix("c_sum ").and_then(|v| v.parse().ok())).unwrap_or(0.0);
    let commits = m.commits.get();
    println!("    processor: {commits} transactions, workers held {:.1} ms per commit ({:.1} s in all)", 1000.0 * sum / commits.max(1) as f64, sum);
    (secs, first)
}

fn base(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("log_level", "3");
    c
}

fn producer(bootstrap: &str) -> FutureProducer {
    kevents_processor::producer_config(&base(bootstrap)).create().unwrap()
}

async fn create(bootstrap: &str, topic: &str, partitions: i32) {
    runtime::kafka::ensure_topic(&base(bootstrap), topic, partitions, &[]).await.unwrap();
    let c: BaseConsumer = base(bootstrap).create().unwrap();
    for _ in 0..200 {
        if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if md.topics().iter().any(|t| t.name() == topic && t.error().is_none() && t.partitions().len() == partitions as usize) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("topic {topic} did not appear");
}

/// One contender's rates over the runs: in all, and after its first output.
#[derive(Default)]
struct Rates {
    all: Vec<f64>,
    steady: Vec<f64>,
}

impl Rates {
    /// Print run `i` of `who` and keep its rates (`first`: when its first output or
    /// commit came, `what` says which).
    fn record(&mut self, i: usize, who: &str, what: &str, n: usize, secs: f64, first: f64) {
        let (all, steady) = (n as f64 / secs, n as f64 / (secs - first));
        println!("run {i}: {who:<12} {all:>8.0} records/s ({secs:.2}s; {what} after {first:.2}s, then {steady:>8.0}/s)");
        self.all.push(all);
        self.steady.push(steady);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
