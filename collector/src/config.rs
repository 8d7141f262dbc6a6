//! The collector's configuration: one struct, each field's doc is the user
//! documentation, defaults are named functions, `validate` names the bad field.

use runtime::kafka::{FieldError, KafkaConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which API shape to watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    /// `events.k8s.io/v1` (default; every supported Kubernetes version serves it).
    #[default]
    EventsV1,
    /// `core/v1`, for clusters where events.k8s.io is unavailable.
    CoreV1,
}

/// The cluster's identity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Name people use for the cluster (e.g. `prod-eu-1`). Required.
    pub name: String,
    /// Cluster UID override. Default: the UID of the `kube-system` namespace, read at
    /// start-up, so two clusters that share a name never mix.
    #[serde(default)]
    pub uid: Option<String>,
}

/// Drop events before any expensive work (Avro encoding, Kafka). Every set field
/// must match for the event to be dropped; dropped events are counted in
/// `kevents_collector_events_dropped_total{rule}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRule {
    pub name: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// Lease-based leader election, for running several replicas (HA).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    /// Namespace of the Lease (the collector's own namespace).
    pub namespace: String,
    /// Lease name. Default `kevents-collector`.
    #[serde(default = "default_lease_name")]
    pub lease_name: String,
    /// This replica's identity. Default: `$POD_NAME`, else the host name.
    #[serde(default)]
    pub identity: Option<String>,
    /// How long a lease is valid without renewal, seconds. Default 15 (client-go's).
    #[serde(default = "default_lease_duration")]
    pub lease_duration_secs: u64,
    /// How long the leader keeps trying to renew before it stops publishing,
    /// seconds. Default 10 (client-go's). Must be below `lease_duration_secs`.
    #[serde(default = "default_renew_deadline")]
    pub renew_deadline_secs: u64,
    /// Pause between acquire/renew attempts, seconds. Default 2 (client-go's).
    #[serde(default = "default_retry_period")]
    pub retry_period_secs: u64,
}

fn default_lease_name() -> String {
    "kevents-collector".into()
}
fn default_lease_duration() -> u64 {
    15
}
fn default_renew_deadline() -> u64 {
    10
}
fn default_retry_period() -> u64 {
    2
}

/// Configuration of `kevents collector`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Kubeconfig file. Default: in-cluster config, else `$KUBECONFIG`, else `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Which API shape to watch. Default `events_v1`.
    #[serde(default)]
    pub api: ApiKind,
    /// Namespaces to watch, each with its own watch filtered by the API server.
    /// Empty (default): all namespaces with one watch.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Field selector applied by the API server, e.g. `type=Warning`.
    #[serde(default)]
    pub field_selector: Option<String>,
    /// Label selector applied by the API server.
    #[serde(default)]
    pub label_selector: Option<String>,
    /// Drop rules applied to event bodies before encoding.
    #[serde(default)]
    pub drop: Vec<DropRule>,
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Confluent-compatible schema registry for the Avro schema ids. Unset (default):
    /// the fixed built-in ids, which every kevents stage agrees on.
    #[serde(default)]
    pub schema_registry: Option<runtime::registry::RegistryConfig>,
    /// The raw topic. Default `kevents.raw`.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Create the raw topic with this many partitions when it does not exist
    /// (0: never create; the topic must then be made by an administrator). Default 6.
    #[serde(default = "default_create_partitions")]
    pub create_topic_partitions: i32,
    /// Seconds between heartbeat records (cursor + proof of life). Default 5.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_secs: u64,
    /// Server-side watch timeout, seconds; the collector re-watches after it.
    /// Default 290 (below the API server's 5-minute cap, like client-go's reflector).
    #[serde(default = "default_watch_timeout")]
    pub watch_timeout_secs: u32,
    /// A watch that delivers nothing — no event, no BOOKMARK, no end — for this long is
    /// a silent connection (a wedged proxy, a half-dead API server): the collector drops
    /// it and re-watches from its last resourceVersion, seconds. kube-apiserver sends no
    /// BOOKMARKs on Events (they bypass the watch cache), so a healthy watch of a quiet
    /// cluster is silent until the server ends it at `watch_timeout_secs`: this must be
    /// longer. Default: `watch_timeout_secs` + 30 (320 with the defaults); for a faster
    /// recovery lower both, e.g. `watch_timeout_secs: 60` gives 90.
    #[serde(default)]
    pub watch_idle_timeout_secs: Option<u64>,
    /// `/healthz` fails when Kafka acknowledged nothing (not even a heartbeat) for
    /// this long, or the watch made no progress (event, bookmark, re-watch) for this
    /// long plus `watch_timeout_secs`, seconds. Default 60.
    #[serde(default = "default_stall")]
    pub stall_timeout_secs: u64,
    /// Records sent to Kafka and not yet acknowledged, at most. When reached, the
    /// watch pauses (backpressure). Default 4096. Memory is bounded by
    /// `max_in_flight_bytes`; this bounds librdkafka's per-message bookkeeping.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The in-flight budget in bytes: encoded records (value + key) sent to Kafka and
    /// not yet acknowledged, at most. When reached, the watch pauses until Kafka
    /// acknowledges, so a slow or absent broker costs no more memory than this.
    /// librdkafka's queue (`queue.buffering.max.kbytes`: this plus room for one
    /// maximum-size record) and its batches (`batch.size`: an eighth of this, between
    /// 16 KiB and librdkafka's 1 MB default) are derived from it, and so is the prefetch of
    /// the consumer that reads the cursor back at start. A record larger than the
    /// budget is sent alone. Default 4 MiB (4194304): at 5,000 events/s, about 1.4 s of
    /// traffic (records are ~600 bytes), far more than a healthy broker's acknowledgement
    /// time. At least 65536.
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: usize,
    /// Leader election; unset runs a single active replica without a Lease.
    #[serde(default)]
    pub leader_election: Option<LeaderElectionConfig>,
    /// Ops endpoint (`/healthz`, `/readyz`, `/metrics`). Default 127.0.0.1:9470.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Collector instance name in records. Default: leader identity or host name.
    #[serde(default)]
    pub instance: Option<String>,
}

fn default_topic() -> String {
    schemas::topics::RAW.into()
}
fn default_create_partitions() -> i32 {
    6
}
fn default_heartbeat() -> u64 {
    5
}
fn default_watch_timeout() -> u32 {
    290
}
/// Added to `watch_timeout_secs` for the default idle timeout: the server ends a watch
/// at its timeout, give or take the time to answer; 30 s is generous for that.
const IDLE_GRACE_SECS: u64 = 30;
fn default_stall() -> u64 {
    60
}
fn default_max_in_flight() -> usize {
    4096
}
/// 4 MiB: ~7,000 records of ~600 bytes; with the record cap of 4096 it binds on
/// records larger than ~1 KB (long messages, many labels).
fn default_max_in_flight_bytes() -> usize {
    4 << 20
}
/// The smallest budget `validate` accepts.
const MIN_IN_FLIGHT_BYTES: usize = 64 << 10;
fn default_listen() -> SocketAddr {
    "127.0.0.1:9470".parse().unwrap()
}

impl CollectorConfig {
    /// A config with defaults for `cluster` (used by tests and `kevents simulate`).
    pub fn for_cluster(name: &str) -> Self {
        CollectorConfig {
            cluster: ClusterConfig {
                name: name.into(),
                uid: None,
            },
            kubeconfig: None,
            api: ApiKind::default(),
            namespaces: vec![],
            field_selector: None,
            label_selector: None,
            drop: vec![],
            kafka: KafkaConfig::default(),
            schema_registry: None,
            topic: default_topic(),
            create_topic_partitions: default_create_partitions(),
            heartbeat_interval_secs: default_heartbeat(),
            watch_timeout_secs: default_watch_timeout(),
            watch_idle_timeout_secs: None,
            stall_timeout_secs: default_stall(),
            max_in_flight: default_max_in_flight(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            leader_election: None,
            listen: default_listen(),
            instance: None,
        }
    }

    /// The watch idle timeout in effect (see `watch_idle_timeout_secs`).
    pub fn watch_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.watch_idle_timeout_secs.unwrap_or(self.watch_timeout_secs as u64 + IDLE_GRACE_SECS))
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_secs.max(1))
    }

    /// Check what serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.cluster.name.trim().is_empty() {
            return Err(FieldError::new("cluster.name", "required: the name people use for this cluster"));
        }
        if self.topic.trim().is_empty() {
            return Err(FieldError::new("topic", "must not be empty"));
        }
        if self.max_in_flight == 0 {
            return Err(FieldError::new("max_in_flight", "must be at least 1"));
        }
        if self.max_in_flight_bytes < MIN_IN_FLIGHT_BYTES {
            return Err(FieldError::new("max_in_flight_bytes", "must be at least 65536 (64 KiB)"));
        }
        if self.heartbeat_interval_secs == 0 {
            return Err(FieldError::new("heartbeat_interval_secs", "must be at least 1"));
        }
        if self.stall_timeout_secs <= self.heartbeat_interval_secs {
            return Err(FieldError::new(
                "stall_timeout_secs",
                "must be longer than heartbeat_interval_secs, or health would flap",
            ));
        }
        if self.watch_idle_timeout().as_secs() <= self.watch_timeout_secs as u64 {
            return Err(FieldError::new(
                "watch_idle_timeout_secs",
                "must be longer than watch_timeout_secs: kube-apiserver sends nothing on a quiet Event watch until it ends it",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for ns in &self.namespaces {
            if ns.is_empty() || !seen.insert(ns) {
                return Err(FieldError::new("namespaces", format!("empty or repeated namespace {ns:?}")));
            }
        }
        for (i, r) in self.drop.iter().enumerate() {
            if r.reason.is_none()
                && r.event_type.is_none()
                && r.namespace.is_none()
                && r.component.is_none()
                && r.kind.is_none()
            {
                return Err(FieldError::new(
                    format!("drop[{i}] ({})", r.name),
                    "has no condition and would drop every event",
                ));
            }
        }
        if let Some(le) = &self.leader_election {
            if le.renew_deadline_secs >= le.lease_duration_secs {
                return Err(FieldError::new(
                    "leader_election.renew_deadline_secs",
                    "must be below lease_duration_secs",
                ));
            }
            if le.namespace.is_empty() {
                return Err(FieldError::new("leader_election.namespace", "required"));
            }
        }
        self.kafka.validate("kafka")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_fields() {
        let mut c = CollectorConfig::for_cluster("");
        assert_eq!(c.validate().unwrap_err().field, "cluster.name");
        c.cluster.name = "a".into();
        c.validate().unwrap();
        c.drop.push(DropRule { name: "all".into(), ..Default::default() });
        assert_eq!(c.validate().unwrap_err().field, "drop[0] (all)");
        c.drop.clear();
        c.stall_timeout_secs = 5;
        assert_eq!(c.validate().unwrap_err().field, "stall_timeout_secs");
        c.stall_timeout_secs = 60;
        assert_eq!(c.watch_idle_timeout(), Duration::from_secs(320));
        c.watch_idle_timeout_secs = Some(290);
        assert_eq!(c.validate().unwrap_err().field, "watch_idle_timeout_secs");
        c.watch_timeout_secs = 60;
        c.validate().unwrap();
        c.max_in_flight_bytes = 65535;
        assert_eq!(c.validate().unwrap_err().field, "max_in_flight_bytes");
        c.max_in_flight_bytes = 65536;
        c.validate().unwrap();
    }

    #[test]
    fn yaml_with_unknown_field_is_rejected() {
        let err = serde_norway::from_str::<CollectorConfig>("cluster: {name: a}\ntopik: x\n").unwrap_err();
        assert!(err.to_string().contains("topik"), "{err}");
    }
}
