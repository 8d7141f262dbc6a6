//! `kevents simulate --write-eventlist` writes what `kubectl get events -A -o json`
//! prints, in both API shapes, that the schemas converter reads back as the same
//! events, plus a ground truth that names only events in the list.

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn eventlists_in_both_shapes_normalize_to_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/events.json");
    let status = Command::new(env!("CARGO_BIN_EXE_kevents"))
        .args(["simulate", "--seed", "7", "--scenarios", "crash-loop,failed-mount,node-not-ready", "--write-eventlist"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let read = |p: &std::path::Path| -> Vec<schemas::NormalizedEvent> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(v["kind"], "List");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, item)| schemas::convert::from_json(i, item.clone()).unwrap())
            .collect()
    };
    let core = read(&path);
    let events = read(&dir.path().join("out/events.events-v1.json"));
    assert!(core.len() > 10, "{} events", core.len());
    assert_eq!(core.len(), events.len());
    for (a, b) in core.iter().zip(&events) {
        let mut b = b.clone();
        b.api_shape = a.api_shape;
        assert_eq!(*a, b, "the two shapes disagree on {}", a.name);
    }
    let uids: BTreeSet<&str> = core.iter().map(|e| e.uid.as_str()).collect();
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/events.truth.json")).unwrap()).unwrap();
    let incidents = truth["incidents"].as_array().unwrap();
    assert!(!incidents.is_empty());
    for inc in incidents {
        assert!(uids.contains(inc["root_cause_uid"].as_str().unwrap()));
        for m in inc["member_uids"].as_array().unwrap() {
            assert!(uids.contains(m.as_str().unwrap()), "truth names {m} which is not in the list");
        }
    }
}
