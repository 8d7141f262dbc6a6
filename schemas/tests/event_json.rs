//! The collector's decoder (`event_json`: JSON straight into `NormalizedEvent`) and
//! the typed path (k8s-openapi objects through `convert`) agree on every real Event
//! object in the repository's fixtures, in both API shapes, and on the edge cases the
//! API server produces (`null` fields, managed fields, series without a count).

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use kevents_schemas::convert::{from_core_v1, from_events_v1};
use kevents_schemas::event_json::{CoreV1Json, EventsV1Json};
use kevents_schemas::NormalizedEvent;
use serde_json::json;

fn both_paths(item: &serde_json::Value) -> (NormalizedEvent, NormalizedEvent) {
    let text = item.to_string();
    match item["apiVersion"].as_str() {
        Some("events.k8s.io/v1") => (
            from_events_v1(&serde_json::from_str::<events::Event>(&text).unwrap()),
            serde_json::from_str::<EventsV1Json>(&text).unwrap().into(),
        ),
        _ => (
            from_core_v1(&serde_json::from_str::<core::Event>(&text).unwrap()),
            serde_json::from_str::<CoreV1Json>(&text).unwrap().into(),
        ),
    }
}

fn items(path: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    match v.get("items") {
        Some(items) => items.as_array().unwrap().clone(),
        None => vec![v],
    }
}

#[test]
fn both_decoders_agree_on_every_fixture() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut files = vec![
        format!("{root}/schemas/tests/fixtures/events_v1_eventlist.json"),
        format!("{root}/schemas/tests/fixtures/core_v1_eventlist.json"),
        format!("{root}/fuzz/seeds/watch_json/events-v1.json"),
        format!("{root}/fuzz/seeds/watch_json/core-v1.json"),
    ];
    for e in std::fs::read_dir(format!("{root}/cli/testdata/dumps")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            files.push(p.display().to_string());
        }
    }
    let mut n = 0;
    for f in &files {
        for item in items(f) {
            let (typed, lean) = both_paths(&item);
            assert_eq!(lean, typed, "{f}: {}", item["metadata"]["name"]);
            n += 1;
        }
    }
    assert!(n >= 50, "only {n} objects in the fixtures");
}

#[test]
fn edge_cases_agree() {
    let cases = [
        // Nulls where Go's zero values serialize as null, managed fields to skip.
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
               "metadata": {"name": "a.1", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                            "creationTimestamp": "2026-01-02T03:04:05Z",
                            "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "events.k8s.io/v1",
                                               "fieldsType": "FieldsV1", "fieldsV1": {"f:note": {}, "f:regarding": {"f:kind": {}}}}],
                            "labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/x": "1", "team": "a"}},
               "eventTime": "2026-01-02T03:04:05.123456Z", "series": {"count": 5, "lastObservedTime": "2026-01-02T03:09:00.000001Z"},
               "reason": "BackOff", "note": null, "type": "Warning", "regarding": {"kind": "Pod", "name": "p"},
               "related": null, "reportingController": "", "reportingInstance": null,
               "deprecatedSource": {"component": "kubelet", "host": "node-1"},
               "deprecatedFirstTimestamp": null, "deprecatedLastTimestamp": null, "deprecatedCount": 0}),
        // Legacy recorder through the new API: only deprecated fields.
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "b.2"},
               "deprecatedCount": 3, "deprecatedFirstTimestamp": "2026-01-02T03:00:00Z",
               "deprecatedLastTimestamp": "2026-01-02T03:05:00Z", "eventTime": null}),
        // core/v1 with a series that has no count, and a related object.
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "c.3", "creationTimestamp": "2026-01-02T03:04:05Z"},
               "involvedObject": {"kind": "Node", "name": "n1"}, "related": {"kind": "Pod", "name": "p", "namespace": "x"},
               "series": {"lastObservedTime": "2026-01-02T03:06:00.5Z"}, "count": 2, "message": "m",
               "source": {"component": "kubelet"}, "reportingComponent": null,
               "firstTimestamp": null, "lastTimestamp": "2026-01-02T03:05:00Z", "eventTime": null}),
        // core/v1 with almost nothing.
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {}, "involvedObject": {}}),
    ];
    for item in &cases {
        let (typed, lean) = both_paths(item);
        assert_eq!(lean, typed, "{item}");
    }
}

#[test]
fn a_bad_time_is_an_error_that_says_so() {
    let e = serde_json::from_value::<EventsV1Json>(json!({"metadata": {"creationTimestamp": "yesterday"}})).unwrap_err();
    assert!(e.to_string().contains("invalid time \"yesterday\""), "{e}");
}
