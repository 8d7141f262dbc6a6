//! The ops endpoint every stage serves: `/healthz`, `/readyz`, `/metrics`.
//!
//! Health tells the truth: a stage registers *progress probes* (the collector's
//! watch, a consumer's poll loop) and touches them whenever it makes progress;
//! `/healthz` fails when any probe has been silent longer than its limit — the
//! "stops posting, no errors, a restart fixes it" stall that event exporters' users
//! report then gets the pod restarted. `/readyz` reports the readiness conditions the stage
//! sets (e.g. "watch established", "partitions assigned").

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Router};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Probe {
    last: Instant,
    limit: Duration,
}

#[derive(Debug, Default)]
struct HealthState {
    probes: BTreeMap<String, Probe>,
    ready: BTreeMap<String, (bool, String)>,
}

/// Shared health and readiness state. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<HealthState>>,
}

impl Health {
    /// Register a progress probe that must be touched at least every `limit`.
    pub fn probe(&self, name: &str, limit: Duration) {
        self.inner.lock().unwrap().probes.insert(
            name.to_string(),
            Probe {
                last: Instant::now(),
                limit,
            },
        );
    }

    /// Record progress on a probe.
    pub fn touch(&self, name: &str) {
        if let Some(p) = self.inner.lock().unwrap().probes.get_mut(name) {
            p.last = Instant::now();
        }
    }

    /// Set a readiness condition with a human-readable detail.
    pub fn set_ready(&self, name: &str, ready: bool, detail: impl Into<String>) {
        self.inner
            .lock()
            .unwrap()
            .ready
            .insert(name.to_string(), (ready, detail.into()));
    }

    /// `Ok(report)` when every probe made progress within its limit.
    pub fn liveness(&self) -> Result<String, String> {
        let s = self.inner.lock().unwrap();
        let mut lines = Vec::new();
        let mut ok = true;
        for (name, p) in &s.probes {
            let age = p.last.elapsed();
            let fine = age <= p.limit;
            ok &= fine;
            lines.push(format!(
                "{name}: {} (last progress {:.1}s ago, limit {:.0}s)",
                if fine { "ok" } else { "STALLED" },
                age.as_secs_f64(),
                p.limit.as_secs_f64()
            ));
        }
        let text = if lines.is_empty() { "ok".to_string() } else { lines.join("\n") };
        if ok {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// `Ok(report)` when every readiness condition holds (and there is at least one)
    /// and no progress probe is stale: a stalled stage takes no traffic either.
    pub fn readiness(&self) -> Result<String, String> {
        let s = self.inner.lock().unwrap();
        let stalled: Vec<String> =
            s.probes.iter().filter(|(_, p)| p.last.elapsed() > p.limit).map(|(n, _)| format!("{n}: STALLED")).collect();
        let ok = !s.ready.is_empty() && s.ready.values().all(|(r, _)| *r) && stalled.is_empty();
        let text = if s.ready.is_empty() {
            "starting".to_string()
        } else {
            s.ready
                .iter()
                .map(|(n, (r, d))| format!("{n}: {} {d}", if *r { "ready" } else { "NOT READY" }))
                .chain(stalled)
                .collect::<Vec<_>>()
                .join("\n")
        };
        if ok {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

#[derive(Clone)]
struct OpsState {
    health: Health,
    registry: Arc<Registry>,
}

fn answer(r: Result<String, String>) -> impl IntoResponse {
    match r {
        Ok(t) => (StatusCode::OK, t + "\n"),
        Err(t) => (StatusCode::SERVICE_UNAVAILABLE, t + "\n"),
    }
}

/// The ops router (exposed for tests and for stages that add routes).
pub fn router(health: Health, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|State(s): State<OpsState>| async move { answer(s.health.liveness()) }))
        .route("/readyz", get(|State(s): State<OpsState>| async move { answer(s.health.readiness()) }))
        .route(
            "/metrics",
            get(|State(s): State<OpsState>| async move {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
                    Ok(()) => (
                        StatusCode::OK,
                        [("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                        body,
                    ),
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [("content-type", "text/plain")],
                        e.to_string(),
                    ),
                }
            }),
        )
        .with_state(OpsState { health, registry })
}

/// Bind the ops endpoint. Returns the bound address (useful with port 0) and a
/// future that serves until `shutdown` resolves.
pub async fn bind(
    addr: SocketAddr,
    health: Health,
    registry: Arc<Registry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(health, registry);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "ops endpoint failed");
        }
    });
    Ok((local, handle))
}

/// A stage's ops endpoint together with its stop signal: when `shutdown` resolves
/// the token is cancelled and the endpoint stops; dropping the value stops it too.
/// (How stages stop: [`crate::shutdown`].)
pub struct OpsServer {
    pub addr: SocketAddr,
    /// Cancelled once `shutdown` resolved: the stage drains and returns.
    pub stop: crate::shutdown::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bind the ops endpoint on `listen` and tie it and the stop signal to `shutdown`.
pub async fn serve(
    listen: SocketAddr,
    health: Health,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<OpsServer> {
    let stop = crate::shutdown::CancellationToken::new();
    let ops_stop = stop.clone();
    let (addr, task) = bind(listen, health, Arc::new(registry), async move { ops_stop.cancelled().await })
        .await?;
    tracing::info!(%addr, "ops endpoint listening (/healthz, /readyz, /metrics)");
    let cancel = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        cancel.cancel();
    });
    Ok(OpsServer { addr, stop, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_probe_fails_liveness_and_readiness_needs_all() {
        let h = Health::default();
        assert!(h.liveness().is_ok());
        assert!(h.readiness().is_err(), "nothing ready yet");
        h.probe("watch", Duration::from_millis(0));
        std::thread::sleep(Duration::from_millis(5));
        assert!(h.liveness().unwrap_err().contains("watch: STALLED"));
        h.probe("watch", Duration::from_secs(60));
        h.touch("watch");
        assert!(h.liveness().is_ok());
        h.set_ready("kafka", true, "connected");
        h.set_ready("watch", false, "relisting");
        assert!(h.readiness().unwrap_err().contains("watch: NOT READY relisting"));
        h.set_ready("watch", true, "");
        assert!(h.readiness().is_ok());
        h.probe("watch", Duration::from_millis(0));
        std::thread::sleep(Duration::from_millis(5));
        assert!(h.readiness().unwrap_err().contains("watch: STALLED"), "a stalled stage is not ready either");
    }
}
