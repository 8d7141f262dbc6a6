//! Proof that the real local services behave as kevents relies on: Avro records through
//! the broker with an idempotent producer and a consumer group, committed offsets
//! surviving a consumer restart and a broker `kill -9`, SCRAM over TLS, RowBinary
//! inserts into ClickHouse, and tables surviving a ClickHouse stop/start and crash.
//!
//! Runs against `scripts/services` (started on demand by `Services::get`) and private
//! `OwnedBroker` / `OwnedKafkaCluster` / `OwnedClickHouse` processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use schemas::avro::Codec;
use schemas::model::ClusterId;
use schemas::records::{CollectorMeta, Heartbeat, RawRecord, WatchEvent, WatchKind};
use serde::{Deserialize, Serialize};

use kevents_testkit::services::{OwnedBroker, OwnedClickHouse, OwnedKafkaCluster, Services};

const RECV_TIMEOUT: Duration = Duration::from_secs(60);

// `i % n == 0` rather than `is_multiple_of`: the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn record(i: usize) -> RawRecord {
    let mut rec = RawRecord {
        cluster: ClusterId {
            name: format!("cluster-{}", i % 7).into(),
            uid: format!("uid-{}", i % 7).into(),
        },
        collector: CollectorMeta {
            instance: "collector-0".into(),
            leader_epoch: 3,
        },
        observed_us: 1_700_000_000_000_000 + i as i64,
        resource_version: (1000 + i).to_string(),
        ..Default::default()
    };
    if i % 10 == 0 {
        rec.heartbeat = Some(Heartbeat {
            resource_version: rec.resource_version.clone(),
            last_bookmark_us: 42,
            published_since_last: i as i64,
            ..Default::default()
        });
    } else {
        let mut event = WatchEvent {
            kind: if i % 3 == 0 {
                WatchKind::Modified
            } else {
                WatchKind::Added
            },
            ..Default::default()
        };
        event.event.uid = format!("event-{i}").into();
        event.event.namespace = "default".into();
        event.event.reason = "BackOff".into();
        event.event.note = format!("Back-off restarting failed container app-{i}").into();
        event.event.count = (i % 5) as i64 + 1;
        rec.event = Some(event);
    }
    rec
}

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

fn consumer(bootstrap: &str, group: &str, auto_commit: bool) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set(
            "enable.auto.commit",
            if auto_commit { "true" } else { "false" },
        )
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer")
}

/// Produce `payloads` (partition chosen by the caller), all in flight at once, and
/// assert every delivery succeeded. Returns (partition, offset) per message.
async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    payloads: &[(i32, String, Vec<u8>)],
) -> Vec<(i32, i64)> {
    let sends = payloads.iter().map(|(partition, key, value)| {
        producer.send(
            FutureRecord::to(topic)
                .partition(*partition)
                .key(key)
                .payload(value),
            Duration::from_secs(30),
        )
    });
    join_all(sends)
        .await
        .into_iter()
        .map(|r| {
            let d = r.unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
            (d.partition, d.offset)
        })
        .collect()
}

/// Receive exactly `n` messages (panics on timeout), then check nothing more arrives
/// for `quiet`. Returns (partition, offset, payload), committing nothing.
async fn receive(consumer: &StreamConsumer, n: usize, quiet: Duration) -> Vec<(i32, i64, Vec<u8>)> {
    let mut out = Vec::with_capacity(n);
    let deadline = Instant::now() + RECV_TIMEOUT;
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "received only {} of {n} messages in {RECV_TIMEOUT:?}",
                    out.len()
                )
            })
            .expect("consumer error");
        out.push((
            msg.partition(),
            msg.offset(),
            msg.payload().unwrap_or_default().to_vec(),
        ));
    }
    if !quiet.is_zero() {
        if let Ok(extra) = tokio::time::timeout(quiet, consumer.recv()).await {
            let m = extra.expect("consumer error");
            panic!(
                "unexpected extra message at partition {} offset {}",
                m.partition(),
                m.offset()
            );
        }
    }
    out
}

#[test]
fn services_up_again_reuses_the_running_services() {
    let services = Services::get();
    let script = kevents_testkit::services::workspace_root().join("scripts/services");
    for args in [&["up"][..], &["status"][..]] {
        let out = std::process::Command::new(&script)
            .args(args)
            .env("KEVENTS_SERVICES_ENV", services.env_file())
            .output()
            .expect("run scripts/services");
        assert!(out.status.success(), "scripts/services {args:?}: {out:?}");
    }
    let again = Services::read(services.env_file()).expect("env file");
    assert_eq!(again.kafka_bootstrap(), services.kafka_bootstrap());
    assert_eq!(again.clickhouse_url(), services.clickhouse_url());
    assert_eq!(again.kafka_pid(), services.kafka_pid());
    assert_eq!(again.clickhouse_pid(), services.clickhouse_pid());
    assert!(again.healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_records_round_trip_through_three_partitions() {
    let services = Services::get();
    let topics = services.create_topics("svc-roundtrip", &[("raw", 3)]).await;
    let topic = topics.name("raw");
    let codec = Codec::default();

    let records: Vec<RawRecord> = (0..1000).map(record).collect();
    let payloads: Vec<(i32, String, Vec<u8>)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                (i % 3) as i32,
                r.key().to_owned(),
                codec.encode(r).expect("encode"),
            )
        })
        .collect();
    let started = Instant::now();
    let deliveries = produce_all(&producer(&services.kafka_bootstrap()), topic, &payloads).await;
    eprintln!("produced 1000 records in {:?}", started.elapsed());
    let mut per_partition = BTreeMap::new();
    for (p, _) in &deliveries {
        *per_partition.entry(*p).or_insert(0) += 1;
    }
    assert_eq!(
        per_partition,
        BTreeMap::from([(0, 334), (1, 333), (2, 333)])
    );

    let consumer = consumer(&services.kafka_bootstrap(), &format!("{topic}-group"), true);
    consumer.subscribe(&[topic]).expect("subscribe");
    let received = receive(&consumer, 1000, Duration::from_secs(2)).await;
    let mut decoded: Vec<RawRecord> = received
        .iter()
        .map(|(_, _, bytes)| codec.decode::<RawRecord>(bytes).expect("decode"))
        .collect();
    decoded.sort_by_key(|r| r.observed_us);
    assert_eq!(decoded.len(), records.len());
    assert!(
        decoded == records,
        "decoded records differ from the produced ones"
    );
    // Offsets are dense per partition: no gaps, no duplicates.
    for p in 0..3 {
        let mut offsets: Vec<i64> = received.iter().filter(|m| m.0 == p).map(|m| m.1).collect();
        offsets.sort();
        let expected: Vec<i64> = (0..per_partition[&p] as i64).collect();
        assert_eq!(offsets, expected, "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_commit_survives_a_consumer_restart() {
    let services = Services::get();
    let topics = services.create_topics("svc-commit", &[("in", 1)]).await;
    let topic = topics.name("in");
    let payloads: Vec<(i32, String, Vec<u8>)> = (0..10)
        .map(|i| (0, "k".to_string(), format!("m{i}").into_bytes()))
        .collect();
    produce_all(&producer(&services.kafka_bootstrap()), topic, &payloads).await;
    let group = format!("{topic}-group");

    {
        let first = consumer(&services.kafka_bootstrap(), &group, false);
        first.subscribe(&[topic]).unwrap();
        let got = receive(&first, 4, Duration::ZERO).await;
        assert_eq!(
            got.iter().map(|m| m.1).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(4))
            .unwrap();
        first.commit(&tpl, CommitMode::Sync).expect("commit");
        let committed = first.committed(Duration::from_secs(10)).expect("committed");
        assert_eq!(
            committed.find_partition(topic, 0).map(|e| e.offset()),
            Some(Offset::Offset(4))
        );
    }

    let second = consumer(&services.kafka_bootstrap(), &group, false);
    second.subscribe(&[topic]).unwrap();
    let got = receive(&second, 6, Duration::from_secs(1)).await;
    assert_eq!(
        got.iter().map(|m| m.1).collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8, 9]
    );
    assert_eq!(got[0].2, b"m4");
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
struct EventRow {
    id: u64,
    cluster: String,
    reason: String,
    count: u32,
    observed_us: i64,
}

fn event_row(i: u64) -> EventRow {
    EventRow {
        id: i,
        cluster: format!("cluster-{}", i % 5),
        reason: ["BackOff", "Failed", "Unhealthy"][(i % 3) as usize].to_string(),
        count: (i % 17) as u32 + 1,
        observed_us: 1_700_000_000_000_000 + i as i64,
    }
}

const CREATE_EVENTS: &str = "CREATE TABLE events (id UInt64, cluster LowCardinality(String), \
     reason String, count UInt32, observed_us Int64) ENGINE = MergeTree ORDER BY id";

async fn insert_rows(client: &clickhouse::Client, range: std::ops::Range<u64>) {
    let mut insert = client.insert::<EventRow>("events").await.expect("insert");
    for i in range {
        insert.write(&event_row(i)).await.expect("write");
    }
    insert.end().await.expect("end insert");
}

async fn count(client: &clickhouse::Client) -> u64 {
    client
        .query("SELECT count() FROM events")
        .fetch_one::<u64>()
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_rowbinary_insert_and_select() {
    let services = Services::get();
    let db = services.fresh_database("svc_rowbinary").await;
    db.client
        .query(CREATE_EVENTS)
        .execute()
        .await
        .expect("create table");
    let started = Instant::now();
    insert_rows(&db.client, 0..10_000).await;
    eprintln!("inserted 10,000 rows in {:?}", started.elapsed());

    assert_eq!(count(&db.client).await, 10_000);
    let rows = db
        .client
        .query("SELECT ?fields FROM events WHERE id IN (0, 4999, 9999) ORDER BY id")
        .fetch_all::<EventRow>()
        .await
        .expect("select");
    assert_eq!(rows, vec![event_row(0), event_row(4999), event_row(9999)]);
    let per_reason = db
        .client
        .query("SELECT reason, count() FROM events GROUP BY reason ORDER BY reason")
        .fetch_all::<(String, u64)>()
        .await
        .expect("group by");
    assert_eq!(
        per_reason,
        vec![
            ("BackOff".into(), 3334),
            ("Failed".into(), 3333),
            ("Unhealthy".into(), 3333)
        ]
    );
    // The database really is ours and Atomic.
    let engine = db
        .client
        .query("SELECT engine FROM system.databases WHERE name = ?")
        .bind(&db.name)
        .fetch_one::<String>()
        .await
        .expect("engine");
    assert_eq!(engine, "Atomic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_broker_keeps_messages_and_offsets_across_kill9() {
    let started = Instant::now();
    let mut broker = OwnedBroker::spawn().expect("owned broker");
    eprintln!(
        "owned broker up in {:?} on {}",
        started.elapsed(),
        broker.bootstrap()
    );
    let topics = broker.create_topics("svc-kill9", &[("in", 1)]).await;
    let topic = topics.name("in").to_owned();
    let payloads: Vec<(i32, String, Vec<u8>)> = (0..100)
        .map(|i| (0, format!("k{i}"), format!("m{i}").into_bytes()))
        .collect();
    produce_all(&producer(&broker.bootstrap()), &topic, &payloads).await;
    let group = format!("{topic}-group");
    {
        let c = consumer(&broker.bootstrap(), &group, false);
        c.subscribe(&[topic.as_str()]).unwrap();
        receive(&c, 50, Duration::ZERO).await;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(50))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }

    let pid_before = broker.pid();
    broker.kill9();
    assert!(!broker.is_running());
    let restart = broker.start().expect("restart after kill -9");
    eprintln!("owned broker restarted in {restart:?}");
    assert_ne!(broker.pid(), pid_before);

    // The group resumes at its committed offset.
    let c = consumer(&broker.bootstrap(), &group, false);
    c.subscribe(&[topic.as_str()]).unwrap();
    let rest = receive(&c, 50, Duration::from_secs(1)).await;
    assert_eq!(rest.first().map(|m| m.1), Some(50));
    assert_eq!(
        rest.last().map(|m| (m.1, m.2.clone())),
        Some((99, b"m99".to_vec()))
    );
    // And a new group still sees all 100 messages.
    let all = consumer(&broker.bootstrap(), &format!("{group}-fresh"), false);
    all.subscribe(&[topic.as_str()]).unwrap();
    assert_eq!(receive(&all, 100, Duration::from_secs(1)).await.len(), 100);
}

/// Three KRaft nodes: topics with 3 replicas and min.insync 2; a partition leader
/// `kill -9`ed, acks=all writes go on (to the new leader), the node comes back on the
/// same port, catches up, and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_cluster_survives_a_leader_kill9() {
    let started = Instant::now();
    let mut cluster = OwnedKafkaCluster::spawn(3).expect("owned 3-node cluster");
    eprintln!("owned cluster up in {:?} on {}", started.elapsed(), cluster.bootstrap());
    let topics = cluster.create_topics("svc-cluster", &[("in", 3)]).await;
    let topic = topics.name("in").to_owned();
    let md = cluster.metadata(Some(&topic)).unwrap();
    assert_eq!(md.brokers().len(), 3);
    for p in md.topics()[0].partitions() {
        assert_eq!((p.replicas().len(), p.isr().len()), (3, 3), "partition {}", p.id());
    }
    let payloads = |from: usize| -> Vec<(i32, String, Vec<u8>)> {
        (from..from + 300).map(|i| ((i % 3) as i32, format!("k{i}"), format!("m{i}").into_bytes())).collect()
    };
    let p = producer(&cluster.bootstrap());
    produce_all(&p, &topic, &payloads(0)).await;

    let victim = cluster.leader_of(&topic, 0).expect("partition 0 has a leader");
    cluster.kill9(victim);
    assert!(!cluster.is_running(victim));
    // Two of three replicas remain: min.insync is met, writes are acknowledged.
    produce_all(&p, &topic, &payloads(300)).await;
    let new_leader = cluster.leader_of(&topic, 0).expect("a new leader for partition 0");
    assert_ne!(new_leader, victim);
    let restart = cluster.start(victim).expect("restart after kill -9");
    let healed = cluster.wait_fully_replicated(&[topic.as_str()], Duration::from_secs(60)).expect("ISR full again");
    eprintln!("node {victim} killed (partition 0's leader; {new_leader} took over), restarted in {restart:?}, ISR full {healed:?} later");

    let c = consumer(&cluster.bootstrap(), &format!("{topic}-group"), false);
    c.subscribe(&[topic.as_str()]).unwrap();
    let got = receive(&c, 600, Duration::from_secs(1)).await;
    let values: std::collections::BTreeSet<Vec<u8>> = got.iter().map(|m| m.2.clone()).collect();
    assert_eq!((got.len(), values.len()), (600, 600), "every acknowledged record, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_clickhouse_keeps_tables_across_stop_and_crash() {
    let started = Instant::now();
    let mut server = OwnedClickHouse::spawn().expect("owned clickhouse");
    eprintln!(
        "owned clickhouse up in {:?} on {}",
        started.elapsed(),
        server.url()
    );
    let db = server.fresh_database("svc_restart").await;
    db.client
        .query(CREATE_EVENTS)
        .execute()
        .await
        .expect("create table");
    insert_rows(&db.client, 0..1000).await;

    server.stop();
    assert!(!server.is_running());
    let down = db.client.query("SELECT 1").fetch_one::<u8>().await;
    assert!(down.is_err(), "a stopped server must not answer");
    let took = server.start().expect("start after stop");
    eprintln!("owned clickhouse restarted in {took:?}");
    assert_eq!(count(&db.client).await, 1000);

    insert_rows(&db.client, 1000..2000).await;
    server.kill9();
    server.start().expect("start after kill -9");
    assert_eq!(count(&db.client).await, 2000);
    let last = db
        .client
        .query("SELECT ?fields FROM events WHERE id = 1999")
        .fetch_one::<EventRow>()
        .await
        .expect("select");
    assert_eq!(last, event_row(1999));
}
