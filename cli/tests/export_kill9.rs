//! `kevents export` survives `kill -9` without losing a record: the binary runs as
//! a child of the test, reading a backlog of processed events and incident
//! versions from a real Kafka broker and sending them to a real OpenTelemetry
//! Collector (built from the Go module proxy: testkit::otelcol, OTLP receiver →
//! file exporter). Killed mid-stream and started again, it must deliver every
//! expected log record and span; a duplicate is allowed only as the crate's
//! guarantee says (the one batch whose requests were answered before its commit
//! was acknowledged), and the test counts and reports them.
//!
//! Lives here rather than in export/tests because it runs the `kevents` binary
//! (`CARGO_BIN_EXE_kevents` exists only for this package's tests).

#[path = "../../export/tests/common/mod.rs"]
mod common;

use common::{event, incident, incident_uid, produce, producer, tally, Tally};
use schemas::records::Status;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::otelcol::{attr, OtelCollector};
use testkit::services::{free_port, http_request, Services};

const EVENTS: usize = 20_000;
const BATCH: usize = 100;

/// A `kevents export` child; SIGKILLed if the test ends without stopping it.
struct Exporter {
    child: Option<Child>,
    ops: String,
}

impl Exporter {
    fn start(config: &Path, ops_port: u16, log: &Path) -> Exporter {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kevents"))
            .args(["export", "--config"])
            .arg(config)
            .env("KEVENTS_LOG", "info")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("spawn kevents export");
        Exporter { child: Some(child), ops: format!("http://127.0.0.1:{ops_port}") }
    }

    /// `kevents_export_records_total` for `topic` and `outcome`, 0 until the
    /// ops endpoint answers.
    fn exported(&self, topic: &str) -> u64 {
        let Ok((200, text)) = http_request(&self.ops, "GET", "/metrics", "", Duration::from_secs(2)) else { return 0 };
        text.lines()
            .find(|l| l.starts_with("kevents_export_records_total{") && l.contains(&format!("topic=\"{topic}\"")) && l.contains("outcome=\"exported\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap(); // SIGKILL
        let status = c.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{status:?}");
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) {
        let mut c = self.child.take().unwrap();
        // SAFETY: signalling our own child, not reaped yet (its pid cannot be reused).
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                assert!(s.success(), "kevents export exited with {s:?} after SIGTERM");
                return;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                panic!("kevents export did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn report(what: &str, expected: usize, t: &Tally) -> String {
    let first: Vec<&str> = t.duplicated.iter().take(5).map(|(id, _)| id.as_str()).collect();
    format!(
        "{what}: expected {expected}, received {}, distinct {}, missing {}, unexpected {}, duplicated ids {} (first: {first:?})",
        t.total,
        t.distinct,
        t.missing.len(),
        t.unexpected.len(),
        t.duplicated.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_and_repeats_at_most_the_batch_in_flight() {
    let t0 = Instant::now();
    let s = Services::get();
    let topics = s.create_topics("export-kill9", &[("processed", 3), ("incidents", 1), ("dlq", 1)]).await;
    let events: Vec<_> = (0..EVENTS).map(event).collect();
    // Two incidents, five versions each; the last of each resolved (one root span each).
    let incidents: Vec<_> = (0..2).flat_map(|k| (1..=5).map(move |v| incident(k, v, if v == 5 { Status::Resolved } else { Status::Open }))).collect();
    let p = producer(topics.bootstrap());
    produce(&p, topics.name("processed"), 3, &events).await;
    produce(&p, topics.name("incidents"), 1, &incidents).await;

    eprintln!("topics created and {} records produced in {:?}", EVENTS + incidents.len(), t0.elapsed());
    let collector = OtelCollector::start();
    let dir = tempfile::tempdir().unwrap();
    let ops_port = free_port().unwrap();
    let config = dir.path().join("export.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{ops_port}\nkafka:\n  brokers: {}\ntopics:\n  processed: {}\n  incidents: {}\n  dlq: {}\ngroup_id: {}-export\nendpoint:\n  url: {}\nincidents: logs_and_spans\nmax_batch_records: {BATCH}\n",
            topics.bootstrap(),
            topics.name("processed"),
            topics.name("incidents"),
            topics.name("dlq"),
            topics.name("processed"),
            collector.endpoint()
        ),
    )
    .unwrap();
    let log = dir.path().join("export.log");

    // First run: killed with SIGKILL once a quarter of the events were exported.
    let mut first = Exporter::start(&config, ops_port, &log);
    let started = Instant::now();
    let mut at_kill = 0;
    while at_kill < (EVENTS / 4) as u64 {
        assert!(started.elapsed() < Duration::from_secs(120), "the first run exported only {at_kill} events in 120 s; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(20));
        at_kill = first.exported(topics.name("processed"));
    }
    first.kill9();
    let first_ran = started.elapsed();
    let received_at_kill = collector.log_records().len();
    assert!((at_kill as usize) < EVENTS, "the kill must land mid-stream ({at_kill} of {EVENTS} exported)");

    // Second run: picks up from the committed offsets.
    let mut second = Exporter::start(&config, ops_port, &log);
    let mut expected_logs: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    expected_logs.extend(incidents.iter().map(|i| incident_uid(i.id[4..].parse().unwrap(), i.version)));
    let mut expected_spans: Vec<String> = events.iter().filter(|e| e.correlation_id != e.id).map(|e| e.id.clone()).collect();
    expected_spans.extend(["inc-0".to_string(), "inc-1".to_string()]);
    // Caught up: the group's committed offsets reached the ends of both topics
    // (cheap to ask; the Collector's files are read only after that).
    let group = format!("{}-export", topics.name("processed"));
    let started = Instant::now();
    while !caught_up(topics.bootstrap(), &group, &[topics.name("processed"), topics.name("incidents")]) {
        assert!(started.elapsed() < Duration::from_secs(300), "the second run did not catch up within 300 s; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(200));
    }
    let caught_up_after = started.elapsed();
    // Committed means answered 2xx; the file exporter flushes every 100 ms.
    let (logs, spans) = loop {
        let tl = tally(&expected_logs, collector.log_records().iter().filter_map(|r| attr(&r["attributes"], "log.record.uid")));
        let ts = tally(&expected_spans, collector.spans().iter().filter_map(span_key));
        if (tl.missing.is_empty() && ts.missing.is_empty()) || started.elapsed() > caught_up_after + Duration::from_secs(30) {
            break (tl, ts);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("the Collector's files read after {:?}", t0.elapsed());
    second.stop();
    // Anything still arriving after the stop would be a late duplicate: count again.
    let logs_final = tally(&expected_logs, collector.log_records().iter().filter_map(|r| attr(&r["attributes"], "log.record.uid")));
    let spans_final = tally(&expected_spans, collector.spans().iter().filter_map(span_key));
    eprintln!("kill -9 after {at_kill} of {EVENTS} events exported, {first_ran:?} after the first start ({received_at_kill} log records in the Collector's file at the kill); the second run caught up in {caught_up_after:?}");
    eprintln!("{}", report("log records", expected_logs.len(), &logs_final));
    eprintln!("{}", report("spans", expected_spans.len(), &spans_final));

    for (what, t, at_end) in [("log records", &logs, &logs_final), ("spans", &spans, &spans_final)] {
        assert!(t.missing.is_empty(), "{what} missing after the restart: {} (first {:?})", t.missing.len(), &t.missing[..t.missing.len().min(5)]);
        assert!(at_end.unexpected.is_empty(), "{what} nobody expected: {:?}", &at_end.unexpected[..at_end.unexpected.len().min(5)]);
        // The guarantee: only the batch in flight at the kill is repeated — at
        // most BATCH Kafka records, each once more.
        assert!(at_end.duplicated.len() <= BATCH, "{what}: {} duplicated ids, more than one batch ({BATCH})", at_end.duplicated.len());
        assert!(at_end.duplicated.iter().all(|(_, n)| *n == 2), "{what}: an id received more than twice: {:?}", at_end.duplicated.iter().find(|(_, n)| *n > 2));
        assert_eq!(at_end.total, at_end.distinct + at_end.duplicated.len(), "{what}: received = distinct + one repeat per duplicated id");
    }
}

/// Whether `group`'s committed offsets are at the end of every partition of `topics`.
fn caught_up(bootstrap: &str, group: &str, topics: &[&str]) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", group).create().unwrap();
    let t = Duration::from_secs(5);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for topic in topics {
        let Ok(md) = c.fetch_metadata(Some(topic), t) else { return false };
        for p in md.topics()[0].partitions() {
            tpl.add_partition(topic, p.id());
        }
    }
    let Ok(committed) = c.committed_offsets(tpl, t) else { return false };
    committed.elements().iter().all(|e| {
        let end = c.fetch_watermarks(e.topic(), e.partition(), t).map(|(_, high)| high).unwrap_or(i64::MAX);
        matches!(e.offset(), rdkafka::Offset::Offset(o) if o >= end)
    })
}

/// A span's stable key: the event id of a child span, the incident id of a root.
fn span_key(s: &serde_json::Value) -> Option<&str> {
    attr(&s["attributes"], "kevents.event.id").or_else(|| if s["parentSpanId"].as_str().unwrap_or("").is_empty() { attr(&s["attributes"], "kevents.incident.id") } else { None })
}
