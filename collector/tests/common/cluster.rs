//! One cluster abstraction over both API servers, so the conformance tests run the same
//! code against kube-apiserver ([`testkit::kube_real`]) and the test API server: create
//! and update Events through the API in either shape, force a compaction, the kubeconfig
//! a collector uses. Every write's answer (uid, resourceVersion, count) is what an
//! independent client observed; the tests compare the raw topic against it exactly.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kevents_collector::config::ApiKind;
use kevents_collector::CollectorConfig;
use kube::api::{Api, PostParams};
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;
use testkit::apiserver::{ApiServer, ServerOptions};
use testkit::kube_real::RealApiServer;
use testkit::services::{free_port, read_topic, Services};

/// The test server's bookmark period that means "none", as on kube-apiserver's Event watches.
pub const NO_BOOKMARKS: Duration = Duration::from_secs(24 * 3600);

/// Which API server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// testkit's own API server (fault injection, fast).
    Test,
    /// kube-apiserver v1.37 + etcd, shared by the test binary.
    Real,
}

/// One write as the API server acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Written {
    pub uid: String,
    pub rv: String,
    /// The occurrence count the write carries (series.count or count).
    pub count: i64,
}

pub struct Cluster {
    pub server: Server,
    test: Option<ApiServer>,
    real: Option<&'static RealApiServer>,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub ns: String,
    pub uid: String,
    dir: tempfile::TempDir,
}

fn now() -> Timestamp {
    Timestamp::try_from(std::time::SystemTime::now()).expect("clock after 1970")
}

impl Cluster {
    /// A cluster for one test, with its own namespace named after `name`.
    pub async fn start(server: Server, name: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let (test, real, client) = match server {
            Server::Test => {
                // kube-apiserver sends no BOOKMARKs on Event watches (see conformance.rs):
                // the test server is run the same way here.
                let s = ApiServer::start(ServerOptions { bookmark_interval: NO_BOOKMARKS, ..Default::default() })
                    .await
                    .unwrap();
                s.write_kubeconfig(&kubeconfig, name).unwrap();
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
                let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
                (Some(s), None, kube::Client::try_from(cfg).unwrap())
            }
            Server::Real => {
                let r = RealApiServer::shared_async().await;
                r.write_kubeconfig(&kubeconfig, r.admin_token()).unwrap();
                (None, Some(r), r.client().await)
            }
        };
        let uid = kevents_collector::source::cluster_uid(client.clone()).await.unwrap();
        let mut c = Cluster { server, test, real, client, kubeconfig, ns: String::new(), uid, dir };
        c.ns = c.namespace(name).await;
        c
    }

    pub fn test_server(&self) -> Option<&ApiServer> {
        self.test.as_ref()
    }

    pub fn real(&self) -> Option<&'static RealApiServer> {
        self.real
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A fresh namespace (the test server needs none: names are enough).
    pub async fn namespace(&self, prefix: &str) -> String {
        let prefix: String = prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
        match self.real {
            Some(r) => tokio::task::block_in_place(|| r.namespace(&prefix)).unwrap(),
            None => format!("{prefix}-{}", free_port().unwrap()),
        }
    }

    /// Create an Event named `name` in `ns` through the API, in shape `shape` (new-style
    /// events.k8s.io/v1 with eventTime, or legacy core/v1 with count 1).
    pub async fn create(&self, shape: ApiKind, ns: &str, name: &str, event_type: &str, labels: &[(&str, &str)]) -> Written {
        let meta = ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()),
            ..Default::default()
        };
        let regarding = core::ObjectReference {
            kind: Some("Pod".into()),
            name: Some(name.split('.').next().unwrap().into()),
            namespace: Some(ns.into()),
            api_version: Some("v1".into()),
            ..Default::default()
        };
        match shape {
            ApiKind::EventsV1 => {
                let ev = events::Event {
                    metadata: meta,
                    event_time: Some(MicroTime(now())),
                    reporting_controller: Some("kevents.io/conformance".into()),
                    reporting_instance: Some("conformance-1".into()),
                    action: Some("Testing".into()),
                    reason: Some("BackOff".into()),
                    type_: Some(event_type.into()),
                    note: Some("Back-off restarting failed container app".into()),
                    regarding: Some(regarding),
                    ..Default::default()
                };
                let api: Api<events::Event> = Api::namespaced(self.client.clone(), ns);
                let got = api.create(&PostParams::default(), &ev).await.unwrap();
                written(&got.metadata, 1)
            }
            ApiKind::CoreV1 => {
                let ev = core::Event {
                    metadata: meta,
                    involved_object: regarding,
                    reason: Some("BackOff".into()),
                    message: Some("Back-off restarting failed container app".into()),
                    type_: Some(event_type.into()),
                    count: Some(1),
                    first_timestamp: Some(Time(now())),
                    last_timestamp: Some(Time(now())),
                    source: Some(core::EventSource { component: Some("kubelet".into()), host: Some("node-1".into()) }),
                    ..Default::default()
                };
                let api: Api<core::Event> = Api::namespaced(self.client.clone(), ns);
                let got = api.create(&PostParams::default(), &ev).await.unwrap();
                written(&got.metadata, 1)
            }
        }
    }

    /// A repeat of Event `ns/name`, written in the shape it was created in: series.count
    /// plus one (events.k8s.io/v1; a series starts at 2) or count plus one (core/v1). Read, modify,
    /// PUT with the read resourceVersion (409 on a race, as in client-go).
    pub async fn bump(&self, shape: ApiKind, ns: &str, name: &str) -> Written {
        match shape {
            ApiKind::EventsV1 => {
                let api: Api<events::Event> = Api::namespaced(self.client.clone(), ns);
                let mut ev = api.get(name).await.unwrap();
                let n = ev.series.as_ref().map_or(2, |s| s.count + 1);
                ev.series = Some(events::EventSeries { count: n, last_observed_time: MicroTime(now()) });
                let got = api.replace(name, &PostParams::default(), &ev).await.unwrap();
                written(&got.metadata, n as i64)
            }
            ApiKind::CoreV1 => {
                let api: Api<core::Event> = Api::namespaced(self.client.clone(), ns);
                let mut ev = api.get(name).await.unwrap();
                let n = ev.count.unwrap_or(1) + 1;
                ev.count = Some(n);
                ev.last_timestamp = Some(Time(now()));
                let got = api.replace(name, &PostParams::default(), &ev).await.unwrap();
                written(&got.metadata, n as i64)
            }
        }
    }

    /// Make every resourceVersion up to now history-less: a watch from one gets 410.
    pub async fn compact(&self) {
        match (&self.test, self.real) {
            (Some(t), _) => t.store().compact(),
            (None, Some(r)) => {
                tokio::task::block_in_place(|| r.compact()).unwrap();
            }
            _ => unreachable!("a cluster has one server"),
        }
    }

    /// A collector config for this cluster and `topic`, watching `self.ns`.
    pub fn collector_config(&self, name: &str, topic: &str) -> CollectorConfig {
        let mut cfg = CollectorConfig::for_cluster(name);
        cfg.kubeconfig = Some(self.kubeconfig.clone());
        cfg.kafka.brokers = Services::get().kafka_bootstrap();
        cfg.topic = topic.into();
        cfg.namespaces = vec![self.ns.clone()];
        cfg.heartbeat_interval_secs = 1;
        cfg.stall_timeout_secs = 30;
        cfg.listen = format!("127.0.0.1:{}", free_port().unwrap()).parse().unwrap();
        cfg
    }
}

fn written(meta: &ObjectMeta, count: i64) -> Written {
    Written { uid: meta.uid.clone().unwrap(), rv: meta.resource_version.clone().unwrap(), count }
}

/// What reached the raw topic for one event version.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub copies: u32,
    pub count: i64,
    pub kinds: Vec<String>,
    pub epochs: Vec<i64>,
}

/// Every event record of cluster `uid` in `topic`, by (uid, resourceVersion).
pub fn topic_events(topic: &str, uid: &str) -> HashMap<(String, String), Seen> {
    let codec = Codec::default();
    let mut seen: HashMap<(String, String), Seen> = HashMap::new();
    for m in read_topic(&Services::get().kafka_bootstrap(), topic).expect("reading the raw topic") {
        let rec: RawRecord = codec.decode(&m.payload).unwrap();
        assert_eq!(rec.cluster.uid, uid);
        if let Some(e) = rec.event {
            let s = seen.entry((e.event.uid.to_string(), e.event.resource_version.to_string())).or_default();
            s.copies += 1;
            s.count = e.event.count;
            s.kinds.push(e.kind.as_str().to_string());
            s.epochs.push(rec.collector.leader_epoch);
        }
    }
    seen
}

/// Poll the topic until it holds `want.len()` distinct versions (or 60 s passed), then
/// assert it holds exactly `want`, each once, with the written count.
pub async fn assert_topic_exactly(topic: &str, uid: &str, want: &[Written]) -> HashMap<(String, String), Seen> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let (t, u) = (topic.to_string(), uid.to_string());
        let seen = tokio::task::spawn_blocking(move || topic_events(&t, &u)).await.unwrap();
        if seen.len() >= want.len() || tokio::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let missing: Vec<_> = want.iter().filter(|w| !seen.contains_key(&(w.uid.clone(), w.rv.clone()))).collect();
    assert!(missing.is_empty(), "{} of {} written versions missing, e.g. {:?}", missing.len(), want.len(), &missing[..missing.len().min(3)]);
    let doubled: Vec<_> = seen.iter().filter(|(_, s)| s.copies > 1).collect();
    assert!(doubled.is_empty(), "published more than once: {doubled:?}");
    assert_eq!(seen.len(), want.len(), "published versions nobody wrote");
    for w in want {
        let s = &seen[&(w.uid.clone(), w.rv.clone())];
        assert_eq!(s.count, w.count, "count of {w:?} as published ({:?})", s.kinds);
    }
    seen
}

/// Read a counter or gauge from the collector's `/metrics` (0 when absent).
pub async fn metric(listen: std::net::SocketAddr, name: &str) -> f64 {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let (_, body) = testkit::services::http_request(&format!("http://{listen}"), "GET", "/metrics", "", Duration::from_secs(5)).unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with(&name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    })
    .await
    .unwrap()
}

/// Poll the collector's `/readyz` until it answers 200 (its watches are established).
pub async fn wait_ready(listen: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ok = tokio::task::spawn_blocking(move || {
            testkit::services::http_request(&format!("http://{listen}"), "GET", "/readyz", "", Duration::from_secs(5))
                .is_ok_and(|(code, _)| code == 200)
        })
        .await
        .unwrap();
        if ok {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "collector at {listen} not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
