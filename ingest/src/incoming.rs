//! From a parsed event to a raw record: the cluster it belongs to, whether the
//! caller may write there, and its deterministic identity. Both formats (Event
//! JSON, OTLP logs) end here, so the rules are written once.
//!
//! Deterministic ids (a client's retry is stored once): an event without
//! `metadata.uid` gets the hash of (cluster uid, its content) as uid; one without
//! `metadata.resourceVersion` gets the hash of its content as resourceVersion. A
//! retry of the same request therefore carries the same (cluster, uid,
//! resourceVersion), which the processor drops as a duplicate (its occurrence state,
//! `processor::occurrence`) and the sink would store under the same id
//! (`schemas::ids::event_version_id`). A client that updates one event (a higher
//! count, a new note) under its own uid gets a new resourceVersion per version, and
//! the processor counts the difference, as for a Kubernetes Event repeating. The
//! content includes the event's time, which is why a time is required.

use schemas::ids::stable_id;
use schemas::model::{ClusterId, NormalizedEvent};
use schemas::records::{CollectorMeta, RawRecord, WatchEvent, WatchKind};

use crate::auth::Caller;
use crate::error::ApiError;

/// Kubernetes' own limit on an Event's note (`note`, 1 kB).
pub const MAX_NOTE_BYTES: usize = 1024;

/// One event as a client sent it, with where it came from in the request.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The cluster's name and, when the request said it, its uid.
    pub cluster: Option<String>,
    pub cluster_uid: Option<String>,
    pub event: NormalizedEvent,
    /// Path of the event in the request (`items[2]`), for errors.
    pub path: String,
    /// Path of the field naming the cluster (`?cluster`, a resource attribute).
    pub cluster_field: String,
}

/// The configured clusters (name → uid), as [`crate::IngestConfig::clusters`].
pub trait ClusterUids {
    fn uid_of(&self, name: &str) -> Option<&str>;
}

impl ClusterUids for crate::IngestConfig {
    fn uid_of(&self, name: &str) -> Option<&str> {
        self.cluster_uid(name)
    }
}

/// The cluster of an event: the name from the request (or the caller's only
/// cluster), which the caller must be allowed to write, and its uid from the
/// config (or the request, when the config does not list it).
pub fn resolve_cluster(inc: &Incoming, caller: &Caller, uids: &dyn ClusterUids) -> Result<ClusterId, ApiError> {
    let name = match inc.cluster.as_deref().filter(|c| !c.is_empty()) {
        Some(n) => n,
        None => caller.scope.only_cluster().ok_or_else(|| {
            ApiError::bad(inc.cluster_field.clone(), "name the cluster the event is about (the token may write more than one)")
        })?,
    };
    if !caller.scope.allows_cluster(name) {
        return Err(ApiError::Forbidden { field: inc.cluster_field.clone(), reason: format!("token {} may not write cluster {name:?}", caller.name) });
    }
    let given = inc.cluster_uid.as_deref().filter(|u| !u.is_empty());
    let uid = match (uids.uid_of(name), given) {
        (Some(c), Some(g)) if c != g => {
            return Err(ApiError::bad(inc.cluster_field.clone(), format!("cluster {name:?} has uid {c:?} here, the request says {g:?}")))
        }
        (Some(c), _) => c,
        (None, Some(g)) => g,
        (None, None) => {
            return Err(ApiError::bad(inc.cluster_field.clone(), format!("unknown cluster {name:?}: not in this ingest's `clusters`, and the request gives no uid")))
        }
    };
    Ok(ClusterId { name: name.into(), uid: uid.into() })
}

/// Check the caller may write the event's namespace, fill what the Kubernetes API
/// server would (name, namespace, times) and the deterministic ids, and wrap it as
/// the raw record the processor reads.
pub fn into_record(mut inc: Incoming, caller: &Caller, uids: &dyn ClusterUids, instance: &str, now_us: i64) -> Result<RawRecord, ApiError> {
    let cluster = resolve_cluster(&inc, caller, uids)?;
    let ev = &mut inc.event;
    if ev.namespace.is_empty() {
        // Kubernetes puts events about cluster-scoped objects (a Node) in `default`.
        ev.namespace = if ev.regarding.namespace.is_empty() { "default".into() } else { ev.regarding.namespace.clone() };
    }
    // A cluster-scoped object (a Node) has no namespace of its own to check.
    for (ns, field) in [(&ev.namespace, "namespace"), (&ev.regarding.namespace, "regarding.namespace")] {
        let cluster_scoped = field == "regarding.namespace" && ns.is_empty();
        if !cluster_scoped && !caller.scope.allows_namespace(ns) {
            return Err(ApiError::Forbidden { field: format!("{}.{field}", inc.path), reason: format!("token {} may not write namespace {ns:?}", caller.name) });
        }
    }
    if ev.created_us == 0 {
        ev.created_us = ev.first_seen_us;
    }
    ev.last_seen_us = ev.last_seen_us.max(ev.first_seen_us);
    if ev.reporting_controller.is_empty() {
        ev.reporting_controller = caller.name.as_str().into();
    }
    assign_ids(ev, &cluster.uid);
    Ok(RawRecord {
        cluster,
        collector: CollectorMeta::ingest(instance),
        observed_us: now_us,
        // Not a watch's cursor: the collector's resume point never comes from here.
        resource_version: String::new(),
        event: Some(WatchEvent { kind: WatchKind::Added, event: Box::new(inc.event) }),
        heartbeat: None,
    })
}

/// uid, resourceVersion and name from the content when the client set none.
pub fn assign_ids(ev: &mut NormalizedEvent, cluster_uid: &str) {
    let mut content = ev.clone();
    content.uid = Default::default();
    content.resource_version = Default::default();
    content.name = Default::default();
    let text = serde_json::to_string(&content).expect("an event serializes");
    if ev.uid.is_empty() {
        ev.uid = stable_id(&["ingest-uid", cluster_uid, &text]).into();
    }
    if ev.resource_version.is_empty() {
        ev.resource_version = stable_id(&["ingest-rv", &text]).into();
    }
    if ev.name.is_empty() {
        ev.name = format!("{}.{}", ev.regarding.name, &ev.uid[..ev.uid.len().min(16)]).into();
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Tokens;
    use schemas::model::ObjectRef;

    struct Uids;
    impl ClusterUids for Uids {
        fn uid_of(&self, name: &str) -> Option<&str> {
            (name == "prod").then_some("uid-prod")
        }
    }

    fn incoming(cluster: Option<&str>, ns: &str) -> Incoming {
        Incoming {
            cluster: cluster.map(String::from),
            cluster_uid: None,
            event: NormalizedEvent {
                reason: "FailoverStarted".into(),
                event_type: "Normal".into(),
                note: "payment-gateway failover started".into(),
                regarding: ObjectRef { kind: "Deployment".into(), namespace: ns.into(), name: "payment-gateway".into(), ..Default::default() },
                first_seen_us: 1_700_000_000_000_000,
                count: 1,
                ..Default::default()
            },
            path: "items[0]".into(),
            cluster_field: "cluster".into(),
        }
    }

    #[test]
    fn ids_are_deterministic_and_scope_is_enforced() {
        let tokens = Tokens::parse("tokens:\n- {name: ci, token: aaaaaaaaaaaaaaaa-ci, clusters: [prod], namespaces: [pay]}\n- {name: all, token: bbbbbbbbbbbbbbbb-all, clusters: ['*'], namespaces: ['*']}\n").unwrap();
        let ci = tokens.authenticate("aaaaaaaaaaaaaaaa-ci").unwrap();
        let all = tokens.authenticate("bbbbbbbbbbbbbbbb-all").unwrap();
        let a = into_record(incoming(None, "pay"), &ci, &Uids, "i0", 1).unwrap();
        let b = into_record(incoming(Some("prod"), "pay"), &ci, &Uids, "i1", 2).unwrap();
        let (ea, eb) = (&a.event.as_ref().unwrap().event, &b.event.as_ref().unwrap().event);
        assert_eq!((&ea.uid, &ea.resource_version, &ea.name), (&eb.uid, &eb.resource_version, &eb.name), "a retry is the same event");
        assert_eq!((a.cluster.uid.as_str(), a.key(), ea.namespace.as_str(), ea.reporting_controller.as_str()), ("uid-prod", "uid-prod", "pay", "ci"));
        assert!(a.collector.is_ingest() && a.resource_version.is_empty());
        assert!(ea.name.starts_with("payment-gateway."));
        let mut later = incoming(None, "pay");
        later.event.first_seen_us += 1;
        let c = into_record(later, &ci, &Uids, "i0", 3).unwrap();
        assert_ne!(c.event.unwrap().event.uid, ea.uid, "another time is another event");

        let e = into_record(incoming(Some("dev"), "pay"), &ci, &Uids, "i0", 1).unwrap_err();
        assert!(matches!(&e, ApiError::Forbidden { field, .. } if field == "cluster"), "{e:?}");
        let e = into_record(incoming(None, "kube-system"), &ci, &Uids, "i0", 1).unwrap_err();
        assert!(matches!(&e, ApiError::Forbidden { field, .. } if field == "items[0].namespace"), "{e:?}");
        let e = into_record(incoming(None, "pay"), &all, &Uids, "i0", 1).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field: Some(f), .. } if f == "cluster"), "{e:?}");
        let e = into_record(incoming(Some("dev"), "pay"), &all, &Uids, "i0", 1).unwrap_err();
        assert!(e.to_string().contains("unknown cluster"), "{e}");
        let mut with_uid = incoming(Some("dev"), "pay");
        with_uid.cluster_uid = Some("uid-dev".into());
        assert_eq!(into_record(with_uid, &all, &Uids, "i0", 1).unwrap().cluster.uid, "uid-dev");
        let mut wrong = incoming(Some("prod"), "pay");
        wrong.cluster_uid = Some("other".into());
        assert!(into_record(wrong, &all, &Uids, "i0", 1).unwrap_err().to_string().contains("has uid"));
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
