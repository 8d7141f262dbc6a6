//! The whole pipeline on a 3-node Kafka cluster while one node is `kill -9`ed: the
//! `kevents` binary's collector (fed by the simulator through a test API server at
//! 2,000 events/s), processor and sink run as child processes against a private
//! 3-node KRaft cluster (testkit's `OwnedKafkaCluster`: replication factor 3,
//! `min.insync.replicas` 2) and the shared ClickHouse (a fresh database). Mid-stream
//! the node leading the raw partition in use is killed (its other roles — the
//! processor's transaction or group coordinator, processed partition leader, the
//! sink's group coordinator — are printed); the simulator keeps writing; the node comes back on its
//! ports and data. A stage that exits or fails its liveness probe (`/healthz`) is
//! started again, as Kubernetes would (deploy/base), and the restarts are printed.
//! Two tests: the raw partition's leader alone, and the raw partition's leader that is
//! also the processor's group coordinator (the group id is picked so that it is).
//!
//! Then every change the API server served must be in ClickHouse's `events` exactly
//! once — by (event uid, resourceVersion) against the server's own log, and
//! `count() == uniqExact(id)` — and the rollups must agree with the raw table. The
//! processor's own output topics, created by kevents with the broker's default
//! replication factor, must have 3 replicas. No timing is asserted; the counts and
//! times (restart, ISR healed, longest stall of stored rows, catch-up) are printed.

mod collector_proc;

use collector_proc::{drive, published_async, wait_ready, Collector};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::apiserver::{ApiServer, ServerOptions};
use testkit::services::{free_port, http_request, OwnedKafkaCluster, Services};
use tokio::sync::watch;

const RATE: u64 = 2_000;
/// Production before the kill, with the node down, and after it is back.
const BEFORE_KILL: Duration = Duration::from_secs(6);
const DOWN: Duration = Duration::from_secs(8);
const AFTER_RESTART: Duration = Duration::from_secs(4);
/// The stages' `stall_timeout_secs` (/healthz fails after this long without
/// progress; default 60): shorter here, so a stalled stage is restarted within the
/// test's time.
const STALL_SECS: u64 = 20;
/// How long the pipeline may take to store the backlog after production stops (a
/// ceiling against hangs, not a performance assertion).
const CATCH_UP: Duration = Duration::from_secs(180);

/// A `kevents <stage> --config FILE` child; SIGKILLed if the test ends without
/// stopping it.
struct Stage {
    name: &'static str,
    child: Option<Child>,
    ops: u16,
    config: PathBuf,
    log: PathBuf,
    /// Exits (and restarts by [`Stage::supervise`]) seen.
    exits: Vec<String>,
}

impl Stage {
    fn start(name: &'static str, config: &Path, ops: u16, log: &Path) -> Stage {
        let mut stage = Stage { name, child: None, ops, config: config.to_owned(), log: log.to_owned(), exits: vec![] };
        stage.spawn();
        stage
    }

    fn spawn(&mut self) {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kevents"))
            .args([self.name, "--config"])
            .arg(&self.config)
            .env("KEVENTS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting kevents {}: {e}", self.name));
        self.child = Some(child);
    }

    /// What Kubernetes does (deploy/base/*/deployment.yaml): a container that exits
    /// is started again (same config, same transactional id), and one whose liveness
    /// probe (`/healthz`) fails is killed and started again. Remembers why.
    fn supervise(&mut self) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let why = text.lines().rev().find(|l| l.starts_with("Error: ")).unwrap_or("").to_string();
            eprintln!("kevents {} exited ({status}): {why}; starting it again", self.name);
            self.exits.push(format!("exited ({status}): {why}"));
            self.spawn();
            return;
        }
        let url = format!("http://127.0.0.1:{}", self.ops);
        if let Ok((503, body)) = http_request(&url, "GET", "/healthz", "", Duration::from_secs(1)) {
            let why = body.lines().find(|l| l.contains("STALLED") || l.contains("FAIL")).unwrap_or(body.trim()).to_string();
            eprintln!("kevents {} failed its liveness probe ({why}); killing it and starting it again", self.name);
            self.exits.push(format!("liveness probe failed: {why}"));
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            self.spawn();
        }
    }

    /// Still running? (Panics with the exit status if it stopped by itself.)
    fn assert_running(&mut self, log: &Path) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            panic!("kevents {} exited by itself ({status}); log {}:\n{}", self.name, log.display(), tail(log));
        }
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        // SAFETY: signalling our own child, not reaped yet (its pid cannot be reused).
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let status = c.wait().unwrap();
        assert!(status.success(), "kevents {} exited with {status} after SIGTERM", self.name);
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Wait until the stage's `/readyz` answers 200.
async fn wait_stage_ready(stage: &mut Stage, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        stage.assert_running(log);
        let url = format!("http://127.0.0.1:{}", stage.ops);
        let ok = tokio::task::spawn_blocking(move || matches!(http_request(&url, "GET", "/readyz", "", Duration::from_secs(2)), Ok((200, _))))
            .await
            .unwrap();
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "kevents {} not ready within 90 s; log:\n{}", stage.name, tail(log));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run SQL against the shared ClickHouse; TabSeparated rows.
async fn sql(url: &str, query: String) -> Vec<Vec<String>> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let (status, body) = http_request(&url, "POST", "/", &format!("{query} FORMAT TabSeparated"), Duration::from_secs(60)).expect("clickhouse answers");
        assert_eq!(status, 200, "{query}: {body}");
        body.lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
    })
    .await
    .unwrap()
}

async fn scalar(url: &str, query: String) -> i64 {
    sql(url, query).await[0][0].parse().unwrap()
}

/// Log file of this run (kept after the test, for reading after a failure).
fn log_path(what: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("kevents-kafka-cluster-faults-{what}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// The partition of `topic` that holds records (one simulated cluster: one key, one
/// partition), with the node leading it.
fn busy_partition(cluster: &OwnedKafkaCluster, topic: &str) -> Option<(i32, i32)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = cluster.kafka_config().create().unwrap();
    let md = cluster.metadata(Some(topic)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    t.partitions()
        .iter()
        .filter(|p| c.fetch_watermarks(topic, p.id(), Duration::from_secs(5)).is_ok_and(|(_, high)| high > 0))
        .map(|p| (p.id(), p.leader()))
        .next()
}

/// For a stalled pipeline: each topic's end offsets and each stage's counters.
async fn diagnose(cluster: &OwnedKafkaCluster, topics: &[&str], stages: &[(&str, u16)]) -> String {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut out = String::from("---- stalled pipeline\n");
    let c: BaseConsumer = cluster.kafka_config().create().unwrap();
    for t in topics {
        let ends: Vec<String> = (0..3).map(|p| format!("{p}:{:?}", c.fetch_watermarks(t, p, Duration::from_secs(5)).map(|w| w.1))).collect();
        out += &format!("{t} end offsets {ends:?}\n");
    }
    for (name, port) in stages {
        let url = format!("http://127.0.0.1:{port}");
        let (metrics, ready) = tokio::task::spawn_blocking(move || {
            (http_request(&url, "GET", "/metrics", "", Duration::from_secs(2)), http_request(&url, "GET", "/readyz", "", Duration::from_secs(2)))
        })
        .await
        .unwrap();
        out += &format!("{name} /readyz {ready:?}\n");
        let url = format!("http://127.0.0.1:{port}");
        let health = tokio::task::spawn_blocking(move || http_request(&url, "GET", "/healthz", "", Duration::from_secs(2))).await.unwrap();
        out += &format!("{name} /healthz {health:?}\n");
        if let Ok((_, body)) = metrics {
            for l in body.lines().filter(|l| !l.starts_with('#') && !l.contains("_bucket") && !l.ends_with(" 0")) {
                out += &format!("  {name}: {l}\n");
            }
        }
    }
    out
}

/// Which node dies, relative to the processor's consumer group coordinator.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Victim {
    /// The raw partition's leader, which is not the processor's group coordinator.
    RawLeaderOnly,
    /// The raw partition's leader that is also the processor's group coordinator.
    RawLeaderAndGroupCoordinator,
}

/// Make `__consumer_offsets` exist (a group's first commit creates it), so that the
/// coordinator of a group id can be read from metadata before the group is used.
fn create_offsets_topic(cluster: &OwnedKafkaCluster, topic: &str) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let c: BaseConsumer = cluster.kafka_config().set("group.id", format!("{topic}-warm-up")).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset(0)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = c.commit(&tpl, CommitMode::Sync) {
        assert!(Instant::now() < deadline, "no group coordinator within 60 s: {e}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A processor group id whose coordinator is (or is not) `node`: Kafka places a
/// group by the hash of its id, so trying a few names finds one.
fn group_coordinated(cluster: &OwnedKafkaCluster, prefix: &str, node: i32, on_node: bool) -> String {
    (0..200)
        .map(|k| format!("{prefix}-processor-{k}"))
        .find(|g| cluster.group_coordinator(g).is_some_and(|c| (c == node) == on_node))
        .unwrap_or_else(|| panic!("no group id among 200 whose coordinator is{} node {node}", if on_node { "" } else { " not" }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leader_kill9_mid_stream_stores_every_event_exactly_once() {
    kill9_mid_stream(Victim::RawLeaderOnly).await;
}

/// The processor's consume loop stalls in this case (no error, no exit, `/readyz`
/// still 200) until its liveness probe restarts it: see docs/kafka-cluster.md ("What
/// the fault test showed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leader_and_group_coordinator_kill9_mid_stream_stores_every_event_exactly_once() {
    kill9_mid_stream(Victim::RawLeaderAndGroupCoordinator).await;
}

async fn kill9_mid_stream(scenario: Victim) {
    let t0 = Instant::now();
    let services = Services::get();
    let mut cluster = OwnedKafkaCluster::spawn(3).expect("3-node Kafka cluster");
    let cluster_up = t0.elapsed();
    let brokers = cluster.bootstrap();
    // The raw topic is made here (rf 3, min.insync 2); the processor creates its
    // outputs itself (broker default rf), as a deployment would.
    // One raw partition (one simulated cluster writes one key anyway): its leader is
    // known before anything runs.
    let topics = cluster.create_topics("kcf", &[("raw", 1)]).await;
    let raw = topics.name("raw").to_string();
    let raw_leader = cluster.leader_of(&raw, 0).expect("the raw partition has a leader");
    tokio::task::block_in_place(|| create_offsets_topic(&cluster, &raw));
    let out = |t: &str| format!("{raw}-{t}");
    let db = services.fresh_database("kcf").await;
    let ch = services.clickhouse_url();
    let dir = tempfile::tempdir().unwrap();
    let name = |stage: &str| log_path(&format!("{scenario:?}-{stage}"));
    let (collector_log, processor_log, sink_log) = (name("collector"), name("processor"), name("sink"));

    // The API server and a collector, ready before the first change.
    let server = ApiServer::start(ServerOptions { bookmark_interval: Duration::from_secs(1), compaction_window: 1_000_000, ..Default::default() }).await.unwrap();
    server.store().log_changes();
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc, "sim-1").unwrap();
    let collector_port = free_port().unwrap();
    let collector_cfg = dir.path().join("collector.yaml");
    std::fs::write(
        &collector_cfg,
        format!("cluster: {{name: sim-1}}\nkubeconfig: {}\nkafka: {{brokers: \"{brokers}\"}}\ntopic: {raw}\nheartbeat_interval_secs: 1\nlisten: 127.0.0.1:{collector_port}\ninstance: c0\n", kc.display()),
    )
    .unwrap();

    // The processor: a fixed transactional.id, so the test can find its coordinator.
    let group = group_coordinated(&cluster, &raw, raw_leader, scenario == Victim::RawLeaderAndGroupCoordinator);
    let (txn_id, sink_group) = (format!("{group}-0"), format!("{raw}-sink"));
    let processor_port = free_port().unwrap();
    let processor_cfg = dir.path().join("processor.yaml");
    std::fs::write(
        &processor_cfg,
        format!(
            "kafka: {{brokers: \"{brokers}\"}}\ntopics: {{raw: {raw}, processed: {}, heartbeats: {}, dlq: {}, incidents: {}, patterns: {}, alerts: {}}}\n\
             group_id: {group}\ntransactional_id: {txn_id}\ncreate_topic_partitions: 3\nlisten: 127.0.0.1:{processor_port}\nstall_timeout_secs: {STALL_SECS}\n",
            out("processed"), out("heartbeats"), out("dlq"), out("incidents"), out("patterns"), out("alerts")
        ),
    )
    .unwrap();
    let sink_port = free_port().unwrap();
    let sink_cfg = dir.path().join("sink.yaml");
    std::fs::write(
        &sink_cfg,
        format!(
            "kafka: {{brokers: \"{brokers}\"}}\ngroup_id: {sink_group}\ntopics: {{processed: {}, heartbeats: {}, incidents: {}, patterns: {}, alerts: {}, dlq: {}}}\n\
             clickhouse: {{url: \"{ch}\", database: {}}}\nlisten: 127.0.0.1:{sink_port}\nstall_timeout_secs: {STALL_SECS}\n",
            out("processed"), out("heartbeats"), out("incidents"), out("patterns"), out("alerts"), out("sink-dlq"), db.name
        ),
    )
    .unwrap();

    let mut processor = Stage::start("processor", &processor_cfg, processor_port, &processor_log);
    wait_stage_ready(&mut processor, &processor_log).await;
    let mut sink = Stage::start("sink", &sink_cfg, sink_port, &sink_log);
    wait_stage_ready(&mut sink, &sink_log).await;
    let mut collector = Collector::start(&collector_cfg, &collector_log);
    wait_ready(collector_port).await;
    eprintln!("cluster up in {cluster_up:?} on {brokers}; pipeline ready after {:?}", t0.elapsed());

    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = drive(server.store(), stop_rx, RATE);
    tokio::time::sleep(BEFORE_KILL).await;

    // The victim: the leader of the raw partition (the collector writes to it, the
    // processor reads it), with or without the processor's group coordinator; what
    // else it does is printed.
    let mut roles: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut role = |node: Option<i32>, what: String| {
        if let Some(n) = node.filter(|n| *n > 0) {
            roles.entry(n).or_default().push(what);
        }
    };
    let txn_coordinator = cluster.transaction_coordinator(&txn_id);
    role(txn_coordinator, "processor's transaction coordinator".into());
    let group_coordinator = cluster.group_coordinator(&group);
    role(group_coordinator, "processor's group coordinator".into());
    role(cluster.group_coordinator(&sink_group), "sink's group coordinator".into());
    role(cluster.leader_of(&raw, 0), "leader of the raw partition".into());
    if let Some((p, leader)) = busy_partition(&cluster, &out("processed")) {
        role(Some(leader), format!("leader of processed partition {p}"));
    }
    let victim = raw_leader;
    assert_eq!(cluster.leader_of(&raw, 0), Some(victim), "the raw partition's leader did not move");
    assert_eq!(group_coordinator == Some(victim), scenario == Victim::RawLeaderAndGroupCoordinator, "{scenario:?}: {roles:?}");
    eprintln!("roles by node: {roles:?}; killing node {victim} (pid {:?})", cluster.pid(victim));
    let stored_at_kill = scalar(&ch, format!("SELECT count() FROM {}.events", db.name)).await;
    let killed_at = Instant::now();
    cluster.kill9(victim);

    // From the kill until everything is stored: the longest time in which no new row
    // reached ClickHouse (production stops halfway through, but the backlog keeps
    // rows coming until the end).
    let (mut last, mut last_change, mut longest_stall) = (stored_at_kill, killed_at, Duration::ZERO);
    let mut sample = |now: i64| {
        if now != last {
            longest_stall = longest_stall.max(last_change.elapsed());
            (last, last_change) = (now, Instant::now());
        }
    };
    while killed_at.elapsed() < DOWN {
        tokio::time::sleep(Duration::from_millis(250)).await;
        processor.supervise();
        sink.supervise();
        sample(scalar(&ch, format!("SELECT count() FROM {}.events", db.name)).await);
    }
    let restarted_at = Instant::now();
    let restart_took = tokio::task::block_in_place(|| cluster.start(victim)).expect("the killed node starts again");
    let all_topics: Vec<String> = ["processed", "heartbeats", "dlq", "incidents", "patterns", "alerts"].iter().map(|t| out(t)).chain([raw.clone(), "__consumer_offsets".into(), "__transaction_state".into()]).collect();
    let names: Vec<&str> = all_topics.iter().map(String::as_str).collect();
    let isr_healed = tokio::task::block_in_place(|| cluster.wait_fully_replicated(&names, Duration::from_secs(120))).expect("every partition fully in sync again");
    let healed_after_restart = restarted_at.elapsed();
    while restarted_at.elapsed() < AFTER_RESTART.max(healed_after_restart) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        processor.supervise();
        sink.supervise();
        sample(scalar(&ch, format!("SELECT count() FROM {}.events", db.name)).await);
    }
    let _ = stop_tx.send(true);
    let applied = driver.await.unwrap();
    let produced_for = t0.elapsed();

    // Everything served must arrive; then the stages stop cleanly and we count.
    let served = server.store().changes();
    let caught_up_from = Instant::now();
    loop {
        processor.supervise();
        sink.supervise();
        sample(scalar(&ch, format!("SELECT count() FROM {}.events", db.name)).await);
        let n = scalar(&ch, format!("SELECT uniqExact(event_uid, resource_version) FROM {}.events", db.name)).await;
        if n as usize >= served.len() {
            break;
        }
        if caught_up_from.elapsed() > CATCH_UP {
            eprintln!("{}", diagnose(&cluster, &[raw.as_str(), &out("processed")], &[("collector", collector_port), ("processor", processor_port), ("sink", sink_port)]).await);
            panic!("only {n} of {} served changes stored after {CATCH_UP:?}; logs {} {} {}", served.len(), collector_log.display(), processor_log.display(), sink_log.display());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let caught_up = caught_up_from.elapsed();
    collector.stop();
    processor.stop();
    sink.stop();

    // The collector's idempotent producer across the failover: the raw topic holds
    // each served change once.
    let raw_seen = published_async(&brokers, &raw).await;
    let raw_doubled = raw_seen.values().filter(|n| **n > 1).count();
    let raw_missing = served.iter().filter(|k| !raw_seen.contains_key(*k)).count();

    let rows = sql(&ch, format!("SELECT event_uid, resource_version, count() FROM {}.events GROUP BY event_uid, resource_version", db.name)).await;
    let stored_keys: HashMap<(String, u64), u64> = rows.iter().map(|r| ((r[0].clone(), r[1].parse().unwrap()), r[2].parse().unwrap())).collect();
    let served_set: HashSet<(String, u64)> = served.iter().cloned().collect();
    let stored = scalar(&ch, format!("SELECT count() FROM {}.events", db.name)).await;
    let distinct = scalar(&ch, format!("SELECT uniqExact(id) FROM {}.events", db.name)).await;
    let missing: Vec<_> = served_set.iter().filter(|k| !stored_keys.contains_key(*k)).collect();
    let unexpected: Vec<_> = stored_keys.keys().filter(|k| !served_set.contains(*k)).collect();
    let doubled: Vec<_> = stored_keys.iter().filter(|(_, n)| **n > 1).collect();
    let per_minute = scalar(&ch, format!("SELECT sum(events) FROM {}.events_per_minute", db.name)).await;
    let per_hour = scalar(&ch, format!("SELECT sum(events) FROM {}.events_per_hour", db.name)).await;
    let occurrences = scalar(&ch, format!("SELECT sum(occurrences) FROM {}.events", db.name)).await;
    let occ_minute = scalar(&ch, format!("SELECT sum(occurrences) FROM {}.events_per_minute", db.name)).await;
    let occ_hour = scalar(&ch, format!("SELECT sum(occurrences) FROM {}.events_per_hour", db.name)).await;

    // Topics kevents created itself got the cluster's default replication factor.
    let md = cluster.metadata(None).unwrap();
    let created_rf: BTreeMap<String, usize> = md
        .topics()
        .iter()
        .filter(|t| t.name().starts_with(&format!("{raw}-")))
        .map(|t| (t.name().trim_start_matches(&format!("{raw}-")).to_string(), t.partitions().iter().map(|p| p.replicas().len()).min().unwrap_or(0)))
        .collect();

    eprintln!(
        "{scenario:?}: kafka cluster kill -9 of node {victim} ({}) after {BEFORE_KILL:?} of {RATE}/s, down {DOWN:?}:\n  \
         produced (served by the API server) {}, applied by the simulator {applied}; stored rows {stored}, distinct ids {distinct}, \
         distinct (uid, rv) {}, duplicates {}, missing {}, unexpected {}\n  \
         raw topic: {} changes, {raw_doubled} written twice, {raw_missing} missing\n  \
         rollups: per-minute events {per_minute}, per-hour events {per_hour}; occurrences raw {occurrences} / minute {occ_minute} / hour {occ_hour}\n  \
         node restart {restart_took:?}, ISR of every partition full {isr_healed:?} after that ({healed_after_restart:?} after the restart began); \
         longest stall of stored rows {longest_stall:?} (rows at kill {stored_at_kill}); production ran {produced_for:?} from the test's start, \
         backlog stored {caught_up:?} after production stopped\n  \
         replicas of the topics kevents created: {created_rf:?}\n  \
         stage restarts (as Kubernetes would, exit or liveness probe): processor {:?}, sink {:?}\n  logs: {} {} {}",
        roles[&victim].join(", "),
        served.len(),
        stored_keys.len(),
        stored - distinct,
        missing.len(),
        unexpected.len(),
        raw_seen.len(),
        processor.exits,
        sink.exits,
        collector_log.display(),
        processor_log.display(),
        sink_log.display(),
    );

    assert!(served.len() as u64 >= RATE * 10, "the simulator's changes were served: {} (applied {applied})", served.len());
    assert!(missing.is_empty(), "{} of {} served changes missing, first {:?}", missing.len(), served.len(), &missing[..missing.len().min(5)]);
    assert!(unexpected.is_empty(), "stored changes nobody served: {:?}", &unexpected[..unexpected.len().min(5)]);
    assert!(doubled.is_empty(), "{} changes stored more than once, e.g. {:?}", doubled.len(), &doubled[..doubled.len().min(5)]);
    assert_eq!((raw_missing, raw_doubled), (0, 0), "the raw topic holds each served change once");
    assert_eq!((stored, distinct), (served.len() as i64, served.len() as i64), "rows and distinct ids equal the served changes");
    assert_eq!((per_minute, per_hour), (stored, stored), "rollups count every row once");
    assert_eq!((occ_minute, occ_hour), (occurrences, occurrences), "rollups sum the same occurrences");
    for t in ["processed", "heartbeats", "dlq", "incidents", "patterns", "alerts"] {
        assert_eq!(created_rf.get(t), Some(&3), "{t} created by the processor with 3 replicas: {created_rf:?}");
    }
    drop(topics);
}
