//! The processor's configuration: one struct, each field's doc is the user
//! documentation, defaults are named functions, `validate` names the bad field.

use runtime::kafka::{FieldError, KafkaConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The topics the processor reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Input: the collector's raw topic. Default `kevents.raw`.
    #[serde(default = "default_raw")]
    pub raw: String,
    /// Classified events (`ProcessedEvent`), keyed by cluster UID. Default `kevents.processed`.
    #[serde(default = "default_processed")]
    pub processed: String,
    /// Cluster heartbeats (`ClusterHeartbeat`), keyed by cluster UID. Default `kevents.heartbeats`.
    #[serde(default = "default_heartbeats")]
    pub heartbeats: String,
    /// Dead letters: raw records that cannot be decoded, with the original bytes and
    /// `kevents.dlq.*` headers saying why and where from. Default `kevents.dlq`.
    #[serde(default = "default_dlq")]
    pub dlq: String,
    /// Incident versions (`Incident`), keyed by cluster UID. Default `kevents.incidents`.
    #[serde(default = "default_incidents")]
    pub incidents: String,
    /// Pattern versions (`Pattern`), keyed by cluster UID. Default `kevents.patterns`.
    #[serde(default = "default_patterns")]
    pub patterns: String,
    /// Alert versions (`Alert`), keyed by cluster UID; the notifier reads them.
    /// Default `kevents.alerts`.
    #[serde(default = "default_alerts")]
    pub alerts: String,
}

fn default_raw() -> String {
    schemas::topics::RAW.into()
}
fn default_processed() -> String {
    schemas::topics::PROCESSED.into()
}
fn default_heartbeats() -> String {
    schemas::topics::HEARTBEATS.into()
}
fn default_dlq() -> String {
    schemas::topics::DLQ.into()
}
fn default_incidents() -> String {
    schemas::topics::INCIDENTS.into()
}
fn default_patterns() -> String {
    schemas::topics::PATTERNS.into()
}
fn default_alerts() -> String {
    schemas::topics::ALERTS.into()
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            raw: default_raw(),
            processed: default_processed(),
            heartbeats: default_heartbeats(),
            dlq: default_dlq(),
            incidents: default_incidents(),
            patterns: default_patterns(),
            alerts: default_alerts(),
        }
    }
}

/// Configuration of `kevents processor`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Confluent-compatible schema registry for the Avro schema ids. Unset (default):
    /// the fixed built-in ids, which every kevents stage agrees on.
    #[serde(default)]
    pub schema_registry: Option<runtime::registry::RegistryConfig>,
    #[serde(default)]
    pub topics: TopicsConfig,
    /// Consumer group id; every member of one processor deployment uses the same.
    /// Default `kevents-processor`.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Create the output topics (processed, heartbeats, dlq) with this many
    /// partitions when they do not exist (0: never; an administrator makes them).
    /// Default 6.
    #[serde(default = "default_create_partitions")]
    pub create_topic_partitions: i32,
    /// Users' classification rule files, applied before the built-in rules (earlier
    /// files win). See `docs/categories.md`.
    #[serde(default)]
    pub rules_files: Vec<PathBuf>,
    /// Users' metadata extractor files, run before the built-in extractors.
    #[serde(default)]
    pub metadata_files: Vec<PathBuf>,
    /// Correlation into incidents: rule files and state limits.
    #[serde(default)]
    pub correlation: crate::correlate::CorrelationConfig,
    /// Pattern and anomaly detection: thresholds, hysteresis, limits.
    #[serde(default)]
    pub patterns: crate::patterns::PatternConfig,
    /// How long an event object's occurrence state is kept after its last update,
    /// seconds, measured in record time (the collector's `observed_us`), never the
    /// wall clock, so every member evicts identically. Kubernetes deletes an Event
    /// 1 h after its last update, so an object older than that never repeats.
    /// It is also how far back a new owner of a partition replays to rebuild
    /// state. Default 7200 (2 h).
    #[serde(default = "default_horizon")]
    pub state_horizon_secs: u64,
    /// Hard cap on occurrence entries per raw partition; beyond it the oldest are
    /// evicted (counted in `kevents_processor_state_evictions_total{cause="cap"}`).
    /// Default 1,000,000 (about 40 MB).
    #[serde(default = "default_max_entries")]
    pub max_state_entries: usize,
    /// Outputs sent and not yet acknowledged, per raw partition. When reached, the
    /// partition's worker waits (backpressure). Default 8192.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// On revoke or shutdown: how long to wait for in-flight outputs before
    /// committing, seconds. Must be shorter than the transaction timeout. Default 5.
    #[serde(default = "default_drain")]
    pub drain_timeout_secs: u64,
    /// How often the member commits its transaction (the outputs of the records it
    /// processed and their raw offsets together), milliseconds. Outputs become
    /// visible to `read_committed` readers (the sink, the notifiers) at a commit,
    /// so this adds to the end-to-end latency; each commit costs a few round trips
    /// and briefly holds the workers. Default 100 (Kafka Streams' exactly-once default).
    #[serde(default = "default_commit_interval")]
    pub commit_interval_ms: u64,
    /// `transaction.timeout.ms`: a transaction left open longer is aborted by the
    /// broker. It is also how long the output partitions stay blocked for
    /// `read_committed` readers after a member dies mid-transaction (unless it comes
    /// back with the same `transactional_id`, which aborts at once). Default 15000.
    #[serde(default = "default_transaction_timeout")]
    pub transaction_timeout_ms: u64,
    /// The member's `transactional.id`. Default `<group_id>-<host name>-<pid>-<n>`:
    /// stable across restarts of a container (same pod name, pid 1), so a restarted
    /// member fences its former self and aborts its open transaction at once.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// When the consume loop made no progress for this long, seconds, `/healthz`
    /// and `/readyz` fail and the member exits non-zero (`crate::shutdown`).
    /// Default 60.
    #[serde(default = "default_stall")]
    pub stall_timeout_secs: u64,
    /// Ops endpoint (`/healthz`, `/readyz`, `/metrics`). Default 127.0.0.1:9471.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Alert rules and notifiers (see `crate::alerts::config`; the notifier
    /// fields are `notify::NotifyConfig`).
    #[serde(default)]
    pub alerts: crate::alerts::AlertsConfig,
    /// Fault injection for tests (`panic_on_text`, `panic_in`, `action`): off by default,
    /// never for production. See `crate::fault`.
    #[serde(default, skip_serializing_if = "crate::fault::DebugConfig::is_off")]
    pub debug: crate::fault::DebugConfig,
}

fn default_group() -> String {
    "kevents-processor".into()
}
fn default_create_partitions() -> i32 {
    6
}
fn default_horizon() -> u64 {
    7200
}
fn default_max_entries() -> usize {
    1_000_000
}
fn default_max_in_flight() -> usize {
    8192
}
fn default_drain() -> u64 {
    5
}
fn default_commit_interval() -> u64 {
    100
}
fn default_transaction_timeout() -> u64 {
    15_000
}
fn default_stall() -> u64 {
    60
}
fn default_listen() -> SocketAddr {
    "127.0.0.1:9471".parse().unwrap()
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            schema_registry: None,
            kafka: KafkaConfig::default(),
            topics: TopicsConfig::default(),
            group_id: default_group(),
            create_topic_partitions: default_create_partitions(),
            rules_files: vec![],
            metadata_files: vec![],
            correlation: Default::default(),
            patterns: Default::default(),
            state_horizon_secs: default_horizon(),
            max_state_entries: default_max_entries(),
            max_in_flight: default_max_in_flight(),
            drain_timeout_secs: default_drain(),
            commit_interval_ms: default_commit_interval(),
            transaction_timeout_ms: default_transaction_timeout(),
            transactional_id: None,
            stall_timeout_secs: default_stall(),
            listen: default_listen(),
            alerts: Default::default(),
            debug: Default::default(),
        }
    }
}

impl ProcessorConfig {
    pub fn horizon_us(&self) -> i64 {
        (self.state_horizon_secs as i64).saturating_mul(1_000_000)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }

    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms)
    }

    pub fn transaction_timeout(&self) -> Duration {
        Duration::from_millis(self.transaction_timeout_ms)
    }

    /// Check what serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.kafka.validate("kafka")?;
        self.alerts.validate("alerts")?;
        let t = &self.topics;
        for (field, name) in [
            ("topics.raw", &t.raw),
            ("topics.processed", &t.processed),
            ("topics.heartbeats", &t.heartbeats),
            ("topics.dlq", &t.dlq),
            ("topics.incidents", &t.incidents),
            ("topics.patterns", &t.patterns),
            ("topics.alerts", &t.alerts),
        ] {
            if name.trim().is_empty() {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        for (field, name) in [
            ("topics.processed", &t.processed),
            ("topics.heartbeats", &t.heartbeats),
            ("topics.dlq", &t.dlq),
            ("topics.incidents", &t.incidents),
            ("topics.patterns", &t.patterns),
            ("topics.alerts", &t.alerts),
        ] {
            if *name == t.raw {
                return Err(FieldError::new(field, "must differ from topics.raw (the processor would read its own output)"));
            }
        }
        if self.group_id.trim().is_empty() {
            return Err(FieldError::new("group_id", "must not be empty"));
        }
        if self.create_topic_partitions < 0 {
            return Err(FieldError::new("create_topic_partitions", "must be 0 (never create) or more"));
        }
        if self.state_horizon_secs < 3600 {
            return Err(FieldError::new(
                "state_horizon_secs",
                "must be at least 3600: Kubernetes keeps an Event 1 h after its last update, a shorter horizon would count its repeats again",
            ));
        }
        if self.max_state_entries < 1000 {
            return Err(FieldError::new("max_state_entries", "must be at least 1000"));
        }
        if self.max_in_flight == 0 {
            return Err(FieldError::new("max_in_flight", "must be at least 1"));
        }
        if self.commit_interval_ms < 10 {
            return Err(FieldError::new("commit_interval_ms", "must be at least 10"));
        }
        if self.transaction_timeout_ms < 1000 || self.transaction_timeout_ms <= self.commit_interval_ms * 2 {
            return Err(FieldError::new("transaction_timeout_ms", "must be at least 1000 and more than twice commit_interval_ms"));
        }
        if self.drain_timeout_secs * 1000 >= self.transaction_timeout_ms {
            return Err(FieldError::new(
                "drain_timeout_secs",
                "must be shorter than transaction_timeout_ms (the broker would abort the transaction a drain is waiting to commit)",
            ));
        }
        if self.transactional_id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            return Err(FieldError::new("transactional_id", "must not be empty when set"));
        }
        if self.stall_timeout_secs < 5 {
            return Err(FieldError::new("stall_timeout_secs", "must be at least 5 (the consume loop polls every 100 ms)"));
        }
        for (i, p) in self.rules_files.iter().enumerate() {
            if !p.is_file() {
                return Err(FieldError::new(format!("rules_files[{i}]"), format!("{} is not a readable file", p.display())));
            }
        }
        self.correlation.validate()?;
        self.patterns.validate()?;
        for (i, p) in self.metadata_files.iter().enumerate() {
            if !p.is_file() {
                return Err(FieldError::new(format!("metadata_files[{i}]"), format!("{} is not a readable file", p.display())));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::config::load_with_env;

    #[test]
    fn defaults_env_overrides_and_field_errors() {
        let cfg: ProcessorConfig = load_with_env(None, &[]).unwrap();
        assert_eq!(cfg.topics.raw, "kevents.raw");
        assert_eq!(cfg.topics.dlq, "kevents.dlq");
        assert_eq!(cfg.listen.port(), 9471);
        assert_eq!(cfg.state_horizon_secs, 7200);
        let env = vec![
            ("KEVENTS__TOPICS__PROCESSED".to_string(), "p2".to_string()),
            ("KEVENTS__MAX_IN_FLIGHT".to_string(), "0".to_string()),
        ];
        let cfg: ProcessorConfig = load_with_env(None, &env).unwrap();
        assert_eq!(cfg.topics.processed, "p2");
        assert_eq!(cfg.validate().unwrap_err().field, "max_in_flight");

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.yaml");
        std::fs::write(&p, "topics:\n  raw: r\n  procesed: x\n").unwrap();
        let err = load_with_env::<ProcessorConfig>(Some(&p), &[]).unwrap_err().to_string();
        assert!(err.contains("procesed"), "{err}");

        let mut cfg = ProcessorConfig::default();
        cfg.kafka.brokers = "k:9092".into();
        cfg.validate().unwrap();
        cfg.topics.dlq = "kevents.raw".into();
        assert_eq!(cfg.validate().unwrap_err().field, "topics.dlq");
        cfg.topics.dlq = "d".into();
        cfg.state_horizon_secs = 60;
        assert_eq!(cfg.validate().unwrap_err().field, "state_horizon_secs");
        cfg.state_horizon_secs = 7200;
        cfg.rules_files = vec![dir.path().join("missing.yaml")];
        assert_eq!(cfg.validate().unwrap_err().field, "rules_files[0]");
    }
}
