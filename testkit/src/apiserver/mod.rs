//! A test Kubernetes API server that speaks the real wire format for what kevents uses, so
//! product code talks to it through kube-rs exactly as to a cluster (a kubeconfig pointing
//! at `http://127.0.0.1:PORT`). It stays beside the real kube-apiserver (testkit's
//! `kube_real`) for what a real server cannot do on demand: injected faults (410 Gone,
//! dropped streams, Retry-After, compaction at will) and rates beyond what a real server
//! takes on 2 cores; `kevents simulate` uses it with `--target test`.
//!
//! Layout:
//! - `store`: the simulated etcd — Events, one resourceVersion counter, change history,
//!   broadcast to watchers, TTL expiry, RV reset.
//! - `shapes`: core/v1 ↔ events.k8s.io/v1 conversion and the shared JSON bytes.
//! - `selectors`: field and label selectors.
//! - `snapshot`: lists as of an older resourceVersion (consistent pages).
//! - `list`: Event list/get with paging and resourceVersion semantics.
//! - `watch`: watch streams, bookmarks, 410s, streaming lists.
//! - `write`: Event create (POST) and update (PUT) in both shapes.
//! - `leases`: coordination.k8s.io/v1 Leases with optimistic concurrency.
//! - `discovery`: /version, /api, /apis, namespaces (cluster UID), health.
//! - `faults`: runtime fault injection, its admin endpoint, request counters.
//! - `status`: `Status` error responses.
//!
//! Choices where the real server has several behaviours: Events bypass the watch cache in a
//! real cluster, so watches follow the etcd3 watcher (RV unset/0 → synthetic ADDED; a future
//! RV waits silently; compacted RV → ERROR 410). After [`Store::reset_resource_version`]
//! (an etcd restore) a client's remembered RV is in the future, so its re-watch stays silent
//! until the counter passes it, which is the real hazard of a restore.

mod discovery;
mod faults;
mod leases;
mod list;
mod selectors;
mod shapes;
mod snapshot;
mod status;
mod store;
mod watch;
mod write;

pub use discovery::GIT_VERSION;
pub use faults::{AdminState, FaultRequest, FaultSnapshot, Faults, StatsSnapshot};
pub use selectors::{FieldSelector, LabelSelector, SelectorError};
pub use shapes::{from_events_v1, to_events_v1, Shape};
pub use store::Store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::sync::{oneshot, watch as tokio_watch};
use tokio::task::JoinHandle;

/// How to run one test API server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind; default `127.0.0.1:0` (a free port).
    pub bind: SocketAddr,
    /// UID of the kube-system namespace (the cluster identity); default a random UUID.
    pub cluster_uid: Option<String>,
    /// Event changes kept for resuming watches and continuing lists; older RVs get 410.
    /// Default 50,000 (a few seconds of a storm; etcd compacts every 5 minutes).
    pub compaction_window: usize,
    /// Events are deleted (DELETED sent) this long after their last write; default 1 h, the
    /// apiserver's `--event-ttl` default. None keeps them forever.
    pub event_ttl: Option<Duration>,
    /// Period of BOOKMARK events on watches that allow them; default 60 s like the cacher.
    pub bookmark_interval: Duration,
    /// Undelivered changes a watcher may lag behind before it is closed; default 10,000.
    pub watch_buffer: usize,
    /// Watch duration when the request has no `timeoutSeconds`; default 1800 s, the
    /// apiserver's `--min-request-timeout`.
    pub default_watch_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            cluster_uid: None,
            compaction_window: 50_000,
            event_ttl: Some(Duration::from_secs(3600)),
            bookmark_interval: Duration::from_secs(60),
            watch_buffer: 10_000,
            default_watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Store,
    pub faults: Faults,
    pub stats: Arc<faults::Stats>,
    pub opts: Arc<ServerOptions>,
    pub addr: SocketAddr,
    /// Set on shutdown: open watches abort so the server can stop.
    pub closing: Arc<tokio_watch::Sender<bool>>,
}

/// A running test API server. Dropping it stops it too (abruptly); prefer [`ApiServer::shutdown`].
pub struct ApiServer {
    app: AppState,
    stop: Option<oneshot::Sender<()>>,
    serve: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

/// A random RFC 4122 version-4 UUID (std's randomly seeded hasher as the entropy source).
pub fn random_uuid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut b = [0u8; 16];
    for chunk in b.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl ApiServer {
    /// Binds and starts serving; also starts the TTL sweeper and the periodic-drop fault loop.
    pub async fn start(opts: ServerOptions) -> std::io::Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind(opts.bind).await?;
        let addr = listener.local_addr()?;
        let store = Store::new(
            opts.compaction_window,
            opts.event_ttl,
            opts.watch_buffer,
            opts.cluster_uid.clone().unwrap_or_else(random_uuid),
        );
        let app = AppState {
            store,
            faults: Faults::default(),
            stats: Arc::default(),
            opts: Arc::new(opts),
            addr,
            closing: Arc::new(tokio_watch::channel(false).0),
        };
        let router = router(app.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "test apiserver stopped with an error");
            }
        });
        let mut background = vec![tokio::spawn(faults::periodic_drops(app.faults.clone()))];
        if let Some(ttl) = app.opts.event_ttl {
            let store = app.store.clone();
            let period = (ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
            background.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    store.expire();
                }
            }));
        }
        Ok(ApiServer {
            app,
            stop: Some(stop),
            serve: Some(serve),
            background,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.app.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.app.addr
    }

    pub fn store(&self) -> Store {
        self.app.store.clone()
    }

    pub fn faults(&self) -> Faults {
        self.app.faults.clone()
    }

    /// Request counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.app.stats.snapshot()
    }

    /// UID of the kube-system namespace.
    pub fn cluster_uid(&self) -> String {
        self.app.store.cluster_uid().to_string()
    }

    /// A kubeconfig whose cluster, user and context are all named `cluster_name`.
    pub fn kubeconfig_yaml(&self, cluster_name: &str) -> String {
        kubeconfig_yaml(&[(cluster_name, self.url())])
    }

    pub fn write_kubeconfig(&self, path: &Path, cluster_name: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(cluster_name))
    }

    /// Aborts open watches, stops accepting, and waits (at most 5 s) for the server to end.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(serve) = self.serve.take() {
            let abort = serve.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), serve)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    fn stop_now(&mut self) {
        let _ = self.app.closing.send(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for t in self.background.drain(..) {
            t.abort();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_now();
        if let Some(serve) = self.serve.take() {
            serve.abort();
        }
    }
}

/// A kubeconfig with one cluster/user/context per `(name, server URL)`, the first current.
/// Names and URLs are written as JSON strings, which YAML reads verbatim.
pub fn kubeconfig_yaml(clusters: &[(&str, String)]) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("string serializes");
    let mut out = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for (name, url) in clusters {
        out += &format!("- name: {}\n  cluster:\n    server: {}\n", q(name), q(url));
    }
    out += "users:\n";
    for (name, _) in clusters {
        out += &format!(
            "- name: {}\n  user:\n    token: \"testkit-token\"\n",
            q(name)
        );
    }
    out += "contexts:\n";
    for (name, _) in clusters {
        out += &format!(
            "- name: {0}\n  context:\n    cluster: {0}\n    user: {0}\n    namespace: \"default\"\n",
            q(name)
        );
    }
    if let Some((first, _)) = clusters.first() {
        out += &format!("current-context: {}\n", q(first));
    }
    out += "preferences: {}\n";
    out
}

fn router(app: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/events", get(list::core_all))
        .route("/api/v1/namespaces/{ns}/events", get(list::core_ns).post(write::core_create))
        .route("/api/v1/namespaces/{ns}/events/{name}", get(list::core_get).put(write::core_update))
        .route("/apis/events.k8s.io/v1/events", get(list::v1_all))
        .route(
            "/apis/events.k8s.io/v1/namespaces/{ns}/events",
            get(list::v1_ns).post(write::v1_create),
        )
        .route(
            "/apis/events.k8s.io/v1/namespaces/{ns}/events/{name}",
            get(list::v1_get).put(write::v1_update),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            get(leases::list).post(leases::create),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
            get(leases::get).put(leases::update).delete(leases::delete),
        )
        .route("/api/v1/namespaces/{name}", get(discovery::namespace))
        .route("/version", get(discovery::version))
        .route("/api", get(discovery::api))
        .route("/apis", get(discovery::apis))
        .route("/api/v1", get(discovery::core_v1))
        .route("/apis/events.k8s.io/v1", get(discovery::events_v1))
        .route(
            "/apis/coordination.k8s.io/v1",
            get(discovery::coordination_v1),
        )
        .route("/healthz", get(discovery::healthz))
        .route("/livez", get(discovery::healthz))
        .route("/readyz", get(discovery::healthz))
        .fallback(discovery::fallback)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            faults::middleware,
        ));
    Router::new()
        .route(
            "/_testkit/faults",
            get(faults::admin_get).post(faults::admin_post),
        )
        .merge(api)
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_distinct() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn kubeconfig_lists_every_cluster() {
        let y = kubeconfig_yaml(&[
            ("a", "http://127.0.0.1:1".into()),
            ("b", "http://127.0.0.1:2".into()),
        ]);
        assert!(y.contains("current-context: \"a\""));
        assert_eq!(y.matches("server:").count(), 2);
    }
}
