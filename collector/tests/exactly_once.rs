//! The collector against the test API server and the real broker: whatever the API
//! server served reaches the raw topic exactly once, through watch drops, stale
//! empty watches, 410 Gone and restarts of the collector.

mod common;
use common::*;
use std::time::Duration;

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
    let seen = wait_published(&cfg.kafka.brokers, &topic, store.cluster_uid(), store.changes().len()).await;
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
    let seen = wait_published(&cfg.kafka.brokers, &topic, store.cluster_uid(), store.changes().len()).await;
    c.stop().await;
    assert_exactly_once(&store, &seen);
    server.shutdown().await;
}
