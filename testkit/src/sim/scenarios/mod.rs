//! Seeded scenarios: each kind writes a script of what real emitters would record,
//! which [`render`] runs through the client-go recorder emulations into a timeline
//! of API writes plus its ground truth.
//!
//! - `script` — the intent builder and pod lifecycle sequences.
//! - `workload` — incidents inside one workload (image pull, crash loop, liveness,
//!   mount, OOM, HPA) and the healthy rollout.
//! - `infra` — node, scheduling, storage and batch incidents.
//! - `noise` — healthy background traffic, as a scenario and as an endless stream.

mod infra;
pub mod noise;
pub(crate) mod script;
mod workload;

use super::objects::ClusterCtx;
use super::recorder::{Recorders, Sink};
use super::timeline::{nanos_of, Emission, Nanos, TimedEmission};
use super::truth::{GroundTruth, TruthIncident};
use k8s_openapi::api::core::v1::Event;
use script::Script;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

/// The scenarios the simulator can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScenarioKind {
    /// Deployment → ReplicaSet → pods, all healthy. Declares no incident.
    HealthyRollout,
    /// Wrong image tag: `Failed` pull, `ErrImagePull`, `BackOff` (Normal) pulling,
    /// `ImagePullBackOff`, repeating.
    ImagePullFailure,
    /// Container exits right after start: `BackOff` (Warning) restarting, repeating.
    CrashLoop,
    /// `Unhealthy` liveness ×3 → `Killing` → restart, repeating, then `BackOff`.
    LivenessFailure,
    /// Missing secret volume: `FailedMount` SetUp and the 2-minute timeout, pod stuck.
    FailedMount,
    /// A node stops reporting: `NodeNotReady` on the node and its pods,
    /// `TaintManagerEviction`, replacement pods elsewhere.
    NodeNotReady,
    /// Memory or disk pressure: node condition, `EvictionThresholdMet`, `Evicted` pods.
    NodePressureEviction,
    /// `FailedScheduling` Insufficient cpu → cluster-autoscaler scale-up → scheduled.
    FailedSchedulingScaleUp,
    /// Cgroup OOM kills seen by node-problem-detector, container restarts, back-off.
    OomKill,
    /// Job pod failing until `BackoffLimitExceeded`.
    JobBackoffLimit,
    /// Missing StorageClass: `ProvisioningFailed` → `FailedScheduling` unbound PVC.
    PvcProvisioningFailure,
    /// HPA `SuccessfulRescale` up, new pods started.
    HpaScaling,
    /// Background: many healthy pod starts and a few harmless warnings.
    Noise,
}

impl ScenarioKind {
    pub const ALL: [ScenarioKind; 13] = [
        ScenarioKind::HealthyRollout,
        ScenarioKind::ImagePullFailure,
        ScenarioKind::CrashLoop,
        ScenarioKind::LivenessFailure,
        ScenarioKind::FailedMount,
        ScenarioKind::NodeNotReady,
        ScenarioKind::NodePressureEviction,
        ScenarioKind::FailedSchedulingScaleUp,
        ScenarioKind::OomKill,
        ScenarioKind::JobBackoffLimit,
        ScenarioKind::PvcProvisioningFailure,
        ScenarioKind::HpaScaling,
        ScenarioKind::Noise,
    ];

    /// Kebab-case name, used on the command line and as `TruthIncident::kind`.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::HealthyRollout => "healthy-rollout",
            ScenarioKind::ImagePullFailure => "image-pull-failure",
            ScenarioKind::CrashLoop => "crash-loop",
            ScenarioKind::LivenessFailure => "liveness-failure",
            ScenarioKind::FailedMount => "failed-mount",
            ScenarioKind::NodeNotReady => "node-not-ready",
            ScenarioKind::NodePressureEviction => "node-pressure-eviction",
            ScenarioKind::FailedSchedulingScaleUp => "failed-scheduling-scale-up",
            ScenarioKind::OomKill => "oom-kill",
            ScenarioKind::JobBackoffLimit => "job-backoff-limit",
            ScenarioKind::PvcProvisioningFailure => "pvc-provisioning-failure",
            ScenarioKind::HpaScaling => "hpa-scaling",
            ScenarioKind::Noise => "noise",
        }
    }

    /// Whether the scenario declares an incident.
    pub fn has_incident(self) -> bool {
        !matches!(self, ScenarioKind::HealthyRollout | ScenarioKind::Noise)
    }
}

impl std::fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ScenarioKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScenarioKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<_> = ScenarioKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown scenario {s:?} (expected one of: {})", names.join(", "))
        })
    }
}

/// Inputs of one scenario run.
#[derive(Debug, Clone)]
pub struct ScenarioParams {
    /// Everything random (names, uids, timings) derives from it.
    pub seed: u64,
    /// Wall time of offset zero; event timestamps are `start + offset`.
    pub start: SystemTime,
    /// The cluster's nodes and control plane.
    pub cluster: ClusterCtx,
    /// Namespace of the workloads (node events go to `default`).
    pub namespace: String,
    /// When set, every event is deleted this long after its last write, as the API
    /// server's event TTL (`--event-ttl`, default 1 h) does.
    pub event_ttl: Option<Duration>,
}

impl ScenarioParams {
    /// A run in a 5-node cluster `sim-1`, namespace `shop`, without TTL deletes.
    pub fn new(seed: u64, start: SystemTime) -> Self {
        ScenarioParams { seed, start, cluster: ClusterCtx::new("sim-1", 5), namespace: "shop".into(), event_ttl: None }
    }
}

/// One rendered scenario: its writes in time order and the truth about them.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub kind: ScenarioKind,
    pub start: SystemTime,
    pub emissions: Vec<TimedEmission>,
    pub truth: GroundTruth,
}

impl Scenario {
    /// Offset of the last emission.
    pub fn duration(&self) -> Duration {
        self.emissions.last().map(|e| e.offset).unwrap_or_default()
    }

    /// The Events as the server holds them after the whole timeline: the last version
    /// of each object not deleted, in order of creation.
    pub fn final_events(&self) -> Vec<Event> {
        final_events(self.emissions.iter().map(|e| &e.emission))
    }
}

/// The last version of each (namespace, name) not deleted, in order of creation.
pub fn final_events<'a>(emissions: impl Iterator<Item = &'a Emission>) -> Vec<Event> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut last: BTreeMap<(String, String), Option<&Event>> = BTreeMap::new();
    for e in emissions {
        match e {
            Emission::Apply(ev) => {
                let k = (ev.metadata.namespace.clone().unwrap_or_default(), ev.metadata.name.clone().unwrap_or_default());
                if !matches!(last.get(&k), Some(Some(_))) {
                    order.push(k.clone());
                }
                last.insert(k, Some(ev));
            }
            Emission::Delete { namespace, name } => {
                last.insert((namespace.clone(), name.clone()), None);
            }
        }
    }
    order.iter().filter_map(|k| last.get(k).copied().flatten().cloned()).collect()
}

/// Generates one scenario. Same kind and params → identical output.
pub fn generate(kind: ScenarioKind, params: &ScenarioParams) -> Scenario {
    let t0 = nanos_of(params.start);
    let mut s = Script::new(params.seed, params.cluster.clone(), &params.namespace, t0);
    match kind {
        ScenarioKind::HealthyRollout => workload::healthy_rollout(&mut s),
        ScenarioKind::ImagePullFailure => workload::image_pull_failure(&mut s),
        ScenarioKind::CrashLoop => workload::crash_loop(&mut s),
        ScenarioKind::LivenessFailure => workload::liveness_failure(&mut s),
        ScenarioKind::FailedMount => workload::failed_mount(&mut s),
        ScenarioKind::OomKill => workload::oom_kill(&mut s),
        ScenarioKind::HpaScaling => workload::hpa_scaling(&mut s),
        ScenarioKind::NodeNotReady => infra::node_not_ready(&mut s),
        ScenarioKind::NodePressureEviction => infra::node_pressure_eviction(&mut s),
        ScenarioKind::FailedSchedulingScaleUp => infra::failed_scheduling_scale_up(&mut s),
        ScenarioKind::JobBackoffLimit => infra::job_backoff_limit(&mut s),
        ScenarioKind::PvcProvisioningFailure => infra::pvc_provisioning_failure(&mut s),
        ScenarioKind::Noise => noise::noise_scenario(&mut s),
    }
    render(kind, s, params)
}

/// Runs a script's intents through the recorders, in time order, and derives the
/// ground truth from where each tagged occurrence landed. A script may tag several
/// root candidates of one incident (each pod's first failure): the earliest in time
/// is the root, as a reader of the events would see it.
fn render(kind: ScenarioKind, mut s: Script, params: &ScenarioParams) -> Scenario {
    s.intents.sort_by_key(|i| i.at);
    let mut recorders = Recorders::new();
    let mut sink = Sink::new(s.t0, true);
    let mut members: Vec<BTreeSet<String>> = vec![BTreeSet::new(); s.incidents.len()];
    let mut roots: Vec<Option<String>> = vec![None; s.incidents.len()];
    let mut tagged: Vec<(u16, bool, String)> = Vec::new();
    for intent in &s.intents {
        let uid = recorders.record(&mut s.ids, &mut sink, intent);
        if let Some(i) = intent.tag.incident {
            tagged.push((i, intent.tag.root, uid));
        }
    }
    recorders.finish(&mut s.ids, &mut sink);
    for (i, root, uid) in tagged {
        if !sink.written.contains_key(&uid) {
            continue;
        }
        if root && roots[i as usize].is_none() {
            roots[i as usize] = Some(uid.clone());
        }
        members[i as usize].insert(uid);
    }
    let mut truth = GroundTruth::default();
    for (i, name) in s.incidents.iter().enumerate() {
        let Some(root) = roots[i].clone().or_else(|| members[i].iter().next().cloned()) else { continue };
        members[i].insert(root.clone());
        truth.incidents.push(TruthIncident {
            name: name.clone(),
            root_cause_uid: root,
            member_uids: std::mem::take(&mut members[i]),
            kind: kind.name().to_string(),
        });
    }
    let in_incident: BTreeSet<&String> = truth.incidents.iter().flat_map(|i| i.member_uids.iter()).collect();
    truth.noise_uids = sink.written.keys().filter(|u| !in_incident.contains(u)).cloned().collect();
    truth.occurrences = sink.written.iter().map(|(u, n)| (u.clone(), *n)).collect();
    truth.emitted_occurrences = recorders
        .emitted_occurrences()
        .into_iter()
        .filter(|(u, _)| sink.written.contains_key(u))
        .collect();
    truth.suppressed_occurrences = recorders.suppressed();

    if let Some(ttl) = params.event_ttl {
        let ttl = ttl.as_nanos() as Nanos;
        let mut deletes: Vec<_> = sink.last_write.values().cloned().collect();
        deletes.sort();
        for (at, namespace, name) in deletes {
            let offset = Duration::from_nanos((at + ttl - s.t0).max(0) as u64);
            sink.emissions.push(TimedEmission { offset, emission: Emission::Delete { namespace, name } });
        }
    }
    sink.emissions.sort_by_key(|e| e.offset);
    Scenario { kind, start: params.start, emissions: sink.emissions, truth }
}
