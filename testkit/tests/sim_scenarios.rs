//! Scenario generators: determinism, fidelity to the real emitters, and ground truth
//! consistent with what was emitted.

use k8s_openapi::api::core::v1::Event;
use kevents_testkit::sim::fleet::occurrences_of;
use kevents_testkit::sim::{generate, Emission, Scenario, ScenarioKind, ScenarioParams};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_760_000_000)
}

fn run(kind: ScenarioKind, seed: u64) -> Scenario {
    generate(kind, &ScenarioParams::new(seed, start()))
}

fn applies(sc: &Scenario) -> Vec<&Event> {
    sc.emissions
        .iter()
        .filter_map(|e| match &e.emission {
            Emission::Apply(ev) => Some(ev),
            Emission::Delete { .. } => None,
        })
        .collect()
}

/// (component, reason, type) triples the real emitters use, with the source each
/// comes from. A simulated event outside this table is a made-up one.
const ALLOWED: &[(&str, &str, &str)] = &[
    // pkg/kubelet/events/event.go, images/image_manager.go, kuberuntime/*.go
    ("kubelet", "Pulling", "Normal"),
    ("kubelet", "Pulled", "Normal"),
    ("kubelet", "Created", "Normal"),
    ("kubelet", "Started", "Normal"),
    ("kubelet", "Killing", "Normal"),
    ("kubelet", "BackOff", "Normal"),  // image pull back-off
    ("kubelet", "BackOff", "Warning"), // container restart back-off
    ("kubelet", "Failed", "Warning"),
    // pkg/kubelet/prober/prober.go
    ("kubelet", "Unhealthy", "Warning"),
    // pkg/kubelet/volumemanager, volume/util/operationexecutor
    ("kubelet", "FailedMount", "Warning"),
    // pkg/kubelet/eviction/eviction_manager.go
    ("kubelet", "Evicted", "Warning"),
    ("kubelet", "EvictionThresholdMet", "Warning"),
    // pkg/kubelet/nodestatus/setters.go, kubelet.go
    ("kubelet", "NodeNotReady", "Normal"),
    ("kubelet", "NodeReady", "Normal"),
    ("kubelet", "NodeHasInsufficientMemory", "Normal"),
    ("kubelet", "NodeHasSufficientMemory", "Normal"),
    ("kubelet", "NodeHasDiskPressure", "Normal"),
    ("kubelet", "NodeHasNoDiskPressure", "Normal"),
    ("kubelet", "NodeHasSufficientPID", "Normal"),
    ("kubelet", "NodeAllocatableEnforced", "Normal"),
    ("kubelet", "Starting", "Normal"),
    // pkg/kubelet/network/dns/dns.go
    ("kubelet", "DNSConfigForming", "Warning"),
    // pkg/scheduler/schedule_one.go
    ("default-scheduler", "Scheduled", "Normal"),
    ("default-scheduler", "FailedScheduling", "Warning"),
    // pkg/controller/deployment/sync.go
    ("deployment-controller", "ScalingReplicaSet", "Normal"),
    // pkg/controller/controller_utils.go (replicaset, job)
    ("replicaset-controller", "SuccessfulCreate", "Normal"),
    ("replicaset-controller", "SuccessfulDelete", "Normal"),
    ("job-controller", "SuccessfulCreate", "Normal"),
    ("job-controller", "SuccessfulDelete", "Normal"),
    // pkg/controller/job/job_controller.go
    ("job-controller", "BackoffLimitExceeded", "Warning"),
    // pkg/controller/cronjob/cronjob_controllerv2.go
    ("cronjob-controller", "SuccessfulCreate", "Normal"),
    ("cronjob-controller", "SawCompletedJob", "Normal"),
    // pkg/controller/statefulset/stateful_pod_control.go
    ("statefulset-controller", "SuccessfulCreate", "Normal"),
    // pkg/controller/podautoscaler/horizontal.go
    ("horizontal-pod-autoscaler", "SuccessfulRescale", "Normal"),
    // pkg/controller/volume/persistentvolume/pv_controller.go
    ("persistentvolume-controller", "ProvisioningFailed", "Warning"),
    // pkg/controller/nodelifecycle, pkg/controller/util/node/controller_utils.go
    ("node-controller", "NodeNotReady", "Normal"),
    ("node-controller", "NodeNotReady", "Warning"),
    ("node-controller", "RegisteredNode", "Normal"),
    // pkg/controller/tainteviction/taint_eviction.go
    ("taint-eviction-controller", "TaintManagerEviction", "Normal"),
    // cluster-autoscaler processors/status/eventing_scale_up_processor.go, core/scaleup
    ("cluster-autoscaler", "TriggeredScaleUp", "Normal"),
    ("cluster-autoscaler", "ScaledUpGroup", "Normal"),
    // node-problem-detector config/kernel-monitor.json
    ("kernel-monitor", "OOMKilling", "Warning"),
];

fn component(ev: &Event) -> String {
    let rc = ev.reporting_component.clone().unwrap_or_default();
    if !rc.is_empty() {
        return rc;
    }
    ev.source.as_ref().and_then(|s| s.component.clone()).unwrap_or_default()
}

#[test]
fn every_scenario_is_deterministic_for_its_seed() {
    for kind in ScenarioKind::ALL {
        let a = run(kind, 42);
        let b = run(kind, 42);
        assert_eq!(a.emissions, b.emissions, "{kind}");
        assert_eq!(a.truth, b.truth, "{kind}");
        let c = run(kind, 43);
        assert_ne!(a.emissions, c.emissions, "{kind}: a new seed must change the output");
        assert!(!a.emissions.is_empty(), "{kind}");
    }
}

#[test]
fn only_real_reasons_components_and_types() {
    let allowed: BTreeSet<(&str, &str, &str)> = ALLOWED.iter().copied().collect();
    for kind in ScenarioKind::ALL {
        for seed in 0..4 {
            for ev in applies(&run(kind, seed)) {
                let c = component(ev);
                let r = ev.reason.clone().unwrap_or_default();
                let t = ev.type_.clone().unwrap_or_default();
                assert!(allowed.contains(&(c.as_str(), r.as_str(), t.as_str())), "{kind}: ({c}, {r}, {t}) is not emitted by real sources");
            }
        }
    }
}

#[test]
fn events_have_the_shape_of_their_recorder() {
    for kind in ScenarioKind::ALL {
        for ev in applies(&run(kind, 7)) {
            let name = ev.metadata.name.clone().unwrap();
            let involved = ev.involved_object.name.clone().unwrap();
            let (prefix, hex) = name.rsplit_once('.').unwrap();
            assert_eq!(prefix, involved, "{kind}: name {name} is <involved>.<hex>");
            assert!(i64::from_str_radix(hex, 16).is_ok(), "{kind}: {name}");
            assert!(ev.metadata.uid.is_some() && ev.metadata.creation_timestamp.is_some());
            if component(ev) == "default-scheduler" {
                // tools/events: new fields only.
                assert!(ev.event_time.is_some(), "{kind}: {ev:?}");
                assert!(ev.action.as_deref().is_some_and(|a| !a.is_empty()));
                assert_eq!(ev.reporting_instance.as_deref(), Some("default-scheduler-sim-1-control-plane"));
                assert!(ev.count.is_none() && ev.first_timestamp.is_none() && ev.last_timestamp.is_none());
                if let Some(s) = &ev.series {
                    assert!(s.count.unwrap() >= 2 && s.last_observed_time.is_some());
                }
            } else {
                // tools/record: legacy fields, source set.
                assert!(ev.event_time.is_none() && ev.series.is_none() && ev.action.is_none(), "{kind}: {ev:?}");
                assert!(ev.count.unwrap() >= 1);
                assert!(ev.first_timestamp.is_some() && ev.last_timestamp.is_some());
                assert!(ev.first_timestamp.as_ref().unwrap().0 <= ev.last_timestamp.as_ref().unwrap().0);
                assert!(ev.source.as_ref().unwrap().component.is_some());
            }
        }
    }
}

#[test]
fn repeats_update_one_object_with_growing_counts() {
    for kind in ScenarioKind::ALL {
        let sc = run(kind, 11);
        let mut last: BTreeMap<String, (String, i64)> = BTreeMap::new();
        for ev in applies(&sc) {
            let uid = ev.metadata.uid.clone().unwrap();
            let n = occurrences_of(ev);
            if let Some((name, prev)) = last.get(&uid) {
                assert_eq!(Some(name), ev.metadata.name.as_ref(), "{kind}: a repeat keeps its name");
                assert!(n >= *prev, "{kind}: count went down for {uid}");
            }
            last.insert(uid, (ev.metadata.name.clone().unwrap(), n));
        }
        // Ground truth occurrences are the last written counts.
        let expected: BTreeMap<String, i64> = last.into_iter().map(|(u, (_, n))| (u, n)).collect();
        assert_eq!(sc.truth.occurrences, expected, "{kind}");
        for (uid, n) in &sc.truth.occurrences {
            assert!(sc.truth.emitted_occurrences[uid] >= *n, "{kind}");
        }
    }
}

#[test]
fn ground_truth_names_only_emitted_uids() {
    for kind in ScenarioKind::ALL {
        for seed in 0..3 {
            let sc = run(kind, seed);
            let emitted: BTreeSet<String> = applies(&sc).iter().filter_map(|e| e.metadata.uid.clone()).collect();
            for uid in sc.truth.all_uids() {
                assert!(emitted.contains(uid), "{kind}: truth names {uid}, never emitted");
            }
            // Members and noise partition the emitted uids.
            let members: BTreeSet<String> = sc.truth.incidents.iter().flat_map(|i| i.member_uids.iter().cloned()).collect();
            assert!(members.is_disjoint(&sc.truth.noise_uids), "{kind}");
            let all: BTreeSet<String> = members.union(&sc.truth.noise_uids).cloned().collect();
            assert_eq!(all, emitted, "{kind}");
            for inc in &sc.truth.incidents {
                assert!(inc.member_uids.contains(&inc.root_cause_uid), "{kind}");
                // A one-pod crash loop is a single BackOff object whose count grows;
                // every other incident has effects beyond its root.
                if kind != ScenarioKind::CrashLoop {
                    assert!(inc.member_uids.len() >= 2, "{kind}: an incident has effects");
                }
                assert_eq!(inc.kind, kind.name());
            }
            if kind.has_incident() {
                assert_eq!(sc.truth.incidents.len(), 1, "{kind}");
            } else {
                assert!(sc.truth.incidents.is_empty(), "{kind}");
            }
        }
    }
}

fn find<'a>(sc: &'a Scenario, uid: &str) -> &'a Event {
    applies(sc).into_iter().rev().find(|e| e.metadata.uid.as_deref() == Some(uid)).unwrap()
}

#[test]
fn root_causes_are_the_expected_events() {
    let expect: &[(ScenarioKind, &str, &str, &str)] = &[
        (ScenarioKind::ImagePullFailure, "Failed", "Warning", "Failed to pull image"),
        (ScenarioKind::CrashLoop, "BackOff", "Warning", "Back-off restarting failed container"),
        (ScenarioKind::LivenessFailure, "Unhealthy", "Warning", "Liveness probe failed: "),
        (ScenarioKind::FailedMount, "FailedMount", "Warning", "MountVolume.SetUp failed for volume \"data\""),
        (ScenarioKind::FailedSchedulingScaleUp, "FailedScheduling", "Warning", "0/6 nodes are available: 5 Insufficient cpu"),
        (ScenarioKind::JobBackoffLimit, "BackOff", "Warning", "Back-off restarting failed container"),
        (ScenarioKind::PvcProvisioningFailure, "ProvisioningFailed", "Warning", "storageclass.storage.k8s.io \""),
        (ScenarioKind::HpaScaling, "SuccessfulRescale", "Normal", "New size: "),
        (ScenarioKind::OomKill, "OOMKilling", "Warning", "Memory cgroup out of memory: Killed process "),
        (ScenarioKind::NodeNotReady, "NodeNotReady", "Normal", "Node sim-1-worker-"),
    ];
    for (kind, reason, ty, prefix) in expect {
        for seed in 0..3 {
            let sc = run(*kind, seed);
            let root = find(&sc, &sc.truth.incidents[0].root_cause_uid);
            assert_eq!(root.reason.as_deref(), Some(*reason), "{kind}");
            assert_eq!(root.type_.as_deref(), Some(*ty), "{kind}");
            let msg = root.message.as_deref().unwrap();
            assert!(msg.starts_with(prefix) || msg.contains(prefix), "{kind}: {msg}");
        }
    }
}

#[test]
fn scenario_specific_behaviour() {
    // Image pull: the Normal pull back-off and the ImagePullBackOff error, repeated.
    let sc = run(ScenarioKind::ImagePullFailure, 3);
    let evs = applies(&sc);
    assert!(evs.iter().any(|e| e.reason.as_deref() == Some("BackOff")
        && e.type_.as_deref() == Some("Normal")
        && e.message.as_deref().unwrap().starts_with("Back-off pulling image \"")
        && e.count.unwrap() > 1));
    assert!(evs.iter().any(|e| e.message.as_deref() == Some("Error: ImagePullBackOff")));

    // Crash loop: counts grow past the spam filter's burst, which hides some.
    let crash: Vec<Scenario> = (0..4).map(|s| run(ScenarioKind::CrashLoop, s)).collect();
    assert!(crash.iter().any(|sc| sc.truth.suppressed_occurrences > 0));
    assert!(crash.iter().any(|sc| sc.truth.occurrences.iter().any(|(u, n)| sc.truth.emitted_occurrences[u] > *n)));

    // OOM: ten distinct kernel messages on one Node within ten minutes get combined.
    let combined = (0..6).any(|s| {
        applies(&run(ScenarioKind::OomKill, s))
            .iter()
            .any(|e| e.message.as_deref().unwrap().starts_with("(combined from similar events): Memory cgroup out of memory"))
    });
    assert!(combined, "OOM storms trigger client-go aggregation");

    // Scheduler: FailedScheduling repeats become a series on one object.
    let sc = run(ScenarioKind::FailedSchedulingScaleUp, 5);
    assert!(applies(&sc).iter().any(|e| e.reason.as_deref() == Some("FailedScheduling")
        && e.series.as_ref().and_then(|s| s.count).unwrap_or(0) > 2));

    // Node NotReady: the pods get the Warning and the eviction mark.
    let sc = run(ScenarioKind::NodeNotReady, 2);
    let evs = applies(&sc);
    assert!(evs.iter().any(|e| e.reason.as_deref() == Some("NodeNotReady") && e.message.as_deref() == Some("Node is not ready")));
    assert!(evs.iter().any(|e| e.message.as_deref().unwrap().starts_with("Marking for deletion Pod ")));

    // Evictions carry the kubelet's message format, trailing space included.
    let sc = run(ScenarioKind::NodePressureEviction, 0);
    let ev = applies(&sc).into_iter().find(|e| e.reason.as_deref() == Some("Evicted")).unwrap();
    let m = ev.message.as_deref().unwrap();
    assert!(m.starts_with("The node was low on resource: ") && m.contains("Threshold quantity: ") && m.ends_with(". "), "{m}");
}

#[test]
fn event_ttl_deletes_every_event_after_its_last_write() {
    let mut p = ScenarioParams::new(9, start());
    p.event_ttl = Some(Duration::from_secs(3600));
    let sc = generate(ScenarioKind::CrashLoop, &p);
    let deletes = sc.emissions.iter().filter(|e| matches!(e.emission, Emission::Delete { .. })).count();
    assert_eq!(deletes, sc.truth.occurrences.len());
    assert!(sc.final_events().is_empty());
    assert!(sc.emissions.windows(2).all(|w| w[0].offset <= w[1].offset));
    let without = run(ScenarioKind::CrashLoop, 9);
    assert_eq!(without.final_events().len(), sc.truth.occurrences.len());
}
