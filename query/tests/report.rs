//! What `kevents report` reads, against the real ClickHouse: event versions,
//! an incident and pattern episodes are loaded through the sink's row types
//! (as the sink loads them), and the report's questions must fold each event's
//! versions into one (occurrences summed, first/last seen widened, the newest
//! version's incident and metadata), find one incident's members through any
//! of their versions, and give pattern episodes with their earlier starts.

use kevents_query::{ReportFilter, Store};
use schemas::clickhouse::RenderOptions;
use schemas::metadata::Metadata;
use schemas::records::{Incident, Pattern, ProcessedEvent, RootCause, SourcePos, Status, WatchKind};
use schemas::{ClusterId, NormalizedEvent, ObjectRef, Severity};
use sink::rows::{EventRow, IncidentRow, PatternRow};
use std::sync::Arc;
use testkit::services::Services;

const MIN_US: i64 = 60_000_000;

fn cluster() -> ClusterId {
    ClusterId { name: "prod".into(), uid: "prod-uid".into() }
}

/// One version of an event: `count` so far, seen last at `t_us`, in `incident`.
#[allow(clippy::too_many_arguments)]
fn version(uid: &str, kind: &str, name: &str, reason: &str, count: i64, occurrences: i64, first_us: i64, t_us: i64, incident: &str, offset: i64) -> ProcessedEvent {
    ProcessedEvent {
        source: SourcePos { partition: 0, offset, seq: 0 },
        id: format!("{uid}-{offset}"),
        cluster: cluster(),
        watch_kind: if offset == 0 { WatchKind::Added } else { WatchKind::Modified },
        observed_us: t_us,
        leader_epoch: 1,
        event: Box::new(NormalizedEvent {
            uid: uid.into(),
            namespace: "shop".into(),
            name: format!("{name}.{offset:x}").into(),
            resource_version: (100 + offset).to_string().into(),
            event_type: "Warning".into(),
            reason: reason.into(),
            note: format!("{reason} on {name} (version {offset})").into(),
            regarding: ObjectRef { kind: kind.into(), namespace: if kind == "Node" { "".into() } else { "shop".into() }, name: name.into(), ..Default::default() },
            reporting_controller: "kubelet".into(),
            count,
            first_seen_us: first_us,
            last_seen_us: t_us,
            created_us: first_us,
            ..Default::default()
        }),
        category: Arc::from("container-crash"),
        severity: Severity::Error,
        rule: Arc::from("test"),
        correlation_id: incident.into(),
        occurrences,
        metadata: if kind == "Pod" {
            Metadata::from_sorted([("container", "web"), ("node", "n1"), ("owner_kind", "Deployment"), ("owner_name", "web"), ("signal", "SIGKILL")])
        } else {
            Metadata::default()
        },
        labels: Default::default(),
    }
}

#[tokio::test]
async fn events_fold_per_event_and_one_incident_finds_its_members() {
    let db = Services::get().fresh_database("report_read").await;
    let server = clickhouse::Client::default().with_url(Services::get().clickhouse_url());
    sink::migrate::apply(&server, &RenderOptions::single(&db.name)).await.unwrap();
    let t0 = (kevents_query::now_ms() - 3_600_000) * 1000;
    let pod = "web-6f9c8d7b5-x2kqp";
    // The node's event is the root; the pod's BackOff first stood alone (its own id),
    // then joined the incident; a third event stays alone.
    let versions = vec![
        version("node-ev", "Node", "n1", "NodeNotReady", 1, 1, t0, t0, "inc-1", 0),
        version("pod-ev", "Pod", pod, "BackOff", 1, 1, t0 + MIN_US, t0 + MIN_US, "pod-ev", 1),
        version("pod-ev", "Pod", pod, "BackOff", 5, 4, t0 + MIN_US, t0 + 3 * MIN_US, "inc-1", 2),
        version("pod-ev", "Pod", pod, "BackOff", 9, 4, t0 + MIN_US, t0 + 6 * MIN_US, "inc-1", 3),
        version("other", "Pod", "db-0", "Unhealthy", 2, 2, t0 + 2 * MIN_US, t0 + 4 * MIN_US, "other", 4),
    ];
    let mut ins = db.client.insert::<EventRow>("events").await.unwrap();
    for v in &versions {
        ins.write(&EventRow::new(v.clone(), 0)).await.unwrap();
    }
    ins.end().await.unwrap();
    let incident = Incident {
        source: SourcePos { partition: 0, offset: 3, seq: 1 },
        id: "inc-1".into(),
        version: 2,
        cluster: cluster(),
        status: Status::Open,
        severity: Severity::Critical,
        root_cause: RootCause { event_id: "node-ev-0".into(), event_uid: "node-ev".into(), reason: "NodeNotReady".into(), ..Default::default() },
        rule: "node-not-ready".into(),
        event_count: 2,
        occurrences: 10,
        first_seen_us: t0,
        last_seen_us: t0 + 6 * MIN_US,
        summary: "NodeNotReady on Node n1 caused 9 BackOff".into(),
        ..Default::default()
    };
    let mut ins = db.client.insert::<IncidentRow>("incidents").await.unwrap();
    ins.write(&IncidentRow::new(incident, 0)).await.unwrap();
    ins.end().await.unwrap();
    let pattern = Pattern {
        source: SourcePos { partition: 0, offset: 3, seq: 2 },
        id: "pat-1".into(),
        version: 1,
        cluster: cluster(),
        clusters: vec!["prod".into()],
        key: "BackOff|Pod|shop|Back-off <*>".into(),
        reason: "BackOff".into(),
        kind: "Pod".into(),
        namespace: "shop".into(),
        template: "Back-off <*>".into(),
        count: 9,
        first_seen_us: t0 + MIN_US,
        last_seen_us: t0 + 6 * MIN_US,
        previous_episodes: vec![t0 - 86_400_000_000, t0 - 2 * 86_400_000_000],
        ..Default::default()
    };
    let mut ins = db.client.insert::<PatternRow>("patterns").await.unwrap();
    ins.write(&PatternRow::new(pattern, 0)).await.unwrap();
    ins.end().await.unwrap();

    let store = Store::new(server, &db.name);
    let window = ReportFilter { from_ms: Some(t0 / 1000 - 60_000), limit: 100, ..Default::default() };
    let events = store.report_events(&window).await.unwrap();
    assert_eq!(events.iter().map(|e| e.event_uid.as_str()).collect::<Vec<_>>(), ["node-ev", "pod-ev", "other"], "one row per event, earliest first");
    let p = &events[1];
    assert_eq!((p.occurrences, p.first_ms, p.last_ms), (9, (t0 + MIN_US) / 1000, (t0 + 6 * MIN_US) / 1000));
    assert_eq!(p.correlation_id, "inc-1", "the newest version's incident");
    assert_eq!(p.message, format!("BackOff on {pod} (version 3)"));
    assert_eq!((p.kind.as_str(), p.name.as_str(), p.severity.as_str()), ("Pod", pod, "error"));
    let meta: Vec<(&str, &str)> = p.meta_keys.iter().map(String::as_str).zip(p.meta_values.iter().map(String::as_str)).collect();
    for kv in [("node", "n1"), ("owner_kind", "Deployment"), ("owner_name", "web"), ("container", "web"), ("signal", "SIGKILL")] {
        assert!(meta.contains(&kv), "{kv:?} in {meta:?}");
    }
    assert!(!meta.iter().any(|(k, _)| *k == "exit_code" || *k == "image"), "empty typed columns are left out: {meta:?}");

    // One incident: its members through every version, even the one that stood alone.
    let one = ReportFilter { incident: Some("inc-1".into()), limit: 100, ..Default::default() };
    let members = store.report_events(&one).await.unwrap();
    assert_eq!(members.iter().map(|e| e.event_uid.as_str()).collect::<Vec<_>>(), ["node-ev", "pod-ev"]);
    assert_eq!(members[1].occurrences, 9, "all versions counted, not only those naming the incident");
    let incs = store.report_incidents(&one).await.unwrap();
    assert_eq!(incs.len(), 1);
    assert_eq!((incs[0].root_event_uid.as_str(), incs[0].severity.as_str(), incs[0].event_count), ("node-ev", "critical", 2));
    assert_eq!(store.report_incidents(&window).await.unwrap().len(), 1);
    let later = ReportFilter { from_ms: Some((t0 + 10 * MIN_US) / 1000), limit: 100, ..Default::default() };
    assert!(store.report_incidents(&later).await.unwrap().is_empty(), "not active after its last event");
    assert!(store.report_events(&later).await.unwrap().is_empty());

    let pats = store.report_patterns(&window).await.unwrap();
    assert_eq!(pats.len(), 1);
    assert_eq!(pats[0].previous_ms, vec![t0 / 1000 - 86_400_000, t0 / 1000 - 2 * 86_400_000]);
    assert_eq!(pats[0].count, 9);
}
