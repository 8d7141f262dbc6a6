//! The collector's filters, on the core/v1 API shape: one watch per configured
//! namespace (each with its own cursor), a field selector applied by the API server,
//! and a drop rule applied before encoding. Across a restart, exactly the changes
//! that pass the filters reach the topic, each once, and nothing else.

mod common;
use common::*;
use collector::config::{ApiKind, DropRule};
use k8s_openapi::api::core::v1::Event;
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use testkit::apiserver::Store;
use testkit::services::read_topic;

/// Event `i`: namespace ns-(i%3), Warning unless i%4 == 0, reason Pulled when i%5 == 0.
fn varied(i: u64, count: i32) -> Event {
    let mut e = event(i, count);
    if i.is_multiple_of(4) {
        e.type_ = Some("Normal".into());
    }
    if i.is_multiple_of(5) {
        e.reason = Some("Pulled".into());
    }
    e
}

fn passes(i: u64) -> bool {
    i % 3 != 2 && !i.is_multiple_of(4) && !i.is_multiple_of(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_field_selector_and_drop_rules_on_core_v1() {
    let (server, mut cfg, topic, _dir) = setup("col-filters").await;
    cfg.api = ApiKind::CoreV1;
    cfg.namespaces = vec!["ns-0".into(), "ns-1".into()];
    cfg.field_selector = Some("type=Warning".into());
    cfg.drop = vec![DropRule { name: "no-pulled".into(), reason: Some("Pulled".into()), ..Default::default() }];
    let store: Store = server.store();
    for i in 0..300 {
        store.apply(varied(i, 1));
    }
    let c = start(cfg.clone());
    let uid = store.cluster_uid().to_string();
    let want_initial = (0..300).filter(|i| passes(*i)).count();
    assert_eq!(wait_published(&cfg.kafka.brokers, &topic, &uid, want_initial).await.len(), want_initial);
    for i in 0..300 {
        store.apply(varied(i, 2));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.stop().await;
    for i in 300..600 {
        store.apply(varied(i, 1));
    }
    let c = start(cfg.clone());
    for i in 0..600 {
        store.apply(varied(i, 3));
    }
    // Every change of an object that passes the filters; nothing of the others.
    let changes = store.changes();
    let uid_of = |u: &str| u.trim_start_matches("uid-").parse::<u64>().unwrap();
    let want: BTreeSet<(String, String)> = changes
        .iter()
        .filter(|(u, _)| passes(uid_of(u)))
        .map(|(u, rv)| (u.clone(), rv.to_string()))
        .collect();
    let seen = wait_published(&cfg.kafka.brokers, &topic, &uid, want.len()).await;
    c.stop().await;
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "published twice: {doubled:?}");
    let got: BTreeSet<(String, String)> = seen.keys().cloned().collect();
    assert_eq!(got.len(), want.len(), "missing {:?}", want.difference(&got).take(5).collect::<Vec<_>>());
    assert_eq!(got, want);

    // One heartbeat scope per namespace, and records say which shape was read.
    let codec = Codec::default();
    let mut scopes: HashMap<String, usize> = HashMap::new();
    for m in read_topic(&cfg.kafka.brokers, &topic).unwrap() {
        let r: RawRecord = codec.decode(&m.payload).unwrap();
        if let Some(h) = r.heartbeat {
            *scopes.entry(h.scope).or_default() += 1;
        }
        if let Some(e) = r.event {
            assert_eq!(e.event.api_shape, schemas::ApiShape::CoreV1);
        }
    }
    assert_eq!(scopes.keys().cloned().collect::<BTreeSet<_>>(), BTreeSet::from(["ns-0".to_string(), "ns-1".to_string()]));
    server.shutdown().await;
}
