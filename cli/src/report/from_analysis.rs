//! A report of a `kubectl` dump: what `kevents analyze` concluded
//! ([`crate::analyze::Analysis`], its public result) turned into the report's
//! model. Each event appears once with its total count as its occurrences (a
//! snapshot holds each Event once; the engine's last version carries the
//! total).

use super::model::{Event, Incident, Input, Pattern};
use crate::analyze::Analysis;
use schemas::records::Status;

fn ms(us: i64) -> i64 {
    us.div_euclid(1000)
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Open => "open",
        Status::Resolved => "resolved",
    }
}

pub fn input(a: &Analysis, title: String) -> Input {
    let events = a
        .events
        .iter()
        .map(|p| {
            let e = &p.event;
            let first = [e.first_seen_us, e.event_time_us.unwrap_or(0), e.created_us, e.last_seen_us].into_iter().find(|t| *t > 0).unwrap_or(0);
            let last = e.effective_time_us().max(first);
            Event {
                uid: e.uid.to_string(),
                cluster: p.cluster.name.to_string(),
                namespace: e.regarding.namespace.to_string(),
                kind: e.regarding.kind.to_string(),
                name: e.regarding.name.to_string(),
                reason: e.reason.to_string(),
                event_type: e.event_type.to_string(),
                category: p.category.to_string(),
                severity: p.severity,
                component: e.reporting_controller.to_string(),
                message: e.note.to_string(),
                occurrences: e.count.max(1),
                first_ms: ms(first),
                last_ms: ms(last),
                incident: p.correlation_id.clone(),
                metadata: p.metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            }
        })
        .collect();
    let incidents = a
        .incidents
        .iter()
        .map(|i| Incident {
            id: i.id.clone(),
            cluster: i.cluster.name.to_string(),
            status: status(i.status).into(),
            severity: i.severity,
            rule: i.rule.clone(),
            root_uid: i.root_cause.event_uid.clone(),
            summary: i.summary.clone(),
            first_ms: ms(i.first_seen_us),
            last_ms: ms(i.last_seen_us),
            event_count: i.event_count,
            occurrences: i.occurrences,
        })
        .collect();
    let patterns = a
        .patterns
        .iter()
        .map(|p| Pattern {
            cluster: p.cluster.name.to_string(),
            reason: p.reason.clone(),
            kind: p.kind.clone(),
            namespace: p.namespace.clone(),
            template: p.template.clone(),
            status: status(p.status).into(),
            count: p.count,
            first_ms: ms(p.first_seen_us),
            last_ms: ms(p.last_seen_us),
            per_minute: p.per_minute,
            anomaly_score: p.anomaly_score,
            previous_ms: p.previous_episodes.iter().map(|t| ms(*t)).collect(),
        })
        .collect();
    Input { title, source: a.source.clone(), events, incidents, patterns }
}
