//! Helpers shared by the collector's integration tests: a test API server with its
//! change log, a collector run in-process, and counting what reached the raw topic.

#![allow(dead_code)] // each test binary uses its own subset

pub use kevents_collector as collector;
use collector::CollectorConfig;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::collections::HashMap;
use std::time::Duration;
use testkit::apiserver::{ApiServer, ServerOptions, Store};
use testkit::services::{read_topic, Services};

pub mod cluster;

pub fn event(i: u64, count: i32) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(format!("pod-{i}.{i:x}")),
            namespace: Some(format!("ns-{}", i % 3)),
            uid: Some(format!("uid-{i}")),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some(format!("pod-{i}")),
            namespace: Some(format!("ns-{}", i % 3)),
            ..Default::default()
        },
        reason: Some("BackOff".into()),
        message: Some("Back-off restarting failed container app".into()),
        type_: Some("Warning".into()),
        count: Some(count),
        ..Default::default()
    }
}


pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), collector::CollectorError>>,
}

pub fn start(cfg: CollectorConfig) -> Running {
    let (stop, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(collector::run(cfg, async move {
        let _ = rx.await;
    }));
    Running { stop, task }
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Count each (uid, rv) of the events of `cluster_uid` in `topic`.
pub fn published(bootstrap: &str, topic: &str, cluster_uid: &str) -> HashMap<(String, String), u32> {
    let codec = Codec::default();
    let mut seen = HashMap::new();
    for m in read_topic(bootstrap, topic).expect("reading the raw topic") {
        let rec: RawRecord = codec.decode(&m.payload).unwrap();
        assert_eq!(rec.cluster.uid, cluster_uid);
        if let Some(e) = rec.event {
            *seen.entry((e.event.uid.to_string(), e.event.resource_version.to_string())).or_insert(0) += 1;
        }
    }
    seen
}

pub async fn wait_published(bootstrap: &str, topic: &str, uid: &str, want: usize) -> HashMap<(String, String), u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (b, t, u) = (bootstrap.to_string(), topic.to_string(), uid.to_string());
        let seen = tokio::task::spawn_blocking(move || published(&b, &t, &u)).await.unwrap();
        if seen.len() >= want || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn assert_exactly_once(store: &Store, seen: &HashMap<(String, String), u32>) {
    let served: Vec<(String, String)> = store.changes().into_iter().map(|(u, rv)| (u, rv.to_string())).collect();
    let missing: Vec<_> = served.iter().filter(|k| !seen.contains_key(*k)).take(5).collect();
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(missing.is_empty(), "{} of {} served changes missing, e.g. {missing:?}", served.iter().filter(|k| !seen.contains_key(*k)).count(), served.len());
    assert!(doubled.is_empty(), "published more than once: {doubled:?}");
    assert_eq!(seen.len(), served.len(), "published changes the server never served");
}

pub async fn setup(name: &str) -> (ApiServer, CollectorConfig, String, tempfile::TempDir) {
    let services = Services::get();
    let topics = services.create_topics(name, &[("raw", 1)]).await;
    let topic = topics.name("raw").to_string();
    std::mem::forget(topics); // keep the topic for the test's lifetime
    let server = ApiServer::start(ServerOptions {
        bookmark_interval: Duration::from_millis(500),
        ..Default::default()
    })
    .await
    .unwrap();
    server.store().log_changes();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc, name).unwrap();
    let mut cfg = CollectorConfig::for_cluster(name);
    cfg.kubeconfig = Some(kc);
    cfg.kafka.brokers = services.kafka_bootstrap();
    cfg.topic = topic.clone();
    cfg.heartbeat_interval_secs = 1;
    cfg.stall_timeout_secs = 30;
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    (server, cfg, topic, dir)
}

