//! The two API shapes of one stored Event: `core/v1` and `events.k8s.io/v1`.
//!
//! The store keeps `core/v1` Events (what etcd holds for both groups). This module converts
//! to `events.k8s.io/v1` the way the real apiserver does (kubernetes
//! `pkg/apis/events/v1/conversion.go`: involvedObject→regarding, message→note,
//! count→deprecatedCount, firstTimestamp→deprecatedFirstTimestamp,
//! lastTimestamp→deprecatedLastTimestamp, source→deprecatedSource,
//! reportingComponent→reportingController; series, eventTime, action, related, reason, type,
//! reportingInstance copied), and renders the JSON bytes that lists and watches share.

use bytes::{BufMut, Bytes, BytesMut};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

/// Which served shape a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `/api/v1/.../events`, kind `Event`, apiVersion `v1`.
    Core,
    /// `/apis/events.k8s.io/v1/.../events`, kind `Event`, apiVersion `events.k8s.io/v1`.
    EventsV1,
}

impl Shape {
    /// The `apiVersion` of objects in this shape.
    pub fn api_version(self) -> &'static str {
        match self {
            Shape::Core => "v1",
            Shape::EventsV1 => "events.k8s.io/v1",
        }
    }

    /// The API group (empty for core), as used in `Status.details.group`.
    pub fn group(self) -> &'static str {
        match self {
            Shape::Core => "",
            Shape::EventsV1 => "events.k8s.io",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Shape::Core => 0,
            Shape::EventsV1 => 1,
        }
    }
}

/// Converts a stored core/v1 Event to its events.k8s.io/v1 form.
pub fn to_events_v1(ev: &core::Event) -> events::Event {
    events::Event {
        action: ev.action.clone(),
        deprecated_count: ev.count,
        deprecated_first_timestamp: ev.first_timestamp.clone(),
        deprecated_last_timestamp: ev.last_timestamp.clone(),
        // Go's struct fields are never omitted, so the real server always sends an object.
        deprecated_source: Some(ev.source.clone().unwrap_or_default()),
        event_time: ev.event_time.clone(),
        metadata: ev.metadata.clone(),
        note: ev.message.clone(),
        reason: ev.reason.clone(),
        regarding: Some(ev.involved_object.clone()),
        related: ev.related.clone(),
        reporting_controller: ev.reporting_component.clone(),
        reporting_instance: ev.reporting_instance.clone(),
        series: ev.series.as_ref().map(|s| events::EventSeries {
            count: s.count.unwrap_or_default(),
            last_observed_time: s
                .last_observed_time
                .clone()
                .or_else(|| ev.event_time.clone())
                .unwrap_or(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
        }),
        type_: ev.type_.clone(),
    }
}

/// Converts an events.k8s.io/v1 Event to the stored core/v1 form (the inverse of
/// [`to_events_v1`]), so that producers written against the new API can feed the store.
pub fn from_events_v1(ev: &events::Event) -> core::Event {
    core::Event {
        action: ev.action.clone(),
        count: ev.deprecated_count,
        event_time: ev.event_time.clone(),
        first_timestamp: ev.deprecated_first_timestamp.clone(),
        involved_object: ev.regarding.clone().unwrap_or_default(),
        last_timestamp: ev.deprecated_last_timestamp.clone(),
        message: ev.note.clone(),
        metadata: ev.metadata.clone(),
        reason: ev.reason.clone(),
        related: ev.related.clone(),
        reporting_component: ev.reporting_controller.clone(),
        reporting_instance: ev.reporting_instance.clone(),
        series: ev.series.as_ref().map(|s| core::EventSeries {
            count: Some(s.count),
            last_observed_time: Some(s.last_observed_time.clone()),
        }),
        source: ev.deprecated_source.clone(),
        type_: ev.type_.clone(),
    }
}

/// Fills the fields the real server always sends for a core Event (Go strings and structs
/// without `omitempty`): `source: {}`, `reportingComponent: ""`, `reportingInstance: ""`.
pub(crate) fn normalize(ev: &mut core::Event) {
    if ev.source.is_none() {
        ev.source = Some(Default::default());
    }
    if ev.reporting_component.is_none() {
        ev.reporting_component = Some(String::new());
    }
    if ev.reporting_instance.is_none() {
        ev.reporting_instance = Some(String::new());
    }
}

/// The full JSON object (with `apiVersion`/`kind`) of an Event in a shape.
pub(crate) fn object_json(ev: &core::Event, shape: Shape) -> Bytes {
    let v = match shape {
        Shape::Core => serde_json::to_vec(ev),
        Shape::EventsV1 => serde_json::to_vec(&to_events_v1(ev)),
    };
    Bytes::from(v.expect("an Event always serializes"))
}

/// The JSON object as a list item. Typed lists of the real server carry no
/// `apiVersion`/`kind` on their items, so a client that relies on them fails here as it
/// would against a cluster. k8s-openapi writes both keys first, so they are cut as a prefix.
pub(crate) fn list_item_json(object: &Bytes, shape: Shape) -> Bytes {
    let prefix = format!(
        r#"{{"apiVersion":"{}","kind":"Event","#,
        shape.api_version()
    );
    if object.starts_with(prefix.as_bytes()) {
        let mut out = BytesMut::with_capacity(object.len() - prefix.len() + 1);
        out.put_u8(b'{');
        out.put_slice(&object[prefix.len()..]);
        out.freeze()
    } else {
        // Not the expected layout: strip through a generic value (slow, but correct).
        let mut v: serde_json::Value = serde_json::from_slice(object).expect("own JSON");
        if let Some(m) = v.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        Bytes::from(serde_json::to_vec(&v).expect("value serializes"))
    }
}

/// The type word of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchType {
    Added,
    Modified,
    Deleted,
}

impl WatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchType::Added => "ADDED",
            WatchType::Modified => "MODIFIED",
            WatchType::Deleted => "DELETED",
        }
    }
}

/// One watch line: `{"type":"…","object":{…}}\n`.
pub(crate) fn watch_line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + kind.len() + 24);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}

/// A BOOKMARK line: only apiVersion/kind and `metadata.resourceVersion` (plus the
/// `k8s.io/initial-events-end` annotation that ends a streaming list).
pub(crate) fn bookmark_line(shape: Shape, rv: u64, initial_events_end: bool) -> Bytes {
    let annotations = if initial_events_end {
        r#","annotations":{"k8s.io/initial-events-end":"true"}"#
    } else {
        ""
    };
    let object = format!(
        r#"{{"kind":"Event","apiVersion":"{}","metadata":{{"resourceVersion":"{rv}","creationTimestamp":null{annotations}}}}}"#,
        shape.api_version()
    );
    watch_line("BOOKMARK", object.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn sample() -> core::Event {
        let t = "2025-01-02T03:04:05Z".parse().unwrap();
        core::Event {
            metadata: ObjectMeta {
                name: Some("p.1".into()),
                namespace: Some("ns".into()),
                resource_version: Some("7".into()),
                ..Default::default()
            },
            involved_object: core::ObjectReference {
                kind: Some("Pod".into()),
                name: Some("p".into()),
                ..Default::default()
            },
            message: Some("Back-off restarting".into()),
            reason: Some("BackOff".into()),
            count: Some(4),
            first_timestamp: Some(Time(t)),
            last_timestamp: Some(Time(t)),
            source: Some(core::EventSource {
                component: Some("kubelet".into()),
                host: Some("n1".into()),
            }),
            reporting_component: Some("kubelet".into()),
            type_: Some("Warning".into()),
            series: Some(core::EventSeries {
                count: Some(3),
                last_observed_time: Some(MicroTime(t)),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn conversion_maps_fields_like_the_apiserver() {
        let ev = sample();
        let v1 = to_events_v1(&ev);
        assert_eq!(v1.note.as_deref(), Some("Back-off restarting"));
        assert_eq!(v1.regarding.as_ref().unwrap().name.as_deref(), Some("p"));
        assert_eq!(v1.deprecated_count, Some(4));
        assert_eq!(v1.series.as_ref().unwrap().count, 3);
        assert_eq!(v1.reporting_controller.as_deref(), Some("kubelet"));
        assert_eq!(
            v1.deprecated_source.as_ref().unwrap().host.as_deref(),
            Some("n1")
        );
        assert_eq!(from_events_v1(&v1), ev);
    }

    #[test]
    fn list_items_lose_type_meta() {
        let ev = sample();
        for shape in [Shape::Core, Shape::EventsV1] {
            let obj = object_json(&ev, shape);
            let item = list_item_json(&obj, shape);
            let v: serde_json::Value = serde_json::from_slice(&item).unwrap();
            assert!(v.get("kind").is_none() && v.get("apiVersion").is_none());
            assert_eq!(v["metadata"]["name"], "p.1");
        }
    }

    #[test]
    fn bookmark_has_only_rv() {
        let line = bookmark_line(Shape::EventsV1, 42, true);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["type"], "BOOKMARK");
        assert_eq!(v["object"]["metadata"]["resourceVersion"], "42");
        assert_eq!(v["object"]["apiVersion"], "events.k8s.io/v1");
        assert_eq!(
            v["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
    }
}
