//! /healthz and /readyz tell the truth: not ready until the watch is established,
//! unhealthy when Kafka stops acknowledging or the watch stops making progress.

use kevents_collector as collector;
use collector::CollectorConfig;
use std::time::Duration;
use testkit::apiserver::{ApiServer, ServerOptions};
use testkit::services::{free_port, http_request, OwnedBroker};

async fn get(port: u16, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        http_request(&format!("http://127.0.0.1:{port}"), "GET", path, "", Duration::from_secs(5))
            .unwrap_or((0, String::new()))
    })
    .await
    .unwrap()
}

/// Poll `path` until it answers `status` (or fail after `within`).
async fn wait_for(port: u16, path: &'static str, status: u16, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (s, body) = get(port, path).await;
        if s == status {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} still {s} after {within:?}: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

type Collector = tokio::task::JoinHandle<Result<(), collector::CollectorError>>;

/// The real collector for cluster `name` of `server`, publishing to `topic` on
/// `brokers`, its ops endpoint on a free port; `tune` sets the test's intervals.
/// Returns the port, the stop signal, the task and the temp dir of its kubeconfig.
fn spawn_collector(
    server: &ApiServer,
    name: &str,
    brokers: String,
    topic: &str,
    tune: impl FnOnce(&mut CollectorConfig),
) -> (u16, tokio::sync::oneshot::Sender<()>, Collector, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc, name).unwrap();
    let port = free_port().unwrap();
    let mut cfg = CollectorConfig::for_cluster(name);
    cfg.kubeconfig = Some(kc);
    cfg.kafka.brokers = brokers;
    cfg.topic = topic.to_string();
    tune(&mut cfg);
    cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector::run(cfg, async move {
        let _ = rx.await;
    }));
    (port, stop, task, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_kafka_and_the_watch() {
    let mut broker = OwnedBroker::spawn().expect("private broker");
    let topics = broker.create_topics("health", &[("raw", 1)]).await;
    let server = ApiServer::start(ServerOptions::default()).await.unwrap();
    let (port, stop, task, _dir) = spawn_collector(&server, "health", broker.bootstrap(), topics.name("raw"), |cfg| {
        cfg.heartbeat_interval_secs = 1;
        cfg.stall_timeout_secs = 3;
        cfg.watch_timeout_secs = 2;
    });

    let ready = wait_for(port, "/readyz", 200, Duration::from_secs(30)).await;
    assert!(ready.contains("watch: ready"), "{ready}");
    wait_for(port, "/healthz", 200, Duration::from_secs(5)).await;

    // Kafka stops acknowledging: unhealthy within the stall timeout (3 s) + slack.
    broker.stop();
    let body = wait_for(port, "/healthz", 503, Duration::from_secs(10)).await;
    assert!(body.contains("publish: STALLED"), "{body}");
    broker.start().expect("broker back");
    wait_for(port, "/healthz", 200, Duration::from_secs(30)).await;

    // The watch hangs (every API response delayed far beyond the limits): unhealthy
    // after watch timeout (2 s) + stall timeout (3 s), although heartbeats still flow.
    server.faults().set_delay(Duration::from_secs(120));
    server.faults().drop_watches_now();
    let body = wait_for(port, "/healthz", 503, Duration::from_secs(15)).await;
    assert!(body.contains("watch: STALLED"), "{body}");
    assert!(!body.contains("publish: STALLED"), "Kafka is fine: {body}");

    let _ = stop.send(());
    server.faults().clear();
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
}

/// Acknowledgements are taken as Kafka gives them, not only when the next event or
/// heartbeat wakes the publisher: after a burst, with no heartbeat due for ten
/// minutes, every event of the burst is counted published (metrics and the publish
/// probe) within seconds. (Before, the last acknowledgements of a burst waited for the
/// next heartbeat: the watch→acknowledged bench measured the heartbeat interval.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_are_counted_when_the_watch_goes_quiet() {
    let services = testkit::services::Services::get();
    let topics = services.create_topics("quiet-acks", &[("raw", 1)]).await;
    let server = ApiServer::start(ServerOptions::default()).await.unwrap();
    let (port, stop, task, _dir) = spawn_collector(&server, "quiet", services.kafka_bootstrap(), topics.name("raw"), |cfg| {
        cfg.heartbeat_interval_secs = 600;
        cfg.stall_timeout_secs = 1200;
    });
    wait_for(port, "/readyz", 200, Duration::from_secs(30)).await;

    const N: u64 = 2_000;
    let store = server.store();
    for i in 0..N {
        store.apply(k8s_openapi::api::core::v1::Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("quiet.{i}")),
                namespace: Some("default".into()),
                ..Default::default()
            },
            involved_object: k8s_openapi::api::core::v1::ObjectReference { kind: Some("Pod".into()), name: Some(format!("p-{i}")), ..Default::default() },
            reason: Some("Started".into()),
            type_: Some("Normal".into()),
            ..Default::default()
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let published = loop {
        let (_, body) = get(port, "/metrics").await;
        let n: f64 = body
            .lines()
            .filter(|l| l.starts_with("kevents_collector_records_published_total") && !l.contains("HEARTBEAT"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if n as u64 >= N || tokio::time::Instant::now() > deadline {
            break n as u64;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(published, N, "acknowledged events counted with the watch quiet and no heartbeat due");
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
}
