//! [`OwnedClickHouseCluster`]: a private ClickHouse cluster of chdb-core processes on
//! loopback — `shards × replicas` nodes that serve HTTP and the native protocol, with
//! `remote_servers` and macros written at start, and a ZooKeeper (scripts/lib/zookeeper.sh)
//! they are configured with. Fault tests `kill9(i)` a node and `start(i)` it again on the
//! same ports and data. What chdb can and cannot do as a cluster node (no replication, no
//! `ON CLUSTER`): docs/clickhouse-cluster.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::clickhouse::{client, ping};
use super::process::{self, ServiceProcess};
use super::{workspace_root, ServicesError, Tools};

/// As `OwnedClickHouse`: chdb answers in about 0.5 s; the margin is for a busy machine.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(90);
/// A JVM: about 1 s here, more while cargo builds.
const ZOOKEEPER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Must match ZOOKEEPER_VERSION in scripts/lib/common.sh.
const ZOOKEEPER_VERSION: &str = "3.9.5";

/// One chdb node of the cluster.
#[derive(Debug)]
struct Node {
    shard: usize,
    replica: usize,
    http_port: u16,
    tcp_port: u16,
    dir: PathBuf,
    log: PathBuf,
    process: Option<ServiceProcess>,
}

/// A private ClickHouse cluster; every process stopped by PID on drop.
#[derive(Debug)]
pub struct OwnedClickHouseCluster {
    name: String,
    shards: usize,
    replicas: usize,
    nodes: Vec<Node>,
    zookeeper_port: u16,
    zookeeper: Option<ServiceProcess>,
    // Last field: dropped after the processes are stopped.
    dir: tempfile::TempDir,
}

impl OwnedClickHouseCluster {
    /// Start ZooKeeper and `shards × replicas` chdb nodes on free ports, as the cluster
    /// `name`; waits until every node answers /ping. Node `i` is shard `i / replicas + 1`,
    /// replica `i % replicas + 1`.
    pub fn spawn(name: &str, shards: usize, replicas: usize) -> Result<OwnedClickHouseCluster, ServicesError> {
        assert!(shards >= 1 && replicas >= 1, "a cluster has at least one node");
        Tools::get()?; // installs chdb when missing
        ensure_zookeeper()?;
        let dir = tempfile::Builder::new().prefix("kevents-chcluster-").tempdir()?;
        let mut nodes = Vec::new();
        for i in 0..shards * replicas {
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let log = node_dir.join("chdb.log");
            process::touch(&log)?;
            nodes.push(Node {
                shard: i / replicas + 1,
                replica: i % replicas + 1,
                http_port: process::free_port()?,
                tcp_port: process::free_port()?,
                dir: node_dir,
                log,
                process: None,
            });
        }
        let mut cluster = OwnedClickHouseCluster {
            name: name.to_owned(),
            shards,
            replicas,
            nodes,
            zookeeper_port: process::free_port()?,
            zookeeper: None,
            dir,
        };
        cluster.start_zookeeper()?;
        for i in 0..cluster.nodes.len() {
            cluster.start(i)?;
        }
        Ok(cluster)
    }

    fn start_zookeeper(&mut self) -> Result<(), ServicesError> {
        let zk_dir = self.dir.path().join("zookeeper");
        std::fs::create_dir_all(&zk_dir)?;
        let log = zk_dir.join("zookeeper.log");
        process::touch(&log)?;
        let mut command = Command::new(workspace_root().join("scripts/lib/zookeeper.sh"));
        command.arg(&zk_dir).arg(self.zookeeper_port.to_string());
        let mut p = ServiceProcess::spawn("zookeeper", command, &log)?;
        let port = self.zookeeper_port;
        p.wait_ready(&format!("127.0.0.1:{port}"), &log, ZOOKEEPER_START_TIMEOUT, || zookeeper_serving(port))?;
        self.zookeeper = Some(p);
        Ok(())
    }

    /// Start node `i` (again, after `kill9`) on its ports and data dir; waits for /ping.
    /// No-op when it runs.
    pub fn start(&mut self, i: usize) -> Result<Duration, ServicesError> {
        let tools = Tools::get()?;
        let shards: Vec<String> = (1..=self.shards)
            .map(|s| {
                self.nodes
                    .iter()
                    .filter(|n| n.shard == s)
                    .map(|n| format!("127.0.0.1:{}", n.tcp_port))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let zookeeper = format!("127.0.0.1:{}", self.zookeeper_port);
        let name = self.name.clone();
        let node = &mut self.nodes[i];
        if node.process.as_mut().is_some_and(ServiceProcess::is_running) {
            return Ok(Duration::ZERO);
        }
        let url = format!("http://127.0.0.1:{}", node.http_port);
        process::log_marker(&node.log, &format!("start on {url}"));
        let mut command = Command::new(&tools.chdb_python);
        command
            .arg(&tools.chdb_server_py)
            .arg("--dir")
            .arg(&node.dir)
            .args(["--port", &node.http_port.to_string()])
            .args(["--tcp-port", &node.tcp_port.to_string()])
            .args(["--cluster", &name])
            .args(shards.iter().flat_map(|s| ["--shard", s.as_str()]))
            .args(["--shard-index", &node.shard.to_string()])
            .args(["--replica-index", &node.replica.to_string()])
            .args(["--zookeeper", &zookeeper])
            .args(["--start-timeout", &NODE_START_TIMEOUT.as_secs().to_string()]);
        let what = format!("clickhouse node {i} (chdb, shard {} replica {})", node.shard, node.replica);
        let mut p = ServiceProcess::spawn(&what, command, &node.log)?;
        let took = p.wait_ready(&url, &node.log, NODE_START_TIMEOUT, || ping(&url))?;
        node.process = Some(p);
        Ok(took)
    }

    /// SIGKILL node `i`: a crash.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            p.kill9();
        }
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i].process.as_mut().is_some_and(ServiceProcess::is_running)
    }

    /// The cluster's name in `remote_servers`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// Every node's `http://127.0.0.1:PORT`, node 0 first; the same across restarts.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].http_port)
    }

    /// Node `i`'s native-protocol port.
    pub fn tcp_port(&self, i: usize) -> u16 {
        self.nodes[i].tcp_port
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].process.as_ref().and_then(ServiceProcess::pid)
    }

    /// `127.0.0.1:PORT` of the cluster's ZooKeeper.
    pub fn zookeeper(&self) -> String {
        format!("127.0.0.1:{}", self.zookeeper_port)
    }

    pub fn log_path(&self, i: usize) -> &Path {
        &self.nodes[i].log
    }

    /// A client for node `i` (default database `default`).
    pub fn client(&self, i: usize) -> ::clickhouse::Client {
        client(&self.url(i))
    }
}

impl Drop for OwnedClickHouseCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut p) = n.process.take() {
                p.stop(Duration::from_secs(10));
            }
        }
        if let Some(mut p) = self.zookeeper.take() {
            p.stop(Duration::from_secs(10));
        }
    }
}

/// Does ZooKeeper on `port` serve requests? `srvr`, not `ruok`: `ruok` answers `imok`
/// even when the server thread died while loading (seen with a jar missing), `srvr`
/// then says "not currently serving requests".
fn zookeeper_serving(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"srvr").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("Mode: standalone")
}

/// Install ZooKeeper's jars (scripts/install-deps --only zookeeper) when missing.
fn ensure_zookeeper() -> Result<(), ServicesError> {
    let cache = std::env::var_os("KEVENTS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kevents")))
        .unwrap_or_else(|| PathBuf::from("/tmp/kevents-cache"));
    if cache.join(format!("zookeeper-{ZOOKEEPER_VERSION}/libs/.complete")).exists() {
        return Ok(());
    }
    let script = workspace_root().join("scripts/install-deps");
    let status = Command::new(&script)
        .args(["--only", "zookeeper"])
        .status()
        .map_err(|source| ServicesError::Spawn { what: script.display().to_string(), source })?;
    if !status.success() {
        return Err(ServicesError::Script {
            command: format!("{} --only zookeeper", script.display()),
            status,
            log_tail: String::new(),
        });
    }
    Ok(())
}
