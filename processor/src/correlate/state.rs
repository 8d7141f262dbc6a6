//! The correlation state machine of one raw partition: open incidents, the
//! index that links events to them, and their resolution.
//!
//! Per event (see [`CorrelationState::observe`]):
//! 1. **Resolve** what expired: incidents quiet for their rule's `quiet`, or
//!    recovered (a recovery event, then `stable` without a new effect).
//! 2. **Sticky**: a new version of an event that already belongs to an open
//!    incident stays in it.
//! 3. **Join**: the event's identities ([`super::links`]) are looked up in the
//!    index, most specific link first (object, owner, node, cluster). The
//!    first open incident whose rule has a matching effect — or its own cause
//!    again, e.g. a sibling pod failing the same way — linked that way, and
//!    within the matcher's time window, takes the event. A recovery matcher
//!    marks the incident recovering instead.
//! 4. **Open**: otherwise the first rule whose cause matches opens an incident
//!    with this event as the root cause; its id is the event's processed id.
//!    It takes in the stand-alone effects seen just before it (its rule's
//!    `lookback`, see [`super::late`]).
//! 5. Otherwise the event stands alone (and is kept for that lookback).
//!
//! Before 3 and 4, a cause that arrives just after its effects (within the
//! lookback) becomes the root of the incident they opened: a **re-root**
//! ([`super::late`]), so that the incidents do not depend on arrival order.
//!
//! Everything is a function of (state, input) with record time: a replay
//! rebuilds the same incidents with the same ids and versions.
//!
//! Memory is bounded: `max_open` incidents (beyond it the one closest to
//! resolving is resolved early, counted as an eviction), `MAX_KEYS` index keys
//! and `MAX_UIDS` remembered uids per incident, `max_links` learned parents.

use rustc_hash::FxHashMap;
use schemas::model::{ClusterId, NormalizedEvent, Severity};
use schemas::records::{Incident, RootCause, Status};
use schemas::metadata::Metadata;
use std::collections::{BTreeMap, BTreeSet};

use super::incident::{root_detail, Open, MAX_KEYS, MAX_UIDS};
use super::late::Kept;
use super::orphans::Orphans;
use super::links::{identities_into, object_id, Identities, Key, LearnedParents, Via};
use super::rules::{EventView, Rules};

/// Limits on the state of one partition.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_open: usize,
    pub max_links: usize,
    /// How long (record time) a resolved incident is remembered by its
    /// events' uids, for late reports and [`CorrelationState::member_of`].
    pub closed_keep_us: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_open: 10_000, max_links: 200_000, closed_keep_us: CLOSED_KEEP_US }
    }
}

/// One classified event, as correlation needs it.
pub struct CorrInput<'a> {
    pub cluster: &'a ClusterId,
    /// The event version's processed id: the incident id when it is a root.
    pub id: &'a str,
    pub ev: &'a NormalizedEvent,
    pub category: &'a str,
    pub severity: Severity,
    pub metadata: &'a Metadata,
    pub occurrences: i64,
    /// Record time, µs.
    pub t_us: i64,
}

impl CorrInput<'_> {
    /// This event as an incident's root cause (when it opens one, or re-roots one as a
    /// late cause).
    pub fn root_cause(&self) -> RootCause {
        RootCause {
            event_id: self.id.to_string(),
            event_uid: self.ev.uid.to_string(),
            reason: self.ev.reason.to_string(),
            category: self.category.to_string(),
            object: self.ev.regarding.clone(),
            note: self.ev.note.to_string(),
        }
    }
}

/// Counters of what correlation did (for metrics and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CorrCounts {
    pub opened: u64,
    pub joined: u64,
    pub resolved: u64,
    pub evicted: u64,
    /// Incidents whose root a late cause replaced.
    pub rerooted: u64,
    /// Stand-alone events a late cause took in.
    pub adopted: u64,
}

/// A resolved incident, remembered by its events' uids for a while: emitters
/// report some occurrences late (events.k8s.io series are written up to 30 min
/// after the fact, the legacy recorder's last counts on its next flush), and
/// such a version belongs to the incident it happened in, not to a new one.
#[derive(Debug)]
struct Closed {
    id: std::sync::Arc<str>,
    /// Event time of the incident's last event, µs.
    last_seen_us: i64,
    quiet_us: i64,
}

/// Resolved incidents are remembered this long (record time, by default) and
/// at most this many uids.
const CLOSED_KEEP_US: i64 = 3_600_000_000;
const CLOSED_MAX: usize = 200_000;

#[derive(Debug)]
pub struct CorrelationState {
    closed: FxHashMap<u64, Closed>,
    closed_order: std::collections::VecDeque<(i64, u64)>,
    pub(super) slots: Vec<Option<Open>>,
    pub(super) free: Vec<u32>,
    pub(super) index: FxHashMap<Key, Vec<u32>>,
    pub(super) by_uid: FxHashMap<u64, u32>,
    pub(super) deadlines: BTreeSet<(i64, u32)>,
    pub(super) orphans: Orphans,
    /// (record time, slot) of incidents opened or re-rooted lately, oldest
    /// first: the ones a late cause may re-root.
    pub(super) recent: std::collections::VecDeque<(i64, u32)>,
    learned: LearnedParents,
    limits: Limits,
    pub(super) open: usize,
    last_refresh_t: i64,
    pub(super) keys: Vec<Key>,
    /// Keys the last [`Self::add_member`] registered for the first time.
    pub(super) fresh_keys: Vec<Key>,
    ids: Identities,
    pub counts: CorrCounts,
}

fn uid_hash(cluster: &str, uid: &str) -> u64 {
    object_id(cluster, "\0event", "", uid)
}

impl CorrelationState {
    pub fn new(limits: Limits) -> Self {
        CorrelationState {
            closed: FxHashMap::default(),
            closed_order: Default::default(),
            slots: Vec::new(),
            free: Vec::new(),
            index: FxHashMap::default(),
            by_uid: FxHashMap::default(),
            deadlines: BTreeSet::new(),
            orphans: Orphans::default(),
            recent: Default::default(),
            learned: LearnedParents::new(limits.max_links),
            limits,
            open: 0,
            last_refresh_t: i64::MIN,
            keys: Vec::new(),
            fresh_keys: Vec::new(),
            ids: Identities::default(),
            counts: CorrCounts::default(),
        }
    }

    /// Open incidents now.
    pub fn open_incidents(&self) -> usize {
        self.open
    }

    /// Index entries (keys) now: what the memory bound is about.
    pub fn index_len(&self) -> usize {
        self.index.len()
    }

    pub fn learned_links(&self) -> usize {
        self.learned.len()
    }

    /// Stand-alone events kept for a late cause now.
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// The open incident an event object already belongs to (for versions that
    /// are not correlated themselves, like its deletion).
    pub fn member_of(&self, cluster: &str, uid: &str) -> Option<String> {
        let h = uid_hash(cluster, uid);
        match self.by_uid.get(&h) {
            Some(slot) => self.slots[*slot as usize].as_ref().map(|o| o.id.clone()),
            None => self.closed.get(&h).map(|c| c.id.to_string()),
        }
    }

    /// Correlates one event. Returns the id of the incident it belongs to
    /// (None: it stands alone), and appends incident versions to `out`.
    pub fn observe(&mut self, rules: &Rules, input: &CorrInput<'_>, out: &mut Vec<Incident>) -> Option<String> {
        if rules.rules.is_empty() {
            // Correlation is off (an empty rule file): nothing to link or learn.
            return None;
        }
        self.advance(rules, input.t_us, out);
        let mut ids = std::mem::take(&mut self.ids);
        let r = self.correlate(rules, input, &mut ids, out);
        self.ids = ids;
        r
    }

    fn correlate(&mut self, rules: &Rules, input: &CorrInput<'_>, ids: &mut Identities, out: &mut Vec<Incident>) -> Option<String> {
        let ev = input.ev;
        let learn = input.metadata.contains_key("child");
        if !rules.may_concern(&ev.reason) {
            if learn {
                identities_into(&input.cluster.uid, ev, input.metadata, &mut self.learned, ids);
            }
            return None;
        }
        let uid = uid_hash(&input.cluster.uid, &ev.uid);
        if let Some(&slot) = self.by_uid.get(&uid) {
            // A repeat of a member: nothing new to link.
            if learn {
                identities_into(&input.cluster.uid, ev, input.metadata, &mut self.learned, ids);
            }
            self.join(rules, slot, input, uid, None, out);
            return self.slots[slot as usize].as_ref().map(|o| o.id.clone());
        }
        if let Some(c) = self.closed.get(&uid) {
            // A late report of occurrences that happened while the incident was open.
            if ev.effective_time_us() <= c.last_seen_us.saturating_add(c.quiet_us) {
                return Some(c.id.to_string());
            }
        }
        identities_into(&input.cluster.uid, ev, input.metadata, &mut self.learned, ids);
        let ids = &*ids;
        let view = EventView { ev, category: input.category, severity: input.severity, ancestor_kinds: &ids.ancestor_kinds };
        let found = self.find(rules, input, ids, &view);
        // Which rule the event is a cause of: needed to open an incident, or to
        // re-root one opened lately (none: skip the cause matchers).
        self.prune_recent(rules, input.t_us);
        let cause = if found.is_none() || !self.recent.is_empty() { rules.cause_rule(&view) } else { None };
        if let Some(rc) = cause {
            if !matches!(found, Some((_, false, _))) {
                let absorb = self.absorbable(rules, rc, input, &view, ids, found.map(|f| f.0));
                if !absorb.is_empty() {
                    return Some(self.reroot(rules, rc as u32, Kept::new(input, uid, ids), absorb, out));
                }
            }
        }
        if let Some((slot, joins, recovering)) = found {
            if joins {
                self.join(rules, slot, input, uid, Some(ids), out);
                let keys = std::mem::take(&mut self.fresh_keys);
                self.adopt(rules, slot, keys, input.t_us, out);
            }
            if recovering {
                self.recovering(rules, slot, input.t_us);
            }
            return if joins { self.slots[slot as usize].as_ref().map(|o| o.id.clone()) } else { None };
        }
        match cause {
            Some(rc) => Some(self.open_incident(rules, rc as u32, input, uid, ids, out)),
            None => {
                self.keep_orphan(rules, input, uid, ids, &view);
                None
            }
        }
    }

    /// The open incident the event joins or marks recovering: (slot, joins,
    /// recovering), decided where the matcher was found, most specific link first.
    fn find(&mut self, rules: &Rules, input: &CorrInput<'_>, ids: &Identities, view: &EventView<'_>) -> Option<(u32, bool, bool)> {
        let ev = input.ev;
        for via in Via::ALL {
            if !rules.may_link(via, &ev.reason) {
                continue;
            }
            ids.lookup_keys(via, &mut self.keys);
            for k in &self.keys {
                let Some(slots) = self.index.get(k) else { continue };
                for &slot in slots.iter().rev() {
                    let open = self.slots[slot as usize].as_ref().expect("indexed slots are open");
                    let rule = &rules.rules[open.rule as usize];
                    let since = input.t_us - open.last_t;
                    let fits = |m: &super::rules::Matcher| m.via & via.bit() != 0 && m.within_us.is_none_or(|w| since <= w) && m.matches(view);
                    if fits(&rule.cause) || rule.effects.iter().any(fits) {
                        // An effect that is also a sign of recovery (however linked).
                        return Some((slot, true, rule.recovery.iter().any(|m| m.matches(view))));
                    }
                    if rule.recovery.iter().any(fits) {
                        return Some((slot, rule.recovery.iter().any(|m| fits(m) && m.member), true));
                    }
                }
            }
        }
        None
    }

    /// Time passed (every record, heartbeats too): resolve what expired, and
    /// publish incidents whose changes have waited a minute.
    pub fn advance(&mut self, rules: &Rules, t: i64, out: &mut Vec<Incident>) {
        while let Some(&(at, uid)) = self.closed_order.front() {
            if at.saturating_add(self.limits.closed_keep_us) > t && self.closed_order.len() <= CLOSED_MAX {
                break;
            }
            self.closed_order.pop_front();
            self.closed.remove(&uid);
        }
        while let Some(&(deadline, slot)) = self.deadlines.first() {
            if deadline > t {
                break;
            }
            self.resolve(rules, slot, deadline, out);
        }
        if t.saturating_sub(self.last_refresh_t) >= 10_000_000 {
            self.last_refresh_t = t;
            for open in self.slots.iter_mut().flatten() {
                if open.dirty && t - open.last_publish_t >= super::incident::REFRESH_US {
                    let rule = &rules.rules[open.rule as usize];
                    out.push(open.publish(rule, Status::Open, t));
                }
            }
        }
    }

    fn open_incident(&mut self, rules: &Rules, rule_ix: u32, input: &CorrInput<'_>, uid: u64, ids: &Identities, out: &mut Vec<Incident>) -> String {
        if self.open >= self.limits.max_open.max(1) {
            if let Some(&(_, slot)) = self.deadlines.first() {
                self.counts.evicted += 1;
                self.resolve(rules, slot, input.t_us, out);
            }
        }
        let rule = &rules.rules[rule_ix as usize];
        let ev = input.ev;
        let t_ev = ev.effective_time_us();
        // A new episode of an event that had one: it starts after the old one.
        let floor = self.closed.get(&uid).map(|c| c.last_seen_us.min(t_ev)).unwrap_or(0);
        let first = if ev.first_seen_us > 0 { ev.first_seen_us.max(floor) } else { t_ev };
        let open = Open {
            id: input.id.to_string(),
            rule: rule_ix,
            cluster: input.cluster.clone(),
            root: input.root_cause(),
            root_kept: Box::new(Kept::new(input, uid, ids)),
            root_detail: root_detail(rule, input.metadata),
            severity: input.severity.max(rule.severity.unwrap_or(Severity::Info)),
            objects: Vec::new(),
            object_ids: Default::default(),
            reason_counts: BTreeMap::new(),
            event_count: 0,
            occurrences: 0,
            first_seen_us: first,
            last_seen_us: t_ev,
            last_t: input.t_us,
            opened_t: input.t_us,
            floor_us: floor,
            recovering_since: None,
            deadline: 0,
            keys: Default::default(),
            uids: Vec::new(),
            version: 0,
            published_events: 0,
            published_occurrences: 0,
            published_objects: 0,
            published_severity: Severity::Info,
            last_publish_t: input.t_us,
            dirty: true,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(open);
                s
            }
            None => {
                self.slots.push(Some(open));
                (self.slots.len() - 1) as u32
            }
        };
        self.open += 1;
        self.counts.opened += 1;
        self.note_recent(input.t_us, slot);
        self.add_member(rules, slot, input, uid, Some(ids));
        let o = self.slots[slot as usize].as_mut().expect("just opened");
        out.push(o.publish(rule, Status::Open, input.t_us));
        let id = o.id.clone();
        let keys = std::mem::take(&mut self.fresh_keys);
        self.adopt(rules, slot, keys, input.t_us, out);
        id
    }

    fn join(&mut self, rules: &Rules, slot: u32, input: &CorrInput<'_>, uid: u64, ids: Option<&Identities>, out: &mut Vec<Incident>) {
        self.counts.joined += 1;
        if let Some(o) = self.slots[slot as usize].as_mut() {
            o.recovering_since = None;
        }
        self.add_member(rules, slot, input, uid, ids);
        let o = self.slots[slot as usize].as_mut().expect("joined slots are open");
        let rule = &rules.rules[o.rule as usize];
        if o.should_publish(input.t_us) {
            out.push(o.publish(rule, Status::Open, input.t_us));
        }
    }

    /// Adds an event version to an incident. `ids` is None for a repeat of a
    /// member (already linked and counted as an event).
    pub(super) fn add_member(&mut self, rules: &Rules, slot: u32, input: &CorrInput<'_>, uid: u64, ids: Option<&Identities>) {
        self.fresh_keys.clear();
        let o = self.slots[slot as usize].as_mut().expect("open");
        let rule = &rules.rules[o.rule as usize];
        let ev = input.ev;
        let occ = input.occurrences.max(0);
        o.occurrences += occ;
        match o.reason_counts.get_mut(ev.reason.as_str()) {
            Some(n) => *n += occ,
            None => {
                o.reason_counts.insert(ev.reason.to_string(), occ);
            }
        }
        o.severity = o.severity.max(input.severity);
        o.last_seen_us = o.last_seen_us.max(ev.effective_time_us());
        if ev.first_seen_us > 0 {
            o.first_seen_us = o.first_seen_us.min(ev.first_seen_us.max(o.floor_us));
        }
        o.last_t = o.last_t.max(input.t_us);
        o.dirty = true;
        if let Some(ids) = ids {
            o.event_count += 1;
            if o.uids.len() < MAX_UIDS {
                self.by_uid.insert(uid, slot);
                o.uids.push(uid);
            }
            o.add_object(ids.selves[0], &ev.regarding);
            ids.register_keys(rule.uses, &mut self.keys);
            for k in &self.keys {
                if o.keys.len() >= MAX_KEYS {
                    break;
                }
                if o.keys.insert(*k) {
                    self.index.entry(*k).or_default().push(slot);
                    self.fresh_keys.push(*k);
                }
            }
        }
        self.reschedule(rules, slot);
    }

    fn recovering(&mut self, rules: &Rules, slot: u32, t: i64) {
        let o = self.slots[slot as usize].as_mut().expect("open");
        if o.recovering_since.is_none() {
            o.recovering_since = Some(t);
            self.reschedule(rules, slot);
        }
    }

    pub(super) fn reschedule(&mut self, rules: &Rules, slot: u32) {
        let o = self.slots[slot as usize].as_mut().expect("open");
        let rule = &rules.rules[o.rule as usize];
        let d = o.deadline(rule);
        if d != o.deadline {
            self.deadlines.remove(&(o.deadline, slot));
            o.deadline = d;
        }
        self.deadlines.insert((d, slot));
    }

    /// Publishes the resolved version and forgets the incident.
    fn resolve(&mut self, rules: &Rules, slot: u32, t: i64, out: &mut Vec<Incident>) {
        let Some(mut o) = self.slots[slot as usize].take() else { return };
        self.deadlines.remove(&(o.deadline, slot));
        let rule = &rules.rules[o.rule as usize];
        o.dirty = true;
        out.push(o.publish(rule, Status::Resolved, t));
        for k in &o.keys {
            if let Some(v) = self.index.get_mut(k) {
                v.retain(|s| *s != slot);
                if v.is_empty() {
                    self.index.remove(k);
                }
            }
        }
        let closed_id: std::sync::Arc<str> = o.id.as_str().into();
        for u in &o.uids {
            if self.by_uid.get(u) == Some(&slot) {
                self.by_uid.remove(u);
            }
            self.closed.insert(*u, Closed { id: closed_id.clone(), last_seen_us: o.last_seen_us, quiet_us: rule.quiet_us });
            self.closed_order.push_back((t, *u));
        }
        self.free.push(slot);
        self.open -= 1;
        self.counts.resolved += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::model::ObjectRef;

    fn input<'a>(cluster: &'a ClusterId, id: &'a str, ev: &'a NormalizedEvent, meta: &'a Metadata, t: i64) -> CorrInput<'a> {
        CorrInput { cluster, id, ev, category: "volume", severity: Severity::Warning, metadata: meta, occurrences: 1, t_us: t }
    }

    fn mount(uid: &str, pod: &str, t: i64) -> NormalizedEvent {
        NormalizedEvent {
            uid: uid.into(),
            namespace: "shop".into(),
            event_type: "Warning".into(),
            reason: "FailedMount".into(),
            note: "MountVolume.SetUp failed for volume \"data\" : secret \"x\" not found".into(),
            regarding: ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: pod.into(), ..Default::default() },
            first_seen_us: t,
            last_seen_us: t,
            count: 1,
            ..Default::default()
        }
    }

    #[test]
    fn memory_is_bounded_by_the_limits_it_evicts_not_grows() {
        let rules = Rules::builtin();
        let mut st = CorrelationState::new(Limits { max_open: 100, max_links: 100, ..Limits::default() });
        let cluster = ClusterId { name: "c".into(), uid: "c".into() };
        let meta = Metadata::new();
        let mut out = Vec::new();
        for i in 0..10_000i64 {
            let t = 1_000_000 + i * 1000;
            let ev = mount(&format!("u{i}"), &format!("pod-{i}"), t);
            let id = format!("id{i}");
            assert_eq!(st.observe(&rules, &input(&cluster, &id, &ev, &meta, t), &mut out).as_deref(), Some(id.as_str()));
            assert!(st.open_incidents() <= 100);
        }
        assert_eq!(st.counts.opened, 10_000);
        assert_eq!(st.counts.evicted, 9_900);
        assert!(st.index_len() <= 100 * 2, "index holds only open incidents' keys: {}", st.index_len());
        assert!(st.by_uid.len() <= 100);
        assert!(st.closed.len() <= CLOSED_MAX);
        // Every eviction published a resolved version.
        let resolved = out.iter().filter(|i| i.status == Status::Resolved).count();
        assert_eq!(resolved, 9_900);
        // Learned links are capped too.
        let mut ev = mount("rs", "x", 0);
        ev.reason = "SuccessfulCreate".into();
        ev.regarding.kind = "ReplicaSet".into();
        for i in 0..1000 {
            let meta: Metadata = [("child".to_string(), format!("p{i}"))].into_iter().collect();
            st.observe(&rules, &input(&cluster, "x", &ev, &meta, 20_000_000_000), &mut out);
        }
        assert_eq!(st.learned_links(), 100);
    }

    #[test]
    fn quiet_incidents_resolve_and_late_reports_keep_their_incident() {
        let rules = Rules::builtin();
        let mut st = CorrelationState::new(Limits::default());
        let cluster = ClusterId { name: "c".into(), uid: "c".into() };
        let meta = Metadata::new();
        let mut out = Vec::new();
        let t0 = 1_700_000_000_000_000;
        let ev = mount("u1", "web-0", t0);
        assert_eq!(st.observe(&rules, &input(&cluster, "root", &ev, &meta, t0), &mut out).as_deref(), Some("root"));
        let mut again = mount("u1", "web-0", t0 + 60_000_000);
        again.count = 5;
        assert_eq!(st.observe(&rules, &input(&cluster, "v2", &again, &meta, t0 + 60_000_000), &mut out).as_deref(), Some("root"));
        // 15 min of quiet (volume-failure's default) resolves it.
        st.advance(&rules, t0 + 60_000_000 + 15 * 60_000_000, &mut out);
        let last = out.last().unwrap();
        assert_eq!((last.id.as_str(), last.status, last.occurrences, last.event_count), ("root", Status::Resolved, 2, 1));
        assert_eq!(st.open_incidents(), 0);
        // A late version reporting occurrences from back then keeps the incident.
        let mut late = mount("u1", "web-0", t0);
        late.last_seen_us = t0 + 90_000_000;
        assert_eq!(st.observe(&rules, &input(&cluster, "v3", &late, &meta, t0 + 20 * 60_000_000), &mut out).as_deref(), Some("root"));
        // A new failure much later opens a new incident.
        let fresh = mount("u1", "web-0", t0 + 3_600_000_000);
        assert_eq!(st.observe(&rules, &input(&cluster, "v4", &fresh, &meta, t0 + 3_600_000_000), &mut out).as_deref(), Some("v4"));
    }
}
