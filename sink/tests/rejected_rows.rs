//! Rows ClickHouse refuses, against the real server: a CONSTRAINT added to the test
//! database's `events` table makes a few rows fail *on the server* (they pass the
//! client's serialization and schema check). The sink bisects the batch, sends those
//! rows to the dead-letter topic with the server's message and their original bytes,
//! loads every other row exactly once (raw table and rollups), and keeps loading what
//! comes after; restarts and re-reads add nothing, neither rows nor dead letters.

extern crate kevents_sink as sink;

mod common;

use common::*;
use schemas::avro::Codec;
use std::time::Duration;
use testkit::services::Services;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_clickhouse_rejects_go_to_the_dead_letter_topic_and_the_rest_load_once() {
    let s = Services::get();
    let topics = s.create_topics("sink-reject", TOPICS).await;
    let db = s.fresh_database("sink_reject").await;
    let c = &db.client;
    // The schema first, then the rule the poison breaks (the sink's own migrations
    // at start leave it in place).
    let server = clickhouse::Client::default().with_url(s.clickhouse_url());
    sink::migrate::apply(&server, &schemas::clickhouse::RenderOptions::single(&db.name)).await.unwrap();
    c.query("ALTER TABLE events ADD CONSTRAINT no_poison CHECK position(message, 'POISON') = 0")
        .execute()
        .await
        .unwrap();

    let base = now_us();
    let mut evs = events(1500, base); // 3000 records on 3 partitions
    // Poison in the middle of each partition's stream (not the last record of its
    // raw partition, so a re-read finds it below the high-water mark).
    let poison_at = [301usize, 1102, 2203];
    for &i in &poison_at {
        evs[i].1.event.note = format!("POISON {i}").into();
    }
    let payloads = encode(&evs);
    let good: Vec<_> = evs.iter().enumerate().filter(|(i, _)| !poison_at.contains(i)).map(|(_, e)| e).collect();
    let (n, occ) = (good.len() as i64, good.iter().map(|(_, e)| e.occurrences).sum::<i64>());
    let producer = producer(&s.kafka_bootstrap());
    produce(&producer, topics.name("processed"), payloads.clone()).await;

    let cfg = config(&s.kafka_bootstrap(), &s.clickhouse_url(), &db.name, |t| topics.name(t).to_string());
    let sink1 = RunningSink::start(cfg.clone());
    wait_until(WAIT, "every good row loaded", || async {
        try_scalar(c, "SELECT toInt64(count()) FROM events").await == Some(n)
    })
    .await;
    wait_until(WAIT, "three dead letters", || async {
        sink1.metric(&format!("kevents_sink_dead_lettered_total{{topic=\"{}\"}}", topics.name("processed"))).await as i64 == 3
    })
    .await;
    assert!(sink1.metric("kevents_sink_insert_rejections_total{table=\"events\"}").await >= 1.0);
    assert_eq!(sink1.get("/healthz").await.0, 200, "a rejected row is not a failure of the sink");

    // The stream keeps flowing behind the poison.
    let more: Vec<_> = (1500..1800).flat_map(|o| (0..2).map(move |seq| ((o % 3) as i32, event((o % 3) as i32, o, seq, base)))).collect();
    let more_occ: i64 = more.iter().map(|(_, e)| e.occurrences).sum();
    produce(&producer, topics.name("processed"), encode(&more)).await;
    let (n, occ) = (n + more.len() as i64, occ + more_occ);
    wait_until(WAIT, "the next records loaded", || async {
        try_scalar(c, "SELECT toInt64(count()) FROM events").await == Some(n)
    })
    .await;
    sink1.stop().await;
    event_counts(c).await.assert_exact(n, occ);

    // The same group again (nothing left to read), then a new group re-reading the
    // whole topic: the good rows are replays, the poison rows are below the marks.
    let sink2 = RunningSink::start(cfg.clone());
    wait_until(WAIT, "partitions assigned", || async { sink2.get("/readyz").await.0 == 200 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink2.stop().await;
    let mut cfg3 = cfg.clone();
    cfg3.group_id = format!("{}-again", cfg.group_id);
    let sink3 = RunningSink::start(cfg3);
    let total = (payloads.len() + more.len()) as i64;
    wait_until(WAIT, "everything re-read and skipped", || async {
        sink3.metric("kevents_sink_replays_skipped_total{table=\"events\"}").await as i64 == total
    })
    .await;
    sink3.stop().await;
    event_counts(c).await.assert_exact(n, occ);

    let dlq = read_all(&s.kafka_bootstrap(), topics.name("dlq"), Duration::from_secs(5)).await;
    assert_eq!(dlq.len(), 3, "each rejected row dead-lettered once: {:?}", dlq.iter().map(|d| &d.0).collect::<Vec<_>>());
    let codec = Codec::default();
    let mut seen = Vec::new();
    for (headers, value) in &dlq {
        let h = |k: &str| headers.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
        let reason = h(sink::dlq::HEADER_REASON);
        assert!(reason.contains("Code: 469") && reason.contains("no_poison"), "the server's message: {reason}");
        assert_eq!(h(sink::dlq::HEADER_TOPIC), topics.name("processed"));
        let e: schemas::records::ProcessedEvent = codec.decode(value).expect("original bytes");
        assert!(e.event.note.starts_with("POISON"), "{}", e.event.note);
        let i: usize = e.event.note["POISON ".len()..].parse().unwrap();
        assert_eq!(value, &payloads[i].1, "original bytes kept");
        assert_eq!(h(sink::dlq::HEADER_PARTITION), payloads[i].0.to_string());
        seen.push(i);
    }
    seen.sort();
    assert_eq!(seen, poison_at);
    assert_eq!(scalar(c, "SELECT toInt64(countIf(position(message, 'POISON') > 0)) FROM events").await, 0);
}
