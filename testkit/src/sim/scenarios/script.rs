//! The building blocks scenario generators write with: a [`Script`] of intents per
//! emitter, and the pod-lifecycle sequences every workload goes through.
//!
//! Reasons and message formats, by emitter (read from the real sources):
//! - kubelet: pkg/kubelet/events/event.go (reasons); pkg/kubelet/images/image_manager.go
//!   (`Pulling image %q`, `Successfully pulled image %q in %v (%v including waiting).
//!   Image size: %v bytes.`, `Container image %q already present on machine`,
//!   `Failed to pull image %q: %v`, `Back-off pulling image %q`);
//!   pkg/kubelet/kuberuntime/kuberuntime_container.go (`Created container: %s`,
//!   `Started container %s`, `Error: %v`, `Container %s failed liveness probe, will
//!   be restarted`, `Stopping container %s`); kuberuntime_manager.go (`Back-off
//!   restarting failed container %s in pod %s`, pod as `name_namespace(uid)`).
//! - deployment-controller: pkg/controller/deployment/sync.go (`Scaled up replica set
//!   %s to %d`, `Scaled %s replica set %s to %d from %d`).
//! - replicaset-controller, job-controller: pkg/controller/controller_utils.go
//!   (`SuccessfulCreate` `Created pod: %v`, `SuccessfulDelete` `Deleted pod: %v`).
//! - default-scheduler: pkg/scheduler/schedule_one.go (`Scheduled`/`Binding`
//!   `Successfully assigned %v/%v to %v`; `FailedScheduling`/`Scheduling`).

use crate::sim::objects::{ClusterCtx, ObjRef, SimNode, Workload};
use crate::sim::recorder::{Emitter, Intent, Tag};
use crate::sim::timeline::{go_duration_ms, Ids, Nanos, MILLI, SECOND};

pub(crate) const NORMAL: &str = "Normal";
pub(crate) const WARNING: &str = "Warning";

/// Intents of one scenario run, in the order they were written (sorted by time later).
pub(crate) struct Script {
    pub ids: Ids,
    pub cluster: ClusterCtx,
    pub ns: String,
    pub t0: Nanos,
    pub intents: Vec<Intent>,
    /// (name, kind) per incident; a tag's `incident` indexes this list.
    pub incidents: Vec<String>,
}

impl Script {
    pub fn new(seed: u64, cluster: ClusterCtx, ns: &str, t0: Nanos) -> Self {
        Script { ids: Ids::new(seed), cluster, ns: ns.to_string(), t0, intents: Vec::new(), incidents: Vec::new() }
    }

    /// Declares an incident; returns its index for [`Tag`]s.
    pub fn incident(&mut self, name: String) -> u16 {
        self.incidents.push(name);
        (self.incidents.len() - 1) as u16
    }

    /// `base` plus up to `max_ms` of jitter, so emitters never share a timestamp.
    pub fn at(&mut self, base: Nanos, max_ms: i64) -> Nanos {
        base + self.ids.jitter(max_ms.max(1) * MILLI)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn emit(
        &mut self,
        at: Nanos,
        emitter: Emitter,
        regarding: &ObjRef,
        related: Option<&ObjRef>,
        event_type: &'static str,
        reason: &'static str,
        action: &'static str,
        message: String,
        tag: Tag,
    ) {
        self.intents.push(Intent {
            at,
            emitter,
            regarding: regarding.clone(),
            related: related.cloned(),
            event_type,
            reason,
            action,
            message,
            tag,
        });
    }

    /// A kubelet event (legacy recorder, `source.host` = node name).
    #[allow(clippy::too_many_arguments)]
    pub fn kubelet(&mut self, at: Nanos, node: &SimNode, regarding: &ObjRef, t: &'static str, reason: &'static str, msg: String, tag: Tag) {
        let e = Emitter::Legacy { component: "kubelet", host: node.name.clone() };
        self.emit(at, e, regarding, None, t, reason, "", msg, tag);
    }

    /// A controller event (legacy recorder without host).
    #[allow(clippy::too_many_arguments)]
    pub fn controller(&mut self, at: Nanos, component: &'static str, regarding: &ObjRef, t: &'static str, reason: &'static str, msg: String, tag: Tag) {
        let e = Emitter::Legacy { component, host: String::new() };
        self.emit(at, e, regarding, None, t, reason, "", msg, tag);
    }

    /// A kube-scheduler event (new recorder).
    #[allow(clippy::too_many_arguments)]
    pub fn scheduler(&mut self, at: Nanos, pod: &ObjRef, t: &'static str, reason: &'static str, action: &'static str, msg: String, tag: Tag) {
        let e = Emitter::Series { controller: "default-scheduler", instance: self.cluster.scheduler_instance() };
        self.emit(at, e, pod, None, t, reason, action, msg, tag);
    }

    pub fn node(&mut self) -> SimNode {
        self.ids.pick(&self.cluster.nodes).clone()
    }

    // ----- lifecycle sequences -----

    /// A new ReplicaSet scaled up by its Deployment, and its pods created.
    /// Returns the pods and the time the last one was created.
    pub fn rollout(&mut self, t: Nanos, w: &Workload, replicas: usize, tag: Tag) -> (Vec<ObjRef>, Nanos) {
        let at = self.at(t, 50);
        let msg = format!("Scaled up replica set {} to {replicas}", w.replica_set.name);
        self.controller(at, "deployment-controller", &w.deployment, NORMAL, "ScalingReplicaSet", msg, tag);
        let mut pods = Vec::new();
        let mut last = at;
        for _ in 0..replicas {
            let pod = w.pod(&mut self.ids);
            last = self.at(last + 20 * MILLI, 80);
            let msg = format!("Created pod: {}", pod.name);
            self.controller(last, "replicaset-controller", &w.replica_set, NORMAL, "SuccessfulCreate", msg, tag);
            pods.push(pod);
        }
        (pods, last)
    }

    /// The scheduler binds a pod to a node.
    pub fn scheduled(&mut self, t: Nanos, pod: &ObjRef, node: &SimNode, tag: Tag) -> Nanos {
        let at = self.at(t + 5 * MILLI, 200);
        let msg = format!("Successfully assigned {}/{} to {}", pod.namespace, pod.name, node.name);
        self.scheduler(at, pod, NORMAL, "Scheduled", "Binding", msg, tag);
        at
    }

    /// Image pull (fresh or cached), create and start of one container. Returns the
    /// time the container started.
    #[allow(clippy::too_many_arguments)]
    pub fn start_container(&mut self, t: Nanos, node: &SimNode, pod: &ObjRef, container: &str, image: &str, fresh_pull: bool, tag: Tag) -> Nanos {
        let c = pod.container(container);
        let mut at = self.at(t + 300 * MILLI, 700);
        if fresh_pull {
            self.kubelet(at, node, &c, NORMAL, "Pulling", format!("Pulling image \"{image}\""), tag);
            let pull_ms = self.ids.range(400, 9000);
            let wait_ms = pull_ms + self.ids.range(0, 400);
            at += wait_ms * MILLI;
            let size = self.ids.range(8_000_000, 900_000_000);
            let msg = format!(
                "Successfully pulled image \"{image}\" in {} ({} including waiting). Image size: {size} bytes.",
                go_duration_ms(pull_ms),
                go_duration_ms(wait_ms)
            );
            self.kubelet(at, node, &c, NORMAL, "Pulled", msg, tag);
        } else {
            let msg = format!("Container image \"{image}\" already present on machine");
            self.kubelet(at, node, &c, NORMAL, "Pulled", msg, tag);
        }
        at = self.at(at + 40 * MILLI, 150);
        self.kubelet(at, node, &c, NORMAL, "Created", format!("Created container: {container}"), tag);
        at = self.at(at + 60 * MILLI, 300);
        self.kubelet(at, node, &c, NORMAL, "Started", format!("Started container {container}"), tag);
        at
    }

    /// Scheduled, then the container started: a healthy pod start.
    pub fn pod_start(&mut self, t: Nanos, pod: &ObjRef, node: &SimNode, w: &Workload, fresh_pull: bool) -> Nanos {
        let at = self.scheduled(t, pod, node, Tag::NONE);
        self.start_container(at, node, pod, &w.container, &w.image, fresh_pull, Tag::NONE)
    }

    /// The kubelet's restart back-off while a container waits to be restarted: one
    /// `BackOff` Warning per pod sync (about every 10–20 s) until `until`.
    pub fn restart_backoff(&mut self, from: Nanos, until: Nanos, node: &SimNode, pod: &ObjRef, container: &str, tag: Tag) {
        let msg = backoff_restart_message(container, pod);
        let mut t = self.at(from + SECOND, 2000);
        while t < until {
            self.kubelet(t, node, pod, WARNING, "BackOff", msg.clone(), tag);
            t += self.ids.range(10, 20) * SECOND + self.ids.jitter(SECOND);
        }
    }
}

/// kuberuntime_manager.go `doBackOff`: the pod as `format.Pod` prints it.
pub(crate) fn backoff_restart_message(container: &str, pod: &ObjRef) -> String {
    format!("Back-off restarting failed container {container} in pod {}_{}({})", pod.name, pod.namespace, pod.uid)
}

/// The kubelet's container restart back-off: 10 s doubling to 5 min
/// (pkg/kubelet/kubelet.go `backOffPeriod`, `MaxContainerBackOff`).
pub(crate) fn restart_delay(restart: u32) -> Nanos {
    (10 * SECOND).saturating_mul(1 << restart.min(5)).min(300 * SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_double_to_five_minutes() {
        assert_eq!(restart_delay(0), 10 * SECOND);
        assert_eq!(restart_delay(1), 20 * SECOND);
        assert_eq!(restart_delay(4), 160 * SECOND);
        assert_eq!(restart_delay(5), 300 * SECOND);
        assert_eq!(restart_delay(9), 300 * SECOND);
    }

    #[test]
    fn backoff_message_names_pod_like_format_pod() {
        let mut ids = Ids::new(1);
        let p = ObjRef::new("Pod", "v1", "shop", "web-1", &mut ids);
        let m = backoff_restart_message("app", &p);
        assert_eq!(m, format!("Back-off restarting failed container app in pod web-1_shop({})", p.uid));
    }
}
