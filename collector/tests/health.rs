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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_kafka_and_the_watch() {
    let mut broker = OwnedBroker::spawn().expect("private broker");
    let topics = broker.create_topics("health", &[("raw", 1)]).await;
    let server = ApiServer::start(ServerOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc, "health").unwrap();
    let port = free_port().unwrap();
    let mut cfg = CollectorConfig::for_cluster("health");
    cfg.kubeconfig = Some(kc);
    cfg.kafka.brokers = broker.bootstrap();
    cfg.topic = topics.name("raw").to_string();
    cfg.heartbeat_interval_secs = 1;
    cfg.stall_timeout_secs = 3;
    cfg.watch_timeout_secs = 2;
    cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector::run(cfg, async move {
        let _ = rx.await;
    }));

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
