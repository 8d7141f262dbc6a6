//! The API server side of the watch: the [`Source`] trait the watch state machine
//! ([`crate::watch`]) runs over, and [`EventSource`], its implementation that lists
//! and watches Events through kube-rs in either API shape, normalized on arrival.
//! No informer, no cache: objects are converted and handed on one by one, so memory
//! does not grow with the number of events in the cluster.
//!
//! Errors reach the machine already classified ([`SourceError`]): `410 Gone` (relist)
//! or retryable (back off, honouring the server's `Retry-After`). An `ERROR` line in
//! a watch stream is classified the same way as an error status on the request.

use futures::{stream::BoxStream, StreamExt};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use kube::api::{Api, ListParams, ObjectList, WatchEvent, WatchParams};
use kube::core::{Request, Status};
use kube::Resource;
use schemas::event_json::{CoreV1Json, EventsV1Json};
use schemas::model::NormalizedEvent;
use schemas::records::WatchKind;
use std::future::Future;
use std::time::Duration;

use crate::config::ApiKind;

/// One item of a watch stream. The event is boxed once, at decode: it is ~630
/// bytes and passes through the stream adapters, the watch machine, its driver
/// and the channel to the publisher, and each move was a memcpy (6,400
/// instructions per event under callgrind, more than the allocation costs).
#[derive(Debug)]
pub enum Change {
    Object(WatchKind, Box<NormalizedEvent>),
    Bookmark(String),
}

/// Why a list or watch request (or an open watch) failed, by what the machine does
/// next. Nothing here is permanent: a 403 turns into success once RBAC is fixed, a
/// 5xx once the server recovers, so the machine retries everything with backoff and
/// never ends on an error (kube-rs #1615).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// `410 Gone` (or `ERROR` 410 Expired in the stream): the resourceVersion was
    /// compacted away; only a relist recovers.
    #[error("410 Gone: {0}")]
    Gone(String),
    /// Anything else (dropped connection, 429, 5xx, 403): retry after a backoff of at
    /// least `retry_after`, the server's hint.
    #[error("{message}")]
    Retryable { message: String, retry_after: Option<Duration> },
}

impl SourceError {
    /// Classify an API `Status` (an error response or a watch `ERROR` line). A 429
    /// without a hint waits at least 1 s, as client-go does.
    pub fn from_status(s: &Status) -> Self {
        if s.code == 410 {
            return SourceError::Gone(s.message.clone());
        }
        let hinted = s.details.as_ref().map(|d| d.retry_after_seconds).filter(|r| *r > 0);
        let retry_after = match (hinted, s.code) {
            (Some(r), _) => Some(Duration::from_secs(r as u64)),
            (None, 429) => Some(Duration::from_secs(1)),
            _ => None,
        };
        SourceError::Retryable { message: format!("{} {}: {}", s.code, s.reason, s.message), retry_after }
    }

    /// A retryable error with no hint (tests, transport failures).
    pub fn retryable(message: impl Into<String>) -> Self {
        SourceError::Retryable { message: message.into(), retry_after: None }
    }
}

impl From<kube::Error> for SourceError {
    fn from(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) => SourceError::from_status(s),
            _ => SourceError::retryable(e.to_string()),
        }
    }
}

/// An open watch: changes in resourceVersion order until the server ends it.
pub type ChangeStream = BoxStream<'static, Result<Change, SourceError>>;

/// What the watch machine needs from the API server: consistent paginated lists
/// and watches from a resourceVersion. [`EventSource`] is the real one; the
/// machine's unit tests script one.
pub trait Source: Send + Sync + 'static {
    /// One page of a consistent list (`cont` None: the first page, which fixes the
    /// snapshot and its resourceVersion).
    fn list_page(&self, cont: Option<String>) -> impl Future<Output = Result<Page, SourceError>> + Send;
    /// Open a watch from `rv` (with bookmarks) that the server ends after `timeout_secs`.
    fn watch(&self, rv: &str, timeout_secs: u32) -> impl Future<Output = Result<ChangeStream, SourceError>> + Send;
}

/// One page of a list.
pub struct Page {
    pub items: Vec<Box<NormalizedEvent>>,
    pub resource_version: String,
    pub continue_token: Option<String>,
}

/// Which API the source reads; both decode straight into [`NormalizedEvent`]
/// (`schemas::event_json`: no k8s-openapi objects on the way).
#[derive(Clone, Copy)]
enum Shape {
    EventsV1,
    CoreV1,
}

/// Lists and watches one scope (all namespaces, or one namespace).
#[derive(Clone)]
pub struct EventSource {
    client: kube::Client,
    request: Request,
    shape: Shape,
    field_selector: Option<String>,
    label_selector: Option<String>,
    page_size: u32,
}

impl EventSource {
    pub fn new(
        client: kube::Client,
        api: ApiKind,
        namespace: Option<&str>,
        field_selector: Option<String>,
        label_selector: Option<String>,
    ) -> Self {
        let (shape, path) = match api {
            ApiKind::EventsV1 => (Shape::EventsV1, <events::Event as Resource>::url_path(&(), namespace)),
            ApiKind::CoreV1 => (Shape::CoreV1, <core::Event as Resource>::url_path(&(), namespace)),
        };
        EventSource {
            client,
            request: Request::new(path),
            shape,
            field_selector,
            label_selector,
            page_size: 500,
        }
    }

    fn list_params(&self, cont: Option<String>) -> ListParams {
        let mut lp = ListParams::default().limit(self.page_size);
        lp.field_selector = self.field_selector.clone();
        lp.label_selector = self.label_selector.clone();
        lp.continue_token = cont;
        lp
    }

    async fn list(&self, cont: Option<String>) -> Result<Page, kube::Error> {
        let mut req = self.request.list(&self.list_params(cont)).map_err(kube::Error::BuildRequest)?;
        req.extensions_mut().insert("list");
        let (items, meta) = match self.shape {
            Shape::EventsV1 => {
                let l = self.client.request::<ObjectList<EventsV1Json>>(req).await?;
                (l.items.into_iter().map(|e| Box::new(NormalizedEvent::from(e))).collect(), l.metadata)
            }
            Shape::CoreV1 => {
                let l = self.client.request::<ObjectList<CoreV1Json>>(req).await?;
                (l.items.into_iter().map(|e| Box::new(NormalizedEvent::from(e))).collect(), l.metadata)
            }
        };
        Ok(Page {
            items,
            resource_version: meta.resource_version.unwrap_or_default(),
            continue_token: meta.continue_.filter(|c| !c.is_empty()),
        })
    }

    async fn open(&self, rv: &str, timeout_secs: u32) -> Result<ChangeStream, kube::Error> {
        let mut wp = WatchParams::default().timeout(timeout_secs);
        wp.field_selector = self.field_selector.clone();
        wp.label_selector = self.label_selector.clone();
        let mut req = self.request.watch(&wp, rv).map_err(kube::Error::BuildRequest)?;
        req.extensions_mut().insert("watch");
        Ok(match self.shape {
            Shape::EventsV1 => self.client.request_events::<Box<EventsV1Json>>(req).await?.map(change).boxed(),
            Shape::CoreV1 => self.client.request_events::<Box<CoreV1Json>>(req).await?.map(change).boxed(),
        })
    }
}

impl Source for EventSource {
    async fn list_page(&self, cont: Option<String>) -> Result<Page, SourceError> {
        Ok(self.list(cont).await?)
    }

    async fn watch(&self, rv: &str, timeout_secs: u32) -> Result<ChangeStream, SourceError> {
        Ok(self.open(rv, timeout_secs).await?)
    }
}

/// Watch objects are decoded into a box too (`Box<EventsV1Json>`), so the kube
/// stream adapters move a pointer, not the ~1 kB decoded object.
fn change<K: Into<NormalizedEvent>>(e: Result<WatchEvent<Box<K>>, kube::Error>) -> Result<Change, SourceError> {
    let object = |o: Box<K>| Box::new((*o).into());
    Ok(match e? {
        WatchEvent::Added(o) => Change::Object(WatchKind::Added, object(o)),
        WatchEvent::Modified(o) => Change::Object(WatchKind::Modified, object(o)),
        WatchEvent::Deleted(o) => Change::Object(WatchKind::Deleted, object(o)),
        WatchEvent::Bookmark(b) => Change::Bookmark(b.metadata.resource_version),
        WatchEvent::Error(s) => return Err(SourceError::from_status(&s)),
    })
}

/// Read the cluster UID: the UID of the `kube-system` namespace.
pub async fn cluster_uid(client: kube::Client) -> Result<String, kube::Error> {
    let ns: Api<core::Namespace> = Api::all(client);
    let n = ns.get("kube-system").await?;
    Ok(n.metadata.uid.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusDetails;

    fn status(code: u16, retry_after_seconds: u32) -> Status {
        let mut s = Status::failure("boom", "Reason").with_code(code);
        if retry_after_seconds > 0 {
            s.details = Some(StatusDetails { retry_after_seconds, ..serde_json::from_str("{}").unwrap() });
        }
        s
    }

    #[test]
    fn statuses_classify_by_what_the_machine_does_next() {
        assert!(matches!(SourceError::from_status(&status(410, 0)), SourceError::Gone(_)));
        let retry = |s: &Status| match SourceError::from_status(s) {
            SourceError::Retryable { retry_after, .. } => retry_after,
            other => panic!("{other:?}"),
        };
        assert_eq!(retry(&status(429, 7)), Some(Duration::from_secs(7)));
        assert_eq!(retry(&status(429, 0)), Some(Duration::from_secs(1)), "429 without a hint");
        assert_eq!(retry(&status(503, 3)), Some(Duration::from_secs(3)), "any hint is honoured");
        assert_eq!(retry(&status(500, 0)), None);
        assert_eq!(retry(&status(403, 0)), None, "RBAC can be fixed while we wait");
        let e = kube::Error::Api(Box::new(status(410, 0)));
        assert!(matches!(SourceError::from(e), SourceError::Gone(_)));
    }
}
