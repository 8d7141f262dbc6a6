//! The OpenTelemetry Python SDK (PyPI `opentelemetry-sdk` with its OTLP/HTTP
//! protobuf exporter: a client nobody here wrote) sends an application's logs to
//! `kevents ingest`; the processor and the sink, real, take them through a real
//! broker to ClickHouse, beside records written as the collector writes them
//! (epoch 3, the cluster's partition). In ClickHouse the application's events are
//! classified by a user's rule, the pod's BackOff from the cluster is in the
//! incident the application's "failover started" opened, a client's retry is
//! stored once, and no record of either source was dropped as stale.

mod common;

use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::avro::Codec;
use schemas::model::{ClusterId, NormalizedEvent, ObjectRef};
use schemas::records::{CollectorMeta, RawRecord, WatchEvent, WatchKind};
use std::time::{Duration, Instant};
use testkit::services::Services;

const CLASSIFY: &str = "categories:
  - name: application
    description: Events applications send themselves (kevents ingest).
rules:
  - name: app-failover
    reason: FailoverStarted
    category: application
    severity: warning
  - name: app-log
    reason: [ApplicationLog, CacheFlushed]
    category: application
    severity: info
";

const CORRELATE: &str = "rules:
  - name: app-failover
    description: An application's failover, and what its pods then go through.
    cause: {reason: FailoverStarted}
    effects:
      - {reason: BackOff}
      - {reason: [ApplicationLog, CacheFlushed]}
    link: [object, owner]
";

/// A record as the collector writes it: epoch 3, keyed by the cluster uid, in
/// the collector's partition.
fn collector_record(rv: u64, reason: &str, kind_of_event: &str, note: &str, t_us: i64) -> RawRecord {
    RawRecord {
        cluster: ClusterId { name: "prod".into(), uid: PROD_UID.into() },
        collector: CollectorMeta { instance: "collector-0".into(), leader_epoch: 3 },
        observed_us: t_us,
        resource_version: rv.to_string(),
        event: Some(WatchEvent {
            kind: WatchKind::Added,
            event: Box::new(NormalizedEvent {
                uid: format!("k8s-{rv}").into(),
                namespace: "pay".into(),
                name: format!("web-1.{rv}").into(),
                resource_version: rv.to_string().into(),
                event_type: kind_of_event.into(),
                reason: reason.into(),
                note: note.into(),
                reporting_controller: "kubelet".into(),
                reporting_instance: "node-1".into(),
                regarding: ObjectRef { kind: "Pod".into(), namespace: "pay".into(), name: "web-1".into(), field_path: "spec.containers{app}".into(), ..Default::default() },
                count: 1,
                first_seen_us: t_us,
                last_seen_us: t_us,
                created_us: t_us,
                ..Default::default()
            }),
        }),
        heartbeat: None,
    }
}

async fn produce(bootstrap: &str, topic: &str, partitions: i32, recs: &[RawRecord]) {
    let p: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).set("enable.idempotence", "true").create().unwrap();
    let codec = Codec::default();
    for r in recs {
        let payload = codec.encode(r).unwrap();
        let part = collector::publish::partition_for(r.key().as_bytes(), partitions);
        p.send(FutureRecord::to(topic).key(r.key()).payload(&payload).partition(part), Duration::from_secs(10)).await.unwrap();
    }
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Row {
    id: String,
    reason: String,
    category: String,
    severity: String,
    correlation_id: String,
    leader_epoch: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_logs_are_classified_and_correlated_with_the_clusters_events() {
    let s = Services::get();
    let topics = s.create_topics("ingest-otel", &[("raw", 3), ("processed", 1), ("heartbeats", 1), ("incidents", 1), ("patterns", 1), ("alerts", 1), ("dlq", 1)]).await;
    let db = s.fresh_database("ingest_otel").await;
    let dir = tempfile::tempdir().unwrap();
    let (classify, correlate) = (dir.path().join("classify.yaml"), dir.path().join("correlate.yaml"));
    std::fs::write(&classify, CLASSIFY).unwrap();
    std::fs::write(&correlate, CORRELATE).unwrap();

    let now_us = kevents_ingest::api::now_us();
    // The cluster's collector (epoch 3) has already seen the pod scheduled.
    produce(topics.bootstrap(), topics.name("raw"), 3, &[collector_record(100, "Scheduled", "Normal", "Successfully assigned pay/web-1 to node-1", now_us - 2_000_000)]).await;

    let ingest = Ingest::start(topics.bootstrap(), topics.name("raw"), |_| {}).await;
    let out = std::process::Command::new(pyclients_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/otel_send.py"))
        .args([&ingest.url, CI_TOKEN, "prod", "pay", "web-1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the SDK's export failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // An OTLP/JSON request, sent twice (a client's retry): stored once.
    let t_ns = (now_us as u64 + 1) * 1000;
    let json = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k8s.cluster.name","value":{{"stringValue":"prod"}}}},{{"key":"k8s.namespace.name","value":{{"stringValue":"pay"}}}},{{"key":"k8s.pod.name","value":{{"stringValue":"web-1"}}}},{{"key":"service.name","value":{{"stringValue":"payment-gateway"}}}}]}},"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{t_ns}","severityNumber":9,"body":{{"stringValue":"cache flushed"}},"attributes":[{{"key":"k8s.event.reason","value":{{"stringValue":"CacheFlushed"}}}}]}}]}}]}}]}}"#
    );
    for _ in 0..2 {
        let (status, _, b) = ingest.post("/v1/logs", CI_TOKEN, "application/json", json.clone()).await;
        assert_eq!((status, b.as_str()), (200, "{}"));
    }
    assert_eq!(ingest.running.as_ref().unwrap().metrics.events.get_or_create(&kevents_ingest::metrics::EndpointLabel { endpoint: "logs".into() }).get(), 4, "2 from the SDK, 2 from the retried request");
    // Then the kubelet backs off the pod's container: a cluster event, epoch 3,
    // after the ingested records (epoch 0) in the same partition.
    produce(topics.bootstrap(), topics.name("raw"), 3, &[collector_record(101, "BackOff", "Warning", "Back-off restarting failed container app in pod web-1_pay(abc)", kevents_ingest::api::now_us())]).await;

    let mut pcfg = processor::ProcessorConfig::default();
    pcfg.kafka.brokers = topics.bootstrap().into();
    pcfg.topics.raw = topics.name("raw").into();
    for (t, name) in [(&mut pcfg.topics.processed, "processed"), (&mut pcfg.topics.heartbeats, "heartbeats"), (&mut pcfg.topics.incidents, "incidents"), (&mut pcfg.topics.patterns, "patterns"), (&mut pcfg.topics.alerts, "alerts"), (&mut pcfg.topics.dlq, "dlq")] {
        *t = topics.name(name).into();
    }
    pcfg.group_id = format!("g-{}", topics.name("raw"));
    pcfg.create_topic_partitions = 0;
    pcfg.listen = "127.0.0.1:0".parse().unwrap();
    pcfg.drain_timeout_secs = 5;
    pcfg.rules_files = vec![classify];
    pcfg.correlation.rules_files = vec![correlate];
    let (pstop, prx) = tokio::sync::oneshot::channel::<()>();
    let proc_running = processor::start(pcfg, async move {
        let _ = prx.await;
    })
    .await
    .unwrap();

    let mut scfg = sink::SinkConfig::default();
    scfg.kafka.brokers = topics.bootstrap().into();
    scfg.group_id = format!("sink-{}", topics.name("raw"));
    for (t, name) in [(&mut scfg.topics.processed, "processed"), (&mut scfg.topics.heartbeats, "heartbeats"), (&mut scfg.topics.incidents, "incidents"), (&mut scfg.topics.patterns, "patterns"), (&mut scfg.topics.alerts, "alerts"), (&mut scfg.topics.dlq, "dlq")] {
        *t = topics.name(name).into();
    }
    scfg.clickhouse.url = s.clickhouse_url();
    scfg.clickhouse.database = db.name.clone();
    scfg.batch.max_wait_ms = 200;
    scfg.listen = "127.0.0.1:0".parse().unwrap();
    let (sstop, srx) = tokio::sync::oneshot::channel::<()>();
    let sink_task = tokio::spawn(sink::run(scfg, async move {
        let _ = srx.await;
    }));

    let deadline = Instant::now() + Duration::from_secs(120);
    let rows: Vec<Row> = loop {
        let rows = db
            .client
            .query("SELECT id, reason, category, severity, correlation_id, leader_epoch FROM events WHERE cluster_uid = ? ORDER BY observed_at, id")
            .bind(PROD_UID)
            .fetch_all::<Row>()
            .await
            .unwrap_or_default();
        if rows.len() >= 5 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(rows.len(), 5, "Scheduled, the SDK's 2 logs, CacheFlushed once, BackOff: {rows:#?}");
    for want in ["Scheduled", "FailoverStarted", "ApplicationLog", "CacheFlushed", "BackOff"] {
        assert!(reasons.contains(&want), "{want} in {reasons:?}");
    }
    let by = |reason: &str| rows.iter().find(|r| r.reason == reason).unwrap();
    let failover = by("FailoverStarted");
    assert_eq!((failover.category.as_str(), failover.severity.as_str()), ("application", "warning"), "classified by the user's rule");
    assert_eq!(by("ApplicationLog").category, "application");
    assert_eq!(failover.correlation_id, failover.id, "the failover opened an incident");
    assert_eq!(by("BackOff").correlation_id, failover.id, "the cluster's BackOff of the pod is in the application's incident");
    assert_eq!(by("CacheFlushed").correlation_id, failover.id);
    assert_eq!((by("BackOff").leader_epoch, failover.leader_epoch), (3, 0));
    let incident: Vec<(String, String)> = db.client.query("SELECT root_reason, rule FROM incidents WHERE id = ?").bind(&failover.id).fetch_all().await.unwrap();
    assert!(incident.iter().all(|(r, rule)| r == "FailoverStarted" && rule == "app-failover") && !incident.is_empty(), "{incident:?}");
    assert_eq!(proc_running.metrics.stale_epochs.get(), 0, "neither source's records were stale");
    assert_eq!(proc_running.metrics.duplicates.get(), 1, "the retried request");

    let _ = sstop.send(());
    sink_task.await.unwrap().unwrap();
    let _ = pstop.send(());
    proc_running.wait().await.unwrap();
    ingest.shutdown().await;
}
