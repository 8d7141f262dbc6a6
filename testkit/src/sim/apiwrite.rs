//! Writing simulated Events through a real Kubernetes API server, as the emitters do.
//!
//! The two client-go recorders write differently, and so does this module:
//! - `tools/record` (legacy emitters; the Event has no `eventTime`): POST a core/v1
//!   Event; a repeat (`count > 1`) is a strategic-merge PATCH of `count`,
//!   `lastTimestamp` and `message` (events_cache.go `eventObserve`), falling back to a
//!   create when the object is gone (event.go `recordEvent`).
//! - `tools/events` (kube-scheduler; the Event has an `eventTime`): POST an
//!   events.k8s.io/v1 Event; an update of its series is a strategic-merge PATCH of
//!   `series` (event_broadcaster.go `createPatchBytesForSeries`), falling back to a
//!   create on NotFound.
//!
//! The API server assigns every object its own uid, so each acknowledged write is
//! reported with the server's uid ([`Acknowledge`]): the fleet maps its ground truth
//! onto the uids a watcher of the server sees.
//!
//! Concurrency: `lanes` tasks share one keep-alive client (one connection each at most);
//! an Event is always written by the lane its (namespace, name) hashes to, so the writes
//! of one object stay in order. Each lane has a bounded queue: a server slower than the
//! target rate pushes back on the driver instead of growing memory.
//!
//! Failures: 429, 5xx and transport errors are retried with backoff (50 ms → 5 s, ×2,
//! jitter) and counted; a create that finds its namespace missing creates the namespace
//! and retries; anything else the server refuses is counted as `rejected` and logged.
//! Writes still queued when [`ApiWriter::close`] runs out of time are counted as
//! `abandoned`. Nothing is dropped without a counter.

use super::timeline::Emission;
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::events::v1 as events;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use rand::Rng;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How a cluster's writer runs.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Requests in flight at most (one lane each). Default 16: the real API server's
    /// create rate on 2 cores is flat from 8 to 32 (docs/real-apiserver.md).
    pub lanes: usize,
    /// Writes queued per lane before the driver waits. Default 128.
    pub queue: usize,
    /// First retry delay. Default 50 ms.
    pub backoff_min: Duration,
    /// Longest retry delay. Default 5 s.
    pub backoff_max: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { lanes: 16, queue: 128, backoff_min: Duration::from_millis(50), backoff_max: Duration::from_secs(5) }
    }
}

/// One emission to write, and whether it belongs to a scenario (it then counts in the
/// ground truth).
#[derive(Debug, Clone)]
pub struct Job {
    pub emission: Emission,
    pub scenario: bool,
}

/// Told about every write the API server acknowledged, in order per object.
pub trait Acknowledge: Send + Sync + 'static {
    /// `server_uid` is the uid of the object written (`None` for a delete).
    fn written(&self, job: &Job, server_uid: Option<&str>);
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig { path: String, source: kube::config::KubeconfigError },
    #[error("connecting to the API server: {0}")]
    Client(#[from] kube::Error),
}

/// What a writer did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// POSTs acknowledged (including fallback creates).
    pub creates: u64,
    /// PATCHes acknowledged (repeats: `count` or `series`).
    pub patches: u64,
    pub deletes: u64,
    /// PATCHes that found no object and became creates, as client-go does.
    pub fallback_creates: u64,
    pub namespaces_created: u64,
    /// Retries after 429 Too Many Requests.
    pub retried_throttled: u64,
    /// Retries after a 5xx.
    pub retried_server_error: u64,
    /// Retries after a connection or protocol error.
    pub retried_transport: u64,
    /// Writes the server refused for good (logged; 0 in a correct simulation).
    pub rejected: u64,
    /// Writes given up when the writer was closed before they succeeded.
    pub abandoned: u64,
}

impl WriteStats {
    pub fn acknowledged(&self) -> u64 {
        self.creates + self.patches + self.deletes
    }
    pub fn retries(&self) -> u64 {
        self.retried_throttled + self.retried_server_error + self.retried_transport
    }
}

#[derive(Default)]
struct Counters {
    creates: AtomicU64,
    patches: AtomicU64,
    deletes: AtomicU64,
    fallback_creates: AtomicU64,
    namespaces_created: AtomicU64,
    retried_throttled: AtomicU64,
    retried_server_error: AtomicU64,
    retried_transport: AtomicU64,
    rejected: AtomicU64,
    abandoned: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A kube client for the cluster in `path` (its current context).
pub async fn connect(path: &Path) -> Result<(Client, String), WriteError> {
    let kc = Kubeconfig::read_from(path).map_err(|source| WriteError::Kubeconfig { path: path.display().to_string(), source })?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|source| WriteError::Kubeconfig { path: path.display().to_string(), source })?;
    let url = config.cluster_url.to_string();
    Ok((Client::try_from(config)?, url.trim_end_matches('/').to_string()))
}

/// Creates each namespace unless it exists.
pub async fn ensure_namespaces(client: &Client, names: &[&str]) -> Result<u64, kube::Error> {
    let mut created = 0;
    for ns in names {
        if create_namespace(client, ns).await? {
            created += 1;
        }
    }
    Ok(created)
}

async fn create_namespace(client: &Client, name: &str) -> Result<bool, kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_string());
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(true),
        Err(e) if status_code(&e) == Some(409) => Ok(false),
        Err(e) => Err(e),
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// A cluster's writer: `lanes` tasks, each with its queue.
pub struct ApiWriter {
    lanes: Vec<mpsc::Sender<Job>>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    abandon: watch::Sender<bool>,
}

impl ApiWriter {
    pub fn start(client: Client, opts: &WriterOptions, ack: Arc<dyn Acknowledge>) -> ApiWriter {
        let counters = Arc::new(Counters::default());
        let (abandon, abandon_rx) = watch::channel(false);
        let mut lanes = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..opts.lanes.max(1) {
            let (tx, rx) = mpsc::channel(opts.queue.max(1));
            let lane = Lane { client: client.clone(), counters: counters.clone(), ack: ack.clone(), abandon: abandon_rx.clone(), opts: opts.clone() };
            tasks.push(tokio::spawn(lane.run(rx)));
            lanes.push(tx);
        }
        ApiWriter { lanes, tasks, counters, abandon }
    }

    /// Queues a write on the lane of its object; waits while that lane is full.
    pub async fn submit(&self, job: Job) {
        let lane = match &job.emission {
            Emission::Apply(ev) => lane_of(ev.metadata.namespace.as_deref().unwrap_or(""), ev.metadata.name.as_deref().unwrap_or(""), self.lanes.len()),
            Emission::Delete { namespace, name } => lane_of(namespace, name, self.lanes.len()),
        };
        if self.lanes[lane].send(job).await.is_err() {
            // The lane task ended (it panicked): say so in the counters.
            bump(&self.counters.abandoned);
        }
    }

    /// Counts namespaces created before the writer started (see [`ensure_namespaces`]).
    pub fn count_namespaces(&self, n: u64) {
        self.counters.namespaces_created.fetch_add(n, Ordering::Relaxed);
    }

    /// A handle on the counters that outlives the writer.
    pub fn stats_handle(&self) -> WriteStatsHandle {
        WriteStatsHandle(self.counters.clone())
    }

    /// Lets the lanes finish what is queued, for at most `drain`; what is still
    /// unwritten then is abandoned (and counted).
    pub async fn close(mut self, drain: Duration) {
        self.lanes.clear();
        let mut tasks = std::mem::take(&mut self.tasks);
        let all = futures::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(drain, all).await.is_err() {
            let _ = self.abandon.send(true);
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

/// Reads a writer's counters.
#[derive(Clone)]
pub struct WriteStatsHandle(Arc<Counters>);

impl WriteStatsHandle {
    pub fn get(&self) -> WriteStats {
        let c = &self.0;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WriteStats {
            creates: l(&c.creates),
            patches: l(&c.patches),
            deletes: l(&c.deletes),
            fallback_creates: l(&c.fallback_creates),
            namespaces_created: l(&c.namespaces_created),
            retried_throttled: l(&c.retried_throttled),
            retried_server_error: l(&c.retried_server_error),
            retried_transport: l(&c.retried_transport),
            rejected: l(&c.rejected),
            abandoned: l(&c.abandoned),
        }
    }
}

fn lane_of(namespace: &str, name: &str, lanes: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (namespace, name).hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

/// Why one attempt failed, by what to do next.
enum Failure {
    Retry(&'static str),
    MissingNamespace(String),
    Reject(kube::Error),
}

struct Lane {
    client: Client,
    counters: Arc<Counters>,
    ack: Arc<dyn Acknowledge>,
    abandon: watch::Receiver<bool>,
    opts: WriterOptions,
}

impl Lane {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            if *self.abandon.borrow() {
                bump(&self.counters.abandoned);
                continue;
            }
            if let Some(uid) = self.write(&job).await {
                self.ack.written(&job, uid.as_deref());
            }
        }
    }

    /// Writes until acknowledged (`Some`), refused or abandoned (`None`, counted).
    async fn write(&mut self, job: &Job) -> Option<Option<String>> {
        let mut delay = self.opts.backoff_min;
        loop {
            let failure = match self.attempt(&job.emission).await {
                Ok(uid) => return Some(uid),
                Err(f) => f,
            };
            match failure {
                Failure::MissingNamespace(ns) => match create_namespace(&self.client, &ns).await {
                    Ok(created) => {
                        if created {
                            bump(&self.counters.namespaces_created);
                        }
                        continue;
                    }
                    Err(e) => {
                        let Failure::Retry(kind) = classify(e) else {
                            bump(&self.counters.rejected);
                            tracing::warn!(namespace = %ns, "the API server refused to create the namespace");
                            return None;
                        };
                        self.count_retry(kind);
                    }
                },
                Failure::Retry(kind) => self.count_retry(kind),
                Failure::Reject(e) => {
                    bump(&self.counters.rejected);
                    tracing::warn!(error = %e, emission = ?describe(&job.emission), "the API server refused a simulated write");
                    return None;
                }
            }
            let jittered = delay.mul_f64(rand::rng().random_range(0.5..1.5));
            tokio::select! {
                _ = tokio::time::sleep(jittered) => {}
                _ = self.abandon.wait_for(|a| *a) => {}
            }
            if *self.abandon.borrow() {
                bump(&self.counters.abandoned);
                return None;
            }
            delay = (delay * 2).min(self.opts.backoff_max);
        }
    }

    fn count_retry(&self, kind: &'static str) {
        let c = &self.counters;
        bump(match kind {
            "throttled" => &c.retried_throttled,
            "server" => &c.retried_server_error,
            _ => &c.retried_transport,
        });
    }

    async fn attempt(&self, emission: &Emission) -> Result<Option<String>, Failure> {
        let c = &self.counters;
        match emission {
            Emission::Apply(ev) => {
                let ns = ev.metadata.namespace.as_deref().unwrap_or("default");
                let name = ev.metadata.name.as_deref().unwrap_or_default();
                let new_shape = ev.event_time.is_some();
                let repeat = if new_shape { ev.series.is_some() } else { ev.count.unwrap_or(1) > 1 };
                if repeat {
                    match self.patch(ns, name, ev, new_shape).await {
                        Ok(uid) => {
                            bump(&c.patches);
                            return Ok(uid);
                        }
                        Err(e) if status_code(&e) == Some(404) => bump(&c.fallback_creates),
                        Err(e) => return Err(classify(e)),
                    }
                }
                let uid = self.create(ns, ev, new_shape).await.map_err(|e| match status_code(&e) {
                    Some(404) => Failure::MissingNamespace(ns.to_string()),
                    _ => classify(e),
                })?;
                bump(&c.creates);
                Ok(uid)
            }
            Emission::Delete { namespace, name } => {
                let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if status_code(&e) == Some(404) => {}
                    Err(e) => return Err(classify(e)),
                }
                bump(&c.deletes);
                Ok(None)
            }
        }
    }

    async fn create(&self, ns: &str, ev: &Event, new_shape: bool) -> Result<Option<String>, kube::Error> {
        let pp = PostParams::default();
        let out = if new_shape {
            let api: Api<events::Event> = Api::namespaced(self.client.clone(), ns);
            api.create(&pp, &events_v1_body(ev)).await?.metadata
        } else {
            let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
            let mut body = ev.clone();
            server_owned_cleared(&mut body.metadata);
            api.create(&pp, &body).await?.metadata
        };
        Ok(out.uid)
    }

    async fn patch(&self, ns: &str, name: &str, ev: &Event, new_shape: bool) -> Result<Option<String>, kube::Error> {
        let pp = PatchParams::default();
        let out = if new_shape {
            let series = ev.series.clone().unwrap_or_default();
            let body = serde_json::json!({"series": {"count": series.count, "lastObservedTime": series.last_observed_time}});
            let api: Api<events::Event> = Api::namespaced(self.client.clone(), ns);
            api.patch(name, &pp, &Patch::Strategic(body)).await?.metadata
        } else {
            let body = serde_json::json!({"count": ev.count, "lastTimestamp": ev.last_timestamp, "message": ev.message});
            let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
            api.patch(name, &pp, &Patch::Strategic(body)).await?.metadata
        };
        Ok(out.uid)
    }
}

/// 429, 5xx and transport errors are worth retrying; a create conflict (the name exists)
/// is refused for good, as client-go does ("will not retry").
fn classify(e: kube::Error) -> Failure {
    match &e {
        kube::Error::Api(s) if s.code == 429 => Failure::Retry("throttled"),
        kube::Error::Api(s) if s.code >= 500 => Failure::Retry("server"),
        kube::Error::Api(_) => Failure::Reject(e),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => Failure::Retry("transport"),
        _ => Failure::Reject(e),
    }
}

/// uid, resourceVersion and creationTimestamp are the server's to set.
fn server_owned_cleared(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
}

/// The events.k8s.io/v1 object the new recorder POSTs: no deprecated fields (the
/// server's strict create validation requires them unset).
fn events_v1_body(ev: &Event) -> events::Event {
    let mut out = crate::apiserver::to_events_v1(ev);
    server_owned_cleared(&mut out.metadata);
    out.deprecated_count = None;
    out.deprecated_first_timestamp = None;
    out.deprecated_last_timestamp = None;
    out.deprecated_source = None;
    out
}

fn describe(e: &Emission) -> String {
    match e {
        Emission::Apply(ev) => format!(
            "apply {}/{} reason {} count {:?} series {:?}",
            ev.metadata.namespace.as_deref().unwrap_or(""),
            ev.metadata.name.as_deref().unwrap_or(""),
            ev.reason.as_deref().unwrap_or(""),
            ev.count,
            ev.series.as_ref().and_then(|s| s.count)
        ),
        Emission::Delete { namespace, name } => format!("delete {namespace}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EventSeries;

    #[test]
    fn one_object_always_goes_to_one_lane() {
        let a = lane_of("shop", "cart.17a", 16);
        for _ in 0..10 {
            assert_eq!(lane_of("shop", "cart.17a", 16), a);
        }
        let spread: std::collections::BTreeSet<usize> = (0..200).map(|i| lane_of("shop", &format!("p{i}"), 16)).collect();
        assert!(spread.len() > 12, "{spread:?}");
    }

    #[test]
    fn new_shape_body_has_no_deprecated_fields() {
        let ev = Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p.1".into()),
                namespace: Some("shop".into()),
                uid: Some("sim-uid".into()),
                ..Default::default()
            },
            source: Some(Default::default()),
            series: Some(EventSeries { count: Some(2), last_observed_time: None }),
            reporting_component: Some("default-scheduler".into()),
            ..Default::default()
        };
        let body = events_v1_body(&ev);
        assert_eq!(body.metadata.uid, None);
        assert!(body.deprecated_source.is_none() && body.deprecated_count.is_none());
        assert_eq!(body.reporting_controller.as_deref(), Some("default-scheduler"));
        assert_eq!(body.series.map(|s| s.count), Some(2));
    }

    #[test]
    fn retry_policy() {
        let api = |code| kube::Error::Api(Box::new(kube::core::Status { code, ..Default::default() }));
        assert!(matches!(classify(api(429)), Failure::Retry("throttled")));
        assert!(matches!(classify(api(503)), Failure::Retry("server")));
        assert!(matches!(classify(api(409)), Failure::Reject(_)));
        assert!(matches!(classify(api(422)), Failure::Reject(_)));
    }
}
