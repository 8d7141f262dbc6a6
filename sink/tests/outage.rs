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

fn outage() -> Duration {
    let secs = std::env::var("KEVENTS_SINK_OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    Duration::from_secs(secs)
}

/// Events per second the flow produces.
const RATE: i64 = 5_000;

/// Produce `RATE` events per second (and a heartbeat every 100 events) until
/// `stop`, paced by the clock: each round sends what is due by now, so waiting
/// for acknowledgements makes the next batch bigger, not the rate lower.
/// Returns (events, occurrences, heartbeats) produced.
async fn flow(bootstrap: String, processed: String, heartbeats: String, stop: Arc<AtomicBool>) -> (i64, i64, i64) {
    let producer = producer(&bootstrap);
    let base = now_us();
    let (mut n, mut occ, mut hb) = (0i64, 0i64, 0i64);
    let mut raw_offset = 0i64;
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let due = start.elapsed().as_millis() as i64 * RATE / 1000;
        let mut evs = Vec::with_capacity(((due - n).max(0) + 2) as usize);
        let mut hbs = Vec::new();
        while n + (evs.len() as i64) < due {
            let rp = (raw_offset % 3) as i32;
            for seq in 0..2 {
                let e = event(rp, raw_offset, seq, base);
                occ += e.occurrences;
                evs.push((rp, e));
            }
            if raw_offset % 50 == 0 {
                let hp = (raw_offset % 2) as i32;
                hbs.push((hp, heartbeat(hp, raw_offset, base)));
                hb += 1;
            }
            raw_offset += 1;
        }
        n += evs.len() as i64;
        if !hbs.is_empty() {
            produce(&producer, &heartbeats, encode(&hbs)).await;
        }
        produce(&producer, &processed, encode(&evs)).await;
    }
    eprintln!("flow: {n} events in {:.1} s = {:.0} events/s", start.elapsed().as_secs_f64(), n as f64 / start.elapsed().as_secs_f64());
    (n, occ, hb)
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
