//! A panic fails the member loudly (issue 18): a partition worker, the consume
//! loop or a notifier that panics makes the processor process exit non-zero with
//! the panic in its log, instead of leaving a partition stalled behind a green
//! `/healthz`. The panics are injected with the documented fault setting
//! `debug.panic_on_text` (off by default), in real `processor-member` processes
//! against the real broker. When a worker panics mid-stream, the group rebalances
//! its partitions to the other member, which makes every output exactly once
//! (`read_committed`, no deduplication by id).

mod common;

use common::member::{Member, Members};
use common::*;
use kevents_processor::fault::{DebugConfig, FaultAction, FaultSite};
use schemas::avro::Codec;
use schemas::records::{Alert, RawRecord};
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::services::Services;

/// The text the faulty member panics on.
const POISON: &str = "kevents-test-poison";

fn with_fault(cfg: &kevents_processor::ProcessorConfig, site: FaultSite) -> kevents_processor::ProcessorConfig {
    let mut c = cfg.clone();
    c.debug = DebugConfig { panic_on_text: Some(POISON.into()), panic_in: site, ..Default::default() };
    c
}

fn write(dir: &Path, name: &str, cfg: &kevents_processor::ProcessorConfig) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_norway::to_string(cfg).unwrap()).unwrap();
    p
}

/// Put the poison text into the message of the first event record of each
/// partition in `recs` (the truth is unchanged: output ids and occurrences do
/// not depend on the message). Returns how many records were poisoned.
fn poison(recs: &mut [RawOut]) -> usize {
    let codec = Codec::default();
    let mut done = std::collections::HashSet::new();
    for r in recs.iter_mut() {
        if done.contains(&r.partition) {
            continue;
        }
        let mut raw: RawRecord = codec.decode(&r.payload).unwrap();
        let Some(w) = raw.event.as_mut() else { continue };
        w.event.note = format!("{} ({POISON})", w.event.note).into();
        r.payload = codec.encode(&raw).unwrap();
        done.insert(r.partition);
    }
    done.len()
}

/// The member exited by itself, non-zero, and its log holds the panic.
fn assert_failed_loudly(m: &mut Member, log: &Path, site: &str) -> String {
    let st = m.exited_within(Duration::from_secs(60)).unwrap_or_else(|| panic!("the member with a panicking {site} is still running after 60 s"));
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!st.success(), "exit status {st} after a panic in the {site}; log:\n{text}");
    assert!(text.contains(&format!("fault injection (debug.panic_on_text \"{POISON}\")")), "the panic is not in the log:\n{text}");
    assert!(text.contains("panicked"), "the member's error does not name the panic:\n{text}");
    let last = text.lines().rev().find(|l| l.starts_with("processor-member: ")).unwrap_or_default().to_string();
    eprintln!("{site}: exit status {st}; last log line: {last}");
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_stops_its_member_and_the_other_takes_over_exactly_once() {
    let s = Services::get();
    let topics = s.create_topics("proc-panic", &[("raw", 6), ("processed", 3), ("heartbeats", 2), ("dlq", 1)]).await;
    let mut w = workload(31, 12, 6, 300);
    let dir = tempfile::tempdir().unwrap();
    let clean = config(&topics, &format!("g-{}", topics.name("raw")));
    let faulty = write(dir.path(), "faulty.yaml", &with_fault(&clean, FaultSite::Worker));
    let clean = write(dir.path(), "clean.yaml", &clean);
    let log = dir.path().join("faulty.log");

    // Two members share the 6 partitions; only the first panics on the poison.
    let mut members = Members(vec![Member::spawn(&faulty, Some(&log)), Member::spawn(&clean, None)]);
    let assigned = "kevents_processor_partitions_assigned";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(members.0.iter().all(|m| m.ready() && m.metric(assigned) > 0.0) && members.0.iter().map(|m| m.metric(assigned)).sum::<f64>() == 6.0) {
        assert!(Instant::now() < deadline, "the two members did not share the partitions within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Poison one record per partition in the middle of the stream: whichever
    // partitions the faulty member owns, it meets one after some commits.
    let n = w.records.len();
    let chunk = n / 10 + 1;
    let poisoned = poison(&mut w.records[5 * chunk..]);
    assert_eq!(poisoned, 6);
    let p = producer(topics.bootstrap());
    for (i, c) in w.records.chunks(chunk).enumerate() {
        produce(&p, topics.name("raw"), c).await;
        if i < 5 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let committed_before = members.0[1].metric("kevents_processor_transactions_committed_total");
    assert_failed_loudly(&mut members.0[0], &log, "worker");

    let want = w.expected.len();
    let reads = read_until(topics.bootstrap(), topics.name("processed"), Duration::from_secs(150), |r| distinct_ids(r) >= want);
    let replays = assert_exact(&w, &reads);
    assert_eq!(replays, 0, "a read_committed reader saw {replays} outputs twice");
    assert_eq!(reads.len(), want, "each expected output exactly once");
    let survivor = &mut members.0[1];
    assert_eq!(survivor.metric(assigned), 6.0, "the survivor owns every partition after the rebalance");
    let all = read_uncommitted(topics.bootstrap(), topics.name("processed"), Duration::from_secs(5));
    eprintln!(
        "worker panic: {n} raw records ({poisoned} poisoned), {want} outputs seen once each by read_committed, {} more in the log (aborted); \
         the survivor had committed {committed_before} transactions when the other exited",
        all.len() - reads.len()
    );
    let st = survivor.terminate();
    assert!(st.success(), "survivor exit status {st}");
}

/// One member armed at its consume loop (`tune` adds the test's settings) and a small
/// workload with poisoned records, produced once the member runs. Returns the member,
/// its log and the temp dir holding both.
async fn consume_loop_member(prefix: &str, seed: u64, tune: impl FnOnce(&mut kevents_processor::ProcessorConfig)) -> (Members, std::path::PathBuf, tempfile::TempDir) {
    let s = Services::get();
    let topics = s.create_topics(prefix, &[("raw", 2), ("processed", 1), ("heartbeats", 1), ("dlq", 1)]).await;
    let mut w = workload(seed, 2, 2, 40);
    assert!(poison(&mut w.records[20..]) > 0);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_fault(&config(&topics, &format!("g-{}", topics.name("raw"))), FaultSite::ConsumeLoop);
    tune(&mut cfg);
    let log = dir.path().join("member.log");
    let members = Members(vec![Member::spawn(&write(dir.path(), "p.yaml", &cfg), Some(&log))]);
    produce(&producer(topics.bootstrap()), topics.name("raw"), &w.records).await;
    (members, log, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_consume_loop_stops_its_member() {
    let (mut members, log, _dir) = consume_loop_member("proc-panic-loop", 5, |_| {}).await;
    let last = assert_failed_loudly(&mut members.0[0], &log, "consume loop");
    assert!(last.contains("the consume loop panicked"), "{last}");
}

/// A consume loop stuck for good — as in a librdkafka call that outlives its own
/// timeout (`send_offsets_to_transaction` with the group coordinator's broker gone,
/// `cli/tests/kafka_cluster_faults.rs`) — fails the member after
/// `stall_timeout_secs`: it exits non-zero with the stall in its log, under any
/// supervisor, instead of living on behind a red `/healthz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_consume_loop_stops_its_member() {
    let (mut members, log, _dir) = consume_loop_member("proc-stuck-loop", 7, |cfg| {
        cfg.debug.action = FaultAction::Hang;
        cfg.stall_timeout_secs = 5;
        cfg.drain_timeout_secs = 1;
        cfg.transaction_timeout_ms = 3_000;
    })
    .await;
    let started = Instant::now();
    // Stall limit 5 s, checked each second, then at most drain (1 s) + one
    // transaction (3 s) for the stuck loop.
    let st = members.0[0].exited_within(Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap();
    let Some(st) = st else { panic!("the stuck member did not exit within 60 s; its log:\n{text}") };
    assert!(!st.success(), "a stalled member exits non-zero, not {st}");
    assert!(text.contains("fault injection (debug.action: hang)"), "the hang did not happen:\n{text}");
    assert!(text.contains("consume_loop: STALLED"), "the member's error does not name the stall:\n{text}");
    assert!(!text.contains("panicked"), "a hang is not a panic:\n{text}");
    eprintln!("stuck consume loop: exit status {st} {:.1} s after the records were produced", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_notifier_stops_its_member() {
    let s = Services::get();
    let topics = s
        .create_topics("proc-panic-notify", &[("raw", 1), ("processed", 1), ("heartbeats", 1), ("dlq", 1), ("incidents", 1), ("patterns", 1), ("alerts", 1), ("sent", 1)])
        .await;
    let mut cfg = config(&topics, &format!("g-{}", topics.name("raw")));
    cfg.topics.incidents = topics.name("incidents").into();
    cfg.topics.patterns = topics.name("patterns").into();
    cfg.topics.alerts = topics.name("alerts").into();
    // The receiver is never reached: the notifier panics on reading the alert.
    cfg.alerts = serde_norway::from_str(&format!(
        "{{notifiers: [{{name: hook, kind: webhook, url: 'http://127.0.0.1:9/hook'}}], sent_topic: {}, group_id: n-{}}}",
        topics.name("sent"),
        topics.name("alerts")
    ))
    .unwrap();
    let cfg = with_fault(&cfg, FaultSite::Notifier);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("member.log");
    let mut members = Members(vec![Member::spawn(&write(dir.path(), "p.yaml", &cfg), Some(&log))]);
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let alert = Alert { id: "a-1".into(), version: 1, rule: "incident-error".into(), firing: true, summary: format!("disk full ({POISON})"), starts_us: now_us, ..Default::default() };
    let rec = RawOut { partition: 0, key: "c".into(), payload: Codec::default().encode(&alert).unwrap() };
    // Until the notifier joined its group and read it (it reads from the start).
    produce(&producer(topics.bootstrap()), topics.name("alerts"), &[rec]).await;
    let last = assert_failed_loudly(&mut members.0[0], &log, "notifier");
    assert!(last.contains("notifier hook panicked"), "{last}");
}
