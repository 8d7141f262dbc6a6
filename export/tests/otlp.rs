//! The exporter against the real things: Apache Kafka (testkit's shared broker,
//! each test its own topics) and a real OpenTelemetry Collector built from the Go
//! module proxy (OTLP receiver → file exporter, testkit::otelcol) — and, for the
//! answers a Collector does not give on demand (400 for one record, 503, 429),
//! testkit's scripted HTTP receiver.
//!
//! The `kill -9` test runs the `kevents` binary and lives in
//! `cli/tests/export_kill9.rs`.

mod common;

use kevents_export as export;

use common::{event, incident, incident_uid, produce, producer, tally};
use export::{ExportConfig, IncidentExport};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use schemas::records::Status;
use std::time::{Duration, Instant};
use testkit::otelcol::{attr, OtelCollector};
use testkit::receiver::{Receiver, Reply};
use testkit::services::{http_request, read_topic, Services};
use tokio_util::sync::CancellationToken;

fn config(topics: &testkit::services::TestTopics, url: &str) -> ExportConfig {
    let mut c = ExportConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        topics: export::TopicsConfig { processed: topics.name("processed").into(), incidents: topics.name("incidents").into(), dlq: topics.name("dlq").into() },
        group_id: format!("{}-export", topics.name("processed")),
        backoff_initial_ms: 10,
        backoff_max_secs: 1,
        ..Default::default()
    };
    c.kafka.brokers = topics.bootstrap().into();
    c.endpoint.url = url.into();
    c
}

/// Poll `done` every 50 ms until it holds or `limit` passes; the last value.
async fn until<T>(limit: Duration, mut f: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let start = Instant::now();
    loop {
        let v = f();
        if done(&v) || start.elapsed() > limit {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_incidents_reach_a_real_collector_as_logs_and_spans() {
    let s = Services::get();
    let topics = s.create_topics("export-otel", &[("processed", 3), ("incidents", 1), ("dlq", 1)]).await;
    let events: Vec<_> = (0..60).map(event).collect();
    let incidents = vec![incident(0, 1, Status::Open), incident(0, 2, Status::Resolved), incident(1, 1, Status::Open)];
    let p = producer(topics.bootstrap());
    produce(&p, topics.name("processed"), 3, &events).await;
    produce(&p, topics.name("incidents"), 1, &incidents).await;
    // Bytes that are no incident: dead-lettered with the reason, never dropped silently.
    let garbage = rdkafka::producer::FutureRecord::<(), _>::to(topics.name("incidents")).payload(&b"not avro"[..]);
    p.send(garbage, Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();

    let collector = OtelCollector::start();
    let mut cfg = config(&topics, &collector.endpoint());
    cfg.incidents = IncidentExport::LogsAndSpans;
    cfg.max_batch_records = 16;
    let stop = CancellationToken::new();
    let s2 = stop.clone();
    let running = export::start(cfg, async move { s2.cancelled().await }).await.unwrap();
    let ops = format!("http://{}", running.addr);

    let mut expected: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    expected.extend([incident_uid(0, 1), incident_uid(0, 2), incident_uid(1, 1)]);
    let logs = until(Duration::from_secs(60), || collector.log_records(), |l| l.len() >= expected.len()).await;
    let t = tally(&expected, logs.iter().filter_map(|r| attr(&r["attributes"], "log.record.uid")));
    eprintln!("logs: {} received, {} distinct, missing {:?}, duplicated {:?}", t.total, t.distinct, t.missing, t.duplicated);
    assert!(t.missing.is_empty() && t.unexpected.is_empty(), "missing {:?}, unexpected {:?}", t.missing, t.unexpected);
    assert!(t.duplicated.is_empty(), "no crash, no duplicate: {:?}", t.duplicated);

    // One event in detail: severity, body, ids, the pod's resource, the trace link.
    let e1 = logs.iter().find(|r| attr(&r["attributes"], "log.record.uid") == Some("ev-000001")).unwrap();
    assert_eq!(e1["severityNumber"], 17, "error → ERROR: {e1}");
    assert_eq!(e1["severityText"], "error");
    assert_eq!(e1["body"]["stringValue"], events[1].event.note.as_str());
    assert_eq!(e1["eventName"], "kevents.event");
    assert_eq!(attr(&e1["attributes"], "kevents.event.id"), Some("ev-000001"));
    assert_eq!(attr(&e1["attributes"], "kevents.incident.id"), Some("inc-1"));
    assert_eq!(attr(&e1["attributes"], "kevents.category"), Some("crashloop"));
    assert_eq!(attr(&e1["attributes"], "k8s.event.reason"), Some("BackOff"));
    assert_eq!(attr(&e1["resource"], "k8s.cluster.name"), Some("prod-eu"));
    assert_eq!(attr(&e1["resource"], "k8s.namespace.name"), Some("shop"));
    assert_eq!(attr(&e1["resource"], "k8s.pod.name"), Some("api-1"));
    let critical = logs.iter().find(|r| attr(&r["attributes"], "log.record.uid") == Some("ev-000000")).unwrap();
    assert_eq!((critical["severityNumber"].as_i64(), attr(&critical["attributes"], "kevents.incident.id")), (Some(21), None), "critical → FATAL; alone: no incident");
    let inc = logs.iter().find(|r| attr(&r["attributes"], "log.record.uid") == Some("inc-0.v2")).unwrap();
    assert_eq!(attr(&inc["resource"], "k8s.deployment.name"), Some("api"));
    assert_eq!(attr(&inc["attributes"], "kevents.incident.status"), Some("resolved"));

    // Traces: a child span per event of an incident (40 of the 60), and the root
    // span of the one resolved incident version; children point at it.
    let in_incident = events.iter().filter(|e| e.correlation_id != e.id).count();
    let spans = until(Duration::from_secs(30), || collector.spans(), |s| s.len() > in_incident).await;
    assert_eq!(spans.len(), in_incident + 1, "{} spans", spans.len());
    let root = spans.iter().find(|s| s["parentSpanId"].as_str().unwrap_or("").is_empty()).expect("the root span of inc-0");
    assert_eq!(attr(&root["attributes"], "kevents.incident.id"), Some("inc-0"));
    let children: Vec<_> = spans.iter().filter(|s| attr(&s["attributes"], "kevents.incident.id") == Some("inc-0") && s["spanId"] != root["spanId"]).collect();
    assert_eq!(children.len(), events.iter().filter(|e| e.correlation_id == "inc-0").count());
    assert!(children.iter().all(|c| c["parentSpanId"] == root["spanId"] && c["traceId"] == root["traceId"]));
    assert_eq!(e1["traceId"], spans.iter().find(|s| attr(&s["attributes"], "kevents.event.id") == Some("ev-000001")).unwrap()["traceId"], "a log of an incident's event carries its trace");

    // Truthful ops: ready (partitions assigned, endpoint answering), metrics counted.
    let (status, body) = http_request(&ops, "GET", "/readyz", "", Duration::from_secs(5)).unwrap();
    assert_eq!(status, 200, "{body}");
    let m = &running.metrics;
    assert_eq!((m.records(topics.name("processed"), "exported"), m.records(topics.name("incidents"), "exported")), (60, 3));
    assert_eq!(m.records(topics.name("incidents"), "dead_lettered"), 1);
    let dlq = read_topic(topics.bootstrap(), topics.name("dlq")).unwrap();
    assert_eq!(dlq.len(), 1);
    let reason = dlq[0].headers.iter().find(|(k, _)| k == "kevents.dlq.reason").map(|(_, v)| String::from_utf8_lossy(v).to_string()).unwrap();
    assert!(reason.contains("undecodable incident"), "{reason}");
    assert_eq!(dlq[0].payload, b"not avro");
    let (_, metrics) = http_request(&ops, "GET", "/metrics", "", Duration::from_secs(5)).unwrap();
    assert!(metrics.contains("kevents_export_records_total{"), "{metrics}");
    stop.cancel();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_and_429_splits_a_rejected_batch_and_dead_letters_only_the_bad_record() {
    let s = Services::get();
    let topics = s.create_topics("export-dlq", &[("processed", 1), ("incidents", 1), ("dlq", 1)]).await;
    let events: Vec<_> = (0..4).map(event).collect();
    produce(&producer(topics.bootstrap()), topics.name("processed"), 1, &events).await;

    let r = Receiver::start().await.unwrap();
    // The start-up probe; the batch of 4: 503, 429, then 400 → halves: [0,1] ok,
    // [2,3] 400 → [2] 400 (dead letter), [3] ok.
    r.script([200, 503, 429, 400, 200, 400, 400, 200].map(Reply::status));
    let mut cfg = config(&topics, &r.url());
    cfg.max_batch_records = 4;
    cfg.max_batch_wait_ms = 5000;
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "Bearer t0k\n").unwrap();
    cfg.endpoint.header_files.insert("authorization".into(), token.path().into());
    let stop = CancellationToken::new();
    let s2 = stop.clone();
    let running = export::start(cfg, async move { s2.cancelled().await }).await.unwrap();
    let m = running.metrics.clone();
    let processed = topics.name("processed").to_string();
    until(Duration::from_secs(60), || m.records(&processed, "exported") + m.records(&processed, "dead_lettered"), |n| *n >= 4).await;
    assert_eq!((m.records(&processed, "exported"), m.records(&processed, "dead_lettered")), (3, 1));

    let reqs = r.requests();
    let sizes: Vec<usize> = reqs
        .iter()
        .map(|q| ExportLogsServiceRequest::decode(q.body.as_slice()).unwrap().resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum())
        .collect();
    assert_eq!(sizes, [0, 4, 4, 4, 2, 2, 1, 1], "retried twice, then split down to the bad record, which is not retried");
    assert!(reqs.iter().all(|q| q.path == "/v1/logs" && q.header("content-type") == Some("application/x-protobuf") && q.header("authorization") == Some("Bearer t0k")));
    use export::send::Signal;
    assert_eq!((m.requests(Signal::Logs, "retried"), m.requests(Signal::Logs, "rejected"), m.requests(Signal::Logs, "ok")), (2, 3, 3));

    let dlq = read_topic(topics.bootstrap(), topics.name("dlq")).unwrap();
    assert_eq!(dlq.len(), 1, "exactly the rejected record");
    let h = |k: &str| dlq[0].headers.iter().find(|(n, _)| n == k).map(|(_, v)| String::from_utf8_lossy(v).to_string());
    assert!(h("kevents.dlq.reason").unwrap().contains("HTTP 400"), "{:?}", h("kevents.dlq.reason"));
    assert_eq!((h("kevents.dlq.offset").as_deref(), h("kevents.dlq.stage").as_deref(), h("kevents.dlq.topic")), (Some("2"), Some("export"), Some(processed.clone())));
    let back: schemas::records::ProcessedEvent = schemas::avro::Codec::default().decode(&dlq[0].payload).unwrap();
    assert_eq!(back.id, events[2].id, "the original bytes");
    stop.cancel();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_works_with_the_configured_ca_and_waits_without_it() {
    let s = Services::get();
    let topics = s.create_topics("export-tls", &[("processed", 1), ("incidents", 1), ("dlq", 1)]).await;
    let events: Vec<_> = (0..5).map(event).collect();
    produce(&producer(topics.bootstrap()), topics.name("processed"), 1, &events).await;
    // The shared broker's test CA signed a certificate for 127.0.0.1.
    let tls = s.kafka_sasl().ca_file.parent().unwrap().to_path_buf();
    let collector = OtelCollector::start_tls(&tls.join("broker.crt"), &tls.join("broker.pk8"));
    assert!(collector.endpoint().starts_with("https://"));
    let processed = topics.name("processed").to_string();

    // Without the CA: the handshake fails, retried, nothing exported or committed.
    let stop = CancellationToken::new();
    let s1 = stop.clone();
    let a = export::start(config(&topics, &collector.endpoint()), async move { s1.cancelled().await }).await.unwrap();
    let ops = format!("http://{}", a.addr);
    let (status, body) = until(Duration::from_secs(30), || http_request(&ops, "GET", "/readyz", "", Duration::from_secs(2)).unwrap(), |(_, b)| b.contains("endpoint: NOT READY logs requests failing")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("certificate") || body.contains("request failed"), "the reason is shown: {body}");
    assert!(a.metrics.requests(export::send::Signal::Logs, "retried") > 0);
    assert_eq!(a.metrics.records(&processed, "exported"), 0);
    stop.cancel();
    a.wait().await.unwrap();

    // With `endpoint.ca_file`: everything arrives, from the first record (the
    // first member committed nothing).
    let mut cfg = config(&topics, &collector.endpoint());
    cfg.endpoint.ca_file = Some(s.kafka_sasl().ca_file.clone());
    let stop = CancellationToken::new();
    let s2 = stop.clone();
    let b = export::start(cfg, async move { s2.cancelled().await }).await.unwrap();
    let logs = until(Duration::from_secs(60), || collector.log_records(), |l| l.len() >= 5).await;
    let expected: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let t = tally(&expected, logs.iter().filter_map(|r| attr(&r["attributes"], "log.record.uid")));
    assert!(t.missing.is_empty() && t.duplicated.is_empty(), "missing {:?}, duplicated {:?}", t.missing, t.duplicated);
    stop.cancel();
    b.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_retried_not_dead_lettered_and_a_rotated_token_file_resumes() {
    let s = Services::get();
    let topics = s.create_topics("export-401", &[("processed", 1), ("incidents", 1), ("dlq", 1)]).await;
    let events: Vec<_> = (0..3).map(event).collect();
    produce(&producer(topics.bootstrap()), topics.name("processed"), 1, &events).await;
    let r = Receiver::start().await.unwrap();
    r.set_default(Reply::status(401));
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "Bearer expired\n").unwrap();
    let mut cfg = config(&topics, &r.url());
    cfg.endpoint.header_files.insert("Authorization".into(), token.path().into());
    let stop = CancellationToken::new();
    let s1 = stop.clone();
    let running = export::start(cfg, async move { s1.cancelled().await }).await.unwrap();
    use export::send::Signal;
    let m = running.metrics.clone();
    until(Duration::from_secs(30), || m.requests(Signal::Logs, "refused"), |n| *n >= 3).await;
    assert!(m.requests(Signal::Logs, "refused") >= 3);
    // The Secret is rotated: the next attempt reads the file again (seen while
    // the endpoint still refuses, so every accepted request carries the new one).
    std::fs::write(token.path(), "Bearer fresh\n").unwrap();
    assert!(r.wait_until(Duration::from_secs(30), |q| q.iter().any(|q| q.header("authorization") == Some("Bearer fresh"))).await);
    r.set_default(Reply::status(200));
    let processed = topics.name("processed").to_string();
    until(Duration::from_secs(30), || m.records(&processed, "exported"), |n| *n >= 3).await;
    assert_eq!((m.records(&processed, "exported"), m.records(&processed, "dead_lettered")), (3, 0), "a 401 is about the exporter, not the records");
    let reqs = r.requests();
    assert!(reqs.iter().filter(|q| q.status == 401 && q.header("authorization") == Some("Bearer expired")).count() >= 3);
    assert!(reqs.iter().filter(|q| q.accepted()).all(|q| q.header("authorization") == Some("Bearer fresh")));
    assert!(read_topic(topics.bootstrap(), topics.name("dlq")).unwrap().is_empty());
    stop.cancel();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn a_bad_config_stops_start_up_naming_the_field() {
    let mut c = ExportConfig::default();
    c.endpoint.url = "collector:4318".into();
    let e = export::start(c, std::future::pending()).await.err().expect("refused");
    assert!(e.to_string().contains("endpoint.url"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_mid_stream_takes_partitions_without_loss_or_repeat() {
    const N: usize = 30_000;
    let s = Services::get();
    let topics = s.create_topics("export-join", &[("processed", 4), ("incidents", 1), ("dlq", 1)]).await;
    let events: Vec<_> = (0..N).map(event).collect();
    produce(&producer(topics.bootstrap()), topics.name("processed"), 4, &events).await;
    let collector = OtelCollector::start();
    let cfg = ExportConfig { max_batch_records: 100, ..config(&topics, &collector.endpoint()) };
    let stop = CancellationToken::new();
    let (s1, s2) = (stop.clone(), stop.clone());
    let a = export::start(cfg.clone(), async move { s1.cancelled().await }).await.unwrap();
    let processed = topics.name("processed").to_string();
    let am = a.metrics.clone();
    until(Duration::from_secs(60), || am.records(&processed, "exported"), |n| *n >= 2_000).await;
    let b = export::start(cfg, async move { s2.cancelled().await }).await.unwrap();
    let bm = b.metrics.clone();
    let expected: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let done = until(Duration::from_secs(120), || am.records(&processed, "exported") + bm.records(&processed, "exported"), |n| *n >= N as u64).await;
    let logs = until(Duration::from_secs(30), || collector.log_records(), |l| l.len() >= N).await;
    let t = tally(&expected, logs.iter().filter_map(|r| attr(&r["attributes"], "log.record.uid")));
    let (by_a, by_b) = (am.records(&processed, "exported"), bm.records(&processed, "exported"));
    eprintln!("member a exported {by_a}, member b {by_b} (sum {done}); batches dropped unsent on the rebalance: a {}, b {}", am.batches_abandoned.get(), bm.batches_abandoned.get());
    eprintln!("logs: {} received, {} distinct, missing {}, duplicated {}", t.total, t.distinct, t.missing.len(), t.duplicated.len());
    assert!(t.missing.is_empty(), "missing {:?}", &t.missing[..t.missing.len().min(5)]);
    assert!(by_b > 0 && by_a < N as u64, "the second member took partitions mid-stream (a {by_a}, b {by_b})");
    assert!(t.duplicated.is_empty(), "a rebalance finds every delivered batch committed: nothing sent twice, got {:?}", &t.duplicated[..t.duplicated.len().min(5)]);
    assert_eq!(by_a + by_b, N as u64);
    stop.cancel();
    a.wait().await.unwrap();
    b.wait().await.unwrap();
}
