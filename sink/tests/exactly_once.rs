//! Loading against the real broker and ClickHouse: exactly N rows after
//! re-delivery and processor-style replays (raw table and rollups), the dedup
//! token of a retried batch, and the dead-letter topic.

extern crate kevents_sink as sink;

mod common;

use common::*;
use schemas::avro::Codec;
use sink::insert::{insert_batch, InsertCtx};
use sink::rows::EventRow;
use std::time::Duration;
use testkit::services::Services;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_and_redelivery_add_nothing_to_rows_or_rollups() {
    let s = Services::get();
    let topics = s.create_topics("sink-load", TOPICS).await;
    let db = s.fresh_database("sink_load").await;
    let cfg = config(&s.kafka_bootstrap(), &s.clickhouse_url(), &db.name, |t| topics.name(t).to_string());
    let base = now_us();
    let evs = events(1500, base); // 3000 records
    let n = evs.len() as i64;
    let occ: i64 = evs.iter().map(|(_, e)| e.occurrences).sum();
    let hbs: Vec<_> = (0..30).map(|o| ((o % 2) as i32, heartbeat((o % 2) as i32, o, base))).collect();
    let producer = producer(&s.kafka_bootstrap());
    produce(&producer, topics.name("processed"), encode(&evs)).await;
    produce(&producer, topics.name("heartbeats"), encode(&hbs)).await;

    let sink1 = RunningSink::start(cfg.clone());
    let c = &db.client;
    wait_until(WAIT, "all events and heartbeats loaded", || async {
        try_scalar(c, "SELECT toInt64(count()) FROM events").await == Some(n)
            && try_scalar(c, "SELECT toInt64(count()) FROM cluster_heartbeats").await == Some(30)
    })
    .await;
    wait_until(WAIT, "sink ready", || async { sink1.get("/readyz").await.0 == 200 }).await;
    assert_eq!(sink1.get("/healthz").await.0, 200);
    event_counts(c).await.assert_exact(n, occ);

    // A processor replay: the same records (same ids and positions) again, at new offsets.
    produce(&producer, topics.name("processed"), encode(&evs)).await;
    produce(&producer, topics.name("heartbeats"), encode(&hbs)).await;
    wait_until(WAIT, "the copies were read and skipped", || async {
        sink1.metric("kevents_sink_replays_skipped_total{table=\"events\"}").await as i64 == n
            && sink1.metric("kevents_sink_replays_skipped_total{table=\"cluster_heartbeats\"}").await as i64 == 30
    })
    .await;
    sink1.stop().await;
    event_counts(c).await.assert_exact(n, occ);

    // Re-delivery of everything (a new consumer group reads both copies from the start).
    let mut cfg2 = cfg.clone();
    cfg2.group_id = format!("{}-again", cfg.group_id);
    let sink2 = RunningSink::start(cfg2);
    wait_until(WAIT, "both copies re-read and skipped", || async {
        sink2.metric("kevents_sink_replays_skipped_total{table=\"events\"}").await as i64 == 2 * n
    })
    .await;
    sink2.stop().await;
    event_counts(c).await.assert_exact(n, occ);
    assert_eq!(scalar(c, "SELECT toInt64(count()) FROM cluster_heartbeats").await, 30);
    assert_eq!(scalar(c, "SELECT toInt64(count()) FROM cluster_liveness").await, 2, "one row per cluster");
    assert_eq!(
        scalar(c, "SELECT toInt64(max(src_offset)) FROM events").await,
        1499,
        "positions stored with the rows"
    );
    // The marks say exactly what is stored: per raw partition, the last input's seq 1.
    let marks = scalar(
        c,
        "SELECT toInt64(sum(tupleElement(hw, 1))) FROM (SELECT maxMerge(high_water) AS hw FROM sink_progress \
         WHERE table_name = 'events' GROUP BY kafka_partition, src_partition)",
    )
    .await;
    assert_eq!(marks, 1497 + 1498 + 1499);
}

/// A retried batch (same rows, same token — an attempt whose acknowledgement was
/// lost) is dropped by ClickHouse in the table and in every view-fed table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_with_the_same_token_is_stored_once() {
    let s = Services::get();
    let db = s.fresh_database("sink_token").await;
    let server = clickhouse::Client::default().with_url(s.clickhouse_url());
    let report = sink::migrate::apply(&server, &schemas::clickhouse::RenderOptions::single(&db.name)).await.unwrap();
    assert_eq!(report.applied, schemas::clickhouse::MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
    let base = now_us();
    // Rows over two days: the block is split into two partitions (two parts).
    let mut rows: Vec<EventRow> = events(200, base).into_iter().map(|(p, e)| EventRow::new(e, p)).collect();
    for r in rows.iter_mut().take(50) {
        r.event_time -= 86_400_000;
    }
    let n = rows.len() as i64;
    let occ: i64 = rows.iter().map(|r| r.occurrences).sum();
    let mut reg = prometheus_client::registry::Registry::default();
    let metrics = sink::metrics::Metrics::register(&mut reg);
    let health = runtime::ops::Health::default();
    let stop = runtime::shutdown::CancellationToken::new();
    let mut ctx = InsertCtx {
        client: db.client.clone(),
        metrics,
        health,
        failing: sink::retrying::Failing::detached(),
        max_backoff: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
        stop,
    };
    for _ in 0..3 {
        insert_batch(&mut ctx, "events", &rows, "token-a").await.unwrap();
    }
    event_counts(&db.client).await.assert_exact(n, occ);
    assert_eq!(
        scalar(&db.client, "SELECT toInt64(count()) FROM sink_progress").await,
        3,
        "one progress row per (kafka partition, raw partition) of the first insert only"
    );
    // A different token is a different batch: stored again (the marks, not the
    // token, stop that in the sink).
    insert_batch(&mut ctx, "events", &rows, "token-b").await.unwrap();
    assert_eq!(scalar(&db.client, "SELECT toInt64(count()) FROM events").await, 2 * n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_go_to_the_dead_letter_topic_once() {
    let s = Services::get();
    let topics = s.create_topics("sink-dlq", TOPICS).await;
    let db = s.fresh_database("sink_dlq").await;
    let cfg = config(&s.kafka_bootstrap(), &s.clickhouse_url(), &db.name, |t| topics.name(t).to_string());
    let base = now_us();
    let codec = Codec::default();
    let producer = producer(&s.kafka_bootstrap());
    let topic = topics.name("processed");
    // partition 0: event, garbage, wrong record type, event
    let before = codec.encode(&event(0, 0, 0, base)).unwrap();
    let garbage = b"\x00\x00\x00\x03\xffnot avro at all".to_vec();
    let wrong_type = codec.encode(&heartbeat(0, 1, base)).unwrap();
    let after = codec.encode(&event(0, 3, 0, base)).unwrap();
    produce(&producer, topic, vec![(0, before), (0, garbage.clone()), (0, wrong_type), (0, after)]).await;

    let sink1 = RunningSink::start(cfg.clone());
    wait_until(WAIT, "both good events loaded past the poison", || async {
        try_scalar(&db.client, "SELECT toInt64(count()) FROM events").await == Some(2)
    })
    .await;
    sink1.stop().await;
    // Restart with the same group: the poison is behind the committed offset now.
    let sink2 = RunningSink::start(cfg.clone());
    wait_until(WAIT, "partitions assigned", || async { sink2.get("/readyz").await.0 == 200 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink2.stop().await;

    let dlq = read_all(&s.kafka_bootstrap(), topics.name("dlq"), Duration::from_secs(5)).await;
    assert_eq!(dlq.len(), 2, "each poison record dead-lettered once: {dlq:?}");
    let h = |i: usize, k: &str| dlq[i].0.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(dlq[0].1, garbage, "original bytes kept");
    assert_eq!(h(0, sink::dlq::HEADER_TOPIC), topic);
    assert_eq!(h(0, sink::dlq::HEADER_PARTITION), "0");
    assert_eq!(h(0, sink::dlq::HEADER_OFFSET), "1");
    assert!(h(0, sink::dlq::HEADER_REASON).contains("avro") || h(0, sink::dlq::HEADER_REASON).contains("schema"), "{}", h(0, sink::dlq::HEADER_REASON));
    assert_eq!(h(1, sink::dlq::HEADER_OFFSET), "2");
    assert!(h(1, sink::dlq::HEADER_REASON).contains("expected processed_event"), "{}", h(1, sink::dlq::HEADER_REASON));
    assert_eq!(scalar(&db.client, "SELECT toInt64(count()) FROM events").await, 2);
}
