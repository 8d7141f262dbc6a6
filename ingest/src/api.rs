//! The HTTP API: routes, and the one path every request takes.
//!
//! `POST /v1/events` (Event JSON, [`crate::events`]) and `POST /v1/logs` (OTLP,
//! [`crate::otlp`]) both go: authenticate (401) → a cheap rate check (429) → read
//! the body (413 beyond `max_body_bytes`) → parse (400 with the field) → batch size
//! (413) → cluster, scope and ids per event (400, 403; [`crate::incoming`]) → take
//! the batch's events from the token's bucket (429 with `Retry-After`) → publish and
//! wait for Kafka's acknowledgement (503 when it does not come). Nothing is sent
//! before every event of the batch passed every check.
//!
//! Also served: `GET /openapi.json` (this API, OpenAPI 3), and the ops routes
//! (`/healthz`, `/readyz`, `/metrics`) of [`runtime::ops`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::{bearer, Caller, Tokens};
use crate::error::ApiError;
use crate::incoming::{into_record, Incoming};
use crate::metrics::{EndpointLabel, Metrics, RejectLabel, RequestLabel};
use crate::otlp::Encoding;
use crate::publish::Publisher;
use crate::ratelimit::{retry_after_secs, RateLimiter, Refusal};
use crate::IngestConfig;

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What every request handler shares.
pub struct Api {
    pub cfg: IngestConfig,
    pub instance: String,
    pub tokens: Tokens,
    pub limiter: RateLimiter,
    pub publisher: Publisher,
    pub metrics: Metrics,
}

/// The answer to an accepted request of `/v1/events`.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub accepted: usize,
    pub events: Vec<AcceptedEvent>,
}

/// One stored event: what the pipeline will call it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedEvent {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
}

/// The API routes plus the ops routes.
pub fn router(api: Arc<Api>, ops: Router) -> Router {
    let limit = api.cfg.max_body_bytes;
    Router::new()
        .route("/v1/events", post(events))
        .route("/v1/logs", post(logs))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
        .merge(ops)
}

async fn events(State(api): State<Arc<Api>>, query: Result<Query<crate::events::Target>, axum::extract::rejection::QueryRejection>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let _in_flight = api.in_flight();
    let result = async {
        let Query(target) = query.map_err(|e| ApiError::BadRequest { field: Some("query".into()), reason: e.body_text() })?;
        api.accept("events", &headers, body, |bytes| crate::events::parse(bytes, &target)).await
    }
    .await;
    let resp = match result {
        Ok(accepted) => (StatusCode::OK, axum::Json(accepted)).into_response(),
        Err(e) => api.refused("events", e),
    };
    api.answered("events", resp, started)
}

async fn logs(State(api): State<Arc<Api>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let _in_flight = api.in_flight();
    let encoding = Encoding::from_content_type(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()));
    let result = match encoding {
        Ok(enc) => api.accept("logs", &headers, body, |bytes| crate::otlp::to_incoming(&crate::otlp::decode(bytes, enc)?)).await.map(|_| enc),
        Err(e) => Err(e),
    };
    let resp = match result {
        // OTLP/HTTP: the response message in the request's encoding; nothing was
        // partially accepted (a batch is whole or refused).
        Ok(Encoding::Protobuf) => ([(header::CONTENT_TYPE, "application/x-protobuf")], prost::Message::encode_to_vec(&ExportLogsServiceResponse::default())).into_response(),
        Ok(Encoding::Json) => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
        Err(e) => api.refused("logs", e),
    };
    api.answered("logs", resp, started)
}

impl Api {
    fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = bearer(headers.get(header::AUTHORIZATION)).ok_or(ApiError::Unauthorized("missing bearer token (Authorization: Bearer <token>)"))?;
        self.tokens.authenticate(token).ok_or(ApiError::Unauthorized("unknown token"))
    }

    fn rate_refusal(&self, caller: &Caller, r: Refusal) -> ApiError {
        match r {
            Refusal::RetryAfter(d) => ApiError::RateLimited { token: caller.name.clone(), retry_after_secs: retry_after_secs(d) },
            Refusal::TooLarge { burst } => ApiError::TooLarge(format!("more events than token {}'s burst of {burst}", caller.name)),
        }
    }

    /// The path every request takes (see the module doc).
    async fn accept(&self, endpoint: &str, headers: &HeaderMap, body: Result<Bytes, BytesRejection>, parse: impl FnOnce(&[u8]) -> Result<Vec<Incoming>, ApiError>) -> Result<Accepted, ApiError> {
        let caller = self.authenticate(headers)?;
        self.limiter.has_room(caller.index).map_err(|r| self.rate_refusal(&caller, r))?;
        let body = body.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!("the body is larger than {} bytes", self.cfg.max_body_bytes))
            } else {
                ApiError::BadRequest { field: None, reason: e.body_text() }
            }
        })?;
        let incoming = parse(&body)?;
        if incoming.len() > self.cfg.max_batch_events {
            return Err(ApiError::TooLarge(format!("{} events; at most {} per request", incoming.len(), self.cfg.max_batch_events)));
        }
        let now = now_us();
        let records = incoming.into_iter().map(|inc| into_record(inc, &caller, &self.cfg, &self.instance, now)).collect::<Result<Vec<_>, _>>()?;
        if records.is_empty() {
            return Ok(Accepted { accepted: 0, events: vec![] });
        }
        self.limiter.take(caller.index, records.len()).map_err(|r| self.rate_refusal(&caller, r))?;
        let sent = Instant::now();
        self.publisher.publish(&records).await?;
        self.metrics.publish_seconds.observe(sent.elapsed().as_secs_f64());
        let events = records
            .iter()
            .filter_map(|r| {
                let e = &r.event.as_ref()?.event;
                Some(AcceptedEvent { cluster: r.cluster.name.to_string(), namespace: e.namespace.to_string(), name: e.name.to_string(), uid: e.uid.to_string(), resource_version: e.resource_version.to_string() })
            })
            .collect::<Vec<_>>();
        self.stored(endpoint, events.len());
        tracing::debug!(token = %caller.name, events = events.len(), "stored");
        Ok(Accepted { accepted: events.len(), events })
    }

    /// Counts the request in `in_flight` until the guard drops.
    fn in_flight(&self) -> InFlight {
        self.metrics.in_flight.inc();
        InFlight(self.metrics.in_flight.clone())
    }

    fn refused(&self, endpoint: &str, e: ApiError) -> Response {
        self.metrics.rejected.get_or_create(&RejectLabel { endpoint: endpoint.into(), reason: e.reason_label().into() }).inc();
        if matches!(e, ApiError::Unavailable(_) | ApiError::Internal(_)) {
            tracing::warn!(endpoint, error = %e, "request not stored");
        } else {
            tracing::debug!(endpoint, error = %e, "request refused");
        }
        e.into_response()
    }

    fn answered(&self, endpoint: &str, resp: Response, started: Instant) -> Response {
        let code = resp.status().as_u16();
        self.metrics.requests.get_or_create(&RequestLabel { endpoint: endpoint.into(), code }).inc();
        self.metrics.request_seconds.observe(started.elapsed().as_secs_f64());
        resp
    }

    fn stored(&self, endpoint: &str, n: usize) {
        self.metrics.events.get_or_create(&EndpointLabel { endpoint: endpoint.into() }).inc_by(n as u64);
    }
}

/// Decrements `in_flight` when the request is answered (or dropped).
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Now in µs since the epoch: the record time of what a request writes.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
