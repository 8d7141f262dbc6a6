//! One open incident: what it has gathered, when it publishes a new version,
//! and the one-line summary a person reads.

use rustc_hash::FxHashSet;
use schemas::model::{ClusterId, ObjectRef, Severity};
use schemas::records::{Incident, RootCause, SourcePos, Status};
use std::collections::BTreeMap;

use super::late::Kept;
use super::links::Key;
use super::rules::Rule;

/// Affected objects listed in a record (all are counted).
const MAX_LISTED_OBJECTS: usize = 50;
/// Index keys one incident registers, at most (a node incident with
/// thousands of pods links through the first ones; the rest join by uid).
pub(crate) const MAX_KEYS: usize = 2048;
/// Event uids one incident remembers for sticky membership.
pub(crate) const MAX_UIDS: usize = 4096;
/// An incident with changes publishes at least this often (record time).
pub(crate) const REFRESH_US: i64 = 60_000_000;

#[derive(Debug)]
pub(crate) struct Open {
    pub id: String,
    pub rule: u32,
    pub cluster: ClusterId,
    pub root: RootCause,
    /// The root event as correlation saw it (for a late cause to compare with).
    pub root_kept: Box<Kept>,
    pub root_detail: String,
    pub severity: Severity,
    pub objects: Vec<ObjectRef>,
    pub object_ids: FxHashSet<u64>,
    pub reason_counts: BTreeMap<String, i64>,
    pub event_count: i64,
    pub occurrences: i64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// Record time of the last member event.
    pub last_t: i64,
    /// Record time the incident was opened (or re-rooted): a late cause may
    /// re-root it within its rule's lookback.
    pub opened_t: i64,
    /// A new episode of an event that already had one: its start is not
    /// before this (the event's own first time belongs to the old episode).
    pub floor_us: i64,
    pub recovering_since: Option<i64>,
    pub deadline: i64,
    pub keys: FxHashSet<Key>,
    pub uids: Vec<u64>,
    // Publication bookkeeping.
    pub version: i64,
    pub published_events: i64,
    pub published_occurrences: i64,
    pub published_objects: usize,
    pub published_severity: Severity,
    pub last_publish_t: i64,
    pub dirty: bool,
}

impl Open {
    pub(crate) fn deadline(&self, rule: &Rule) -> i64 {
        let quiet = self.last_t.saturating_add(rule.quiet_us);
        match self.recovering_since {
            Some(r) => quiet.min(r.saturating_add(rule.stable_us)),
            None => quiet,
        }
    }

    /// Whether the changes since the last version are worth a new one now:
    /// a higher severity, the affected objects or the counts doubled, or a
    /// minute passed. Doubling keeps a storm's incident to a few dozen versions.
    pub(crate) fn should_publish(&self, t: i64) -> bool {
        self.dirty
            && (self.objects.len() >= 2 * self.published_objects
                || self.severity > self.published_severity
                || self.event_count >= 2 * self.published_events
                || self.occurrences >= 2 * self.published_occurrences
                || t - self.last_publish_t >= REFRESH_US)
    }

    /// The next version as a record (the caller sets `source`).
    pub(crate) fn publish(&mut self, rule: &Rule, status: Status, t: i64) -> Incident {
        self.version += 1;
        self.published_events = self.event_count;
        self.published_occurrences = self.occurrences;
        self.published_objects = self.objects.len();
        self.published_severity = self.severity;
        self.last_publish_t = t;
        self.dirty = false;
        Incident {
            source: SourcePos::default(),
            id: self.id.clone(),
            version: self.version,
            cluster: self.cluster.clone(),
            status,
            severity: self.severity,
            root_cause: self.root.clone(),
            rule: rule.name.to_string(),
            affected_objects: self.objects.clone(),
            reason_counts: self.reason_counts.clone(),
            event_count: self.event_count,
            occurrences: self.occurrences,
            first_seen_us: self.first_seen_us,
            last_seen_us: self.last_seen_us,
            summary: self.summary(),
        }
    }

    /// The last version of this id when a late cause became the root: resolved,
    /// with the new root as its root cause (its `event_id` is the incident's
    /// new id), what it had gathered, and a summary saying so.
    pub(crate) fn rerooted(&mut self, rule: &Rule, new_root: &RootCause, t: i64) -> Incident {
        let mut inc = self.publish(rule, Status::Resolved, t);
        inc.summary = format!("re-rooted at {} on {} (incident {}): {}", new_root.reason, new_root.object.display(), new_root.event_id, inc.summary);
        inc.root_cause = new_root.clone();
        inc
    }

    /// A new id starts its versions at 1, and publishes everything it has.
    pub(crate) fn restart_versions(&mut self) {
        self.version = 0;
        self.published_events = 0;
        self.published_occurrences = 0;
        self.published_objects = 0;
        self.published_severity = Severity::Info;
        self.dirty = true;
    }

    /// Adds what another incident gathered (its keys and uids are moved by the caller).
    pub(crate) fn absorb(&mut self, other: Open) {
        for id in &other.object_ids {
            self.object_ids.insert(*id);
        }
        for obj in other.objects {
            if self.objects.len() < MAX_LISTED_OBJECTS && !self.objects.contains(&obj) {
                self.objects.push(obj);
            }
        }
        for (k, v) in other.reason_counts {
            *self.reason_counts.entry(k).or_default() += v;
        }
        self.event_count += other.event_count;
        self.occurrences += other.occurrences;
        self.first_seen_us = self.first_seen_us.min(other.first_seen_us);
        self.last_seen_us = self.last_seen_us.max(other.last_seen_us);
        self.last_t = self.last_t.max(other.last_t);
        self.severity = self.severity.max(other.severity);
        self.floor_us = self.floor_us.min(other.floor_us);
        self.dirty = true;
    }

    /// "FailedMount on Pod shop/cart-7d9 (volume data) caused 13 FailedMount,
    /// 14 BackOff over 6 min, 3 objects affected".
    pub(crate) fn summary(&self) -> String {
        let r = &self.root;
        let mut s = format!("{} on {}", r.reason, r.object.display());
        if !self.root_detail.is_empty() {
            s.push_str(&format!(" ({})", self.root_detail));
        }
        let mut effects: Vec<(&str, i64)> = self
            .reason_counts
            .iter()
            .map(|(k, v)| (k.as_str(), if *k == r.reason { v - 1 } else { *v }))
            .filter(|(_, v)| *v > 0)
            .collect();
        effects.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if effects.is_empty() {
            s.push_str(" (once)");
        } else {
            let shown: Vec<String> = effects.iter().take(3).map(|(k, v)| format!("{v} {k}")).collect();
            s.push_str(" caused ");
            s.push_str(&shown.join(", "));
            if effects.len() > 3 {
                s.push_str(&format!(" and {} more", effects.len() - 3));
            }
        }
        let span = (self.last_seen_us - self.first_seen_us).max(0) / 1_000_000;
        if span > 0 {
            s.push_str(" over ");
            s.push_str(&human_span(span));
        }
        if self.object_ids.len() > 1 {
            s.push_str(&format!(", {} objects affected", self.object_ids.len()));
        }
        s
    }

    pub(crate) fn add_object(&mut self, id: u64, obj: &ObjectRef) {
        if self.object_ids.insert(id) && self.objects.len() < MAX_LISTED_OBJECTS {
            self.objects.push(obj.clone());
        }
    }
}

fn human_span(secs: i64) -> String {
    if secs < 90 {
        format!("{secs} s")
    } else if secs < 90 * 60 {
        format!("{} min", (secs + 30) / 60)
    } else {
        format!("{:.1} h", secs as f64 / 3600.0)
    }
}

/// "volume data" from the first `detail` key present in the root's metadata.
pub(crate) fn root_detail(rule: &Rule, meta: &schemas::metadata::Metadata) -> String {
    rule.detail
        .iter()
        .find_map(|k| meta.get(k).filter(|v| !v.is_empty()).map(|v| format!("{} {v}", k.replace('_', " "))))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_people_write_them() {
        assert_eq!(human_span(45), "45 s");
        assert_eq!(human_span(6 * 60 + 10), "6 min");
        assert_eq!(human_span(3 * 3600), "3.0 h");
    }
}
