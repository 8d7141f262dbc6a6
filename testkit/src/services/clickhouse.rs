//! ClickHouse side of the harness: a fresh database per test, and [`OwnedClickHouse`],
//! a private server (chdb-core via scripts/lib/chdb_server.py) a fault test may stop for
//! a while and start again on the same port and data.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{self, ServiceProcess};
use super::{keep_test_data, unique_suffix, ServicesError, Tools};

/// chdb answers /ping about 0.5 s after start; the margin is for a machine busy
/// compiling and for a first start that creates the data dir.
const CLICKHOUSE_START_TIMEOUT: Duration = Duration::from_secs(90);

/// Does ClickHouse at `url` answer `GET /ping` with `Ok.`?
pub(crate) fn ping(url: &str) -> bool {
    matches!(
        process::http_request(url, "GET", "/ping", "", Duration::from_secs(2)),
        Ok((200, body)) if body.trim() == "Ok."
    )
}

/// A `clickhouse::Client` for `url` with the options every test wants.
pub fn client(url: &str) -> ::clickhouse::Client {
    ::clickhouse::Client::default().with_url(url)
}

/// A database of its own for one test, dropped (best effort, `SYNC`) on drop unless
/// `KEVENTS_KEEP_TEST_DATA` is set. Not `Clone` (the first clone dropped would drop the
/// database): clone its `client` instead.
pub struct TestDb {
    /// The database name (`<prefix>_<random>`).
    pub name: String,
    /// A client whose default database is `name`.
    pub client: ::clickhouse::Client,
    url: String,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish()
    }
}

impl TestDb {
    /// Create an `Atomic` database with a unique name on the server at `url`.
    pub async fn create(url: &str, prefix: &str) -> Result<TestDb, ServicesError> {
        let name = format!("{}_{}", sanitize(prefix), unique_suffix());
        client(url)
            .query(&format!("CREATE DATABASE `{name}` ENGINE = Atomic"))
            .execute()
            .await?;
        Ok(TestDb {
            client: client(url).with_database(&name),
            name,
            url: url.to_owned(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if keep_test_data() {
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS `{}` SYNC", self.name);
        let _ = process::http_request(&self.url, "POST", "/", &sql, Duration::from_secs(10));
    }
}

/// Database names: letters, digits and `_` only (so no quoting surprises anywhere).
fn sanitize(prefix: &str) -> String {
    let s: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() {
        "test".into()
    } else {
        s
    }
}

/// A private ClickHouse: its own port and data dir, stopped by PID on drop. Fault tests
/// `stop()` it ("ClickHouse down for 60 s") and `start()` it again: same port, same
/// tables.
#[derive(Debug)]
pub struct OwnedClickHouse {
    python: PathBuf,
    server_py: PathBuf,
    port: u16,
    log: PathBuf,
    process: Option<ServiceProcess>,
    // Last field: dropped after the process is stopped.
    dir: tempfile::TempDir,
}

impl OwnedClickHouse {
    /// Start a private ClickHouse on a free port and wait until /ping answers.
    pub fn spawn() -> Result<OwnedClickHouse, ServicesError> {
        let tools = Tools::get()?;
        let dir = tempfile::Builder::new()
            .prefix("kevents-clickhouse-")
            .tempdir()?;
        let log = dir.path().join("chdb.log");
        process::touch(&log)?;
        let mut server = OwnedClickHouse {
            python: tools.chdb_python.clone(),
            server_py: tools.chdb_server_py.clone(),
            port: process::free_port()?,
            log,
            process: None,
            dir,
        };
        server.start()?;
        Ok(server)
    }

    /// Start again (after `stop` or `kill9`) on the same port and data dir; waits for
    /// /ping. Returns how long that took. No-op when it runs.
    pub fn start(&mut self) -> Result<Duration, ServicesError> {
        if self.is_running() {
            return Ok(Duration::ZERO);
        }
        let url = self.url();
        process::log_marker(&self.log, &format!("start on {url}"));
        let mut command = Command::new(&self.python);
        command
            .arg(&self.server_py)
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--port", &self.port.to_string()])
            .args([
                "--start-timeout",
                &CLICKHOUSE_START_TIMEOUT.as_secs().to_string(),
            ]);
        let mut process = ServiceProcess::spawn("clickhouse (chdb)", command, &self.log)?;
        let took = process.wait_ready(&url, &self.log, CLICKHOUSE_START_TIMEOUT, || ping(&url))?;
        self.process = Some(process);
        Ok(took)
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// SIGTERM (the launcher exits at once), then SIGKILL after 10 s.
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

    /// `http://127.0.0.1:PORT`, the same across restarts.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServiceProcess::pid)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A client for this server (default database `default`).
    pub fn client(&self) -> ::clickhouse::Client {
        client(&self.url())
    }

    /// A fresh database on this server (see `Services::fresh_database`).
    pub async fn fresh_database(&self, prefix: &str) -> TestDb {
        TestDb::create(&self.url(), prefix)
            .await
            .unwrap_or_else(|e| panic!("creating a database on the owned ClickHouse: {e}"))
    }
}

impl Drop for OwnedClickHouse {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_plain_identifiers() {
        assert_eq!(sanitize("sink-test.v2"), "sink_test_v2");
        assert_eq!(sanitize(""), "test");
    }

    #[test]
    fn nothing_listening_does_not_ping() {
        let port = process::free_port().unwrap();
        assert!(!ping(&format!("http://127.0.0.1:{port}")));
    }
}
