//! Kafka connection settings shared by every stage: brokers, TLS and SASL.
//!
//! Secrets (SASL password, TLS key password) are read from the config, from an env
//! var, or from a file, and never appear in `Debug` output or logs.

use rdkafka::ClientConfig;

use super::secret::Secret;
use serde::{Deserialize, Serialize};

/// How to reach the Kafka cluster.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`. Default `127.0.0.1:9092`.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    /// TLS settings, used with `ssl` and `sasl_ssl`.
    #[serde(default)]
    pub tls: TlsConfig,
    /// SASL settings, used with `sasl_plaintext` and `sasl_ssl`.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
    /// Extra librdkafka properties (`name: value`), applied last. For tuning only:
    /// the guarantees kevents states depend on the properties it sets itself.
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, String>,
}

/// How long a stage's start-up check waits for a broker before going on (a broker
/// that refuses credentials or a certificate does so within a second or two).
pub const PREFLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: default_brokers(),
            security_protocol: SecurityProtocol::default(),
            tls: TlsConfig::default(),
            sasl: None,
            extra: Default::default(),
        }
    }
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("security_protocol", &self.security_protocol)
            .field("tls", &self.tls)
            .field("sasl", &self.sasl)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn as_rdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

/// TLS files (PEM). Empty fields use librdkafka's defaults (system CA store).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Verify the broker's host name against its certificate (default true).
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

fn yes() -> bool {
    true
}

/// Not derived: a config without a `tls` section must verify host names too.
impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { ca_file: None, cert_file: None, key_file: None, verify_hostname: yes() }
    }
}

/// SASL mechanism and credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    pub username: String,
    /// The password itself (prefer `password_file` or `password_env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Read the password from this file (e.g. a mounted Kubernetes Secret).
    #[serde(default)]
    pub password_file: Option<String>,
    /// Read the password from this environment variable.
    #[serde(default)]
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A config error that names the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl KafkaConfig {
    /// Check the settings; `prefix` is the path of this struct in the config file.
    pub fn validate(&self, prefix: &str) -> Result<(), FieldError> {
        if self.brokers.trim().is_empty() {
            return Err(FieldError::new(format!("{prefix}.brokers"), "must not be empty"));
        }
        let needs_sasl = matches!(
            self.security_protocol,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        );
        match (&self.sasl, needs_sasl) {
            (None, true) => {
                return Err(FieldError::new(
                    format!("{prefix}.sasl"),
                    "required by security_protocol sasl_*",
                ))
            }
            (Some(s), _) => {
                let sources = [s.password.is_some(), s.password_file.is_some(), s.password_env.is_some()]
                    .into_iter()
                    .filter(|set| *set)
                    .count();
                if sources != 1 {
                    return Err(FieldError::new(
                        format!("{prefix}.sasl.password"),
                        "set exactly one of password, password_file, password_env",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn sasl_password(&self, s: &SaslConfig) -> Result<String, FieldError> {
        if let Some(p) = &s.password {
            return Ok(p.expose().to_string());
        }
        if let Some(f) = &s.password_file {
            return std::fs::read_to_string(f)
                .map(|p| p.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| FieldError::new("kafka.sasl.password_file", format!("{f}: {e}")));
        }
        if let Some(v) = &s.password_env {
            return std::env::var(v)
                .map_err(|_| FieldError::new("kafka.sasl.password_env", format!("env var {v} is not set")));
        }
        Err(FieldError::new("kafka.sasl.password", "missing"))
    }

    /// An rdkafka client config with the connection and security settings.
    pub fn client_config(&self) -> Result<ClientConfig, FieldError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("security.protocol", self.security_protocol.as_rdkafka())
            .set("client.id", "kevents");
        if matches!(self.security_protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
            if let Some(v) = &self.tls.ca_file {
                c.set("ssl.ca.location", v);
            }
            if let Some(v) = &self.tls.cert_file {
                c.set("ssl.certificate.location", v);
            }
            if let Some(v) = &self.tls.key_file {
                c.set("ssl.key.location", v);
            }
            c.set(
                "ssl.endpoint.identification.algorithm",
                if self.tls.verify_hostname { "https" } else { "none" },
            );
        }
        if let Some(s) = &self.sasl {
            c.set("sasl.mechanism", s.mechanism.as_str())
                .set("sasl.username", &s.username)
                .set("sasl.password", self.sasl_password(s)?);
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        Ok(c)
    }

    /// Connect once at start-up (waiting up to `wait` for a broker) and fail on what retrying cannot fix: credentials the
    /// broker refuses (`kafka.sasl`) or a TLS handshake that fails (`kafka.tls.ca_file`),
    /// so a stage with a wrong password or CA stops within seconds with an error that
    /// names the setting, instead of retrying silently for ever (librdkafka treats both
    /// as transient). A broker that is merely not reachable yet is not an error here:
    /// the stages wait for it (backpressure), and their health says so.
    pub async fn preflight(&self, wait: std::time::Duration) -> Result<(), FieldError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.preflight_blocking(wait))
            .await
            .map_err(|e| FieldError::new("kafka", format!("preflight check panicked: {e}")))?
    }

    /// [`KafkaConfig::preflight`], blocking the thread for up to `wait`.
    pub fn preflight_blocking(&self, wait: std::time::Duration) -> Result<(), FieldError> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let ctx = PreflightContext::default();
        let consumer: BaseConsumer<PreflightContext> = self
            .client_config()?
            .set("log_level", "3")
            .create_with_context(ctx)
            .map_err(|e| FieldError::new("kafka", e.to_string()))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            let ok = consumer.fetch_metadata(None, std::time::Duration::from_millis(500)).is_ok();
            // Errors reach the context only through a poll (it serves the callbacks).
            let _ = consumer.poll(std::time::Duration::from_millis(100));
            if let Some(e) = consumer.context().first_fatal.lock().unwrap().take() {
                return Err(e);
            }
            if ok {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                tracing::warn!(brokers = %self.brokers, waited_ms = wait.as_millis() as u64, "no Kafka broker answered yet; continuing (the stage waits for it)");
                return Ok(());
            }
        }
    }
}

/// Records the first error librdkafka reports that names a setting to fix.
#[derive(Default)]
struct PreflightContext {
    first_fatal: std::sync::Mutex<Option<FieldError>>,
}

impl rdkafka::consumer::ConsumerContext for PreflightContext {}

impl rdkafka::ClientContext for PreflightContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::types::RDKafkaErrorCode as C;
        let field = match error.rdkafka_error_code() {
            Some(C::Authentication | C::SaslAuthenticationFailed) => {
                "kafka.sasl (username or password): the broker refused the credentials"
            }
            Some(C::SSL) => "kafka.tls.ca_file (or the broker's certificate): the TLS handshake failed",
            _ => return,
        };
        let (field, what) = field.split_once(": ").expect("field: message");
        let mut slot = self.first_fatal.lock().unwrap();
        if slot.is_none() {
            *slot = Some(FieldError::new(field, format!("{what}: {reason}")));
        }
    }
}

/// Why a topic could not be made sure of.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The admin client could not be built or could not reach the cluster.
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create it (not allowed, bad settings…).
    #[error("creating topic {topic}: {message}")]
    Refused { topic: String, message: String },
}

/// Create `topic` with `partitions` partitions and the given topic configs (e.g.
/// `("cleanup.policy", "compact")`) if it does not exist yet; an existing topic is
/// left as it is. The replication factor is the broker's default. Every stage that
/// may create its topics (`create_topic_partitions` > 0) goes through here.
pub async fn ensure_topic(client: &ClientConfig, topic: &str, partitions: i32, configs: &[(&str, &str)]) -> Result<(), TopicError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = client.create()?;
    let mut t = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    for r in admin.create_topics([&t], &AdminOptions::new()).await? {
        match r {
            Ok(_) => tracing::info!(%topic, partitions, "created topic"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(TopicError::Refused { topic: name, message: code.to_string() }),
        }
    }
    Ok(())
}

/// An idempotent producer (acks=all) that never gives up on a delivery: a broker
/// outage delays what it sends, it never loses it. The processor's (made
/// transactional on top) and the notifiers' sent-markers producer start here.
pub fn producer_config(base: &ClientConfig) -> ClientConfig {
    let mut c = base.clone();
    c.set("enable.idempotence", "true").set("acks", "all").set("message.timeout.ms", "0");
    set_default(&mut c, "compression.type", "lz4");
    set_default(&mut c, "linger.ms", "5");
    set_default(&mut c, "queue.buffering.max.messages", "1000000");
    c
}

/// A group consumer that stores offsets only when told (`enable.auto.offset.store`
/// off, or in a transaction) and sees only committed records (`read_committed`: the
/// processor writes in transactions). The processor's and each notifier's group.
pub fn consumer_config(base: &ClientConfig, group_id: &str) -> ClientConfig {
    let mut c = base.clone();
    c.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    // End-to-end latency: a fetch answers within 100 ms even when little is new
    // (librdkafka's default lets the broker hold it 500 ms).
    set_default(&mut c, "fetch.wait.max.ms", "100");
    // A crashed member's partitions move after this long (a stopped one leaves the
    // group at once). 30 s, not 10: longer than a broker cluster takes to notice a dead
    // node and move its group coordinator (`broker.session.timeout.ms` 9 s, then the
    // group's load), and than a heartbeat waits on a saturated machine — with 10 s a
    // member's session expired in both (docs/kafka-cluster.md, BENCHMARKS.md), its next
    // commit failed with UNKNOWN_MEMBER_ID and the member stopped.
    set_default(&mut c, "session.timeout.ms", "30000");
    set_default(&mut c, "heartbeat.interval.ms", "1000");
    // Feeds the lag gauges.
    set_default(&mut c, "statistics.interval.ms", "5000");
    c
}

/// Set `key` unless the user's config already did.
pub fn set_default(c: &mut ClientConfig, key: &str, value: &str) {
    if c.get(key).is_none() {
        c.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_needs_exactly_one_password_source_and_debug_hides_it() {
        let mut k = KafkaConfig {
            security_protocol: SecurityProtocol::SaslSsl,
            ..Default::default()
        };
        assert_eq!(k.validate("kafka").unwrap_err().field, "kafka.sasl");
        k.sasl = Some(SaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: "u".into(),
            password: Some(Secret::new("hunter2")),
            password_file: None,
            password_env: None,
        });
        k.validate("kafka").unwrap();
        assert!(!format!("{k:?}").contains("hunter2"));
        let c = k.client_config().unwrap();
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        // No `tls` section: the broker's host name is still verified.
        assert_eq!(c.get("ssl.endpoint.identification.algorithm"), Some("https"));
        k.sasl.as_mut().unwrap().password_env = Some("X".into());
        assert_eq!(k.validate("kafka").unwrap_err().field, "kafka.sasl.password");
    }

    #[test]
    fn settings_the_guarantee_rests_on_and_defaults_a_user_may_override() {
        let mut base = ClientConfig::new();
        base.set("session.timeout.ms", "30000").set("acks", "1");
        let c = consumer_config(&base, "g.hook");
        assert_eq!((c.get("group.id"), c.get("enable.auto.offset.store"), c.get("isolation.level")), (Some("g.hook"), Some("false"), Some("read_committed")));
        assert_eq!(c.get("session.timeout.ms"), Some("30000"), "the user's setting stays");
        let p = producer_config(&base);
        assert_eq!((p.get("acks"), p.get("enable.idempotence"), p.get("message.timeout.ms")), (Some("all"), Some("true"), Some("0")), "acks=all is not the user's to lower");
    }

}
