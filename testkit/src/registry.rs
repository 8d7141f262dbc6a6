//! A small Confluent-compatible schema registry for tests: the part of the REST API
//! kevents uses (register a schema under a subject, look a schema up by id), with
//! the registry's semantics — an id per distinct schema, the same id when the same
//! schema is registered again, under any subject — and optional basic auth.
//! Confluent's registry is a Java service no package registry here offers; this
//! stands in for it the way the test API server stands in for Kubernetes.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    /// schema text → id
    ids: BTreeMap<String, u32>,
    /// id → schema text
    schemas: BTreeMap<u32, String>,
    /// subject → ids registered under it, in order
    subjects: BTreeMap<String, Vec<u32>>,
    /// Expected `Authorization` header, if auth is on.
    auth: Option<String>,
}

/// A running registry. Dropping it stops the server.
pub struct Registry {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

type Shared = Arc<Mutex<Inner>>;

fn authorized(s: &Shared, headers: &HeaderMap) -> bool {
    match &s.lock().unwrap().auth {
        None => true,
        Some(want) => headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str()),
    }
}

fn error(code: StatusCode, error_code: u32, message: &str) -> (StatusCode, Json<Value>) {
    (code, Json(json!({"error_code": error_code, "message": message})))
}

async fn register(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, 401, "Unauthorized");
    }
    let Some(schema) = body.get("schema").and_then(|v| v.as_str()) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    };
    if serde_json::from_str::<Value>(schema).is_err() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    }
    let mut st = s.lock().unwrap();
    let next = st.ids.len() as u32 + 1;
    let id = *st.ids.entry(schema.to_string()).or_insert(next);
    st.schemas.insert(id, schema.to_string());
    let versions = st.subjects.entry(subject).or_default();
    if !versions.contains(&id) {
        versions.push(id);
    }
    (StatusCode::OK, Json(json!({ "id": id })))
}

async fn by_id(State(s): State<Shared>, Path(id): Path<u32>) -> (StatusCode, Json<Value>) {
    match s.lock().unwrap().schemas.get(&id) {
        Some(schema) => (StatusCode::OK, Json(json!({ "schema": schema }))),
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}

async fn subjects(State(s): State<Shared>) -> Json<Value> {
    Json(json!(s.lock().unwrap().subjects.keys().collect::<Vec<_>>()))
}

impl Registry {
    /// Start on a free loopback port; `basic_auth` = Some((user, password)) requires it.
    pub async fn start(basic_auth: Option<(&str, &str)>) -> std::io::Result<Registry> {
        use base64::Engine;
        let inner: Shared = Arc::new(Mutex::new(Inner {
            auth: basic_auth.map(|(u, p)| {
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
            }),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/schemas/ids/{id}", get(by_id))
            .route("/subjects", get(subjects))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Registry { addr, inner, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Subjects with the ids registered under each.
    pub fn subjects(&self) -> BTreeMap<String, Vec<u32>> {
        self.inner.lock().unwrap().subjects.clone()
    }

    /// Register an unrelated schema first, so kevents' ids differ from its built-in ones.
    pub fn preload(&self, schema: &str) -> u32 {
        let mut st = self.inner.lock().unwrap();
        let next = st.ids.len() as u32 + 1;
        let id = *st.ids.entry(schema.to_string()).or_insert(next);
        st.schemas.insert(id, schema.to_string());
        id
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.task.abort();
    }
}
