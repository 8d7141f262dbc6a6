//! The collector against the test API server and the real broker: whatever the API
//! server served reaches the raw topic exactly once, through watch drops, stale
//! empty watches, 410 Gone and restarts of the collector.

use kevents_collector as collector;
use collector::CollectorConfig;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::collections::HashMap;
use std::time::Duration;
use testkit::apiserver::{ApiServer, ServerOptions, Store};
use testkit::services::{read_topic, Services};

fn event(i: u64, count: i32) -> Event {
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


struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), collector::CollectorError>>,
}

fn start(cfg: CollectorConfig) -> Running {
    let (stop, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(collector::run(cfg, async move {
        let _ = rx.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Count each (uid, rv) of the events of `cluster_uid` in `topic`.
fn published(bootstrap: &str, topic: &str, cluster_uid: &str) -> HashMap<(String, String), u32> {
    let codec = Codec::default();
    let mut seen = HashMap::new();
    for m in read_topic(bootstrap, topic).expect("reading the raw topic") {
        let rec: RawRecord = codec.decode(&m.payload).unwrap();
        assert_eq!(rec.cluster.uid, cluster_uid);
        if let Some(e) = rec.event {
            *seen.entry((e.event.uid.clone(), e.event.resource_version.clone())).or_insert(0) += 1;
        }
    }
    seen
}

async fn wait_published(bootstrap: &str, topic: &str, uid: &str, want: usize) -> HashMap<(String, String), u32> {
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

fn assert_exactly_once(store: &Store, seen: &HashMap<(String, String), u32>) {
    let served: Vec<(String, String)> = store.changes().into_iter().map(|(u, rv)| (u, rv.to_string())).collect();
    let missing: Vec<_> = served.iter().filter(|k| !seen.contains_key(*k)).take(5).collect();
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(missing.is_empty(), "{} of {} served changes missing, e.g. {missing:?}", served.iter().filter(|k| !seen.contains_key(*k)).count(), served.len());
    assert!(doubled.is_empty(), "published more than once: {doubled:?}");
    assert_eq!(seen.len(), served.len(), "published changes the server never served");
}

async fn setup(name: &str) -> (ApiServer, CollectorConfig, String, tempfile::TempDir) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_restarts_and_dropped_connections_lose_and_double_nothing() {
    let (server, cfg, topic, _dir) = setup("col-restart").await;
    let store = server.store();
    // Events that exist before the first start: published by the initial list.
    for i in 0..200 {
        store.apply(event(i, 1));
    }
    let c = start(cfg.clone());
    // The first start lists what exists; versions superseded before that list are
    // never served to anyone, so wait for it before changing those objects.
    let uid = store.cluster_uid().to_string();
    assert_eq!(wait_published(&cfg.kafka.brokers, &topic, &uid, 200).await.len(), 200);
    server.faults().drop_watches_every(Some(Duration::from_millis(700)));
    for round in 0..10u64 {
        for i in 0..100 {
            // New events and repeats of old ones (count increments = MODIFIED).
            store.apply(event(200 + round * 100 + i, 1));
            store.apply(event(i, 2 + round as i32));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.stop().await;
    // Changes while no collector runs, then a second collector resumes.
    for i in 0..300 {
        store.apply(event(5000 + i, 1));
    }
    let c2 = start(cfg.clone());
    for i in 0..300 {
        store.apply(event(i, 50));
    }
    let seen = wait_published(&cfg.kafka.brokers, &topic, &store.cluster_uid().to_string(), store.changes().len()).await;
    c2.stop().await;
    server.faults().clear();
    assert_exactly_once(&store, &seen);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_and_empty_200_relist_without_loss_or_doubles() {
    let (server, cfg, topic, _dir) = setup("col-gone").await;
    let store = server.store();
    let c = start(cfg.clone());
    for i in 0..500 {
        store.apply(event(i, 1));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.stop().await;
    // While the collector is down, new events arrive and history is compacted:
    // its resume point is gone (410), and stale watches answer an empty 200.
    for i in 500..1000 {
        store.apply(event(i, 1));
    }
    store.compact();
    server.faults().set_stale_watch_empty_200(true);
    let c = start(cfg.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 1000..1500 {
        store.apply(event(i, 1));
    }
    server.faults().set_stale_watch_empty_200(false);
    // And a 410 in the middle of a live watch.
    store.compact();
    server.faults().expire_next_watches(1);
    server.faults().drop_watches_now();
    for i in 1500..2000 {
        store.apply(event(i, 1));
    }
    let seen = wait_published(&cfg.kafka.brokers, &topic, &store.cluster_uid().to_string(), store.changes().len()).await;
    c.stop().await;
    assert_exactly_once(&store, &seen);
    server.shutdown().await;
}
