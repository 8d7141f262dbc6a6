//! The watch of one scope as an explicit state machine, after kube-runtime's
//! `watcher`: [`Machine::step`] takes a [`State`] and returns what to hand on, if
//! anything, and the next state. The step talks only to a [`Source`]; drop rules,
//! metrics, logs and the bounded channel to the publisher are the [`driver`]'s, so
//! every transition is tested alone under tokio's paused clock (`tests.rs`).
//!
//! States (what the next step does):
//! - [`State::Relist`]: announce a relist ([`Note::Relisting`]), then list.
//! - [`State::ListPage`]: fetch one page of a consistent list (the first page fixes
//!   the snapshot and its resourceVersion).
//! - [`State::Listing`]: hand on the next listed object newer than the cursor as
//!   `RELISTED`; at the end of the last page, report the list's resourceVersion
//!   ([`Progress::Listed`]) and watch from it.
//! - [`State::Watch`]: open a watch from `rv`.
//! - [`State::Watching`]: read the next change of the open watch, waiting at most
//!   the idle timeout for it.
//! - [`State::Backoff`]: sleep (jittered, growing, at least the server's
//!   `Retry-After`), then go on to the held state.
//!
//! Transitions worth naming:
//! - watch ends normally (server timeout) → `Watch{rv}` at once;
//! - watch ends *immediately with nothing* — the stale-RV empty 200 of kubernetes
//!   #104171, on which kube's own watcher busy-loops → `Backoff` then `Watch`, and
//!   after [`EMPTY_WATCHES_BEFORE_RELIST`] in a row → `Relist` (treated as desync);
//! - `410 Gone` as HTTP status or as an `ERROR` line → `Relist` from the last
//!   resourceVersion handed on; a relist from a known cursor is a possible gap;
//! - the list's resourceVersion below the cursor (etcd restored) → every listed
//!   object is handed on, not only the newer ones;
//! - any other error (dropped connection, 429 with Retry-After, 500) → `Backoff`
//!   then `Watch{rv}` from the last resourceVersion handed on; a failed list page
//!   → `Backoff` then the list again from its first page (continue tokens expire);
//! - **idle timeout**: the watch delivered nothing — no event, no BOOKMARK, no end —
//!   for `idle_timeout` → `Watch{rv}` at once (the silent connection: a wedged proxy or
//!   a half-dead API server that keeps the connection open and writes nothing; kube's
//!   watcher has no such bound). kube-apiserver sends no BOOKMARKs on Events (they
//!   bypass the watch cache), so a quiet, healthy watch is silent until the server ends
//!   it at `timeoutSeconds`: the bound must exceed the watch timeout
//!   (`CollectorConfig::watch_idle_timeout`). The watch reopened after an idle timeout
//!   is not reported as progress ([`Progress::Opened`]) until something arrives, so
//!   a server whose every watch goes silent turns the collector unhealthy.
//!
//! The backoff grows on consecutive failures and resets on success: an object or
//! bookmark from a watch, or a completed relist.
//!
//! Errors never end the machine (kube-rs #1615): only the driver's shutdown does.

pub mod driver;
#[cfg(test)]
mod script;
#[cfg(test)]
mod tests;

pub use driver::{Item, ScopeWatch, Stop};

use futures::StreamExt;
use schemas::model::NormalizedEvent;
use schemas::records::WatchKind;
use std::time::Duration;
use tokio::time::Instant;

use runtime::backoff::Backoff;
use crate::source::{Change, ChangeStream, Source, SourceError};

/// Empty watches in a row that mean "desynchronized": relist.
pub const EMPTY_WATCHES_BEFORE_RELIST: u32 = 3;
/// A watch that ends sooner than this with no item counts as empty.
pub const EMPTY_WATCH: Duration = Duration::from_secs(1);

/// What a step hands out. Not boxed: nearly every output is an event.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// An event to publish (drop rules not applied yet). `cursor_rv` is where a
    /// restart may resume after it: the event's own resourceVersion while watching,
    /// the pre-relist cursor during a relist (list order is not RV order, so a crash
    /// mid-relist must resume before the relist).
    Event { kind: WatchKind, event: Box<NormalizedEvent>, cursor_rv: String },
    /// The scope reached `rv` without a record to publish.
    Progress { rv: String, why: Progress },
    /// A transition to log and count; nothing to publish.
    Note(Note),
}

/// Why the scope reached a resourceVersion without an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A watch was just established (readiness, liveness).
    Opened,
    /// A BOOKMARK line.
    Bookmark,
    /// A relist ended; `published` objects were newer than the cursor.
    Listed { published: u64 },
}

/// Which request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    List,
    OpenWatch,
    /// The open watch's stream (dropped connection, an `ERROR` line).
    Stream,
}

/// Transitions the driver logs and counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A relist starts. `cursor` Some: from a known point (410, desync), so changes
    /// may have been compacted away meanwhile (a possible gap).
    Relisting { cursor: Option<String> },
    /// The list's resourceVersion is below the cursor (etcd restored from a backup):
    /// the whole list is handed on.
    RvReset { cursor: String, list_rv: String },
    /// `410 Gone` on opening the watch or in it: relisting.
    Gone { rv: String, message: String },
    /// The watch ended at once with nothing (kubernetes #104171); `relist`: it was
    /// the [`EMPTY_WATCHES_BEFORE_RELIST`]th in a row.
    Empty { rv: String, relist: bool },
    /// Nothing arrived within the idle timeout: re-watching.
    Idle { rv: String },
    /// The server ended the watch (its `timeoutSeconds`): re-watching.
    Ended { rv: String },
    /// A request failed; the next attempt comes after `retry_in`.
    Failed { request: Request, error: String, retry_in: Duration },
}

/// Where the machine is. Each variant's doc says what the next step does.
pub enum State {
    /// Announce a relist from `cursor` (None: never published), then list.
    Relist { cursor: Option<String> },
    /// Fetch the page after `cont` (None: the first page of a new list).
    ListPage { cursor: Option<String>, cont: Option<String>, list_rv: Option<String>, published: u64 },
    /// Hand on the next of `items` newer than the cursor, else go to the next page,
    /// else report the end of the relist and watch from `list_rv`.
    Listing {
        cursor: Option<String>,
        list_rv: String,
        items: std::vec::IntoIter<Box<NormalizedEvent>>,
        cont: Option<String>,
        published: u64,
    },
    /// Open a watch from `rv`.
    Watch { rv: String },
    /// Read the next change, at most `idle_timeout` from now.
    Watching { rv: String, stream: ChangeStream, opened: Instant, items: u64 },
    /// Sleep `delay`, then go on to `then`.
    Backoff { delay: Duration, then: Box<State> },
}

impl State {
    /// Where a scope starts: watching from its cursor, or listing if it has none.
    pub fn start(cursor: Option<String>) -> State {
        match cursor {
            Some(rv) => State::Watch { rv },
            None => State::Relist { cursor: None },
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Relist { cursor } => write!(f, "Relist {{ cursor: {cursor:?} }}"),
            State::ListPage { cursor, cont, .. } => write!(f, "ListPage {{ cursor: {cursor:?}, cont: {cont:?} }}"),
            State::Listing { list_rv, items, cont, .. } => {
                write!(f, "Listing {{ list_rv: {list_rv:?}, left: {}, cont: {cont:?} }}", items.len())
            }
            State::Watch { rv } => write!(f, "Watch {{ rv: {rv:?} }}"),
            State::Watching { rv, items, .. } => write!(f, "Watching {{ rv: {rv:?}, items: {items} }}"),
            State::Backoff { delay, then } => write!(f, "Backoff {{ delay: {delay:?}, then: {then:?} }}"),
        }
    }
}

/// Parse a resourceVersion as etcd's revision number (None if opaque).
pub fn rv_num(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

/// The watch machine of one scope: the source, the settings, and what the machine
/// remembers across states (the backoff, empty watches in a row, the idle mark).
pub struct Machine<S> {
    source: S,
    watch_timeout_secs: u32,
    /// No item for this long ends the watch (see the module doc).
    idle_timeout: Duration,
    backoff: Backoff,
    empty_in_a_row: u32,
    /// The last watch ended by the idle timeout and the current one has delivered
    /// nothing yet: opening it is not progress.
    after_idle: bool,
}

type Step = (Option<Output>, State);

impl<S: Source> Machine<S> {
    pub fn new(source: S, watch_timeout_secs: u32, idle_timeout: Duration) -> Self {
        Self::with_backoff(source, watch_timeout_secs, idle_timeout, Backoff::default())
    }

    pub fn with_backoff(source: S, watch_timeout_secs: u32, idle_timeout: Duration, backoff: Backoff) -> Self {
        Machine { source, watch_timeout_secs, idle_timeout, backoff, empty_in_a_row: 0, after_idle: false }
    }

    /// One transition. Cancel-safe only in the sense that dropping it drops the
    /// state: the driver drops it only to stop.
    pub async fn step(&mut self, state: State) -> Step {
        match state {
            State::Backoff { delay, then } => {
                tokio::time::sleep(delay).await;
                (None, *then)
            }
            State::Relist { cursor } => (
                Some(Output::Note(Note::Relisting { cursor: cursor.clone() })),
                State::ListPage { cursor, cont: None, list_rv: None, published: 0 },
            ),
            State::ListPage { cursor, cont, list_rv, published } => self.list_page(cursor, cont, list_rv, published).await,
            State::Listing { cursor, list_rv, items, cont, published } => self.listing(cursor, list_rv, items, cont, published),
            State::Watch { rv } => self.open(rv).await,
            State::Watching { rv, stream, opened, items } => self.watching(rv, stream, opened, items).await,
        }
    }

    /// Back off before `then`; the delay grows with consecutive failures.
    fn fail(&mut self, request: Request, error: SourceError, then: State) -> Step {
        let hint = match &error {
            SourceError::Retryable { retry_after, .. } => *retry_after,
            SourceError::Gone(_) => None,
        };
        let retry_in = self.backoff.next_delay(hint);
        let note = Note::Failed { request, error: error.to_string(), retry_in };
        (Some(Output::Note(note)), State::Backoff { delay: retry_in, then: Box::new(then) })
    }

    fn gone(rv: String, message: String) -> Step {
        (Some(Output::Note(Note::Gone { rv: rv.clone(), message })), State::Relist { cursor: Some(rv) })
    }

    async fn list_page(&mut self, cursor: Option<String>, cont: Option<String>, list_rv: Option<String>, published: u64) -> Step {
        let page = match self.source.list_page(cont).await {
            Ok(p) => p,
            // Whatever failed (a 410 here is an expired continue token), the list
            // restarts from its first page: a new snapshot.
            Err(e) => return self.fail(Request::List, e, State::ListPage { cursor, cont: None, list_rv: None, published: 0 }),
        };
        let first = list_rv.is_none();
        let list_rv = list_rv.unwrap_or(page.resource_version);
        let next = State::Listing { cursor: cursor.clone(), list_rv: list_rv.clone(), items: page.items.into_iter(), cont: page.continue_token, published };
        match cursor {
            Some(c) if first && rv_reset(&c, &list_rv) => (Some(Output::Note(Note::RvReset { cursor: c, list_rv })), next),
            _ => (None, next),
        }
    }

    fn listing(
        &mut self,
        cursor: Option<String>,
        list_rv: String,
        mut items: std::vec::IntoIter<Box<NormalizedEvent>>,
        cont: Option<String>,
        mut published: u64,
    ) -> Step {
        // Everything is newer after an RV reset; an opaque RV cannot be compared.
        let newer_than = match cursor.as_deref() {
            Some(c) if !rv_reset(c, &list_rv) => rv_num(c),
            _ => None,
        };
        let newer = |ev: &NormalizedEvent| match (newer_than, rv_num(&ev.resource_version)) {
            (Some(c), Some(v)) => v > c,
            _ => true,
        };
        if let Some(event) = items.by_ref().find(|ev| newer(ev)) {
            published += 1;
            let out = Output::Event { kind: WatchKind::Relisted, event, cursor_rv: cursor.clone().unwrap_or_default() };
            return (Some(out), State::Listing { cursor, list_rv, items, cont, published });
        }
        if cont.is_some() {
            return (None, State::ListPage { cursor, cont, list_rv: Some(list_rv), published });
        }
        self.backoff.reset();
        self.empty_in_a_row = 0;
        self.after_idle = false;
        (Some(Output::Progress { rv: list_rv.clone(), why: Progress::Listed { published } }), State::Watch { rv: list_rv })
    }

    async fn open(&mut self, rv: String) -> Step {
        match self.source.watch(&rv, self.watch_timeout_secs).await {
            Ok(stream) => {
                let out = (!self.after_idle).then(|| Output::Progress { rv: rv.clone(), why: Progress::Opened });
                (out, State::Watching { rv, stream, opened: Instant::now(), items: 0 })
            }
            Err(SourceError::Gone(message)) => Self::gone(rv, message),
            Err(e) => self.fail(Request::OpenWatch, e, State::Watch { rv }),
        }
    }

    async fn watching(&mut self, rv: String, mut stream: ChangeStream, opened: Instant, mut items: u64) -> Step {
        let Ok(next) = tokio::time::timeout(self.idle_timeout, stream.next()).await else {
            self.after_idle = true;
            return (Some(Output::Note(Note::Idle { rv: rv.clone() })), State::Watch { rv });
        };
        if next.is_some() {
            self.after_idle = false;
        }
        match next {
            Some(Ok(change)) => {
                items += 1;
                self.empty_in_a_row = 0;
                self.backoff.reset();
                let (rv, out) = match change {
                    Change::Object(kind, event) => {
                        let rv = event.resource_version.as_str().to_owned();
                        (rv.clone(), Output::Event { kind, event, cursor_rv: rv })
                    }
                    Change::Bookmark(rv) => (rv.clone(), Output::Progress { rv, why: Progress::Bookmark }),
                };
                (Some(out), State::Watching { rv, stream, opened, items })
            }
            Some(Err(SourceError::Gone(message))) => Self::gone(rv, message),
            Some(Err(e)) => self.fail(Request::Stream, e, State::Watch { rv }),
            None if items == 0 && opened.elapsed() < EMPTY_WATCH => {
                self.empty_in_a_row += 1;
                if self.empty_in_a_row >= EMPTY_WATCHES_BEFORE_RELIST {
                    self.empty_in_a_row = 0;
                    (Some(Output::Note(Note::Empty { rv: rv.clone(), relist: true })), State::Relist { cursor: Some(rv) })
                } else {
                    let retry_in = self.backoff.next_delay(None);
                    let note = Note::Empty { rv: rv.clone(), relist: false };
                    (Some(Output::Note(note)), State::Backoff { delay: retry_in, then: Box::new(State::Watch { rv }) })
                }
            }
            None => (Some(Output::Note(Note::Ended { rv: rv.clone() })), State::Watch { rv }),
        }
    }
}

/// The list's resourceVersion went below the cursor: etcd was restored.
fn rv_reset(cursor: &str, list_rv: &str) -> bool {
    matches!((rv_num(cursor), rv_num(list_rv)), (Some(c), Some(l)) if l < c)
}
