//! An incident's timeline lanes: one per affected object, grouped by owner
//! chain (Deployment → ReplicaSet → Pods, CronJob → Job → Pods, Node → its
//! pods), so the page reads as "this workload, these replicas, these pods".
//!
//! Events carry no owner references; the links come from what the processor
//! already extracted (`processor/src/metadata`): `owner_kind`/`owner_name`
//! (guessed from generated names), `child` (the object a controller event
//! names: "Created pod: web-6f9c8d7b5-x2kqp"), and `node` (where a pod runs).
//! A pod goes under its Node when that Node is part of the same incident (a
//! node failure and what it took down); otherwise under its workload. An owner
//! without events of its own in the incident is still drawn, as a group lane.

use super::model::Event;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// An object, as lanes and the page's object table know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub cluster: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn of(e: &Event) -> Self {
        ObjKey { cluster: e.cluster.clone(), kind: e.kind.clone(), namespace: e.namespace.clone(), name: e.name.clone() }
    }
    fn with(&self, kind: &str, namespace: &str, name: &str) -> Self {
        ObjKey { cluster: self.cluster.clone(), kind: kind.into(), namespace: namespace.into(), name: name.into() }
    }
}

/// What every event of the report says about owners, children and nodes.
#[derive(Default)]
pub struct Owners {
    owner: HashMap<ObjKey, (String, String)>,
    node: HashMap<ObjKey, String>,
    /// (cluster, namespace, child name) → the controller object that named it.
    controller_of: HashMap<(String, String, String), ObjKey>,
}

impl Owners {
    pub fn of(events: &[Event]) -> Self {
        let mut o = Owners::default();
        for e in events {
            let k = ObjKey::of(e);
            if let (Some(kind), Some(name)) = (e.meta("owner_kind"), e.meta("owner_name")) {
                o.owner.entry(k.clone()).or_insert_with(|| (kind.to_string(), name.to_string()));
            }
            if let Some(n) = e.meta("node") {
                if e.kind == "Pod" {
                    o.node.entry(k.clone()).or_insert_with(|| n.to_string());
                }
            }
            if let Some(child) = e.meta("child") {
                if child != e.name {
                    o.controller_of.entry((e.cluster.clone(), e.namespace.clone(), child.to_string())).or_insert(k);
                }
            }
        }
        o
    }

    /// The object `k` is drawn under, if any.
    fn parent(&self, k: &ObjKey, in_incident: &HashSet<ObjKey>) -> Option<ObjKey> {
        if k.kind == "Pod" {
            if let Some(n) = self.node.get(k) {
                let node = k.with("Node", "", n);
                if in_incident.contains(&node) {
                    return Some(node);
                }
            }
        }
        if let Some(c) = self.controller_of.get(&(k.cluster.clone(), k.namespace.clone(), k.name.clone())) {
            if c.kind != k.kind {
                return Some(c.clone());
            }
        }
        let strip = |name: &str| name.rsplit_once('-').map(|(base, _)| base.to_string());
        match (k.kind.as_str(), self.owner.get(k)) {
            ("Pod", Some((kind, _))) if kind == "Deployment" => strip(&k.name).map(|rs| k.with("ReplicaSet", &k.namespace, &rs)),
            ("Pod", Some((kind, _))) if kind == "CronJob" => strip(&k.name).map(|job| k.with("Job", &k.namespace, &job)),
            ("ReplicaSet", Some((kind, name))) if kind == "Deployment" => Some(k.with("Deployment", &k.namespace, name)),
            ("Job", Some((kind, name))) if kind == "CronJob" => Some(k.with("CronJob", &k.namespace, name)),
            _ => None,
        }
    }
}

/// One row of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub object: ObjKey,
    pub depth: u32,
    /// False for an owner drawn only to group the objects below it.
    pub has_events: bool,
}

/// The lanes of one incident's events, owners before what they own, each
/// level in order of its first event.
pub fn lanes(members: &[&Event], owners: &Owners) -> Vec<Lane> {
    let mut first: BTreeMap<ObjKey, i64> = BTreeMap::new();
    for e in members {
        let t = first.entry(ObjKey::of(e)).or_insert(e.first_ms);
        *t = (*t).min(e.first_ms);
    }
    let with_events: HashSet<ObjKey> = first.keys().cloned().collect();
    let mut parent: HashMap<ObjKey, ObjKey> = HashMap::new();
    let mut nodes: BTreeSet<ObjKey> = with_events.iter().cloned().collect();
    for k in &with_events {
        let mut cur = k.clone();
        let mut seen = HashSet::from([cur.clone()]);
        while let Some(p) = owners.parent(&cur, &with_events) {
            if !seen.insert(p.clone()) || parent.contains_key(&cur) {
                break;
            }
            parent.insert(cur.clone(), p.clone());
            nodes.insert(p.clone());
            cur = p;
        }
    }
    // A group's time is its earliest descendant's.
    let mut time: HashMap<ObjKey, i64> = HashMap::new();
    for (k, t) in &first {
        let mut cur = Some(k.clone());
        let mut hops = 0;
        while let Some(c) = cur {
            let e = time.entry(c.clone()).or_insert(*t);
            *e = (*e).min(*t);
            cur = parent.get(&c).cloned();
            hops += 1;
            if hops > 16 {
                break;
            }
        }
    }
    let mut children: HashMap<Option<ObjKey>, Vec<ObjKey>> = HashMap::new();
    for n in &nodes {
        children.entry(parent.get(n).cloned()).or_default().push(n.clone());
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| (time.get(a), a).cmp(&(time.get(b), b)));
    }
    let mut out = Vec::with_capacity(nodes.len());
    let mut stack: Vec<(ObjKey, u32)> = children.get(&None).into_iter().flatten().rev().map(|k| (k.clone(), 0)).collect();
    let mut emitted = HashSet::new();
    while let Some((k, depth)) = stack.pop() {
        if !emitted.insert(k.clone()) {
            continue;
        }
        if let Some(cs) = children.get(&Some(k.clone())) {
            stack.extend(cs.iter().rev().map(|c| (c.clone(), depth + 1)));
        }
        out.push(Lane { has_events: with_events.contains(&k), object: k, depth });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, ns: &str, name: &str, t: i64, meta: &[(&str, &str)]) -> Event {
        Event {
            cluster: "c".into(),
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            first_ms: t,
            metadata: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    fn show(ls: &[Lane]) -> Vec<String> {
        ls.iter().map(|l| format!("{}{} {}{}", "  ".repeat(l.depth as usize), l.object.kind, l.object.name, if l.has_events { "" } else { " (group)" })).collect()
    }

    #[test]
    fn deployment_replicaset_pods() {
        let dep = [("owner_kind", "Deployment"), ("owner_name", "web")];
        let events = vec![
            ev("Pod", "a", "web-6f9c8d7b5-x2kqp", 3, &dep),
            ev("Pod", "a", "web-6f9c8d7b5-bbbbb", 2, &dep),
            ev("ReplicaSet", "a", "web-6f9c8d7b5", 1, &dep),
            ev("Pod", "a", "db-0", 5, &[]),
        ];
        let owners = Owners::of(&events);
        let refs: Vec<&Event> = events.iter().collect();
        assert_eq!(
            show(&lanes(&refs, &owners)),
            vec![
                "Deployment web (group)",
                "  ReplicaSet web-6f9c8d7b5",
                "    Pod web-6f9c8d7b5-bbbbb",
                "    Pod web-6f9c8d7b5-x2kqp",
                "Pod db-0",
            ]
        );
    }

    #[test]
    fn pods_under_their_node_when_the_node_is_in_the_incident_and_controllers_over_children() {
        let events = vec![
            ev("Node", "", "n1", 1, &[]),
            ev("Pod", "a", "db-0", 3, &[("node", "n1")]),
            ev("Pod", "a", "api-0", 4, &[("node", "n2")]),
            ev("StatefulSet", "a", "api", 2, &[("child", "api-0")]),
        ];
        let owners = Owners::of(&events);
        let refs: Vec<&Event> = events.iter().collect();
        assert_eq!(show(&lanes(&refs, &owners)), vec!["Node n1", "  Pod db-0", "StatefulSet api", "  Pod api-0"]);
        // Without the node in the incident, the pod stands alone.
        let refs: Vec<&Event> = events[1..2].iter().collect();
        assert_eq!(show(&lanes(&refs, &owners)), vec!["Pod db-0"]);
    }
}
