//! The exporter's configuration: one struct, each field's doc is the user
//! documentation, defaults are named functions that say where the number comes
//! from, `validate` names the bad field. Header values (an `Authorization` token)
//! are [`Secret`]s or come from files, so `--print-config` shows nothing secret.

use runtime::kafka::{FieldError, KafkaConfig};
use runtime::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Configuration of `kevents export`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// The ops endpoint (`/healthz`, `/readyz`, `/metrics`). Default 127.0.0.1:9491:
    /// loopback unless configured.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Confluent-compatible schema registry for the Avro schema ids; unset: the
    /// built-in ids (as the processor and the sink).
    #[serde(default)]
    pub schema_registry: Option<runtime::registry::RegistryConfig>,
    /// The result topics read (the same names as the sink's `topics:`).
    #[serde(default)]
    pub topics: TopicsConfig,
    /// Consumer group: one group per destination, so two exporters to two
    /// backends each see every record. Default `kevents-export`.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where the records go.
    #[serde(default)]
    pub endpoint: EndpointConfig,
    /// How incidents are exported: `logs` (default: one log record per incident
    /// version) or `logs_and_spans` (also a trace per incident: see the crate doc).
    #[serde(default)]
    pub incidents: IncidentExport,
    /// Most records in one request (per signal). Default 500: well under the
    /// Collector's default 4 MiB request limit for events of ~2 KiB each.
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// How long the first record of a batch waits for others, milliseconds.
    /// Default 200: low latency at low rates, full batches at high ones.
    #[serde(default = "default_max_batch_wait")]
    pub max_batch_wait_ms: u64,
    /// First retry delay, milliseconds; doubles each retry with jitter. Default 500.
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_ms: u64,
    /// Longest retry delay, seconds (a `Retry-After` is honoured up to this).
    /// Default 30. Retryable failures are retried without limit: nothing is
    /// dropped because the endpoint is down, the lag grows instead.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: u64,
}

/// The result topics read, and where rejected records go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Processed events → log records. Default `kevents.processed`.
    #[serde(default = "default_processed")]
    pub processed: String,
    /// Incident versions → log records (and spans). Default `kevents.incidents`.
    #[serde(default = "default_incidents")]
    pub incidents: String,
    /// Dead-letter topic: records the endpoint rejected for good, and records
    /// that cannot be decoded, with the reason. Default `kevents.dlq`.
    #[serde(default = "default_dlq")]
    pub dlq: String,
}

/// An OTLP/HTTP endpoint (protobuf bodies).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL, e.g. `http://otel-collector:4318` or `https://otlp.example:443`;
    /// the signal paths are appended. Default `http://127.0.0.1:4318` (the OTLP/HTTP
    /// port).
    #[serde(default = "default_url")]
    pub url: String,
    /// Path of the logs service. Default `/v1/logs`.
    #[serde(default = "default_logs_path")]
    pub logs_path: String,
    /// Path of the traces service. Default `/v1/traces`.
    #[serde(default = "default_traces_path")]
    pub traces_path: String,
    /// Extra request headers; values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Headers whose value is read from a file (e.g. `Authorization:
    /// /var/run/secrets/otlp/authorization` holding `Bearer …`), trailing newline
    /// removed. Read again for every request, so a rotated Secret is used
    /// without a restart.
    #[serde(default)]
    pub header_files: BTreeMap<String, PathBuf>,
    /// PEM file of CA certificates trusted for an `https` endpoint, in addition
    /// to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Per request, seconds. Default 10 (the OTLP exporters' default).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

/// How incidents are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentExport {
    /// One log record per incident version.
    #[default]
    Logs,
    /// Log records, and a trace per incident: a span per resolved incident and
    /// a child span per event that belongs to it.
    LogsAndSpans,
}

impl IncidentExport {
    pub fn spans(self) -> bool {
        self == IncidentExport::LogsAndSpans
    }
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:9491".parse().expect("a literal address")
}
fn default_group_id() -> String {
    "kevents-export".into()
}
fn default_max_batch_records() -> usize {
    500
}
fn default_max_batch_wait() -> u64 {
    200
}
fn default_backoff_initial() -> u64 {
    500
}
fn default_backoff_max() -> u64 {
    30
}
fn default_processed() -> String {
    schemas::topics::PROCESSED.into()
}
fn default_incidents() -> String {
    schemas::topics::INCIDENTS.into()
}
fn default_dlq() -> String {
    schemas::topics::DLQ.into()
}
fn default_url() -> String {
    "http://127.0.0.1:4318".into()
}
fn default_logs_path() -> String {
    "/v1/logs".into()
}
fn default_traces_path() -> String {
    "/v1/traces".into()
}
fn default_timeout() -> u64 {
    10
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig { processed: default_processed(), incidents: default_incidents(), dlq: default_dlq() }
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            url: default_url(),
            logs_path: default_logs_path(),
            traces_path: default_traces_path(),
            headers: BTreeMap::new(),
            header_files: BTreeMap::new(),
            ca_file: None,
            timeout_secs: default_timeout(),
        }
    }
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            listen: default_listen(),
            kafka: KafkaConfig::default(),
            schema_registry: None,
            topics: TopicsConfig::default(),
            group_id: default_group_id(),
            endpoint: EndpointConfig::default(),
            incidents: IncidentExport::default(),
            max_batch_records: default_max_batch_records(),
            max_batch_wait_ms: default_max_batch_wait(),
            backoff_initial_ms: default_backoff_initial(),
            backoff_max_secs: default_backoff_max(),
        }
    }
}

fn valid_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl ExportConfig {
    /// Check what serde cannot; errors name the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.kafka.validate("kafka")?;
        for (field, t) in [("topics.processed", &self.topics.processed), ("topics.incidents", &self.topics.incidents), ("topics.dlq", &self.topics.dlq)] {
            if t.trim().is_empty() {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        if self.topics.dlq == self.topics.processed || self.topics.dlq == self.topics.incidents {
            return Err(FieldError::new("topics.dlq", "must differ from the topics read"));
        }
        if self.group_id.trim().is_empty() {
            return Err(FieldError::new("group_id", "must not be empty"));
        }
        let e = &self.endpoint;
        let url = e.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            return Err(FieldError::new("endpoint.url", "must be an http:// or https:// URL"));
        }
        for (field, p) in [("endpoint.logs_path", &e.logs_path), ("endpoint.traces_path", &e.traces_path)] {
            if !p.starts_with('/') {
                return Err(FieldError::new(field, "must start with /"));
            }
        }
        for name in e.headers.keys() {
            if !valid_header_name(name) {
                return Err(FieldError::new(format!("endpoint.headers.{name}"), "not a valid HTTP header name"));
            }
        }
        for (name, path) in &e.header_files {
            if !valid_header_name(name) {
                return Err(FieldError::new(format!("endpoint.header_files.{name}"), "not a valid HTTP header name"));
            }
            if e.headers.contains_key(name) {
                return Err(FieldError::new(format!("endpoint.header_files.{name}"), "also set in endpoint.headers"));
            }
            std::fs::read_to_string(path)
                .map_err(|err| FieldError::new(format!("endpoint.header_files.{name}"), format!("{}: {err}", path.display())))?;
        }
        if let Some(ca) = &e.ca_file {
            let pem = std::fs::read(ca).map_err(|err| FieldError::new("endpoint.ca_file", format!("{}: {err}", ca.display())))?;
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| FieldError::new("endpoint.ca_file", format!("{}: not PEM certificates: {err}", ca.display())))?;
        }
        if e.timeout_secs == 0 {
            return Err(FieldError::new("endpoint.timeout_secs", "must be at least 1"));
        }
        if self.max_batch_records == 0 {
            return Err(FieldError::new("max_batch_records", "must be at least 1"));
        }
        if self.backoff_initial_ms == 0 {
            return Err(FieldError::new("backoff_initial_ms", "must be at least 1"));
        }
        if self.backoff_max_secs == 0 || Duration::from_secs(self.backoff_max_secs) < self.backoff_initial() {
            return Err(FieldError::new("backoff_max_secs", "must be at least 1 and not below backoff_initial_ms"));
        }
        Ok(())
    }

    pub fn max_batch_wait(&self) -> Duration {
        Duration::from_millis(self.max_batch_wait_ms)
    }

    pub fn backoff_initial(&self) -> Duration {
        Duration::from_millis(self.backoff_initial_ms)
    }

    pub fn backoff_max(&self) -> Duration {
        Duration::from_secs(self.backoff_max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_field_errors() {
        let field = |c: &ExportConfig| c.validate().unwrap_err().field;
        let mut c = ExportConfig::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9491", "loopback unless configured");
        assert_eq!((c.topics.processed.as_str(), c.topics.incidents.as_str(), c.topics.dlq.as_str()), ("kevents.processed", "kevents.incidents", "kevents.dlq"));
        assert_eq!(c.incidents, IncidentExport::Logs);
        c.endpoint.url = "otel:4318".into();
        assert_eq!(field(&c), "endpoint.url");
        c.endpoint.url = "https://otel:4318/".into();
        c.endpoint.traces_path = "v1/traces".into();
        assert_eq!(field(&c), "endpoint.traces_path");
        c.endpoint.traces_path = "/v1/traces".into();
        c.endpoint.header_files.insert("Authorization".into(), "/nonexistent/token".into());
        assert_eq!(field(&c), "endpoint.header_files.Authorization");
        c.endpoint.header_files.clear();
        c.endpoint.headers.insert("bad header".into(), Secret::new("x"));
        assert_eq!(field(&c), "endpoint.headers.bad header");
        c.endpoint.headers.clear();
        c.endpoint.ca_file = Some("/nonexistent/ca.pem".into());
        assert_eq!(field(&c), "endpoint.ca_file");
        c.endpoint.ca_file = None;
        c.topics.dlq = c.topics.incidents.clone();
        assert_eq!(field(&c), "topics.dlq");
        c.topics.dlq = "dlq".into();
        c.max_batch_records = 0;
        assert_eq!(field(&c), "max_batch_records");
    }

    #[test]
    fn yaml_with_secrets_hidden_and_unknown_fields_refused() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("auth");
        std::fs::write(&token, "Bearer s3cr3t\n").unwrap();
        let yaml = format!(
            "endpoint:\n  url: http://collector:4318\n  headers: {{X-Scope-OrgID: tenant-k3y}}\n  header_files: {{Authorization: {}}}\nincidents: logs_and_spans\n",
            token.display()
        );
        let c: ExportConfig = serde_norway::from_str(&yaml).unwrap();
        c.validate().unwrap();
        assert!(c.incidents.spans());
        let shown = format!("{c:#?}");
        assert!(!shown.contains("tenant-k3y") && !shown.contains("s3cr3t"), "{shown}");
        let e = serde_norway::from_str::<ExportConfig>("endpont: {}").unwrap_err().to_string();
        assert!(e.contains("endpont"), "{e}");
        let e = serde_norway::from_str::<ExportConfig>("incidents: spans").unwrap_err().to_string();
        assert!(e.contains("logs_and_spans"), "{e}");
    }
}
