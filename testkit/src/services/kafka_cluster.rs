//! [`OwnedKafkaCluster`]: a private Apache Kafka cluster of N KRaft nodes that a fault
//! test kills (`kill -9`) and restarts node by node.
//!
//! Each node is the broker of `scripts/lib/kafka_broker.sh` (the same script as the
//! shared broker, [`super::OwnedBroker`] and `scripts/services up --kafka-brokers N`),
//! started in its cluster form: combined broker + controller, node id 1..=N, a static
//! N-voter controller quorum, one cluster id, node 1's CA and SCRAM password copied to
//! the others. With 3 nodes the internal topics (consumer offsets, transaction state)
//! have 3 replicas and `min.insync.replicas` 2, and `default.replication.factor` is 3.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use rdkafka::ClientConfig;

use super::kafka::{create_replicated_topics, TestTopics};
use super::process::{self, ServiceProcess};
use super::{ServicesError, Tools};

/// A node takes as long as a single broker, plus the quorum's election when all start.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(120);
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// One node's fixed ports (the same across restarts: clients' addresses stay valid).
#[derive(Debug)]
struct Node {
    port: u16,
    sasl_port: u16,
    controller_port: u16,
    log: PathBuf,
    process: Option<ServiceProcess>,
}

/// A private Kafka cluster: N nodes on free ports in one temp dir, stopped by PID on
/// drop. Nodes are named by their Kafka node id, `1..=N` (what metadata calls the
/// broker id and a partition's leader).
#[derive(Debug)]
pub struct OwnedKafkaCluster {
    launcher: PathBuf,
    cluster_id: String,
    nodes: Vec<Node>,
    // Last field: dropped after the processes are stopped.
    dir: tempfile::TempDir,
}

impl OwnedKafkaCluster {
    /// Start `n` nodes (all at once: the quorum needs a majority) and wait until each
    /// answers metadata that lists all `n` brokers.
    pub fn spawn(n: usize) -> Result<OwnedKafkaCluster, ServicesError> {
        assert!(n >= 1, "a cluster has at least one node");
        let tools = Tools::get()?;
        let dir = tempfile::Builder::new()
            .prefix("kevents-kafka-cluster-")
            .tempdir()?;
        let mut taken = std::collections::HashSet::new();
        let mut port = || -> std::io::Result<u16> {
            loop {
                let p = process::free_port()?;
                if taken.insert(p) {
                    return Ok(p);
                }
            }
        };
        let mut nodes = Vec::with_capacity(n);
        for id in 1..=n {
            let log = dir.path().join(format!("node-{id}.log"));
            process::touch(&log)?;
            nodes.push(Node {
                port: port()?,
                sasl_port: port()?,
                controller_port: port()?,
                log,
                process: None,
            });
        }
        let mut cluster = OwnedKafkaCluster {
            launcher: tools.kafka_broker_sh.clone(),
            cluster_id: new_cluster_id(),
            nodes,
            dir,
        };
        for id in 1..=n {
            cluster.spawn_node(id)?;
            if id == 1 {
                // The others copy node 1's tls/ (CA, SCRAM password): wait until it made it.
                cluster.wait_for_file(1, &cluster.node_dir(1).join("server.properties"))?;
            }
        }
        for id in 1..=n {
            cluster.wait_node_ready(id)?;
        }
        Ok(cluster)
    }

    /// Start node `id` again (after `kill9` or `stop`) on its ports and data, and wait
    /// until it answers metadata listing the whole cluster. Returns how long that
    /// took. No-op when it runs.
    pub fn start(&mut self, id: i32) -> Result<Duration, ServicesError> {
        if self.is_running(id) {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        self.spawn_node(id as usize)?;
        self.wait_node_ready(id as usize)?;
        Ok(started.elapsed())
    }

    /// SIGKILL node `id`: a crash. What it acknowledged as part of an `acks=all` write
    /// is also on the in-sync followers.
    pub fn kill9(&mut self, id: i32) {
        if let Some(mut p) = self.node_mut(id).process.take() {
            p.kill9();
        }
    }

    /// SIGTERM node `id` (a controlled shutdown: leadership moves first), SIGKILL
    /// after 10 s.
    pub fn stop(&mut self, id: i32) {
        if let Some(mut p) = self.node_mut(id).process.take() {
            p.stop(Duration::from_secs(10));
        }
    }

    pub fn is_running(&mut self, id: i32) -> bool {
        self.node_mut(id)
            .process
            .as_mut()
            .is_some_and(ServiceProcess::is_running)
    }

    pub fn pid(&self, id: i32) -> Option<u32> {
        self.node(id).process.as_ref().and_then(ServiceProcess::pid)
    }

    /// How many nodes the cluster has.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Every node, `127.0.0.1:P1,127.0.0.1:P2,...`: what clients are given.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s PLAINTEXT listener.
    pub fn node_bootstrap(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.node(id).port)
    }

    /// Every node's SASL_SSL listener (one CA and one password for all).
    pub fn sasl(&self) -> super::SaslListener {
        let bootstrap = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.sasl_port))
            .collect::<Vec<_>>()
            .join(",");
        super::SaslListener::in_broker_dir(bootstrap, &self.node_dir(1))
    }

    pub fn log_path(&self, id: i32) -> &Path {
        &self.node(id).log
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// An rdkafka config with `bootstrap.servers` set to every node.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        config
    }

    /// Uniquely named topics with `min(3, N)` replicas and `min.insync.replicas` 2
    /// (1 on a single node): an `acks=all` write is on two nodes before it is
    /// acknowledged, so one node may crash without losing or refusing writes.
    pub async fn create_topics(&self, prefix: &str, names_and_partitions: &[(&str, i32)]) -> TestTopics {
        let rf = self.nodes.len().min(3) as i32;
        let min_isr = if rf >= 2 { "2" } else { "1" };
        create_replicated_topics(&self.bootstrap(), prefix, names_and_partitions, rf, &[("min.insync.replicas", min_isr)])
            .await
            .unwrap_or_else(|e| panic!("creating topics on the owned cluster: {e}"))
    }

    /// Cluster metadata for `topic` (all topics when `None`), from any live node.
    pub fn metadata(&self, topic: Option<&str>) -> Result<Metadata, ServicesError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("log_level", "3") // a dead node is expected: no noise
            .create()?;
        Ok(consumer.fetch_metadata(topic, METADATA_TIMEOUT)?)
    }

    /// The node id leading `topic`'s `partition` (None: unknown or no leader now).
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        let md = self.metadata(Some(topic)).ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        let p = t.partitions().iter().find(|p| p.id() == partition)?;
        (p.leader() >= 0).then_some(p.leader())
    }

    /// The node that is the transaction coordinator of `transactional_id`: the leader
    /// of its `__transaction_state` partition, which Kafka picks as
    /// `abs(javaHash(id)) % partitions` (`TransactionStateManager.partitionFor`). The
    /// topic exists once a transactional producer has asked for its coordinator.
    pub fn transaction_coordinator(&self, transactional_id: &str) -> Option<i32> {
        self.coordinator("__transaction_state", transactional_id)
    }

    /// The group coordinator of `group_id`: the leader of its `__consumer_offsets`
    /// partition, picked by the same hash (`GroupCoordinatorService.partitionFor`).
    pub fn group_coordinator(&self, group_id: &str) -> Option<i32> {
        self.coordinator("__consumer_offsets", group_id)
    }

    fn coordinator(&self, internal_topic: &str, key: &str) -> Option<i32> {
        let md = self.metadata(Some(internal_topic)).ok()?;
        let t = md.topics().iter().find(|t| t.name() == internal_topic)?;
        let partitions = t.partitions().len() as i32;
        if partitions == 0 {
            return None;
        }
        self.leader_of(internal_topic, coordinator_partition(key, partitions))
    }

    /// Partitions of `topics` whose in-sync replicas are fewer than their replicas (or
    /// that have no leader), as `topic/partition isr/replicas`; empty when healed.
    pub fn under_replicated(&self, topics: &[&str]) -> Result<Vec<String>, ServicesError> {
        let md = self.metadata(None)?;
        let mut out = Vec::new();
        for t in md.topics().iter().filter(|t| topics.contains(&t.name())) {
            for p in t.partitions() {
                if p.leader() < 0 || p.isr().len() < p.replicas().len() {
                    out.push(format!("{}/{} {}/{}", t.name(), p.id(), p.isr().len(), p.replicas().len()));
                }
            }
        }
        for missing in topics.iter().filter(|n| !md.topics().iter().any(|t| t.name() == **n)) {
            out.push(format!("{missing} (not in metadata)"));
        }
        Ok(out)
    }

    /// Wait until every partition of `topics` has all its replicas in sync again
    /// (after a node came back); returns how long that took.
    pub fn wait_fully_replicated(&self, topics: &[&str], timeout: Duration) -> Result<Duration, ServicesError> {
        let started = Instant::now();
        loop {
            let lagging = self.under_replicated(topics).unwrap_or_else(|e| vec![e.to_string()]);
            if lagging.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return Err(ServicesError::NotReady {
                    what: format!("full ISR of {} partitions (lagging: {lagging:?})", lagging.len()),
                    addr: self.bootstrap(),
                    waited: timeout,
                    log_tail: String::new(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn node(&self, id: i32) -> &Node {
        assert!(id >= 1 && id as usize <= self.nodes.len(), "no node {id} in a cluster of {}", self.nodes.len());
        &self.nodes[id as usize - 1]
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        assert!(id >= 1 && id as usize <= self.nodes.len(), "no node {id} in a cluster of {}", self.nodes.len());
        &mut self.nodes[id as usize - 1]
    }

    fn node_dir(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn voters(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{}@127.0.0.1:{}", i + 1, n.controller_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn_node(&mut self, id: usize) -> Result<(), ServicesError> {
        let (voters, node_dir, tls_from) = (self.voters(), self.node_dir(id), self.node_dir(1));
        let node = &self.nodes[id - 1];
        process::log_marker(&node.log, &format!("start node {id} on 127.0.0.1:{}", node.port));
        let mut command = Command::new(&self.launcher);
        command
            .arg(&node_dir)
            .arg(node.port.to_string())
            .arg(node.sasl_port.to_string())
            .arg(id.to_string())
            .arg(node.controller_port.to_string())
            .arg(voters)
            .arg(&self.cluster_id);
        if id != 1 {
            command.arg(tls_from);
        }
        let process = ServiceProcess::spawn(&format!("kafka node {id}"), command, &node.log)?;
        self.nodes[id - 1].process = Some(process);
        Ok(())
    }

    fn wait_node_ready(&mut self, id: usize) -> Result<Duration, ServicesError> {
        let n = self.nodes.len();
        let node = &mut self.nodes[id - 1];
        let addr = format!("127.0.0.1:{}", node.port);
        let log = node.log.clone();
        let process = node.process.as_mut().expect("spawned");
        process.wait_ready(&addr, &log, NODE_START_TIMEOUT, || node_ready(&addr, n))
    }

    fn wait_for_file(&mut self, id: usize, file: &Path) -> Result<(), ServicesError> {
        let log = self.nodes[id - 1].log.clone();
        let process = self.nodes[id - 1].process.as_mut().expect("spawned");
        process
            .wait_ready(&file.display().to_string(), &log, NODE_START_TIMEOUT, || file.exists())
            .map(|_| ())
    }
}

impl Drop for OwnedKafkaCluster {
    /// SIGTERM to every node at once, then wait for each (SIGKILL after 10 s). One
    /// by one, the last node's controlled shutdown would wait for a controller quorum
    /// that is gone, until its SIGKILL.
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(p) = &node.process {
                p.terminate();
            }
        }
        for node in &mut self.nodes {
            if let Some(mut p) = node.process.take() {
                p.stop(Duration::from_secs(10));
            }
        }
    }
}

/// Node at `addr` answers metadata that lists itself and all `n` brokers: it has
/// joined the cluster.
fn node_ready(addr: &str, n: usize) -> bool {
    if !super::kafka::broker_ready(addr) {
        return false;
    }
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("log_level", "3")
        .create()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    consumer
        .fetch_metadata(None, Duration::from_secs(2))
        .is_ok_and(|m| m.brokers().len() >= n)
}

/// A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, never
/// starting with '-' (the format tool would take it for an option).
fn new_cluster_id() -> String {
    loop {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Kafka's coordinator partition for a group or transactional id:
/// `Utils.abs(key.hashCode()) % partitions`, with Java's `String.hashCode` over UTF-16
/// code units and `Utils.abs(Integer.MIN_VALUE) == 0`.
pub(crate) fn coordinator_partition(key: &str, partitions: i32) -> i32 {
    let hash = key
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_partition_is_javas_hash() {
        // Java: "hello".hashCode() == 99162322; "polygenelubricants".hashCode() ==
        // Integer.MIN_VALUE, which Utils.abs maps to 0.
        assert_eq!(coordinator_partition("hello", i32::MAX), 99_162_322);
        assert_eq!(coordinator_partition("hello", 8), 99_162_322 % 8);
        assert_eq!(coordinator_partition("polygenelubricants", 50), 0);
        assert_eq!(coordinator_partition("", 8), 0);
    }

    #[test]
    fn cluster_ids_are_22_url_safe_characters() {
        for _ in 0..100 {
            let id = new_cluster_id();
            assert_eq!(id.len(), 22);
            assert!(!id.starts_with('-'));
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }
}
