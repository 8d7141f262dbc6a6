//! The Event objects as the API server sends them (list items and watch objects),
//! decoded straight into [`NormalizedEvent`]: only the fields kevents keeps, into
//! inline strings, with everything else (`managedFields`, `ownerReferences`,
//! `finalizers`…) skipped by the parser without allocating.
//!
//! Why not k8s-openapi's types: the collector decodes every version of every Event of
//! its cluster, and decoding through `events::Event` built a full `ObjectMeta`
//! (managed fields with their `fieldsV1` trees as `serde_json::Value`) and ~20 heap
//! strings, only for [`crate::convert`] to copy the few it needs. Here the decode *is*
//! the conversion.
//!
//! The field mapping is the one written down in [`crate::convert`] (same fallbacks,
//! same count and time rules); `tests/event_json.rs` checks that both paths give the
//! same [`NormalizedEvent`] on real objects of both shapes.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

use crate::model::{ApiShape, NormalizedEvent, ObjectRef, Text};

/// An `events.k8s.io/v1` Event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventsV1Json {
    metadata: Meta,
    #[serde(rename = "type", deserialize_with = "nullable")]
    type_: Text,
    #[serde(deserialize_with = "nullable")]
    reason: Text,
    #[serde(deserialize_with = "nullable")]
    note: Text,
    #[serde(deserialize_with = "nullable")]
    action: Text,
    regarding: Option<RefJson>,
    related: Option<RefJson>,
    #[serde(deserialize_with = "nullable")]
    reporting_controller: Text,
    #[serde(deserialize_with = "nullable")]
    reporting_instance: Text,
    deprecated_source: Option<SourceJson>,
    series: Option<SeriesV1>,
    deprecated_count: Option<i32>,
    event_time: Option<Time>,
    deprecated_first_timestamp: Option<Time>,
    deprecated_last_timestamp: Option<Time>,
}

/// A `core/v1` Event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CoreV1Json {
    metadata: Meta,
    #[serde(rename = "type", deserialize_with = "nullable")]
    type_: Text,
    #[serde(deserialize_with = "nullable")]
    reason: Text,
    #[serde(deserialize_with = "nullable")]
    message: Text,
    #[serde(deserialize_with = "nullable")]
    action: Text,
    involved_object: Option<RefJson>,
    related: Option<RefJson>,
    #[serde(deserialize_with = "nullable")]
    reporting_component: Text,
    #[serde(deserialize_with = "nullable")]
    reporting_instance: Text,
    source: Option<SourceJson>,
    series: Option<SeriesCore>,
    count: Option<i32>,
    event_time: Option<Time>,
    first_timestamp: Option<Time>,
    last_timestamp: Option<Time>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    #[serde(deserialize_with = "nullable")]
    name: Text,
    #[serde(deserialize_with = "nullable")]
    namespace: Text,
    #[serde(deserialize_with = "nullable")]
    uid: Text,
    #[serde(deserialize_with = "nullable")]
    resource_version: Text,
    creation_timestamp: Option<Time>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RefJson {
    #[serde(deserialize_with = "nullable")]
    kind: Text,
    #[serde(deserialize_with = "nullable")]
    namespace: Text,
    #[serde(deserialize_with = "nullable")]
    name: Text,
    #[serde(deserialize_with = "nullable")]
    uid: Text,
    #[serde(deserialize_with = "nullable")]
    api_version: Text,
    #[serde(deserialize_with = "nullable")]
    field_path: Text,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SourceJson {
    #[serde(deserialize_with = "nullable")]
    component: Text,
    #[serde(deserialize_with = "nullable")]
    host: Text,
}

/// `events.k8s.io/v1` series: both fields are required by the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeriesV1 {
    count: i32,
    last_observed_time: Time,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SeriesCore {
    count: Option<i32>,
    last_observed_time: Option<Time>,
}

/// An RFC 3339 time (`Time` or `MicroTime`) as µs since the epoch.
#[derive(Debug, Clone, Copy)]
struct Time(i64);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse::<k8s_openapi::jiff::Timestamp>()
            .map(|t| Time(t.as_microsecond()))
            .map_err(|e| serde::de::Error::custom(format!("invalid time {s:?}: {e}")))
    }
}

/// A string field that may be absent or `null` ("" then, as Kubernetes treats both).
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.unwrap_or_default())
}

impl From<RefJson> for ObjectRef {
    fn from(r: RefJson) -> Self {
        ObjectRef { kind: r.kind, namespace: r.namespace, name: r.name, uid: r.uid, api_version: r.api_version, field_path: r.field_path }
    }
}

fn non_empty(t: Text) -> Option<Text> {
    (!t.is_empty()).then_some(t)
}

impl Meta {
    fn into_event(self, api_shape: ApiShape) -> NormalizedEvent {
        NormalizedEvent {
            api_shape,
            uid: self.uid,
            namespace: self.namespace,
            name: self.name,
            resource_version: self.resource_version,
            created_us: self.creation_timestamp.map(|t| t.0).unwrap_or(0),
            labels: self.labels.iter().flatten().collect(),
            annotations: crate::convert::kept_annotations(self.annotations.iter().flatten()),
            ..Default::default()
        }
    }
}

impl From<EventsV1Json> for NormalizedEvent {
    fn from(e: EventsV1Json) -> Self {
        let mut ev = e.metadata.into_event(ApiShape::EventsV1);
        ev.event_type = e.type_;
        ev.reason = e.reason;
        ev.note = e.note;
        ev.action = e.action;
        ev.regarding = e.regarding.map(ObjectRef::from).unwrap_or_default();
        ev.related = e.related.map(ObjectRef::from);
        let (component, host) = e.deprecated_source.map(|s| (s.component, s.host)).unwrap_or_default();
        ev.reporting_controller = non_empty(e.reporting_controller).unwrap_or(component);
        ev.reporting_instance = non_empty(e.reporting_instance).unwrap_or(host);
        (ev.count, ev.series) = crate::convert::count_of(e.series.as_ref().map(|s| s.count), e.deprecated_count);
        ev.event_time_us = e.event_time.map(|t| t.0);
        ev.first_seen_us = ev.event_time_us.or(e.deprecated_first_timestamp.map(|t| t.0)).unwrap_or(ev.created_us);
        ev.last_seen_us = e
            .series
            .map(|s| s.last_observed_time.0)
            .or(e.deprecated_last_timestamp.map(|t| t.0))
            .unwrap_or(ev.first_seen_us);
        ev
    }
}

impl From<CoreV1Json> for NormalizedEvent {
    fn from(e: CoreV1Json) -> Self {
        let mut ev = e.metadata.into_event(ApiShape::CoreV1);
        ev.event_type = e.type_;
        ev.reason = e.reason;
        ev.note = e.message;
        ev.action = e.action;
        ev.regarding = e.involved_object.map(ObjectRef::from).unwrap_or_default();
        ev.related = e.related.map(ObjectRef::from);
        let (component, host) = e.source.map(|s| (s.component, s.host)).unwrap_or_default();
        ev.reporting_controller = non_empty(e.reporting_component).unwrap_or(component);
        ev.reporting_instance = non_empty(e.reporting_instance).unwrap_or(host);
        (ev.count, ev.series) = crate::convert::count_of(e.series.as_ref().and_then(|s| s.count), e.count);
        ev.event_time_us = e.event_time.map(|t| t.0);
        ev.first_seen_us = e.first_timestamp.map(|t| t.0).or(ev.event_time_us).unwrap_or(ev.created_us);
        ev.last_seen_us = e
            .series
            .and_then(|s| s.last_observed_time)
            .map(|t| t.0)
            .or(e.last_timestamp.map(|t| t.0))
            .unwrap_or(ev.first_seen_us);
        ev
    }
}
