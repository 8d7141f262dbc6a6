//! Scenarios inside one workload: the healthy rollout and the incidents a single
//! Deployment's pods run into.
//!
//! Emitters and their sources (reasons and formats are copied from them):
//! - kubelet images: pkg/kubelet/images/image_manager.go — `Pulling`, `Pulled`,
//!   `Failed` (`Failed to pull image %q: %v`), `BackOff` Normal (`Back-off pulling
//!   image %q`); kuberuntime_container.go — `Failed` `Error: ErrImagePull` /
//!   `Error: ImagePullBackOff`.
//! - kubelet probes: pkg/kubelet/prober/prober.go — `Unhealthy` `%s probe failed: %s`;
//!   kuberuntime_container.go — `Killing` `Container %s failed liveness probe, will be
//!   restarted`.
//! - kubelet volumes: pkg/kubelet/volumemanager (`FailedMount` `Unable to attach or
//!   mount volumes: unmounted volumes=%v, unattached volumes=%v, failed to process
//!   volumes=%v: %v`), operationexecutor (`MountVolume.SetUp failed for volume %q : %v`).
//! - node-problem-detector kernel-monitor: config/kernel-monitor.json — `OOMKilling`
//!   (pattern `Killed process \d+ (.+) total-vm:\d+kB, anon-rss:\d+kB, file-rss:\d+kB.*`),
//!   recorded on the Node (pkg/exporters/k8sexporter/problemclient).
//! - horizontal-pod-autoscaler: pkg/controller/podautoscaler/horizontal.go —
//!   `SuccessfulRescale` `New size: %d; reason: %s`.

use super::script::{backoff_restart_message, restart_delay, Script, NORMAL, WARNING};
use crate::sim::objects::{ObjRef, Workload};
use crate::sim::recorder::Tag;
use crate::sim::timeline::{MILLI, SECOND};

/// Deployment → ReplicaSet → pods, all healthy; sometimes the old ReplicaSet is
/// scaled down afterwards. No incident.
pub(crate) fn healthy_rollout(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let n = s.ids.range(2, 5) as usize;
    let (pods, t) = s.rollout(s.t0, &w, n, Tag::NONE);
    let fresh = s.ids.chance(0.5);
    let mut last = t;
    for pod in &pods {
        let node = s.node();
        let at = s.at(t, 1500);
        last = last.max(s.pod_start(at, pod, &node, &w, fresh));
    }
    if s.ids.chance(0.6) {
        // The previous ReplicaSet goes away once the new pods are available.
        let old = Workload::new(&mut s.ids, &s.ns.clone());
        let old_rs = ObjRef { name: format!("{}-{}", w.app, s.ids.suffix(10)), ..old.replica_set.clone() };
        let at = s.at(last + 5 * SECOND, 3000);
        let msg = format!("Scaled down replica set {} to 0 from {n}", old_rs.name);
        s.controller(at, "deployment-controller", &w.deployment, NORMAL, "ScalingReplicaSet", msg, Tag::NONE);
        for _ in 0..n {
            let pod = ObjRef::new("Pod", "v1", &s.ns.clone(), &format!("{}-{}", old_rs.name, s.ids.suffix(5)), &mut s.ids);
            let node = s.node();
            let t1 = s.at(at + 30 * MILLI, 200);
            s.controller(t1, "replicaset-controller", &old_rs, NORMAL, "SuccessfulDelete", format!("Deleted pod: {}", pod.name), Tag::NONE);
            let t2 = s.at(t1 + 50 * MILLI, 300);
            s.kubelet(t2, &node, &pod.container(&w.container), NORMAL, "Killing", format!("Stopping container {}", w.container), Tag::NONE);
        }
    }
}

/// A rollout to an image tag that does not exist.
pub(crate) fn image_pull_failure(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let inc = s.incident(format!("image-pull-failure {}/{}", w.namespace(), w.app));
    let repo = w.image.rsplit_once(':').map(|(r, _)| r.to_string()).unwrap_or(w.image.clone());
    let bad = format!("{repo}:{}", s.ids.pick(&["2.0.0-rc1", "latest-fix", "v1.31.0", "sha-3f9a2c1"]));
    let replicas = s.ids.range(1, 3) as usize;
    let (pods, t) = s.rollout(s.t0, &w, replicas, Tag::NONE);
    let end = s.t0 + s.ids.range(8 * 60, 12 * 60) * SECOND;
    for pod in &pods {
        // Each pod's first failure may be the root: the earliest in time is (see `render`).
        let mut first = true;
        let node = s.node();
        let c = pod.container(&w.container);
        let mut at = s.scheduled(t, pod, &node, Tag::NONE);
        let mut attempt = 0u32;
        while at < end {
            at = s.at(at + 400 * MILLI, 600);
            s.kubelet(at, &node, &c, NORMAL, "Pulling", format!("Pulling image \"{bad}\""), Tag::NONE);
            at = s.at(at + 800 * MILLI, 1500);
            let tag = if first { Tag::root(inc) } else { Tag::member(inc) };
            first = false;
            let msg = format!(
                "Failed to pull image \"{bad}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{bad}\": failed to resolve reference \"{bad}\": {bad}: not found"
            );
            s.kubelet(at, &node, &c, WARNING, "Failed", msg, tag);
            s.kubelet(at + MILLI, &node, &c, WARNING, "Failed", "Error: ErrImagePull".into(), Tag::member(inc));
            // Pull back-off: 10 s doubling to 5 min; every pod sync in between reports it.
            let until = at + restart_delay(attempt);
            let mut sync = s.at(at + 10 * SECOND, 3000);
            while sync < until.min(end) {
                s.kubelet(sync, &node, &c, NORMAL, "BackOff", format!("Back-off pulling image \"{bad}\""), Tag::member(inc));
                s.kubelet(sync + MILLI, &node, &c, WARNING, "Failed", "Error: ImagePullBackOff".into(), Tag::member(inc));
                sync += s.ids.range(10, 16) * SECOND;
            }
            at = until;
            attempt += 1;
        }
    }
}

/// A container that exits right after it starts, restarted with growing back-off.
pub(crate) fn crash_loop(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let inc = s.incident(format!("crash-loop {}/{}", w.namespace(), w.app));
    let replicas = s.ids.range(1, 3) as usize;
    let (pods, t) = s.rollout(s.t0, &w, replicas, Tag::NONE);
    let end = s.t0 + s.ids.range(8 * 60, 12 * 60) * SECOND;
    let fresh = s.ids.chance(0.5);
    for pod in &pods {
        // Each pod's first failure may be the root: the earliest in time is (see `render`).
        let mut first = true;
        let node = s.node();
        let mut started = s.pod_start(t, pod, &node, &w, fresh);
        let mut restart = 0u32;
        while started < end {
            let exited = started + s.ids.range(1, 6) * SECOND;
            let until = exited + restart_delay(restart);
            let from = s.ids.jitter(SECOND);
            let first_backoff = s.at(exited + from, 500);
            let tag = if first { Tag::root(inc) } else { Tag::member(inc) };
            first = false;
            s.kubelet(first_backoff, &node, pod, WARNING, "BackOff", backoff_restart_message(&w.container, pod), tag);
            s.restart_backoff(first_backoff, until.min(end), &node, pod, &w.container, Tag::member(inc));
            restart += 1;
            started = s.start_container(until, &node, pod, &w.container, &w.image, false, Tag::NONE);
        }
    }
}

/// Liveness probe failures: three failures, a kill, a restart; later restarts back off.
pub(crate) fn liveness_failure(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let inc = s.incident(format!("liveness-failure {}/{}", w.namespace(), w.app));
    let replicas = s.ids.range(1, 2) as usize;
    let (pods, t) = s.rollout(s.t0, &w, replicas, Tag::NONE);
    let cycles = s.ids.range(3, 5) as u32;
    for pod in &pods {
        // Each pod's first failure may be the root: the earliest in time is (see `render`).
        let mut first = true;
        let node = s.node();
        let c = pod.container(&w.container);
        let ip = s.ids.pod_ip();
        let failure = match s.ids.range(0, 2) {
            0 => "HTTP probe failed with statuscode: 500".to_string(),
            1 => format!("Get \"http://{ip}:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
            _ => format!("Get \"http://{ip}:8080/healthz\": dial tcp {ip}:8080: connect: connection refused"),
        };
        let fresh = s.ids.chance(0.3);
        let mut started = s.pod_start(t, pod, &node, &w, fresh);
        for cycle in 0..cycles {
            // initialDelaySeconds/periodSeconds 10, failureThreshold 3.
            let mut at = started + s.ids.range(30, 90) * SECOND;
            for _ in 0..3 {
                let tag = if first { Tag::root(inc) } else { Tag::member(inc) };
                first = false;
                s.kubelet(at, &node, &c, WARNING, "Unhealthy", format!("Liveness probe failed: {failure}"), tag);
                at = s.at(at + 10 * SECOND, 50);
            }
            let kill = at - 10 * SECOND + 2 * MILLI;
            let msg = format!("Container {} failed liveness probe, will be restarted", w.container);
            s.kubelet(kill, &node, &c, NORMAL, "Killing", msg, Tag::member(inc));
            let exited = kill + s.ids.range(1, 30) * SECOND;
            let restart_at = if cycle == 0 {
                exited
            } else {
                let until = exited + restart_delay(cycle - 1);
                let b = s.at(exited, 800);
                s.kubelet(b, &node, pod, WARNING, "BackOff", backoff_restart_message(&w.container, pod), Tag::member(inc));
                s.restart_backoff(b, until, &node, pod, &w.container, Tag::member(inc));
                until
            };
            started = s.start_container(restart_at, &node, pod, &w.container, &w.image, false, Tag::NONE);
        }
    }
}

/// A pod whose secret volume does not exist: mount retries with exponential back-off
/// (500 ms doubling to 2m2s) and the volume manager's 2m3s wait timing out; the pod
/// stays in ContainerCreating.
pub(crate) fn failed_mount(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let inc = s.incident(format!("failed-mount {}/{}", w.namespace(), w.app));
    let (pods, t) = s.rollout(s.t0, &w, 1, Tag::NONE);
    let pod = &pods[0];
    let node = s.node();
    let secret = format!("{}-{}", w.app, s.ids.pick(&["data", "credentials", "tls"]));
    let scheduled = s.scheduled(t, pod, &node, Tag::NONE);
    let end = s.t0 + s.ids.range(10 * 60, 15 * 60) * SECOND;
    let setup = format!("MountVolume.SetUp failed for volume \"data\" : secret \"{secret}\" not found");
    let mut at = s.at(scheduled + 200 * MILLI, 300);
    let mut delay = 500 * MILLI;
    let mut first = true;
    while at < end {
        let tag = if first { Tag::root(inc) } else { Tag::member(inc) };
        first = false;
        s.kubelet(at, &node, pod, WARNING, "FailedMount", setup.clone(), tag);
        at += delay;
        delay = (delay * 2).min(122 * SECOND);
    }
    let timeout = "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[]: timed out waiting for the condition";
    let mut at = scheduled + 123 * SECOND;
    while at < end {
        let t1 = s.at(at, 400);
        s.kubelet(t1, &node, pod, WARNING, "FailedMount", timeout.into(), Tag::member(inc));
        at += 123 * SECOND + s.ids.jitter(5 * SECOND);
    }
}

/// Several replicas on one node exceed their memory limit; node-problem-detector
/// reports each kernel OOM kill on the Node (aggregated once ten distinct messages
/// arrive within ten minutes), the kubelet restarts and then backs off.
pub(crate) fn oom_kill(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let inc = s.incident(format!("oom-kill {}/{}", w.namespace(), w.app));
    let node = s.node();
    let node_ref = node.controller_ref();
    let replicas = s.ids.range(2, 4) as usize;
    let (pods, t) = s.rollout(s.t0, &w, replicas, Tag::NONE);
    let end = s.t0 + s.ids.range(9 * 60, 12 * 60) * SECOND;
    let process = *s.ids.pick(&["java", "node", "python3", "ruby"]);
    for pod in &pods {
        // Each pod's first failure may be the root: the earliest in time is (see `render`).
        let mut first = true;
        let mut started = s.pod_start(t, pod, &node, &w, false);
        let mut restart = 0u32;
        while started < end {
            let oom = started + s.ids.range(20, 60) * SECOND;
            let msg = format!(
                "Memory cgroup out of memory: Killed process {} ({process}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:0kB, UID:1000 pgtables:{}kB oom_score_adj:{}",
                s.ids.range(2000, 60000),
                s.ids.range(2_000_000, 6_000_000),
                s.ids.range(520_000, 530_000),
                s.ids.range(10_000, 40_000),
                s.ids.range(1500, 4000),
                s.ids.range(900, 999)
            );
            let tag = if first { Tag::root(inc) } else { Tag::member(inc) };
            first = false;
            let e = crate::sim::recorder::Emitter::Legacy { component: "kernel-monitor", host: node.name.clone() };
            s.emit(oom, e, &node_ref, None, WARNING, "OOMKilling", "", msg, tag);
            let exited = s.at(oom + 100 * MILLI, 400);
            let restart_at = if restart == 0 {
                exited
            } else {
                let until = exited + restart_delay(restart - 1);
                s.kubelet(exited + MILLI, &node, pod, WARNING, "BackOff", backoff_restart_message(&w.container, pod), Tag::member(inc));
                s.restart_backoff(exited, until.min(end), &node, pod, &w.container, Tag::member(inc));
                until
            };
            restart += 1;
            started = s.start_container(restart_at, &node, pod, &w.container, &w.image, false, Tag::NONE);
        }
    }
}

/// The HPA raises the replica count; the Deployment scales its ReplicaSet and the new
/// pods start. The rescale is the root; the scale-up events are its effects.
pub(crate) fn hpa_scaling(s: &mut Script) {
    let w = Workload::new(&mut s.ids, &s.ns.clone());
    let inc = s.incident(format!("hpa-scaling {}/{}", w.namespace(), w.app));
    let hpa = ObjRef::new("HorizontalPodAutoscaler", "autoscaling/v2", &s.ns.clone(), &w.app, &mut s.ids);
    let from = s.ids.range(2, 4);
    let to = from + s.ids.range(1, 4);
    let at = s.at(s.t0, 200);
    let msg = format!("New size: {to}; reason: cpu resource utilization (percentage of request) above target");
    s.controller(at, "horizontal-pod-autoscaler", &hpa, NORMAL, "SuccessfulRescale", msg, Tag::root(inc));
    let at = s.at(at + 30 * MILLI, 100);
    let msg = format!("Scaled up replica set {} to {to} from {from}", w.replica_set.name);
    s.controller(at, "deployment-controller", &w.deployment, NORMAL, "ScalingReplicaSet", msg, Tag::member(inc));
    let mut t = at;
    for _ in from..to {
        let pod = w.pod(&mut s.ids);
        t = s.at(t + 20 * MILLI, 80);
        s.controller(t, "replicaset-controller", &w.replica_set, NORMAL, "SuccessfulCreate", format!("Created pod: {}", pod.name), Tag::member(inc));
        let node = s.node();
        s.pod_start(t, &pod, &node, &w, false);
    }
}
