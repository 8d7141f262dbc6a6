//! The real local services integration tests run against: an Apache Kafka broker (its
//! jars from Maven Central, KRaft mode) and ClickHouse (chdb-core), started by
//! `scripts/services` — no mocks.
//!
//! Two ways to get them:
//! - [`Services::get`]: the **shared** pair every test of every test binary uses. It reads
//!   the env file `scripts/services up` writes (`$KEVENTS_SERVICES_ENV`, default
//!   `<workspace>/.kevents/services.env`); when the file is missing or its processes are
//!   dead it runs `scripts/services up` itself (the script serializes concurrent callers
//!   with a file lock and reuses what runs). It panics with the reason and the log tail
//!   when the services cannot start: an integration test never skips silently. Tests
//!   isolate themselves with [`Services::create_topics`] and [`Services::fresh_database`]
//!   (unique names), never by restarting the shared services.
//! - [`OwnedBroker`] / [`OwnedClickHouse`]: a **private** process with its own port and
//!   data dir, for fault tests that kill, stop and restart it (on the same port and data);
//!   [`OwnedKafkaCluster`]: N such brokers forming one KRaft cluster.
//!
//! Layout:
//! - `services.rs` (this file): the shared services, the env file, tool discovery, errors.
//! - `services/process.rs`: child processes, signals, ports, a tiny blocking HTTP client.
//! - `services/kafka.rs`: [`TestTopics`] and [`OwnedBroker`].
//! - `services/kafka_cluster.rs`: [`OwnedKafkaCluster`], N KRaft nodes to kill one by one.
//! - `services/clickhouse.rs`: [`TestDb`] and [`OwnedClickHouse`].
//! - `services/clickhouse_cluster.rs`: [`OwnedClickHouseCluster`], chdb nodes and a
//!   ZooKeeper as a ClickHouse cluster (docs/clickhouse-cluster.md).
//! - `services/read.rs`: [`read_topic`], every message of a topic, to count what a stage wrote.

mod clickhouse;
mod clickhouse_cluster;
mod kafka;
mod kafka_cluster;
pub(crate) mod process;
mod read;

pub use self::clickhouse::{OwnedClickHouse, TestDb};
pub use self::clickhouse_cluster::OwnedClickHouseCluster;
pub use self::kafka::{OwnedBroker, SaslListener, TestTopics};
pub use self::kafka_cluster::OwnedKafkaCluster;
pub use self::process::{free_port, http_request};
pub use self::read::{read_topic, ReadMessage};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::Duration;

/// Set to keep test topics and databases after the test (for debugging a failure).
pub const KEEP_TEST_DATA_ENV: &str = "KEVENTS_KEEP_TEST_DATA";

/// Why the services (or a private one) could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("cannot read the services env file {path}: {source}")]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the services env file {path} has no {key}")]
    EnvKey { path: PathBuf, key: &'static str },
    #[error("`{command}` failed ({status}){log_tail}")]
    Script {
        command: String,
        status: ExitStatus,
        log_tail: String,
    },
    #[error("cannot run {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} is not healthy after `scripts/services up`{log_tail}")]
    Unhealthy { what: String, log_tail: String },
    #[error("{what} exited during start-up ({status}){log_tail}")]
    Exited {
        what: String,
        status: ExitStatus,
        log_tail: String,
    },
    #[error("{what} on {addr} did not become ready within {waited:?}{log_tail}")]
    NotReady {
        what: String,
        addr: String,
        waited: Duration,
        log_tail: String,
    },
    #[error("creating topic {topic}: {code}")]
    TopicCreate {
        topic: String,
        code: rdkafka::types::RDKafkaErrorCode,
    },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("reading {topic}/{partition} timed out at offset {at} of {high}")]
    ReadTimeout { topic: String, partition: i32, at: i64, high: i64 },
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] ::clickhouse::error::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The shared broker and ClickHouse, as recorded in the env file.
#[derive(Debug, Clone)]
pub struct Services {
    kafka_bootstrap: String,
    clickhouse_url: String,
    kafka_pid: u32,
    /// Every node's pid: one for the single broker, N for a cluster.
    kafka_pids: Vec<u32>,
    clickhouse_pid: u32,
    sasl: SaslListener,
    env_file: PathBuf,
    kafka_log: PathBuf,
    clickhouse_log: PathBuf,
}

impl Services {
    /// The shared services, started on first use (see the module doc). Panics when they
    /// cannot be started, with the reason and the tail of the service logs.
    pub fn get() -> &'static Services {
        static SERVICES: OnceLock<Services> = OnceLock::new();
        SERVICES.get_or_init(|| {
            Services::discover().unwrap_or_else(|e| {
                panic!("kevents test services are not available: {e}\n(try `scripts/services up` by hand; `scripts/services status`)")
            })
        })
    }

    /// Read the env file; run `scripts/services up` when it is missing or stale.
    pub fn discover() -> Result<Services, ServicesError> {
        let path = env_file_path();
        if let Ok(services) = Services::read(&path) {
            if services.healthy() {
                return Ok(services);
            }
        }
        run_script(&["up"], &path)?;
        let services = Services::read(&path)?;
        if !services.healthy() {
            let mut log_tail = process::log_tail(&services.kafka_log, 20);
            log_tail.push_str(&process::log_tail(&services.clickhouse_log, 20));
            return Err(ServicesError::Unhealthy {
                what: format!(
                    "kafka {} / clickhouse {}",
                    services.kafka_bootstrap, services.clickhouse_url
                ),
                log_tail,
            });
        }
        Ok(services)
    }

    /// Parse an env file written by `scripts/services`.
    pub fn read(path: &Path) -> Result<Services, ServicesError> {
        let vars = read_env_file(path)?;
        let get = |key: &'static str| {
            vars.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| ServicesError::EnvKey {
                    path: path.to_owned(),
                    key,
                })
        };
        let pid = |key: &'static str| -> Result<u32, ServicesError> {
            get(key)?.parse().map_err(|_| ServicesError::EnvKey {
                path: path.to_owned(),
                key,
            })
        };
        let kafka_pid = pid("KEVENTS_KAFKA_PID")?;
        // A cluster records every node's pid (KEVENTS_KAFKA_PIDS, comma-separated).
        let kafka_pids = match vars.get("KEVENTS_KAFKA_PIDS").filter(|v| !v.is_empty()) {
            None => vec![kafka_pid],
            Some(list) => list
                .split(',')
                .map(|p| p.parse().map_err(|_| ServicesError::EnvKey { path: path.to_owned(), key: "KEVENTS_KAFKA_PIDS" }))
                .collect::<Result<_, _>>()?,
        };
        Ok(Services {
            kafka_bootstrap: get("KEVENTS_KAFKA_BOOTSTRAP")?,
            clickhouse_url: get("KEVENTS_CLICKHOUSE_URL")?,
            kafka_pid,
            kafka_pids,
            clickhouse_pid: pid("KEVENTS_CLICKHOUSE_PID")?,
            sasl: SaslListener {
                bootstrap: get("KEVENTS_KAFKA_SASL_BOOTSTRAP")?,
                ca_file: get("KEVENTS_KAFKA_CA_FILE")?.into(),
                username: get("KEVENTS_KAFKA_SASL_USER")?,
                password_file: get("KEVENTS_KAFKA_PASSWORD_FILE")?.into(),
            },
            env_file: path.to_owned(),
            kafka_log: get("KEVENTS_KAFKA_LOG")?.into(),
            clickhouse_log: get("KEVENTS_CLICKHOUSE_LOG")?.into(),
        })
    }

    /// Both processes alive, the broker accepting connections, ClickHouse answering
    /// /ping. (A cheap check: `scripts/services up` does the full Kafka metadata check.)
    /// For a cluster (`scripts/services up --kafka-brokers 3`) every node's pid and
    /// address is checked.
    pub fn healthy(&self) -> bool {
        self.kafka_pids.iter().all(|pid| process::pid_alive(*pid))
            && process::pid_alive(self.clickhouse_pid)
            && self.kafka_bootstrap.split(',').all(process::tcp_open)
            && self::clickhouse::ping(&self.clickhouse_url)
    }

    /// `127.0.0.1:PORT` of the shared broker (every node, comma-separated, when the
    /// services run a Kafka cluster).
    pub fn kafka_bootstrap(&self) -> String {
        self.kafka_bootstrap.clone()
    }

    /// `http://127.0.0.1:PORT` of the shared ClickHouse.
    pub fn clickhouse_url(&self) -> String {
        self.clickhouse_url.clone()
    }

    /// The broker's pid (node 1's for a cluster).
    pub fn kafka_pid(&self) -> u32 {
        self.kafka_pid
    }

    /// Every Kafka node's pid, in node order (one for the single broker).
    pub fn kafka_pids(&self) -> &[u32] {
        &self.kafka_pids
    }

    pub fn clickhouse_pid(&self) -> u32 {
        self.clickhouse_pid
    }

    /// The shared broker's SASL_SSL listener (SCRAM-SHA-512 over TLS).
    pub fn kafka_sasl(&self) -> &SaslListener {
        &self.sasl
    }

    pub fn env_file(&self) -> &Path {
        &self.env_file
    }

    /// An rdkafka config with `bootstrap.servers` set to the shared broker.
    pub fn kafka_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka_bootstrap);
        config
    }

    /// Create topics named `<prefix>-<name>-<random>` with the given partition counts,
    /// and wait until the broker's metadata shows all their partitions. Panics on failure.
    pub async fn create_topics(
        &self,
        prefix: &str,
        names_and_partitions: &[(&str, i32)],
    ) -> TestTopics {
        kafka::create_topics(&self.kafka_bootstrap, prefix, names_and_partitions)
            .await
            .unwrap_or_else(|e| panic!("creating test topics {names_and_partitions:?}: {e}"))
    }

    /// A new `Atomic` database named `<prefix>_<random>` with a client bound to it,
    /// dropped (best effort) when the [`TestDb`] is dropped. Panics on failure.
    pub async fn fresh_database(&self, prefix: &str) -> TestDb {
        TestDb::create(&self.clickhouse_url, prefix)
            .await
            .unwrap_or_else(|e| panic!("creating a test database: {e}"))
    }
}

/// `127.0.0.1:PORT` of the shared broker (starting the services if needed).
pub fn kafka_bootstrap() -> String {
    Services::get().kafka_bootstrap()
}

/// `http://127.0.0.1:PORT` of the shared ClickHouse (starting the services if needed).
pub fn clickhouse_url() -> String {
    Services::get().clickhouse_url()
}

/// The workspace root: testkit's parent directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives inside the workspace")
        .to_owned()
}

/// `$KEVENTS_SERVICES_ENV`, else `$KEVENTS_DIR/services.env`, else
/// `<workspace>/.kevents/services.env` — the same rule as scripts/lib/common.sh.
pub fn env_file_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KEVENTS_SERVICES_ENV") {
        return absolute(PathBuf::from(p));
    }
    let dir = std::env::var_os("KEVENTS_DIR")
        .map(|d| absolute(PathBuf::from(d)))
        .unwrap_or_else(|| workspace_root().join(".kevents"));
    dir.join("services.env")
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

fn read_env_file(path: &Path) -> Result<HashMap<String, String>, ServicesError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServicesError::EnvFile {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_env(&text))
}

/// `KEY=VALUE` lines; `#` comments and blank lines ignored; no quoting (the script
/// writes none).
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// Run `scripts/services ARGS` with the env file at `env_file`. Its progress goes to
/// our stderr (a first run may build the broker for minutes: never silent).
fn run_script(args: &[&str], env_file: &Path) -> Result<(), ServicesError> {
    let script = workspace_root().join("scripts/services");
    let command = format!("{} {}", script.display(), args.join(" "));
    eprintln!("testkit::services: running `{command}`");
    let status = Command::new(&script)
        .args(args)
        .env("KEVENTS_SERVICES_ENV", env_file)
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .status()
        .map_err(|source| ServicesError::Spawn {
            what: command.clone(),
            source,
        })?;
    if status.success() {
        return Ok(());
    }
    let dir = env_file.parent().unwrap_or(Path::new("."));
    let mut log_tail = process::log_tail(&dir.join("kafka/kafka.log"), 20);
    log_tail.push_str(&process::log_tail(&dir.join("clickhouse/chdb.log"), 20));
    Err(ServicesError::Script {
        command,
        status,
        log_tail,
    })
}

/// The Apache Kafka version `scripts/install-deps` installs (`KAFKA_VERSION` in
/// scripts/lib/common.sh; a unit test checks the two agree).
pub const KAFKA_VERSION: &str = "4.1.1";

/// Paths of the tools `scripts/install-deps` installs; installs them when missing.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub kafka_broker_sh: PathBuf,
    /// The marker install-deps writes once Kafka's jars are all in place.
    pub kafka_installed: PathBuf,
    pub chdb_python: PathBuf,
    pub chdb_server_py: PathBuf,
}

impl Tools {
    pub fn get() -> Result<&'static Tools, ServicesError> {
        static TOOLS: OnceLock<Tools> = OnceLock::new();
        if let Some(t) = TOOLS.get() {
            return Ok(t);
        }
        let cache = std::env::var_os("KEVENTS_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kevents")))
            .unwrap_or_else(|| PathBuf::from("/tmp/kevents-cache"));
        let tools = Tools {
            kafka_broker_sh: workspace_root().join("scripts/lib/kafka_broker.sh"),
            kafka_installed: cache.join(format!("kafka-{KAFKA_VERSION}/libs/.complete")),
            chdb_python: cache.join("chdb-venv/bin/python"),
            chdb_server_py: workspace_root().join("scripts/lib/chdb_server.py"),
        };
        if !tools.kafka_installed.exists() || !tools.chdb_python.exists() {
            let script = workspace_root().join("scripts/install-deps");
            eprintln!(
                "testkit::services: tools missing; running {}",
                script.display()
            );
            let status = Command::new(&script)
                .args(["--only", "chdb", "--only", "kafka"])
                .status()
                .map_err(|source| ServicesError::Spawn {
                    what: script.display().to_string(),
                    source,
                })?;
            if !status.success() {
                return Err(ServicesError::Script {
                    command: format!("{} --only chdb --only kafka", script.display()),
                    status,
                    log_tail: String::new(),
                });
            }
        }
        Ok(TOOLS.get_or_init(|| tools))
    }
}

/// A random suffix that makes test resource names unique across runs and processes.
pub(crate) fn unique_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

pub(crate) fn keep_test_data() -> bool {
    std::env::var_os(KEEP_TEST_DATA_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_env_file_lines() {
        let vars = parse_env(
            "# written by scripts/services\n\nKEVENTS_KAFKA_BOOTSTRAP=127.0.0.1:1234\nKEVENTS_KAFKA_PID=\nA=b=c\n",
        );
        assert_eq!(vars["KEVENTS_KAFKA_BOOTSTRAP"], "127.0.0.1:1234");
        assert_eq!(vars["KEVENTS_KAFKA_PID"], "");
        assert_eq!(vars["A"], "b=c");
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn read_rejects_missing_and_empty_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("services.env");
        std::fs::write(
            &path,
            "KEVENTS_KAFKA_BOOTSTRAP=127.0.0.1:1\nKEVENTS_CLICKHOUSE_URL=http://127.0.0.1:2\nKEVENTS_KAFKA_PID=\n",
        )
        .unwrap();
        match Services::read(&path) {
            Err(ServicesError::EnvKey { key, .. }) => assert_eq!(key, "KEVENTS_KAFKA_PID"),
            other => panic!("expected a missing-key error, got {other:?}"),
        }
        assert!(matches!(
            Services::read(&dir.path().join("absent.env")),
            Err(ServicesError::EnvFile { .. })
        ));
    }

    #[test]
    fn dead_services_are_not_healthy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("services.env");
        let port = process::free_port().unwrap();
        std::fs::write(
            &path,
            format!(
                "KEVENTS_KAFKA_BOOTSTRAP=127.0.0.1:{port}\nKEVENTS_CLICKHOUSE_URL=http://127.0.0.1:{port}\n\
                 KEVENTS_KAFKA_PID={pid}\nKEVENTS_CLICKHOUSE_PID={pid}\nKEVENTS_KAFKA_LOG=/x\nKEVENTS_CLICKHOUSE_LOG=/y\n\
                 KEVENTS_KAFKA_SASL_BOOTSTRAP=127.0.0.1:1\nKEVENTS_KAFKA_CA_FILE=/ca.pem\n\
                 KEVENTS_KAFKA_SASL_USER=kevents\nKEVENTS_KAFKA_PASSWORD_FILE=/pw\n",
                pid = std::process::id()
            ),
        )
        .unwrap();
        let s = Services::read(&path).unwrap();
        assert_eq!(s.kafka_bootstrap(), format!("127.0.0.1:{port}"));
        assert_eq!(s.kafka_sasl().username, "kevents");
        assert_eq!(s.kafka_pids(), &[std::process::id()]);
        // Our own pid is alive, but nothing listens on the port.
        assert!(!s.healthy());
    }

    #[test]
    fn a_cluster_is_healthy_only_when_every_node_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("services.env");
        let listeners: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let ch = TcpListener::bind("127.0.0.1:0").unwrap();
        // Something answering /ping for ClickHouse.
        let ch_port = ch.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in ch.incoming().flatten() {
                use std::io::{Read, Write};
                let mut s = s;
                let _ = s.read(&mut [0u8; 1024]);
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nOk.");
            }
        });
        let bootstrap: Vec<String> = listeners.iter().map(|l| l.local_addr().unwrap().to_string()).collect();
        let me = std::process::id();
        let write = |pids: &str| {
            std::fs::write(
                &path,
                format!(
                    "KEVENTS_KAFKA_BOOTSTRAP={}\nKEVENTS_CLICKHOUSE_URL=http://127.0.0.1:{ch_port}\n\
                     KEVENTS_KAFKA_PID={me}\nKEVENTS_CLICKHOUSE_PID={me}\nKEVENTS_KAFKA_LOG=/x\nKEVENTS_CLICKHOUSE_LOG=/y\n\
                     KEVENTS_KAFKA_SASL_BOOTSTRAP=127.0.0.1:1\nKEVENTS_KAFKA_CA_FILE=/ca.pem\n\
                     KEVENTS_KAFKA_SASL_USER=kevents\nKEVENTS_KAFKA_PASSWORD_FILE=/pw\nKEVENTS_KAFKA_BROKERS=3\n\
                     KEVENTS_KAFKA_PIDS={pids}\n",
                    bootstrap.join(",")
                ),
            )
            .unwrap();
            Services::read(&path).unwrap()
        };
        let s = write(&format!("{me},{me},{me}"));
        assert_eq!(s.kafka_pids().len(), 3);
        assert!(s.healthy(), "three live pids, three listening nodes");
        // A node whose pid is gone (i32::MAX is never a live pid).
        let s = write(&format!("{me},{},{me}", i32::MAX));
        assert!(!s.healthy());
        drop(listeners);
    }

    #[test]
    fn kafka_version_matches_the_scripts() {
        let common = std::fs::read_to_string(workspace_root().join("scripts/lib/common.sh")).unwrap();
        assert!(common.contains(&format!("KAFKA_VERSION=\"{KAFKA_VERSION}\"")));
        let pom = std::fs::read_to_string(workspace_root().join("tools/kafka/pom.xml")).unwrap();
        assert!(pom.contains(&format!("<kafka.version>{KAFKA_VERSION}</kafka.version>")));
    }

    #[test]
    fn unique_suffixes_differ() {
        let a: std::collections::HashSet<String> = (0..100).map(|_| unique_suffix()).collect();
        assert_eq!(a.len(), 100);
    }
}
