//! Watch streams: `?watch=1` on an Event collection answers HTTP 200 with chunked JSON
//! lines `{"type":…,"object":…}`, one task per watch feeding the response body.
//!
//! Start point (etcd3 watcher, which Events use since they bypass the watch cache):
//! RV unset or `0` → synthetic ADDED for every current object, then changes;
//! `N` → changes after `N`, ERROR 410 Expired if `N` is compacted, and nothing at all until
//! the store passes `N` when `N` is in the future. `sendInitialEvents=true` (streaming list,
//! needs `resourceVersionMatch=NotOlderThan` and bookmarks) → synthetic ADDED, then a
//! BOOKMARK annotated `k8s.io/initial-events-end`. The watch ends cleanly after
//! `timeoutSeconds`; it is closed when the watcher falls a whole broadcast buffer behind
//! (the cacher closes unresponsive watchers too), and aborted by the drop fault. The silent
//! fault keeps the connection open and writes nothing more, past the timeout, until the
//! client leaves.
//!
//! Differs from kube-apiserver on purpose: it sends BOOKMARKs on Event watches (every
//! `bookmark_interval`); the real server sends none, because Events bypass the watch cache
//! that produces them (docs/real-apiserver.md, collector/tests/conformance.rs).

use std::convert::Infallible;
use std::io;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Duration, Instant};

use super::faults::Stats;
use super::list::{parse_bool, parse_rv, EventsQuery};
use super::selectors::Filter;
use super::shapes::{bookmark_line, watch_line, Shape};
use super::status::ApiError;
use super::store::{Change, RvError, Subscription};
use super::AppState;

type Frame = Result<Bytes, io::Error>;

fn stream_response(body: Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An immediate, empty 200 (kubernetes issue 104171).
fn empty_200(app: &AppState) -> Response {
    Stats::bump(&app.stats.watch_empty);
    stream_response(Body::from_stream(futures::stream::empty::<
        Result<Bytes, Infallible>,
    >()))
}

/// A 200 stream holding one ERROR event with a Status, as the real watch reports 410.
fn error_stream(app: &AppState, err: ApiError) -> Response {
    if err.code == 410 {
        Stats::bump(&app.stats.watch_expired);
    }
    let line = watch_line("ERROR", &err.status_json());
    stream_response(Body::from_stream(futures::stream::once(async move {
        Ok::<_, Infallible>(line)
    })))
}

pub(crate) async fn serve(app: AppState, shape: Shape, filter: Filter, q: EventsQuery) -> Response {
    Stats::bump(&app.stats.watches);
    match start(&app, &q) {
        Ok(Start::Empty) => empty_200(&app),
        Ok(Start::Error(e)) => error_stream(&app, e),
        Ok(Start::Stream {
            sub,
            bookmarks,
            initial_end,
            timeout,
        }) => {
            let silent = app.faults.take_silent();
            let (tx, rx) = mpsc::channel::<Frame>(1024);
            let w = Watcher {
                app: app.clone(),
                shape,
                filter,
                tx,
                bookmarks,
                progress: sub.start_rv,
            };
            tokio::spawn(w.run(sub, initial_end, timeout, silent));
            let stream = tokio_stream_from(rx);
            stream_response(Body::from_stream(stream))
        }
        Err(e) => e.into_response(),
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Frame>) -> impl futures::Stream<Item = Frame> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).fuse()
}

enum Start {
    Empty,
    Error(ApiError),
    Stream {
        sub: Subscription,
        bookmarks: bool,
        initial_end: bool,
        timeout: Duration,
    },
}

/// Validates the request and subscribes, or says which fault/ error answer to give.
fn start(app: &AppState, q: &EventsQuery) -> Result<Start, ApiError> {
    let bookmarks = parse_bool(q.allow_watch_bookmarks.as_deref())?;
    let initial = parse_bool(q.send_initial_events.as_deref())?;
    let rv_match = q
        .resource_version_match
        .as_deref()
        .filter(|s| !s.is_empty());
    if initial {
        if rv_match != Some("NotOlderThan") {
            return Err(ApiError::invalid(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !bookmarks {
            return Err(ApiError::invalid(
                "allowWatchBookmarks: Forbidden: sendInitialEvents requires allowWatchBookmarks=true",
            ));
        }
    } else if rv_match.is_some() {
        return Err(ApiError::invalid(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let timeout = match q.timeout_seconds.as_deref().filter(|s| !s.is_empty()) {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds \"{t}\"")))?,
        ),
        None => app.opts.default_watch_timeout,
    };
    if app.faults.take_empty() {
        return Ok(Start::Empty);
    }
    let from = match q
        .resource_version
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "0")
    {
        _ if initial => None,
        Some(v) => Some(parse_rv(v)?),
        None => None,
    };
    if app.faults.take_expire() {
        let rv = from.unwrap_or_else(|| app.store.current_rv());
        return Ok(Start::Error(ApiError::too_old(rv, app.store.current_rv())));
    }
    match app.store.subscribe(from) {
        Ok(sub) => Ok(Start::Stream {
            sub,
            bookmarks,
            initial_end: initial,
            timeout,
        }),
        Err(RvError::TooOld { .. }) if app.faults.stale_watch_empty_200() => Ok(Start::Empty),
        Err(RvError::TooOld { compacted_through }) => Ok(Start::Error(ApiError::too_old(
            from.unwrap_or(0),
            compacted_through,
        ))),
    }
}

/// Why a watch task stopped.
enum End {
    /// Client went away, or the timeout: end the body normally.
    Clean,
    /// Drop fault or server shutdown: abort the connection mid-stream.
    Abort,
}

struct Watcher {
    app: AppState,
    shape: Shape,
    filter: Filter,
    tx: mpsc::Sender<Frame>,
    bookmarks: bool,
    /// Every change up to this RV has been considered for this watcher.
    progress: u64,
}

impl Watcher {
    async fn run(mut self, mut sub: Subscription, initial_end: bool, timeout: Duration, silent: bool) {
        let stats = self.app.stats.clone();
        stats
            .watches_open
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        let end = if silent {
            self.silent().await
        } else {
            self.stream(&mut sub, initial_end, deadline).await
        };
        if let End::Abort = end {
            let _ = self.tx.try_send(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "watch dropped",
            )));
        }
        stats
            .watches_open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The silent connection: hold the body open, write nothing, ignore the deadline;
    /// end when the client leaves, abort on server shutdown or the drop fault.
    async fn silent(&self) -> End {
        Stats::bump(&self.app.stats.watches_silenced);
        let mut drops = self.app.faults.drop_signal();
        drops.borrow_and_update();
        let mut closing = self.app.closing.subscribe();
        tokio::select! {
            _ = self.tx.closed() => End::Clean,
            _ = drops.changed() => End::Abort,
            _ = closing.changed() => End::Abort,
        }
    }

    /// Sends one frame unless the client is gone or the deadline passed.
    async fn send(&self, frame: Bytes, deadline: Instant) -> bool {
        matches!(
            tokio::time::timeout_at(deadline, self.tx.send(Ok(frame))).await,
            Ok(Ok(()))
        )
    }

    /// Considers one change; sends its shared line when it passes the filter.
    async fn offer(&mut self, c: &Change, deadline: Instant) -> bool {
        if c.rv <= self.progress {
            return true;
        }
        self.progress = c.rv;
        if !self.filter.matches(&c.object.event) {
            return true;
        }
        self.send(c.line(self.shape).clone(), deadline).await
    }

    async fn stream(
        &mut self,
        sub: &mut Subscription,
        initial_end: bool,
        deadline: Instant,
    ) -> End {
        let mut drops = self.app.faults.drop_signal();
        drops.borrow_and_update();
        let mut silence = self.app.faults.silence_signal();
        silence.borrow_and_update();
        let mut closing = self.app.closing.subscribe();
        if let Some(items) = sub.initial.take() {
            for item in items.iter().filter(|i| self.filter.matches(&i.event)) {
                if !self
                    .send(watch_line("ADDED", item.object(self.shape)), deadline)
                    .await
                {
                    return End::Clean;
                }
            }
            if initial_end
                && !self
                    .send(bookmark_line(self.shape, self.progress, true), deadline)
                    .await
            {
                return End::Clean;
            }
        }
        for c in std::mem::take(&mut sub.backlog) {
            if !self.offer(&c, deadline).await {
                return End::Clean;
            }
        }
        let period = self
            .app
            .opts
            .bookmark_interval
            .max(Duration::from_millis(10));
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        loop {
            tokio::select! {
                biased;
                _ = self.tx.closed() => return End::Clean,
                _ = drops.changed() => {
                    Stats::bump(&self.app.stats.watches_dropped);
                    return End::Abort;
                }
                _ = closing.changed() => return End::Abort,
                _ = silence.changed() => return self.silent().await,
                _ = tokio::time::sleep_until(deadline) => {
                    Stats::bump(&self.app.stats.watch_timeouts);
                    return End::Clean;
                }
                _ = ticks.tick(), if self.bookmarks => {
                    // Everything up to `settled` is already in our receiver: drain it first,
                    // so the bookmark never claims an RV whose change we have not sent.
                    let settled = self.app.store.settled_rv();
                    loop {
                        match sub.rx.try_recv() {
                            Ok(c) => if !self.offer(&c, deadline).await { return End::Clean },
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(broadcast::error::TryRecvError::Lagged(_)) => return self.lagged(),
                            Err(broadcast::error::TryRecvError::Closed) => return End::Clean,
                        }
                    }
                    self.progress = self.progress.max(settled);
                    if !self.send(bookmark_line(self.shape, self.progress, false), deadline).await {
                        return End::Clean;
                    }
                }
                r = sub.rx.recv() => match r {
                    Ok(c) => if !self.offer(&c, deadline).await { return End::Clean },
                    Err(broadcast::error::RecvError::Lagged(_)) => return self.lagged(),
                    Err(broadcast::error::RecvError::Closed) => return End::Clean,
                },
            }
        }
    }

    fn lagged(&self) -> End {
        Stats::bump(&self.app.stats.watchers_lagged);
        tracing::debug!(
            progress = self.progress,
            "closing a watcher that fell behind"
        );
        End::Clean
    }
}
