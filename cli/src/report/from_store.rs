//! A report from ClickHouse: the events of a window (or of one incident),
//! their incidents and the pattern episodes, read through `kevents-query`
//! ([`kevents_query::report`]) and turned into the report's model.

use super::model::{Event, Incident, Input};
use anyhow::Context;
use kevents_query::{ReportFilter, Store};
use schemas::model::Severity;

/// Kinds without a namespace. The events table files a cluster-scoped object's
/// events under the Event's own namespace (sink/src/rows.rs), so it is cleared
/// here: a Node is the same lane whichever namespace its events were written in.
const CLUSTER_SCOPED: [&str; 6] = ["Node", "PersistentVolume", "Namespace", "StorageClass", "ClusterRole", "CustomResourceDefinition"];

fn severity(s: &str) -> Severity {
    Severity::ALL.into_iter().find(|x| x.as_str() == s).unwrap_or_default()
}

pub async fn input(store: &Store, f: &ReportFilter, title: String, source: String) -> anyhow::Result<Input> {
    let events = store.report_events(f).await.context("reading the events")?;
    let incidents = store.report_incidents(f).await.context("reading the incidents")?;
    let patterns = if f.incident.is_some() { vec![] } else { store.report_patterns(f).await.context("reading the patterns")? };
    if events.len() as u64 >= f.limit {
        tracing::warn!(limit = f.limit, "the window has more events than --max-events: the earliest {} are shown", f.limit);
    }
    Ok(Input {
        title,
        source,
        events: events
            .into_iter()
            .map(|e| Event {
                uid: e.event_uid,
                cluster: e.cluster,
                namespace: if CLUSTER_SCOPED.contains(&e.kind.as_str()) { String::new() } else { e.namespace },
                kind: e.kind,
                name: e.name,
                reason: e.reason,
                event_type: e.event_type,
                category: e.category,
                severity: severity(&e.severity),
                component: e.component,
                message: e.message,
                occurrences: e.occurrences,
                first_ms: e.first_ms.min(e.last_ms),
                last_ms: e.last_ms,
                incident: e.correlation_id,
                metadata: e.meta_keys.into_iter().zip(e.meta_values).collect(),
            })
            .collect(),
        incidents: incidents
            .into_iter()
            .map(|i| Incident {
                id: i.id,
                cluster: i.cluster,
                status: i.status,
                severity: severity(&i.severity),
                rule: i.rule,
                root_uid: i.root_event_uid,
                summary: i.summary,
                first_ms: i.first_ms,
                last_ms: i.last_ms,
                event_count: i.event_count,
                occurrences: i.occurrences,
            })
            .collect(),
        patterns,
    })
}
