//! Tests of the alert engine: firing → resolve, emit-on-change only, versions
//! across episodes, determinism, the cap.

use super::*;
use schemas::model::ObjectRef;
use schemas::records::RootCause;

fn rules(yaml: &str) -> Arc<AlertRules> {
    Arc::new(AlertRules::without_builtin("t.yaml", yaml).unwrap())
}

fn incident(id: &str, version: i64, status: Status, sev: Severity, t: i64) -> Incident {
    Incident {
        source: SourcePos { partition: 2, offset: 100 + version, seq: 0 },
        id: id.into(),
        version,
        cluster: ClusterId { name: "prod-eu-1".into(), uid: "uid-1".into() },
        status,
        severity: sev,
        root_cause: RootCause {
            reason: "FailedMount".into(),
            category: "volume".into(),
            object: ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: "cart-7d9".into(), ..Default::default() },
            ..Default::default()
        },
        event_count: version * 3,
        occurrences: version * 5,
        first_seen_us: 1_000,
        last_seen_us: t,
        summary: format!("FailedMount on pod shop/cart-7d9 caused {} back-offs", version * 3),
        ..Default::default()
    }
}

const ERR: &str = "rules:\n- name: err\n  on: incident\n  min_severity: error\n  labels: {team: storage}\n";

#[test]
fn fires_once_then_resolves_with_a_stable_id() {
    let mut e = AlertEngine::new(rules(ERR), 100);
    let mut out = Vec::new();
    e.on_incident(&incident("i1", 1, Status::Open, Severity::Warning, 1_000), &mut out);
    assert!(out.is_empty(), "warning does not match min_severity error");
    e.on_incident(&incident("i1", 2, Status::Open, Severity::Error, 2_000), &mut out);
    e.on_incident(&incident("i1", 3, Status::Open, Severity::Error, 3_000), &mut out);
    e.on_incident(&incident("i1", 4, Status::Open, Severity::Critical, 4_000), &mut out);
    assert_eq!(out.len(), 1, "only the change is emitted: {out:#?}");
    let f = out[0].clone();
    assert_eq!(f.id, stable_id(&["alert", "err", "i1"]));
    assert_eq!((f.version, f.firing, f.ends_us, f.starts_us), (2, true, 0, 2_000));
    assert_eq!(f.origin, AlertSource::Incident);
    assert_eq!(f.origin_id, "i1");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.summary, "FailedMount on pod shop/cart-7d9 caused 6 back-offs");
    assert_eq!(f.source, SourcePos { partition: 2, offset: 102, seq: 0 });
    let want: BTreeMap<String, String> = [
        ("category", "volume"),
        ("cluster", "prod-eu-1"),
        ("namespace", "shop"),
        ("reason", "FailedMount"),
        ("severity", "error"),
        ("team", "storage"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(f.labels, want);
    assert_eq!(e.firing(), 1);

    e.on_incident(&incident("i1", 5, Status::Resolved, Severity::Critical, 9_000), &mut out);
    assert_eq!(out.len(), 2);
    let r = &out[1];
    assert_eq!(r.id, f.id);
    assert_eq!((r.version, r.firing, r.ends_us, r.starts_us), (5, false, 9_000, 2_000));
    assert_eq!(e.firing(), 0, "resolved alerts are forgotten");
    // Another resolved version: nothing.
    e.on_incident(&incident("i1", 6, Status::Resolved, Severity::Critical, 9_500), &mut out);
    assert_eq!(out.len(), 2);
    // Reopened: fires again, same id, higher version.
    e.on_incident(&incident("i1", 7, Status::Open, Severity::Error, 10_000), &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!((out[2].id.as_str(), out[2].version, out[2].firing), (f.id.as_str(), 7, true));
}

#[test]
fn resolves_when_the_origin_stops_matching_and_ignores_older_versions() {
    let yaml = "rules:\n- name: burst\n  on: anomaly\n  min_score: 3\n- name: pat\n  on: pattern\n  min_count: 10\n  summary: '{{reason}} x{{count}} in {{cluster}}'\n";
    let mut e = AlertEngine::new(rules(yaml), 100);
    let mut out = Vec::new();
    let mut p = Pattern {
        id: "p1".into(),
        version: 1,
        cluster: ClusterId { name: "c1".into(), uid: "u".into() },
        clusters: vec!["c1".into()],
        reason: "BackOff".into(),
        kind: "Pod".into(),
        namespace: "web".into(),
        count: 12,
        per_minute: 6.0,
        anomaly_score: 5.0,
        first_seen_us: 10,
        last_seen_us: 20,
        ..Default::default()
    };
    e.on_pattern(&p, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].rule.as_str(), out[0].origin), ("burst", AlertSource::Anomaly));
    assert_eq!((out[1].rule.as_str(), out[1].origin), ("pat", AlertSource::Pattern));
    assert_eq!(out[1].summary, "BackOff x12 in c1");
    assert!(out[0].summary.starts_with("Burst of BackOff on Pod in c1/web: 12 times, 6.0/min (5.0 deviations"), "{}", out[0].summary);
    assert_eq!(out[0].severity, Severity::Warning);
    assert_eq!(out[0].labels["scope"], "cluster");
    // The rate falls back: the anomaly resolves, the pattern keeps firing.
    p.version = 2;
    p.anomaly_score = 0.0;
    p.last_seen_us = 30;
    e.on_pattern(&p, &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!((out[2].rule.as_str(), out[2].firing, out[2].version, out[2].ends_us), ("burst", false, 2, 30));
    // A late, older version of the pattern changes nothing.
    let mut old = p.clone();
    old.version = 1;
    old.status = Status::Resolved;
    e.on_pattern(&old, &mut out);
    assert_eq!(out.len(), 3);
    p.version = 3;
    p.status = Status::Resolved;
    e.on_pattern(&p, &mut out);
    assert_eq!(out.len(), 4);
    assert_eq!((out[3].rule.as_str(), out[3].firing), ("pat", false));
}

#[test]
fn deterministic_across_engines_and_bounded() {
    let feed = |e: &mut AlertEngine| {
        let mut out = Vec::new();
        for step in 0..400i64 {
            let id = format!("i{}", step % 37);
            let status = if step % 5 == 4 { Status::Resolved } else { Status::Open };
            let sev = if step % 3 == 0 { Severity::Critical } else { Severity::Error };
            e.on_incident(&incident(&id, step, status, sev, step * 1_000), &mut out);
        }
        out
    };
    let r = rules(ERR);
    let (mut a, mut b) = (AlertEngine::new(r.clone(), 10), AlertEngine::new(r, 10));
    let (oa, ob) = (feed(&mut a), feed(&mut b));
    assert_eq!(oa, ob);
    assert!(!oa.is_empty());
    assert!(a.firing() <= 10, "cap holds: {}", a.firing());
    assert!(a.evicted > 0);
    // Versions only grow per alert id.
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for x in &oa {
        let prev = last.insert(&x.id, x.version).unwrap_or(-1);
        assert!(x.version > prev, "{} went from {prev} to {}", x.id, x.version);
    }
}

#[test]
fn every_matching_rule_raises_its_own_alert() {
    let yaml = "rules:\n- name: a\n  on: incident\n- name: b\n  on: incident\n  category: volume\n  severity: critical\n  summary: '{{object}}: {{summary}} [{{severity}}]'\n- name: c\n  on: incident\n  category: image\n";
    let mut e = AlertEngine::new(rules(yaml), 100);
    let mut out = Vec::new();
    e.on_incident(&incident("i1", 1, Status::Open, Severity::Warning, 5), &mut out);
    let names: Vec<&str> = out.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_ne!(out[0].id, out[1].id);
    assert_eq!(out[1].severity, Severity::Critical);
    assert_eq!(out[1].summary, "cart-7d9: FailedMount on pod shop/cart-7d9 caused 3 back-offs [critical]");
}
