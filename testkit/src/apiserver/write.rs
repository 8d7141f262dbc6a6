//! Event writes through the API, in both shapes: `POST` a collection (201, 409
//! AlreadyExists) and `PUT` one Event (200; 404 NotFound; 409 Conflict when the body's
//! `metadata.resourceVersion` is stale), as client-go's recorders and kubectl do. The body
//! is the request path's shape; the answer is the stored object in that shape. Tests use it
//! to drive the test server and kube-apiserver with the same client code
//! (collector/tests/conformance.rs). Writes are not validated (kube-apiserver requires,
//! e.g., `eventTime`, `reportingController` and `action` on events.k8s.io/v1 creates).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;

use super::shapes::{from_events_v1, object_json, Shape};
use super::status::{json_response, ApiError};
use super::AppState;

const RESOURCE: &str = "events";

fn parse(shape: Shape, body: &Bytes) -> Result<core::Event, ApiError> {
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("error decoding Event: {e}"));
    match shape {
        Shape::Core => serde_json::from_slice::<core::Event>(body).map_err(bad),
        Shape::EventsV1 => serde_json::from_slice::<events::Event>(body).map(|e| from_events_v1(&e)).map_err(bad),
    }
}

fn check_namespace(ns: &str, ev: &mut core::Event) -> Result<(), ApiError> {
    match ev.metadata.namespace.as_deref() {
        Some(n) if !n.is_empty() && n != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            ev.metadata.namespace = Some(ns.to_string());
            Ok(())
        }
    }
}

fn stored(app: &AppState, shape: Shape, ns: &str, name: &str, status: StatusCode) -> Response {
    let ev = app.store.get(ns, name).expect("just written");
    let mut r = json_response(object_json(&ev, shape));
    *r.status_mut() = status;
    r
}

fn create(app: AppState, shape: Shape, ns: String, body: Bytes) -> Response {
    let result = parse(shape, &body).and_then(|mut ev| {
        check_namespace(&ns, &mut ev)?;
        let name = ev.metadata.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| ApiError::invalid("metadata.name: Required value"))?;
        if app.store.get(&ns, &name).is_some() {
            return Err(ApiError::already_exists(shape.group(), RESOURCE, &name));
        }
        ev.metadata.uid = None;
        ev.metadata.resource_version = None;
        ev.metadata.creation_timestamp = None;
        app.store.apply(ev);
        Ok(name)
    });
    match result {
        Ok(name) => stored(&app, shape, &ns, &name, StatusCode::CREATED),
        Err(e) => e.into_response(),
    }
}

fn update(app: AppState, shape: Shape, ns: String, name: String, body: Bytes) -> Response {
    let result = parse(shape, &body).and_then(|mut ev| {
        check_namespace(&ns, &mut ev)?;
        if ev.metadata.name.as_deref().is_some_and(|n| n != name) {
            return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
        }
        let current = app.store.get(&ns, &name).ok_or_else(|| ApiError::not_found(shape.group(), RESOURCE, &name))?;
        let sent = ev.metadata.resource_version.as_deref().filter(|v| !v.is_empty());
        if sent.is_some_and(|v| Some(v) != current.metadata.resource_version.as_deref()) {
            return Err(ApiError::conflict(shape.group(), RESOURCE, &name));
        }
        ev.metadata.name = Some(name.clone());
        ev.metadata.uid = current.metadata.uid.clone();
        ev.metadata.creation_timestamp = current.metadata.creation_timestamp.clone();
        app.store.apply(ev);
        Ok(())
    });
    match result {
        Ok(()) => stored(&app, shape, &ns, &name, StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn core_create(State(app): State<AppState>, Path(ns): Path<String>, body: Bytes) -> Response {
    create(app, Shape::Core, ns, body)
}

pub(crate) async fn v1_create(State(app): State<AppState>, Path(ns): Path<String>, body: Bytes) -> Response {
    create(app, Shape::EventsV1, ns, body)
}

pub(crate) async fn core_update(State(app): State<AppState>, Path((ns, name)): Path<(String, String)>, body: Bytes) -> Response {
    update(app, Shape::Core, ns, name, body)
}

pub(crate) async fn v1_update(State(app): State<AppState>, Path((ns, name)): Path<(String, String)>, body: Bytes) -> Response {
    update(app, Shape::EventsV1, ns, name, body)
}
