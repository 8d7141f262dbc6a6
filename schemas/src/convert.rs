//! Both Kubernetes Event shapes → [`NormalizedEvent`]. The field mapping, written
//! down once (it follows the API server's own conversion,
//! `pkg/apis/events/v1/conversion.go`):
//!
//! | normalized            | events.k8s.io/v1                                  | core/v1                                  |
//! |-----------------------|---------------------------------------------------|------------------------------------------|
//! | regarding             | regarding                                         | involvedObject                           |
//! | note                  | note                                              | message                                  |
//! | reporting_controller  | reportingController, else deprecatedSource.component | reportingComponent, else source.component |
//! | reporting_instance    | reportingInstance, else deprecatedSource.host     | reportingInstance, else source.host      |
//! | count                 | series.count, else deprecatedCount, else 1        | series.count, else count, else 1         |
//! | first_seen            | eventTime, else deprecatedFirstTimestamp, else creation | firstTimestamp, else eventTime, else creation |
//! | last_seen             | series.lastObservedTime, else deprecatedLastTimestamp, else first_seen | series.lastObservedTime, else lastTimestamp, else first_seen |
//! | event_time            | eventTime                                         | eventTime                                |
//! | action, related, type, reason | same names                                | same names                               |
//!
//! `count` is the object's running total; a version's occurrences are the delta to
//! the previous version the processor saw (the API server replaces an Event object on
//! each repeat and bumps its count or series count; the version itself carries no delta).

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::event_json::{CoreV1Json, EventsV1Json};
use crate::model::{ApiShape, NormalizedEvent, ObjectRef, Text};

/// Annotation prefixes that carry no meaning for event analysis.
const NOISY_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/"];

fn object_ref(r: &core::ObjectReference) -> ObjectRef {
    ObjectRef {
        kind: text(&r.kind),
        namespace: text(&r.namespace),
        name: text(&r.name),
        uid: text(&r.uid),
        api_version: text(&r.api_version),
        field_path: text(&r.field_path),
    }
}

/// An optional API string as an event field ("" when unset).
fn text(s: &Option<String>) -> Text {
    s.as_deref().unwrap_or_default().into()
}

fn micros(ts: &k8s_openapi::jiff::Timestamp) -> i64 {
    ts.as_microsecond()
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|v| !v.is_empty())
}

/// Count from the fields an emitter filled: the series wins, then the legacy count.
pub(crate) fn count_of(series: Option<i32>, legacy: Option<i32>) -> (i64, bool) {
    match (series, legacy) {
        (Some(c), _) if c > 0 => (c as i64, true),
        (_, Some(c)) if c > 0 => (c as i64, false),
        _ => (1, false),
    }
}

fn meta_fields(meta: &ObjectMeta, ev: &mut NormalizedEvent) {
    ev.uid = text(&meta.uid);
    ev.namespace = text(&meta.namespace);
    ev.name = text(&meta.name);
    ev.resource_version = text(&meta.resource_version);
    ev.created_us = meta.creation_timestamp.as_ref().map(|t| micros(&t.0)).unwrap_or(0);
    ev.labels = meta.labels.iter().flatten().collect();
    ev.annotations = kept_annotations(meta.annotations.iter().flatten());
}

/// The annotations kept: all but the noisy ones.
pub(crate) fn kept_annotations<'a>(annotations: impl Iterator<Item = (&'a String, &'a String)>) -> crate::metadata::Metadata {
    annotations.filter(|(k, _)| !NOISY_ANNOTATIONS.iter().any(|p| k.starts_with(p))).collect()
}

/// Normalize an `events.k8s.io/v1` Event.
pub fn from_events_v1(e: &events::Event) -> NormalizedEvent {
    let mut ev = NormalizedEvent {
        api_shape: ApiShape::EventsV1,
        ..Default::default()
    };
    meta_fields(&e.metadata, &mut ev);
    ev.event_type = text(&e.type_);
    ev.reason = text(&e.reason);
    ev.note = text(&e.note);
    ev.action = text(&e.action);
    ev.regarding = e.regarding.as_ref().map(object_ref).unwrap_or_default();
    ev.related = e.related.as_ref().map(object_ref);
    let source = e.deprecated_source.as_ref();
    ev.reporting_controller = non_empty(&e.reporting_controller)
        .or_else(|| source.and_then(|s| non_empty(&s.component)))
        .map(Text::from)
        .unwrap_or_default();
    ev.reporting_instance = non_empty(&e.reporting_instance)
        .or_else(|| source.and_then(|s| non_empty(&s.host)))
        .map(Text::from)
        .unwrap_or_default();
    (ev.count, ev.series) = count_of(e.series.as_ref().map(|s| s.count), e.deprecated_count);
    ev.event_time_us = e.event_time.as_ref().map(|t| micros(&t.0));
    ev.first_seen_us = ev
        .event_time_us
        .or_else(|| e.deprecated_first_timestamp.as_ref().map(|t| micros(&t.0)))
        .unwrap_or(ev.created_us);
    ev.last_seen_us = e
        .series
        .as_ref()
        .map(|s| micros(&s.last_observed_time.0))
        .or_else(|| e.deprecated_last_timestamp.as_ref().map(|t| micros(&t.0)))
        .unwrap_or(ev.first_seen_us);
    ev
}

/// Normalize a `core/v1` Event.
pub fn from_core_v1(e: &core::Event) -> NormalizedEvent {
    let mut ev = NormalizedEvent {
        api_shape: ApiShape::CoreV1,
        ..Default::default()
    };
    meta_fields(&e.metadata, &mut ev);
    ev.event_type = text(&e.type_);
    ev.reason = text(&e.reason);
    ev.note = text(&e.message);
    ev.action = text(&e.action);
    ev.regarding = object_ref(&e.involved_object);
    ev.related = e.related.as_ref().map(object_ref);
    let source = e.source.as_ref();
    ev.reporting_controller = non_empty(&e.reporting_component)
        .or_else(|| source.and_then(|s| non_empty(&s.component)))
        .map(Text::from)
        .unwrap_or_default();
    ev.reporting_instance = non_empty(&e.reporting_instance)
        .or_else(|| source.and_then(|s| non_empty(&s.host)))
        .map(Text::from)
        .unwrap_or_default();
    (ev.count, ev.series) = count_of(e.series.as_ref().and_then(|s| s.count), e.count);
    ev.event_time_us = e.event_time.as_ref().map(|t| micros(&t.0));
    ev.first_seen_us = e
        .first_timestamp
        .as_ref()
        .map(|t| micros(&t.0))
        .or(ev.event_time_us)
        .unwrap_or(ev.created_us);
    ev.last_seen_us = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| micros(&t.0))
        .or_else(|| e.last_timestamp.as_ref().map(|t| micros(&t.0)))
        .unwrap_or(ev.first_seen_us);
    ev
}

/// Why a JSON object could not be read as an Event.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("item {index}: not an Event: apiVersion {api_version:?}, kind {kind:?}")]
    NotAnEvent {
        index: usize,
        api_version: String,
        kind: String,
    },
    #[error("item {index} ({name}): {source}")]
    Invalid {
        index: usize,
        name: String,
        source: serde_json::Error,
    },
}

/// Normalize one JSON object of either shape, told apart by `apiVersion`
/// (`events.k8s.io/v1` or `v1`), through [`crate::event_json`] as the collector
/// does. `index` only labels errors.
pub fn from_json(index: usize, value: serde_json::Value) -> Result<NormalizedEvent, ConvertError> {
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("Event").to_string();
    let name = value
        .pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .unwrap_or("<unnamed>")
        .to_string();
    let invalid = |source| ConvertError::Invalid {
        index,
        name: name.clone(),
        source,
    };
    match (api_version.as_str(), kind.as_str()) {
        ("events.k8s.io/v1", "Event") => serde_json::from_value::<EventsV1Json>(value)
            .map(NormalizedEvent::from)
            .map_err(invalid),
        ("v1", "Event") | ("", "Event") => serde_json::from_value::<CoreV1Json>(value)
            .map(NormalizedEvent::from)
            .map_err(invalid),
        _ => Err(ConvertError::NotAnEvent {
            index,
            api_version,
            kind,
        }),
    }
}
