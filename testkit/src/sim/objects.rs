//! The Kubernetes objects events are about, and the cluster they live in.
//!
//! Emitters build `involvedObject` with `reference.GetReference`, which copies kind,
//! namespace, name, uid, apiVersion and resourceVersion of the object; the kubelet adds
//! `fieldPath: spec.containers{NAME}` for container events. The kubelet's own Node
//! reference is special: it sets `uid` to the node *name* (kubelet.go `nodeRef`),
//! while controllers use the Node's real uid. Generators keep those differences.

use super::timeline::{stable_uid, Ids};
use k8s_openapi::api::core::v1::ObjectReference;

/// A reference to an object, as emitters put it into `involvedObject` / `regarding`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub field_path: String,
}

impl ObjRef {
    pub fn new(kind: &'static str, api_version: &'static str, namespace: &str, name: &str, ids: &mut Ids) -> Self {
        ObjRef {
            kind,
            api_version,
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: ids.uuid(),
            resource_version: ids.range(10_000, 9_999_999).to_string(),
            field_path: String::new(),
        }
    }

    /// The same object with `fieldPath` pointing at one container (kubelet container events).
    pub fn container(&self, container: &str) -> Self {
        ObjRef { field_path: format!("spec.containers{{{container}}}"), ..self.clone() }
    }

    /// The namespace the Event object is written to: the object's, or `default` for
    /// cluster-scoped objects (client-go `makeEvent`).
    pub fn event_namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// A stable string key (client-go keys caches on every reference field).
    pub(crate) fn key(&self) -> String {
        format!(
            "{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}",
            self.kind, self.api_version, self.namespace, self.name, self.uid, self.resource_version, self.field_path
        )
    }

    /// The key without `fieldPath` and `resourceVersion`: what the spam filter and the
    /// aggregator group by (client-go `getSpamKey`, `EventAggregatorByReasonFunc`).
    pub(crate) fn object_key(&self) -> String {
        format!("{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}", self.kind, self.api_version, self.namespace, self.name, self.uid)
    }

    pub fn to_k8s(&self) -> ObjectReference {
        fn opt(s: &str) -> Option<String> {
            (!s.is_empty()).then(|| s.to_string())
        }
        ObjectReference {
            api_version: opt(self.api_version),
            field_path: opt(&self.field_path),
            kind: opt(self.kind),
            name: opt(&self.name),
            namespace: opt(&self.namespace),
            resource_version: opt(&self.resource_version),
            uid: opt(&self.uid),
        }
    }
}

/// A Node of a simulated cluster. Its uid is derived from the cluster and node name so
/// every scenario of one cluster agrees on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimNode {
    pub name: String,
    pub uid: String,
}

impl SimNode {
    /// The Node as controllers reference it (real uid).
    pub fn controller_ref(&self) -> ObjRef {
        ObjRef {
            kind: "Node",
            api_version: "v1",
            namespace: String::new(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            resource_version: String::new(),
            field_path: String::new(),
        }
    }

    /// The Node as the kubelet references it: `uid` is the node name, no apiVersion
    /// (pkg/kubelet/kubelet.go: `&v1.ObjectReference{Kind: "Node", Name: nodeName,
    /// UID: types.UID(nodeName), Namespace: ""}`).
    pub fn kubelet_ref(&self) -> ObjRef {
        ObjRef {
            kind: "Node",
            api_version: "",
            namespace: String::new(),
            name: self.name.clone(),
            uid: self.name.clone(),
            resource_version: String::new(),
            field_path: String::new(),
        }
    }
}

/// What a scenario needs to know about the cluster it plays in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCtx {
    /// Cluster name (only used to derive stable node uids).
    pub name: String,
    pub nodes: Vec<SimNode>,
    /// Host name of the control-plane node; the scheduler's `reportingInstance` is
    /// `default-scheduler-<hostname>` (client-go tools/events `NewRecorder`).
    pub control_plane_host: String,
    /// The cluster-autoscaler node group new nodes join.
    pub node_group: String,
}

impl ClusterCtx {
    /// A cluster with `workers` nodes named `<cluster>-worker-<i>`.
    pub fn new(name: &str, workers: usize) -> Self {
        let workers = workers.max(2);
        let nodes = (1..=workers)
            .map(|i| {
                let n = format!("{name}-worker-{i}");
                SimNode { uid: stable_uid(&format!("{name}/{n}")), name: n }
            })
            .collect();
        ClusterCtx {
            name: name.to_string(),
            nodes,
            control_plane_host: format!("{name}-control-plane"),
            node_group: format!("{name}-pool-1"),
        }
    }

    pub fn scheduler_instance(&self) -> String {
        format!("default-scheduler-{}", self.control_plane_host)
    }

    /// A node that joins the cluster later (cluster-autoscaler scale-up).
    pub fn new_node(&self, ids: &mut Ids) -> SimNode {
        let n = format!("{}-worker-{}", self.name, ids.suffix(5));
        SimNode { uid: stable_uid(&format!("{}/{n}", self.name)), name: n }
    }
}

/// Workload base names the generators choose from.
pub(crate) const APPS: &[&str] = &[
    "checkout", "cart", "payments", "search", "catalog", "auth", "orders", "inventory", "frontend",
    "recommendations", "shipping", "notifications", "ledger", "profile", "pricing", "reviews",
];

/// Namespaces the fleet spreads scenarios over.
pub const NAMESPACES: &[&str] = &["shop", "payments", "platform", "data", "web", "batch"];

/// A Deployment with its current ReplicaSet, and the pods created from it.
#[derive(Debug, Clone)]
pub struct Workload {
    pub app: String,
    pub deployment: ObjRef,
    pub replica_set: ObjRef,
    pub container: String,
    pub image: String,
}

impl Workload {
    pub fn new(ids: &mut Ids, namespace: &str) -> Self {
        let base = *ids.pick(APPS);
        let app = format!("{base}-{}", ids.suffix(4));
        let hash = ids.suffix(10);
        let deployment = ObjRef::new("Deployment", "apps/v1", namespace, &app, ids);
        let replica_set = ObjRef::new("ReplicaSet", "apps/v1", namespace, &format!("{app}-{hash}"), ids);
        let image = format!(
            "registry.example.com/{namespace}/{base}:1.{}.{}",
            ids.range(0, 30),
            ids.range(0, 9)
        );
        Workload { app, deployment, replica_set, container: base.to_string(), image }
    }

    /// A new pod of this workload's ReplicaSet (`<rs>-<5 chars>`).
    pub fn pod(&self, ids: &mut Ids) -> ObjRef {
        let name = format!("{}-{}", self.replica_set.name, ids.suffix(5));
        ObjRef::new("Pod", "v1", &self.replica_set.namespace, &name, ids)
    }

    pub fn namespace(&self) -> &str {
        &self.deployment.namespace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ref_sets_field_path() {
        let mut ids = Ids::new(1);
        let p = ObjRef::new("Pod", "v1", "ns", "p", &mut ids);
        assert_eq!(p.container("app").field_path, "spec.containers{app}");
        assert_eq!(p.container("app").object_key(), p.object_key());
        assert_ne!(p.container("app").key(), p.key());
    }

    #[test]
    fn cluster_nodes_are_stable_per_cluster() {
        let a = ClusterCtx::new("sim-1", 3);
        assert_eq!(a, ClusterCtx::new("sim-1", 3));
        assert_ne!(a.nodes[0].uid, ClusterCtx::new("sim-2", 3).nodes[0].uid);
        assert_eq!(a.nodes[0].kubelet_ref().uid, a.nodes[0].name);
        assert_eq!(a.nodes[0].controller_ref().event_namespace(), "default");
    }

    #[test]
    fn pods_belong_to_their_replica_set() {
        let mut ids = Ids::new(2);
        let w = Workload::new(&mut ids, "shop");
        let p = w.pod(&mut ids);
        assert!(p.name.starts_with(&w.replica_set.name));
        assert!(w.replica_set.name.starts_with(&w.app));
    }
}
