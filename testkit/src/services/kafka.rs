//! Kafka side of the harness: uniquely named test topics on a broker, and
//! [`OwnedBroker`], a private nisshi a fault test may crash and restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::process::{self, ServiceProcess};
use super::{keep_test_data, unique_suffix, ServicesError, Tools};

/// How long a broker may take to answer metadata after start (it takes ~30 ms idle;
/// the margin is for a machine busy compiling).
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);
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

fn admin_client(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>, ServicesError> {
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
            NewTopic::new(real, *partitions, TopicReplication::Fixed(1))
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

/// Where an [`OwnedBroker`] keeps its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KafkaStorage {
    /// `sqlite://` in the data dir: messages and committed offsets survive `kill -9`.
    #[default]
    Sqlite,
    /// `memory://`: about 5x faster, lost on any stop. For throughput benchmarks.
    Memory,
}

impl KafkaStorage {
    /// nisshi's `--storage-engine` value. sqlite paths are relative to the cwd, which
    /// we set to the data dir.
    fn engine_url(self) -> &'static str {
        match self {
            KafkaStorage::Sqlite => "sqlite://kafka.db",
            KafkaStorage::Memory => "memory://nisshi/",
        }
    }
}

/// A private broker: its own port and data dir, stopped by PID on drop. Fault tests
/// `kill9()` / `stop()` it and `start()` it again on the same port with the same data.
#[derive(Debug)]
pub struct OwnedBroker {
    nisshi: PathBuf,
    storage: KafkaStorage,
    port: u16,
    log: PathBuf,
    process: Option<ServiceProcess>,
    // Last field: dropped after the process is stopped.
    dir: tempfile::TempDir,
}

impl OwnedBroker {
    /// Start a private broker on a free port and wait until it answers metadata.
    pub fn spawn(storage: KafkaStorage) -> Result<OwnedBroker, ServicesError> {
        let tools = Tools::get()?;
        let dir = tempfile::Builder::new()
            .prefix("kevents-broker-")
            .tempdir()?;
        let log = dir.path().join("nisshi.log");
        process::touch(&log)?;
        let mut broker = OwnedBroker {
            nisshi: tools.nisshi.clone(),
            storage,
            port: process::free_port()?,
            log,
            process: None,
            dir,
        };
        broker.start()?;
        Ok(broker)
    }

    /// Start again (after `stop` or `kill9`) on the same port and data dir; waits until
    /// the broker answers. Returns how long that took. No-op when it runs.
    pub fn start(&mut self) -> Result<Duration, ServicesError> {
        if self.is_running() {
            return Ok(Duration::ZERO);
        }
        let bootstrap = self.bootstrap();
        let listener = format!("tcp://{bootstrap}");
        process::log_marker(&self.log, &format!("start on {bootstrap}"));
        let mut command = Command::new(&self.nisshi);
        command
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
            ])
            .args(["--storage-engine", self.storage.engine_url()])
            .args(["--group-initial-rebalance-delay", "0s"]);
        let mut process = ServiceProcess::spawn("nisshi broker", command, &self.log)?;
        let took = process.wait_ready(&bootstrap, &self.log, BROKER_START_TIMEOUT, || {
            broker_ready(&bootstrap)
        })?;
        self.process = Some(process);
        Ok(took)
    }

    /// SIGKILL: a crash. With sqlite storage, acknowledged messages must survive it.
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

    pub fn storage(&self) -> KafkaStorage {
        self.storage
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
    fn storage_urls_are_what_nisshi_expects() {
        assert_eq!(KafkaStorage::default(), KafkaStorage::Sqlite);
        assert_eq!(KafkaStorage::Sqlite.engine_url(), "sqlite://kafka.db");
        assert_eq!(KafkaStorage::Memory.engine_url(), "memory://nisshi/");
    }

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
