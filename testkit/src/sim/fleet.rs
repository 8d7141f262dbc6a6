//! The fleet driver: one test API server per cluster, fed with scenario and noise
//! Events at a target rate, with live counters and the ground truth of what it applied.
//!
//! Pacing: each cluster has a driver task that wakes every `tick` and applies as many
//! emissions as the target rate allows for the time elapsed (`rate / clusters` per
//! second, at most a quarter second of backlog at once).
//!
//! What fills the budget depends on `noise`:
//! - With noise, scenarios play in real time: new instances (fresh seed, names,
//!   namespace) start at a steady cadence chosen so that, once running, scenarios
//!   supply `scenario_share` of the rate; each emission is applied when its time
//!   comes; the background noise stream fills the rest of every tick.
//! - Without noise, scenarios play back to back, compressed: the driver keeps
//!   `concurrency` instances interleaved and applies their emissions in timestamp
//!   order as fast as the rate asks, so the events' own timestamps may run ahead of
//!   the wall clock.

use super::objects::{ClusterCtx, NAMESPACES};
use super::scenarios::noise::NoiseStream;
use super::scenarios::{generate, ScenarioKind, ScenarioParams};
use super::timeline::{nanos_of, Agenda, Emission, Nanos};
use super::truth::GroundTruth;
use crate::apiserver::{kubeconfig_yaml, ApiServer, ServerOptions, Store};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to run a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Number of clusters (API servers), named `sim-1` … `sim-N`.
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
    /// Options of every API server (bind address, event TTL, compaction window, …).
    pub server: ServerOptions,
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
            server: ServerOptions::default(),
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
        Ok(())
    }

    fn scenario_kinds(&self) -> Vec<ScenarioKind> {
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
    pub server: ApiServer,
}

impl ClusterHandle {
    pub fn url(&self) -> String {
        self.server.url()
    }
    pub fn store(&self) -> Store {
        self.server.store()
    }
    pub fn kubeconfig_yaml(&self) -> String {
        self.server.kubeconfig_yaml(&self.name)
    }
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        self.server.write_kubeconfig(path, &self.name)
    }
}

/// Live counters of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStats {
    pub name: String,
    /// Emissions applied (creates, updates and deletes).
    pub applied: u64,
    pub scenario_events: u64,
    pub noise_events: u64,
    pub scenarios_started: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FleetStats {
    pub clusters: Vec<ClusterStats>,
    pub applied: u64,
    /// Driving time so far (frozen once every driver stopped).
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

#[derive(Default)]
struct Shared {
    applied: AtomicU64,
    scenario_events: AtomicU64,
    noise_events: AtomicU64,
    scenarios_started: AtomicU64,
    /// Nanoseconds from fleet start when this driver stopped; 0 while running.
    stopped_at: AtomicU64,
    running: AtomicBool,
    truth: Mutex<TruthAcc>,
    capture: Option<Mutex<Capture>>,
}

/// The last applied version of each Event, in order of creation.
#[derive(Default)]
struct Capture {
    order: Vec<(String, String)>,
    last: std::collections::HashMap<(String, String), k8s_openapi::api::core::v1::Event>,
}

#[derive(Default)]
struct TruthAcc {
    scenarios: Vec<GroundTruth>,
    /// uid → occurrences of the last applied version.
    applied: BTreeMap<String, i64>,
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
    /// Starts one API server per cluster and a driver task for each.
    pub async fn start(opts: FleetOptions) -> Result<Fleet, FleetError> {
        opts.validate()?;
        let (stop, stop_rx) = watch::channel(false);
        let mut clusters = Vec::new();
        for i in 1..=opts.clusters {
            let name = format!("sim-{i}");
            let server = ApiServer::start(opts.server.clone())
                .await
                .map_err(|source| FleetError::Server { cluster: name.clone(), source })?;
            clusters.push(ClusterHandle { name, server });
        }
        let started = Instant::now();
        let start_wall = SystemTime::now();
        let mut shared = Vec::new();
        let mut tasks = Vec::new();
        for (i, c) in clusters.iter().enumerate() {
            let capture = opts.capture.then(|| Mutex::new(Capture::default()));
            let sh = Arc::new(Shared { running: AtomicBool::new(true), capture, ..Default::default() });
            let driver = Driver::new(&opts, i, &c.name, c.store(), sh.clone(), started, start_wall);
            tasks.push(tokio::spawn(driver.run(opts.tick, opts.duration, stop_rx.clone())));
            shared.push(sh);
        }
        Ok(Fleet { clusters, shared, stop, tasks, started })
    }

    pub fn clusters(&self) -> &[ClusterHandle] {
        &self.clusters
    }

    /// One kubeconfig with a context per cluster (the first is current).
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

    /// The ground truth of everything applied so far, per cluster.
    pub fn truth(&self) -> Vec<ClusterTruth> {
        self.clusters
            .iter()
            .zip(&self.shared)
            .map(|(c, s)| {
                let acc = s.truth.lock().unwrap_or_else(|e| e.into_inner());
                let mut all = GroundTruth::default();
                for t in &acc.scenarios {
                    all.merge(t.clone());
                }
                ClusterTruth { cluster: c.name.clone(), truth: all.restrict(&acc.applied) }
            })
            .collect()
    }

    /// With `capture`: per cluster, the Events as the fleet left them (last applied
    /// version, deleted ones gone), in order of creation. Empty lists without capture.
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

    /// Waits until every driver has stopped (its duration ran out, or [`Fleet::stop`]).
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

    /// Stops driving and shuts every server down; returns the final counters.
    pub async fn shutdown(mut self) -> FleetStats {
        self.stop().await;
        let stats = self.stats();
        for c in self.clusters.drain(..) {
            c.server.shutdown().await;
        }
        stats
    }
}


struct Driver {
    store: Store,
    shared: Arc<Shared>,
    cluster: ClusterCtx,
    kinds: Vec<ScenarioKind>,
    seed: u64,
    noise: Option<NoiseStream>,
    rate: f64,
    max_active: usize,
    concurrency: usize,
    /// Scenario instances to start per second (noise mode).
    start_rate: f64,
    pending: Agenda<Emission>,
    /// End times of instances in flight.
    active: BinaryHeap<Reverse<Nanos>>,
    instances: u64,
    started: Instant,
    origin: Nanos,
}

impl Driver {
    fn new(opts: &FleetOptions, index: usize, name: &str, store: Store, shared: Arc<Shared>, started: Instant, start_wall: SystemTime) -> Self {
        let cluster = ClusterCtx::new(name, opts.nodes_per_cluster);
        let kinds = opts.scenario_kinds();
        let seed = opts.seed ^ ((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let origin = nanos_of(start_wall);
        let rate = opts.rate / opts.clusters as f64;
        // Calibrate: average emissions per instance of the chosen kinds.
        let per_instance = if kinds.is_empty() {
            1.0
        } else {
            let total: usize = kinds
                .iter()
                .map(|k| generate(*k, &ScenarioParams::new(seed, UNIX_EPOCH + Duration::from_secs(1_700_000_000))).emissions.len())
                .sum();
            (total as f64 / kinds.len() as f64).max(1.0)
        };
        let share = if kinds.is_empty() { 0.0 } else { opts.scenario_share };
        Driver {
            store,
            shared,
            noise: opts.noise.then(|| NoiseStream::new(seed ^ 0x5EED, cluster.clone(), origin)),
            cluster,
            kinds,
            seed,
            rate,
            max_active: opts.max_active_scenarios.max(1),
            concurrency: opts.concurrency.max(1),
            start_rate: share * rate / per_instance,
            pending: Agenda::default(),
            active: BinaryHeap::new(),
            instances: 0,
            started,
            origin,
        }
    }

    async fn run(mut self, tick: Duration, duration: Option<Duration>, mut stop: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut applied: u64 = 0;
        let mut started_instances: f64 = 0.0;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            let mut elapsed = self.started.elapsed();
            let last = duration.is_some_and(|d| elapsed >= d);
            if let Some(d) = duration {
                elapsed = elapsed.min(d);
            }
            let secs = elapsed.as_secs_f64();
            let target = (self.rate * secs) as u64;
            let budget = target.saturating_sub(applied).min((self.rate * 0.25).ceil() as u64 + 1) as usize;
            let now = self.origin + elapsed.as_nanos() as Nanos;
            let mut batch: Vec<(Emission, bool)> = Vec::with_capacity(budget);
            if self.noise.is_some() {
                // Real time: start instances at the calibrated cadence.
                let due_instances = self.start_rate * secs;
                while started_instances + 1.0 <= due_instances {
                    started_instances += 1.0;
                    self.retire(now);
                    if self.active.len() < self.max_active {
                        self.start_instance(now);
                    }
                }
                self.take_due(now, budget, &mut batch);
                let rest = budget.saturating_sub(batch.len());
                if rest > 0 {
                    let mut out = Vec::with_capacity(rest + 8);
                    self.noise.as_mut().expect("noise mode").fill(now, rest, &mut out);
                    batch.extend(out.into_iter().map(|e| (e, false)));
                }
            } else {
                // Compressed: keep `concurrency` instances interleaved, apply in order.
                while batch.len() < budget {
                    if self.pending.is_empty() || (self.active.len() < self.concurrency) {
                        let at = self.pending.next_at().map_or(now, |at| at.max(now));
                        self.start_instance(at);
                    }
                    let Some((at, emission)) = self.pending.pop() else { break };
                    batch.push((emission, true));
                    self.retire(at);
                }
            }
            applied += self.apply(batch);
            if last {
                break;
            }
        }
        let stopped = self.started.elapsed().min(duration.unwrap_or(Duration::MAX));
        self.shared.stopped_at.store(stopped.as_nanos() as u64, Ordering::Release);
        self.shared.running.store(false, Ordering::Release);
    }

    /// Forgets instances whose last emission is due by `now`.
    fn retire(&mut self, now: Nanos) {
        while matches!(self.active.peek(), Some(Reverse(end)) if *end <= now) {
            self.active.pop();
        }
    }

    fn start_instance(&mut self, at: Nanos) {
        self.instances += 1;
        let kind = self.kinds[(self.instances as usize - 1) % self.kinds.len()];
        let seed = self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(self.instances);
        let params = ScenarioParams {
            seed,
            start: UNIX_EPOCH + Duration::from_nanos(at.max(0) as u64),
            cluster: self.cluster.clone(),
            namespace: NAMESPACES[(seed % NAMESPACES.len() as u64) as usize].to_string(),
            event_ttl: None,
        };
        let sc = generate(kind, &params);
        let end = at + sc.duration().as_nanos() as Nanos;
        for e in sc.emissions {
            self.pending.push(at + e.offset.as_nanos() as Nanos, e.emission);
        }
        self.active.push(Reverse(end));
        self.shared.scenarios_started.fetch_add(1, Ordering::Relaxed);
        self.shared.truth.lock().unwrap_or_else(|e| e.into_inner()).scenarios.push(sc.truth);
    }

    fn take_due(&mut self, now: Nanos, budget: usize, batch: &mut Vec<(Emission, bool)>) {
        while batch.len() < budget {
            let Some(emission) = self.pending.pop_due(now) else { return };
            batch.push((emission, true));
        }
    }

    /// Applies a batch to the store; records scenario uids for the truth.
    fn apply(&mut self, batch: Vec<(Emission, bool)>) -> u64 {
        let n = batch.len() as u64;
        let mut scenario = 0u64;
        let mut seen: Vec<(String, i64)> = Vec::new();
        if let Some(cap) = &self.shared.capture {
            let mut cap = cap.lock().unwrap_or_else(|e| e.into_inner());
            for (e, _) in &batch {
                match e {
                    Emission::Apply(ev) => {
                        let k = (ev.metadata.namespace.clone().unwrap_or_default(), ev.metadata.name.clone().unwrap_or_default());
                        if cap.last.insert(k.clone(), ev.clone()).is_none() {
                            cap.order.push(k);
                        }
                    }
                    Emission::Delete { namespace, name } => {
                        let k = (namespace.clone(), name.clone());
                        cap.last.remove(&k);
                        cap.order.retain(|o| *o != k);
                    }
                }
            }
        }
        for (e, is_scenario) in batch {
            match e {
                Emission::Apply(ev) => {
                    if is_scenario {
                        scenario += 1;
                        if let Some(uid) = ev.metadata.uid.clone() {
                            seen.push((uid, occurrences_of(&ev)));
                        }
                    }
                    self.store.apply(ev);
                }
                Emission::Delete { namespace, name } => {
                    scenario += is_scenario as u64;
                    self.store.delete(&namespace, &name);
                }
            }
        }
        if !seen.is_empty() {
            let mut acc = self.shared.truth.lock().unwrap_or_else(|e| e.into_inner());
            acc.applied.extend(seen);
        }
        self.shared.applied.fetch_add(n, Ordering::Relaxed);
        self.shared.scenario_events.fetch_add(scenario, Ordering::Relaxed);
        self.shared.noise_events.fetch_add(n - scenario, Ordering::Relaxed);
        n
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
