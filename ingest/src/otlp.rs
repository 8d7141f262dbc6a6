//! `POST /v1/logs`: OTLP logs over HTTP (protobuf or JSON), each log record one
//! event.
//!
//! The mapping (resource attributes first, a record's own attributes override them):
//!
//! | event field          | from                                                                 |
//! |----------------------|----------------------------------------------------------------------|
//! | cluster              | `k8s.cluster.name`; its uid from the config, else `k8s.cluster.uid`  |
//! | regarding            | the most specific of `k8s.pod.name`, `k8s.deployment.name`, `k8s.statefulset.name`, `k8s.daemonset.name`, `k8s.job.name`, `k8s.cronjob.name`, `k8s.replicaset.name`, `k8s.node.name` (kind Pod, Deployment, …); else `service.name` as kind `Application` |
//! | regarding.namespace  | `k8s.namespace.name` (none for a Node)                               |
//! | regarding.uid        | `k8s.<kind>.uid` (e.g. `k8s.pod.uid`)                                |
//! | regarding.fieldPath  | `spec.containers{<k8s.container.name>}` for a pod                    |
//! | reason               | `k8s.event.reason`, else the record's `event_name`, else `event.name`, else `ApplicationLog` |
//! | type                 | `k8s.event.type`, else `Warning` from severity WARN (13) up or a severity text starting with W, E or F, else `Normal` |
//! | note                 | the body (a string as is, other values as JSON), cut to 1 kB         |
//! | action               | `k8s.event.action`                                                   |
//! | uid                  | `k8s.event.uid`, else `log.record.uid`, else derived from the content |
//! | count                | `k8s.event.count` (default 1)                                        |
//! | time                 | `timeUnixNano`, else `observedTimeUnixNano` (one is required)        |
//! | reporting controller | `service.name`, else the scope's name, else the token's name         |
//! | reporting instance   | `service.instance.id`, else `host.name`, else `k8s.node.name`       |
//! | annotations          | the record's other scalar attributes, and `otel.trace_id`/`otel.span_id` |
//!
//! A pod's events from the cluster name it as kind Pod, its namespace and name:
//! an application log with the same `k8s.namespace.name` and `k8s.pod.name` names
//! the same object, which is what the processor's correlation links on.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use schemas::model::{NormalizedEvent, ObjectRef, Text};
use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::incoming::{truncate, Incoming, MAX_NOTE_BYTES};

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From the `Content-Type` header (OTLP/HTTP: `application/x-protobuf` or
    /// `application/json`).
    pub fn from_content_type(ct: Option<&str>) -> Result<Encoding, ApiError> {
        let ct = ct.unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(ApiError::UnsupportedMediaType(ct.to_string())),
        }
    }
}

/// Kinds a resource may name, most specific first: the attribute of the name and
/// the Kubernetes kind.
const OBJECTS: &[(&str, &str)] = &[
    ("k8s.pod.name", "Pod"),
    ("k8s.deployment.name", "Deployment"),
    ("k8s.statefulset.name", "StatefulSet"),
    ("k8s.daemonset.name", "DaemonSet"),
    ("k8s.job.name", "Job"),
    ("k8s.cronjob.name", "CronJob"),
    ("k8s.replicaset.name", "ReplicaSet"),
    ("k8s.node.name", "Node"),
];

/// Attributes the mapping consumes (not copied into annotations).
const MAPPED: &[&str] = &[
    "k8s.event.reason",
    "k8s.event.type",
    "k8s.event.action",
    "k8s.event.uid",
    "k8s.event.count",
    "log.record.uid",
    "event.name",
    "k8s.cluster.name",
    "k8s.cluster.uid",
    "k8s.namespace.name",
    "k8s.container.name",
    "service.name",
    "service.instance.id",
    "host.name",
];

/// At most this many attributes become annotations per event.
const MAX_ANNOTATIONS: usize = 32;

/// Decode a request body.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportLogsServiceRequest, ApiError> {
    match encoding {
        Encoding::Protobuf => <ExportLogsServiceRequest as prost::Message>::decode(body)
            .map_err(|e| ApiError::BadRequest { field: None, reason: format!("not an OTLP ExportLogsServiceRequest: {e}") }),
        Encoding::Json => serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| {
            let at = e.path().to_string();
            ApiError::BadRequest { field: (at != ".").then_some(at), reason: format!("not an OTLP ExportLogsServiceRequest: {}", e.into_inner()) }
        }),
    }
}

/// The value of an attribute as text (scalars only).
fn scalar(v: &AnyValue) -> Option<String> {
    match v.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

/// A body of any shape as text: strings as they are, the rest as JSON.
fn body_text(v: &AnyValue) -> String {
    fn json(v: &AnyValue) -> serde_json::Value {
        use any_value::Value as V;
        match &v.value {
            None => serde_json::Value::Null,
            Some(V::StringValue(s)) => s.clone().into(),
            Some(V::BoolValue(b)) => (*b).into(),
            Some(V::IntValue(i)) => (*i).into(),
            Some(V::DoubleValue(d)) => serde_json::Number::from_f64(*d).map(Into::into).unwrap_or(serde_json::Value::Null),
            Some(V::ArrayValue(a)) => a.values.iter().map(json).collect(),
            Some(V::KvlistValue(kv)) => kv.values.iter().map(|k| (k.key.clone(), k.value.as_ref().map(json).unwrap_or_default())).collect::<serde_json::Map<_, _>>().into(),
            Some(V::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect::<String>().into(),
            Some(V::StringValueStrindex(i)) => (*i).into(),
        }
    }
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => json(v).to_string(),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<&str, String> {
    kvs.iter().filter_map(|kv| Some((kv.key.as_str(), scalar(kv.value.as_ref()?)?))).collect()
}

/// The events of a request, in order.
pub fn to_incoming(req: &ExportLogsServiceRequest) -> Result<Vec<Incoming>, ApiError> {
    let mut out = Vec::new();
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        let resource = rl.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default();
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            let scope_name = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            for (li, rec) in sl.log_records.iter().enumerate() {
                let path = format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]");
                out.push(record(rec, &resource, scope_name, ri, path)?);
            }
        }
    }
    Ok(out)
}

fn record(rec: &LogRecord, resource: &BTreeMap<&str, String>, scope_name: &str, ri: usize, path: String) -> Result<Incoming, ApiError> {
    let own = attrs(&rec.attributes);
    let get = |k: &str| own.get(k).or_else(|| resource.get(k)).filter(|v| !v.is_empty()).cloned();
    let (kind, name) = OBJECTS
        .iter()
        .find_map(|(attr, kind)| get(attr).map(|n| (*kind, n)))
        .or_else(|| get("service.name").map(|n| ("Application", n)))
        .ok_or_else(|| ApiError::bad(format!("resourceLogs[{ri}].resource.attributes"), "name the object the log is about: k8s.pod.name (or k8s.deployment.name, …, k8s.node.name) or service.name"))?;
    let namespace = if kind == "Node" { String::new() } else { get("k8s.namespace.name").or_else(|| get("service.namespace")).unwrap_or_default() };
    let uid_attr = format!("k8s.{}.uid", kind.to_ascii_lowercase());
    let field_path = match (kind, get("k8s.container.name")) {
        ("Pod", Some(c)) => format!("spec.containers{{{c}}}"),
        _ => String::new(),
    };
    let nanos = if rec.time_unix_nano > 0 { rec.time_unix_nano } else { rec.observed_time_unix_nano };
    if nanos == 0 {
        return Err(ApiError::bad(format!("{path}.timeUnixNano"), "required (or observedTimeUnixNano): the event's identity is derived from its time"));
    }
    let t_us = i64::try_from(nanos / 1000).map_err(|_| ApiError::bad(format!("{path}.timeUnixNano"), "out of range"))?;
    let reason = get("k8s.event.reason")
        .or_else(|| Some(rec.event_name.clone()).filter(|n| !n.is_empty()))
        .or_else(|| get("event.name"))
        .unwrap_or_else(|| "ApplicationLog".into());
    if reason.len() > 128 {
        return Err(ApiError::bad(format!("{path}.attributes[k8s.event.reason]"), "at most 128 characters"));
    }
    let warning = rec.severity_number >= 13 || (rec.severity_number == 0 && matches!(rec.severity_text.chars().next().map(|c| c.to_ascii_uppercase()), Some('W' | 'E' | 'F')));
    let event_type = match get("k8s.event.type") {
        Some(t) if t == "Normal" || t == "Warning" => t,
        Some(t) => return Err(ApiError::bad(format!("{path}.attributes[k8s.event.type]"), format!("Normal or Warning, not {t:?}"))),
        None if warning => "Warning".into(),
        None => "Normal".into(),
    };
    let count = match get("k8s.event.count") {
        Some(c) => c.parse::<i64>().ok().filter(|c| (1..=i32::MAX as i64).contains(c)).ok_or_else(|| ApiError::bad(format!("{path}.attributes[k8s.event.count]"), "a positive integer"))?,
        None => 1,
    };
    let note = rec.body.as_ref().map(body_text).unwrap_or_default();
    let mut annotations: Vec<(String, String)> = own
        .iter()
        .filter(|(k, _)| !MAPPED.contains(k) && !OBJECTS.iter().any(|(a, _)| a == *k) && !k.ends_with(".uid"))
        .take(MAX_ANNOTATIONS)
        .map(|(k, v)| (k.to_string(), truncate(v, 256).to_string()))
        .collect();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if !rec.trace_id.is_empty() {
        annotations.push(("otel.trace_id".into(), hex(&rec.trace_id)));
    }
    if !rec.span_id.is_empty() {
        annotations.push(("otel.span_id".into(), hex(&rec.span_id)));
    }
    let event = NormalizedEvent {
        uid: get("k8s.event.uid").or_else(|| get("log.record.uid")).unwrap_or_default().into(),
        namespace: Text::from(namespace.as_str()),
        event_type: event_type.into(),
        reason: reason.into(),
        note: truncate(&note, MAX_NOTE_BYTES).into(),
        action: get("k8s.event.action").unwrap_or_default().into(),
        regarding: ObjectRef {
            kind: kind.into(),
            namespace: namespace.as_str().into(),
            name: name.into(),
            uid: get(&uid_attr).unwrap_or_default().into(),
            api_version: String::new().into(),
            field_path: field_path.into(),
        },
        reporting_controller: get("service.name").or_else(|| Some(scope_name.to_string()).filter(|s| !s.is_empty())).unwrap_or_default().into(),
        reporting_instance: get("service.instance.id").or_else(|| get("host.name")).or_else(|| get("k8s.node.name")).unwrap_or_default().into(),
        count,
        series: count > 1,
        first_seen_us: t_us,
        last_seen_us: t_us,
        event_time_us: Some(t_us),
        created_us: t_us,
        annotations: annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        ..Default::default()
    };
    Ok(Incoming {
        cluster: get("k8s.cluster.name"),
        cluster_uid: get("k8s.cluster.uid"),
        event,
        path,
        cluster_field: format!("resourceLogs[{ri}].resource.attributes[k8s.cluster.name]"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"resourceLogs":[{"resource":{"attributes":[
        {"key":"k8s.cluster.name","value":{"stringValue":"prod"}},
        {"key":"k8s.namespace.name","value":{"stringValue":"pay"}},
        {"key":"k8s.pod.name","value":{"stringValue":"web-1"}},
        {"key":"k8s.deployment.name","value":{"stringValue":"web"}},
        {"key":"k8s.container.name","value":{"stringValue":"app"}},
        {"key":"service.name","value":{"stringValue":"payment-gateway"}}]},
      "scopeLogs":[{"scope":{"name":"app.logger"},"logRecords":[
        {"timeUnixNano":"1735787045000006000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"failover started"},
         "attributes":[{"key":"k8s.event.reason","value":{"stringValue":"FailoverStarted"}},{"key":"attempt","value":{"intValue":"3"}}],
         "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},
        {"observedTimeUnixNano":"1735787046000000000","body":{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}}]}}}]}]}]}"#;

    #[test]
    fn maps_resource_and_record_attributes() {
        let req = decode(JSON.as_bytes(), Encoding::Json).unwrap();
        let inc = to_incoming(&req).unwrap();
        assert_eq!(inc.len(), 2);
        let (a, b) = (&inc[0].event, &inc[1].event);
        assert_eq!(inc[0].cluster.as_deref(), Some("prod"));
        assert_eq!((a.regarding.kind.as_str(), a.regarding.namespace.as_str(), a.regarding.name.as_str()), ("Pod", "pay", "web-1"), "the pod, the most specific");
        assert_eq!(a.regarding.field_path, "spec.containers{app}");
        assert_eq!((a.reason.as_str(), a.event_type.as_str(), a.note.as_str()), ("FailoverStarted", "Warning", "failover started"));
        assert_eq!((a.reporting_controller.as_str(), a.first_seen_us), ("payment-gateway", 1_735_787_045_000_006));
        assert_eq!(a.annotations.get("attempt"), Some("3"));
        assert_eq!(a.annotations.get("otel.trace_id"), Some("5b8efff798038103d269b633813fc60c"));
        assert_eq!((b.reason.as_str(), b.event_type.as_str(), b.note.as_str()), ("ApplicationLog", "Normal", r#"{"a":1}"#));
        assert_eq!(b.first_seen_us, 1_735_787_046_000_000, "observed time when the record has no time");
        // The same request as protobuf maps the same.
        let bytes = prost::Message::encode_to_vec(&req);
        let again = to_incoming(&decode(&bytes, Encoding::Protobuf).unwrap()).unwrap();
        assert_eq!(again[0].event, inc[0].event);
    }

    #[test]
    fn errors_name_the_field() {
        let no_time = JSON.replace(r#""observedTimeUnixNano":"1735787046000000000","#, "");
        let e = to_incoming(&decode(no_time.as_bytes(), Encoding::Json).unwrap()).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field: Some(f), .. } if f == "resourceLogs[0].scopeLogs[0].logRecords[1].timeUnixNano"), "{e:?}");
        let bad = JSON.replace(r#""severityNumber":17"#, r#""severityNumber":"loud""#);
        let e = decode(bad.as_bytes(), Encoding::Json).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field: Some(f), .. } if f.contains("severityNumber")), "{e:?}");
        let nothing = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1"}]}]}]}"#;
        let e = to_incoming(&decode(nothing.as_bytes(), Encoding::Json).unwrap()).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field: Some(f), .. } if f == "resourceLogs[0].resource.attributes"), "{e:?}");
        assert!(decode(b"\xff\xff", Encoding::Protobuf).is_err());
        assert_eq!(Encoding::from_content_type(Some("application/json; charset=utf-8")).unwrap(), Encoding::Json);
        assert!(matches!(Encoding::from_content_type(Some("text/plain")), Err(ApiError::UnsupportedMediaType(_))));
    }
}
