//! The watch of one scope as an explicit state machine.
//!
//! States (what the next step does):
//! - [`State::Relist`]: list everything (paginated, one consistent snapshot), send
//!   the objects newer than the cursor as `RELISTED`, then watch from the list's
//!   resourceVersion. Entered on first start (no cursor), after `410 Gone`, and
//!   after repeated empty watches.
//! - [`State::Watch`]: open a watch from `rv`.
//! - [`State::Watching`]: read the next line of the open watch, waiting at most the
//!   idle timeout for it.
//! - [`State::Backoff`]: sleep (jittered, growing), then go on to the held state.
//!
//! Transitions worth naming:
//! - watch ends normally (server timeout) → `Watch{rv}` at once;
//! - watch ends *immediately with nothing* — the stale-RV empty 200 of kubernetes
//!   #104171, on which kube's own watcher busy-loops → `Backoff` then `Watch`, and
//!   after [`EMPTY_WATCHES_BEFORE_RELIST`] in a row → `Relist` (treated as desync);
//! - `410 Gone` as HTTP status or as an `ERROR` line → `Relist`;
//! - any other error (dropped connection, 429 with Retry-After, 500) → `Backoff`
//!   then `Watch{rv}` from the last resourceVersion sent on;
//! - **idle timeout**: the watch delivered nothing — no event, no BOOKMARK, no end —
//!   for `idle_timeout` → `Watch{rv}` at once (the silent connection: a wedged proxy or
//!   a half-dead API server that keeps the connection open and writes nothing; kube's
//!   watcher has no such bound). kube-apiserver sends no BOOKMARKs on Events (they
//!   bypass the watch cache), so a quiet, healthy watch is silent until the server ends
//!   it at `timeoutSeconds`: the bound must exceed the watch timeout
//!   (`CollectorConfig::watch_idle_timeout`). The watch reopened after an idle timeout
//!   does not count as progress for `/healthz` until it delivers something, so a server
//!   whose every watch goes silent turns the collector unhealthy.
//!
//! Errors never end the machine (kube-rs #1615): only shutdown does.
//!
//! Every item is sent into a bounded channel; a full channel makes the machine
//! wait, which is how Kafka backpressure pauses the watch.

use futures::{stream::BoxStream, StreamExt};
use schemas::model::NormalizedEvent;
use schemas::records::WatchKind;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::config::DropRule;
use crate::metrics::{Metrics, RuleLabel};
use crate::source::{Change, EventSource};

/// Empty watches in a row that mean "desynchronized": relist.
pub const EMPTY_WATCHES_BEFORE_RELIST: u32 = 3;
/// A watch that ends sooner than this with no item counts as empty.
const EMPTY_WATCH: Duration = Duration::from_secs(1);

/// What the watch hands to the publisher, in order. Not boxed: nearly every
/// item is an event, and a box would be one more allocation per event.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// An event to publish. `cursor_rv` is where a restart may resume after it:
    /// the event's own resourceVersion while watching, the pre-relist cursor
    /// during a relist (list order is not RV order, so a crash mid-relist must
    /// resume before the relist).
    Event {
        scope: String,
        kind: WatchKind,
        event: NormalizedEvent,
        cursor_rv: String,
    },
    /// The scope reached `rv` without a record (bookmark, end of a relist, a watch
    /// just opened): the next heartbeat carries it.
    Progress { scope: String, rv: String, bookmark: bool },
}

enum State {
    Relist { cursor: Option<String> },
    Watch { rv: String },
    Watching {
        rv: String,
        stream: BoxStream<'static, Result<Change, kube::Error>>,
        opened: Instant,
        items: u64,
    },
    Backoff { delay: Duration, then: Box<State> },
}

/// Parse a resourceVersion as etcd's revision number (None if opaque).
pub fn rv_num(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

/// The watch machine of one scope.
pub struct Watcher {
    pub scope: String,
    pub source: EventSource,
    pub drop_rules: Vec<DropRule>,
    pub watch_timeout_secs: u32,
    /// No item for this long ends the watch (see the module doc).
    pub idle_timeout: Duration,
    pub metrics: Metrics,
    pub tx: mpsc::Sender<Item>,
    backoff: Backoff,
    empty_in_a_row: u32,
    /// The last watch ended by the idle timeout and the current one has delivered
    /// nothing yet: opening it is not progress.
    after_idle: bool,
}

/// Why the machine stopped.
#[derive(Debug, PartialEq)]
pub enum Stop {
    /// The publisher side went away (shutdown or leadership loss).
    ChannelClosed,
}

fn retry_after(e: &kube::Error) -> Option<Duration> {
    match e {
        kube::Error::Api(s) if s.code == 429 => Some(Duration::from_secs(
            s.details
                .as_ref()
                .map(|d| d.retry_after_seconds as u64)
                .filter(|s| *s > 0)
                .unwrap_or(1),
        )),
        _ => None,
    }
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 410)
}

impl Watcher {
    pub fn new(
        scope: String,
        source: EventSource,
        drop_rules: Vec<DropRule>,
        watch_timeout_secs: u32,
        idle_timeout: Duration,
        metrics: Metrics,
        tx: mpsc::Sender<Item>,
    ) -> Self {
        Watcher {
            scope,
            source,
            drop_rules,
            watch_timeout_secs,
            idle_timeout,
            metrics,
            tx,
            backoff: Backoff::default(),
            empty_in_a_row: 0,
            after_idle: false,
        }
    }

    /// Run from `cursor` (None: never published) until the channel closes.
    pub async fn run(mut self, cursor: Option<String>) -> Stop {
        let mut state = match cursor {
            Some(rv) => State::Watch { rv },
            None => State::Relist { cursor: None },
        };
        self.metrics.restart("start");
        loop {
            state = match self.step(state).await {
                Ok(next) => next,
                Err(stop) => return stop,
            };
        }
    }

    fn dropped(&self, ev: &NormalizedEvent) -> Option<&str> {
        self.drop_rules
            .iter()
            .find(|r| {
                r.reason.as_ref().is_none_or(|v| *v == ev.reason)
                    && r.event_type.as_ref().is_none_or(|v| *v == ev.event_type)
                    && r.namespace.as_ref().is_none_or(|v| *v == ev.namespace)
                    && r.component.as_ref().is_none_or(|v| *v == ev.reporting_controller)
                    && r.kind.as_ref().is_none_or(|v| *v == ev.regarding.kind)
            })
            .map(|r| r.name.as_str())
    }

    async fn send(&self, item: Item) -> Result<(), Stop> {
        self.tx.send(item).await.map_err(|_| Stop::ChannelClosed)
    }

    /// Hand on an event unless a drop rule takes it. A dropped event still moves
    /// the cursor, or a restart would fetch it again.
    async fn emit(&self, kind: WatchKind, event: NormalizedEvent, cursor_rv: String) -> Result<(), Stop> {
        self.metrics.received(kind.as_str());
        if let Some(rule) = self.dropped(&event) {
            self.metrics.dropped.get_or_create(&RuleLabel { rule: rule.to_string() }).inc();
            return self
                .send(Item::Progress { scope: self.scope.clone(), rv: cursor_rv, bookmark: false })
                .await;
        }
        self.send(Item::Event { scope: self.scope.clone(), kind, event, cursor_rv }).await
    }

    fn backoff_then(&mut self, then: State, retry_after: Option<Duration>) -> State {
        State::Backoff { delay: self.backoff.next_delay(retry_after), then: Box::new(then) }
    }

    async fn step(&mut self, state: State) -> Result<State, Stop> {
        if self.tx.is_closed() {
            return Err(Stop::ChannelClosed);
        }
        Ok(match state {
            State::Backoff { delay, then } => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => *then,
                    _ = self.tx.closed() => return Err(Stop::ChannelClosed),
                }
            }
            State::Relist { cursor } => self.relist(cursor).await?,
            State::Watch { rv } => match self.source.watch(&rv, self.watch_timeout_secs).await {
                Ok(stream) => {
                    // Tells the publisher the watch is established (readiness, liveness),
                    // unless the last one went silent: then only what it delivers counts.
                    if !self.after_idle {
                        self.send(Item::Progress { scope: self.scope.clone(), rv: rv.clone(), bookmark: false }).await?;
                    }
                    State::Watching { rv, stream, opened: Instant::now(), items: 0 }
                }
                Err(e) if is_gone(&e) => {
                    self.metrics.gone_410.inc();
                    tracing::warn!(scope = %self.scope, rv = %rv, "watch answered 410 Gone: relisting");
                    State::Relist { cursor: Some(rv) }
                }
                Err(e) => {
                    tracing::warn!(scope = %self.scope, error = %e, "opening the watch failed");
                    self.metrics.restart("error");
                    let ra = retry_after(&e);
                    self.backoff_then(State::Watch { rv }, ra)
                }
            },
            State::Watching { mut rv, mut stream, opened, mut items } => {
                let next = tokio::select! {
                    n = tokio::time::timeout(self.idle_timeout, stream.next()) => n,
                    _ = self.tx.closed() => return Err(Stop::ChannelClosed),
                };
                let Ok(next) = next else {
                    self.metrics.restart("idle");
                    tracing::warn!(scope = %self.scope, rv = %rv, idle = ?self.idle_timeout, "the watch delivered nothing within the idle timeout (silent connection): re-watching");
                    self.after_idle = true;
                    return Ok(State::Watch { rv });
                };
                if next.is_some() || items > 0 {
                    self.after_idle = false;
                }
                match next {
                    Some(Ok(Change::Object(kind, ev))) => {
                        rv = ev.resource_version.as_str().to_owned();
                        items += 1;
                        self.empty_in_a_row = 0;
                        self.emit(kind, ev, rv.clone()).await?;
                        State::Watching { rv, stream, opened, items }
                    }
                    Some(Ok(Change::Bookmark(b))) => {
                        self.metrics.received("BOOKMARK");
                        self.metrics.last_bookmark.set(crate::publish::now_us() as f64 / 1e6);
                        items += 1;
                        self.empty_in_a_row = 0;
                        rv = b;
                        self.send(Item::Progress { scope: self.scope.clone(), rv: rv.clone(), bookmark: true }).await?;
                        State::Watching { rv, stream, opened, items }
                    }
                    Some(Ok(Change::Error(status))) if status.code == 410 => {
                        self.metrics.gone_410.inc();
                        self.metrics.restart("gone");
                        tracing::warn!(scope = %self.scope, rv = %rv, message = %status.message, "410 Gone in the watch: relisting");
                        State::Relist { cursor: Some(rv) }
                    }
                    Some(Ok(Change::Error(status))) => {
                        tracing::warn!(scope = %self.scope, code = status.code, message = %status.message, "error in the watch");
                        self.metrics.restart("error");
                        self.backoff_then(State::Watch { rv }, None)
                    }
                    Some(Err(e)) => {
                        tracing::warn!(scope = %self.scope, error = %e, "watch stream failed");
                        self.metrics.restart("error");
                        let ra = retry_after(&e);
                        if is_gone(&e) {
                            State::Relist { cursor: Some(rv) }
                        } else {
                            self.backoff_then(State::Watch { rv }, ra)
                        }
                    }
                    None if items == 0 && opened.elapsed() < EMPTY_WATCH => {
                        self.metrics.empty_watches.inc();
                        self.metrics.restart("empty");
                        self.empty_in_a_row += 1;
                        if self.empty_in_a_row >= EMPTY_WATCHES_BEFORE_RELIST {
                            tracing::warn!(scope = %self.scope, rv = %rv, "watch keeps returning nothing at once (stale resourceVersion, kubernetes #104171): relisting");
                            self.empty_in_a_row = 0;
                            State::Relist { cursor: Some(rv) }
                        } else {
                            self.backoff_then(State::Watch { rv }, None)
                        }
                    }
                    None => {
                        self.metrics.restart("timeout");
                        State::Watch { rv }
                    }
                }
            }
        })
    }

    /// List everything, send what the cursor has not covered, return the next state.
    async fn relist(&mut self, cursor: Option<String>) -> Result<State, Stop> {
        self.metrics.relists.inc();
        if cursor.is_some() {
            // Relisting from a known cursor means changes were compacted away while
            // we were not watching; objects deleted meanwhile cannot be recovered.
            self.metrics.possible_gaps.inc();
        }
        let cursor_num = cursor.as_deref().and_then(rv_num);
        let mut cont = None;
        let mut list_rv = String::new();
        let mut sent = 0u64;
        loop {
            let page = match self.source.list_page(cont.clone()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(scope = %self.scope, error = %e, "list failed");
                    let ra = retry_after(&e);
                    // A failed page restarts the whole list: continue tokens expire.
                    return Ok(self.backoff_then(State::Relist { cursor }, ra));
                }
            };
            if list_rv.is_empty() {
                list_rv = page.resource_version.clone();
            }
            let list_num = rv_num(&list_rv);
            // resourceVersion went backwards: etcd was restored. Every listed object
            // may be new to us; the processor dedups the ones that are not.
            let reset = matches!((cursor_num, list_num), (Some(c), Some(l)) if l < c);
            if reset && cont.is_none() {
                self.metrics.rv_resets.inc();
                tracing::warn!(scope = %self.scope, cursor = ?cursor, list_rv = %list_rv, "resourceVersion reset detected (etcd restore?): republishing the list");
            }
            let resume = cursor.clone().unwrap_or_default();
            for ev in page.items {
                let newer = match (cursor_num, rv_num(&ev.resource_version)) {
                    _ if reset => true,
                    (Some(c), Some(v)) => v > c,
                    _ => true,
                };
                if newer {
                    sent += 1;
                    self.emit(WatchKind::Relisted, ev, resume.clone()).await?;
                }
            }
            cont = page.continue_token;
            if cont.is_none() {
                break;
            }
        }
        tracing::info!(scope = %self.scope, list_rv = %list_rv, published = sent, "relist done");
        self.send(Item::Progress { scope: self.scope.clone(), rv: list_rv.clone(), bookmark: false }).await?;
        self.backoff.reset();
        Ok(State::Watch { rv: list_rv })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(idle: Duration) -> (Watcher, mpsc::Receiver<Item>, Metrics) {
        // Never contacted: every step below works on a stream given by the test.
        let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let source = EventSource::new(client, crate::config::ApiKind::EventsV1, None, None, None);
        let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
        let (tx, rx) = mpsc::channel(8);
        (Watcher::new("".into(), source, vec![], 290, idle, metrics.clone(), tx), rx, metrics)
    }

    fn watching(stream: BoxStream<'static, Result<Change, kube::Error>>) -> State {
        State::Watching { rv: "7".into(), stream, opened: Instant::now(), items: 0 }
    }

    /// A watch that never answers is left after exactly the idle timeout, for a re-watch
    /// from the same resourceVersion; the reopened watch is not progress until it speaks.
    #[tokio::test(start_paused = true)]
    async fn a_silent_watch_ends_after_the_idle_timeout() {
        let idle = Duration::from_secs(320);
        let (mut w, mut rx, metrics) = watcher(idle);
        let t0 = tokio::time::Instant::now();
        let next = w.step(watching(futures::stream::pending().boxed())).await.unwrap();
        assert_eq!(t0.elapsed(), idle);
        assert!(matches!(next, State::Watch { ref rv } if rv == "7"));
        assert!(w.after_idle);
        assert_eq!(metrics.watch_restarts.get_or_create(&crate::metrics::CauseLabel { cause: "idle".into() }).get(), 1);
        assert!(rx.try_recv().is_err(), "an idle timeout hands on nothing");
        // Something arriving just before the bound keeps the watch; it clears the mark.
        let (tx, rx_bm) = futures::channel::mpsc::unbounded();
        let next = {
            let send = async {
                tokio::time::sleep(idle - Duration::from_millis(1)).await;
                tx.unbounded_send(Ok(Change::Bookmark("9".into()))).unwrap();
            };
            let (next, ()) = tokio::join!(w.step(watching(rx_bm.boxed())), send);
            next.unwrap()
        };
        assert!(matches!(next, State::Watching { ref rv, .. } if rv == "9"));
        assert!(!w.after_idle);
        assert!(matches!(rx.try_recv(), Ok(Item::Progress { bookmark: true, .. })));
    }

    #[test]
    fn resource_versions_parse_as_numbers() {
        assert_eq!(rv_num("123"), Some(123));
        assert_eq!(rv_num("abc"), None);
    }
}
