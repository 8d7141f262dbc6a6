//! The `kevents collector` binary as a child process of a fault test, and what the
//! tests read back from it: start, `kill -9`, graceful stop, readiness, `/metrics`, and
//! every (uid, resourceVersion) it published; and [`drive`], the simulator's scenarios
//! applied to a test API server at a fixed rate. Shared by `collector_faults.rs` (test
//! API servers), `kafka_cluster_faults.rs` (the pipeline on a Kafka cluster) and
//! `real_apiserver_sim.rs` (a real kube-apiserver).

use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use testkit::apiserver::Store;
use testkit::services::{http_request, read_topic};
use testkit::sim::{generate_run, ClusterCtx, Emission, ScenarioKind};
use tokio::sync::watch;

/// A running `kevents collector --config FILE`, its log appended to a file; killed on
/// drop so a failed assertion leaves no process behind.
pub struct Collector {
    child: Child,
}

impl Collector {
    pub fn start(config: &Path, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kevents"))
            .args(["collector", "--config"])
            .arg(config)
            .env("KEVENTS_LOG", "info,kevents_collector=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kevents collector");
        Collector { child }
    }

    /// SIGKILL and reap: a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful path.
    #[allow(dead_code)] // not every test binary stops gracefully
    pub fn stop(&mut self) {
        // SAFETY: signalling our own child, not yet reaped, so its pid is not reused.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// GET `path` on the collector's ops port (None when it does not answer).
pub async fn ops_get(port: u16, path: &'static str) -> Option<(u16, String)> {
    let url = format!("http://127.0.0.1:{port}");
    tokio::task::spawn_blocking(move || http_request(&url, "GET", path, "", Duration::from_secs(2)).ok()).await.unwrap()
}

/// Wait until the collector behind ops `port` answers `/readyz` with 200 (its watch is
/// running, after any relist): changes made before its first list would be superseded
/// unseen.
pub async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(ops_get(port, "/readyz").await, Some((200, _))) {
        assert!(Instant::now() < deadline, "collector on port {port} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (uid, rv) → how often it is in the raw topic.
pub fn published(brokers: &str, topic: &str) -> HashMap<(String, u64), u32> {
    let codec = Codec::default();
    let mut seen = HashMap::new();
    for m in read_topic(brokers, topic).expect("reading the raw topic") {
        let rec: RawRecord = codec.decode(&m.payload).expect("collector records decode");
        if let Some(e) = rec.event {
            let rv = e.event.resource_version.parse().expect("numeric resourceVersion");
            *seen.entry((e.event.uid.to_string(), rv)).or_insert(0) += 1;
        }
    }
    seen
}

/// [`published`] off the async runtime's threads.
pub async fn published_async(brokers: &str, topic: &str) -> HashMap<(String, u64), u32> {
    let (b, t) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || published(&b, &t)).await.unwrap()
}

/// Applies the simulator's scenarios (fresh seeds, one run after another) to `store`
/// at `rate` events/s until `stop`. Returns how many changes it applied.
#[allow(dead_code)] // not every test binary drives a test API server
pub fn drive(store: Store, mut stop: watch::Receiver<bool>, rate: u64) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let cluster = ClusterCtx::new("sim-1", 5);
        let mut applied = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let per_tick = (rate / 100) as usize;
        for seed in 1.. {
            let run = generate_run(&ScenarioKind::ALL, seed, SystemTime::now(), &cluster, Duration::from_secs(1));
            for chunk in run.emissions.chunks(per_tick) {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return applied,
                }
                for e in chunk {
                    match &e.emission {
                        Emission::Apply(ev) => {
                            store.apply(ev.clone());
                        }
                        Emission::Delete { namespace, name } => {
                            store.delete(namespace, name);
                        }
                    }
                    applied += 1;
                }
            }
        }
        applied
    })
}
