//! The ingest stage's configuration: one struct, each field's doc is the user
//! documentation, defaults are named functions, `validate` names the bad field.
//! The tokens themselves live in their own file ([`crate::auth`]), never here, so
//! `--print-config` shows nothing secret.

use runtime::kafka::{FieldError, KafkaConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A cluster applications may write events for: the name they use (the
/// collector's `cluster.name`, OTLP's `k8s.cluster.name`) and its uid (the
/// collector's: the uid of its `kube-system` namespace, or its `cluster.uid`).
///
/// The uid is what makes an application's event land in the same raw partition
/// and the same correlation state as the cluster's own events: records are keyed
/// and correlated by it, not by the name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterEntry {
    pub name: String,
    pub uid: String,
}

/// Configuration of `kevents ingest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// The API and the ops endpoints (`/healthz`, `/readyz`, `/metrics`,
    /// `/openapi.json`) on one listener. Default 127.0.0.1:9480: put a TLS-terminating
    /// proxy or an ingress in front to expose it.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// This instance's name in the records it writes (`kevents-ingest/<instance>`).
    /// Default: `$POD_NAME`, else the host name.
    #[serde(default)]
    pub instance: Option<String>,
    /// YAML file of bearer tokens, each with the clusters and namespaces it may
    /// write and its rate limit (see docs/ingest.md). Required. Read once at start.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// The clusters events may be sent for, name → uid. An event naming a cluster
    /// not listed here is refused (400), unless it carries the uid itself
    /// (`k8s.cluster.uid`, `?cluster_uid=`).
    #[serde(default)]
    pub clusters: Vec<ClusterEntry>,
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Confluent-compatible schema registry for the Avro schema ids; unset: the
    /// built-in ids (as the collector).
    #[serde(default)]
    pub schema_registry: Option<runtime::registry::RegistryConfig>,
    /// The raw topic (the collector's). Default `kevents.raw`.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Largest request body, bytes (413 beyond). Default 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most events in one request (413 beyond). Default 1000.
    #[serde(default = "default_max_batch")]
    pub max_batch_events: usize,
    /// How long a request waits for Kafka to acknowledge its events before it is
    /// answered 503 (the client retries; ids are deterministic, so a late write
    /// and the retry are stored once). Milliseconds. Default 10000.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout_ms: u64,
    /// How often the Kafka connection is checked for `/readyz`, seconds. Default 5.
    #[serde(default = "default_check_interval")]
    pub kafka_check_interval_secs: u64,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:9480".parse().expect("a literal address")
}
fn default_topic() -> String {
    schemas::topics::RAW.into()
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_max_batch() -> usize {
    1000
}
/// librdkafka's own default `message.timeout.ms` is 5 minutes; a client waiting on
/// an HTTP answer gives up far sooner, and an answer it never reads tells it nothing.
fn default_delivery_timeout() -> u64 {
    10_000
}
fn default_check_interval() -> u64 {
    5
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            listen: default_listen(),
            instance: None,
            tokens_file: None,
            clusters: vec![],
            kafka: KafkaConfig::default(),
            schema_registry: None,
            topic: default_topic(),
            max_body_bytes: default_max_body(),
            max_batch_events: default_max_batch(),
            delivery_timeout_ms: default_delivery_timeout(),
            kafka_check_interval_secs: default_check_interval(),
        }
    }
}

impl IngestConfig {
    /// Check what serde cannot; errors name the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.kafka.validate("kafka")?;
        match &self.tokens_file {
            None => return Err(FieldError::new("tokens_file", "required: the bearer tokens clients send")),
            Some(p) if !p.is_file() => return Err(FieldError::new("tokens_file", format!("{} is not a readable file", p.display()))),
            _ => {}
        }
        if self.topic.trim().is_empty() {
            return Err(FieldError::new("topic", "must not be empty"));
        }
        if self.max_body_bytes < 1024 {
            return Err(FieldError::new("max_body_bytes", "must be at least 1024"));
        }
        if self.max_batch_events == 0 {
            return Err(FieldError::new("max_batch_events", "must be at least 1"));
        }
        if self.delivery_timeout_ms < 100 {
            return Err(FieldError::new("delivery_timeout_ms", "must be at least 100"));
        }
        if self.kafka_check_interval_secs == 0 {
            return Err(FieldError::new("kafka_check_interval_secs", "must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(FieldError::new(format!("clusters[{i}].name"), "must not be empty"));
            }
            if c.uid.trim().is_empty() {
                return Err(FieldError::new(format!("clusters[{i}].uid"), "must not be empty"));
            }
            if !names.insert(c.name.as_str()) {
                return Err(FieldError::new(format!("clusters[{i}].name"), format!("duplicate cluster {:?}", c.name)));
            }
        }
        Ok(())
    }

    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery_timeout_ms)
    }

    /// The instance name: the configured one, else `$POD_NAME`, else the host name.
    pub fn instance_name(&self) -> String {
        self.instance
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "ingest".into())
    }

    /// The uid of cluster `name`, when configured.
    pub fn cluster_uid(&self, name: &str) -> Option<&str> {
        self.clusters.iter().find(|c| c.name == name).map(|c| c.uid.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_field_errors() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.yaml");
        std::fs::write(&tokens, "tokens: []\n").unwrap();
        let field = |c: &IngestConfig| c.validate().unwrap_err().field;
        let mut c = IngestConfig::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9480", "loopback unless configured");
        assert_eq!(field(&c), "tokens_file");
        c.tokens_file = Some(tokens);
        c.validate().unwrap();
        c.clusters = vec![ClusterEntry { name: "a".into(), uid: "u".into() }, ClusterEntry { name: "a".into(), uid: "v".into() }];
        assert_eq!(field(&c), "clusters[1].name");
        c.clusters.pop();
        assert_eq!(c.cluster_uid("a"), Some("u"));
        c.max_body_bytes = 10;
        assert_eq!(field(&c), "max_body_bytes");
        let e = serde_norway::from_str::<IngestConfig>("listne: 1").unwrap_err().to_string();
        assert!(e.contains("listne"), "{e}");
    }
}
