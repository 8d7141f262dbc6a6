//! Incidents as traces (`incidents: logs_and_spans`), in the spirit of kspan: an
//! incident is a trace whose id is a pure function of the incident id; its root
//! span covers the incident from its first to its last event; each event version
//! that belongs to it is a child span. Ids are deterministic
//! ([`crate::attributes`]), so a replay re-sends the same spans.
//!
//! When: a child span is sent as its event is read (the trace fills as the
//! incident grows); the root span is sent for each incident version that is
//! `resolved` — only then is its end known, and a span has one end. An incident
//! that reopens and resolves again sends its root span again, same id, later end:
//! a backend keeps the newer (or both, which a query on `kevents.incident.version`
//! tells apart). Events that stand alone are logs only.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans, Span, Status as SpanStatus};
use schemas::model::Severity;
use schemas::records::{Incident, ProcessedEvent, Status};

use crate::attributes::{self, kv, kv_int, nanos, push_nonempty};
use crate::logs::{incident_attributes, incident_of, scope};

/// One span with the resource it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpan {
    pub resource: Vec<KeyValue>,
    pub span: Span,
}

/// Error status for `error` and `critical`: what a trace UI highlights.
fn status(severity: Severity, message: &str) -> Option<SpanStatus> {
    (severity >= Severity::Error).then(|| SpanStatus { code: StatusCode::Error as i32, message: message.into() })
}

/// The root span of a resolved incident version; `None` while it is open.
pub fn incident(i: &Incident) -> Option<TraceSpan> {
    if i.status != Status::Resolved {
        return None;
    }
    let rc = &i.root_cause;
    let name = if rc.object.kind.is_empty() { rc.reason.clone() } else { format!("{} {}", rc.reason, rc.object.kind) };
    let end = i.last_seen_us.max(i.first_seen_us);
    let span = Span {
        trace_id: attributes::trace_id(&i.id),
        span_id: attributes::incident_span_id(&i.id),
        name,
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: nanos(i.first_seen_us),
        end_time_unix_nano: nanos(end),
        attributes: incident_attributes(i),
        status: status(i.severity, &i.summary),
        ..Default::default()
    };
    Some(TraceSpan { resource: attributes::resource(&i.cluster, &rc.object, ""), span })
}

/// The child span of an event version that belongs to an incident; `None` for
/// an event that stands alone.
pub fn event(e: &ProcessedEvent) -> Option<TraceSpan> {
    let inc = incident_of(e)?;
    let ev = &e.event;
    let start = if ev.first_seen_us > 0 { ev.first_seen_us } else { ev.effective_time_us() };
    let end = ev.effective_time_us().max(start);
    let mut a = vec![kv("kevents.event.id", e.id.clone()), kv("kevents.incident.id", inc), kv("kevents.category", &*e.category)];
    push_nonempty(&mut a, "k8s.event.reason", &ev.reason);
    push_nonempty(&mut a, "k8s.event.type", &ev.event_type);
    a.push(kv_int("k8s.event.count", ev.count));
    a.push(kv("kevents.severity", e.severity.as_str()));
    let span = Span {
        trace_id: attributes::trace_id(inc),
        span_id: attributes::event_span_id(&e.id),
        parent_span_id: attributes::incident_span_id(inc),
        name: ev.reason.to_string(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: nanos(start),
        end_time_unix_nano: nanos(end),
        attributes: a,
        status: status(e.severity, &ev.note),
        ..Default::default()
    };
    Some(TraceSpan { resource: attributes::resource(&e.cluster, &ev.regarding, &ev.namespace), span })
}

/// One request: spans about the same resource share a `ResourceSpans`.
pub fn request<'a>(spans: impl IntoIterator<Item = &'a TraceSpan>) -> ExportTraceServiceRequest {
    let mut out: Vec<ResourceSpans> = Vec::new();
    for s in spans {
        let i = match out.iter().position(|r| r.resource.as_ref().is_some_and(|r| r.attributes == s.resource)) {
            Some(i) => i,
            None => {
                out.push(ResourceSpans {
                    resource: Some(Resource { attributes: s.resource.clone(), ..Default::default() }),
                    scope_spans: vec![ScopeSpans { scope: Some(scope()), ..Default::default() }],
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        out[i].scope_spans[0].spans.push(s.span.clone());
    }
    ExportTraceServiceRequest { resource_spans: out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::tests::{sample_event, sample_incident, text};

    #[test]
    fn a_resolved_incident_is_the_root_of_its_events_spans() {
        assert!(incident(&sample_incident("inc-9", 1, Status::Open)).is_none(), "open: no end yet");
        let root = incident(&sample_incident("inc-9", 2, Status::Resolved)).unwrap();
        assert_eq!(root.span.trace_id, attributes::trace_id("inc-9"));
        assert!(root.span.parent_span_id.is_empty());
        assert_eq!(root.span.name, "OOMKilling Node");
        assert_eq!((root.span.start_time_unix_nano, root.span.end_time_unix_nano), (1_700_000_000_000_000_000, 1_700_000_060_000_000_000));
        assert_eq!(root.span.status.as_ref().unwrap().code, StatusCode::Error as i32);
        assert_eq!(text(&root.span.attributes, "kevents.incident.id"), Some("inc-9"));
        let child = event(&sample_event("e1", "inc-9")).unwrap();
        assert_eq!(child.span.trace_id, root.span.trace_id);
        assert_eq!(child.span.parent_span_id, root.span.span_id);
        assert_eq!(child.span.name, "BackOff");
        assert!(child.span.end_time_unix_nano >= child.span.start_time_unix_nano);
        assert!(event(&sample_event("e2", "e2")).is_none(), "an event alone is no span");
        let req = request([&root, &child]);
        assert_eq!(req.resource_spans.len(), 2);
    }
}
