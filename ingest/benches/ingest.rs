//! Ingest throughput and latency against the real broker: requests/s, events/s and
//! p50/p99 latency of `POST /v1/events`, batches of 1 and of 100 events, with
//! `CLIENTS` concurrent keep-alive clients (each waits for its answer, so every
//! answered request is stored in Kafka: acks=all, idempotent).
//!
//! `cargo bench -p kevents-ingest --bench ingest` (needs `scripts/services up`;
//! `KEVENTS_BENCH_SECS` per case, default 10; `KEVENTS_BENCH_CLIENTS`, default 8).

use kevents_ingest::{ClusterEntry, IngestConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::services::Services;

const TOKEN: &str = "bench-token-0123456789abcdef";

fn body(batch: usize, client: usize, seq: u64) -> String {
    let items: Vec<_> = (0..batch)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"namespace": "pay"},
                "eventTime": format!("2025-01-02T03:04:05.{:06}Z", (seq as usize * batch + i) % 1_000_000),
                "type": "Normal", "reason": "DeployStep",
                "note": format!("client {client} request {seq} step {i}: rolled out payment-gateway to 25% of the fleet"),
                "reportingController": "deploy-bot",
                "regarding": {"kind": "Deployment", "namespace": "pay", "name": format!("payment-gateway-{}", client)},
            })
        })
        .collect();
    serde_json::json!({"kind": "EventList", "items": items}).to_string()
}

fn main() {
    let secs: u64 = std::env::var("KEVENTS_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let clients: usize = std::env::var("KEVENTS_BENCH_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let s = Services::get();
        let topics = s.create_topics("ingest-bench", &[("raw", 3)]).await;
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.yaml");
        std::fs::write(&tokens, format!("tokens:\n- {{name: bench, token: {TOKEN}, clusters: ['*'], namespaces: ['*'], events_per_sec: 1000000000, burst: 100000}}\n")).unwrap();
        let mut cfg = IngestConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tokens_file: Some(tokens),
            clusters: vec![ClusterEntry { name: "prod".into(), uid: "uid-bench".into() }],
            topic: topics.name("raw").into(),
            ..Default::default()
        };
        cfg.kafka.brokers = topics.bootstrap().into();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = kevents_ingest::start(cfg, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
        let url = format!("http://{}/v1/events?cluster=prod", running.addr);
        println!("{:>6} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9}", "batch", "clients", "req/s", "events/s", "p50 ms", "p99 ms", "errors");
        for batch in [1usize, 100] {
            let stop_at = Instant::now() + Duration::from_secs(secs);
            let errors = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for c in 0..clients {
                let (url, errors) = (url.clone(), errors.clone());
                tasks.push(tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut lat = Vec::new();
                    let mut seq = batch as u64 * 1_000_000; // distinct events per case
                    while Instant::now() < stop_at {
                        let b = body(batch, c, seq);
                        seq += 1;
                        let t = Instant::now();
                        let r = client.post(&url).bearer_auth(TOKEN).header("content-type", "application/json").body(b).send().await;
                        match r {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                lat.push(t.elapsed());
                            }
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    lat
                }));
            }
            let started = Instant::now();
            let mut lat: Vec<Duration> = Vec::new();
            for t in tasks {
                lat.extend(t.await.unwrap());
            }
            let took = started.elapsed().as_secs_f64();
            lat.sort();
            let q = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN);
            let n = lat.len() as f64;
            println!("{:>6} {:>8} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>9}", batch, clients, n / took, n * batch as f64 / took, q(0.5), q(0.99), errors.load(Ordering::Relaxed));
        }
        let _ = tx.send(());
        running.wait().await.unwrap();
    });
}
