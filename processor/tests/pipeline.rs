//! The processor through a real broker: exact occurrences over 6 partitions and
//! several clusters (with re-deliveries and a deposed leader's writes), heartbeats
//! forwarded, and undecodable records dead-lettered once — never retried, never
//! stopping the partition.

mod common;

use common::*;
use schemas::avro::Codec;
use schemas::records::ProcessedEvent;
use std::time::Duration;
use testkit::services::Services;

fn shutdown_pair() -> (tokio::sync::oneshot::Sender<()>, impl std::future::Future<Output = ()> + Send + 'static) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_occurrences_over_six_partitions() {
    let s = Services::get();
    let topics = s.create_topics("proc-exact", &[("raw", 6), ("processed", 3), ("heartbeats", 2), ("dlq", 1)]).await;
    let w = workload(7, 9, 6, 250);
    assert!(w.duplicates > 50 && w.stale > 10 && w.heartbeats > 50, "workload exercises the paths: {} dup {} stale {} hb", w.duplicates, w.stale, w.heartbeats);
    let p = producer(topics.bootstrap());
    produce(&p, topics.name("raw"), &w.records).await;

    let cfg = config(&topics, &format!("g-{}", topics.name("raw")));
    let (stop, shutdown) = shutdown_pair();
    let running = kevents_processor::start(cfg, shutdown).await.unwrap();
    let metrics = running.metrics.clone();
    let ops = running.ops_addr;

    let want = w.expected.len();
    let reads = read_until(topics.bootstrap(), topics.name("processed"), Duration::from_secs(90), |r| distinct_ids(r) >= want);
    let replays = assert_exact(&w, &reads);
    assert_eq!(replays, 0, "one member, no failure: nothing re-emitted");

    let hbs = read_until(topics.bootstrap(), topics.name("heartbeats"), Duration::from_secs(30), |r| heartbeat_sources(r).len() >= w.heartbeats);
    assert_eq!(heartbeat_sources(&hbs).len(), w.heartbeats);

    // Every processed record's source is its raw input's position; sequence 0.
    let codec = Codec::default();
    for r in &reads {
        let pe: ProcessedEvent = codec.decode(&r.payload).unwrap();
        assert!((0..6).contains(&pe.source.partition) && pe.source.offset >= 0 && pe.source.seq == 0);
    }

    // The ops endpoint tells the truth.
    let body = http_get(ops, "/metrics").await;
    assert!(body.contains("kevents_processor_partitions_assigned 6"), "{body}");
    let ready = http_get(ops, "/readyz").await;
    assert!(ready.contains("6 raw partitions assigned"), "{ready}");

    stop.send(()).unwrap();
    running.wait().await.unwrap();
    let dropped = metrics.duplicates.get() + metrics.stale_epochs.get();
    assert_eq!(dropped as usize, w.duplicates + w.stale);
    assert!(metrics.stale_epochs.get() >= w.stale as u64);
    assert_eq!(metrics.consumed.get() as usize, w.records.len());
    assert!(metrics.unknown.get() > 0, "the custom reason is unknown to the built-in rules");
}

/// The same exactness with the processor connected over the broker's SASL_SSL
/// listener (SCRAM-SHA-512, the CA from `ca_file`, the password from a file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_over_sasl_ssl() {
    use runtime::kafka::{SaslConfig, SaslMechanism, SecurityProtocol};
    let s = Services::get();
    let sasl = s.kafka_sasl();
    let topics = s.create_topics("proc-sasl", &[("raw", 3), ("processed", 3), ("heartbeats", 2), ("dlq", 1)]).await;
    let w = workload(11, 4, 3, 120);
    produce(&producer(topics.bootstrap()), topics.name("raw"), &w.records).await;

    let mut cfg = config(&topics, &format!("g-{}", topics.name("raw")));
    cfg.kafka.brokers = sasl.bootstrap.clone();
    cfg.kafka.security_protocol = SecurityProtocol::SaslSsl;
    cfg.kafka.tls.ca_file = Some(sasl.ca_file.display().to_string());
    cfg.kafka.sasl = Some(SaslConfig {
        mechanism: SaslMechanism::ScramSha512,
        username: sasl.username.clone(),
        password: None,
        password_file: Some(sasl.password_file.display().to_string()),
        password_env: None,
    });
    let (stop, shutdown) = shutdown_pair();
    let running = kevents_processor::start(cfg, shutdown).await.unwrap();
    let want = w.expected.len();
    let reads = read_until(topics.bootstrap(), topics.name("processed"), Duration::from_secs(90), |r| distinct_ids(r) >= want);
    assert_eq!(assert_exact(&w, &reads), 0, "nothing re-emitted");
    assert_eq!(reads.len(), want, "each output exactly once");
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

/// Workers that take the next batch only when every output before it is
/// acknowledged (`max_in_flight: 1`) fill their queues: their partitions are
/// paused and resumed many times, and still every record is consumed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_workers_pause_their_partitions_and_lose_nothing() {
    let s = Services::get();
    let topics = s.create_topics("proc-pause", &[("raw", 2), ("processed", 3), ("heartbeats", 2), ("dlq", 1)]).await;
    // Long partitions: more batches than a worker's queue holds.
    let w = workload(13, 2, 2, 12_000);
    let p = producer(topics.bootstrap());
    produce(&p, topics.name("raw"), &w.records).await;

    let mut cfg = config(&topics, &format!("g-{}", topics.name("raw")));
    cfg.max_in_flight = 1;
    let (stop, shutdown) = shutdown_pair();
    let running = kevents_processor::start(cfg, shutdown).await.unwrap();
    let metrics = running.metrics.clone();
    let want = w.expected.len();
    let reads = read_until(topics.bootstrap(), topics.name("processed"), Duration::from_secs(120), |r| distinct_ids(r) >= want);
    let replays = assert_exact(&w, &reads);
    assert_eq!(replays, 0, "nothing fetched twice across the pauses");
    stop.send(()).unwrap();
    running.wait().await.unwrap();
    assert!(metrics.pauses.get() > 0, "the workers' queues filled up");
    assert_eq!(metrics.consumed.get() as usize, w.records.len(), "every record consumed exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_go_to_the_dlq_once() {
    let s = Services::get();
    let topics = s.create_topics("proc-dlq", &[("raw", 2), ("processed", 1), ("heartbeats", 1), ("dlq", 1)]).await;
    let w = workload(11, 2, 2, 60);
    let p = producer(topics.bootstrap());
    // Cluster 0 lives on partition 0: garbage in the middle of its records.
    let (first, rest) = w.records.split_at(w.records.len() / 2);
    produce(&p, topics.name("raw"), first).await;
    let garbage = RawOut { partition: 0, key: cluster_uid(0), payload: b"\x00\x00\x00\xff\xffnot avro at all".to_vec() };
    let short = RawOut { partition: 0, key: cluster_uid(0), payload: b"xy".to_vec() };
    produce(&p, topics.name("raw"), &[garbage.clone(), short]).await;
    produce(&p, topics.name("raw"), rest).await;

    let group = format!("g-{}", topics.name("raw"));
    let (stop, shutdown) = shutdown_pair();
    let running = kevents_processor::start(config(&topics, &group), shutdown).await.unwrap();
    let metrics = running.metrics.clone();
    let want = w.expected.len();
    let reads = read_until(topics.bootstrap(), topics.name("processed"), Duration::from_secs(60), |r| distinct_ids(r) >= want);
    // The partition kept going past the bad records: everything after them is there.
    assert_exact(&w, &reads);
    stop.send(()).unwrap();
    running.wait().await.unwrap();
    assert_eq!(metrics.dead_letters.get(), 2);

    // A second run of the same group starts after the committed offsets: the dead
    // letters are not retried (still exactly two in the DLQ), nothing re-emitted.
    let (stop, shutdown) = shutdown_pair();
    let running = kevents_processor::start(config(&topics, &group), shutdown).await.unwrap();
    let metrics2 = running.metrics.clone();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.send(()).unwrap();
    running.wait().await.unwrap();
    assert_eq!(metrics2.dead_letters.get(), 0, "not retried");
    assert_eq!(metrics2.consumed.get(), 0, "everything was committed");

    let dlq = read_until(topics.bootstrap(), topics.name("dlq"), Duration::from_secs(10), |r| r.len() >= 2);
    assert_eq!(dlq.len(), 2);
    let d = &dlq[0];
    assert_eq!(d.payload, garbage.payload, "the original bytes");
    assert_eq!(d.key, garbage.key.as_bytes());
    assert_eq!(d.headers["kevents.dlq.topic"], topics.name("raw"));
    assert_eq!(d.headers["kevents.dlq.partition"], "0");
    assert_eq!(d.headers["kevents.dlq.offset"], (first.iter().filter(|r| r.partition == 0).count()).to_string());
    assert!(d.headers["kevents.dlq.reason"].contains("schema id"), "{:?}", d.headers);
    assert!(dlq[1].headers["kevents.dlq.reason"].contains("too short"), "{:?}", dlq[1].headers);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}
