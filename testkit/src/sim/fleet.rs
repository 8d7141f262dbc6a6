//! The fleet: N simulated clusters, each fed by a driver task (`driver`) with scenario
//! and noise Events at a target rate, with live counters and the ground truth of what
//! its API server acknowledged.
//!
//! Two kinds of API server ([`Target`]):
//! - the project's test API server, one started per cluster, written through its store
//!   (no HTTP in between: fast, for high rates and fault injection);
//! - real kube-apiservers given by kubeconfig, written through the Kubernetes API as the
//!   emitters write (`apiwrite`), at whatever rate the server sustains up to the target.
//!
//! What fills the rate depends on `noise`:
//! - With noise, scenarios play in real time: new instances (fresh seed, names,
//!   namespace) start at a steady cadence chosen so that, once running, scenarios
//!   supply `scenario_share` of the rate; each emission is applied when its time
//!   comes; the background noise stream fills the rest of every tick.
//! - Without noise, scenarios play back to back, compressed: the driver keeps
//!   `concurrency` instances interleaved and applies their emissions in timestamp
//!   order as fast as the rate asks, so the events' own timestamps may run ahead of
//!   the wall clock.
//!
//! Ground truth names Events by uid. The test server keeps the simulator's uids; a real
//! server assigns its own, and [`Fleet::truth`] translates to those.

use super::apiwrite::{self, ApiWriter, WriteStats, WriteStatsHandle, WriterOptions};
use super::driver::{Driver, Shared, Target as DriverTarget};
use super::objects::NAMESPACES;
use super::scenarios::ScenarioKind;
use super::truth::GroundTruth;
use crate::apiserver::{kubeconfig_yaml, ApiServer, ServerOptions, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which API servers the simulated clusters run on.
#[derive(Debug, Clone, Default)]
pub enum Target {
    /// One test API server per cluster, started by the fleet (see `FleetOptions::server`).
    #[default]
    TestServers,
    /// Real API servers, one kubeconfig per cluster (its current context); the fleet
    /// creates the scenario namespaces and writes Events through the API.
    Real(Vec<RealCluster>),
}

/// A cluster on a real API server.
#[derive(Debug, Clone)]
pub struct RealCluster {
    pub name: String,
    pub kubeconfig: PathBuf,
}

/// How to run a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Number of clusters (API servers), named `sim-1` … `sim-N` on test servers; with
    /// real servers it must equal the number of kubeconfigs (their names are used).
    pub clusters: usize,
    /// Seed of everything generated (timing still follows the wall clock).
    pub seed: u64,
    /// Target emissions (creates, updates, deletes) per second over all clusters.
    pub rate: f64,
    /// Scenario kinds to repeat; empty means every kind with an incident.
    pub scenarios: Vec<ScenarioKind>,
    /// Fill the rate with background noise (and play scenarios in real time).
    pub noise: bool,
    /// Stop driving after this long; `None` runs until [`Fleet::stop`].
    pub duration: Option<Duration>,
    /// With noise: the share of the rate scenarios aim for once running. Default 0.1.
    pub scenario_share: f64,
    /// With noise: most scenario instances in flight per cluster (bounds memory).
    /// Default 500.
    pub max_active_scenarios: usize,
    /// Without noise: instances interleaved at once per cluster. Default 8.
    pub concurrency: usize,
    /// Worker nodes per cluster. Default 5.
    pub nodes_per_cluster: usize,
    /// Driver wake-up period. Default 20 ms.
    pub tick: Duration,
    /// Where the clusters run. Default: test API servers.
    pub target: Target,
    /// Options of every test API server (bind address, event TTL, compaction window, …).
    pub server: ServerOptions,
    /// Real API servers: requests in flight, queue, retry backoff per cluster.
    pub writer: WriterOptions,
    /// Real API servers: how long queued writes may take to finish once driving stops
    /// (what is left is counted as abandoned). Default 30 s.
    pub drain: Duration,
    /// Keep the last applied version of every Event (see [`Fleet::captured_events`]),
    /// e.g. to write an event list after a run. Costs a copy of each Event; off by default.
    pub capture: bool,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            clusters: 3,
            seed: 1,
            rate: 1000.0,
            scenarios: Vec::new(),
            noise: true,
            duration: None,
            scenario_share: 0.1,
            max_active_scenarios: 500,
            concurrency: 8,
            nodes_per_cluster: 5,
            tick: Duration::from_millis(20),
            target: Target::TestServers,
            server: ServerOptions::default(),
            writer: WriterOptions::default(),
            drain: Duration::from_secs(30),
            capture: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("invalid fleet option {field}: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error("starting the API server of {cluster}: {source}")]
    Server { cluster: String, source: std::io::Error },
    #[error("connecting to the API server of {cluster}: {source}")]
    Connect { cluster: String, source: apiwrite::WriteError },
    #[error("creating the namespaces of {cluster}: {source}")]
    Namespaces { cluster: String, source: kube::Error },
}

impl FleetOptions {
    pub fn validate(&self) -> Result<(), FleetError> {
        let bad = |field, reason: &str| Err(FleetError::InvalidOption { field, reason: reason.to_string() });
        if self.clusters == 0 {
            return bad("clusters", "must be at least 1");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad("rate", "must be a positive number of events per second");
        }
        if !(0.0..=1.0).contains(&self.scenario_share) {
            return bad("scenario_share", "must be between 0 and 1");
        }
        if self.tick.is_zero() {
            return bad("tick", "must be positive");
        }
        if !self.noise && self.scenario_kinds().is_empty() {
            return bad("scenarios", "nothing to play without noise");
        }
        if let Target::Real(list) = &self.target {
            if list.len() != self.clusters {
                return bad("clusters", &format!("{} clusters but {} kubeconfigs", self.clusters, list.len()));
            }
        }
        Ok(())
    }

    pub(super) fn scenario_kinds(&self) -> Vec<ScenarioKind> {
        if self.scenarios.is_empty() {
            ScenarioKind::ALL.into_iter().filter(|k| k.has_incident()).collect()
        } else {
            self.scenarios.clone()
        }
    }
}

/// One simulated cluster: its name and API server.
pub struct ClusterHandle {
    pub name: String,
    backend: Backend,
}

enum Backend {
    Test(ApiServer),
    Real { url: String, kubeconfig: PathBuf, writes: WriteStatsHandle },
}

impl ClusterHandle {
    pub fn url(&self) -> String {
        match &self.backend {
            Backend::Test(s) => s.url(),
            Backend::Real { url, .. } => url.clone(),
        }
    }

    /// The kind of server, as said to users: `test API server` or `kube-apiserver`.
    pub fn server_kind(&self) -> &'static str {
        match &self.backend {
            Backend::Test(_) => "test API server",
            Backend::Real { .. } => "kube-apiserver",
        }
    }

    /// The test API server's store; `None` on a real API server.
    pub fn try_store(&self) -> Option<Store> {
        match &self.backend {
            Backend::Test(s) => Some(s.store()),
            Backend::Real { .. } => None,
        }
    }

    /// The test API server's store.
    ///
    /// # Panics
    /// On a real API server, which has no store to reach into (see [`Self::try_store`]).
    pub fn store(&self) -> Store {
        self.try_store().expect("a real API server has no test store")
    }

    /// A kubeconfig for this cluster: generated for a test server, the given file's
    /// content for a real one.
    pub fn kubeconfig_yaml(&self) -> std::io::Result<String> {
        match &self.backend {
            Backend::Test(s) => Ok(s.kubeconfig_yaml(&self.name)),
            Backend::Real { kubeconfig, .. } => std::fs::read_to_string(kubeconfig),
        }
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        match &self.backend {
            Backend::Test(s) => s.write_kubeconfig(path, &self.name),
            Backend::Real { kubeconfig, .. } if kubeconfig.as_path() == path => Ok(()),
            Backend::Real { kubeconfig, .. } => std::fs::copy(kubeconfig, path).map(|_| ()),
        }
    }

    /// Real API servers: what the writer did (requests, retries, refusals).
    pub fn write_stats(&self) -> Option<WriteStats> {
        match &self.backend {
            Backend::Test(_) => None,
            Backend::Real { writes, .. } => Some(writes.get()),
        }
    }
}

/// Live counters of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStats {
    pub name: String,
    /// Emissions applied (creates, updates and deletes); on a real API server, the
    /// writes it acknowledged.
    pub applied: u64,
    pub scenario_events: u64,
    pub noise_events: u64,
    pub scenarios_started: u64,
    /// Real API servers: the writer's counters.
    pub writes: Option<WriteStats>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FleetStats {
    pub clusters: Vec<ClusterStats>,
    pub applied: u64,
    /// Driving time so far (frozen once every driver stopped; with real API servers it
    /// includes the drain of queued writes).
    pub elapsed: Duration,
    /// `applied / elapsed`.
    pub achieved_rate: f64,
}

/// The ground truth of what was applied to one cluster.
#[derive(Debug, Clone)]
pub struct ClusterTruth {
    pub cluster: String,
    pub truth: GroundTruth,
}

/// A running fleet. Drop stops the servers abruptly; prefer [`Fleet::shutdown`].
pub struct Fleet {
    clusters: Vec<ClusterHandle>,
    shared: Vec<Arc<Shared>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Fleet {
    /// Starts (or connects to) one API server per cluster and a driver task for each.
    pub async fn start(opts: FleetOptions) -> Result<Fleet, FleetError> {
        opts.validate()?;
        let (stop, stop_rx) = watch::channel(false);
        let mut clusters = Vec::new();
        let mut targets = Vec::new();
        let shared: Vec<Arc<Shared>> = (0..opts.clusters).map(|_| Arc::new(Shared::new(opts.capture))).collect();
        match &opts.target {
            Target::TestServers => {
                for i in 1..=opts.clusters {
                    let name = format!("sim-{i}");
                    let server = ApiServer::start(opts.server.clone())
                        .await
                        .map_err(|source| FleetError::Server { cluster: name.clone(), source })?;
                    targets.push(DriverTarget::Store(server.store()));
                    clusters.push(ClusterHandle { name, backend: Backend::Test(server) });
                }
            }
            Target::Real(list) => {
                for (rc, sh) in list.iter().zip(&shared) {
                    let cluster = rc.name.clone();
                    let (client, url) = apiwrite::connect(&rc.kubeconfig)
                        .await
                        .map_err(|source| FleetError::Connect { cluster: cluster.clone(), source })?;
                    let created = apiwrite::ensure_namespaces(&client, NAMESPACES)
                        .await
                        .map_err(|source| FleetError::Namespaces { cluster: cluster.clone(), source })?;
                    let writer = ApiWriter::start(client, &opts.writer, sh.clone());
                    writer.count_namespaces(created);
                    let writes = writer.stats_handle();
                    targets.push(DriverTarget::Api { writer, drain: opts.drain });
                    clusters.push(ClusterHandle { name: cluster, backend: Backend::Real { url, kubeconfig: rc.kubeconfig.clone(), writes } });
                }
            }
        }
        let started = Instant::now();
        let start_wall = SystemTime::now();
        let mut tasks = Vec::new();
        for (i, ((c, target), sh)) in clusters.iter().zip(targets).zip(&shared).enumerate() {
            let driver = Driver::new(&opts, i, &c.name, target, sh.clone(), started, start_wall);
            tasks.push(tokio::spawn(driver.run(opts.tick, opts.duration, stop_rx.clone())));
        }
        Ok(Fleet { clusters, shared, stop, tasks, started })
    }

    pub fn clusters(&self) -> &[ClusterHandle] {
        &self.clusters
    }

    /// One kubeconfig with a context per test API server (the first is current).
    pub fn kubeconfig_yaml(&self) -> String {
        let entries: Vec<(&str, String)> = self.clusters.iter().map(|c| (c.name.as_str(), c.url())).collect();
        kubeconfig_yaml(&entries)
    }

    pub fn stats(&self) -> FleetStats {
        let clusters: Vec<ClusterStats> = self
            .clusters
            .iter()
            .zip(&self.shared)
            .map(|(c, s)| ClusterStats {
                name: c.name.clone(),
                applied: s.applied.load(Ordering::Relaxed),
                scenario_events: s.scenario_events.load(Ordering::Relaxed),
                noise_events: s.noise_events.load(Ordering::Relaxed),
                scenarios_started: s.scenarios_started.load(Ordering::Relaxed),
                writes: c.write_stats(),
            })
            .collect();
        let applied = clusters.iter().map(|c| c.applied).sum();
        let all_stopped = self.shared.iter().all(|s| !s.running.load(Ordering::Acquire));
        let elapsed = if all_stopped {
            Duration::from_nanos(self.shared.iter().map(|s| s.stopped_at.load(Ordering::Acquire)).max().unwrap_or(0))
        } else {
            self.started.elapsed()
        };
        let secs = elapsed.as_secs_f64();
        FleetStats { clusters, applied, elapsed, achieved_rate: if secs > 0.0 { applied as f64 / secs } else { 0.0 } }
    }

    /// The ground truth of everything applied so far, per cluster, in the uids of the
    /// cluster's API server.
    pub fn truth(&self) -> Vec<ClusterTruth> {
        self.clusters
            .iter()
            .zip(&self.shared)
            .map(|(c, s)| {
                let acc = s.truth();
                let mut all = GroundTruth::default();
                for t in &acc.scenarios {
                    all.merge(t.clone());
                }
                let mut truth = all.restrict(&acc.applied);
                if c.try_store().is_none() {
                    truth = truth.rename_uids(&acc.server_uids);
                }
                ClusterTruth { cluster: c.name.clone(), truth }
            })
            .collect()
    }

    /// With `capture`: per cluster, the Events as the fleet left them (last applied
    /// version, deleted ones gone), in order of creation, with the simulator's uids.
    /// Empty lists without capture.
    pub fn captured_events(&self) -> Vec<(String, Vec<k8s_openapi::api::core::v1::Event>)> {
        self.clusters
            .iter()
            .zip(&self.shared)
            .map(|(c, s)| {
                let events = s.capture.as_ref().map_or_else(Vec::new, |m| {
                    let cap = m.lock().unwrap_or_else(|e| e.into_inner());
                    cap.order.iter().filter_map(|k| cap.last.get(k).cloned()).collect()
                });
                (c.name.clone(), events)
            })
            .collect()
    }

    /// Waits until every driver has stopped (its duration ran out, or [`Fleet::stop`])
    /// and, on real API servers, its queued writes are done.
    pub async fn wait(&mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    /// Stops driving; the servers keep serving what they hold.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        self.wait().await;
    }

    /// Stops driving and shuts every test server down; returns the final counters.
    /// Real API servers are left running (they belong to whoever started them).
    pub async fn shutdown(mut self) -> FleetStats {
        self.stop().await;
        let stats = self.stats();
        for c in self.clusters.drain(..) {
            if let Backend::Test(server) = c.backend {
                server.shutdown().await;
            }
        }
        stats
    }
}

/// Occurrences an Event version shows: `series.count`, else `count`, else 1.
pub fn occurrences_of(ev: &k8s_openapi::api::core::v1::Event) -> i64 {
    ev.series
        .as_ref()
        .and_then(|s| s.count)
        .or(ev.count)
        .map(|c| c as i64)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(FleetOptions::default().validate().is_ok());
        let e = FleetOptions { clusters: 0, ..Default::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("clusters"));
        let e = FleetOptions { rate: 0.0, ..Default::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("rate"));
        let e = FleetOptions { noise: false, scenarios: vec![ScenarioKind::Noise], ..Default::default() }.validate();
        assert!(e.is_ok());
    }

    #[test]
    fn occurrences_prefer_series() {
        use k8s_openapi::api::core::v1::{Event, EventSeries};
        let mut ev = Event { count: Some(3), ..Default::default() };
        assert_eq!(occurrences_of(&ev), 3);
        ev.series = Some(EventSeries { count: Some(7), last_observed_time: None });
        assert_eq!(occurrences_of(&ev), 7);
        assert_eq!(occurrences_of(&Event::default()), 1);
    }
}
