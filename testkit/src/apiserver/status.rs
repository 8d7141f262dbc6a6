//! `Status` error responses, with the codes, reasons and messages of the real apiserver
//! (`k8s.io/apimachinery/pkg/api/errors`), so clients take the same branches as in a cluster.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ListMeta, Status, StatusCause, StatusDetails,
};

/// A failed request, rendered as a `Status` object.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed to keep `Result<_, ApiError>` small.
    pub details: Option<Box<StatusDetails>>,
    pub retry_after: Option<u32>,
    pub continue_: Option<String>,
}

/// `resource.group` as the real messages spell it (`events`, `leases.coordination.k8s.io`).
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(group: &str, resource: &str, name: &str) -> Option<Box<StatusDetails>> {
    Some(Box::new(StatusDetails {
        name: Some(name.to_string()),
        group: (!group.is_empty()).then(|| group.to_string()),
        kind: Some(resource.to_string()),
        ..Default::default()
    }))
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            continue_: None,
        }
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, resource)),
        );
        e.details = details(group, resource, name);
        e
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        );
        e.details = details(group, resource, name);
        e
    }

    pub fn conflict(group: &str, resource: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, resource)
            ),
        );
        e.details = details(group, resource, name);
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// 410 for a watch or list from a compacted resourceVersion.
    pub fn too_old(rv: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {rv} ({oldest})"),
        )
    }

    /// 410 for a continue token whose snapshot was compacted (etcd3 store's wording), with the
    /// inconsistent continuation token the real server offers.
    pub fn continue_expired(next: Option<String>) -> Self {
        let mut e = Self::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        );
        e.continue_ = next;
        e
    }

    /// 504 for a resourceVersion newer than the store (`NewTooLargeResourceVersionError`).
    pub fn too_large_rv(rv: u64, current: u64) -> Self {
        let mut e = Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {rv}, current: {current}"),
        );
        e.details = Some(Box::new(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("ResourceVersionTooLarge".into()),
                message: Some("Too large resource version".into()),
                field: None,
            }]),
            retry_after_seconds: Some(1),
            ..Default::default()
        }));
        e.retry_after = Some(1);
        e
    }

    pub fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details = Some(Box::new(StatusDetails {
            retry_after_seconds: Some(retry_after as i32),
            ..Default::default()
        }));
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn status(&self) -> Status {
        Status {
            code: Some(self.code as i32),
            details: self.details.as_deref().cloned(),
            message: Some(self.message.clone()),
            metadata: ListMeta {
                continue_: self.continue_.clone(),
                ..Default::default()
            },
            reason: Some(self.reason.to_string()),
            status: Some("Failure".into()),
        }
    }

    pub fn status_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.status()).expect("Status serializes"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, self.status_json()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// A JSON 200 response.
pub(crate) fn json_response(body: Bytes) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serializes any value as a JSON 200 response.
pub(crate) fn json_of<T: serde::Serialize>(v: &T) -> Response {
    json_response(Bytes::from(serde_json::to_vec(v).expect("serializable")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_real_server() {
        let s = ApiError::not_found("coordination.k8s.io", "leases", "x").status();
        assert_eq!(
            s.message.as_deref(),
            Some("leases.coordination.k8s.io \"x\" not found")
        );
        assert_eq!(s.code, Some(404));
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::too_old(3, 9).status_json()).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["reason"], "Expired");
        assert_eq!(v["message"], "too old resource version: 3 (9)");
    }
}
