//! The normalized Kubernetes event: one shape for both API shapes of the same object.
//!
//! The API server stores one Event object and serves it as `core/v1` and as
//! `events.k8s.io/v1`; emitters fill different fields depending on which recorder
//! they use (client-go `tools/record` fills the legacy fields, `tools/events` the new
//! ones). Every stage after the collector works on [`NormalizedEvent`] only, so the
//! mapping between the two shapes lives in exactly one place: [`crate::convert`].
//!
//! Times are microseconds since the Unix epoch (`eventTime` has microsecond
//! precision; the legacy timestamps have seconds).

use serde::{Deserialize, Serialize};
use crate::metadata::Metadata;

/// The string type of an event's fields: kept inline (no heap allocation) up to
/// 24 bytes, which covers most of them (`Warning`, `BackOff`, `kubelet`, `Pod`,
/// `v1`, namespaces, resource versions, field paths, node names). Every event is
/// decoded, processed and dropped once per stage, so its ~17 short fields were
/// ~17 allocations and frees each time; now the uids, names and the note are.
/// It derefs to `&str` and converts from `&str`/`String` with `.into()`.
pub use compact_str::CompactString as Text;

/// Which API shape the collector read the object in. Kept so that a reader can
/// tell whether a missing `series` means "first occurrence" (new shape) or
/// "legacy recorder, look at `count`" (old shape) when debugging counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ApiShape {
    /// `events.k8s.io/v1` Event.
    #[default]
    EventsV1,
    /// `core/v1` Event.
    CoreV1,
}

/// A reference to the object an event is about (`regarding` / `involvedObject`)
/// or a secondary object (`related`). Absent fields are empty strings: Kubernetes
/// itself treats "" and unset alike for these.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ObjectRef {
    pub kind: Text,
    pub namespace: Text,
    pub name: Text,
    pub uid: Text,
    pub api_version: Text,
    /// e.g. `spec.containers{app}`: the kubelet names the container here.
    pub field_path: Text,
}

impl ObjectRef {
    /// `namespace/name` or `name` for cluster-scoped objects: how people write it.
    pub fn display(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One Kubernetes Event as kevents understands it, whichever shape it came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NormalizedEvent {
    /// `metadata.uid` of the Event object. Stable across its updates (repeats).
    pub uid: Text,
    /// Namespace of the Event object (usually the involved object's namespace).
    pub namespace: Text,
    /// `metadata.name`, `<involved-object-name>.<hex timestamp>` by convention.
    pub name: Text,
    /// `metadata.resourceVersion` of this version of the object.
    pub resource_version: Text,
    pub api_shape: ApiShape,
    /// `Normal` or `Warning` (Kubernetes allows only these two).
    pub event_type: Text,
    pub reason: Text,
    /// `note` (events.k8s.io) / `message` (core).
    pub note: Text,
    /// `action` (new shape only; empty for legacy recorders).
    pub action: Text,
    /// `regarding` / `involvedObject`.
    pub regarding: ObjectRef,
    /// `related`, when the emitter sets one (e.g. the scheduler's Node).
    pub related: Option<ObjectRef>,
    /// `reportingController` / `reportingComponent`, falling back to `source.component`.
    pub reporting_controller: Text,
    /// `reportingInstance`, falling back to `source.host`.
    pub reporting_instance: Text,
    /// Total occurrences of this event object so far (≥ 1): `series.count`, else
    /// the legacy `count` / `deprecatedCount`, else 1. The processor turns the
    /// difference between versions into occurrences.
    pub count: i64,
    /// Whether `count` came from `series` (new-style repeats).
    pub series: bool,
    /// First time the event was observed by its emitter.
    pub first_seen_us: i64,
    /// Last time it was observed (`series.lastObservedTime`, `lastTimestamp`, ...).
    pub last_seen_us: i64,
    /// `eventTime` when set (new shape), microseconds.
    pub event_time_us: Option<i64>,
    /// `metadata.creationTimestamp`.
    pub created_us: i64,
    /// Labels of the Event object (rarely set, kept whole).
    pub labels: Metadata,
    /// Annotations of the Event object, except `kubectl.kubernetes.io/*` noise.
    pub annotations: Metadata,
}

impl NormalizedEvent {
    /// The time the event last happened, for age and ordering decisions.
    ///
    /// It is the max of creation and last-seen: exporters that used only one of them
    /// dropped live repeats as "too old" (an Event created an hour ago and repeated
    /// now is current, not stale).
    pub fn effective_time_us(&self) -> i64 {
        self.last_seen_us.max(self.created_us)
    }

    /// Whether the event is a Warning (the only other type is Normal).
    pub fn is_warning(&self) -> bool {
        self.event_type == "Warning"
    }
}

/// The identity of a cluster: the configured name plus the UID of its
/// `kube-system` namespace, so two clusters named alike never mix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ClusterId {
    pub name: Text,
    pub uid: Text,
}

/// Severity decided by the processor. Ordered: a max over events is meaningful.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown severity {s:?} (expected info, warning, error or critical)"))
    }
}
