//! `k8s.io/client-go/tools/record` as emitters run it: `recorderImpl.generateEvent` →
//! `EventCorrelator.EventCorrelate` (events_cache.go) → create or patch.
//!
//! The correlator, in its order:
//! 1. `EventAggregator`: events alike in source, object, type, reason and reporting
//!    fields but with different messages are counted per 10-minute window; from the
//!    10th distinct message on, the event is replaced by one named anew whose message
//!    is `"(combined from similar events): " + message`, keyed by the aggregate key
//!    (so later ones update it). The aggregate copy carries no reporting fields.
//! 2. `eventLogger.eventObserve`: a key seen before reuses the object's name and
//!    `firstTimestamp` and sends `count = previous + 1` with a new `lastTimestamp`.
//!    The count is cached *before* the spam filter runs, so a later write jumps.
//! 3. `EventSourceObjectSpamFilter`: a token bucket per source + object (burst 25,
//!    refill 1 per 300 s); an event without a token is dropped entirely.
//!
//! A patch of an object that was never created falls back to a create
//! (event.go `recordEvent`), so an object can appear with a count above 1.

use super::{Intent, Lru, Sink};
use crate::sim::objects::ObjRef;
use crate::sim::timeline::{k8s_time, Ids, Nanos, SECOND};
use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};

/// events_cache.go `defaultAggregateMaxEvents`.
pub const AGGREGATE_MAX_EVENTS: usize = 10;
/// events_cache.go `defaultAggregateIntervalInSeconds`.
pub const AGGREGATE_INTERVAL: Nanos = 600 * SECOND;
/// events_cache.go `defaultSpamBurst`.
pub const SPAM_BURST: f64 = 25.0;
/// events_cache.go `defaultSpamQPS` (1/300 per second), per nanosecond.
pub const SPAM_QPS_PER_NANO: f64 = 1.0 / 300.0 / SECOND as f64;
/// events_cache.go `maxLruCacheEntries`.
const LRU_ENTRIES: usize = 4096;
/// events_cache.go `EventAggregatorByReasonMessageFunc`.
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

struct LogEntry {
    name: String,
    uid: String,
    count: i64,
    first: Nanos,
    created: Option<Nanos>,
}

struct AggRecord {
    local_keys: BTreeSet<String>,
    last: Nanos,
}

struct Bucket {
    tokens: f64,
    last: Nanos,
}

pub struct LegacyRecorder {
    component: &'static str,
    host: String,
    logger: Lru<LogEntry>,
    aggregator: Lru<AggRecord>,
    spam: Lru<Bucket>,
    /// Occurrences dropped by the spam filter.
    pub suppressed: u64,
}

impl LegacyRecorder {
    pub fn new(component: &'static str, host: &str) -> Self {
        LegacyRecorder {
            component,
            host: host.to_string(),
            logger: Lru::new(LRU_ENTRIES),
            aggregator: Lru::new(LRU_ENTRIES),
            spam: Lru::new(LRU_ENTRIES),
            suppressed: 0,
        }
    }

    pub fn record(&mut self, ids: &mut Ids, sink: &mut Sink, it: &Intent) -> String {
        let now = it.at;
        let src = format!("{}\u{1}{}", self.component, self.host);
        let obj = it.regarding.object_key();

        // 1. EventAggregate.
        let agg_key = format!(
            "{src}\u{2}{obj}\u{2}{}\u{2}{}\u{2}{}\u{2}{}",
            it.event_type, it.reason, self.component, self.host
        );
        let aggregated = {
            let fresh = || AggRecord { local_keys: BTreeSet::new(), last: 0 };
            if self.aggregator.get_mut(&agg_key).is_none() {
                self.aggregator.insert(agg_key.clone(), fresh());
            }
            let rec = self.aggregator.get_mut(&agg_key).expect("inserted above");
            if now - rec.last > AGGREGATE_INTERVAL {
                *rec = fresh();
            }
            rec.local_keys.insert(it.message.clone());
            rec.last = now;
            if rec.local_keys.len() < AGGREGATE_MAX_EVENTS {
                false
            } else {
                // Go's sets.String.PopAny removes an arbitrary member; the first one
                // is this simulator's deterministic choice.
                let first = rec.local_keys.iter().next().cloned();
                if let Some(k) = first {
                    rec.local_keys.remove(&k);
                }
                true
            }
        };
        let (key, message) = if aggregated {
            (agg_key, format!("{COMBINED_PREFIX}{}", it.message))
        } else {
            (
                format!("{src}\u{2}{}\u{2}{}\u{2}{}\u{2}{}", event_key_ref(&it.regarding), it.event_type, it.reason, it.message),
                it.message.clone(),
            )
        };

        // 2. eventObserve.
        let entry = match self.logger.get_mut(&key) {
            Some(e) => {
                e.count += 1;
                e
            }
            None => {
                let name = format!("{}.{:x}", it.regarding.name, now);
                let e = LogEntry { name, uid: ids.uuid(), count: 1, first: now, created: None };
                self.logger.insert(key.clone(), e);
                self.logger.get_mut(&key).expect("inserted above")
            }
        };

        // 3. Spam filter (per source + object).
        let spam_key = format!("{src}\u{2}{obj}");
        if self.spam.get_mut(&spam_key).is_none() {
            self.spam.insert(spam_key.clone(), Bucket { tokens: SPAM_BURST, last: now });
        }
        let bucket = self.spam.get_mut(&spam_key).expect("inserted above");
        bucket.tokens = (bucket.tokens + (now - bucket.last).max(0) as f64 * SPAM_QPS_PER_NANO).min(SPAM_BURST);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            self.suppressed += 1;
            return entry.uid.clone();
        }
        bucket.tokens -= 1.0;

        let created = *entry.created.get_or_insert(now);
        let ev = build(LegacyFields {
            name: &entry.name,
            uid: &entry.uid,
            regarding: &it.regarding,
            event_type: it.event_type,
            reason: it.reason,
            message,
            component: self.component,
            host: &self.host,
            first: entry.first,
            last: now,
            count: entry.count,
            reporting: !aggregated,
            created,
        });
        let (uid, count) = (entry.uid.clone(), entry.count);
        sink.write(now, ev, count);
        uid
    }

    pub fn emitted(&self, out: &mut BTreeMap<String, i64>) {
        for e in self.logger.values() {
            let c = out.entry(e.uid.clone()).or_insert(0);
            *c = (*c).max(e.count);
        }
    }
}

/// getEventKey's reference fields: everything but resourceVersion.
fn event_key_ref(r: &ObjRef) -> String {
    format!("{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}", r.kind, r.namespace, r.name, r.field_path, r.uid, r.api_version)
}

struct LegacyFields<'a> {
    name: &'a str,
    uid: &'a str,
    regarding: &'a ObjRef,
    event_type: &'static str,
    reason: &'static str,
    message: String,
    component: &'static str,
    host: &'a str,
    first: Nanos,
    last: Nanos,
    count: i64,
    reporting: bool,
    created: Nanos,
}

/// The core/v1 Event a legacy recorder writes (record/event.go `makeEvent` plus
/// `generateEvent`'s reporting fields; `reportingComponent`/`reportingInstance` are
/// serialized even when empty, as Go does).
fn build(f: LegacyFields<'_>) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(f.name.to_string()),
            namespace: Some(f.regarding.event_namespace().to_string()),
            uid: Some(f.uid.to_string()),
            creation_timestamp: Some(k8s_time(f.created)),
            ..Default::default()
        },
        involved_object: f.regarding.to_k8s(),
        reason: Some(f.reason.to_string()),
        message: Some(f.message),
        type_: Some(f.event_type.to_string()),
        source: Some(EventSource {
            component: Some(f.component.to_string()),
            host: (!f.host.is_empty()).then(|| f.host.to_string()),
        }),
        first_timestamp: Some(k8s_time(f.first)),
        last_timestamp: Some(k8s_time(f.last)),
        count: Some(f.count as i32),
        reporting_component: Some(if f.reporting { f.component.to_string() } else { String::new() }),
        reporting_instance: Some(if f.reporting { f.host.to_string() } else { String::new() }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Emitter, Tag};
    use super::*;
    use crate::sim::timeline::Emission;

    fn intent(at: Nanos, pod: &ObjRef, reason: &'static str, msg: &str) -> Intent {
        Intent {
            at,
            emitter: Emitter::Legacy { component: "kubelet", host: "node-1".into() },
            regarding: pod.clone(),
            related: None,
            event_type: "Warning",
            reason,
            action: "",
            message: msg.into(),
            tag: Tag::NONE,
        }
    }

    fn applied(sink: &Sink) -> Vec<&Event> {
        sink.emissions
            .iter()
            .filter_map(|e| match &e.emission {
                Emission::Apply(ev) => Some(ev),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn repeats_update_the_same_object() {
        let mut ids = Ids::new(1);
        let pod = ObjRef::new("Pod", "v1", "ns", "p", &mut ids);
        let mut r = LegacyRecorder::new("kubelet", "node-1");
        let mut sink = Sink::new(0, true);
        let t0 = 1_700_000_000 * SECOND;
        let u1 = r.record(&mut ids, &mut sink, &intent(t0, &pod, "BackOff", "m"));
        let u2 = r.record(&mut ids, &mut sink, &intent(t0 + 10 * SECOND, &pod, "BackOff", "m"));
        assert_eq!(u1, u2);
        let evs = applied(&sink);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].metadata.name, evs[1].metadata.name);
        assert_eq!(evs[1].count, Some(2));
        assert_eq!(evs[1].first_timestamp, evs[0].first_timestamp);
        assert_ne!(evs[1].last_timestamp, evs[0].last_timestamp);
        assert_eq!(evs[0].reporting_component.as_deref(), Some("kubelet"));
        assert_eq!(evs[0].reporting_instance.as_deref(), Some("node-1"));
        assert_eq!(evs[0].metadata.name.as_deref(), Some(format!("p.{:x}", t0).as_str()));
    }

    #[test]
    fn spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() {
        let mut ids = Ids::new(2);
        let pod = ObjRef::new("Pod", "v1", "ns", "p", &mut ids);
        let mut r = LegacyRecorder::new("kubelet", "node-1");
        let mut sink = Sink::new(0, true);
        let t0 = 1_700_000_000 * SECOND;
        for i in 0..40 {
            r.record(&mut ids, &mut sink, &intent(t0 + i * SECOND, &pod, "BackOff", "m"));
        }
        assert_eq!(sink.emissions.len(), 25);
        assert_eq!(r.suppressed, 15);
        // 300 s later one token is back: the write carries every counted occurrence.
        r.record(&mut ids, &mut sink, &intent(t0 + 339 * SECOND, &pod, "BackOff", "m"));
        assert_eq!(sink.emissions.len(), 26);
        assert_eq!(applied(&sink)[25].count, Some(41));
    }

    #[test]
    fn ten_distinct_messages_are_combined() {
        let mut ids = Ids::new(3);
        let node = ObjRef::new("Node", "v1", "", "n", &mut ids);
        let mut r = LegacyRecorder::new("kernel-monitor", "n");
        let mut sink = Sink::new(0, true);
        let t0 = 1_700_000_000 * SECOND;
        let mut uids = Vec::new();
        for i in 0..12 {
            uids.push(r.record(&mut ids, &mut sink, &intent(t0 + i * 30 * SECOND, &node, "OOMKilling", &format!("pid {i}"))));
        }
        let evs = applied(&sink);
        assert_eq!(evs.len(), 12);
        assert!(!evs[8].message.as_deref().unwrap().starts_with(COMBINED_PREFIX));
        assert_eq!(evs[9].message.as_deref(), Some("(combined from similar events): pid 9"));
        assert_eq!(evs[9].reporting_component.as_deref(), Some(""));
        assert_eq!(evs[9].metadata.namespace.as_deref(), Some("default"));
        // Later similar events update the combined object.
        assert_eq!(uids[10], uids[9]);
        assert_eq!(evs[11].count, Some(3));
        assert_eq!(evs[11].message.as_deref(), Some("(combined from similar events): pid 11"));
    }

    #[test]
    fn aggregation_window_resets_after_ten_minutes() {
        let mut ids = Ids::new(4);
        let node = ObjRef::new("Node", "v1", "", "n", &mut ids);
        let mut r = LegacyRecorder::new("kernel-monitor", "n");
        let mut sink = Sink::new(0, true);
        let t0 = 1_700_000_000 * SECOND;
        for i in 0..12 {
            r.record(&mut ids, &mut sink, &intent(t0 + i * 601 * SECOND, &node, "OOMKilling", &format!("pid {i}")));
        }
        assert!(applied(&sink).iter().all(|e| !e.message.as_deref().unwrap().starts_with(COMBINED_PREFIX)));
    }
}
