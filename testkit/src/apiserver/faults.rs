//! Fault injection, switchable at run time through [`Faults`] or over HTTP
//! (`POST /_testkit/faults` with a [`FaultRequest`] JSON body; `GET /_testkit/faults` reports
//! the fault settings and [`StatsSnapshot`]), so that a separate process such as
//! `kevents simulate` can be driven by a test. Also holds the request counters tests read
//! to observe what a client did (re-watches, 410s served, empty watches served).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::status::ApiError;
use super::AppState;

/// Runtime-switchable faults of one API server. Cheap to clone.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<FaultState>,
}

struct FaultState {
    expire_next_watches: AtomicU32,
    empty_next_watches: AtomicU32,
    stale_watch_empty_200: AtomicBool,
    silent_next_watches: AtomicU32,
    silent_watches: AtomicBool,
    throttle_next: AtomicU32,
    retry_after_secs: AtomicU32,
    fail_next: AtomicU32,
    delay_ms: AtomicU64,
    drop_every_ms: AtomicU64,
    /// Bumped to abort every open watch; watch tasks hold a receiver.
    drop_generation: watch::Sender<u64>,
    /// Bumped to silence every open watch (connection kept, nothing written).
    silence_generation: watch::Sender<u64>,
}

/// Decrements a counter if positive; true when a unit was taken.
fn take(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            inner: Arc::new(FaultState {
                expire_next_watches: AtomicU32::new(0),
                empty_next_watches: AtomicU32::new(0),
                stale_watch_empty_200: AtomicBool::new(false),
                silent_next_watches: AtomicU32::new(0),
                silent_watches: AtomicBool::new(false),
                throttle_next: AtomicU32::new(0),
                retry_after_secs: AtomicU32::new(1),
                fail_next: AtomicU32::new(0),
                delay_ms: AtomicU64::new(0),
                drop_every_ms: AtomicU64::new(0),
                drop_generation: watch::channel(0).0,
                silence_generation: watch::channel(0).0,
            }),
        }
    }
}

impl Faults {
    /// Abort every open watch connection now, mid-stream (no terminating chunk, as when a
    /// load balancer or the network cuts it).
    pub fn drop_watches_now(&self) {
        self.inner.drop_generation.send_modify(|g| *g += 1);
    }

    /// Abort all open watches every `period` (None: stop).
    pub fn drop_watches_every(&self, period: Option<Duration>) {
        self.inner.drop_every_ms.store(
            period.map_or(0, |p| p.as_millis().max(1) as u64),
            Ordering::SeqCst,
        );
    }

    /// The silent connection: every open watch stops writing (no event, no BOOKMARK) but
    /// keeps its connection open, past its `timeoutSeconds`, until the client leaves — as
    /// behind a wedged proxy or a half-dead API server. Only a client-side idle timeout
    /// gets a client out of it.
    pub fn silence_watches_now(&self) {
        self.inner.silence_generation.send_modify(|g| *g += 1);
    }

    /// The next `n` watch requests are accepted (HTTP 200, headers sent) and then silent.
    pub fn silent_next_watches(&self, n: u32) {
        self.inner.silent_next_watches.store(n, Ordering::SeqCst);
    }

    /// While on, every new watch is accepted and then silent (see [`Faults::silence_watches_now`]).
    pub fn set_silent_watches(&self, on: bool) {
        self.inner.silent_watches.store(on, Ordering::SeqCst);
    }

    /// The next `n` watch requests get an ERROR event with a 410 Expired Status.
    pub fn expire_next_watches(&self, n: u32) {
        self.inner.expire_next_watches.store(n, Ordering::SeqCst);
    }

    /// The next `n` watch requests get an immediate, empty HTTP 200 stream.
    pub fn empty_next_watches(&self, n: u32) {
        self.inner.empty_next_watches.store(n, Ordering::SeqCst);
    }

    /// Kubernetes issue 104171: while on, a watch from a compacted RV gets an empty HTTP 200
    /// stream instead of the 410 ERROR event, so a naive client re-watches forever.
    pub fn set_stale_watch_empty_200(&self, on: bool) {
        self.inner.stale_watch_empty_200.store(on, Ordering::SeqCst);
    }

    /// The next `n` requests get 429 TooManyRequests with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u32) {
        self.inner
            .retry_after_secs
            .store(retry_after_secs, Ordering::SeqCst);
        self.inner.throttle_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` requests get 500 InternalError.
    pub fn fail_next(&self, n: u32) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// Delay every API response by `d` before it starts (watch streams included).
    pub fn set_delay(&self, d: Duration) {
        self.inner
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Switch every fault off.
    pub fn clear(&self) {
        let i = &self.inner;
        for c in [
            &i.expire_next_watches,
            &i.empty_next_watches,
            &i.silent_next_watches,
            &i.throttle_next,
            &i.fail_next,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        i.stale_watch_empty_200.store(false, Ordering::SeqCst);
        i.silent_watches.store(false, Ordering::SeqCst);
        i.delay_ms.store(0, Ordering::SeqCst);
        i.drop_every_ms.store(0, Ordering::SeqCst);
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.inner.delay_ms.load(Ordering::SeqCst))
    }

    pub(crate) fn take_expire(&self) -> bool {
        take(&self.inner.expire_next_watches)
    }

    pub(crate) fn take_empty(&self) -> bool {
        take(&self.inner.empty_next_watches)
    }

    /// Is the watch being opened now to be silent?
    pub(crate) fn take_silent(&self) -> bool {
        self.inner.silent_watches.load(Ordering::SeqCst) || take(&self.inner.silent_next_watches)
    }

    pub(crate) fn silence_signal(&self) -> watch::Receiver<u64> {
        self.inner.silence_generation.subscribe()
    }

    pub(crate) fn stale_watch_empty_200(&self) -> bool {
        self.inner.stale_watch_empty_200.load(Ordering::SeqCst)
    }

    pub(crate) fn drop_signal(&self) -> watch::Receiver<u64> {
        self.inner.drop_generation.subscribe()
    }

    pub(crate) fn drop_every(&self) -> Option<Duration> {
        let ms = self.inner.drop_every_ms.load(Ordering::SeqCst);
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Applies a request from the admin endpoint.
    pub fn apply_request(&self, r: &FaultRequest) {
        if r.clear {
            self.clear();
        }
        if let Some(n) = r.expire_next_watches {
            self.expire_next_watches(n);
        }
        if let Some(n) = r.empty_next_watches {
            self.empty_next_watches(n);
        }
        if let Some(on) = r.stale_watch_empty_200 {
            self.set_stale_watch_empty_200(on);
        }
        if let Some(n) = r.silent_next_watches {
            self.silent_next_watches(n);
        }
        if let Some(on) = r.silent_watches {
            self.set_silent_watches(on);
        }
        if r.silence_watches_now {
            self.silence_watches_now();
        }
        if let Some(n) = r.throttle_next {
            self.throttle_next(n, r.retry_after_secs.unwrap_or(1));
        }
        if let Some(n) = r.fail_next {
            self.fail_next(n);
        }
        if let Some(ms) = r.delay_ms {
            self.set_delay(Duration::from_millis(ms));
        }
        if let Some(ms) = r.drop_watches_every_ms {
            self.drop_watches_every((ms > 0).then(|| Duration::from_millis(ms)));
        }
        if r.drop_watches_now {
            self.drop_watches_now();
        }
    }

    pub fn snapshot(&self) -> FaultSnapshot {
        let i = &self.inner;
        FaultSnapshot {
            expire_next_watches: i.expire_next_watches.load(Ordering::SeqCst),
            empty_next_watches: i.empty_next_watches.load(Ordering::SeqCst),
            stale_watch_empty_200: i.stale_watch_empty_200.load(Ordering::SeqCst),
            silent_next_watches: i.silent_next_watches.load(Ordering::SeqCst),
            silent_watches: i.silent_watches.load(Ordering::SeqCst),
            throttle_next: i.throttle_next.load(Ordering::SeqCst),
            retry_after_secs: i.retry_after_secs.load(Ordering::SeqCst),
            fail_next: i.fail_next.load(Ordering::SeqCst),
            delay_ms: i.delay_ms.load(Ordering::SeqCst),
            drop_watches_every_ms: i.drop_every_ms.load(Ordering::SeqCst),
        }
    }
}

/// Body of `POST /_testkit/faults`; every field is optional and applied in this order:
/// `clear`, the settings, `drop_watches_now`, then the store operations `compact` and
/// `reset_resource_version`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRequest {
    pub clear: bool,
    pub expire_next_watches: Option<u32>,
    pub empty_next_watches: Option<u32>,
    pub stale_watch_empty_200: Option<bool>,
    pub silent_next_watches: Option<u32>,
    pub silent_watches: Option<bool>,
    /// Silence the open watches (`Faults::silence_watches_now`).
    pub silence_watches_now: bool,
    pub throttle_next: Option<u32>,
    pub retry_after_secs: Option<u32>,
    pub fail_next: Option<u32>,
    pub delay_ms: Option<u64>,
    /// 0 switches periodic drops off.
    pub drop_watches_every_ms: Option<u64>,
    pub drop_watches_now: bool,
    /// Drop the watch history now (`Store::compact`).
    pub compact: bool,
    /// Simulate an etcd restore to this revision (`Store::reset_resource_version`).
    pub reset_resource_version: Option<u64>,
}

/// Current fault settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSnapshot {
    pub expire_next_watches: u32,
    pub empty_next_watches: u32,
    pub stale_watch_empty_200: bool,
    pub silent_next_watches: u32,
    pub silent_watches: bool,
    pub throttle_next: u32,
    pub retry_after_secs: u32,
    pub fail_next: u32,
    pub delay_ms: u64,
    pub drop_watches_every_ms: u64,
}

/// Request counters of one server.
#[derive(Default)]
pub(crate) struct Stats {
    pub requests: AtomicU64,
    pub lists: AtomicU64,
    pub watches: AtomicU64,
    pub watches_open: AtomicU64,
    pub watch_expired: AtomicU64,
    pub watch_empty: AtomicU64,
    pub watches_dropped: AtomicU64,
    pub watches_silenced: AtomicU64,
    pub watchers_lagged: AtomicU64,
    pub watch_timeouts: AtomicU64,
    pub throttled: AtomicU64,
    pub failed: AtomicU64,
}

/// What the server has served so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// All API requests (admin endpoint excluded).
    pub requests: u64,
    /// Event list requests.
    pub lists: u64,
    /// Event watch requests.
    pub watches: u64,
    /// Watches open right now.
    pub watches_open: u64,
    /// Watches answered with a 410 ERROR event.
    pub watch_expired: u64,
    /// Watches answered with an empty 200 stream.
    pub watch_empty: u64,
    /// Watches aborted by the drop fault.
    pub watches_dropped: u64,
    /// Watches made silent by the silent-connection fault.
    pub watches_silenced: u64,
    /// Watches closed because the watcher fell a whole buffer behind.
    pub watchers_lagged: u64,
    /// Watches ended by their timeoutSeconds.
    pub watch_timeouts: u64,
    /// Requests answered 429.
    pub throttled: u64,
    /// Requests answered 500.
    pub failed: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::SeqCst);
        StatsSnapshot {
            requests: l(&self.requests),
            lists: l(&self.lists),
            watches: l(&self.watches),
            watches_open: l(&self.watches_open),
            watch_expired: l(&self.watch_expired),
            watch_empty: l(&self.watch_empty),
            watches_dropped: l(&self.watches_dropped),
            watches_silenced: l(&self.watches_silenced),
            watchers_lagged: l(&self.watchers_lagged),
            watch_timeouts: l(&self.watch_timeouts),
            throttled: l(&self.throttled),
            failed: l(&self.failed),
        }
    }

    pub fn bump(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }
}

/// Answer of `GET /_testkit/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminState {
    pub faults: FaultSnapshot,
    pub stats: StatsSnapshot,
    pub current_rv: u64,
    pub compacted_rv: u64,
    pub events: usize,
}

fn admin_state(app: &AppState) -> AdminState {
    AdminState {
        faults: app.faults.snapshot(),
        stats: app.stats.snapshot(),
        current_rv: app.store.current_rv(),
        compacted_rv: app.store.compacted_rv(),
        events: app.store.len(),
    }
}

pub(crate) async fn admin_get(State(app): State<AppState>) -> Json<AdminState> {
    Json(admin_state(&app))
}

pub(crate) async fn admin_post(
    State(app): State<AppState>,
    Json(req): Json<FaultRequest>,
) -> Json<AdminState> {
    app.faults.apply_request(&req);
    if req.compact {
        app.store.compact();
    }
    if let Some(rv) = req.reset_resource_version {
        app.store.reset_resource_version(rv);
    }
    Json(admin_state(&app))
}

/// Middleware in front of every API route: counts, delays, and answers 500 / 429 while
/// those faults are armed.
pub(crate) async fn middleware(State(app): State<AppState>, req: Request, next: Next) -> Response {
    Stats::bump(&app.stats.requests);
    let delay = app.faults.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if take(&app.faults.inner.fail_next) {
        Stats::bump(&app.stats.failed);
        return ApiError::internal("injected fault").into_response();
    }
    if take(&app.faults.inner.throttle_next) {
        Stats::bump(&app.stats.throttled);
        return ApiError::too_many_requests(
            app.faults.inner.retry_after_secs.load(Ordering::SeqCst),
        )
        .into_response();
    }
    next.run(req).await
}

/// Background loop for `drop_watches_every`: aborts all watches once per period.
pub(crate) async fn periodic_drops(faults: Faults) {
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match faults.drop_every() {
            Some(p) if last.elapsed() >= p => {
                faults.drop_watches_now();
                last = tokio::time::Instant::now();
            }
            Some(_) => {}
            None => last = tokio::time::Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_consumed() {
        let f = Faults::default();
        f.apply_request(
            &serde_json::from_str(r#"{"expire_next_watches":2,"delay_ms":5}"#).unwrap(),
        );
        assert!(f.take_expire() && f.take_expire() && !f.take_expire());
        assert_eq!(f.delay(), Duration::from_millis(5));
        f.apply_request(&FaultRequest {
            clear: true,
            ..Default::default()
        });
        assert_eq!(f.snapshot().delay_ms, 0);
        assert!(serde_json::from_str::<FaultRequest>(r#"{"nope":1}"#).is_err());
    }
}
