//! Processed events and incident versions as OTLP log records, and the
//! `ExportLogsServiceRequest` a batch of them is sent in.
//!
//! Every record carries its stable id twice: `log.record.uid` (the semantic
//! convention that tells a receiver "records with the same uid are duplicates")
//! and kevents' own key (`kevents.event.id`, or `kevents.incident.id` +
//! `kevents.incident.version`), so a receiver or a query can drop a replay.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use schemas::records::{Incident, ProcessedEvent, Status};

use crate::attributes::{self, kv, kv_int, nanos, push_nonempty, severity_number};

/// `event_name` of a processed event's record.
pub const EVENT_NAME: &str = "kevents.event";
/// `event_name` of an incident version's record.
pub const INCIDENT_NAME: &str = "kevents.incident";

/// One log record with the resource it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub resource: Vec<KeyValue>,
    pub record: LogRecord,
}

fn body(s: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(s.into())) })
}

/// The `log.record.uid` of an incident version.
pub fn incident_uid(id: &str, version: i64) -> String {
    format!("{id}.v{version}")
}

/// The incident an event belongs to, `None` when it stands alone (its
/// `correlation_id` is then its own id).
pub fn incident_of(e: &ProcessedEvent) -> Option<&str> {
    (!e.correlation_id.is_empty() && e.correlation_id != e.id).then_some(e.correlation_id.as_str())
}

/// A processed event: body = the note, severity from kevents' severity, time =
/// when it last happened. With `link_trace`, an event of an incident carries
/// the incident's trace id and its own span id (see [`crate::spans`]).
pub fn event(e: &ProcessedEvent, link_trace: bool) -> Log {
    let ev = &e.event;
    let mut a = vec![kv("log.record.uid", e.id.clone()), kv("kevents.event.id", e.id.clone())];
    if let Some(inc) = incident_of(e) {
        a.push(kv("kevents.incident.id", inc));
    }
    a.push(kv("kevents.category", &*e.category));
    push_nonempty(&mut a, "kevents.rule", &e.rule);
    a.push(kv_int("kevents.occurrences", e.occurrences));
    a.push(kv("kevents.watch_kind", e.watch_kind.as_str()));
    push_nonempty(&mut a, "k8s.event.reason", &ev.reason);
    push_nonempty(&mut a, "k8s.event.type", &ev.event_type);
    push_nonempty(&mut a, "k8s.event.action", &ev.action);
    push_nonempty(&mut a, "k8s.event.name", &ev.name);
    push_nonempty(&mut a, "k8s.event.uid", &ev.uid);
    a.push(kv_int("k8s.event.count", ev.count));
    push_nonempty(&mut a, "k8s.event.reporting_controller", &ev.reporting_controller);
    push_nonempty(&mut a, "k8s.event.reporting_instance", &ev.reporting_instance);
    if let Some(r) = &ev.related {
        push_nonempty(&mut a, "k8s.event.related.kind", &r.kind);
        push_nonempty(&mut a, "k8s.event.related.name", &r.name);
    }
    for (k, v) in e.metadata.iter() {
        a.push(kv(&format!("kevents.metadata.{k}"), v));
    }
    for (k, v) in e.labels.iter() {
        a.push(kv(&format!("kevents.label.{k}"), v.clone()));
    }
    let (trace_id, span_id) = match (link_trace, incident_of(e)) {
        (true, Some(inc)) => (attributes::trace_id(inc), attributes::event_span_id(&e.id)),
        _ => (vec![], vec![]),
    };
    let record = LogRecord {
        time_unix_nano: nanos(ev.effective_time_us()),
        observed_time_unix_nano: nanos(e.observed_us),
        severity_number: severity_number(e.severity) as i32,
        severity_text: e.severity.as_str().into(),
        body: body(&ev.note),
        attributes: a,
        trace_id,
        span_id,
        event_name: EVENT_NAME.into(),
        ..Default::default()
    };
    Log { resource: attributes::resource(&e.cluster, &ev.regarding, &ev.namespace), record }
}

/// The attributes an incident's log record and its span share.
pub fn incident_attributes(i: &Incident) -> Vec<KeyValue> {
    let rc = &i.root_cause;
    let mut a = vec![
        kv("kevents.incident.id", i.id.clone()),
        kv_int("kevents.incident.version", i.version),
        kv("kevents.incident.status", match i.status {
            Status::Open => "open",
            Status::Resolved => "resolved",
        }),
    ];
    push_nonempty(&mut a, "kevents.rule", &i.rule);
    push_nonempty(&mut a, "kevents.root_cause.event.id", &rc.event_id);
    push_nonempty(&mut a, "kevents.root_cause.reason", &rc.reason);
    push_nonempty(&mut a, "kevents.root_cause.category", &rc.category);
    a.push(kv_int("kevents.incident.event_count", i.event_count));
    a.push(kv_int("kevents.incident.occurrences", i.occurrences));
    a.push(kv_int("kevents.incident.affected_objects", i.affected_objects.len() as i64));
    for (reason, n) in &i.reason_counts {
        a.push(kv_int(&format!("kevents.incident.reasons.{reason}"), *n));
    }
    a
}

/// An incident version: body = the summary, time = its last event; the
/// resource is the root cause's object.
pub fn incident(i: &Incident) -> Log {
    let mut a = vec![kv("log.record.uid", incident_uid(&i.id, i.version))];
    a.extend(incident_attributes(i));
    let record = LogRecord {
        time_unix_nano: nanos(i.last_seen_us),
        observed_time_unix_nano: nanos(i.last_seen_us),
        severity_number: severity_number(i.severity) as i32,
        severity_text: i.severity.as_str().into(),
        body: body(&i.summary),
        attributes: a,
        event_name: INCIDENT_NAME.into(),
        ..Default::default()
    };
    Log { resource: attributes::resource(&i.cluster, &i.root_cause.object, ""), record }
}

pub fn scope() -> InstrumentationScope {
    InstrumentationScope { name: "kevents".into(), version: env!("CARGO_PKG_VERSION").into(), ..Default::default() }
}

/// One request: records about the same resource share a `ResourceLogs`, in
/// order of first appearance.
pub fn request<'a>(logs: impl IntoIterator<Item = &'a Log>) -> ExportLogsServiceRequest {
    let mut out: Vec<ResourceLogs> = Vec::new();
    for l in logs {
        let i = match out.iter().position(|r| r.resource.as_ref().is_some_and(|r| r.attributes == l.resource)) {
            Some(i) => i,
            None => {
                out.push(ResourceLogs {
                    resource: Some(Resource { attributes: l.resource.clone(), ..Default::default() }),
                    scope_logs: vec![ScopeLogs { scope: Some(scope()), ..Default::default() }],
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        out[i].scope_logs[0].log_records.push(l.record.clone());
    }
    ExportLogsServiceRequest { resource_logs: out }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use schemas::model::{ClusterId, NormalizedEvent, ObjectRef, Severity};
    use schemas::records::RootCause;

    pub fn sample_event(id: &str, incident: &str) -> ProcessedEvent {
        ProcessedEvent {
            id: id.into(),
            cluster: ClusterId { name: "prod".into(), uid: "c1".into() },
            observed_us: 1_700_000_001_000_000,
            event: Box::new(NormalizedEvent {
                uid: "ev-uid".into(),
                namespace: "shop".into(),
                name: "api-1.17a".into(),
                event_type: "Warning".into(),
                reason: "BackOff".into(),
                note: "Back-off restarting failed container api".into(),
                regarding: ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: "api-1".into(), uid: "p1".into(), ..Default::default() },
                count: 3,
                last_seen_us: 1_700_000_000_000_000,
                ..Default::default()
            }),
            category: "crashloop".into(),
            severity: Severity::Error,
            rule: "crashloop-backoff".into(),
            correlation_id: incident.into(),
            occurrences: 1,
            ..Default::default()
        }
    }

    pub fn sample_incident(id: &str, version: i64, status: Status) -> Incident {
        Incident {
            id: id.into(),
            version,
            cluster: ClusterId { name: "prod".into(), uid: "c1".into() },
            status,
            severity: Severity::Critical,
            root_cause: RootCause { event_id: "e0".into(), reason: "OOMKilling".into(), category: "oom".into(), object: ObjectRef { kind: "Node".into(), name: "n1".into(), ..Default::default() }, ..Default::default() },
            rule: "node-oom".into(),
            event_count: 4,
            occurrences: 9,
            first_seen_us: 1_700_000_000_000_000,
            last_seen_us: 1_700_000_060_000_000,
            summary: "OOM on node n1 killed 3 pods".into(),
            reason_counts: [("OOMKilling".to_string(), 1), ("BackOff".to_string(), 3)].into(),
            ..Default::default()
        }
    }

    pub fn attr<'a>(a: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        a.iter().find(|k| k.key == key).and_then(|k| k.value.as_ref()?.value.as_ref())
    }

    /// A string attribute's value.
    pub fn text<'a>(a: &'a [KeyValue], key: &str) -> Option<&'a str> {
        match attr(a, key)? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn an_event_is_a_log_record_with_its_ids_severity_and_object() {
        let l = event(&sample_event("e1", "inc-9"), false);
        let r = &l.record;
        assert_eq!((r.severity_number, r.severity_text.as_str()), (17, "error"));
        assert_eq!(r.body, body("Back-off restarting failed container api"));
        assert_eq!(r.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(r.observed_time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(text(&r.attributes, "log.record.uid"), Some("e1"));
        assert_eq!(text(&r.attributes, "kevents.event.id"), Some("e1"));
        assert_eq!(text(&r.attributes, "kevents.incident.id"), Some("inc-9"));
        assert_eq!(text(&r.attributes, "kevents.category"), Some("crashloop"));
        assert_eq!(text(&r.attributes, "k8s.event.reason"), Some("BackOff"));
        assert!(r.trace_id.is_empty(), "no trace link unless spans are exported");
        assert_eq!(text(&l.resource, "k8s.pod.name"), Some("api-1"));
        assert_eq!(text(&l.resource, "k8s.namespace.name"), Some("shop"));
        assert_eq!(text(&l.resource, "k8s.cluster.name"), Some("prod"));
        // Alone: no incident id; linked: the incident's trace and its own span.
        let alone = event(&sample_event("e2", "e2"), true);
        assert_eq!(attr(&alone.record.attributes, "kevents.incident.id"), None);
        assert!(alone.record.trace_id.is_empty());
        let linked = event(&sample_event("e3", "inc-9"), true);
        assert_eq!(linked.record.trace_id, attributes::trace_id("inc-9"));
        assert_eq!(linked.record.span_id, attributes::event_span_id("e3"));
    }

    #[test]
    fn an_incident_version_is_a_log_record_and_one_resource_groups_its_records() {
        let l = incident(&sample_incident("inc-9", 3, Status::Open));
        assert_eq!((l.record.severity_number, l.record.body.clone()), (21, body("OOM on node n1 killed 3 pods")));
        assert_eq!(text(&l.record.attributes, "log.record.uid"), Some("inc-9.v3"));
        assert_eq!(attr(&l.record.attributes, "kevents.incident.version"), Some(&any_value::Value::IntValue(3)));
        assert_eq!(attr(&l.record.attributes, "kevents.incident.reasons.BackOff"), Some(&any_value::Value::IntValue(3)));
        assert_eq!(text(&l.resource, "k8s.node.name"), Some("n1"));
        let a = event(&sample_event("e1", "inc-9"), false);
        let b = event(&sample_event("e2", "inc-9"), false);
        let req = request([&a, &l, &b]);
        assert_eq!(req.resource_logs.len(), 2, "the two events share the pod's resource");
        assert_eq!(req.resource_logs[0].scope_logs[0].log_records.len(), 2);
        assert_eq!(req.resource_logs[0].scope_logs[0].scope.as_ref().unwrap().name, "kevents");
    }
}
