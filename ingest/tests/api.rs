//! The ingest API against a real broker: stored records are ordinary raw records
//! in the cluster's partition; refusals (401, 403, 429, 413, 400, 415) name their
//! reason and write nothing; with Kafka down requests are answered 503 and every
//! 2xx was stored.

mod common;

use common::*;
use std::collections::HashSet;
use std::time::Duration;
use testkit::services::{OwnedBroker, Services};

fn batch(n: usize, t0: u32) -> String {
    let items: Vec<_> = (0..n).map(|i| event("pay", "Deployment", "payment-gateway", "FailoverStarted", &format!("step {i}"), &format!("2025-01-02T03:04:{:02}.000000Z", (t0 as usize + i) % 60))).collect();
    serde_json::json!({"kind": "EventList", "items": items}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_as_raw_records_in_the_clusters_partition_with_stable_ids() {
    let s = Services::get();
    let topics = s.create_topics("ingest-store", &[("raw", 4)]).await;
    let ingest = Ingest::start(topics.bootstrap(), topics.name("raw"), |_| {}).await;

    let body = batch(3, 0);
    let (status, _, first) = ingest.post_events("", CI_TOKEN, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["accepted"], 3);
    // The client's retry of the same request: the same ids.
    let (status, _, again) = ingest.post_events("?cluster=prod", CI_TOKEN, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first["events"], again["events"], "a retry names the same events");
    // A single Event (not a list).
    let one = event("pay", "Pod", "web-1", "CacheWarmed", "done", "2025-01-02T03:05:00.000000Z").to_string();
    let (status, _, single) = ingest.post_events("", CI_TOKEN, &one).await;
    assert_eq!((status, single["accepted"].as_u64()), (200, Some(1)));

    let raw = read_raw(topics.bootstrap(), topics.name("raw"));
    assert_eq!(raw.len(), 7, "every acknowledged record is in the topic");
    let want = collector::publish::partition_for(PROD_UID.as_bytes(), 4);
    for (partition, key, rec) in &raw {
        assert_eq!((key.as_str(), *partition), (PROD_UID, want), "keyed and partitioned as the collector does");
        assert!(rec.collector.is_ingest() && rec.collector.instance == "kevents-ingest/test");
        assert_eq!((rec.collector.leader_epoch, rec.resource_version.as_str()), (0, ""), "never a collector's epoch or cursor");
        assert_eq!((rec.cluster.name.as_str(), rec.cluster.uid.as_str()), ("prod", PROD_UID));
    }
    let uids: Vec<_> = raw.iter().map(|(_, _, r)| r.event.as_ref().unwrap().event.uid.to_string()).collect();
    assert_eq!(uids[..3], uids[3..6], "the retry carries the same uids");
    assert_eq!(uids.iter().collect::<HashSet<_>>().len(), 4);
    let ev = &raw[0].2.event.as_ref().unwrap().event;
    assert_eq!((ev.reason.as_str(), ev.namespace.as_str(), ev.regarding.name.as_str(), ev.reporting_controller.as_str()), ("FailoverStarted", "pay", "payment-gateway", "deploy-bot"));

    let (_, metrics) = ingest.get("/metrics").await;
    assert!(metrics.contains("kevents_ingest_events_total{endpoint=\"events\"} 7"), "{metrics}");
    let (code, ready) = ingest.get("/readyz").await;
    assert_eq!(code, 200, "{ready}");
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_reason_and_write_nothing() {
    let s = Services::get();
    let topics = s.create_topics("ingest-refuse", &[("raw", 2)]).await;
    let ingest = Ingest::start(topics.bootstrap(), topics.name("raw"), |c| {
        c.max_body_bytes = 64 * 1024;
        c.max_batch_events = 50;
    })
    .await;
    let body = batch(2, 0);

    // 401: no token, an unknown one.
    let (status, _, b) = ingest.post_events("", "", &body).await;
    assert_eq!(status, 401, "{b}");
    let r = reqwest::Client::new().post(format!("{}/v1/events", ingest.url)).bearer_auth("ci-token-0123456789abcdeX").body(body.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert!(!r.text().await.unwrap().contains("ci-token"), "the token is never echoed");

    // 403: a cluster or a namespace outside the token's scope; the field is named.
    let (status, _, b) = ingest.post_events("?cluster=dev", CI_TOKEN, &body).await;
    assert_eq!((status, b["field"].as_str()), (403, Some("cluster")), "{b}");
    let other_ns = serde_json::json!([event("pay", "Pod", "a", "R", "", "2025-01-02T03:04:05Z"), event("kube-system", "Pod", "b", "R", "", "2025-01-02T03:04:05Z")]).to_string();
    let (status, _, b) = ingest.post_events("", CI_TOKEN, &other_ns).await;
    assert_eq!((status, b["field"].as_str()), (403, Some("items[1].namespace")), "{b}");

    // 400: a malformed field, named; the whole batch is refused.
    let mut items = vec![event("pay", "Pod", "a", "R", "", "2025-01-02T03:04:05Z"); 3];
    items[1]["regarding"]["name"] = "".into();
    let (status, _, b) = ingest.post_events("", CI_TOKEN, &serde_json::Value::from(items.clone()).to_string()).await;
    assert_eq!((status, b["field"].as_str()), (400, Some("items[1].regarding.name")), "{b}");
    items[1]["regarding"]["name"] = "b".into();
    items[2]["eventTime"] = "last tuesday".into();
    let (status, _, b) = ingest.post_events("", CI_TOKEN, &serde_json::Value::from(items).to_string()).await;
    assert_eq!((status, b["field"].as_str()), (400, Some("items[2].eventTime")), "{b}");
    let (status, _, b) = ingest.post_events("", CI_TOKEN, "{not json").await;
    assert_eq!(status, 400, "{b}");

    // 413: a body over max_body_bytes, a batch over max_batch_events.
    let big = batch(1, 0).replace("step 0", &"x".repeat(70 * 1024));
    let (status, _, b) = ingest.post_events("", CI_TOKEN, &big).await;
    assert_eq!(status, 413, "{b}");
    let (status, _, b) = ingest.post_events("", OPS_TOKEN, &batch(51, 0)).await;
    assert_eq!(status, 413, "{b}");

    // 415: OTLP in neither encoding.
    let (status, _, b) = ingest.post("/v1/logs", CI_TOKEN, "text/plain", "hello").await;
    assert_eq!(status, 415, "{b}");

    // 429: the slow token (1/s, burst 5) after its burst, with Retry-After; a
    // request larger than its burst can never fit: 413.
    let (status, _, _) = ingest.post_events("", SLOW_TOKEN, &batch(6, 20)).await;
    assert_eq!(status, 413, "more than the burst never fits");
    let (status, _, b) = ingest.post_events("", SLOW_TOKEN, &batch(5, 0)).await;
    assert_eq!(status, 200, "{b}");
    let (status, retry, b) = ingest.post_events("", SLOW_TOKEN, &batch(2, 10)).await;
    assert_eq!(status, 429, "{b}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "2 events at 1/s after an empty bucket: {retry}");

    // Only the one accepted batch (5 events) reached the topic.
    assert_eq!(read_raw(topics.bootstrap(), topics.name("raw")).len(), 5);
    let (_, metrics) = ingest.get("/metrics").await;
    for line in ["reason=\"unauthorized\"} 2", "reason=\"forbidden\"} 2", "reason=\"rate_limited\"} 1", "reason=\"media_type\"} 1"] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    // The served description is OpenAPI 3 and names both endpoints.
    let (code, spec) = ingest.get("/openapi.json").await;
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!((code, spec["openapi"].as_str()), (200, Some("3.0.3")));
    assert!(spec["paths"]["/v1/events"].is_object() && spec["paths"]["/v1/logs"].is_object());
    ingest.shutdown().await;
}

/// Kafka down: requests are answered 503 (never 2xx), `/readyz` says so, and after
/// the broker is back every request that was answered 2xx is in the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_answers_503_and_every_2xx_is_stored() {
    let mut broker = OwnedBroker::spawn().expect("a private broker");
    let topics = broker.create_topics("ingest-down", &[("raw", 2)]).await;
    let ingest = Ingest::start(&broker.bootstrap(), topics.name("raw"), |c| c.delivery_timeout_ms = 1500).await;
    let mut acknowledged: HashSet<String> = HashSet::new();
    fn note(b: &serde_json::Value, acked: &mut HashSet<String>) {
        for e in b["events"].as_array().unwrap() {
            acked.insert(e["uid"].as_str().unwrap().to_string());
        }
    }
    let (status, _, b) = ingest.post_events("", OPS_TOKEN, &batch(2, 0)).await;
    assert_eq!(status, 400, "ops may write any cluster but must name it: {b}");
    let (status, _, b) = ingest.post_events("?cluster=prod", OPS_TOKEN, &batch(2, 0)).await;
    assert_eq!(status, 200, "{b}");
    note(&b, &mut acknowledged);

    broker.stop();
    for i in 1..4 {
        let (status, retry, b) = ingest.post_events("?cluster=prod", OPS_TOKEN, &batch(2, i * 2)).await;
        assert_eq!(status, 503, "Kafka is down: {b}");
        assert!(retry.is_some());
    }
    let mut not_ready = false;
    for _ in 0..30 {
        if ingest.get("/readyz").await.0 == 503 {
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(not_ready, "/readyz tells Kafka is away");
    assert_eq!(ingest.get("/healthz").await.0, 200, "alive: a restart would not bring Kafka back");

    broker.restart().expect("the broker restarts");
    let mut back = false;
    for i in 10..60 {
        let (status, _, b) = ingest.post_events("?cluster=prod", OPS_TOKEN, &batch(2, i * 2)).await;
        if status == 200 {
            note(&b, &mut acknowledged);
            back = true;
            break;
        }
        assert_eq!(status, 503, "{b}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(back, "requests are stored again once Kafka is back");
    let stored: HashSet<String> = read_raw(&broker.bootstrap(), topics.name("raw")).into_iter().map(|(_, _, r)| r.event.unwrap().event.uid.to_string()).collect();
    assert!(acknowledged.is_subset(&stored), "every 2xx is stored: missing {:?}", acknowledged.difference(&stored).collect::<Vec<_>>());
    ingest.shutdown().await;
}
