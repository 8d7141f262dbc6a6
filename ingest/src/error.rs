//! What a request can get back besides success, typed by what the client should do:
//! fix the request (400, 401, 403, 413, 415), slow down (429), or retry the same
//! request later (503: Kafka did not acknowledge; ids are deterministic, so a retry
//! of something that was stored after all is stored once).
//!
//! Every refusal is JSON `{"error": reason, "field": path-or-null}`; the field is a
//! path into the request (`items[3].regarding.name`,
//! `resourceLogs[0].scopeLogs[0].logRecords[2].timeUnixNano`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The token may not write this cluster or namespace.
    #[error("{reason}")]
    Forbidden { field: String, reason: String },
    /// The request is malformed; `field` says where.
    #[error("{reason}")]
    BadRequest { field: Option<String>, reason: String },
    /// Body or batch too large.
    #[error("{0}")]
    TooLarge(String),
    #[error("unsupported content type {0:?} (application/json or application/x-protobuf)")]
    UnsupportedMediaType(String),
    /// Over the token's rate limit.
    #[error("rate limit of token {token} exceeded")]
    RateLimited { token: String, retry_after_secs: u64 },
    /// Kafka did not acknowledge every event in time: nothing is promised stored.
    #[error("events not stored: {0}")]
    Unavailable(String),
    /// A bug: an event that passed the checks could not be encoded.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: String,
    field: Option<&'a str>,
}

impl ApiError {
    pub fn bad(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::BadRequest { field: Some(field.into()), reason: reason.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The metrics label.
    pub fn reason_label(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Forbidden { field, .. } => Some(field),
            ApiError::BadRequest { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { error: self.to_string(), field: self.field() };
        let mut resp = (self.status(), axum::Json(&body)).into_response();
        let h = resp.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kevents-ingest\""));
            }
            ApiError::RateLimited { retry_after_secs, .. } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            // Kafka is back within seconds or not: either way a short wait first.
            ApiError::Unavailable(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(2u64));
            }
            _ => {}
        }
        resp
    }
}
