//! Scenarios that start outside the workload: nodes, scheduling, storage, batch.
//!
//! Emitters and their sources:
//! - node-controller: pkg/controller/nodelifecycle (`NodeNotReady` Normal on the Node
//!   via `RecordNodeStatusChange` `Node %s status is now: %s`; `RegisteredNode`
//!   `Node %s event: Registered Node %s in Controller`), pkg/controller/util/node
//!   `MarkPodsNotReady` (`NodeNotReady` Warning `Node is not ready` on each pod).
//! - taint-eviction-controller: pkg/controller/tainteviction (`TaintManagerEviction`
//!   `Marking for deletion Pod %s`, a reference without uid).
//! - kubelet: pkg/kubelet/nodestatus and kubelet_node_status.go (`Node %s status is
//!   now: %s` for NodeReady/NodeNotReady/NodeHasInsufficientMemory/…; `Starting`
//!   `Starting kubelet.`), pkg/kubelet/eviction (`EvictionThresholdMet` `Attempting to
//!   reclaim %s`; `Evicted` from helpers.go `nodeLowMessageFmt`,
//!   `thresholdMetMessageFmt`, `containerMessageFmt`, trailing spaces included).
//! - cluster-autoscaler: core/scaleup and processors/status/eventing_scale_up_processor.go
//!   (`TriggeredScaleUp` `pod triggered scale-up: %v` with `{group cur->new (max: m)}`;
//!   `ScaledUpGroup` `Scale-up: setting group %s size to %d instead of %d (max: %d)`
//!   on kube-system/cluster-autoscaler-status).
//! - default-scheduler: `FailedScheduling` (action `Scheduling`), messages from the
//!   framework's fit error (`0/%d nodes are available: ...`, `preemption: ...`).
//! - persistentvolume-controller: pkg/controller/volume/persistentvolume
//!   (`ProvisioningFailed` with the StorageClass lookup error).
//! - statefulset-controller: stateful_pod_control.go (`SuccessfulCreate` `create Pod %s
//!   in StatefulSet %s successful`, `create Claim %s Pod %s in StatefulSet %s success`).
//! - job-controller / cronjob-controller: pkg/controller/job (`BackoffLimitExceeded`
//!   `Job has reached the specified backoff limit`), pkg/controller/cronjob
//!   (`SuccessfulCreate` `Created job %v`, `SawCompletedJob` `Saw completed job: %s,
//!   condition: %v`).

use super::script::{backoff_restart_message, restart_delay, Script, NORMAL, WARNING};
use crate::sim::objects::{ObjRef, SimNode, Workload};
use crate::sim::recorder::Tag;
use crate::sim::timeline::{Nanos, MILLI, SECOND};

/// Running pods of 2–3 workloads placed on `node` (their start is outside the window).
fn pods_on_node(s: &mut Script) -> Vec<(Workload, ObjRef)> {
    let mut out = Vec::new();
    let workloads = s.ids.range(2, 3);
    for _ in 0..workloads {
        let w = Workload::new(&mut s.ids, &s.ns.clone());
        let n = s.ids.range(1, 2);
        for _ in 0..n {
            let p = w.pod(&mut s.ids);
            out.push((w.clone(), p));
        }
    }
    out
}

/// A replacement pod for `w`, scheduled on another node and started.
fn replace(s: &mut Script, at: Nanos, w: &Workload, avoid: &SimNode, tag: Tag) {
    let pod = w.pod(&mut s.ids);
    s.controller(at, "replicaset-controller", &w.replica_set, NORMAL, "SuccessfulCreate", format!("Created pod: {}", pod.name), tag);
    let node = loop {
        let n = s.node();
        if n != *avoid {
            break n;
        }
    };
    s.pod_start(at, &pod, &node, w, false);
}

/// A node stops posting status. Half the time its kubelet first reports NotReady
/// itself (runtime trouble) and is the root; otherwise the node goes dark and the
/// node controller's event is the root.
pub(crate) fn node_not_ready(s: &mut Script) {
    let node = s.node();
    let inc = s.incident(format!("node-not-ready {}", node.name));
    let pods = pods_on_node(s);
    let kubelet_first = s.ids.chance(0.5);
    let mut t = s.at(s.t0 + SECOND, 500);
    let status = format!("Node {} status is now: NodeNotReady", node.name);
    if kubelet_first {
        s.kubelet(t, &node, &node.kubelet_ref(), NORMAL, "NodeNotReady", status.clone(), Tag::root(inc));
    }
    // node-monitor-grace-period (40 s, 50 s since 1.32) before the controller reacts.
    t = s.at(t + 40 * SECOND, 10_000);
    let tag = if kubelet_first { Tag::member(inc) } else { Tag::root(inc) };
    s.controller(t, "node-controller", &node.controller_ref(), NORMAL, "NodeNotReady", status, tag);
    for (_, pod) in &pods {
        let at = s.at(t + 10 * MILLI, 300);
        s.controller(at, "node-controller", pod, WARNING, "NodeNotReady", "Node is not ready".into(), Tag::member(inc));
    }
    // Default not-ready:NoExecute toleration: 300 s.
    let evict = t + 300 * SECOND;
    for (w, pod) in &pods {
        let at = s.at(evict, 1500);
        let r = ObjRef { resource_version: String::new(), uid: String::new(), field_path: String::new(), ..pod.clone() };
        let msg = format!("Marking for deletion Pod {}/{}", pod.namespace, pod.name);
        s.controller(at, "taint-eviction-controller", &r, NORMAL, "TaintManagerEviction", msg, Tag::member(inc));
        let at = s.at(at + 200 * MILLI, 800);
        replace(s, at, w, &node, Tag::member(inc));
    }
}

/// Memory (or disk) pressure on a node: condition, reclaim attempts, evictions of the
/// largest consumers, replacements, recovery.
pub(crate) fn node_pressure_eviction(s: &mut Script) {
    let node = s.node();
    let memory = s.ids.chance(0.6);
    let (resource, cond, ok_cond) = if memory {
        ("memory", "NodeHasInsufficientMemory", "NodeHasSufficientMemory")
    } else {
        ("ephemeral-storage", "NodeHasDiskPressure", "NodeHasNoDiskPressure")
    };
    let inc = s.incident(format!("node-pressure-eviction {} {resource}", node.name));
    let pods = pods_on_node(s);
    let kref = node.kubelet_ref();
    let mut t = s.at(s.t0 + SECOND, 500);
    s.kubelet(t, &node, &kref, NORMAL, cond, format!("Node {} status is now: {cond}", node.name), Tag::root(inc));
    let victims = (s.ids.range(1, 3) as usize).min(pods.len());
    for (w, pod) in pods.iter().take(victims) {
        let gap = s.ids.range(5, 40) * SECOND;
        t = s.at(t + gap, 1000);
        s.kubelet(t, &node, &kref, WARNING, "EvictionThresholdMet", format!("Attempting to reclaim {resource}"), Tag::member(inc));
        let msg = if memory {
            let avail = s.ids.range(20, 95);
            let used = s.ids.range(700, 2400);
            format!(
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: {avail}Mi. Container {} was using {used}Mi, request is 512Mi, has larger consumption of memory. ",
                w.container
            )
        } else {
            let avail = s.ids.range(1_000_000, 4_000_000);
            let used = s.ids.range(5_000_000, 30_000_000);
            format!(
                "The node was low on resource: ephemeral-storage. Threshold quantity: 4281352Ki, available: {avail}Ki. Container {} was using {used}Ki, request is 0, has larger consumption of ephemeral-storage. ",
                w.container
            )
        };
        let at = s.at(t + 50 * MILLI, 200);
        s.kubelet(at, &node, pod, WARNING, "Evicted", msg, Tag::member(inc));
        let at = s.at(at + 20 * MILLI, 100);
        s.kubelet(at, &node, &pod.container(&w.container), NORMAL, "Killing", format!("Stopping container {}", w.container), Tag::member(inc));
        let at = s.at(at + 500 * MILLI, 1000);
        replace(s, at, w, &node, Tag::member(inc));
    }
    let gap = s.ids.range(60, 240) * SECOND;
    t = s.at(t + gap, 1000);
    s.kubelet(t, &node, &kref, NORMAL, ok_cond, format!("Node {} status is now: {ok_cond}", node.name), Tag::member(inc));
}

/// Pods that fit nowhere (Insufficient cpu) until cluster-autoscaler adds a node.
pub(crate) fn failed_scheduling_scale_up(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let inc = s.incident(format!("failed-scheduling-scale-up {}/{}", w.namespace(), w.app));
    let replicas = s.ids.range(2, 4) as usize;
    let (pods, t) = s.rollout(s.t0, &w, replicas, Tag::NONE);
    let workers = s.cluster.nodes.len();
    let total = workers + 1;
    let unschedulable = format!(
        "0/{total} nodes are available: {workers} Insufficient cpu, 1 node(s) had untolerated taint {{node-role.kubernetes.io/control-plane: }}. preemption: 0/{total} nodes are available: 1 Preemption is not helpful for scheduling, {workers} No preemption victims found for incoming pod."
    );
    let ready = t + s.ids.range(70, 150) * SECOND;
    for pod in &pods {
        // Each pod's first failure may be the root: the earliest in time is (see `render`).
        let mut first = true;
        // Scheduling queue back-off: 1 s doubling to 10 s, then retries on cluster events.
        let mut at = s.at(t + 50 * MILLI, 300);
        let mut backoff = SECOND;
        while at < ready {
            let tag = if first { Tag::root(inc) } else { Tag::member(inc) };
            first = false;
            s.scheduler(at, pod, WARNING, "FailedScheduling", "Scheduling", unschedulable.clone(), tag);
            at += backoff + s.ids.jitter(500 * MILLI);
            backoff = (backoff * 2).min(10 * SECOND);
        }
    }
    let group = s.cluster.node_group.clone();
    let new_node = s.cluster.new_node(&mut s.ids);
    let ca = |s: &mut Script, at: Nanos, obj: &ObjRef, reason: &'static str, msg: String, tag: Tag| {
        s.controller(at, "cluster-autoscaler", obj, NORMAL, reason, msg, tag);
    };
    let scale_at = s.at(t + 10 * SECOND, 5000);
    let status_cm = ObjRef::new("ConfigMap", "v1", "kube-system", "cluster-autoscaler-status", &mut s.ids);
    let msg = format!("Scale-up: setting group {group} size to {} instead of {workers} (max: 10)", workers + 1);
    ca(s, scale_at, &status_cm, "ScaledUpGroup", msg, Tag::member(inc));
    for pod in &pods {
        let at = s.at(scale_at + 100 * MILLI, 300);
        let msg = format!("pod triggered scale-up: [{{{group} {workers}->{} (max: 10)}}]", workers + 1);
        ca(s, at, pod, "TriggeredScaleUp", msg, Tag::member(inc));
    }
    // The new node registers and its kubelet starts.
    let join = ready - 20 * SECOND;
    let msg = format!("Node {} event: Registered Node {} in Controller", new_node.name, new_node.name);
    s.controller(join, "node-controller", &new_node.controller_ref(), NORMAL, "RegisteredNode", msg, Tag::member(inc));
    let kref = new_node.kubelet_ref();
    let mut at = s.at(join - 5 * SECOND, 1000);
    s.kubelet(at, &new_node, &kref, NORMAL, "Starting", "Starting kubelet.".into(), Tag::NONE);
    for cond in ["NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"] {
        at = s.at(at + 10 * MILLI, 50);
        s.kubelet(at, &new_node, &kref, NORMAL, cond, format!("Node {} status is now: {cond}", new_node.name), Tag::NONE);
    }
    at = s.at(at + 10 * MILLI, 50);
    s.kubelet(at, &new_node, &kref, NORMAL, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods".into(), Tag::NONE);
    let msg = format!("Node {} status is now: NodeReady", new_node.name);
    s.kubelet(ready - SECOND, &new_node, &kref, NORMAL, "NodeReady", msg, Tag::NONE);
    for pod in &pods {
        let at = s.at(ready, 2000);
        s.pod_start(at, pod, &new_node, &w, true);
    }
}

/// A Job (optionally owned by a CronJob) whose pod keeps failing under
/// `restartPolicy: OnFailure` until the Job's back-off limit is reached.
pub(crate) fn job_backoff_limit(s: &mut Script) {
    let base = *s.ids.pick(&["report", "etl", "backup", "sync", "cleanup", "billing-run"]);
    let ns = s.ns.clone();
    let cron = s.ids.chance(0.5).then(|| ObjRef::new("CronJob", "batch/v1", &ns, base, &mut s.ids));
    let job_name = match &cron {
        Some(_) => format!("{base}-{}", 29_000_000 + s.ids.range(0, 999_999)),
        None => format!("{base}-{}", s.ids.suffix(5)),
    };
    let inc = s.incident(format!("job-backoff-limit {ns}/{job_name}"));
    let job = ObjRef::new("Job", "batch/v1", &ns, &job_name, &mut s.ids);
    let mut t = s.at(s.t0, 300);
    if let Some(cj) = &cron {
        s.controller(t, "cronjob-controller", cj, NORMAL, "SuccessfulCreate", format!("Created job {job_name}"), Tag::NONE);
        t = s.at(t + 30 * MILLI, 100);
    }
    let pod = ObjRef::new("Pod", "v1", &ns, &format!("{job_name}-{}", s.ids.suffix(5)), &mut s.ids);
    s.controller(t, "job-controller", &job, NORMAL, "SuccessfulCreate", format!("Created pod: {}", pod.name), Tag::NONE);
    let node = s.node();
    let w = Workload { image: format!("registry.example.com/{ns}/{base}:2024.{}", s.ids.range(1, 12)), container: base.into(), ..Workload::new(&mut s.ids, &ns) };
    let mut started = s.pod_start(t, &pod, &node, &w, true);
    let limit = s.ids.range(3, 6) as u32;
    for restart in 0..limit {
        let exited = started + s.ids.range(2, 15) * SECOND;
        let until = exited + restart_delay(restart);
        let tag = if restart == 0 { Tag::root(inc) } else { Tag::member(inc) };
        let b = s.at(exited, 800);
        s.kubelet(b, &node, &pod, WARNING, "BackOff", backoff_restart_message(base, &pod), tag);
        s.restart_backoff(b, until, &node, &pod, base, Tag::member(inc));
        started = s.start_container(until, &node, &pod, base, &w.image, false, Tag::NONE);
    }
    let run = s.ids.range(2, 15) * SECOND;
    let done = s.at(started + run, 500);
    s.controller(done, "job-controller", &job, WARNING, "BackoffLimitExceeded", "Job has reached the specified backoff limit".into(), Tag::member(inc));
    let at = s.at(done + 20 * MILLI, 80);
    s.controller(at, "job-controller", &job, NORMAL, "SuccessfulDelete", format!("Deleted pod: {}", pod.name), Tag::member(inc));
    let at = s.at(at + 30 * MILLI, 200);
    s.kubelet(at, &node, &pod.container(base), NORMAL, "Killing", format!("Stopping container {base}"), Tag::member(inc));
    if let Some(cj) = &cron {
        let at = s.at(done + 5 * SECOND, 5000);
        let msg = format!("Saw completed job: {job_name}, condition: Failed");
        s.controller(at, "cronjob-controller", cj, NORMAL, "SawCompletedJob", msg, Tag::member(inc));
    }
}

/// A StatefulSet whose volumeClaimTemplate names a StorageClass that does not exist.
pub(crate) fn pvc_provisioning_failure(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let ns = s.ns.clone();
    let inc = s.incident(format!("pvc-provisioning-failure {ns}/{}", w.app));
    let sts = ObjRef::new("StatefulSet", "apps/v1", &ns, &w.app, &mut s.ids);
    let pod = ObjRef::new("Pod", "v1", &ns, &format!("{}-0", w.app), &mut s.ids);
    let claim = format!("data-{}-0", w.app);
    let pvc = ObjRef::new("PersistentVolumeClaim", "v1", &ns, &claim, &mut s.ids);
    let class = *s.ids.pick(&["fast-ssd", "premium-rwo", "gp3-encrypted", "local-nvme"]);
    let t = s.at(s.t0, 200);
    let msg = format!("create Claim {claim} Pod {} in StatefulSet {} success", pod.name, w.app);
    s.controller(t, "statefulset-controller", &sts, NORMAL, "SuccessfulCreate", msg, Tag::NONE);
    let t1 = s.at(t + 20 * MILLI, 50);
    let msg = format!("create Pod {} in StatefulSet {} successful", pod.name, w.app);
    s.controller(t1, "statefulset-controller", &sts, NORMAL, "SuccessfulCreate", msg, Tag::NONE);
    let end = s.t0 + s.ids.range(10 * 60, 15 * 60) * SECOND;
    // The PV controller retries every resync (15 s).
    let mut at = s.at(t + 5 * MILLI, 20);
    let mut first = true;
    while at < end {
        let tag = if first { Tag::root(inc) } else { Tag::member(inc) };
        first = false;
        let msg = format!("storageclass.storage.k8s.io \"{class}\" not found");
        s.controller(at, "persistentvolume-controller", &pvc, WARNING, "ProvisioningFailed", msg, tag);
        at += 15 * SECOND + s.ids.jitter(200 * MILLI);
    }
    let total = s.cluster.nodes.len() + 1;
    let msg = format!(
        "0/{total} nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    );
    let mut at = s.at(t1 + 30 * MILLI, 100);
    let mut backoff = SECOND;
    while at < end {
        s.scheduler(at, &pod, WARNING, "FailedScheduling", "Scheduling", msg.clone(), Tag::member(inc));
        at += backoff;
        // After the queue back-off, unschedulable pods are retried at least every 5 min.
        backoff = if backoff < 10 * SECOND { backoff * 2 } else { 300 * SECOND };
    }
}
