//! The sink on a real ClickHouse cluster — two shards of chdb nodes behind `Distributed`
//! tables, with a ZooKeeper (`OwnedClickHouseCluster`; what chdb can and cannot do as a
//! cluster node, and why this is `cluster_replication: distributed`:
//! docs/clickhouse-cluster.md) — while one shard is killed with SIGKILL mid-load and
//! brought back.
//!
//! Afterwards, through the `Distributed` tables: every produced event exactly once
//! (rows = distinct ids = produced, rollups too); each shard holds a share; three
//! questions (events by category, top reasons per namespace, one pod's timeline) answer
//! exactly as on a single node the same records were loaded into by a second sink; and
//! the rollups agree with the raw table row by row. The counts are printed.

extern crate kevents_sink as sink;

mod common;

use common::*;
use sink::config::ClusterReplication;
use std::time::Duration;
use testkit::services::{OwnedClickHouseCluster, Services};

/// Raw inputs per half; two events each.
const INPUTS: i64 = 15_000;
const DATABASE: &str = "kev_cluster";

type ByCategory = Vec<(String, u64, i64)>;
type TopReasons = Vec<(String, String, u64)>;
type Timeline = Vec<(String, String, String, i64)>;

/// The same three questions on any database: events and occurrences by category, the
/// top 3 reasons of each namespace, and one pod's timeline.
async fn answers(c: &clickhouse::Client) -> (ByCategory, TopReasons, Timeline) {
    let by_category = c
        .query("SELECT toString(category), count(), sum(occurrences) FROM events GROUP BY category ORDER BY category")
        .fetch_all()
        .await
        .unwrap();
    let top_reasons = c
        .query(
            "SELECT toString(namespace) AS ns, toString(reason) AS r, count() AS n FROM events \
             GROUP BY ns, r ORDER BY ns, n DESC, r LIMIT 3 BY ns",
        )
        .fetch_all()
        .await
        .unwrap();
    let timeline = c
        .query(
            "SELECT toString(event_time), id, toString(reason), occurrences FROM events \
             WHERE cluster = 'c1' AND namespace = 'ns-2' AND name = 'pod-7' ORDER BY event_time, id",
        )
        .fetch_all()
        .await
        .unwrap();
    (by_category, top_reasons, timeline)
}

/// Rollup rows minus raw rows regrouped the same way: empty when they agree.
async fn rollup_disagreements(c: &clickhouse::Client, rollup: &str, bucket: &str) -> i64 {
    let sql = format!(
        "SELECT toInt64(count()) FROM ( \
           SELECT t, cluster, namespace, category, severity, reason, sum(e) AS e, sum(o) AS o FROM ( \
             SELECT {bucket}(event_time) AS t, cluster, namespace, category, severity, reason, \
                    toInt64(count()) AS e, sum(occurrences) AS o FROM events \
             GROUP BY t, cluster, namespace, category, severity, reason \
             UNION ALL \
             SELECT {rollup_t} AS t, cluster, namespace, category, severity, reason, \
                    -toInt64(sum(events)) AS e, -sum(occurrences) AS o FROM {rollup} \
             GROUP BY t, cluster, namespace, category, severity, reason) \
           GROUP BY t, cluster, namespace, category, severity, reason HAVING e != 0 OR o != 0)",
        rollup_t = if rollup.ends_with("minute") { "minute" } else { "hour" },
    );
    scalar(c, &sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_killed_mid_load_loses_and_doubles_nothing() {
    let s = Services::get();
    let mut cluster = tokio::task::spawn_blocking(|| OwnedClickHouseCluster::spawn("kevents", 2, 1).expect("cluster"))
        .await
        .unwrap();
    let topics = s.create_topics("sink-chcluster", TOPICS).await;
    let urls = cluster.urls();

    // The cluster sink writes through node 0; node 1 (shard 2) is the one killed.
    let mut cfg = config(&s.kafka_bootstrap(), &urls[0], DATABASE, |t| topics.name(t).to_string());
    cfg.clickhouse.cluster = Some(cluster.name().to_string());
    cfg.clickhouse.cluster_replication = ClusterReplication::Distributed;
    cfg.clickhouse.cluster_nodes = urls.clone();
    cfg.batch.max_rows = 2_000;
    let dist = cluster.client(0).with_database(DATABASE);
    let shard_client = |i: usize| cluster.client(i).with_database(DATABASE);
    let (shard1, shard2) = (shard_client(0), shard_client(1));

    // The single node: the shared ClickHouse, its own database, its own sink.
    let single_db = s.fresh_database("kev_single").await;
    let single_cfg = config(&s.kafka_bootstrap(), &s.clickhouse_url(), &single_db.name, |t| topics.name(t).to_string());

    let producer = producer(&s.kafka_bootstrap());
    let base = now_us();
    let all = events(2 * INPUTS, base);
    let occ: i64 = all.iter().map(|(_, e)| e.occurrences).sum();
    let n = all.len() as i64;
    let (first, second) = all.split_at(all.len() / 2);
    produce(&producer, topics.name("processed"), encode(first)).await;

    let sink = RunningSink::start(cfg.clone());
    let single = RunningSink::start(single_cfg);
    wait_until(Duration::from_secs(120), "the cluster sink loading", || async {
        try_scalar(&dist, "SELECT toInt64(count()) FROM events").await.unwrap_or(0) > 0
    })
    .await;

    // kill -9 shard 2 mid-load; the second half arrives while it is down.
    tokio::task::block_in_place(|| cluster.kill9(1));
    let at_kill = try_scalar(&shard1, "SELECT toInt64(count()) FROM events_local").await.unwrap_or(0);
    produce(&producer, topics.name("processed"), encode(second)).await;
    wait_until(Duration::from_secs(120), "inserts failing on the dead shard", || async {
        sink.metric("kevents_sink_insert_retries_total{table=\"events\"}").await >= 1.0
    })
    .await;
    let restarted_in = tokio::task::block_in_place(|| cluster.start(1)).expect("shard 2 starts again");

    wait_until(Duration::from_secs(240), "every event through the Distributed table", || async {
        try_scalar(&dist, "SELECT toInt64(count()) FROM events").await == Some(n)
    })
    .await;
    let single_client = single_db.client.clone();
    wait_until(Duration::from_secs(240), "every event on the single node", || async {
        try_scalar(&single_client, "SELECT toInt64(count()) FROM events").await == Some(n)
    })
    .await;
    // Let a doubled batch (if any) land before checking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let retries = sink.metric("kevents_sink_insert_retries_total{table=\"events\"}").await;
    let rejections = sink.metric("kevents_sink_insert_rejections_total{table=\"events\"}").await;
    sink.stop().await;
    single.stop().await;

    // Exactly once, through the Distributed tables, in the raw table and the rollups.
    let counts = event_counts(&dist).await;
    counts.assert_exact(n, occ);
    assert_eq!(rejections, 0.0, "nothing sent to the dead-letter topic");
    let (on1, on2) = (
        scalar(&shard1, "SELECT toInt64(count()) FROM events_local").await,
        scalar(&shard2, "SELECT toInt64(count()) FROM events_local").await,
    );
    assert_eq!(on1 + on2, n, "the shards' rows add up");
    assert!(on1 > 0 && on2 > 0, "both shards hold rows ({on1}, {on2})");

    // The same answers as the single node.
    let (on_cluster, on_single) = (answers(&dist).await, answers(&single_db.client).await);
    assert_eq!(on_cluster.0, on_single.0, "events by category");
    assert_eq!(on_cluster.1, on_single.1, "top reasons per namespace");
    assert_eq!(on_cluster.2, on_single.2, "one pod's timeline");
    assert!(!on_cluster.2.is_empty(), "the pod has a timeline");

    // The rollups agree with the raw table, group by group.
    assert_eq!(rollup_disagreements(&dist, "events_per_minute", "toStartOfMinute").await, 0);
    assert_eq!(rollup_disagreements(&dist, "events_per_hour", "toStartOfHour").await, 0);

    eprintln!(
        "clickhouse cluster (2 shards): produced {n} events ({occ} occurrences); through Distributed: \
         rows {}, distinct ids {}, per-minute {}, per-hour {}; shard 1 {on1} rows, shard 2 {on2} rows; \
         shard 1 had {at_kill} rows at the kill; shard 2 back in {restarted_in:?}; {retries} insert retries, \
         {rejections} rejections",
        counts.rows, counts.distinct_ids, counts.minute_events, counts.hour_events,
    );
    eprintln!(
        "same answers as the single node: by category {:?}; top reasons {} rows; pod-7 timeline {} events",
        on_cluster.0,
        on_cluster.1.len(),
        on_cluster.2.len()
    );
}
