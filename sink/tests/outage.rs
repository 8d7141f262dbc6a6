//! Faults with records flowing (5,000 events/s, paced by the clock): the sink crashes mid-stream
//! and restarts, then ClickHouse is down for a while and comes back. Afterwards
//! every record is stored exactly once, in the raw table and in the rollups.
//!
//! The outage lasts `KEVENTS_SINK_OUTAGE_SECS` seconds (default 12 to keep the
//! suite quick; the acceptance run uses 60: `KEVENTS_SINK_OUTAGE_SECS=60 cargo
//! test -p kevents-sink --test outage`).

extern crate kevents_sink as sink;

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::services::{OwnedClickHouse, Services};

/// Events per second the flow produces.
const RATE: i64 = 5_000;

fn outage() -> Duration {
    let secs = std::env::var("KEVENTS_SINK_OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_clickhouse_outage_lose_and_double_nothing() {
    let s = Services::get();
    let mut ch = tokio::task::spawn_blocking(|| OwnedClickHouse::spawn().expect("private ClickHouse"))
        .await
        .unwrap();
    let topics = s.create_topics("sink-outage", TOPICS).await;
    let cfg = config(&s.kafka_bootstrap(), &ch.url(), "kev_outage", |t| topics.name(t).to_string());
    let client = ch.client().with_database("kev_outage");

    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(flow(
        RATE,
        s.kafka_bootstrap(),
        topics.name("processed").to_string(),
        topics.name("heartbeats").to_string(),
        stop.clone(),
    ));

    // A crash mid-stream: the task is dropped wherever it is.
    let first = RunningSink::start(cfg.clone());
    wait_until(Duration::from_secs(60), "first rows loaded", || async {
        try_scalar(&client, "SELECT toInt64(count()) FROM events").await.unwrap_or(0) > 5_000
    })
    .await;
    first.abort().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let second = RunningSink::start(cfg.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;

    // ClickHouse down while records keep coming.
    let before = try_scalar(&client, "SELECT toInt64(count()) FROM events").await.unwrap_or(0);
    tokio::task::block_in_place(|| ch.stop());
    tokio::time::sleep(outage() / 2).await;
    let (code, body) = second.get("/readyz").await;
    assert_eq!(code, 503, "not ready while ClickHouse is down: {body}");
    assert!(body.contains("clickhouse: NOT READY"), "{body}");
    assert_eq!(second.get("/healthz").await.0, 200, "retrying is not a stall");
    tokio::time::sleep(outage() - outage() / 2).await;
    tokio::task::block_in_place(|| ch.start()).expect("ClickHouse starts again");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (n, occ, hb) = producer.await.unwrap();
    assert!(n > before, "records flowed during the outage");

    wait_until(Duration::from_secs(300), "every produced record stored", || async {
        try_scalar(&client, "SELECT toInt64(count()) FROM events").await == Some(n)
            && try_scalar(&client, "SELECT toInt64(count()) FROM cluster_heartbeats").await == Some(hb)
    })
    .await;
    // Let a doubled batch (if any) land before checking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The loop blocks on whichever table's batch hit the outage first.
    let retries = second.metric("kevents_sink_insert_retries_total{table=\"events\"}").await
        + second.metric("kevents_sink_insert_retries_total{table=\"cluster_heartbeats\"}").await;
    assert!(retries >= 1.0, "the outage was seen as failed inserts");
    second.stop().await;
    event_counts(&client).await.assert_exact(n, occ);
    assert_eq!(scalar(&client, "SELECT toInt64(count()) FROM cluster_heartbeats").await, hb);
    eprintln!("outage test: {n} events, {hb} heartbeats, outage {:?}, {retries} insert retries", outage());
}
