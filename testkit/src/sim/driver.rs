//! One cluster's driver task: decides what to emit each tick (scenarios in real time
//! over noise, or compressed back to back) and hands it to its target — the test API
//! server's store directly, or a real API server through [`ApiWriter`] — keeping the
//! counters and the ground truth of what the target acknowledged.
//!
//! Pacing: the driver wakes every `tick` and submits as many emissions as the target
//! rate allows for the time elapsed (`rate / clusters` per second, at most a quarter
//! second of backlog at once). A real API server slower than the rate pushes back
//! through the writer's bounded queues, so the driver then runs at the server's pace.

use super::apiwrite::{Acknowledge, ApiWriter, Job};
use super::fleet::{occurrences_of, FleetOptions};
use super::objects::{ClusterCtx, NAMESPACES};
use super::scenarios::noise::NoiseStream;
use super::scenarios::{generate, ScenarioKind, ScenarioParams};
use super::timeline::{nanos_of, Agenda, Emission, Nanos};
use super::truth::GroundTruth;
use crate::apiserver::Store;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// What a driver shares with the fleet: counters, truth, capture.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) applied: AtomicU64,
    pub(super) scenario_events: AtomicU64,
    pub(super) noise_events: AtomicU64,
    pub(super) scenarios_started: AtomicU64,
    /// Nanoseconds from fleet start when this driver stopped; 0 while running.
    pub(super) stopped_at: AtomicU64,
    pub(super) running: AtomicBool,
    pub(super) truth: Mutex<TruthAcc>,
    pub(super) capture: Option<Mutex<Capture>>,
}

impl Shared {
    pub(super) fn new(capture: bool) -> Shared {
        Shared { running: AtomicBool::new(true), capture: capture.then(|| Mutex::new(Capture::default())), ..Default::default() }
    }

    fn count(&self, n: u64, scenario: u64) {
        self.applied.fetch_add(n, Ordering::Relaxed);
        self.scenario_events.fetch_add(scenario, Ordering::Relaxed);
        self.noise_events.fetch_add(n - scenario, Ordering::Relaxed);
    }

    pub(super) fn truth(&self) -> std::sync::MutexGuard<'_, TruthAcc> {
        self.truth.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A real API server acknowledged a write: count it, and for a scenario Event
/// remember its occurrences and the uid the server gave it.
impl Acknowledge for Shared {
    fn written(&self, job: &Job, server_uid: Option<&str>) {
        self.count(1, job.scenario as u64);
        if let (true, Emission::Apply(ev), Some(server)) = (job.scenario, &job.emission, server_uid) {
            if let Some(uid) = ev.metadata.uid.clone() {
                let mut acc = self.truth();
                acc.applied.insert(uid.clone(), occurrences_of(ev));
                acc.server_uids.insert(uid, server.to_string());
            }
        }
    }
}

/// The last applied version of each Event, in order of creation.
#[derive(Default)]
pub(super) struct Capture {
    pub(super) order: Vec<(String, String)>,
    pub(super) last: HashMap<(String, String), k8s_openapi::api::core::v1::Event>,
}

#[derive(Default)]
pub(super) struct TruthAcc {
    pub(super) scenarios: Vec<GroundTruth>,
    /// uid → occurrences of the last applied version.
    pub(super) applied: BTreeMap<String, i64>,
    /// Real API servers: the simulator's uid → the uid the server assigned.
    pub(super) server_uids: HashMap<String, String>,
}

/// Where a driver's emissions go.
pub(super) enum Target {
    /// The test API server's store, synchronously.
    Store(Store),
    /// A real API server; queued writes get `drain` to finish when the driver stops.
    Api { writer: ApiWriter, drain: Duration },
    /// The driver stopped (its writer is closed).
    Stopped,
}


pub(super) struct Driver {
    target: Target,
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
    pub(super) fn new(opts: &FleetOptions, index: usize, name: &str, target: Target, shared: Arc<Shared>, started: Instant, start_wall: SystemTime) -> Self {
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
            target,
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

    pub(super) async fn run(mut self, tick: Duration, duration: Option<Duration>, mut stop: watch::Receiver<bool>) {
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
            tokio::select! {
                n = self.apply(batch) => applied += n,
                // A real server that stopped answering must not keep the driver from stopping.
                _ = stop.changed() => break,
            }
            if last {
                break;
            }
        }
        if let Target::Api { writer, drain } = std::mem::replace(&mut self.target, Target::Stopped) {
            writer.close(drain).await;
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
        self.shared.truth().scenarios.push(sc.truth);
    }

    fn take_due(&mut self, now: Nanos, budget: usize, batch: &mut Vec<(Emission, bool)>) {
        while batch.len() < budget {
            let Some(emission) = self.pending.pop_due(now) else { return };
            batch.push((emission, true));
        }
    }

    /// Applies a batch to the target; returns how many emissions it took. The store
    /// counts and records truth here; a real server's writes are counted when acknowledged.
    async fn apply(&mut self, batch: Vec<(Emission, bool)>) -> u64 {
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
        let store = match &self.target {
            Target::Store(store) => store,
            Target::Api { writer, .. } => {
                for (emission, scenario) in batch {
                    writer.submit(Job { emission, scenario }).await;
                }
                return n;
            }
            Target::Stopped => return 0,
        };
        for (e, is_scenario) in batch {
            match e {
                Emission::Apply(ev) => {
                    if is_scenario {
                        scenario += 1;
                        if let Some(uid) = ev.metadata.uid.clone() {
                            seen.push((uid, occurrences_of(&ev)));
                        }
                    }
                    store.apply(ev);
                }
                Emission::Delete { namespace, name } => {
                    scenario += is_scenario as u64;
                    store.delete(&namespace, &name);
                }
            }
        }
        if !seen.is_empty() {
            let mut acc = self.shared.truth();
            acc.applied.extend(seen);
        }
        self.shared.count(n, scenario);
        n
    }
}

