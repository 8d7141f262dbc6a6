//! Scale and failure: three processor processes share 6 raw partitions while
//! input flows; one is killed with SIGKILL in the middle of a transaction (no
//! drain, no commit) and a fourth joins mid-stream. A `read_committed` reader of
//! the processed topic — the sink's view — must see exactly the truth, each
//! output once, with no deduplication by id: the crashed member's open
//! transaction is aborted (its records are in the log, a `read_uncommitted`
//! reader sees them), and the new owner, after rebuilding the state by replay,
//! makes the same outputs again, byte-identical to the aborted ones.

mod common;

use common::*;
use common::member::{metric, Member, Members};
use std::time::Duration;
use testkit::services::Services;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_join_mid_stream_lose_nothing_and_replay_identically() {
    let s = Services::get();
    let topics = s.create_topics("proc-failover", &[("raw", 6), ("processed", 3), ("heartbeats", 2), ("dlq", 1)]).await;
    let w = workload(23, 12, 6, 400);
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("processor.yaml");
    let mut cfg = config(&topics, &format!("g-{}", topics.name("raw")));
    // Long transactions: nothing is committed before the kill, which comes once the
    // member to kill has outputs acknowledged (so they are in its open transaction).
    cfg.commit_interval_ms = 10_000;
    cfg.transaction_timeout_ms = 30_000;
    std::fs::write(&cfg_path, serde_norway::to_string(&cfg).unwrap()).unwrap();

    let mut members = Members((0..3).map(|_| Member::spawn(&cfg_path, None)).collect());
    let victim = members.0[0].ops.clone();
    let p = producer(topics.bootstrap());
    let chunks: Vec<&[RawOut]> = w.records.chunks(w.records.len() / 10 + 1).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        produce(&p, topics.name("raw"), chunk).await;
        if i == 3 {
            // A crash inside a transaction: wait until the member had outputs
            // acknowledged (its metrics flush every 500 ms) with no commit in between
            // (rebalances commit; the interval is 10 s), then SIGKILL: no drain, no
            // commit. Its partitions move after the session timeout (30 s) to the
            // survivors, which replay to rebuild state.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let (c0, p0) = (metric(&victim, "kevents_processor_transactions_committed_total"), metric(&victim, "kevents_processor_records_produced_total"));
                tokio::time::sleep(Duration::from_millis(700)).await;
                let (c1, p1) = (metric(&victim, "kevents_processor_transactions_committed_total"), metric(&victim, "kevents_processor_records_produced_total"));
                if c1 == c0 && p1 > p0 {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "the member to kill had no uncommitted outputs within 60 s");
            }
            members.0[0].child.kill().unwrap();
            members.0[0].child.wait().unwrap();
        }
        if i == 6 {
            members.0.push(Member::spawn(&cfg_path, None));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    let want = w.expected.len();
    let reads = read_until(topics.bootstrap(), topics.name("processed"), Duration::from_secs(150), |r| distinct_ids(r) >= want);
    let replays = assert_exact(&w, &reads);
    assert_eq!(replays, 0, "a read_committed reader saw {replays} outputs twice");
    assert_eq!(reads.len(), want, "each expected output exactly once");
    // The aborted transaction's records are in the log, invisible to the reader
    // above, and identical to their committed twins.
    let all = read_uncommitted(topics.bootstrap(), topics.name("processed"), Duration::from_secs(5));
    let aborted = all.len() - reads.len();
    assert!(aborted > 0, "the killed member had no outputs in an open transaction: the test proves nothing");
    assert_exact(&w, &all);
    eprintln!(
        "failover: {} raw records, {} outputs seen once each by read_committed; {} more (aborted, byte-identical) in the log",
        w.records.len(),
        want,
        aborted
    );
    let hbs = read_until(topics.bootstrap(), topics.name("heartbeats"), Duration::from_secs(30), |r| heartbeat_sources(r).len() >= w.heartbeats);
    assert_eq!(heartbeat_sources(&hbs).len(), w.heartbeats);

    // The survivors stop cleanly on SIGTERM (drain, commit, leave).
    for m in members.0.iter_mut().skip(1) {
        let st = m.terminate();
        assert!(st.success(), "member exit status {st}");
    }
}
