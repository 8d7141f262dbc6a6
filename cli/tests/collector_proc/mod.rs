//! The `kevents collector` binary as a child process of a fault test, and what the
//! tests read back from it: start, `kill -9`, graceful stop, readiness, `/metrics`, and
//! every (uid, resourceVersion) it published. Shared by `collector_faults.rs` (test
//! API servers) and `real_apiserver_sim.rs` (a real kube-apiserver).

use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::services::{http_request, read_topic};

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
