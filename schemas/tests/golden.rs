//! Golden test: real-shaped `kubectl get events -o json` output of both API shapes
//! (the same two events as the API server serves them in each shape) normalizes to
//! the same model, with the field mapping documented in `convert.rs`.

use kevents_schemas::convert::{from_json, ConvertError};
use kevents_schemas::{ApiShape, NormalizedEvent, ObjectRef};

fn load(file: &str) -> Vec<NormalizedEvent> {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, item)| from_json(i, item.clone()).unwrap())
        .collect()
}

fn us(rfc3339: &str) -> i64 {
    rfc3339.parse::<k8s_openapi::jiff::Timestamp>().unwrap().as_microsecond()
}

fn expected() -> Vec<NormalizedEvent> {
    let backoff = NormalizedEvent {
        uid: "e1f2a3b4-0000-4000-8000-000000000001".into(),
        namespace: "shop".into(),
        name: "cart-7d9f8b6c5-x2kqp.1879b1f0a3c2d4e5".into(),
        resource_version: "884990".into(),
        api_shape: ApiShape::CoreV1,
        event_type: "Warning".into(),
        reason: "BackOff".into(),
        note: "Back-off restarting failed container cart in pod cart-7d9f8b6c5-x2kqp_shop(5b0c6c1e-3f0e-4c4b-9a59-0d1b7c2e9f11)".into(),
        action: "".into(),
        regarding: ObjectRef {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "cart-7d9f8b6c5-x2kqp".into(),
            uid: "5b0c6c1e-3f0e-4c4b-9a59-0d1b7c2e9f11".into(),
            api_version: "v1".into(),
            field_path: "spec.containers{cart}".into(),
        },
        related: None,
        reporting_controller: "kubelet".into(),
        reporting_instance: "node-a-1".into(),
        count: 14,
        series: false,
        first_seen_us: us("2026-11-20T10:00:05Z"),
        last_seen_us: us("2026-11-20T10:06:11Z"),
        event_time_us: None,
        created_us: us("2026-11-20T10:00:05Z"),
        labels: Default::default(),
        annotations: [("team".to_string(), "payments".to_string())].into_iter().collect(),
    };
    let sched = NormalizedEvent {
        uid: "e1f2a3b4-0000-4000-8000-000000000002".into(),
        namespace: "shop".into(),
        name: "web-5c6b7d8f9-abcde.1879b1ef0f1e2d3c".into(),
        resource_version: "884950".into(),
        api_shape: ApiShape::CoreV1,
        event_type: "Warning".into(),
        reason: "FailedScheduling".into(),
        note: "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/5 nodes are available: 2 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.".into(),
        action: "Scheduling".into(),
        regarding: ObjectRef {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "web-5c6b7d8f9-abcde".into(),
            uid: "6c1d7d2f-4a1f-4d5c-8b6a-1e2c8d3fa022".into(),
            api_version: "v1".into(),
            field_path: "".into(),
        },
        related: None,
        reporting_controller: "default-scheduler".into(),
        reporting_instance: "default-scheduler-control-plane-1".into(),
        count: 7,
        series: true,
        first_seen_us: us("2026-11-20T10:00:01.123456Z"),
        last_seen_us: us("2026-11-20T10:04:01.654321Z"),
        event_time_us: Some(us("2026-11-20T10:00:01.123456Z")),
        created_us: us("2026-11-20T10:00:01Z"),
        labels: Default::default(),
        annotations: Default::default(),
    };
    vec![backoff, sched]
}

#[test]
fn core_v1_list_normalizes() {
    assert_eq!(load("core_v1_eventlist.json"), expected());
}

#[test]
fn events_v1_list_normalizes_to_the_same_model() {
    let want: Vec<_> = expected()
        .into_iter()
        .map(|mut e| {
            e.api_shape = ApiShape::EventsV1;
            e
        })
        .collect();
    assert_eq!(load("events_v1_eventlist.json"), want);
}

#[test]
fn microsecond_event_time_is_kept() {
    let evs = load("events_v1_eventlist.json");
    assert_eq!(evs[1].event_time_us.unwrap() % 1_000_000, 123_456);
}

#[test]
fn malformed_items_name_the_item_and_field() {
    let bad = serde_json::json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "x.1"}, "count": "many"});
    let err = from_json(3, bad).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConvertError::Invalid { index: 3, .. }), "{msg}");
    assert!(msg.contains("item 3 (x.1)"), "{msg}");
    let not_event = serde_json::json!({"apiVersion": "v1", "kind": "Pod"});
    assert!(from_json(0, not_event).unwrap_err().to_string().contains("not an Event"));
}
