//! The two outputs of `kevents analyze`.
//!
//! JSON (stable field names, for tools):
//! - `events`: one per input event: `uid`, `namespace`, `name`, `reason`,
//!   `type`, `object`, `count`, `category`, `severity`, `rule`,
//!   `correlation_id` (its incident's id, or its own id when it stands alone).
//! - `incidents`: `id`, `status`, `severity`, `rule`, `root_cause` (`uid`,
//!   `reason`, `category`, `object`, `message`), `event_uids`, `objects`,
//!   `reason_counts`, `events`, `occurrences`, `first_seen`, `last_seen`,
//!   `summary`.
//! - `patterns`: `key`, `reason`, `kind`, `namespace`, `template`, `status`,
//!   `count`, `first_seen`, `last_seen`, `per_minute`, `samples` (event ids),
//!   `anomaly_score`.
//! - `counts`: `events`, `occurrences`, `by_category`, `by_severity`.
//!
//! Times are RFC 3339 (UTC).

use schemas::model::ObjectRef;
use schemas::records::Status;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

use super::Analysis;

fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

fn object(o: &ObjectRef) -> String {
    o.display()
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Open => "open",
        Status::Resolved => "resolved",
    }
}

struct Counts {
    occurrences: i64,
    by_category: BTreeMap<String, i64>,
    by_severity: BTreeMap<String, i64>,
}

fn counts(a: &Analysis) -> Counts {
    let mut c = Counts { occurrences: 0, by_category: BTreeMap::new(), by_severity: BTreeMap::new() };
    for e in &a.events {
        let n = e.event.count.max(1);
        c.occurrences += n;
        *c.by_category.entry(e.category.to_string()).or_default() += n;
        *c.by_severity.entry(e.severity.to_string()).or_default() += n;
    }
    c
}

pub fn json(a: &Analysis) -> Value {
    let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &a.events {
        members.entry(e.correlation_id.as_str()).or_default().push(&e.event.uid);
    }
    let events: Vec<Value> = a
        .events
        .iter()
        .map(|e| {
            json!({
                "uid": e.event.uid, "namespace": e.event.namespace, "name": e.event.name,
                "reason": e.event.reason, "type": e.event.event_type, "object": object(&e.event.regarding),
                "count": e.event.count, "category": e.category, "severity": e.severity.as_str(),
                "rule": e.rule, "correlation_id": e.correlation_id,
            })
        })
        .collect();
    let incidents: Vec<Value> = a
        .incidents
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "status": status(i.status), "severity": i.severity.as_str(), "rule": i.rule,
                "root_cause": {
                    "uid": i.root_cause.event_uid, "reason": i.root_cause.reason, "category": i.root_cause.category,
                    "object": object(&i.root_cause.object), "message": i.root_cause.note,
                },
                "event_uids": members.get(i.id.as_str()).cloned().unwrap_or_default(),
                "objects": i.affected_objects.iter().map(object).collect::<Vec<_>>(),
                "reason_counts": i.reason_counts, "events": i.event_count, "occurrences": i.occurrences,
                "first_seen": time(i.first_seen_us), "last_seen": time(i.last_seen_us), "summary": i.summary,
            })
        })
        .collect();
    let patterns: Vec<Value> = a
        .patterns
        .iter()
        .map(|p| {
            json!({
                "key": p.key, "reason": p.reason, "kind": p.kind, "namespace": p.namespace, "template": p.template,
                "status": status(p.status), "count": p.count, "first_seen": time(p.first_seen_us),
                "last_seen": time(p.last_seen_us), "per_minute": p.per_minute, "samples": p.samples,
                "anomaly_score": p.anomaly_score,
            })
        })
        .collect();
    let c = counts(a);
    json!({
        "source": a.source,
        "events": events,
        "incidents": incidents,
        "patterns": patterns,
        "counts": {"events": a.events.len(), "occurrences": c.occurrences, "by_category": c.by_category, "by_severity": c.by_severity},
    })
}

pub fn text(a: &Analysis) -> String {
    let mut s = String::new();
    let c = counts(a);
    let _ = writeln!(s, "{}: {} events, {} occurrences\n", a.source, a.events.len(), c.occurrences);
    let open = a.incidents.iter().filter(|i| i.status == Status::Open).count();
    let _ = writeln!(s, "INCIDENTS: {} ({} open)", a.incidents.len(), open);
    let mut incidents: Vec<_> = a.incidents.iter().collect();
    // Open first, then the most severe, then the biggest.
    incidents.sort_by_key(|i| (i.status as u8, std::cmp::Reverse(i.severity), std::cmp::Reverse(i.occurrences)));
    for i in incidents {
        let _ = writeln!(s, "  [{}] {} — {}", i.severity, status(i.status), i.summary);
        let _ = writeln!(s, "      root cause: {} ({}) on {}: {}", i.root_cause.reason, i.root_cause.category, object(&i.root_cause.object), one_line(&i.root_cause.note, 120));
        let shown: Vec<String> = i.affected_objects.iter().take(4).map(object).collect();
        let more = if i.affected_objects.len() > 4 { format!(" and {} more", i.affected_objects.len() - 4) } else { String::new() };
        let _ = writeln!(s, "      affected: {}{more}", shown.join(", "));
        let _ = writeln!(s, "      {} → {} · rule {} · id {}", time(i.first_seen_us), time(i.last_seen_us), i.rule, i.id);
    }
    let _ = writeln!(s, "\nPATTERNS: {}", a.patterns.len());
    let mut patterns: Vec<_> = a.patterns.iter().collect();
    patterns.sort_by(|x, y| y.count.cmp(&x.count).then(x.key.cmp(&y.key)));
    for p in patterns {
        let anomaly = if p.anomaly_score > 0.0 { format!(" · anomaly score {:.1}", p.anomaly_score) } else { String::new() };
        let _ = writeln!(
            s,
            "  {}× {} {} {}: \"{}\" ({:.1}/min, {} → {}){anomaly}",
            p.count,
            p.reason,
            p.kind,
            if p.namespace.is_empty() { "-" } else { &p.namespace },
            one_line(&p.template, 100),
            p.per_minute,
            time(p.first_seen_us),
            time(p.last_seen_us)
        );
    }
    let _ = writeln!(s, "\nBY SEVERITY (occurrences)");
    for sev in ["critical", "error", "warning", "info"] {
        if let Some(n) = c.by_severity.get(sev) {
            let _ = writeln!(s, "  {sev:<10} {n}");
        }
    }
    let _ = writeln!(s, "\nBY CATEGORY (occurrences)");
    let mut cats: Vec<_> = c.by_category.iter().collect();
    cats.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, n) in cats {
        let _ = writeln!(s, "  {k:<22} {n}");
    }
    s
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() > max {
        flat.chars().take(max).collect::<String>() + "…"
    } else {
        flat
    }
}
