//! How an event is linked to others: the identities it exposes.
//!
//! Events carry no owner references, so links are derived from what they do
//! carry (names, UIDs, messages):
//! - **self**: the involved object, plus objects the event names or implies —
//!   a controller's child ("Created pod: x" → Pod x, "Scaled up replica set
//!   r" → ReplicaSet r, "Created job j" → Job j), the pods a StatefulSet claim
//!   belongs to (`data-web-0` → Pod `web-0`), the scale target of an HPA (the
//!   Deployment of the same name, the convention `kubectl autoscale` follows).
//! - **ancestors**: the owner chain — ReplicaSet and Deployment from a pod's
//!   name, and parents learned from controllers' own events (a Job's "Created
//!   pod: x" makes the Job pod x's parent, which is how Job and StatefulSet
//!   pods, whose names say nothing, get an owner). The chain stops at a Job:
//!   each run of a CronJob is its own story.
//! - **node**: the node the event is about or was reported from.
//! - **cluster**: one key per cluster, for time-window links.
//!
//! Identities are 64-bit hashes (xxh3 of cluster uid, kind, namespace, name):
//! the index never stores strings, and a lookup allocates nothing.

use rustc_hash::FxHashMap;
use schemas::model::NormalizedEvent;
use schemas::metadata::Metadata;
use std::collections::VecDeque;
use xxhash_rust::xxh3::xxh3_64;

use crate::metadata::owner::{guess_owner, guess_replica_set};

/// How an effect may be linked to an incident. Bit flags of [`Via`].
pub type ViaSet = u8;

/// One way of linking, from most to least specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Via {
    Object = 1,
    Owner = 2,
    Node = 4,
    Cluster = 8,
}

impl Via {
    pub const ALL: [Via; 4] = [Via::Object, Via::Owner, Via::Node, Via::Cluster];

    pub fn parse(s: &str) -> Option<Via> {
        Some(match s {
            "object" => Via::Object,
            "owner" => Via::Owner,
            "node" => Via::Node,
            "cluster" => Via::Cluster,
            _ => return None,
        })
    }

    pub fn bit(self) -> ViaSet {
        self as u8
    }
}

/// What an index key stands for: an object the incident's events are about
/// (`SelfObj`), one in their owner chains (`Ancestor`), a node, a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KeyClass {
    SelfObj = 1,
    Ancestor = 2,
    Node = 3,
    Cluster = 4,
}

/// An index key: class in the low byte of a hashed identity.
pub type Key = u64;

fn key(class: KeyClass, id: u64) -> Key {
    (id & !0xff) | class as u64
}

/// Hash of an object identity within a cluster.
pub fn object_id(cluster: &str, kind: &str, namespace: &str, name: &str) -> u64 {
    schemas::ids::with_joined(&[cluster, kind, namespace, name], 0, xxh3_64)
}

fn node_id(cluster: &str, node: &str) -> u64 {
    object_id(cluster, "\0node", "", node)
}

fn cluster_id(cluster: &str) -> u64 {
    object_id(cluster, "\0cluster", "", "")
}

/// The identities of one event, computed once per event.
#[derive(Debug, Default, Clone)]
pub struct Identities {
    pub selves: Vec<u64>,
    pub ancestors: Vec<u64>,
    /// Kinds in the owner chain (for `owner_kind` matchers).
    pub ancestor_kinds: Vec<&'static str>,
    pub node: Option<u64>,
    pub cluster: u64,
}

impl Identities {
    /// Keys to look up for one way of linking (the event side).
    pub fn lookup_keys(&self, via: Via, out: &mut Vec<Key>) {
        out.clear();
        match via {
            Via::Object => out.extend(self.selves.iter().map(|i| key(KeyClass::SelfObj, *i))),
            Via::Owner => {
                for i in self.selves.iter().chain(&self.ancestors) {
                    out.push(key(KeyClass::SelfObj, *i));
                    out.push(key(KeyClass::Ancestor, *i));
                }
            }
            Via::Node => out.extend(self.node.map(|n| key(KeyClass::Node, n))),
            Via::Cluster => out.push(key(KeyClass::Cluster, self.cluster)),
        }
    }

    /// Keys an incident registers for a member event, given the ways its rule
    /// links (node and cluster keys only when the rule uses them: a node key
    /// per kubelet event would otherwise fill the index for nothing).
    pub fn register_keys(&self, uses: ViaSet, out: &mut Vec<Key>) {
        out.clear();
        out.extend(self.selves.iter().map(|i| key(KeyClass::SelfObj, *i)));
        out.extend(self.ancestors.iter().map(|i| key(KeyClass::Ancestor, *i)));
        if uses & Via::Node.bit() != 0 {
            out.extend(self.node.map(|n| key(KeyClass::Node, n)));
        }
        if uses & Via::Cluster.bit() != 0 {
            out.push(key(KeyClass::Cluster, self.cluster));
        }
    }
}

/// The kind of object a controller's `child` names.
fn child_kind(parent_kind: &str, reason: &str) -> Option<&'static str> {
    match parent_kind {
        "ReplicaSet" | "Job" | "StatefulSet" | "DaemonSet" | "ReplicationController" => Some("Pod"),
        "CronJob" => Some("Job"),
        "Deployment" if reason == "ScalingReplicaSet" => Some("ReplicaSet"),
        _ => None,
    }
}

fn static_kind(kind: &str) -> &'static str {
    match kind {
        "Pod" => "Pod",
        "ReplicaSet" => "ReplicaSet",
        "Deployment" => "Deployment",
        "Job" => "Job",
        "CronJob" => "CronJob",
        "StatefulSet" => "StatefulSet",
        "DaemonSet" => "DaemonSet",
        "ReplicationController" => "ReplicationController",
        _ => "",
    }
}

/// Parents learned from controllers' events: child object id → (kind, name)
/// of its parent. Bounded: the oldest links go first (a pod's parent matters
/// while the pod lives; a week-old "Created pod" is not worth memory).
#[derive(Debug)]
pub struct LearnedParents {
    map: FxHashMap<u64, (&'static str, Box<str>)>,
    order: VecDeque<u64>,
    cap: usize,
}

impl LearnedParents {
    pub fn new(cap: usize) -> Self {
        LearnedParents { map: FxHashMap::default(), order: VecDeque::new(), cap: cap.max(1) }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn learn(&mut self, child: u64, parent_kind: &'static str, parent_name: &str) {
        if self.map.insert(child, (parent_kind, parent_name.into())).is_none() {
            self.order.push_back(child);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn parent(&self, child: u64) -> Option<(&'static str, &str)> {
        self.map.get(&child).map(|(k, n)| (*k, &**n))
    }
}

/// Computes an event's identities into `ids` (reused: no allocation once its
/// vectors have grown), and learns parent links from it.
pub fn identities_into(cluster: &str, ev: &NormalizedEvent, meta: &Metadata, learned: &mut LearnedParents, ids: &mut Identities) {
    let r = &ev.regarding;
    let ns = if r.namespace.is_empty() { ev.namespace.as_str() } else { r.namespace.as_str() };
    let ns = if r.kind == "Node" { "" } else { ns };
    ids.selves.clear();
    ids.ancestors.clear();
    ids.ancestor_kinds.clear();
    ids.cluster = cluster_id(cluster);
    ids.selves.push(object_id(cluster, &r.kind, ns, &r.name));

    // Children named in the message; the controller is their parent.
    if let (Some(child), Some(kind)) = (meta.get("child"), child_kind(&r.kind, &ev.reason)) {
        let child_id = object_id(cluster, kind, ns, child);
        ids.selves.push(child_id);
        let parent_kind = static_kind(&r.kind);
        if !parent_kind.is_empty() && (ev.reason.starts_with("Successful") || ev.reason == "ScalingReplicaSet") {
            learned.learn(child_id, parent_kind, &r.name);
        }
    }
    // A StatefulSet claim `<template>-<set>-<ordinal>` belongs to pod `<set>-<ordinal>`.
    let claim = if r.kind == "PersistentVolumeClaim" { Some(r.name.as_str()) } else { meta.get("claim") };
    if let Some(claim) = claim {
        let mut rest = claim;
        while let Some((_, tail)) = rest.split_once('-') {
            if tail.contains('-') && tail.rsplit('-').next().is_some_and(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit())) {
                ids.selves.push(object_id(cluster, "Pod", ns, tail));
            }
            rest = tail;
        }
    }
    if r.kind == "HorizontalPodAutoscaler" {
        ids.selves.push(object_id(cluster, "Deployment", ns, &r.name));
    }
    // The owner chain, up to three steps (Pod → ReplicaSet → Deployment,
    // Pod → Job → CronJob). Names are borrowed from the event or the learned
    // links: nothing is allocated.
    let mut kind: &str = &r.kind;
    let mut name: &str = &r.name;
    let mut id = ids.selves[0];
    for _ in 0..3 {
        let next = match learned.parent(id) {
            Some(p) => Some(p),
            None if kind == "Pod" => guess_replica_set(name).map(|rs| ("ReplicaSet", rs)).or_else(|| guess_owner(kind, name)),
            None => guess_owner(kind, name),
        };
        let Some((k, n)) = next else { break };
        id = object_id(cluster, k, ns, n);
        ids.ancestors.push(id);
        ids.ancestor_kinds.push(k);
        if k == "Job" {
            // Each run of a CronJob is its own story: a Job's pods, the Job and
            // the CronJob's note about that Job ("Saw completed job: j") link
            // through the Job; the next run's failures are a new incident.
            break;
        }
        kind = k;
        name = n;
    }
    // A Job's pod `<job>-<5>` whose parent was not learned (the Job's "Created
    // pod" event is missing or expired): the Job it may belong to, as a link
    // only (no kind: `owner_kind: Job` needs the parent known).
    if r.kind == "Pod" && !ids.ancestor_kinds.contains(&"Job") && guess_replica_set(&r.name).is_none() {
        if let Some((job, suffix)) = r.name.rsplit_once('-') {
            if !job.is_empty() && suffix.len() == 5 && suffix.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)) {
                ids.ancestors.push(object_id(cluster, "Job", ns, job));
            }
        }
    }
    let node = if r.kind == "Node" { Some(r.name.as_str()) } else { meta.get("node") };
    ids.node = node.filter(|n| !n.is_empty()).map(|n| node_id(cluster, n));
}

/// [`identities_into`] a new value (tests, one-off callers).
pub fn identities(cluster: &str, ev: &NormalizedEvent, meta: &Metadata, learned: &mut LearnedParents) -> Identities {
    let mut ids = Identities::default();
    identities_into(cluster, ev, meta, learned, &mut ids);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::model::ObjectRef;

    fn ev(kind: &str, name: &str, reason: &str) -> NormalizedEvent {
        NormalizedEvent {
            namespace: "shop".into(),
            reason: reason.into(),
            regarding: ObjectRef { kind: kind.into(), namespace: "shop".into(), name: name.into(), ..Default::default() },
            ..Default::default()
        }
    }

    fn meta(pairs: &[(&str, &str)]) -> Metadata {
        pairs.iter().copied().collect()
    }

    #[test]
    fn deployment_pods_share_replicaset_and_deployment() {
        let mut l = LearnedParents::new(10);
        let a = identities("c", &ev("Pod", "web-6f9c8d7b5-x2kqp", "BackOff"), &meta(&[]), &mut l);
        let b = identities("c", &ev("Pod", "web-6f9c8d7b5-zz4kq", "BackOff"), &meta(&[]), &mut l);
        assert_eq!(a.ancestors, b.ancestors);
        assert_eq!(a.ancestor_kinds, vec!["ReplicaSet", "Deployment"]);
        let rs = identities("c", &ev("ReplicaSet", "web-6f9c8d7b5", "SuccessfulCreate"), &meta(&[("child", "web-6f9c8d7b5-new12")]), &mut l);
        assert_eq!(rs.selves[0], a.ancestors[0], "the ReplicaSet itself is the pods' ancestor");
        assert_ne!(identities("other", &ev("Pod", "web-6f9c8d7b5-x2kqp", "BackOff"), &meta(&[]), &mut l).selves, a.selves);
    }

    #[test]
    fn job_parents_are_learned_from_the_controller() {
        let mut l = LearnedParents::new(10);
        let pod = identities("c", &ev("Pod", "report-x2kqp", "BackOff"), &meta(&[]), &mut l);
        assert!(pod.ancestor_kinds.is_empty(), "a Job pod's name says nothing sure");
        assert_eq!(pod.ancestors, vec![object_id("c", "Job", "shop", "report")], "but may name its Job, as a link only");
        identities("c", &ev("Job", "report-28956720", "SuccessfulCreate"), &meta(&[("child", "report-28956720-x2kqp")]), &mut l);
        let pod = identities("c", &ev("Pod", "report-28956720-x2kqp", "BackOff"), &meta(&[]), &mut l);
        assert_eq!(pod.ancestor_kinds, vec!["Job"], "the chain stops at the Job: each CronJob run is its own story");
        let cron = identities("c", &ev("CronJob", "report", "SawCompletedJob"), &meta(&[("child", "report-28956720")]), &mut l);
        assert_eq!(cron.selves[1], pod.ancestors[0], "the CronJob's note names the Job");
    }

    #[test]
    fn claims_name_their_pods_and_hpas_their_targets() {
        let mut l = LearnedParents::new(10);
        let pvc = identities("c", &ev("PersistentVolumeClaim", "data-web-0", "ProvisioningFailed"), &meta(&[]), &mut l);
        let pod = identities("c", &ev("Pod", "web-0", "FailedScheduling"), &meta(&[]), &mut l);
        assert!(pvc.selves.contains(&pod.selves[0]));
        let hpa = identities("c", &ev("HorizontalPodAutoscaler", "web", "SuccessfulRescale"), &meta(&[]), &mut l);
        let dep = identities("c", &ev("Deployment", "web", "ScalingReplicaSet"), &meta(&[]), &mut l);
        assert!(hpa.selves.contains(&dep.selves[0]));
    }

    #[test]
    fn learned_links_are_bounded() {
        let mut l = LearnedParents::new(3);
        for i in 0..10 {
            identities("c", &ev("ReplicaSet", "web-6f9c8d7b5", "SuccessfulCreate"), &meta(&[("child", &format!("p{i}"))]), &mut l);
        }
        assert_eq!(l.len(), 3);
    }
}
