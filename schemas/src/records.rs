//! The records that travel on Kafka between the stages.
//!
//! - raw topic (collector → processor): [`RawRecord`], either a watch event or a
//!   heartbeat of one cluster. The raw topic is also the collector's cursor: the last
//!   record of a cluster carries the last resourceVersion it published.
//! - result topics (processor → sink): [`ProcessedEvent`], [`Incident`], [`Pattern`],
//!   [`Alert`], [`ClusterHeartbeat`].
//!
//! Each type has an `.avsc` file in `schemas/avro/` that the tests check it against;
//! [`crate::avro`] encodes them. Every output carries a deterministic `id` so that a
//! replay after a crash re-emits the same record and storage keeps it once.

use crate::metadata::Metadata;
use crate::model::{ClusterId, NormalizedEvent, ObjectRef, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the watch said about an object, plus `Relisted` for objects the collector
/// found in a list after a `410 Gone` and had not published before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum WatchKind {
    #[default]
    Added,
    Modified,
    Deleted,
    Relisted,
}

impl WatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchKind::Added => "ADDED",
            WatchKind::Modified => "MODIFIED",
            WatchKind::Deleted => "DELETED",
            WatchKind::Relisted => "RELISTED",
        }
    }
}

/// Which collector wrote a record, and under which leadership term.
///
/// `leader_epoch` is the Lease's `leaseTransitions` when the collector won it (0
/// without leader election). A deposed leader may still flush a few late records;
/// downstream drops records whose epoch is older than the newest seen for the cluster,
/// and dedups the rest by (cluster, uid, resourceVersion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CollectorMeta {
    pub instance: String,
    pub leader_epoch: i64,
}

/// The `instance` prefix that marks a record written by `kevents ingest` (events
/// applications send over HTTP) rather than by a cluster's collector.
///
/// Why a named source and not a leader epoch of its own: the processor keeps one
/// epoch per cluster and drops records older than the newest it saw
/// (`processor::occurrence::accept_epoch`). Ingested events of a cluster share its
/// identity ([`ClusterId`], the uid) and its partition with the collector's records,
/// so that they correlate with them; any epoch they carried would either be dropped
/// behind a collector's term (epoch 0 after leader election ran) or make the
/// collector's records stale (a high one). The ingest stage takes no part in
/// leadership, so its records are exempt from the epoch check ([`Self::is_ingest`])
/// and carry epoch 0, which never raises the collector's cursor
/// (`collector::cursor` takes the max) — nor does their empty
/// `RawRecord::resource_version` move a watch scope's resume point. Host and pod
/// names cannot contain `/`, so no collector's default instance starts with it.
pub const INGEST_INSTANCE_PREFIX: &str = "kevents-ingest/";

impl CollectorMeta {
    /// The meta of a record written by the ingest stage `instance`.
    pub fn ingest(instance: &str) -> Self {
        CollectorMeta { instance: format!("{INGEST_INSTANCE_PREFIX}{instance}"), leader_epoch: 0 }
    }

    /// Whether the record was written by `kevents ingest` (see
    /// [`INGEST_INSTANCE_PREFIX`]): no leadership term applies to it.
    pub fn is_ingest(&self) -> bool {
        self.instance.starts_with(INGEST_INSTANCE_PREFIX)
    }
}

/// A watch event of one Kubernetes Event object.
///
/// The event is boxed, here and in [`ProcessedEvent`], because it is large
/// (~630 bytes) and the processor moves it from the decoded record into its
/// output: a box moves as a pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WatchEvent {
    pub kind: WatchKind,
    pub event: Box<NormalizedEvent>,
}

/// Proof of life and a cursor in quiet periods: the collector writes one every few
/// seconds with the newest resourceVersion it has seen (from a bookmark or an event)
/// and fully published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Heartbeat {
    /// The watch this heartbeat is the cursor of: a namespace, or "" for all.
    pub scope: String,
    pub resource_version: String,
    /// When the collector last saw a bookmark, µs (0 if never).
    pub last_bookmark_us: i64,
    /// Watch events published since the previous heartbeat.
    pub published_since_last: i64,
}

/// One record on the raw topic. Exactly one of `event` / `heartbeat` is set.
/// (Two optional fields rather than an Avro union of records: every Avro tool reads
/// `["null", T]` the same way.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RawRecord {
    pub cluster: ClusterId,
    pub collector: CollectorMeta,
    /// When the collector received it, µs.
    pub observed_us: i64,
    /// resourceVersion the record advances the cursor to.
    pub resource_version: String,
    pub event: Option<WatchEvent>,
    pub heartbeat: Option<Heartbeat>,
}

impl RawRecord {
    /// The Kafka key: the cluster UID, so that one cluster's records stay in one
    /// partition, in order (see the collector's `publish` module for why).
    pub fn key(&self) -> &str {
        &self.cluster.uid
    }
}

/// Where in the raw topic the input of an output record was, and which of that
/// input's outputs (per output topic) it is.
///
/// The processor writes outputs in input order, so per raw partition the pair
/// (offset, seq) only grows; a replay after a crash re-emits pairs at or below the
/// high-water mark. The sink stores the mark with the rows (in the same INSERT) and
/// drops anything at or below it: that is what makes its loading exactly-once even
/// though every stage is only at-least-once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourcePos {
    pub partition: i32,
    pub offset: i64,
    pub seq: i32,
}

impl Default for SourcePos {
    /// Unknown position: records written by tools outside the pipeline.
    fn default() -> Self {
        SourcePos { partition: -1, offset: -1, seq: 0 }
    }
}

/// A classified event version, with the occurrences it adds.
///
/// Category, rule, metadata and labels are shared (`Arc`s) because the processor hands
/// the same values to every repeat of an event (its memo caches hold them):
/// building an output costs a reference count, not a copy of each string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProcessedEvent {
    /// Position of the raw input that produced this record.
    pub source: SourcePos,
    /// Deterministic: hash of (cluster uid, event uid, resourceVersion, kind).
    pub id: String,
    pub cluster: ClusterId,
    pub watch_kind: WatchKind,
    pub observed_us: i64,
    pub leader_epoch: i64,
    pub event: Box<NormalizedEvent>,
    pub category: Arc<str>,
    pub severity: Severity,
    /// Name of the classification rule that decided category and severity.
    pub rule: Arc<str>,
    /// The incident this event belongs to, or its own id when it stands alone.
    pub correlation_id: String,
    /// Occurrences this version adds: 1 for a new event, the count delta for a
    /// repeat, 0 for a re-delivered, relisted-again or deleted version.
    pub occurrences: i64,
    /// Facts pulled out of the message (container, image, exit_code, node, ...).
    pub metadata: Metadata,
    /// Labels set by classification rules.
    pub labels: Arc<BTreeMap<String, String>>,
}

/// Whether an incident or pattern is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Open,
    Resolved,
}

/// The event an incident started from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RootCause {
    pub event_id: String,
    pub event_uid: String,
    pub reason: String,
    pub category: String,
    pub object: ObjectRef,
    pub note: String,
}

/// Related events grouped under a root cause. Each state change is a new version
/// (`version` increases); storage keeps the latest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Incident {
    /// Position of the raw input that produced this record.
    pub source: SourcePos,
    pub id: String,
    pub version: i64,
    pub cluster: ClusterId,
    pub status: Status,
    pub severity: Severity,
    pub root_cause: RootCause,
    /// Name of the correlation rule that linked the effects to the cause.
    pub rule: String,
    pub affected_objects: Vec<ObjectRef>,
    pub reason_counts: BTreeMap<String, i64>,
    pub event_count: i64,
    pub occurrences: i64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub summary: String,
}

/// Where a pattern was seen: one cluster, or the same signature across clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PatternScope {
    #[default]
    Cluster,
    Fleet,
}

/// A recurring kind of event (same reason, kind, namespace and message template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Pattern {
    /// Position of the raw input that produced this record.
    pub source: SourcePos,
    /// Deterministic from scope + key + episode start.
    pub id: String,
    pub version: i64,
    pub scope: PatternScope,
    /// The cluster for cluster patterns; empty name/uid for fleet patterns.
    pub cluster: ClusterId,
    /// Clusters the signature was seen in (one for cluster patterns).
    pub clusters: Vec<String>,
    /// Similarity key: reason|kind|namespace|template.
    pub key: String,
    pub reason: String,
    pub kind: String,
    pub namespace: String,
    /// The message with names, numbers and ids masked.
    pub template: String,
    pub status: Status,
    pub count: i64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub per_minute: f64,
    /// Ids of up to 3 sample events.
    pub samples: Vec<String>,
    /// Start times (µs) of earlier episodes of the same key: recurrence.
    pub previous_episodes: Vec<i64>,
    /// How far the rate is above its baseline, in deviations (0 when not an anomaly).
    pub anomaly_score: f64,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AlertSource {
    #[default]
    Incident,
    Pattern,
    Anomaly,
}

/// An alert raised by a rule on an incident, pattern or anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Alert {
    /// Position of the raw input that produced this record.
    pub source: SourcePos,
    /// Stable: hash of rule + source id; the same alert keeps its id when it resolves.
    pub id: String,
    pub version: i64,
    pub rule: String,
    /// What the alert is about, and its id.
    pub origin: AlertSource,
    pub origin_id: String,
    pub firing: bool,
    pub severity: Severity,
    pub cluster: ClusterId,
    pub namespace: String,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub starts_us: i64,
    /// 0 while firing.
    pub ends_us: i64,
}

/// A cluster's heartbeat as forwarded by the processor, so storage knows which
/// clusters are alive and how far each has been processed (a watermark).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClusterHeartbeat {
    /// Position of the raw input that produced this record.
    pub source: SourcePos,
    pub cluster: ClusterId,
    pub collector: CollectorMeta,
    pub observed_us: i64,
    pub resource_version: String,
    pub last_bookmark_us: i64,
}
