//! `POST /v1/events`: Kubernetes Event JSON, as `kubectl create -f` would take it.
//!
//! The body is one `events.k8s.io/v1` Event (`core/v1` Events are read too), an
//! `EventList` (`{"kind": "EventList", "items": [...]}`) or a JSON array of Events.
//! The cluster is named by `?cluster=` (optional when the token may write only one)
//! and its uid, when this ingest does not know it, by `?cluster_uid=`. The fields
//! are normalized exactly as the collector's ([`schemas::convert`]); what the API
//! server would refuse is refused here too, with the field's path:
//! `reason`, `regarding.kind` and `regarding.name` are required, `type` is `Normal`
//! (default) or `Warning`, the note is at most 1 kB, and the event needs a time
//! (`eventTime`, or the deprecated timestamps) because its identity is derived from
//! its content ([`crate::incoming`]).

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use schemas::model::NormalizedEvent;
use serde_json::Value;

use crate::error::ApiError;
use crate::incoming::{Incoming, MAX_NOTE_BYTES};

/// Where the cluster comes from for this endpoint.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Target {
    pub cluster: Option<String>,
    pub cluster_uid: Option<String>,
}

/// The events of a request body, in order.
pub fn parse(body: &[u8], target: &Target) -> Result<Vec<Incoming>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest { field: None, reason: format!("not JSON: {e}") })?;
    let (items, prefix) = match value {
        Value::Array(items) => (items, "items"),
        Value::Object(ref o) if o.get("kind").and_then(Value::as_str) == Some("EventList") => match o.get("items") {
            Some(Value::Array(items)) => (items.clone(), "items"),
            _ => return Err(ApiError::bad("items", "an EventList needs an `items` array")),
        },
        Value::Object(_) => (vec![value], ""),
        _ => return Err(ApiError::BadRequest { field: None, reason: "expected an Event, an EventList or an array of Events".into() }),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let path = if prefix.is_empty() { String::new() } else { format!("{prefix}[{i}]") };
            let event = normalize(item, &path)?;
            Ok(Incoming {
                cluster: target.cluster.clone(),
                cluster_uid: target.cluster_uid.clone(),
                event,
                path: if path.is_empty() { "event".into() } else { path },
                cluster_field: "cluster".into(),
            })
        })
        .collect()
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// One item: its shape by `apiVersion`, deserialized with the path of a bad field,
/// normalized, then checked.
fn normalize(item: Value, path: &str) -> Result<NormalizedEvent, ApiError> {
    let Value::Object(o) = &item else { return Err(ApiError::bad(path_or(path), "an Event is a JSON object")) };
    let api_version = o.get("apiVersion").and_then(Value::as_str).unwrap_or("events.k8s.io/v1").to_string();
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or("Event");
    if kind != "Event" {
        return Err(ApiError::bad(join(path, "kind"), format!("expected Event, got {kind:?}")));
    }
    let text = item.to_string();
    let bad = |e: serde_path_to_error::Error<serde_json::Error>| {
        let at = e.path().to_string();
        ApiError::bad(if at == "." { path_or(path) } else { join(path, &at) }, e.into_inner().to_string())
    };
    let ev = match api_version.as_str() {
        "events.k8s.io/v1" => {
            let e: events::Event = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text)).map_err(bad)?;
            schemas::convert::from_events_v1(&e)
        }
        "v1" => {
            let e: core::Event = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text)).map_err(bad)?;
            schemas::convert::from_core_v1(&e)
        }
        other => return Err(ApiError::bad(join(path, "apiVersion"), format!("expected events.k8s.io/v1 or v1, got {other:?}"))),
    };
    check(ev, path, api_version == "v1")
}

fn path_or(path: &str) -> String {
    if path.is_empty() {
        "event".into()
    } else {
        path.into()
    }
}

/// What the API server would refuse, refused with the field's name.
pub fn check(mut ev: NormalizedEvent, path: &str, core_shape: bool) -> Result<NormalizedEvent, ApiError> {
    let (regarding, note, time) = if core_shape { ("involvedObject", "message", "firstTimestamp") } else { ("regarding", "note", "eventTime") };
    if ev.reason.trim().is_empty() {
        return Err(ApiError::bad(join(path, "reason"), "required"));
    }
    if ev.reason.len() > 128 {
        return Err(ApiError::bad(join(path, "reason"), "at most 128 characters"));
    }
    match ev.event_type.as_str() {
        "" => ev.event_type = "Normal".into(),
        "Normal" | "Warning" => {}
        other => return Err(ApiError::bad(join(path, "type"), format!("Normal or Warning, not {other:?}"))),
    }
    if ev.regarding.kind.trim().is_empty() {
        return Err(ApiError::bad(join(path, &format!("{regarding}.kind")), "required: the kind of object the event is about"));
    }
    if ev.regarding.name.trim().is_empty() {
        return Err(ApiError::bad(join(path, &format!("{regarding}.name")), "required: the object the event is about"));
    }
    if ev.note.len() > MAX_NOTE_BYTES {
        return Err(ApiError::bad(join(path, note), format!("at most {MAX_NOTE_BYTES} bytes")));
    }
    if ev.first_seen_us <= 0 {
        return Err(ApiError::bad(join(path, time), "required: when it happened (the event's identity is derived from it)"));
    }
    if !ev.namespace.is_empty() && !ev.regarding.namespace.is_empty() && ev.namespace != ev.regarding.namespace {
        return Err(ApiError::bad(join(path, "metadata.namespace"), format!("must be the {regarding}'s namespace {:?}", ev.regarding.namespace)));
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"namespace":"pay"},
        "eventTime":"2025-01-02T03:04:05.000006Z","reason":"FailoverStarted","type":"Normal","action":"Failover",
        "reportingController":"deploy-bot","reportingInstance":"runner-1","note":"payment-gateway failover started",
        "regarding":{"kind":"Deployment","namespace":"pay","name":"payment-gateway"}}"#;

    fn field(body: &str) -> String {
        match parse(body.as_bytes(), &Target::default()).unwrap_err() {
            ApiError::BadRequest { field, .. } => field.unwrap_or_default(),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn single_list_and_array() {
        let t = Target { cluster: Some("prod".into()), cluster_uid: None };
        let one = parse(ONE.as_bytes(), &t).unwrap();
        assert_eq!(one.len(), 1);
        let ev = &one[0].event;
        assert_eq!((ev.reason.as_str(), ev.regarding.name.as_str(), ev.reporting_controller.as_str()), ("FailoverStarted", "payment-gateway", "deploy-bot"));
        assert_eq!(ev.first_seen_us, 1_735_787_045_000_006);
        assert_eq!(one[0].cluster.as_deref(), Some("prod"));
        let list = format!(r#"{{"kind":"EventList","items":[{ONE},{ONE}]}}"#);
        assert_eq!(parse(list.as_bytes(), &t).unwrap().len(), 2);
        let arr = format!("[{ONE},{ONE},{ONE}]");
        let three = parse(arr.as_bytes(), &t).unwrap();
        assert_eq!(three[2].path, "items[2]");
        let core = r#"{"apiVersion":"v1","kind":"Event","message":"m","reason":"R","involvedObject":{"kind":"Pod","name":"p"},"firstTimestamp":"2025-01-02T03:04:05Z"}"#;
        assert_eq!(parse(core.as_bytes(), &t).unwrap()[0].event.note, "m");
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(field(&ONE.replace(r#""reason":"FailoverStarted","#, "")), "reason");
        assert_eq!(field(&ONE.replace(r#""type":"Normal""#, r#""type":"Fatal""#)), "type");
        assert_eq!(field(&ONE.replace(r#""name":"payment-gateway""#, r#""name":"""#)), "regarding.name");
        assert_eq!(field(&ONE.replace(r#""eventTime":"2025-01-02T03:04:05.000006Z","#, "")), "eventTime");
        assert_eq!(field(&ONE.replace(r#""eventTime":"2025-01-02T03:04:05.000006Z""#, r#""eventTime":"yesterday""#)), "eventTime");
        assert_eq!(field(&ONE.replace(r#""namespace":"pay"},"#, r#""namespace":"other"},"#)), "metadata.namespace");
        assert_eq!(field(&format!("[{ONE},{}]", ONE.replace(r#""kind":"Deployment","#, r#""kind":7,"#))), "items[1].regarding.kind");
        assert_eq!(field(&ONE.replace("events.k8s.io/v1", "apps/v1")), "apiVersion");
        assert_eq!(field(&ONE.replace("payment-gateway failover started", &"x".repeat(1025))), "note");
        assert!(matches!(parse(b"{", &Target::default()), Err(ApiError::BadRequest { field: None, .. })));
    }
}
