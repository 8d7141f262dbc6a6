//! Emulations of client-go's two event recorders, so simulated events carry exactly the
//! fields, names, repeat updates and suppression that real emitters produce.
//!
//! Generators describe what a component *wants* to record ([`Intent`]: who, when,
//! about what, reason, message). [`Recorders`] turns intents into the writes the API
//! server would see:
//! - [`legacy`] — `k8s.io/client-go/tools/record` (kubelet, kube-controller-manager
//!   controllers, cluster-autoscaler, node-problem-detector): `EventCorrelator` with
//!   aggregation, per-key counting (`count`, `lastTimestamp`) and the spam filter.
//! - [`series`] — `k8s.io/client-go/tools/events` (kube-scheduler): `eventTime`,
//!   `action`, `related`, and `series` written on the first repeat, then only by the
//!   periodic refresh (30 min) and finish (6 min idle) loops.

pub mod legacy;
pub mod series;

use super::objects::ObjRef;
use super::timeline::{Ids, Nanos, TimedEmission};
use k8s_openapi::api::core::v1::Event;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Which client-go recorder a component uses, with its identity fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Emitter {
    /// `tools/record`: `source {component, host}`; `reportingComponent` and
    /// `reportingInstance` are copied from it (record/event.go `generateEvent`).
    Legacy { component: &'static str, host: String },
    /// `tools/events`: `reportingController`, `reportingInstance`.
    Series { controller: &'static str, instance: String },
}

/// Where an occurrence belongs in the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tag {
    /// Index of the incident (within its scenario) this occurrence is a member of.
    pub incident: Option<u16>,
    /// Whether this occurrence is the incident's root cause.
    pub root: bool,
}

impl Tag {
    pub const NONE: Tag = Tag { incident: None, root: false };
    pub fn member(i: u16) -> Tag {
        Tag { incident: Some(i), root: false }
    }
    pub fn root(i: u16) -> Tag {
        Tag { incident: Some(i), root: true }
    }
}

/// One thing a component records, at one time.
#[derive(Debug, Clone)]
pub struct Intent {
    pub at: Nanos,
    pub emitter: Emitter,
    pub regarding: ObjRef,
    pub related: Option<ObjRef>,
    /// `Normal` or `Warning`.
    pub event_type: &'static str,
    pub reason: &'static str,
    /// Only the new recorder sends an action.
    pub action: &'static str,
    pub message: String,
    pub tag: Tag,
}

/// Collects the writes the recorders make, as offsets from an origin.
pub struct Sink {
    pub origin: Nanos,
    pub emissions: Vec<TimedEmission>,
    /// Last written occurrence count per event uid (what a reader of the server sees).
    pub written: HashMap<String, i64>,
    /// Last write time per event uid (for TTL deletes).
    pub last_write: HashMap<String, (Nanos, String, String)>,
    /// Whether to keep `written`/`last_write` (off for endless background noise).
    pub track: bool,
}

impl Sink {
    pub fn new(origin: Nanos, track: bool) -> Self {
        Sink { origin, emissions: Vec::new(), written: HashMap::new(), last_write: HashMap::new(), track }
    }

    pub(crate) fn write(&mut self, at: Nanos, ev: Event, occurrences: i64) {
        if self.track {
            if let Some(uid) = ev.metadata.uid.clone() {
                self.written.insert(uid.clone(), occurrences);
                let ns = ev.metadata.namespace.clone().unwrap_or_default();
                let name = ev.metadata.name.clone().unwrap_or_default();
                self.last_write.insert(uid, (at, ns, name));
            }
        }
        let offset = Duration::from_nanos((at - self.origin).max(0) as u64);
        self.emissions.push(TimedEmission { offset, emission: super::timeline::Emission::Apply(ev) });
    }
}

/// All recorders of one cluster, keyed by emitter identity.
pub struct Recorders {
    legacy: HashMap<(&'static str, String), legacy::LegacyRecorder>,
    series: BTreeMap<(&'static str, String), series::SeriesRecorder>,
}

impl Default for Recorders {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorders {
    pub fn new() -> Self {
        Recorders { legacy: HashMap::new(), series: BTreeMap::new() }
    }

    /// Records one occurrence; returns the uid of the Event object it counts toward.
    /// The object may not exist on the server yet (or ever) if the spam filter
    /// dropped every write of it; see [`Sink::written`].
    pub fn record(&mut self, ids: &mut Ids, sink: &mut Sink, intent: &Intent) -> String {
        self.advance(ids, sink, intent.at);
        match &intent.emitter {
            Emitter::Legacy { component, host } => self
                .legacy
                .entry((*component, host.clone()))
                .or_insert_with(|| legacy::LegacyRecorder::new(component, host))
                .record(ids, sink, intent),
            Emitter::Series { controller, instance } => {
                let start = intent.at - ids.jitter(series::REFRESH_PERIOD);
                self.series
                    .entry((*controller, instance.clone()))
                    .or_insert_with(|| series::SeriesRecorder::new(controller, instance, start))
                    .record(ids, sink, intent)
            }
        }
    }

    /// Runs the new recorder's periodic loops up to `now`.
    pub fn advance(&mut self, ids: &mut Ids, sink: &mut Sink, now: Nanos) {
        for r in self.series.values_mut() {
            r.advance(ids, sink, now);
        }
    }

    /// Runs the periodic loops until every open series has been written for good, as
    /// a component that keeps running after the scenario would. Returns the time of
    /// the last write.
    pub fn finish(&mut self, ids: &mut Ids, sink: &mut Sink) -> Option<Nanos> {
        let mut last = None;
        for r in self.series.values_mut() {
            if let Some(t) = r.finish(ids, sink) {
                last = Some(last.map_or(t, |l: Nanos| l.max(t)));
            }
        }
        last
    }

    /// Every occurrence each event object received from its emitter, including those
    /// the spam filter kept from the server.
    pub fn emitted_occurrences(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for r in self.legacy.values() {
            r.emitted(&mut out);
        }
        for r in self.series.values() {
            r.emitted(&mut out);
        }
        out
    }

    /// Occurrences the spam filter dropped, over all legacy recorders.
    pub fn suppressed(&self) -> u64 {
        self.legacy.values().map(|r| r.suppressed).sum()
    }
}

/// A map that forgets its least recently used half when it grows past twice its
/// capacity: a cheap stand-in for the `groupcache/lru` caches (4096 entries) that
/// client-go keeps, exact for any scenario smaller than the capacity.
pub(crate) struct Lru<V> {
    map: HashMap<String, (V, u64)>,
    cap: usize,
    tick: u64,
}

impl<V> Lru<V> {
    pub fn new(cap: usize) -> Self {
        Lru { map: HashMap::new(), cap, tick: 0 }
    }

    pub fn get_mut(&mut self, k: &str) -> Option<&mut V> {
        self.tick += 1;
        let t = self.tick;
        self.map.get_mut(k).map(|(v, used)| {
            *used = t;
            v
        })
    }

    pub fn insert(&mut self, k: String, v: V) {
        self.tick += 1;
        self.map.insert(k, (v, self.tick));
        if self.map.len() > self.cap * 2 {
            let mut stamps: Vec<u64> = self.map.values().map(|(_, u)| *u).collect();
            stamps.sort_unstable();
            let cut = stamps[stamps.len() - self.cap];
            self.map.retain(|_, (_, u)| *u >= cut);
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|(v, _)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_keeps_recent_entries() {
        let mut l = Lru::new(2);
        for i in 0..5 {
            l.insert(i.to_string(), i);
        }
        assert!(l.get_mut("4").is_some());
        assert!(l.get_mut("0").is_none());
        assert!(l.values().count() <= 4);
    }
}
