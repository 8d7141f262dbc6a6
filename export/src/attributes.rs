//! OTLP attributes from kevents' model: the resource of a record (the cluster and
//! the involved object, in OpenTelemetry's `k8s.*` semantic conventions, so a
//! backend joins kevents' records with the pods' own logs and traces), severity
//! numbers, and the deterministic trace and span ids.
//!
//! Resource keys: `k8s.cluster.name`, `k8s.cluster.uid`, `k8s.namespace.name`, and
//! for the well-known kinds `k8s.<kind>.name` / `k8s.<kind>.uid` (`k8s.pod.name`,
//! `k8s.deployment.name`, `k8s.node.name`…); for every kind also the
//! `k8s.object.*` keys the Collector's `k8s_events` receiver writes (`kind`,
//! `name`, `uid`, `api_version`, `fieldpath`), so dashboards built for that
//! receiver read kevents' records too. The ingest stage reads the same keys
//! back (`ingest::otlp`).

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use schemas::model::{ClusterId, ObjectRef, Severity};

/// `service.name` of every resource: the system that produced the record.
pub const SERVICE_NAME: &str = "kevents";

pub fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }), ..Default::default() }
}

pub fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }), ..Default::default() }
}

/// A string attribute only when the value is not empty (OTLP has no "unset").
pub fn push_nonempty(out: &mut Vec<KeyValue>, key: &str, value: &str) {
    if !value.is_empty() {
        out.push(kv(key, value));
    }
}

/// The semantic-convention key stem of a kind with its own attributes
/// (`k8s.<stem>.name`), `None` for the others.
fn kind_stem(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Pod" => "pod",
        "Node" => "node",
        "Deployment" => "deployment",
        "ReplicaSet" => "replicaset",
        "StatefulSet" => "statefulset",
        "DaemonSet" => "daemonset",
        "Job" => "job",
        "CronJob" => "cronjob",
        _ => return None,
    })
}

/// The resource of a record about `object` in `cluster`; `namespace` is used when
/// the object names none (an event's own namespace).
pub fn resource(cluster: &ClusterId, object: &ObjectRef, namespace: &str) -> Vec<KeyValue> {
    let mut r = vec![kv("service.name", SERVICE_NAME)];
    push_nonempty(&mut r, "k8s.cluster.name", &cluster.name);
    push_nonempty(&mut r, "k8s.cluster.uid", &cluster.uid);
    let ns = if object.namespace.is_empty() { namespace } else { &object.namespace };
    if object.kind == "Namespace" {
        push_nonempty(&mut r, "k8s.namespace.name", &object.name);
    } else {
        push_nonempty(&mut r, "k8s.namespace.name", ns);
    }
    if let Some(stem) = kind_stem(&object.kind) {
        push_nonempty(&mut r, &format!("k8s.{stem}.name"), &object.name);
        push_nonempty(&mut r, &format!("k8s.{stem}.uid"), &object.uid);
    }
    push_nonempty(&mut r, "k8s.object.kind", &object.kind);
    push_nonempty(&mut r, "k8s.object.name", &object.name);
    push_nonempty(&mut r, "k8s.object.uid", &object.uid);
    push_nonempty(&mut r, "k8s.object.api_version", &object.api_version);
    push_nonempty(&mut r, "k8s.object.fieldpath", &object.field_path);
    r
}

/// OTLP's severity number for kevents' severity: the first number of each of the
/// log data model's ranges (INFO 9, WARN 13, ERROR 17, FATAL 21; `critical` is
/// the one that needs someone now, FATAL's meaning).
pub fn severity_number(s: Severity) -> SeverityNumber {
    match s {
        Severity::Info => SeverityNumber::Info,
        Severity::Warning => SeverityNumber::Warn,
        Severity::Error => SeverityNumber::Error,
        Severity::Critical => SeverityNumber::Fatal,
    }
}

/// Microseconds since the epoch → OTLP nanoseconds (0, "unknown", for times
/// before the epoch).
pub fn nanos(us: i64) -> u64 {
    (us.max(0) as u64).saturating_mul(1000)
}

fn hash_bytes(parts: &[&str]) -> [u8; 16] {
    let hex = schemas::ids::stable_id(parts);
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("stable_id is hex");
    }
    // All-zero ids are invalid in OTLP; a hash of zero is as good as impossible,
    // but keep the id valid anyway.
    if out.iter().all(|b| *b == 0) {
        out[15] = 1;
    }
    out
}

/// The trace of an incident: a pure function of its id, so every version, every
/// member and every replay puts its spans in the same trace.
pub fn trace_id(incident_id: &str) -> Vec<u8> {
    hash_bytes(&["kevents.trace", incident_id]).to_vec()
}

/// The root span of an incident's trace.
pub fn incident_span_id(incident_id: &str) -> Vec<u8> {
    hash_bytes(&["kevents.incident.span", incident_id])[..8].to_vec()
}

/// The span of one event version inside its incident's trace.
pub fn event_span_id(event_id: &str) -> Vec<u8> {
    hash_bytes(&["kevents.event.span", event_id])[..8].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(r: &'a [KeyValue], key: &str) -> Option<&'a str> {
        r.iter().find(|k| k.key == key).and_then(|k| match k.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
    }

    #[test]
    fn pod_and_node_resources_use_the_semantic_conventions() {
        let cluster = ClusterId { name: "prod-eu".into(), uid: "c-uid".into() };
        let pod = ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: "api-1".into(), uid: "p-uid".into(), api_version: "v1".into(), field_path: "spec.containers{api}".into() };
        let r = resource(&cluster, &pod, "ignored");
        assert_eq!(get(&r, "k8s.cluster.name"), Some("prod-eu"));
        assert_eq!(get(&r, "k8s.namespace.name"), Some("shop"));
        assert_eq!(get(&r, "k8s.pod.name"), Some("api-1"));
        assert_eq!(get(&r, "k8s.pod.uid"), Some("p-uid"));
        assert_eq!(get(&r, "k8s.object.fieldpath"), Some("spec.containers{api}"));
        assert_eq!(get(&r, "service.name"), Some("kevents"));
        let node = ObjectRef { kind: "Node".into(), name: "n1".into(), ..Default::default() };
        let r = resource(&cluster, &node, "default");
        assert_eq!((get(&r, "k8s.node.name"), get(&r, "k8s.namespace.name"), get(&r, "k8s.node.uid")), (Some("n1"), Some("default"), None));
        let crd = ObjectRef { kind: "Certificate".into(), namespace: "tls".into(), name: "www".into(), ..Default::default() };
        let r = resource(&cluster, &crd, "");
        assert_eq!((get(&r, "k8s.object.kind"), get(&r, "k8s.object.name")), (Some("Certificate"), Some("www")));
        assert!(r.iter().all(|k| !k.key.starts_with("k8s.certificate")));
    }

    #[test]
    fn severities_map_to_the_log_data_model_and_ids_are_stable() {
        let n: Vec<i32> = Severity::ALL.iter().map(|s| severity_number(*s) as i32).collect();
        assert_eq!(n, [9, 13, 17, 21]);
        assert_eq!(trace_id("inc-1"), trace_id("inc-1"));
        assert_ne!(trace_id("inc-1"), trace_id("inc-2"));
        assert_eq!((trace_id("x").len(), incident_span_id("x").len(), event_span_id("x").len()), (16, 8, 8));
        assert_ne!(incident_span_id("x"), event_span_id("x"));
        assert_eq!(nanos(-5), 0);
        assert_eq!(nanos(1_700_000_000_000_000), 1_700_000_000_000_000_000);
    }
}
