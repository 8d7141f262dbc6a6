//! Rebalances with batches in flight: sink members join, leave gracefully and crash
//! while records flow (5,000 events/s and heartbeats, paced by the clock). The
//! writer inserts a batch while the loop decodes the next, so a revocation often finds
//! an INSERT in flight; the revoke callback waits for it before the partition moves
//! (an INSERT landing after the new owner loaded the marks would store its rows
//! twice). Afterwards every record is stored exactly once, in the raw table and the
//! rollups.

extern crate kevents_sink as sink;

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::services::Services;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_joining_leaving_and_crashing_mid_stream_store_everything_once() {
    let s = Services::get();
    let topics = s.create_topics("sink-rebalance", &[("processed", 6), ("heartbeats", 2), ("incidents", 1), ("patterns", 1), ("alerts", 1), ("dlq", 1)]).await;
    let db = s.fresh_database("sink_rebalance").await;
    let c = &db.client;
    let cfg = config(&s.kafka_bootstrap(), &s.clickhouse_url(), &db.name, |t| topics.name(t).to_string());
    let member = |_: usize| {
        let mut m = cfg.clone();
        m.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        m
    };
    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(flow(
        5_000,
        s.kafka_bootstrap(),
        topics.name("processed").to_string(),
        topics.name("heartbeats").to_string(),
        stop.clone(),
    ));

    let a = RunningSink::start(member(0));
    wait_until(Duration::from_secs(60), "first rows loaded", || async {
        try_scalar(c, "SELECT toInt64(count()) FROM events").await.unwrap_or(0) > 5_000
    })
    .await;
    let b = RunningSink::start(member(1)); // join: a's partitions are revoked mid-stream
    tokio::time::sleep(Duration::from_secs(4)).await;
    let d = RunningSink::start(member(2)); // another join
    tokio::time::sleep(Duration::from_secs(4)).await;
    a.stop().await; // graceful leave
    tokio::time::sleep(Duration::from_secs(4)).await;
    b.abort().await; // crash: its partitions move after the session times out
    tokio::time::sleep(Duration::from_secs(2)).await;
    let e = RunningSink::start(member(3));
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let (n, occ, hb) = producer.await.unwrap();

    wait_until(Duration::from_secs(180), "every produced record stored", || async {
        try_scalar(c, "SELECT toInt64(count()) FROM events").await == Some(n)
            && try_scalar(c, "SELECT toInt64(count()) FROM cluster_heartbeats").await == Some(hb)
    })
    .await;
    // Let a doubled batch (if any) land before checking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.stop().await;
    e.stop().await;
    event_counts(c).await.assert_exact(n, occ);
    assert_eq!(scalar(c, "SELECT toInt64(count()) FROM cluster_heartbeats").await, hb);
    assert_eq!(scalar(c, "SELECT toInt64(uniqExact(cluster, observed_at)) FROM cluster_heartbeats").await, hb);
    eprintln!("rebalance test: {n} events, {hb} heartbeats through 4 members, 2 joins, a leave and a crash");
}
