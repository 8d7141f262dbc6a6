//! The simulated etcd of one cluster: Events (plus Leases and Namespaces) under one
//! cluster-wide resourceVersion counter, a bounded change history for resuming watches,
//! and a broadcast of every Event change to the open watches.
//!
//! Writers never wait for watchers: each change goes into a `tokio::sync::broadcast` ring;
//! a watcher that falls a whole ring behind is closed (see `watch.rs`), as the real
//! apiserver closes unresponsive watchers. Every change is rendered to JSON at most once per
//! API shape, lazily, and the bytes are shared by all watchers and lists.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tokio::sync::broadcast;

use super::leases::LeaseTable;
use super::shapes::{self, Shape, WatchType};

/// Events are keyed by (namespace, name), which is also the order of lists.
pub(crate) type Key = (String, String);

/// One version of one Event, with its JSON rendered on first use.
pub(crate) struct Stored {
    pub event: Event,
    object: [OnceLock<Bytes>; 2],
    item: [OnceLock<Bytes>; 2],
}

impl Stored {
    fn new(event: Event) -> Arc<Self> {
        Arc::new(Self {
            event,
            object: Default::default(),
            item: Default::default(),
        })
    }

    /// Full JSON object (with apiVersion/kind), as in watch events and GET.
    pub fn object(&self, shape: Shape) -> &Bytes {
        self.object[shape.index()].get_or_init(|| shapes::object_json(&self.event, shape))
    }

    /// JSON as a list item (no apiVersion/kind).
    pub fn item(&self, shape: Shape) -> &Bytes {
        self.item[shape.index()].get_or_init(|| shapes::list_item_json(self.object(shape), shape))
    }

    pub fn rv(&self) -> u64 {
        rv_of(&self.event.metadata)
    }

    pub fn key(&self) -> Key {
        key_of(&self.event)
    }
}

fn rv_of(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn key_of(ev: &Event) -> Key {
    (
        ev.metadata.namespace.clone().unwrap_or_default(),
        ev.metadata.name.clone().unwrap_or_default(),
    )
}

/// One write to an Event, as watchers see it.
pub(crate) struct Change {
    pub rv: u64,
    pub kind: WatchType,
    /// The object after the change; for DELETED the last state carrying the deletion RV.
    pub object: Arc<Stored>,
    /// The state before the change, so a list can be served at an older RV.
    pub prev: Option<Arc<Stored>>,
    lines: [OnceLock<Bytes>; 2],
}

impl Change {
    /// The complete watch line in a shape, rendered once and shared.
    pub fn line(&self, shape: Shape) -> &Bytes {
        self.lines[shape.index()]
            .get_or_init(|| shapes::watch_line(self.kind.as_str(), self.object.object(shape)))
    }
}

pub(super) struct EventsState {
    pub(super) items: BTreeMap<Key, Arc<Stored>>,
    /// The newest `window` changes, oldest first.
    pub(super) history: VecDeque<Arc<Change>>,
    /// Changes up to and including this RV are no longer in `history`.
    pub(super) compacted_through: u64,
    tx: broadcast::Sender<Arc<Change>>,
    /// Write time of each Event version, for TTL expiry (oldest first).
    expiry: VecDeque<(Instant, Key, u64)>,
}

pub(crate) struct Inner {
    rv: AtomicU64,
    uid_seq: AtomicU64,
    pub(super) events: Mutex<EventsState>,
    pub leases: Mutex<LeaseTable>,
    namespaces: Mutex<BTreeMap<String, Namespace>>,
    window: usize,
    buffer: usize,
    ttl: Option<Duration>,
    cluster_uid: String,
    /// With [`Store::log_changes`]: (event uid, resourceVersion) of every change, in
    /// order — what the server served, for tests that count what a client got.
    changelog: Mutex<Option<Vec<(String, u64)>>>,
}

/// A handle on one cluster's objects. Cheap to clone; all clones share the same data.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// Why a list or watch cannot be served at the requested resourceVersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RvError {
    /// Older than the retained history (410 Expired); carries the compacted RV.
    TooOld { compacted_through: u64 },
}

/// What a new watch starts from.
pub(crate) struct Subscription {
    /// Synthetic ADDED objects (watch from RV 0/unset, or sendInitialEvents).
    pub initial: Option<Vec<Arc<Stored>>>,
    /// Retained changes after the requested RV.
    pub backlog: Vec<Arc<Change>>,
    pub rx: broadcast::Receiver<Arc<Change>>,
    /// Changes with an RV at or below this were already covered.
    pub start_rv: u64,
}

/// The wall clock as a jiff Timestamp, without needing jiff's `std` feature.
pub(crate) fn now() -> k8s_openapi::jiff::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    k8s_openapi::jiff::Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// A store that keeps `compaction_window` changes for resuming watches, expires Events
    /// `event_ttl` after their last write (when a sweeper runs, see [`Store::expire`]), and
    /// holds up to `watch_buffer` undelivered changes per watcher.
    pub fn new(
        compaction_window: usize,
        event_ttl: Option<Duration>,
        watch_buffer: usize,
        cluster_uid: String,
    ) -> Self {
        let (tx, _) = broadcast::channel(watch_buffer.max(16));
        let inner = Arc::new(Inner {
            rv: AtomicU64::new(0),
            uid_seq: AtomicU64::new(0),
            events: Mutex::new(EventsState {
                items: BTreeMap::new(),
                history: VecDeque::new(),
                compacted_through: 0,
                tx,
                expiry: VecDeque::new(),
            }),
            leases: Mutex::new(LeaseTable::default()),
            namespaces: Mutex::new(BTreeMap::new()),
            window: compaction_window,
            buffer: watch_buffer.max(16),
            ttl: event_ttl,
            cluster_uid,
            changelog: Mutex::new(None),
        });
        let store = Store { inner };
        for ns in ["kube-system", "default"] {
            store.create_namespace(ns);
        }
        store
    }

    fn create_namespace(&self, name: &str) {
        let uid = if name == "kube-system" {
            self.inner.cluster_uid.clone()
        } else {
            self.new_uid()
        };
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(uid),
                resource_version: Some(self.next_rv().to_string()),
                creation_timestamp: Some(Time(now())),
                labels: Some(
                    [("kubernetes.io/metadata.name".to_string(), name.to_string())].into(),
                ),
                ..Default::default()
            },
            spec: Some(Default::default()),
            status: Some(k8s_openapi::api::core::v1::NamespaceStatus {
                phase: Some("Active".into()),
                ..Default::default()
            }),
        };
        lock(&self.inner.namespaces).insert(name.into(), ns);
    }

    /// The next value of the cluster-wide resourceVersion counter (etcd's revision).
    pub(crate) fn next_rv(&self) -> u64 {
        self.inner.rv.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A fresh UID shaped like a UUID: the cluster UID's first groups and a counter, so UIDs
    /// are unique across simulated clusters and reproducible within one.
    pub(crate) fn new_uid(&self) -> String {
        let n = self.inner.uid_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let prefix: String = self.inner.cluster_uid.chars().take(24).collect();
        format!("{prefix}{n:012x}")
    }

    pub fn cluster_uid(&self) -> &str {
        &self.inner.cluster_uid
    }

    pub fn namespace(&self, name: &str) -> Option<Namespace> {
        lock(&self.inner.namespaces).get(name).cloned()
    }

    /// Create or update an Event keyed by (metadata.namespace, metadata.name). Assigns
    /// metadata.uid (kept across updates) and creationTimestamp when unset, and a new
    /// resourceVersion; watchers get ADDED or MODIFIED. Returns the new resourceVersion.
    pub fn apply(&self, mut ev: Event) -> u64 {
        shapes::normalize(&mut ev);
        let key = key_of(&ev);
        let mut st = lock(&self.inner.events);
        let prev = st.items.get(&key).cloned();
        let meta = &mut ev.metadata;
        if meta.uid.as_deref().unwrap_or("").is_empty() {
            meta.uid = Some(match &prev {
                Some(p) => p.event.metadata.uid.clone().unwrap_or_default(),
                None => self.new_uid(),
            });
        }
        if meta.creation_timestamp.is_none() {
            meta.creation_timestamp = Some(match &prev {
                Some(p) => p
                    .event
                    .metadata
                    .creation_timestamp
                    .clone()
                    .unwrap_or(Time(now())),
                None => Time(now()),
            });
        }
        let rv = self.next_rv();
        meta.resource_version = Some(rv.to_string());
        let stored = Stored::new(ev);
        st.items.insert(key.clone(), stored.clone());
        let kind = if prev.is_some() {
            WatchType::Modified
        } else {
            WatchType::Added
        };
        if self.inner.ttl.is_some() {
            st.expiry.push_back((Instant::now(), key, rv));
        }
        self.record(
            &mut st,
            Change {
                rv,
                kind,
                object: stored,
                prev,
                lines: Default::default(),
            },
        );
        rv
    }

    /// Delete an Event; watchers get DELETED with its last state at the deletion RV.
    /// Returns the RV of the deletion, None if absent.
    pub fn delete(&self, namespace: &str, name: &str) -> Option<u64> {
        let mut st = lock(&self.inner.events);
        let prev = st
            .items
            .remove(&(namespace.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        let mut last = prev.event.clone();
        last.metadata.resource_version = Some(rv.to_string());
        let change = Change {
            rv,
            kind: WatchType::Deleted,
            object: Stored::new(last),
            prev: Some(prev),
            lines: Default::default(),
        };
        self.record(&mut st, change);
        Some(rv)
    }

    /// Start keeping the (uid, resourceVersion) of every Event change from now on.
    pub fn log_changes(&self) {
        lock(&self.inner.changelog).get_or_insert_with(Vec::new);
    }

    /// The changes logged since [`Store::log_changes`] (empty if never enabled).
    pub fn changes(&self) -> Vec<(String, u64)> {
        lock(&self.inner.changelog).clone().unwrap_or_default()
    }

    fn record(&self, st: &mut EventsState, change: Change) {
        if let Some(log) = lock(&self.inner.changelog).as_mut() {
            log.push((change.object.event.metadata.uid.clone().unwrap_or_default(), change.rv));
        }
        let change = Arc::new(change);
        if self.inner.window == 0 {
            st.compacted_through = change.rv;
        } else {
            st.history.push_back(change.clone());
            while st.history.len() > self.inner.window {
                let old = st.history.pop_front().expect("non-empty");
                st.compacted_through = old.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = st.tx.send(change);
    }

    /// The current value of the cluster-wide resourceVersion counter.
    pub fn current_rv(&self) -> u64 {
        self.inner.rv.load(Ordering::SeqCst)
    }

    /// Number of stored Events.
    pub fn len(&self) -> usize {
        lock(&self.inner.events).items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current version of one Event.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Event> {
        lock(&self.inner.events)
            .items
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| s.event.clone())
    }

    pub(crate) fn get_stored(&self, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        lock(&self.inner.events)
            .items
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Drop all retained history now (etcd compaction at the current revision): every watch
    /// or continue token from an older RV gets 410 Expired afterwards.
    pub fn compact(&self) {
        let mut st = lock(&self.inner.events);
        st.history.clear();
        st.compacted_through = self.current_rv();
    }

    /// The RV through which history was compacted (watches from older RVs get 410).
    pub fn compacted_rv(&self) -> u64 {
        lock(&self.inner.events).compacted_through
    }

    /// Simulate an etcd restore from a backup taken at revision `to`: objects written after
    /// it vanish without DELETED events, the counter goes back to `to`, history is dropped
    /// and every open watch is closed (the apiserver restarts). A client that then watches
    /// from its newer, remembered RV waits for the counter to pass it, receiving nothing
    /// in between, as with an etcd watch on a future revision.
    pub fn reset_resource_version(&self, to: u64) {
        let mut st = lock(&self.inner.events);
        st.items.retain(|_, s| s.rv() <= to);
        st.expiry.retain(|(_, _, rv)| *rv <= to);
        st.history.clear();
        st.compacted_through = to;
        // Dropping the old sender ends every subscribed watch once drained.
        st.tx = broadcast::channel(self.inner.buffer).0;
        lock(&self.inner.leases).retain_through(to);
        self.inner.rv.store(to, Ordering::SeqCst);
    }

    /// Delete every Event whose last write is older than the TTL; returns how many.
    pub fn expire(&self) -> usize {
        let Some(ttl) = self.inner.ttl else { return 0 };
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut st = lock(&self.inner.events);
            while let Some((t, _, _)) = st.expiry.front() {
                if now.duration_since(*t) < ttl {
                    break;
                }
                let (_, key, rv) = st.expiry.pop_front().expect("non-empty");
                if st.items.get(&key).is_some_and(|s| s.rv() == rv) {
                    due.push(key);
                }
            }
        }
        due.iter()
            .filter(|(ns, name)| self.delete(ns, name).is_some())
            .count()
    }

    /// Start a watch after `from` (None: synthetic ADDED for all current objects first).
    pub(crate) fn subscribe(&self, from: Option<u64>) -> Result<Subscription, RvError> {
        let st = lock(&self.inner.events);
        let current = self.current_rv();
        let rx = st.tx.subscribe();
        match from {
            None => Ok(Subscription {
                initial: Some(st.items.values().cloned().collect()),
                backlog: Vec::new(),
                rx,
                start_rv: current,
            }),
            Some(rv) if rv < st.compacted_through => Err(RvError::TooOld {
                compacted_through: st.compacted_through,
            }),
            Some(rv) => {
                let backlog = st.history.iter().filter(|c| c.rv > rv).cloned().collect();
                Ok(Subscription {
                    initial: None,
                    backlog,
                    rx,
                    start_rv: rv,
                })
            }
        }
    }

    /// The current RV read under the events lock: every Event change up to it has been
    /// broadcast, so a watcher that drained its receiver afterwards has seen them all.
    pub(crate) fn settled_rv(&self) -> u64 {
        let _st = lock(&self.inner.events);
        self.current_rv()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn event(ns: &str, name: &str, reason: &str) -> Event {
        Event {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            ..Default::default()
        }
    }

    pub(crate) fn store(window: usize) -> Store {
        Store::new(
            window,
            None,
            1024,
            "11111111-2222-4333-8444-555555555555".into(),
        )
    }

    #[test]
    fn one_counter_and_uids() {
        let s = store(10);
        let base = s.current_rv();
        assert_eq!(base, 2, "two namespaces were created");
        let rv1 = s.apply(event("a", "e1", "X"));
        let rv2 = s.apply(event("a", "e1", "Y"));
        assert_eq!((rv1, rv2), (3, 4));
        let e = s.get("a", "e1").unwrap();
        assert_eq!(
            e.metadata.uid.as_deref(),
            Some("11111111-2222-4333-8444-000000000002"),
            "uid 1 went to the default namespace"
        );
        assert_eq!(e.reason.as_deref(), Some("Y"));
        assert_eq!(s.delete("a", "e1"), Some(5));
        assert_eq!(s.delete("a", "e1"), None);
        assert_eq!(s.len(), 0);
        assert_eq!(
            s.namespace("kube-system").unwrap().metadata.uid.as_deref(),
            Some(s.cluster_uid())
        );
    }

    #[test]
    fn window_bounds_resume() {
        let s = store(3);
        let start = s.current_rv();
        for i in 0..5 {
            s.apply(event("a", &format!("e{i}"), "X"));
        }
        assert!(s.subscribe(Some(start)).is_err());
        let sub = s.subscribe(Some(start + 2)).unwrap();
        assert_eq!(sub.backlog.len(), 3);
        assert_eq!(s.subscribe(None).unwrap().initial.unwrap().len(), 5);
    }

    #[test]
    fn reset_goes_back() {
        let s = store(10);
        let r = s.apply(event("a", "keep", "X"));
        s.apply(event("a", "gone", "X"));
        s.reset_resource_version(r);
        assert_eq!(s.current_rv(), r);
        assert_eq!(s.len(), 1);
        assert!(s.subscribe(Some(r - 1)).is_err());
        assert_eq!(s.apply(event("a", "new", "X")), r + 1);
    }

    #[test]
    fn ttl_expiry_deletes() {
        let s = Store::new(10, Some(Duration::from_millis(0)), 64, "u".repeat(36));
        let mut sub = s.subscribe(Some(s.current_rv())).unwrap();
        s.apply(event("a", "e", "X"));
        assert_eq!(s.expire(), 1);
        assert_eq!(s.len(), 0);
        assert_eq!(sub.rx.try_recv().unwrap().kind, WatchType::Added);
        assert_eq!(sub.rx.try_recv().unwrap().kind, WatchType::Deleted);
    }
}
