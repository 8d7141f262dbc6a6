//! API fuzzing with schemathesis (PyPI; a client nobody here wrote) against the
//! OpenAPI description the stage serves: no 5xx, no crash. Bounded: at most 60
//! seconds of schemathesis, deterministic generation.

mod common;

use common::*;
use std::time::{Duration, Instant};
use testkit::services::Services;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let s = Services::get();
    let topics = s.create_topics("ingest-fuzz", &[("raw", 2)]).await;
    let ingest = Ingest::start(topics.bootstrap(), topics.name("raw"), |c| c.max_body_bytes = 256 * 1024).await;
    let schemathesis = pyclients_python().with_file_name("schemathesis");
    // schemathesis keeps a cache (`.schemathesis/`) in its working directory.
    let workdir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(&schemathesis)
        .current_dir(workdir.path())
        .args(["run", &format!("{}/openapi.json", ingest.url), "--checks", "not_a_server_error", "--max-examples", "60", "--generation-deterministic", "--request-timeout", "15", "--no-color"])
        .args(["-H", &format!("Authorization: Bearer {OPS_TOKEN}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("schemathesis runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = child.wait_with_output().unwrap();
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Killed at the bound is no failure of ours, but a finished run must pass.
    if let Some(st) = status {
        assert!(st.success(), "schemathesis found a problem:\n{report}");
    }
    let (_, metrics) = ingest.get("/metrics").await;
    let answered: u64 = metrics.lines().filter(|l| l.starts_with("kevents_ingest_requests_total{")).filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum();
    assert!(answered > 20, "schemathesis sent requests:\n{report}\n{metrics}");
    assert!(!metrics.lines().any(|l| l.starts_with("kevents_ingest_requests_total{") && l.contains("code=\"5")), "no 5xx:\n{metrics}");
    assert_eq!(ingest.get("/healthz").await.0, 200, "still serving");
    ingest.shutdown().await;
}
