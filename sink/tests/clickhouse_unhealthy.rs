//! `/healthz` and a ClickHouse that stays down: the sink retries (retryable errors),
//! stays live for `clickhouse.unhealthy_after_secs`, then fails `/healthz` naming the
//! `clickhouse` probe, and passes again once ClickHouse is back and an INSERT
//! succeeded; every record is then stored exactly once.

extern crate kevents_sink as sink;

mod common;

use common::*;
use std::time::{Duration, Instant};
use testkit::services::{OwnedClickHouse, Services};

const UNHEALTHY_AFTER: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_after_the_configured_time_of_failing_inserts_and_recovers() {
    let s = Services::get();
    let mut ch = tokio::task::spawn_blocking(|| OwnedClickHouse::spawn().expect("private ClickHouse")).await.unwrap();
    let topics = s.create_topics("sink-unhealthy", TOPICS).await;
    let mut cfg = config(&s.kafka_bootstrap(), &ch.url(), "kev_unhealthy", |t| topics.name(t).to_string());
    cfg.clickhouse.unhealthy_after_secs = UNHEALTHY_AFTER.as_secs();
    cfg.clickhouse.insert_timeout_secs = 2;
    let client = ch.client().with_database("kev_unhealthy");
    let producer = producer(&s.kafka_bootstrap());
    let base = now_us();
    let all = events(3000, base);
    let occ: i64 = all.iter().map(|(_, e)| e.occurrences).sum();
    let (first, second) = all.split_at(3000);

    let sink = RunningSink::start(cfg);
    produce(&producer, topics.name("processed"), encode(first)).await;
    wait_until(Duration::from_secs(60), "first wave loaded", || async {
        try_scalar(&client, "SELECT toInt64(count()) FROM events").await == Some(first.len() as i64)
    })
    .await;
    assert_eq!(sink.get("/healthz").await.0, 200);

    // ClickHouse goes away; records keep coming, so the sink has inserts to retry.
    // From the moment it starts going down: failures may begin before stop() returns.
    let down = Instant::now();
    tokio::task::block_in_place(|| ch.stop());
    let stopped_in = down.elapsed();
    produce(&producer, topics.name("processed"), encode(second)).await;
    let mut last_ok = Duration::ZERO;
    let unhealthy_body = loop {
        let (code, body) = sink.get("/healthz").await;
        if code == 503 {
            break body;
        }
        assert_eq!(code, 200, "{body}");
        last_ok = down.elapsed();
        assert!(down.elapsed() < UNHEALTHY_AFTER + Duration::from_secs(30), "/healthz never failed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let turned = down.elapsed();
    eprintln!("healthz: ClickHouse stopped in {stopped_in:?}; 200 until {last_ok:?}, 503 at {turned:?} (limit {UNHEALTHY_AFTER:?})");
    // The probe is touched every 200 ms while nothing fails, so it may be up to that
    // much older than the first failure.
    assert!(turned + Duration::from_millis(250) >= UNHEALTHY_AFTER, "not before the configured time: {turned:?}");
    assert!(unhealthy_body.contains("clickhouse: STALLED"), "{unhealthy_body}");
    assert!(unhealthy_body.contains("consume: ok"), "the loop itself is alive: {unhealthy_body}");
    assert!(sink.metric("kevents_sink_insert_retries_total{table=\"events\"}").await >= 1.0);

    // Back: healthy again after the next successful INSERT, and nothing lost or doubled.
    tokio::task::block_in_place(|| ch.start()).expect("ClickHouse starts again");
    wait_until(Duration::from_secs(60), "/healthz passes again", || async { sink.get("/healthz").await.0 == 200 }).await;
    wait_until(Duration::from_secs(60), "second wave loaded", || async {
        try_scalar(&client, "SELECT toInt64(count()) FROM events").await == Some(all.len() as i64)
    })
    .await;
    sink.stop().await;
    event_counts(&client).await.assert_exact(all.len() as i64, occ);
}
