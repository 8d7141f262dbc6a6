//! The sink's configuration: one struct, each field's doc is the user
//! documentation, defaults are named functions that say where the number comes from,
//! `validate` names the bad field.

use schemas::clickhouse::{ClusterTarget, RenderOptions, Replication};
use runtime::kafka::{FieldError, KafkaConfig};
use runtime::secret::Secret;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach ClickHouse. The password comes from `password`, `password_file`
/// (e.g. a mounted Kubernetes Secret) or the env override
/// `KEVENTS__CLICKHOUSE__PASSWORD`; it is never logged (`Secret`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP(S) interface, e.g. `http://clickhouse:8123` or `https://ch:8443`.
    /// Default `http://127.0.0.1:8123`. https verifies the server against the system
    /// CA store; point `SSL_CERT_FILE` at a PEM bundle for a private CA.
    #[serde(default = "default_url")]
    pub url: String,
    /// Database holding the kevents tables; created by the migrations. Default `kevents`.
    #[serde(default = "default_database")]
    pub database: String,
    /// User. Default `default`.
    #[serde(default = "default_user")]
    pub user: String,
    /// Password (prefer `password_file` or the env override).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Read the password from this file (trailing newline removed).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// ClickHouse cluster name (in the servers' `remote_servers`): when set, migrations
    /// create `T_local` tables on every node with `Distributed` tables `T` over them, the
    /// sink writes the `Distributed` tables through `url`, and an insert is acknowledged
    /// only once its rows are on the shards (`distributed_foreground_insert`). Unset: one
    /// server. See docs/clickhouse-cluster.md.
    #[serde(default)]
    pub cluster: Option<String>,
    /// How the cluster's replicas get their rows, with `cluster`. `keeper` (default):
    /// Replicated tables through ZooKeeper/Keeper and DDL `ON CLUSTER` — ClickHouse
    /// servers. `distributed`: the single node's engines on every node, the `Distributed`
    /// tables write every replica themselves (`internal_replication` false), and the
    /// migrations run on each of `cluster_nodes` — for nodes that cannot replicate or
    /// run distributed DDL, such as chdb processes (`scripts/services up
    /// --clickhouse-shards 2`).
    #[serde(default)]
    pub cluster_replication: ClusterReplication,
    /// With `cluster_replication: distributed`: the HTTP URL of every node of `cluster`
    /// (the migrations run on each; they check first that these are exactly the
    /// cluster's members in `system.clusters`, by host and native port).
    #[serde(default)]
    pub cluster_nodes: Vec<String>,
    /// Raw event retention, days (rollups per minute follow it; hourly rollups are
    /// kept 365 days). Default 30. Applies when the tables are created.
    #[serde(default = "default_ttl_days")]
    pub ttl_days: u32,
    /// Seconds to wait for ClickHouse to acknowledge one INSERT before the attempt
    /// counts as failed and is retried. Default 60.
    #[serde(default = "default_insert_timeout")]
    pub insert_timeout_secs: u64,
    /// `/healthz` fails when work against ClickHouse (INSERTs, loading the progress
    /// marks, the migrations at start) has been failing with retryable errors and
    /// retried without success for this long, seconds; it passes again within a
    /// second of the next success. Default 300: a restart (new connections, maybe
    /// another node) is worth trying after five minutes, and short outages (a
    /// ClickHouse restart, a burst of TOO_MANY_PARTS) pass without one.
    #[serde(default = "default_unhealthy_after")]
    pub unhealthy_after_secs: u64,
}

/// See [`ClickHouseConfig::cluster_replication`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterReplication {
    #[default]
    Keeper,
    Distributed,
}

fn default_url() -> String {
    "http://127.0.0.1:8123".into()
}
fn default_database() -> String {
    "kevents".into()
}
fn default_user() -> String {
    "default".into()
}
fn default_ttl_days() -> u32 {
    30
}
fn default_insert_timeout() -> u64 {
    60
}
fn default_unhealthy_after() -> u64 {
    300
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: default_url(),
            database: default_database(),
            user: default_user(),
            password: None,
            password_file: None,
            cluster: None,
            cluster_replication: ClusterReplication::default(),
            cluster_nodes: Vec::new(),
            ttl_days: default_ttl_days(),
            insert_timeout_secs: default_insert_timeout(),
            unhealthy_after_secs: default_unhealthy_after(),
        }
    }
}

impl ClickHouseConfig {
    /// The password from `password` or `password_file` ("" when neither is set).
    pub fn password(&self) -> Result<Secret, FieldError> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        if let Some(f) = &self.password_file {
            return std::fs::read_to_string(f)
                .map(|p| Secret::new(p.trim_end_matches(['\n', '\r'])))
                .map_err(|e| FieldError::new("clickhouse.password_file", format!("{}: {e}", f.display())));
        }
        Ok(Secret::new(""))
    }

    /// A client for the server, without a default database (the database may not
    /// exist yet: the migrations create it). Tables are always named `db.table`.
    pub fn client(&self) -> Result<clickhouse::Client, FieldError> {
        self.client_for(&self.url)
    }

    /// [`client`](Self::client) for one node of the cluster (`cluster_nodes`).
    pub fn client_for(&self, url: &str) -> Result<clickhouse::Client, FieldError> {
        let mut c = clickhouse::Client::default()
            .with_url(url)
            .with_user(&self.user)
            .with_compression(clickhouse::Compression::Lz4);
        let pw = self.password()?;
        if !pw.expose().is_empty() {
            c = c.with_password(pw.expose());
        }
        if self.cluster.is_some() {
            // The ack must mean "on the shards", or the progress marks could run
            // ahead of rows still queued in a Distributed table.
            c = c.with_setting("distributed_foreground_insert", "1");
        }
        Ok(c)
    }

    /// How the migrations render for this server.
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            database: self.database.clone(),
            cluster: self.cluster.as_ref().map(|name| ClusterTarget {
                name: name.clone(),
                replication: match self.cluster_replication {
                    ClusterReplication::Keeper => Replication::Keeper,
                    ClusterReplication::Distributed => Replication::Distributed,
                },
            }),
            ttl_days: self.ttl_days,
        }
    }
}

/// The topic each table is loaded from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Processed events → `events`. Default `kevents.processed`.
    #[serde(default = "default_processed")]
    pub processed: String,
    /// Cluster heartbeats → `cluster_heartbeats`. Default `kevents.heartbeats`.
    #[serde(default = "default_heartbeats")]
    pub heartbeats: String,
    /// Incident versions → `incidents`. Default `kevents.incidents`.
    #[serde(default = "default_incidents")]
    pub incidents: String,
    /// Pattern versions → `patterns`. Default `kevents.patterns`.
    #[serde(default = "default_patterns")]
    pub patterns: String,
    /// Alert versions → `alerts`. Default `kevents.alerts`.
    #[serde(default = "default_alerts")]
    pub alerts: String,
    /// Dead-letter topic for records that cannot be decoded. Default `kevents.dlq`.
    #[serde(default = "default_dlq")]
    pub dlq: String,
}

fn default_processed() -> String {
    schemas::topics::PROCESSED.into()
}
fn default_heartbeats() -> String {
    schemas::topics::HEARTBEATS.into()
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
fn default_dlq() -> String {
    schemas::topics::DLQ.into()
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            processed: default_processed(),
            heartbeats: default_heartbeats(),
            incidents: default_incidents(),
            patterns: default_patterns(),
            alerts: default_alerts(),
            dlq: default_dlq(),
        }
    }
}

/// When an open batch is written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Rows per INSERT, per table. Default 50 000: ClickHouse advises inserts of
    /// 10k–100k rows; measured here, 10k-row batches were ~25 % slower than 100k.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// A batch is written at the latest this long after its first record, ms.
    /// Default 1000 (ClickHouse advises at most about one INSERT per second per table).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// INSERTs of one table in flight at once, each over its own share of the Kafka
    /// partitions (partition % this). Default 2: one INSERT stream leaves a core idle
    /// on a 2-core machine (ClickHouse parses and merges one INSERT mostly on one
    /// thread), two keep both busy. More needs more Kafka partitions than lanes and
    /// costs a batch of memory per lane.
    #[serde(default = "default_concurrent_inserts")]
    pub concurrent_inserts: usize,
}

fn default_max_rows() -> usize {
    50_000
}
fn default_max_wait_ms() -> u64 {
    1000
}
fn default_concurrent_inserts() -> usize {
    2
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_rows: default_max_rows(),
            max_wait_ms: default_max_wait_ms(),
            concurrent_inserts: default_concurrent_inserts(),
        }
    }
}

/// Configuration of `kevents sink`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Confluent-compatible schema registry for the Avro schema ids. Unset (default):
    /// the fixed built-in ids, which every kevents stage agrees on.
    #[serde(default)]
    pub schema_registry: Option<runtime::registry::RegistryConfig>,
    /// Consumer group of the sink. Default `kevents-sink`. Replicas in one group
    /// share the partitions.
    #[serde(default = "default_group")]
    pub group_id: String,
    #[serde(default)]
    pub topics: TopicsConfig,
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    /// Apply the migrations at start-up. Default true; set false when an operator
    /// runs `kevents migrate` (the sink then only checks the schema is there).
    #[serde(default = "yes")]
    pub migrate: bool,
    /// `/healthz` fails when the consume loop made no progress for this long,
    /// seconds. Default 60.
    #[serde(default = "default_stall")]
    pub stall_timeout_secs: u64,
    /// Longest wait between two attempts of a failed INSERT, ms (backoff doubles
    /// from 200 ms up to this, with jitter). Default 10 000.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Ops endpoint (`/healthz`, `/readyz`, `/metrics`). Default 127.0.0.1:9472.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

fn default_group() -> String {
    "kevents-sink".into()
}
fn yes() -> bool {
    true
}
fn default_stall() -> u64 {
    60
}
fn default_max_backoff_ms() -> u64 {
    10_000
}
fn default_listen() -> SocketAddr {
    "127.0.0.1:9472".parse().unwrap()
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            schema_registry: None,
            kafka: KafkaConfig::default(),
            group_id: default_group(),
            topics: TopicsConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            batch: BatchConfig::default(),
            migrate: true,
            stall_timeout_secs: default_stall(),
            max_backoff_ms: default_max_backoff_ms(),
            listen: default_listen(),
        }
    }
}

impl SinkConfig {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.batch.max_wait_ms)
    }

    /// Check what serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.kafka.validate("kafka")?;
        if self.group_id.trim().is_empty() {
            return Err(FieldError::new("group_id", "must not be empty"));
        }
        let t = &self.topics;
        let named = [
            ("topics.processed", &t.processed),
            ("topics.heartbeats", &t.heartbeats),
            ("topics.incidents", &t.incidents),
            ("topics.patterns", &t.patterns),
            ("topics.alerts", &t.alerts),
            ("topics.dlq", &t.dlq),
        ];
        let mut seen = std::collections::HashSet::new();
        for (field, topic) in named {
            if topic.trim().is_empty() {
                return Err(FieldError::new(field, "must not be empty"));
            }
            if !seen.insert(topic.as_str()) {
                return Err(FieldError::new(field, format!("topic {topic:?} is used twice")));
            }
        }
        let ch = &self.clickhouse;
        if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
            return Err(FieldError::new("clickhouse.url", "must start with http:// or https://"));
        }
        if ch.database.is_empty() || !ch.database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(FieldError::new("clickhouse.database", "letters, digits and _ only"));
        }
        if ch.password.is_some() && ch.password_file.is_some() {
            return Err(FieldError::new("clickhouse.password", "set password or password_file, not both"));
        }
        if ch.ttl_days == 0 {
            return Err(FieldError::new("clickhouse.ttl_days", "must be at least 1"));
        }
        if ch.insert_timeout_secs == 0 {
            return Err(FieldError::new("clickhouse.insert_timeout_secs", "must be at least 1"));
        }
        if ch.unhealthy_after_secs == 0 {
            return Err(FieldError::new("clickhouse.unhealthy_after_secs", "must be at least 1"));
        }
        if let Some(c) = &ch.cluster {
            if c.is_empty() || c.contains('\'') {
                return Err(FieldError::new("clickhouse.cluster", "must be a plain cluster name"));
            }
        }
        match ch.cluster_replication {
            ClusterReplication::Distributed if ch.cluster.is_none() => {
                return Err(FieldError::new("clickhouse.cluster_replication", "distributed needs clickhouse.cluster"));
            }
            ClusterReplication::Distributed if ch.cluster_nodes.is_empty() => {
                return Err(FieldError::new("clickhouse.cluster_nodes", "list the HTTP URL of every node of the cluster"));
            }
            ClusterReplication::Keeper if !ch.cluster_nodes.is_empty() => {
                return Err(FieldError::new("clickhouse.cluster_nodes", "only with cluster_replication: distributed"));
            }
            _ => {}
        }
        if ch.cluster_nodes.iter().any(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return Err(FieldError::new("clickhouse.cluster_nodes", "every URL must start with http:// or https://"));
        }
        if self.batch.max_rows == 0 {
            return Err(FieldError::new("batch.max_rows", "must be at least 1"));
        }
        if self.batch.concurrent_inserts == 0 || self.batch.concurrent_inserts > 64 {
            return Err(FieldError::new("batch.concurrent_inserts", "must be between 1 and 64"));
        }
        if self.batch.max_wait_ms == 0 {
            return Err(FieldError::new("batch.max_wait_ms", "must be at least 1"));
        }
        if self.stall_timeout_secs * 1000 <= self.batch.max_wait_ms {
            return Err(FieldError::new("stall_timeout_secs", "must be longer than batch.max_wait_ms"));
        }
        if self.max_backoff_ms < 200 {
            return Err(FieldError::new("max_backoff_ms", "must be at least 200"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::config::load_with_env;

    #[test]
    fn validation_names_fields() {
        let mut c = SinkConfig::default();
        c.validate().unwrap();
        c.topics.dlq = c.topics.processed.clone();
        assert_eq!(c.validate().unwrap_err().field, "topics.dlq");
        c = SinkConfig::default();
        c.clickhouse.database = "k-ev".into();
        assert_eq!(c.validate().unwrap_err().field, "clickhouse.database");
        c = SinkConfig::default();
        c.batch.max_rows = 0;
        assert_eq!(c.validate().unwrap_err().field, "batch.max_rows");
        c = SinkConfig::default();
        c.batch.concurrent_inserts = 0;
        assert_eq!(c.validate().unwrap_err().field, "batch.concurrent_inserts");
        c = SinkConfig::default();
        c.clickhouse.unhealthy_after_secs = 0;
        assert_eq!(c.validate().unwrap_err().field, "clickhouse.unhealthy_after_secs");
        c = SinkConfig::default();
        c.clickhouse.url = "clickhouse:8123".into();
        assert_eq!(c.validate().unwrap_err().field, "clickhouse.url");
        c = SinkConfig::default();
        c.clickhouse.cluster_replication = ClusterReplication::Distributed;
        assert_eq!(c.validate().unwrap_err().field, "clickhouse.cluster_replication");
        c.clickhouse.cluster = Some("kevents".into());
        assert_eq!(c.validate().unwrap_err().field, "clickhouse.cluster_nodes");
        c.clickhouse.cluster_nodes = vec!["http://127.0.0.1:1".into(), "127.0.0.1:2".into()];
        assert_eq!(c.validate().unwrap_err().field, "clickhouse.cluster_nodes");
        c.clickhouse.cluster_nodes.pop();
        c.validate().unwrap();
        c.clickhouse.cluster_replication = ClusterReplication::Keeper;
        assert_eq!(c.validate().unwrap_err().field, "clickhouse.cluster_nodes");
    }

    #[test]
    fn password_from_env_override_or_file_and_never_printed() {
        let env = vec![("KEVENTS__CLICKHOUSE__PASSWORD".to_string(), "hunter2".to_string())];
        let c: SinkConfig = load_with_env(None, &env).unwrap();
        assert_eq!(c.clickhouse.password().unwrap().expose(), "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:9472");
        assert_eq!(c.clickhouse.database, "kevents");

        let dir = std::env::temp_dir().join(format!("kev-sink-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let c = ClickHouseConfig { password_file: Some(f), ..Default::default() };
        assert_eq!(c.password().unwrap().expose(), "s3cret");
    }

    #[test]
    fn cluster_replication_reads_as_lowercase_words() {
        let c: SinkConfig = serde_norway::from_str(
            "clickhouse: {url: 'http://a:1', cluster: kevents, cluster_replication: distributed, cluster_nodes: ['http://a:1', 'http://b:1']}\n",
        )
        .unwrap();
        c.validate().unwrap();
        let opts = c.clickhouse.render_options();
        assert_eq!(opts.cluster.unwrap().replication, Replication::Distributed);
        let deploy: SinkConfig = serde_norway::from_str(include_str!("../../deploy/config/sink.yaml")).unwrap();
        assert_eq!(deploy.clickhouse.cluster_replication, ClusterReplication::Keeper);
    }

    #[test]
    fn yaml_with_unknown_field_is_rejected() {
        let err = serde_norway::from_str::<SinkConfig>("clickhouse: {url: 'http://x:1', databse: k}\n").unwrap_err();
        assert!(err.to_string().contains("databse"), "{err}");
    }
}
