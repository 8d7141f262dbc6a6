//! Shared by the processor's integration tests: a seeded raw workload with its
//! ground truth (which output ids must exist, with how many occurrences), a
//! producer for the raw topic, and a reader of the output topics.
#![allow(dead_code)]

pub mod member;

use kevents_processor::ProcessorConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use schemas::avro::Codec;
use schemas::ids::event_version_id;
use schemas::model::{ApiShape, ClusterId, NormalizedEvent, ObjectRef};
use schemas::records::{
    ClusterHeartbeat, CollectorMeta, Heartbeat, ProcessedEvent, RawRecord, WatchEvent, WatchKind,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use testkit::services::TestTopics;

/// One raw record to write, and what it must produce.
#[derive(Debug, Clone)]
pub struct RawOut {
    pub partition: i32,
    pub key: String,
    pub payload: Vec<u8>,
}

/// A raw workload and its truth.
#[derive(Debug, Default)]
pub struct Workload {
    pub records: Vec<RawOut>,
    /// Processed output id → occurrences it must carry.
    pub expected: BTreeMap<String, i64>,
    pub heartbeats: usize,
    pub duplicates: usize,
    pub stale: usize,
    pub total_occurrences: i64,
}

/// (reason, type, component, kind, field path, message)
const SHAPES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("BackOff", "Warning", "kubelet", "Pod", "spec.containers{app}", "Back-off restarting failed container app in pod web-1_default(0c6c1f7e)"),
    ("Unhealthy", "Warning", "kubelet", "Pod", "spec.containers{app}", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
    ("FailedScheduling", "Warning", "default-scheduler", "Pod", "", "0/5 nodes are available: 2 Insufficient cpu, 3 Insufficient memory."),
    ("Pulled", "Normal", "kubelet", "Pod", "spec.containers{app}", "Container image \"nginx:1.25\" already present on machine"),
    ("SomethingCustom", "Warning", "my-operator", "Widget", "", "widget is sad"),
];

/// Tiny deterministic generator (no dependency, seeded).
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn cluster_uid(c: usize) -> String {
    format!("cluster-{c}-0b5e1c2d")
}

struct Obj {
    uid: String,
    shape: usize,
    count: i64,
    deleted: bool,
}

/// `steps` watch records per cluster (plus heartbeats, duplicates, stale writes),
/// cluster c on partition `c % partitions`, clusters interleaved.
pub fn workload(seed: u64, clusters: usize, partitions: i32, steps: usize) -> Workload {
    let codec = Codec::default();
    let mut rng = Rng::new(seed);
    let mut w = Workload::default();
    let mut per_cluster: Vec<Vec<RawOut>> = Vec::new();
    for c in 0..clusters {
        let uid = cluster_uid(c);
        let cluster = ClusterId { name: format!("c{c}").into(), uid: uid.clone().into() };
        let partition = (c as i32) % partitions;
        let mut objs: Vec<Obj> = Vec::new();
        let mut rv = 1000u64;
        let mut epoch = 1i64;
        let mut out = Vec::new();
        let mut last: Option<RawOut> = None;
        // Whether a record of the current (new) leader epoch is already out.
        let mut epoch_published = false;
        let push = |out: &mut Vec<RawOut>, rec: &RawRecord| {
            let o = RawOut { partition, key: uid.clone(), payload: codec.encode(rec).unwrap() };
            out.push(o.clone());
            o
        };
        for step in 0..steps {
            rv += 1;
            let observed_us = 1_800_000_000_000_000 + rv as i64 * 1000;
            if step == steps / 2 {
                epoch += 1; // a leader handover
                epoch_published = false;
            }
            if step % 20 == 19 {
                let rec = RawRecord {
                    cluster: cluster.clone(),
                    collector: CollectorMeta { instance: "col".into(), leader_epoch: epoch },
                    observed_us,
                    resource_version: rv.to_string(),
                    event: None,
                    heartbeat: Some(Heartbeat { scope: String::new(), resource_version: rv.to_string(), last_bookmark_us: observed_us, published_since_last: 19 }),
                };
                push(&mut out, &rec);
                epoch_published = true;
                w.heartbeats += 1;
                continue;
            }
            // Re-deliver the previous record verbatim now and then.
            if let Some(prev) = &last {
                if rng.below(10) == 0 {
                    out.push(prev.clone());
                    w.duplicates += 1;
                    continue;
                }
            }
            let live: Vec<usize> = (0..objs.len()).filter(|i| !objs[*i].deleted).collect();
            let (i, kind) = if live.is_empty() || rng.below(4) == 0 {
                objs.push(Obj { uid: format!("ev-{c}-{}", objs.len()), shape: rng.below(SHAPES.len() as u64) as usize, count: 0, deleted: false });
                (objs.len() - 1, WatchKind::Added)
            } else {
                let i = live[rng.below(live.len() as u64) as usize];
                (i, if rng.below(15) == 0 { WatchKind::Deleted } else { WatchKind::Modified })
            };
            let o = &mut objs[i];
            let occ = match kind {
                WatchKind::Deleted => {
                    o.deleted = true;
                    0
                }
                _ => {
                    let inc = 1 + rng.below(3) as i64;
                    o.count += inc;
                    // First sight counts the whole count.
                    inc
                }
            };
            let (reason, ty, comp, okind, fp, note) = SHAPES[o.shape];
            let shape = if i % 2 == 0 { ApiShape::EventsV1 } else { ApiShape::CoreV1 };
            let ev = NormalizedEvent {
                uid: o.uid.clone().into(),
                namespace: "default".into(),
                name: format!("{}.{:x}", o.uid, rv).into(),
                resource_version: rv.to_string().into(),
                api_shape: shape,
                event_type: ty.into(),
                reason: reason.into(),
                note: note.into(),
                regarding: ObjectRef { kind: okind.into(), namespace: "default".into(), name: format!("web-{i}").into(), field_path: fp.into(), ..Default::default() },
                reporting_controller: comp.into(),
                reporting_instance: "node-1".into(),
                count: o.count.max(1),
                series: shape == ApiShape::EventsV1 && o.count > 1,
                first_seen_us: observed_us,
                last_seen_us: observed_us,
                created_us: observed_us,
                ..Default::default()
            };
            let rec = RawRecord {
                cluster: cluster.clone(),
                collector: CollectorMeta { instance: "col".into(), leader_epoch: epoch },
                observed_us,
                resource_version: rv.to_string(),
                event: Some(WatchEvent { kind, event: Box::new(ev) }),
                heartbeat: None,
            };
            // After the handover, the deposed leader writes a version late: dropped.
            if epoch > 1 && epoch_published && rng.below(12) == 0 {
                let mut stale = rec.clone();
                stale.collector.leader_epoch = epoch - 1;
                push(&mut out, &stale);
                w.stale += 1;
            }
            w.expected.insert(event_version_id(&uid, &objs[i].uid, &rv.to_string(), kind.as_str()), occ);
            w.total_occurrences += occ;
            last = Some(push(&mut out, &rec));
            epoch_published = true;
        }
        per_cluster.push(out);
    }
    // Interleave clusters, keeping each cluster's order.
    let mut idx = vec![0usize; clusters];
    loop {
        let mut any = false;
        for c in 0..clusters {
            if let Some(r) = per_cluster[c].get(idx[c]) {
                w.records.push(r.clone());
                idx[c] += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    w
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Write records, all in flight at once, then wait for every acknowledgement.
pub async fn produce(p: &FutureProducer, topic: &str, recs: &[RawOut]) {
    let futs: Vec<_> = recs
        .iter()
        .map(|r| p.send_result(FutureRecord::to(topic).partition(r.partition).key(&r.key).payload(&r.payload)).map_err(|(e, _)| e).unwrap())
        .collect();
    for f in futs {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// The processor config for a test: the test's topics, a group, ephemeral port.
pub fn config(topics: &TestTopics, group: &str) -> ProcessorConfig {
    let mut cfg = ProcessorConfig::default();
    cfg.kafka.brokers = topics.bootstrap().to_string();
    cfg.topics.raw = topics.name("raw").into();
    cfg.topics.processed = topics.name("processed").into();
    cfg.topics.heartbeats = topics.name("heartbeats").into();
    cfg.topics.dlq = topics.name("dlq").into();
    cfg.group_id = group.into();
    cfg.create_topic_partitions = 0;
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.drain_timeout_secs = 5;
    cfg
}

/// One record read from an output topic.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Read a whole topic from the beginning until `done(records)` or `within`, as
/// the sink does (`read_committed`: what aborted transactions held is not seen).
pub fn read_until(bootstrap: &str, topic: &str, within: Duration, done: impl FnMut(&[Read]) -> bool) -> Vec<Read> {
    read_isolated(bootstrap, topic, "read_committed", within, done)
}

/// Every record of a topic including those of aborted transactions
/// (`read_uncommitted`), for `within`.
pub fn read_uncommitted(bootstrap: &str, topic: &str, within: Duration) -> Vec<Read> {
    read_isolated(bootstrap, topic, "read_uncommitted", within, |_| false)
}

fn read_isolated(bootstrap: &str, topic: &str, isolation: &str, within: Duration, mut done: impl FnMut(&[Read]) -> bool) -> Vec<Read> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kevents-test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let n = md.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if let Some(r) = c.poll(Duration::from_millis(200)) {
            let m = r.unwrap();
            let mut headers = HashMap::new();
            if let Some(h) = m.headers() {
                for hd in h.iter() {
                    headers.insert(hd.key.to_string(), String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned());
                }
            }
            out.push(Read { partition: m.partition(), offset: m.offset(), key: m.key().unwrap_or_default().to_vec(), payload: m.payload().unwrap_or_default().to_vec(), headers });
            continue;
        }
        if done(&out) {
            break;
        }
    }
    out
}

/// Processed records by id: every emission's bytes, decoded first emission.
pub fn by_id(reads: &[Read]) -> BTreeMap<String, (ProcessedEvent, Vec<Vec<u8>>)> {
    let codec = Codec::default();
    let mut m: BTreeMap<String, (ProcessedEvent, Vec<Vec<u8>>)> = BTreeMap::new();
    for r in reads {
        let p: ProcessedEvent = codec.decode(&r.payload).unwrap();
        assert_eq!(r.key, p.cluster.uid.as_bytes(), "processed records are keyed by cluster uid");
        m.entry(p.id.clone()).or_insert_with(|| (p, Vec::new())).1.push(r.payload.clone());
    }
    m
}

pub fn distinct_ids(reads: &[Read]) -> usize {
    let codec = Codec::default();
    reads.iter().map(|r| codec.decode::<ProcessedEvent>(&r.payload).unwrap().id).collect::<HashSet<_>>().len()
}

/// Heartbeat outputs deduplicated by their source position.
pub fn heartbeat_sources(reads: &[Read]) -> HashSet<(i32, i64)> {
    let codec = Codec::default();
    reads.iter().map(|r| {
        let h: ClusterHeartbeat = codec.decode(&r.payload).unwrap();
        (h.source.partition, h.source.offset)
    }).collect()
}

/// Assert the deduplicated processed output is exactly the truth, and every
/// repeated emission is byte-identical to the first. Returns how many records were
/// re-emissions.
pub fn assert_exact(w: &Workload, reads: &[Read]) -> usize {
    let got = by_id(reads);
    let missing: Vec<_> = w.expected.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|k| !w.expected.contains_key(*k)).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?} extra {extra:?} (got {}, expected {})", got.len(), w.expected.len());
    let mut replays = 0;
    let mut total = 0;
    for (id, (p, emissions)) in &got {
        assert_eq!(p.occurrences, w.expected[id], "occurrences of {id} ({:?} {})", p.watch_kind, p.event.uid);
        total += p.occurrences;
        for e in &emissions[1..] {
            assert_eq!(e, &emissions[0], "a re-emission of {id} differs from the first");
        }
        replays += emissions.len() - 1;
    }
    assert_eq!(total, w.total_occurrences);
    replays
}
