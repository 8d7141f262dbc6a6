//! `coordination.k8s.io/v1` Leases, for the collector's leader election: GET, POST
//! (409 AlreadyExists), PUT with optimistic concurrency (409 Conflict on a stale
//! `metadata.resourceVersion`), DELETE and list. They share the Events' resourceVersion
//! counter, as every object in etcd does.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Time};
use k8s_openapi::List;

use super::status::{json_of, ApiError};
use super::store::{Key, Store};
use super::AppState;

const GROUP: &str = "coordination.k8s.io";
const RESOURCE: &str = "leases";

/// All Leases of a cluster by (namespace, name).
#[derive(Default)]
pub(crate) struct LeaseTable {
    items: BTreeMap<Key, Lease>,
}

impl LeaseTable {
    /// Forget Leases written after `rv` (an etcd restore to that revision).
    pub fn retain_through(&mut self, rv: u64) {
        self.items.retain(|_, l| {
            l.metadata
                .resource_version
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                <= rv
        });
    }
}

fn lock(store: &Store) -> std::sync::MutexGuard<'_, LeaseTable> {
    store.inner.leases.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// The current version of a Lease.
    pub fn get_lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        lock(self)
            .items
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub(crate) fn create_lease(
        &self,
        namespace: &str,
        mut lease: Lease,
    ) -> Result<Lease, ApiError> {
        let name = lease.metadata.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
            ApiError::invalid("Lease.coordination.k8s.io \"\" is invalid: metadata.name: Required value: name or generateName is required")
        })?;
        check_namespace(namespace, &lease)?;
        let mut table = lock(self);
        let key = (namespace.to_string(), name.clone());
        if table.items.contains_key(&key) {
            return Err(ApiError::already_exists(GROUP, RESOURCE, &name));
        }
        let m = &mut lease.metadata;
        m.namespace = Some(namespace.to_string());
        m.uid = Some(self.new_uid());
        m.creation_timestamp = Some(Time(super::store::now()));
        m.resource_version = Some(self.next_rv().to_string());
        table.items.insert(key, lease.clone());
        Ok(lease)
    }

    pub(crate) fn update_lease(
        &self,
        namespace: &str,
        name: &str,
        mut lease: Lease,
    ) -> Result<Lease, ApiError> {
        check_namespace(namespace, &lease)?;
        let body_name = lease.metadata.name.clone().unwrap_or_default();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut table = lock(self);
        let key = (namespace.to_string(), name.to_string());
        let current = table
            .items
            .get(&key)
            .ok_or_else(|| ApiError::not_found(GROUP, RESOURCE, name))?;
        let sent_rv = lease.metadata.resource_version.clone().unwrap_or_default();
        // An empty resourceVersion is an unconditional update; any other must be current.
        if !sent_rv.is_empty() && Some(&sent_rv) != current.metadata.resource_version.as_ref() {
            return Err(ApiError::conflict(GROUP, RESOURCE, name));
        }
        let m = &mut lease.metadata;
        m.namespace = Some(namespace.to_string());
        m.uid = current.metadata.uid.clone();
        m.creation_timestamp = current.metadata.creation_timestamp.clone();
        m.resource_version = Some(self.next_rv().to_string());
        table.items.insert(key, lease.clone());
        Ok(lease)
    }

    pub(crate) fn delete_lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        let removed = lock(self)
            .items
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.next_rv();
        Some(removed)
    }

    pub(crate) fn list_leases(&self, namespace: &str) -> Vec<Lease> {
        lock(self)
            .items
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, l)| l.clone())
            .collect()
    }
}

fn check_namespace(namespace: &str, lease: &Lease) -> Result<(), ApiError> {
    match lease.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() && ns != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn parse_body(body: &Bytes) -> Result<Lease, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding Lease: {e}")))
}

fn created(lease: &Lease) -> Response {
    let mut r = json_of(lease);
    *r.status_mut() = axum::http::StatusCode::CREATED;
    r
}

pub(crate) async fn get(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match app.store.get_lease(&ns, &name) {
        Some(l) => json_of(&l),
        None => ApiError::not_found(GROUP, RESOURCE, &name).into_response(),
    }
}

pub(crate) async fn create(
    State(app): State<AppState>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Response {
    match parse_body(&body).and_then(|l| app.store.create_lease(&ns, l)) {
        Ok(l) => created(&l),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn update(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match parse_body(&body).and_then(|l| app.store.update_lease(&ns, &name, l)) {
        Ok(l) => json_of(&l),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn delete(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match app.store.delete_lease(&ns, &name) {
        Some(l) => json_of(&l),
        None => ApiError::not_found(GROUP, RESOURCE, &name).into_response(),
    }
}

pub(crate) async fn list(State(app): State<AppState>, Path(ns): Path<String>) -> Response {
    let list = List::<Lease> {
        items: app.store.list_leases(&ns),
        metadata: ListMeta {
            resource_version: Some(app.store.current_rv().to_string()),
            ..Default::default()
        },
    };
    json_of(&list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lease(name: &str, rv: Option<&str>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: rv.map(String::from),
                ..Default::default()
            },
            spec: None,
        }
    }

    #[test]
    fn optimistic_concurrency() {
        let s = Store::new(10, None, 64, "c".repeat(36));
        let l = s.create_lease("ns", lease("lead", None)).unwrap();
        assert_eq!(
            s.create_lease("ns", lease("lead", None))
                .unwrap_err()
                .reason,
            "AlreadyExists"
        );
        let rv = l.metadata.resource_version.clone().unwrap();
        let l2 = s
            .update_lease("ns", "lead", lease("lead", Some(&rv)))
            .unwrap();
        let err = s
            .update_lease("ns", "lead", lease("lead", Some(&rv)))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        assert_eq!(l2.metadata.uid, l.metadata.uid);
        assert_eq!(
            s.update_lease("ns", "x", lease("x", None))
                .unwrap_err()
                .code,
            404
        );
        assert_eq!(s.list_leases("ns").len(), 1);
    }
}
