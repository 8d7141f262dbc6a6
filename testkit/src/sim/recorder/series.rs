//! `k8s.io/client-go/tools/events` as kube-scheduler runs it (event_broadcaster.go,
//! event_recorder.go).
//!
//! - An event is keyed by type, action, reason, reportingController,
//!   reportingInstance, regarding and related — *not* by its note, so a repeat with a
//!   new message still counts toward the first object and keeps its first note.
//! - First occurrence: created with `eventTime` and no series.
//! - First repeat: `series {count: 2, lastObservedTime}` is patched at once.
//! - Further repeats only update the cached series; the object is written again by
//!   `refreshExistingEventSeries` (every 30 min, all open series) and by
//!   `finishSeries` (every 6 min: a series idle for 6 min is written a last time and
//!   forgotten; a singleton older than 6 min is forgotten), so a later occurrence
//!   after that creates a new object.

use super::{Intent, Sink};
use crate::sim::objects::ObjRef;
use crate::sim::timeline::{k8s_micro_time, k8s_time, Ids, Nanos, SECOND};
use k8s_openapi::api::core::v1::{Event, EventSeries, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// event_broadcaster.go `finishTime`.
pub const FINISH_PERIOD: Nanos = 6 * 60 * SECOND;
/// event_broadcaster.go `refreshTime`.
pub const REFRESH_PERIOD: Nanos = 30 * 60 * SECOND;

struct Cached {
    name: String,
    uid: String,
    regarding: ObjRef,
    related: Option<ObjRef>,
    event_type: &'static str,
    reason: &'static str,
    action: &'static str,
    note: String,
    event_time: Nanos,
    created: Nanos,
    series: Option<(i64, Nanos)>,
}

pub struct SeriesRecorder {
    controller: &'static str,
    instance: String,
    cache: BTreeMap<String, Cached>,
    /// Every object this recorder ever wrote, with its total occurrences.
    emitted: BTreeMap<String, i64>,
    next_finish: Nanos,
    next_refresh: Nanos,
}

impl SeriesRecorder {
    /// `started` is when the component's broadcaster started: its loops tick from there.
    pub fn new(controller: &'static str, instance: &str, started: Nanos) -> Self {
        SeriesRecorder {
            controller,
            instance: instance.to_string(),
            cache: BTreeMap::new(),
            emitted: BTreeMap::new(),
            next_finish: started + FINISH_PERIOD,
            next_refresh: started + REFRESH_PERIOD,
        }
    }

    pub fn record(&mut self, ids: &mut Ids, sink: &mut Sink, it: &Intent) -> String {
        let now = it.at;
        let key = format!(
            "{}\u{2}{}\u{2}{}\u{2}{}\u{2}{}\u{2}{}\u{2}{}",
            it.event_type,
            it.action,
            it.reason,
            self.controller,
            self.instance,
            it.regarding.key(),
            it.related.as_ref().map(|r| r.key()).unwrap_or_default()
        );
        if let Some(c) = self.cache.get_mut(&key) {
            let count = match &mut c.series {
                Some((count, last)) => {
                    *count += 1;
                    *last = now;
                    self.emitted.insert(c.uid.clone(), *count);
                    return c.uid.clone();
                }
                None => {
                    c.series = Some((2, now));
                    2
                }
            };
            self.emitted.insert(c.uid.clone(), count);
            let ev = build(self.controller, &self.instance, c);
            sink.write(now, ev, count);
            return c.uid.clone();
        }
        let c = Cached {
            name: format!("{}.{:x}", it.regarding.name, now),
            uid: ids.uuid(),
            regarding: it.regarding.clone(),
            related: it.related.clone(),
            event_type: it.event_type,
            reason: it.reason,
            action: it.action,
            note: it.message.clone(),
            event_time: now,
            created: now,
            series: None,
        };
        let uid = c.uid.clone();
        self.emitted.insert(uid.clone(), 1);
        sink.write(now, build(self.controller, &self.instance, &c), 1);
        self.cache.insert(key, c);
        uid
    }

    /// Runs the finish and refresh loops whose ticks fall at or before `now`.
    pub fn advance(&mut self, _ids: &mut Ids, sink: &mut Sink, now: Nanos) {
        loop {
            let t = self.next_finish.min(self.next_refresh);
            if t > now {
                return;
            }
            if self.next_finish == t {
                self.finish_tick(sink, t);
                self.next_finish += FINISH_PERIOD;
            } else {
                self.refresh_tick(sink, t);
                self.next_refresh += REFRESH_PERIOD;
            }
        }
    }

    /// Ticks until no series is open; returns the time of the last write, if any.
    pub fn finish(&mut self, ids: &mut Ids, sink: &mut Sink) -> Option<Nanos> {
        let mut last = None;
        while self.cache.values().any(|c| c.series.is_some()) {
            let before = sink.emissions.len();
            let t = self.next_finish.min(self.next_refresh);
            self.advance(ids, sink, t);
            if sink.emissions.len() > before {
                last = Some(t);
            }
        }
        last
    }

    fn finish_tick(&mut self, sink: &mut Sink, t: Nanos) {
        let (controller, instance) = (self.controller, self.instance.clone());
        self.cache.retain(|_, c| match c.series {
            Some((count, last)) if last < t - FINISH_PERIOD => {
                sink.write(t, build(controller, &instance, c), count);
                false
            }
            Some(_) => true,
            None => c.event_time >= t - FINISH_PERIOD,
        });
    }

    fn refresh_tick(&mut self, sink: &mut Sink, t: Nanos) {
        for c in self.cache.values() {
            if let Some((count, _)) = c.series {
                sink.write(t, build(self.controller, &self.instance, c), count);
            }
        }
    }

    pub fn emitted(&self, out: &mut BTreeMap<String, i64>) {
        for (uid, n) in &self.emitted {
            out.insert(uid.clone(), *n);
        }
    }
}

/// A singleton as the new recorder writes it on first occurrence, for callers that
/// know the event never repeats (background noise) and so need no cache entry; the
/// object is identical to what [`SeriesRecorder::record`] writes.
pub fn singleton(controller: &'static str, instance: &str, it: &Intent, uid: String) -> Event {
    let c = Cached {
        name: format!("{}.{:x}", it.regarding.name, it.at),
        uid,
        regarding: it.regarding.clone(),
        related: it.related.clone(),
        event_type: it.event_type,
        reason: it.reason,
        action: it.action,
        note: it.message.clone(),
        event_time: it.at,
        created: it.at,
        series: None,
    };
    build(controller, instance, &c)
}

/// The Event as stored and served in core/v1 after the API server converted the
/// events.k8s.io/v1 object: `source` is `{}`, legacy timestamps are null and `count`
/// is absent; `eventTime`, `action`, `related`, `series` and the reporting fields
/// carry the data.
fn build(controller: &'static str, instance: &str, c: &Cached) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(c.name.clone()),
            namespace: Some(c.regarding.event_namespace().to_string()),
            uid: Some(c.uid.clone()),
            creation_timestamp: Some(k8s_time(c.created)),
            ..Default::default()
        },
        involved_object: c.regarding.to_k8s(),
        related: c.related.as_ref().map(|r| r.to_k8s()),
        reason: Some(c.reason.to_string()),
        message: Some(c.note.clone()),
        type_: Some(c.event_type.to_string()),
        action: Some(c.action.to_string()),
        event_time: Some(k8s_micro_time(c.event_time)),
        series: c.series.map(|(count, last)| EventSeries {
            count: Some(count as i32),
            last_observed_time: Some(k8s_micro_time(last)),
        }),
        source: Some(EventSource::default()),
        reporting_component: Some(controller.to_string()),
        reporting_instance: Some(instance.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Emitter, Tag};
    use super::*;
    use crate::sim::timeline::Emission;

    fn intent(at: Nanos, pod: &ObjRef, note: &str) -> Intent {
        Intent {
            at,
            emitter: Emitter::Series { controller: "default-scheduler", instance: "default-scheduler-cp".into() },
            regarding: pod.clone(),
            related: None,
            event_type: "Warning",
            reason: "FailedScheduling",
            action: "Scheduling",
            message: note.into(),
            tag: Tag::NONE,
        }
    }

    fn series_counts(sink: &Sink) -> Vec<Option<i32>> {
        sink.emissions
            .iter()
            .map(|e| match &e.emission {
                Emission::Apply(ev) => ev.series.as_ref().and_then(|s| s.count),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn series_written_on_first_repeat_then_on_finish() {
        let mut ids = Ids::new(1);
        let pod = ObjRef::new("Pod", "v1", "ns", "p", &mut ids);
        let t0 = 1_700_000_000 * SECOND;
        let mut r = SeriesRecorder::new("default-scheduler", "default-scheduler-cp", t0 - SECOND);
        let mut sink = Sink::new(t0, true);
        let mut uids = Vec::new();
        for i in 0..5 {
            r.advance(&mut ids, &mut sink, t0 + i * 20 * SECOND);
            uids.push(r.record(&mut ids, &mut sink, &intent(t0 + i * 20 * SECOND, &pod, &format!("note {i}"))));
        }
        assert!(uids.iter().all(|u| *u == uids[0]));
        assert_eq!(series_counts(&sink), vec![None, Some(2)]);
        r.finish(&mut ids, &mut sink);
        assert_eq!(series_counts(&sink), vec![None, Some(2), Some(5)]);
        let Emission::Apply(last) = &sink.emissions[2].emission else { panic!() };
        // The note stays the first one; new-shape fields only.
        assert_eq!(last.message.as_deref(), Some("note 0"));
        assert_eq!(last.count, None);
        assert_eq!(last.first_timestamp, None);
        assert_eq!(last.action.as_deref(), Some("Scheduling"));
        // The final write happens 6–12 minutes after the last observation.
        let off = sink.emissions[2].offset.as_secs() as i64;
        assert!((80 + 360..=80 + 720).contains(&off), "{off}");
    }

    #[test]
    fn a_finished_series_starts_a_new_object() {
        let mut ids = Ids::new(2);
        let pod = ObjRef::new("Pod", "v1", "ns", "p", &mut ids);
        let t0 = 1_700_000_000 * SECOND;
        let mut r = SeriesRecorder::new("default-scheduler", "i", t0);
        let mut sink = Sink::new(t0, true);
        let a = r.record(&mut ids, &mut sink, &intent(t0, &pod, "x"));
        r.advance(&mut ids, &mut sink, t0 + 20 * 60 * SECOND);
        let b = r.record(&mut ids, &mut sink, &intent(t0 + 20 * 60 * SECOND, &pod, "x"));
        assert_ne!(a, b);
    }
}
