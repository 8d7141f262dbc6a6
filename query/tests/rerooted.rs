//! A re-rooted incident is one incident to every reader: when a late cause becomes
//! the root, the processor gives the old id a last version, resolved and rooted at
//! the new incident's event (processor/src/correlate/late.rs). `incidents_latest`
//! (migration 0006) leaves that id out, so `kevents incidents`, the report and
//! Grafana list the episode once; the old id's history stays in `incidents`.

use kevents_query::{IncidentFilter, Store};
use schemas::clickhouse::RenderOptions;
use schemas::records::{Incident, RootCause, SourcePos, Status};
use schemas::{ClusterId, Severity};
use sink::rows::IncidentRow;
use testkit::services::Services;

fn version(id: &str, version: i64, status: Status, root_event_id: &str, offset: i64) -> IncidentRow {
    let now_us = kevents_query::now_ms() * 1000;
    IncidentRow::new(
        Incident {
            source: SourcePos { partition: 0, offset, seq: 0 },
            id: id.into(),
            version,
            cluster: ClusterId { name: "prod".into(), uid: "prod-uid".into() },
            status,
            severity: Severity::Error,
            root_cause: RootCause { event_id: root_event_id.into(), reason: "Failed".into(), ..Default::default() },
            rule: "container-start-failure".into(),
            event_count: 2,
            occurrences: 2,
            first_seen_us: now_us - 60_000_000,
            last_seen_us: now_us,
            summary: format!("{id} v{version}"),
            ..Default::default()
        },
        0,
    )
}

#[tokio::test]
async fn a_replaced_incident_id_is_left_out_of_the_latest_view() {
    let db = Services::get().fresh_database("rerooted").await;
    let server = clickhouse::Client::default().with_url(Services::get().clickhouse_url());
    sink::migrate::apply(&server, &RenderOptions::single(&db.name)).await.unwrap();
    let mut ins = db.client.insert::<IncidentRow>("incidents").await.unwrap();
    // The BackOff incident opened first, at its own event; then the Failed arrived
    // late and took it over: the BackOff id's last version is resolved and rooted at
    // the Failed event, whose id the incident now has.
    ins.write(&version("ev-backoff", 1, Status::Open, "ev-backoff", 1)).await.unwrap();
    ins.write(&version("ev-backoff", 2, Status::Resolved, "ev-failed", 2)).await.unwrap();
    ins.write(&version("ev-failed", 1, Status::Open, "ev-failed", 3)).await.unwrap();
    // An incident that resolved on its own stays listed.
    ins.write(&version("ev-other", 1, Status::Open, "ev-other", 4)).await.unwrap();
    ins.write(&version("ev-other", 2, Status::Resolved, "ev-other", 5)).await.unwrap();
    ins.end().await.unwrap();

    let store = Store::new(server, &db.name);
    let mut ids: Vec<String> = store.incidents(&IncidentFilter::default()).await.unwrap().into_iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, ["ev-failed", "ev-other"]);
    let history: u64 = db.client.query("SELECT count() FROM incidents FINAL WHERE id = 'ev-backoff'").fetch_one().await.unwrap();
    assert_eq!(history, 1, "the replaced id keeps its last version in the table");
}
