//! A scripted API server for the watch machine's unit tests: each list or watch
//! request takes the next answer the test queued, and every request is recorded
//! (what was asked, and when on tokio's clock) so tests check where the machine
//! resumed from and how long it waited. It stands in for kube-apiserver, not for
//! anything of the collector's: the real server's behaviour is covered by the
//! integration tests (`tests/conformance.rs` runs against both servers).

use futures::StreamExt;
use schemas::model::NormalizedEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use crate::source::{Change, ChangeStream, Page, Source, SourceError};

/// One thing an open watch does.
#[allow(clippy::large_enum_variant)]
pub enum Line {
    /// Deliver a change or fail the stream.
    Send(Result<Change, SourceError>),
    /// Deliver nothing for this long.
    Wait(Duration),
    /// Deliver nothing ever again (a silent connection).
    Hang,
}

/// A request the machine made.
#[derive(Debug, Clone, PartialEq)]
pub enum Req {
    List { cont: Option<String> },
    Watch { rv: String, timeout_secs: u32 },
}

#[derive(Default)]
struct Inner {
    lists: VecDeque<Result<Page, SourceError>>,
    watches: VecDeque<Result<Vec<Line>, SourceError>>,
    requests: Vec<(Instant, Req)>,
}

/// Cheap to clone: the test keeps one handle, the machine owns another.
#[derive(Clone, Default)]
pub struct Script(Arc<Mutex<Inner>>);

impl Script {
    pub fn list(&self, page: Result<Page, SourceError>) -> &Self {
        self.0.lock().unwrap().lists.push_back(page);
        self
    }

    pub fn watch(&self, answer: Result<Vec<Line>, SourceError>) -> &Self {
        self.0.lock().unwrap().watches.push_back(answer);
        self
    }

    /// Requests so far, with when they were made.
    pub fn requests(&self) -> Vec<(Instant, Req)> {
        self.0.lock().unwrap().requests.clone()
    }

    fn record(&self, req: Req) {
        self.0.lock().unwrap().requests.push((Instant::now(), req));
    }
}

impl Source for Script {
    async fn list_page(&self, cont: Option<String>) -> Result<Page, SourceError> {
        self.record(Req::List { cont });
        let next = self.0.lock().unwrap().lists.pop_front();
        match next {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }

    async fn watch(&self, rv: &str, timeout_secs: u32) -> Result<ChangeStream, SourceError> {
        self.record(Req::Watch { rv: rv.into(), timeout_secs });
        let next = self.0.lock().unwrap().watches.pop_front();
        let lines = match next {
            Some(answer) => answer?,
            None => std::future::pending().await,
        };
        Ok(futures::stream::unfold(VecDeque::from(lines), |mut lines| async move {
            loop {
                match lines.pop_front()? {
                    Line::Send(change) => return Some((change, lines)),
                    Line::Wait(d) => tokio::time::sleep(d).await,
                    Line::Hang => std::future::pending::<()>().await,
                }
            }
        })
        .boxed())
    }
}

/// An event at resourceVersion `rv`.
pub fn ev(rv: u64) -> NormalizedEvent {
    NormalizedEvent {
        uid: format!("uid-{rv}").into(),
        namespace: "default".into(),
        name: format!("pod-{rv}.{rv:x}").into(),
        resource_version: rv.to_string().into(),
        event_type: "Warning".into(),
        reason: "BackOff".into(),
        count: 1,
        ..Default::default()
    }
}

/// A list page.
pub fn page(rvs: &[u64], list_rv: u64, cont: Option<&str>) -> Result<Page, SourceError> {
    Ok(Page { items: rvs.iter().map(|r| Box::new(ev(*r))).collect(), resource_version: list_rv.to_string(), continue_token: cont.map(Into::into) })
}

pub fn added(rv: u64) -> Line {
    Line::Send(Ok(Change::Object(schemas::records::WatchKind::Added, Box::new(ev(rv)))))
}

pub fn bookmark(rv: u64) -> Line {
    Line::Send(Ok(Change::Bookmark(rv.to_string())))
}

pub fn gone() -> SourceError {
    SourceError::Gone("too old resource version".into())
}

pub fn throttled(secs: u64) -> SourceError {
    SourceError::Retryable { message: "429 TooManyRequests".into(), retry_after: Some(Duration::from_secs(secs)) }
}

pub fn broken() -> SourceError {
    SourceError::retryable("connection reset")
}
