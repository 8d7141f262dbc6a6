//! One row struct per table (RowBinary via the `clickhouse` crate), built from the
//! records of `schemas::records`. Field order and types follow the migrations in
//! `schemas/clickhouse/`; the crate checks them against the table's real columns
//! on the first INSERT, so a drift is an error, not corrupt data.
//!
//! Times: DateTime64(3) travels as i64 milliseconds. Every row carries where it came
//! from (`kafka_partition`, `src_*`), which feeds `sink_progress` (see `progress`).

use clickhouse::Row;
use schemas::model::Text;
use schemas::records::{Alert, ClusterHeartbeat, Incident, Pattern, ProcessedEvent, SourcePos};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Metadata keys stored in typed columns of `events` (and not repeated in its map).
pub const TYPED_METADATA: [&str; 7] = ["container", "image", "node", "volume", "exit_code", "owner_kind", "owner_name"];

fn ms(us: i64) -> i64 {
    us.div_euclid(1000)
}

/// `events`: one row per processed event version.
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
pub struct EventRow {
    pub id: String,
    pub cluster: Text,
    pub cluster_uid: Text,
    pub event_uid: Text,
    pub resource_version: Text,
    pub watch_kind: &'static str,
    pub api_shape: &'static str,
    pub namespace: Text,
    pub kind: Text,
    pub name: Text,
    pub object_uid: Text,
    pub field_path: Text,
    pub event_type: Text,
    pub reason: Text,
    pub category: String,
    pub severity: &'static str,
    pub rule: String,
    pub component: Text,
    pub reporting_instance: Text,
    pub action: Text,
    pub message: Text,
    pub count: i64,
    pub occurrences: i64,
    pub event_time: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub observed_at: i64,
    pub correlation_id: String,
    pub container: String,
    pub image: String,
    pub node: String,
    pub volume: String,
    pub exit_code: Option<i32>,
    pub owner_kind: String,
    pub owner_name: String,
    pub metadata: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub leader_epoch: i64,
    pub kafka_partition: i32,
    pub src_partition: i32,
    pub src_offset: i64,
    pub src_seq: i32,
}

impl EventRow {
    pub fn new(p: ProcessedEvent, kafka_partition: i32) -> Self {
        let e = p.event;
        let mut metadata = p.metadata.to_map();
        let mut take = |k: &str| metadata.remove(k).unwrap_or_default();
        let (container, image, node, volume) = (take("container"), take("image"), take("node"), take("volume"));
        let exit_code_raw = take("exit_code");
        let (owner_kind, owner_name) = (take("owner_kind"), take("owner_name"));
        // A non-numeric exit code keeps its text in the map rather than being lost.
        let exit_code = match exit_code_raw.parse::<i32>() {
            Ok(c) => Some(c),
            Err(_) if exit_code_raw.is_empty() => None,
            Err(_) => {
                metadata.insert("exit_code".into(), exit_code_raw);
                None
            }
        };
        // The time an event version is filed under: when it last happened (max of
        // creation and last-seen: a repeat of an old Event is current), else when it
        // was observed.
        let effective = e.effective_time_us();
        let event_time = if effective > 0 { effective } else { p.observed_us };
        let namespace = if e.regarding.namespace.is_empty() { e.namespace } else { e.regarding.namespace };
        EventRow {
            id: p.id,
            cluster: p.cluster.name,
            cluster_uid: p.cluster.uid,
            event_uid: e.uid,
            resource_version: e.resource_version,
            watch_kind: p.watch_kind.as_str(),
            api_shape: match e.api_shape {
                schemas::ApiShape::EventsV1 => "events.k8s.io/v1",
                schemas::ApiShape::CoreV1 => "v1",
            },
            namespace,
            kind: e.regarding.kind,
            name: e.regarding.name,
            object_uid: e.regarding.uid,
            field_path: e.regarding.field_path,
            event_type: e.event_type,
            reason: e.reason,
            category: p.category.to_string(),
            severity: p.severity.as_str(),
            rule: p.rule.to_string(),
            component: e.reporting_controller,
            reporting_instance: e.reporting_instance,
            action: e.action,
            message: e.note,
            count: e.count,
            occurrences: p.occurrences,
            event_time: ms(event_time),
            first_seen: ms(e.first_seen_us),
            last_seen: ms(e.last_seen_us),
            observed_at: ms(p.observed_us),
            correlation_id: p.correlation_id,
            container,
            image,
            node,
            volume,
            exit_code,
            owner_kind,
            owner_name,
            metadata,
            labels: Arc::unwrap_or_clone(p.labels),
            leader_epoch: p.leader_epoch,
            kafka_partition,
            src_partition: p.source.partition,
            src_offset: p.source.offset,
            src_seq: p.source.seq,
        }
    }
}

/// `incidents`: one row per incident version.
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
pub struct IncidentRow {
    pub id: String,
    pub version: i64,
    pub cluster: Text,
    pub cluster_uid: Text,
    pub status: &'static str,
    pub severity: &'static str,
    pub rule: String,
    pub root_event_id: String,
    pub root_event_uid: String,
    pub root_reason: String,
    pub root_category: String,
    pub root_kind: Text,
    pub root_namespace: Text,
    pub root_name: Text,
    pub root_note: String,
    pub affected_objects: Vec<String>,
    pub reason_counts: BTreeMap<String, i64>,
    pub event_count: i64,
    pub occurrences: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub summary: String,
    pub kafka_partition: i32,
    pub src_partition: i32,
    pub src_offset: i64,
    pub src_seq: i32,
}

fn status(s: schemas::records::Status) -> &'static str {
    match s {
        schemas::records::Status::Open => "open",
        schemas::records::Status::Resolved => "resolved",
    }
}

impl IncidentRow {
    pub fn new(i: Incident, kafka_partition: i32) -> Self {
        let rc = i.root_cause;
        IncidentRow {
            id: i.id,
            version: i.version,
            cluster: i.cluster.name,
            cluster_uid: i.cluster.uid,
            status: status(i.status),
            severity: i.severity.as_str(),
            rule: i.rule,
            root_event_id: rc.event_id,
            root_event_uid: rc.event_uid,
            root_reason: rc.reason,
            root_category: rc.category,
            root_kind: rc.object.kind,
            root_namespace: rc.object.namespace,
            root_name: rc.object.name,
            root_note: rc.note,
            affected_objects: i.affected_objects.iter().map(|o| o.display()).collect(),
            reason_counts: i.reason_counts,
            event_count: i.event_count,
            occurrences: i.occurrences,
            first_seen: ms(i.first_seen_us),
            last_seen: ms(i.last_seen_us),
            summary: i.summary,
            kafka_partition,
            src_partition: i.source.partition,
            src_offset: i.source.offset,
            src_seq: i.source.seq,
        }
    }
}

/// `patterns`: one row per pattern version.
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
pub struct PatternRow {
    pub id: String,
    pub version: i64,
    pub scope: &'static str,
    pub cluster: Text,
    pub cluster_uid: Text,
    pub clusters: Vec<String>,
    pub key: String,
    pub reason: String,
    pub kind: String,
    pub namespace: String,
    pub template: String,
    pub status: &'static str,
    pub count: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub per_minute: f64,
    pub samples: Vec<String>,
    pub previous_episodes: Vec<i64>,
    pub anomaly_score: f64,
    pub kafka_partition: i32,
    pub src_partition: i32,
    pub src_offset: i64,
    pub src_seq: i32,
}

impl PatternRow {
    pub fn new(p: Pattern, kafka_partition: i32) -> Self {
        PatternRow {
            id: p.id,
            version: p.version,
            scope: match p.scope {
                schemas::records::PatternScope::Cluster => "cluster",
                schemas::records::PatternScope::Fleet => "fleet",
            },
            cluster: p.cluster.name,
            cluster_uid: p.cluster.uid,
            clusters: p.clusters,
            key: p.key,
            reason: p.reason,
            kind: p.kind,
            namespace: p.namespace,
            template: p.template,
            status: status(p.status),
            count: p.count,
            first_seen: ms(p.first_seen_us),
            last_seen: ms(p.last_seen_us),
            per_minute: p.per_minute,
            samples: p.samples,
            previous_episodes: p.previous_episodes.into_iter().map(ms).collect(),
            anomaly_score: p.anomaly_score,
            kafka_partition,
            src_partition: p.source.partition,
            src_offset: p.source.offset,
            src_seq: p.source.seq,
        }
    }
}

/// `alerts`: one row per alert version.
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub version: i64,
    pub rule: String,
    pub origin: &'static str,
    pub origin_id: String,
    pub firing: bool,
    pub severity: &'static str,
    pub cluster: Text,
    pub cluster_uid: Text,
    pub namespace: String,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub kafka_partition: i32,
    pub src_partition: i32,
    pub src_offset: i64,
    pub src_seq: i32,
}

impl AlertRow {
    pub fn new(a: Alert, kafka_partition: i32) -> Self {
        AlertRow {
            id: a.id,
            version: a.version,
            rule: a.rule,
            origin: match a.origin {
                schemas::records::AlertSource::Incident => "incident",
                schemas::records::AlertSource::Pattern => "pattern",
                schemas::records::AlertSource::Anomaly => "anomaly",
            },
            origin_id: a.origin_id,
            firing: a.firing,
            severity: a.severity.as_str(),
            cluster: a.cluster.name,
            cluster_uid: a.cluster.uid,
            namespace: a.namespace,
            summary: a.summary,
            labels: a.labels,
            starts_at: ms(a.starts_us),
            ends_at: ms(a.ends_us),
            kafka_partition,
            src_partition: a.source.partition,
            src_offset: a.source.offset,
            src_seq: a.source.seq,
        }
    }
}

/// `cluster_heartbeats`: one row per forwarded heartbeat.
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
pub struct HeartbeatRow {
    pub cluster: Text,
    pub cluster_uid: Text,
    pub collector_instance: String,
    pub leader_epoch: i64,
    pub observed_at: i64,
    pub resource_version: String,
    pub last_bookmark: i64,
    pub kafka_partition: i32,
    pub src_partition: i32,
    pub src_offset: i64,
    pub src_seq: i32,
}

impl HeartbeatRow {
    pub fn new(h: ClusterHeartbeat, kafka_partition: i32) -> Self {
        HeartbeatRow {
            cluster: h.cluster.name,
            cluster_uid: h.cluster.uid,
            collector_instance: h.collector.instance,
            leader_epoch: h.collector.leader_epoch,
            observed_at: ms(h.observed_us),
            resource_version: h.resource_version,
            last_bookmark: ms(h.last_bookmark_us),
            kafka_partition,
            src_partition: h.source.partition,
            src_offset: h.source.offset,
            src_seq: h.source.seq,
        }
    }
}

/// The position of a row's input in the raw topic and the Kafka partition it was
/// read from (what `sink_progress` tracks).
pub trait Positioned {
    fn source(&self) -> SourcePos;
    fn kafka_partition(&self) -> i32;
}

macro_rules! positioned {
    ($($t:ty),*) => {$(
        impl Positioned for $t {
            fn source(&self) -> SourcePos {
                SourcePos { partition: self.src_partition, offset: self.src_offset, seq: self.src_seq }
            }
            fn kafka_partition(&self) -> i32 {
                self.kafka_partition
            }
        }
    )*};
}
positioned!(EventRow, IncidentRow, PatternRow, AlertRow, HeartbeatRow);

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::records::SourcePos;

    #[test]
    fn typed_metadata_moves_to_columns_and_the_rest_stays_in_the_map() {
        let mut p = ProcessedEvent {
            source: SourcePos { partition: 2, offset: 10, seq: 1 },
            id: "x".into(),
            observed_us: 5_000_000,
            ..Default::default()
        };
        p.event.regarding.namespace = "shop".into();
        p.event.namespace = "other".into();
        p.event.last_seen_us = 7_000_999;
        p.metadata = [("container", "web"), ("exit_code", "137"), ("signal", "SIGKILL"), ("owner_name", "api")].into_iter().collect();
        let r = EventRow::new(p, 4);
        assert_eq!((r.container.as_str(), r.exit_code, r.owner_name.as_str()), ("web", Some(137), "api"));
        assert_eq!(r.metadata.len(), 1, "{:?}", r.metadata);
        assert_eq!(r.metadata["signal"], "SIGKILL");
        assert_eq!(r.namespace, "shop");
        assert_eq!(r.event_time, 7_000, "last-seen wins over observed, in ms");
        assert_eq!(r.source(), SourcePos { partition: 2, offset: 10, seq: 1 });
        assert_eq!(r.kafka_partition, 4);
    }

    #[test]
    fn unknown_times_fall_back_to_observed_and_odd_exit_codes_are_kept() {
        let mut p = ProcessedEvent { observed_us: 3_000_000, ..Default::default() };
        p.metadata = [("exit_code", "unknown")].into_iter().collect();
        let r = EventRow::new(p, 0);
        assert_eq!(r.event_time, 3_000);
        assert_eq!(r.exit_code, None);
        assert_eq!(r.metadata["exit_code"], "unknown");
        assert_eq!(r.source(), SourcePos::default());
    }
}
