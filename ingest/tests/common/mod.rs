//! What the ingest tests share: a started ingest stage with its tokens file, an
//! HTTP client, Event JSON bodies, and reading the raw topic back.
#![allow(dead_code)]

use kevents_ingest::{ClusterEntry, IngestConfig, Running};
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::path::PathBuf;

pub const CI_TOKEN: &str = "ci-token-0123456789abcdef";
pub const OPS_TOKEN: &str = "ops-token-0123456789abcdef";
pub const SLOW_TOKEN: &str = "slow-token-0123456789abcdef";

/// `ci` may write cluster prod, namespace pay; `ops` anything; `slow` prod/pay at
/// 1 event/s with a burst of 5.
pub const TOKENS: &str = "tokens:
- {name: ci, token: ci-token-0123456789abcdef, clusters: [prod], namespaces: [pay]}
- {name: ops, token: ops-token-0123456789abcdef, clusters: ['*'], namespaces: ['*']}
- {name: slow, token: slow-token-0123456789abcdef, clusters: [prod], namespaces: [pay], events_per_sec: 1, burst: 5}
";

pub const PROD_UID: &str = "uid-prod-0000";

/// A started ingest stage; dropping `stop` (or sending on it) stops it.
pub struct Ingest {
    pub running: Option<Running>,
    pub url: String,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Ingest {
    pub async fn start(bootstrap: &str, topic: &str, tweak: impl FnOnce(&mut IngestConfig)) -> Ingest {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.yaml");
        std::fs::write(&tokens, TOKENS).unwrap();
        let mut cfg = IngestConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            instance: Some("test".into()),
            tokens_file: Some(tokens),
            clusters: vec![ClusterEntry { name: "prod".into(), uid: PROD_UID.into() }],
            topic: topic.into(),
            kafka_check_interval_secs: 1,
            ..Default::default()
        };
        cfg.kafka.brokers = bootstrap.into();
        tweak(&mut cfg);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = kevents_ingest::start(cfg, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
        let url = format!("http://{}", running.addr);
        Ingest { running: Some(running), url, stop: Some(tx), _dir: dir }
    }

    /// Stop gracefully; the stage must end without error.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.running.take().unwrap().wait().await.unwrap();
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POST `body` to `path` with `token` (none when empty); status, Retry-After, body.
    pub async fn post(&self, path: &str, token: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Option<String>, String) {
        let mut req = reqwest::Client::new().post(format!("{}{path}", self.url)).header("content-type", content_type).body(body);
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        (status, retry, r.text().await.unwrap())
    }

    pub async fn post_events(&self, query: &str, token: &str, body: &str) -> (u16, Option<String>, serde_json::Value) {
        let (s, r, b) = self.post(&format!("/v1/events{query}"), token, "application/json", body.to_string()).await;
        (s, r, serde_json::from_str(&b).unwrap_or(serde_json::Value::String(b)))
    }
}

/// An events.k8s.io/v1 Event about `kind/name` in `ns`.
pub fn event(ns: &str, kind: &str, name: &str, reason: &str, note: &str, time: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"namespace": ns},
        "eventTime": time, "type": "Normal", "reason": reason, "note": note,
        "reportingController": "deploy-bot",
        "regarding": {"kind": kind, "namespace": ns, "name": name},
    })
}

/// Every record of the raw topic, decoded, with its partition and key.
pub fn read_raw(bootstrap: &str, topic: &str) -> Vec<(i32, String, RawRecord)> {
    let codec = Codec::default();
    testkit::services::read_topic(bootstrap, topic)
        .unwrap()
        .into_iter()
        .map(|m| (m.partition, String::from_utf8(m.key.clone().unwrap_or_default()).unwrap(), codec.decode::<RawRecord>(&m.payload).unwrap()))
        .collect()
}

pub fn pyclients_python() -> PathBuf {
    let cache = std::env::var_os("KEVENTS_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/kevents"));
    let py = cache.join("pyclients-venv/bin/python");
    assert!(py.exists(), "{} is missing: run scripts/install-deps --only pyclients", py.display());
    py
}
