//! Migrations against the real ClickHouse: idempotent, versions recorded, a newer
//! sink upgrades an older schema, an older sink tolerates a newer one, and the
//! rendered single-node DDL is what runs.

extern crate kevents_sink as sink;

mod common;

use common::scalar;
use schemas::clickhouse::{RenderOptions, MIGRATIONS};
use sink::migrate::{apply, apply_list, check, MigrateError};
use testkit::services::Services;

fn server() -> clickhouse::Client {
    clickhouse::Client::default().with_url(Services::get().clickhouse_url())
}

#[tokio::test]
async fn apply_twice_is_idempotent_and_records_versions() {
    let db = Services::get().fresh_database("sink_mig").await;
    let opts = RenderOptions::single(&db.name);
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    let first = apply(&server(), &opts).await.unwrap();
    assert_eq!(first.applied, all);
    assert!(first.present.is_empty() && first.unknown.is_empty());
    let second = apply(&server(), &opts).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.present, all);
    assert_eq!(
        scalar(&db.client, "SELECT toInt64(count()) FROM kevents_migrations FINAL").await,
        all.len() as i64
    );
    // Every table and view the migrations declare exists.
    for t in [
        "events", "sink_progress", "events_per_minute", "events_per_hour", "incidents", "incidents_latest",
        "patterns", "patterns_latest", "alerts", "alerts_latest", "cluster_heartbeats", "cluster_liveness",
        "events_progress_mv", "events_per_minute_mv", "events_per_hour_mv",
    ] {
        let n = scalar(
            &db.client,
            &format!("SELECT toInt64(count()) FROM system.tables WHERE database = '{}' AND name = '{t}'", db.name),
        )
        .await;
        assert_eq!(n, 1, "{t} missing");
    }
    // A half-applied migration is simply run again: drop its record and re-apply.
    db.client.query("DELETE FROM kevents_migrations WHERE version = 3").execute().await.unwrap();
    let again = apply(&server(), &opts).await.unwrap();
    assert_eq!(again.applied, vec![3]);
    check(&server(), &db.name).await.unwrap();
}

#[tokio::test]
async fn a_newer_sink_upgrades_and_an_older_sink_tolerates_newer_versions() {
    let db = Services::get().fresh_database("sink_mig_versions").await;
    let opts = RenderOptions::single(&db.name);
    // An older sink knew only migration 1.
    let old = apply_list(&server(), &opts, &MIGRATIONS[..1]).await.unwrap();
    assert_eq!(old.applied, vec![1]);
    match check(&server(), &db.name).await {
        Err(MigrateError::Missing { missing, .. }) => assert_eq!(missing, MIGRATIONS[1..].iter().map(|m| m.version).collect::<Vec<_>>()),
        other => panic!("expected missing migrations, got {other:?}"),
    }
    // This sink applies what it misses.
    let upgrade = apply(&server(), &opts).await.unwrap();
    assert_eq!(upgrade.applied, MIGRATIONS[1..].iter().map(|m| m.version).collect::<Vec<_>>());
    assert_eq!(upgrade.present, vec![1]);
    // A newer kevents added version 99: this (older) sink continues and reports it.
    db.client
        .query("INSERT INTO kevents_migrations (version, name) VALUES (99, 'from the future')")
        .execute()
        .await
        .unwrap();
    let report = apply(&server(), &opts).await.unwrap();
    assert!(report.applied.is_empty());
    assert_eq!(report.unknown, vec![99]);
    assert_eq!(check(&server(), &db.name).await.unwrap().unknown, vec![99]);
}

#[test]
fn cluster_rendering_is_replicated_and_distributed_for_every_table() {
    let opts = RenderOptions { database: "kev".into(), cluster: Some("fleet".into()), ttl_days: 14 };
    let stmts: Vec<String> = MIGRATIONS.iter().flat_map(|m| schemas::clickhouse::render(m, &opts).unwrap()).collect();
    for t in ["events", "sink_progress", "events_per_minute", "events_per_hour", "incidents", "patterns", "alerts", "cluster_heartbeats"] {
        let local = stmts
            .iter()
            .find(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS kev.{t}_local ON CLUSTER 'fleet'")))
            .unwrap_or_else(|| panic!("no local table for {t}"));
        assert!(local.contains(&format!("'/clickhouse/tables/{{shard}}/kev/{t}_local', '{{replica}}'")), "{local}");
        assert!(
            stmts.iter().any(|s| s.contains(&format!("kev.{t} ON CLUSTER 'fleet' AS kev.{t}_local ENGINE = Distributed('fleet', 'kev', '{t}_local'"))),
            "no distributed table for {t}"
        );
    }
    for s in &stmts {
        assert!(s.contains("ON CLUSTER 'fleet'"), "every statement runs on the cluster: {s}");
    }
    let events = stmts.iter().find(|s| s.contains("kev.events_local ON CLUSTER")).unwrap();
    assert!(events.contains("INTERVAL 14 DAY"), "{events}");
}
