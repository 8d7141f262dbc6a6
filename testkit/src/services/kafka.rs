//! Kafka side of the harness: uniquely named test topics on a broker, and
//! [`OwnedBroker`], a private Apache Kafka broker a fault test may crash and restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::process::{self, ServiceProcess};
use super::{keep_test_data, unique_suffix, ServicesError, Tools};

/// How long a broker may take to answer metadata after start (a JVM: about 5 s on an
/// idle 2-core machine, 2 s more for the first start of a directory; the margin is for a
/// machine busy compiling and running other tests).
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(90);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Topics created for one test; deleted (best effort) on drop unless
/// `KEVENTS_KEEP_TEST_DATA` is set.
#[derive(Debug)]
pub struct TestTopics {
    bootstrap: String,
    /// (logical name as passed in, real topic name)
    names: Vec<(String, String)>,
}

impl TestTopics {
    /// The real name of the topic created for `logical` (as passed to `create_topics`).
    /// Panics for a name that was not requested: a typo in a test.
    pub fn name(&self, logical: &str) -> &str {
        self.names
            .iter()
            .find(|(l, _)| l == logical)
            .map(|(_, real)| real.as_str())
            .unwrap_or_else(|| panic!("no test topic {logical:?} (have {:?})", self.names))
    }

    /// All real topic names, in the order requested.
    pub fn names(&self) -> Vec<&str> {
        self.names.iter().map(|(_, r)| r.as_str()).collect()
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for TestTopics {
    fn drop(&mut self) {
        if keep_test_data() || self.names.is_empty() {
            return;
        }
        let Ok(admin) = admin_client(&self.bootstrap) else {
            return;
        };
        let names: Vec<&str> = self.names.iter().map(|(_, r)| r.as_str()).collect();
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        // rdkafka's admin futures are completed by its own thread, so a plain executor
        // works here whether or not a tokio runtime is running.
        let _ = futures::executor::block_on(admin.delete_topics(&names, &opts));
    }
}

pub(crate) fn admin_client(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>, ServicesError> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "kevents-testkit-admin")
        .create()?)
}

/// Create `<prefix>-<name>-<suffix>` topics and wait until metadata lists each with its
/// partitions (librdkafka clients that look too early see "unknown topic").
pub(crate) async fn create_topics(
    bootstrap: &str,
    prefix: &str,
    names_and_partitions: &[(&str, i32)],
) -> Result<TestTopics, ServicesError> {
    create_replicated_topics(bootstrap, prefix, names_and_partitions, 1, &[]).await
}

/// [`create_topics`] with `replication` replicas per partition and topic `configs`
/// (e.g. `("min.insync.replicas", "2")`): a cluster's topics.
pub(crate) async fn create_replicated_topics(
    bootstrap: &str,
    prefix: &str,
    names_and_partitions: &[(&str, i32)],
    replication: i32,
    configs: &[(&str, &str)],
) -> Result<TestTopics, ServicesError> {
    let suffix = unique_suffix();
    let topics = TestTopics {
        bootstrap: bootstrap.to_owned(),
        names: names_and_partitions
            .iter()
            .map(|(n, _)| (n.to_string(), format!("{prefix}-{n}-{suffix}")))
            .collect(),
    };
    let admin = admin_client(bootstrap)?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .names
        .iter()
        .zip(names_and_partitions)
        .map(|((_, real), (_, partitions))| {
            configs.iter().fold(
                NewTopic::new(real, *partitions, TopicReplication::Fixed(replication)),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    for result in admin.create_topics(&new_topics, &opts).await? {
        if let Err((topic, code)) = result {
            return Err(ServicesError::TopicCreate { topic, code });
        }
    }
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    for ((_, real), (_, partitions)) in topics.names.iter().zip(names_and_partitions) {
        loop {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(real), Duration::from_secs(5))?;
            let ready = metadata.topics().iter().any(|t| {
                t.name() == real
                    && t.error().is_none()
                    && t.partitions().len() == *partitions as usize
            });
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(ServicesError::NotReady {
                    what: format!("topic {real} ({partitions} partitions) in metadata"),
                    addr: bootstrap.to_owned(),
                    waited: ADMIN_TIMEOUT,
                    log_tail: String::new(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(topics)
}

/// A broker's SASL_SSL listener as a client sees it: SCRAM-SHA-512 over TLS, the
/// server certificate signed by `ca_file`, user `kevents` whose password is in
/// `password_file` (all made by `scripts/lib/kafka_broker.sh` at the first start).
#[derive(Debug, Clone)]
pub struct SaslListener {
    pub bootstrap: String,
    pub ca_file: PathBuf,
    pub username: String,
    pub password_file: PathBuf,
}

impl SaslListener {
    pub(crate) fn in_broker_dir(bootstrap: String, dir: &Path) -> SaslListener {
        SaslListener {
            bootstrap,
            ca_file: dir.join("tls/ca.pem"),
            username: "kevents".into(),
            password_file: dir.join("tls/kevents.password"),
        }
    }

    /// The password, read from its file.
    pub fn password(&self) -> String {
        std::fs::read_to_string(&self.password_file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.password_file.display()))
            .trim()
            .to_owned()
    }

    /// An rdkafka config that connects over this listener.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("security.protocol", "sasl_ssl")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", &self.username)
            .set("sasl.password", self.password())
            .set("ssl.ca.location", self.ca_file.display().to_string());
        config
    }
}

/// Does the broker at `bootstrap` answer a metadata request that lists itself?
pub(crate) fn broker_ready(bootstrap: &str) -> bool {
    if !process::tcp_open(bootstrap) {
        return false;
    }
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3") // a broker still starting is expected: no noise
        .create()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    let port = bootstrap
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<i32>().ok());
    match consumer.fetch_metadata(None, Duration::from_secs(2)) {
        Ok(m) => m.brokers().iter().any(|b| Some(b.port()) == port),
        Err(_) => false,
    }
}

/// A private broker: its own ports and data dir, stopped by PID on drop. Fault tests
/// `kill9()` / `stop()` it and `start()` it again on the same ports with the same data.
///
/// It is the same broker as the shared one (`scripts/lib/kafka_broker.sh`: Apache Kafka
/// in KRaft mode, one node), with a PLAINTEXT and a SASL_SSL listener.
#[derive(Debug)]
pub struct OwnedBroker {
    launcher: PathBuf,
    port: u16,
    sasl_port: u16,
    log: PathBuf,
    process: Option<ServiceProcess>,
    // Last field: dropped after the process is stopped.
    dir: tempfile::TempDir,
}

impl OwnedBroker {
    /// Start a private broker on free ports and wait until it answers metadata.
    pub fn spawn() -> Result<OwnedBroker, ServicesError> {
        OwnedBroker::spawn_with(&[])
    }

    /// A private broker whose `server.properties` differ from the ordinary one's by
    /// `overrides` (e.g. a broker that cannot host its transaction state topic).
    pub fn spawn_with(overrides: &[(&str, &str)]) -> Result<OwnedBroker, ServicesError> {
        let tools = Tools::get()?;
        let dir = tempfile::Builder::new()
            .prefix("kevents-broker-")
            .tempdir()?;
        if !overrides.is_empty() {
            let broker_dir = dir.path().join("broker");
            std::fs::create_dir_all(&broker_dir)?;
            let lines: String = overrides.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            std::fs::write(broker_dir.join("extra.properties"), lines)?;
        }
        let log = dir.path().join("kafka.log");
        process::touch(&log)?;
        let port = process::free_port()?;
        let mut sasl_port = process::free_port()?;
        while sasl_port == port {
            sasl_port = process::free_port()?;
        }
        let mut broker = OwnedBroker {
            launcher: tools.kafka_broker_sh.clone(),
            port,
            sasl_port,
            log,
            process: None,
            dir,
        };
        broker.start()?;
        Ok(broker)
    }

    /// Start again (after `stop` or `kill9`) on the same ports and data dir; waits until
    /// the broker answers. Returns how long that took. No-op when it runs.
    pub fn start(&mut self) -> Result<Duration, ServicesError> {
        if self.is_running() {
            return Ok(Duration::ZERO);
        }
        let bootstrap = self.bootstrap();
        process::log_marker(&self.log, &format!("start on {bootstrap}"));
        let mut command = Command::new(&self.launcher);
        command
            .arg(self.dir.path().join("broker"))
            .arg(self.port.to_string())
            .arg(self.sasl_port.to_string());
        let mut process = ServiceProcess::spawn("kafka broker", command, &self.log)?;
        let took = process.wait_ready(&bootstrap, &self.log, BROKER_START_TIMEOUT, || {
            broker_ready(&bootstrap)
        })?;
        self.process = Some(process);
        Ok(took)
    }

    /// SIGKILL: a crash. What the broker acknowledged to an `acks=all` producer is in
    /// its log files (the page cache outlives the process), so it survives this.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// `stop` then `start`.
    pub fn restart(&mut self) -> Result<Duration, ServicesError> {
        self.stop();
        self.start()
    }

    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(ServiceProcess::is_running)
    }

    /// `127.0.0.1:PORT`, the same across restarts.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServiceProcess::pid)
    }

    /// The SASL_SSL listener: `127.0.0.1:PORT`.
    pub fn sasl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_port)
    }

    /// How a client reaches the SASL_SSL listener (CA, user, password file).
    pub fn sasl(&self) -> SaslListener {
        SaslListener::in_broker_dir(self.sasl_bootstrap(), &self.dir.path().join("broker"))
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// An rdkafka config with `bootstrap.servers` set to this broker.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        config
    }

    /// Create uniquely named topics on this broker (see `Services::create_topics`).
    pub async fn create_topics(
        &self,
        prefix: &str,
        names_and_partitions: &[(&str, i32)],
    ) -> TestTopics {
        create_topics(&self.bootstrap(), prefix, names_and_partitions)
            .await
            .unwrap_or_else(|e| panic!("creating topics on the owned broker: {e}"))
    }
}

impl Drop for OwnedBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_listening_is_not_ready() {
        let port = process::free_port().unwrap();
        assert!(!broker_ready(&format!("127.0.0.1:{port}")));
    }

    #[test]
    fn topic_names_resolve_by_logical_name() {
        let t = TestTopics {
            bootstrap: "127.0.0.1:1".into(),
            names: vec![
                ("raw".into(), "p-raw-1".into()),
                ("out".into(), "p-out-1".into()),
            ],
        };
        assert_eq!(t.name("out"), "p-out-1");
        assert_eq!(t.names(), vec!["p-raw-1", "p-out-1"]);
        std::mem::forget(t); // nothing to delete on a broker that does not exist
    }
}
