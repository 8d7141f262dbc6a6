//! The `kevents collector` binary under the faults the collector must survive, while
//! the simulator's scenarios are applied to a test API server at ≥ 2,000 events/s:
//! kill -9 and restart, a broker restart, Kafka unreachable, and two replicas with
//! leader election whose leader is killed. Each test then reads the raw topic and
//! checks that every (uid, resourceVersion) the API server served is in it exactly
//! once.
//!
//! While Kafka is down, the collector's in-flight budget in bytes (set small here) must
//! bind: what waits for acknowledgement stays within `max_in_flight_bytes`.
//!
//! `KEVENTS_TEST_KAFKA_DOWN_SECS` sets how long Kafka stays down (default 60).

mod collector_proc;

use collector_proc::{drive, ops_get, published_async, wait_ready, Collector};
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::apiserver::{ApiServer, ServerOptions, Store};
use testkit::services::{free_port, read_topic, OwnedBroker, Services};
use tokio::sync::watch;

const RATE: u64 = 2_000;

/// Collector logs outlive the test (kept for reading after a failure).
fn log_path(test: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("kevents-collector-faults-{test}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}


/// A collector config file for `server`, writing to `topic` on `brokers`; returns
/// the file and the ops port.
fn write_config(dir: &Path, name: &str, server: &ApiServer, brokers: &str, topic: &str, extra: &str) -> (PathBuf, u16) {
    let kc = dir.join("kubeconfig");
    server.write_kubeconfig(&kc, "sim-1").unwrap();
    let path = dir.join(format!("{name}.yaml"));
    let port = free_port().unwrap();
    std::fs::write(
        &path,
        format!(
            "cluster: {{name: sim-1}}\nkubeconfig: {}\nkafka: {{brokers: \"{brokers}\"}}\ntopic: {topic}\n\
             heartbeat_interval_secs: 1\nstall_timeout_secs: 30\nlisten: 127.0.0.1:{}\ninstance: {name}\n{extra}",
            kc.display(),
            port
        ),
    )
    .unwrap();
    (path, port)
}

async fn server() -> ApiServer {
    let server = ApiServer::start(ServerOptions {
        bookmark_interval: Duration::from_secs(1),
        // Room for 60 s of changes at the test rate: a real API server keeps ~5 min.
        compaction_window: 1_000_000,
        ..Default::default()
    })
    .await
    .unwrap();
    server.store().log_changes();
    server
}

/// Wait until the topic holds every served change (or time out), then compare.
async fn assert_exactly_once(store: &Store, brokers: &str, topic: &str) -> usize {
    let served = store.changes();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let seen = published_async(brokers, topic).await;
        if served.iter().all(|k| seen.contains_key(k)) || tokio::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let missing: Vec<_> = served.iter().filter(|k| !seen.contains_key(*k)).collect();
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} of {} served changes missing, first {:?}",
        missing.len(),
        served.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(doubled.is_empty(), "{} changes published more than once, e.g. {:?}", doubled.len(), &doubled[..doubled.len().min(5)]);
    assert_eq!(seen.len(), served.len(), "the topic holds changes the server never served");
    served.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_and_restart_lose_and_double_nothing() {
    let services = Services::get();
    let topics = services.create_topics("cli-kill9", &[("raw", 3)]).await;
    let (brokers, topic) = (services.kafka_bootstrap(), topics.name("raw").to_string());
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, port) = write_config(dir.path(), "c0", &server, &brokers, &topic, "");
    let log = log_path("kill9");
    let mut c = Collector::start(&cfg, &log);
    wait_ready(port).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = drive(server.store(), stop_rx, RATE);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        c.kill9();
        tokio::time::sleep(Duration::from_millis(500)).await;
        c = Collector::start(&cfg, &log);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(true);
    let applied = driver.await.unwrap();
    assert!(applied as f64 >= RATE as f64 * 10.0 * 0.8, "the driver applied only {applied} changes in ~12 s");
    let n = assert_exactly_once(&server.store(), &brokers, &topic).await;
    c.stop();
    eprintln!("kill -9 ×3: {n} served changes, each exactly once in the topic (log: {})", log.display());
}

/// A gauge or counter from the collector's `/metrics` (0 when absent).
async fn metric(port: u16, name: &str) -> f64 {
    let body = ops_get(port, "/metrics").await.map(|(_, b)| b).unwrap_or_default();
    body.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The in-flight budget of the broker test: 64 KiB, about a hundred records.
const BUDGET_BYTES: f64 = 65536.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_and_kafka_down_lose_and_double_nothing() {
    let down = Duration::from_secs(
        std::env::var("KEVENTS_TEST_KAFKA_DOWN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60),
    );
    let mut broker = OwnedBroker::spawn().expect("private broker");
    let topics = broker.create_topics("cli-broker", &[("raw", 3)]).await;
    let (brokers, topic) = (broker.bootstrap(), topics.name("raw").to_string());
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, port) = write_config(dir.path(), "c0", &server, &brokers, &topic, &format!("max_in_flight_bytes: {BUDGET_BYTES}\n"));
    let log = log_path("broker");
    let mut c = Collector::start(&cfg, &log);
    wait_ready(port).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = drive(server.store(), stop_rx, RATE);
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart().expect("broker restarts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.stop();
    // While Kafka is down the budget fills and binds: bytes, not the record cap (4096).
    let mut peak = (0.0, 0.0);
    let until = tokio::time::Instant::now() + down;
    while tokio::time::Instant::now() + Duration::from_secs(1) < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (bytes, records) = (metric(port, "kevents_collector_queue_bytes").await, metric(port, "kevents_collector_queue_depth").await);
        assert!(bytes <= BUDGET_BYTES, "{bytes} bytes in flight, over the budget");
        if bytes > peak.0 {
            peak = (bytes, records);
        }
    }
    tokio::time::sleep_until(until).await;
    let (bytes, records) = peak;
    assert!(bytes > BUDGET_BYTES - 4096.0, "the budget filled while Kafka was down: {bytes} bytes");
    assert!(records > 10.0 && records < 1000.0, "{records} records in flight: the byte budget binds");
    broker.start().expect("broker starts again");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(true);
    let applied = driver.await.unwrap();
    let n = assert_exactly_once(&server.store(), &brokers, &topic).await;
    c.stop();
    eprintln!(
        "broker restart + {}s down: {n} served changes ({applied} applied), each exactly once; at most {bytes} bytes in {records} records in flight (log: {})",
        down.as_secs(),
        log.display()
    );
    drop(topics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_standby_takes_over_without_loss_or_doubles() {
    let services = Services::get();
    let topics = services.create_topics("cli-ha", &[("raw", 3)]).await;
    let (brokers, topic) = (services.kafka_bootstrap(), topics.name("raw").to_string());
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let election = "leader_election: {namespace: kube-system, lease_duration_secs: 3, renew_deadline_secs: 2, retry_period_secs: 1}\n";
    let (cfg_a, port_a) = write_config(dir.path(), "replica-a", &server, &brokers, &topic, election);
    let (cfg_b, _) = write_config(dir.path(), "replica-b", &server, &brokers, &topic, election);
    let log = log_path("ha");
    let mut a = Collector::start(&cfg_a, &log);
    wait_ready(port_a).await; // a holds the lease and watches
    let mut b = Collector::start(&cfg_b, &log);
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = drive(server.store(), stop_rx, RATE);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let lease = server.store().get_lease("kube-system", "kevents-collector").expect("the leader created the lease");
    let holder = lease.spec.unwrap().holder_identity.unwrap();
    assert_eq!(holder, "replica-a");
    a.kill9();
    // The standby waits for the lease to expire (3 s), then resumes from the topic.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let lease = server.store().get_lease("kube-system", "kevents-collector").unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    let _ = stop_tx.send(true);
    driver.await.unwrap();
    let n = assert_exactly_once(&server.store(), &brokers, &topic).await;
    // Records carry the epoch of the leader that wrote them.
    let codec = Codec::default();
    let epochs: std::collections::BTreeSet<(String, i64)> = read_topic(&brokers, &topic)
        .unwrap()
        .iter()
        .map(|m| codec.decode::<RawRecord>(&m.payload).unwrap())
        .map(|r| (r.collector.instance, r.collector.leader_epoch))
        .collect();
    assert_eq!(
        epochs.into_iter().collect::<Vec<_>>(),
        vec![("replica-a".to_string(), 0), ("replica-b".to_string(), 1)]
    );
    b.stop();
    eprintln!("leader kill -9: {n} served changes, each exactly once");
}
