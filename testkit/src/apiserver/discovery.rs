//! Cluster identity and discovery: `/version`, `/api`, `/apis`, the group-version resource
//! lists, health endpoints, and `GET /api/v1/namespaces/{name}` (kube-system's UID is the
//! cluster UID that fleet tools use as cluster identity).

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResource, APIResourceList, APIVersions, GroupVersionForDiscovery,
    ServerAddressByClientCIDR,
};
use k8s_openapi::apimachinery::pkg::version::Info;

use super::status::{json_of, ApiError};
use super::AppState;

/// The Kubernetes version the server claims (k8s-openapi's `v1_33` feature).
pub const GIT_VERSION: &str = "v1.33.4";

pub(crate) async fn version() -> Response {
    json_of(&Info {
        major: "1".into(),
        minor: "33".into(),
        git_version: GIT_VERSION.into(),
        git_commit: "74cdb426e0ea8b7a1aab3ef8c1e2e2e8d4ab6b8c".into(),
        git_tree_state: "clean".into(),
        build_date: "2025-08-12T18:00:00Z".into(),
        go_version: "go1.24.5".into(),
        compiler: "gc".into(),
        platform: "linux/amd64".into(),
        emulation_major: None,
        emulation_minor: None,
        min_compatibility_major: None,
        min_compatibility_minor: None,
    })
}

pub(crate) async fn api(State(app): State<AppState>) -> Response {
    json_of(&APIVersions {
        versions: vec!["v1".into()],
        server_address_by_client_cidrs: vec![ServerAddressByClientCIDR {
            client_cidr: "0.0.0.0/0".into(),
            server_address: app.addr.to_string(),
        }],
    })
}

fn group(name: &str) -> APIGroup {
    let gv = GroupVersionForDiscovery {
        group_version: format!("{name}/v1"),
        version: "v1".into(),
    };
    APIGroup {
        name: name.into(),
        preferred_version: Some(gv.clone()),
        server_address_by_client_cidrs: None,
        versions: vec![gv],
    }
}

pub(crate) async fn apis() -> Response {
    json_of(&APIGroupList {
        groups: vec![group("events.k8s.io"), group("coordination.k8s.io")],
    })
}

fn resource(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> APIResource {
    APIResource {
        name: name.into(),
        singular_name: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];

pub(crate) async fn core_v1() -> Response {
    json_of(&APIResourceList {
        group_version: "v1".into(),
        resources: vec![
            resource("events", "Event", true, READ),
            resource("namespaces", "Namespace", false, &["get"]),
        ],
    })
}

pub(crate) async fn events_v1() -> Response {
    json_of(&APIResourceList {
        group_version: "events.k8s.io/v1".into(),
        resources: vec![resource("events", "Event", true, READ)],
    })
}

pub(crate) async fn coordination_v1() -> Response {
    json_of(&APIResourceList {
        group_version: "coordination.k8s.io/v1".into(),
        resources: vec![resource(
            "leases",
            "Lease",
            true,
            &["create", "delete", "get", "list", "update"],
        )],
    })
}

pub(crate) async fn namespace(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    match app.store.namespace(&name) {
        Some(ns) => json_of(&ns),
        None => ApiError::not_found("", "namespaces", &name).into_response(),
    }
}

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Unknown paths: the real server's 404 Status.
pub(crate) async fn fallback(uri: Uri) -> Response {
    let mut e = ApiError::not_found("", "", "");
    e.message = "the server could not find the requested resource".into();
    e.details = None;
    tracing::debug!(%uri, "no route");
    e.into_response()
}
