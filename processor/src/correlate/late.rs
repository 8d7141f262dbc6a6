//! Late causes: incidents that do not depend on the order records arrive in.
//!
//! A cause and its effects are often written in the same second (core/v1
//! times have one-second resolution), and `kubectl` lists a dump by namespace
//! and name, not time; a collector sees them in the API server's order. So an
//! effect may come first. Within a rule's `lookback` (record time, default
//! 5 s, `rules/correlate.yaml`) the state undoes what the order decided:
//! - an effect that stood alone (no incident to join, no cause of its own) is
//!   kept as an **orphan**; an incident opened later within the lookback takes
//!   it in, as if it had come after its cause ([`CorrelationState::adopt`]);
//! - an event that causes the root of an incident opened within the lookback
//!   **re-roots** it: it becomes the root, the incident takes its rule and its
//!   id (an incident's id is its root's processed id, whatever the order), and
//!   every id the incident had before gets a last, resolved version whose root
//!   cause is the new root ([`CorrelationState::reroot`]);
//! - two candidate roots that would each take the other (siblings failing the
//!   same way, a Job and its pod failing in the same second) are ordered by
//!   their first time, then their id: the earlier one is the root in any order.
//!
//! Beyond the lookback, arrival order decides, as before: a cause minutes late
//! is an effect of what it joins.

use schemas::model::{ClusterId, NormalizedEvent, Severity};
use schemas::metadata::Metadata;
use schemas::records::Incident;

use super::incident::root_detail;
use super::links::{Identities, Key, Via};
use super::rules::{EventView, Rule, Rules};
use super::state::{CorrInput, CorrelationState};

/// Incidents opened within the lookback that a late cause may re-root, at
/// most (a storm opening more in a few seconds keeps the latest).
pub(crate) const MAX_RECENT: usize = 1024;

/// A correlation input kept for a while (an orphan, an incident's root): what
/// it takes to look at it again.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub cluster: ClusterId,
    pub id: String,
    pub ev: NormalizedEvent,
    pub category: String,
    pub severity: Severity,
    pub metadata: Metadata,
    pub occurrences: i64,
    pub t_us: i64,
    pub uid: u64,
    pub ids: Identities,
}

impl Kept {
    pub(crate) fn new(input: &CorrInput<'_>, uid: u64, ids: &Identities) -> Self {
        Kept {
            cluster: input.cluster.clone(),
            id: input.id.to_string(),
            ev: input.ev.clone(),
            category: input.category.to_string(),
            severity: input.severity,
            metadata: input.metadata.clone(),
            occurrences: input.occurrences,
            t_us: input.t_us,
            uid,
            ids: ids.clone(),
        }
    }

    pub(crate) fn input(&self) -> CorrInput<'_> {
        CorrInput {
            cluster: &self.cluster,
            id: &self.id,
            ev: &self.ev,
            category: &self.category,
            severity: self.severity,
            metadata: &self.metadata,
            occurrences: self.occurrences,
            t_us: self.t_us,
        }
    }

    pub(crate) fn view(&self) -> EventView<'_> {
        EventView { ev: &self.ev, category: &self.category, severity: self.severity, ancestor_kinds: &self.ids.ancestor_kinds }
    }
}

/// Which of two candidate roots comes first: the earlier first occurrence;
/// within a second (core/v1 times), the earlier creation as the event's name
/// says (client-go names events `<object>.<hex UnixNano>`); then the smaller
/// id. Deterministic, whatever the arrival order.
pub(crate) fn root_key<'a>(ev: &NormalizedEvent, id: &'a str) -> (i64, i64, &'a str) {
    let first = if ev.first_seen_us > 0 { ev.first_seen_us } else { ev.effective_time_us() };
    let created_ns = ev
        .name
        .rsplit_once('.')
        .filter(|(_, hex)| (9..=16).contains(&hex.len()))
        .and_then(|(_, hex)| i64::from_str_radix(hex, 16).ok())
        .unwrap_or(i64::MAX);
    (first, created_ns, id)
}

/// Whether two events are linked the way `via` says, seen from either side
/// (the index links an event's lookup keys to a member's registered keys; the
/// relation is symmetric for every way of linking).
fn linked(via: Via, a: &Identities, b: &Identities) -> bool {
    match via {
        Via::Object => a.selves.iter().any(|x| b.selves.contains(x)),
        Via::Owner => a.selves.iter().chain(&a.ancestors).any(|x| b.selves.contains(x) || b.ancestors.contains(x)),
        Via::Node => a.node.is_some() && a.node == b.node,
        Via::Cluster => a.cluster == b.cluster,
    }
}

/// Whether an incident of `rule` rooted at `cause` would take `effect` (as an
/// effect, or as its own cause again).
fn takes(rule: &Rule, effect: &EventView<'_>, effect_ids: &Identities, cause_ids: &Identities, dt_us: i64) -> bool {
    std::iter::once(&rule.cause).chain(&rule.effects).any(|m| {
        m.within_us.is_none_or(|w| dt_us <= w)
            && Via::ALL.iter().any(|v| m.via & v.bit() != 0 && linked(*v, effect_ids, cause_ids))
            && m.matches(effect)
    })
}

impl CorrelationState {
    /// Whether the open incident in `slot` would take this event now (the
    /// join rule of [`CorrelationState::observe`] for one incident).
    pub(super) fn fits_slot(&self, rules: &Rules, slot: u32, view: &EventView<'_>, ids: &Identities, t_us: i64) -> bool {
        let Some(o) = self.slots[slot as usize].as_ref() else { return false };
        let rule = &rules.rules[o.rule as usize];
        let since = t_us - o.last_t;
        let mut keys = Vec::new();
        for via in Via::ALL {
            ids.lookup_keys(via, &mut keys);
            if !keys.iter().any(|k| o.keys.contains(k)) {
                continue;
            }
            let fits = |m: &super::rules::Matcher| m.via & via.bit() != 0 && m.within_us.is_none_or(|w| since <= w) && m.matches(view);
            if fits(&rule.cause) || rule.effects.iter().any(fits) {
                return true;
            }
        }
        false
    }

    /// The open incidents this event, a cause of rule `rc`, should become the
    /// root of: opened within the lookback, rooted at an event the rule takes
    /// as an effect of it, and not better rooted where they are.
    /// `joins`: the incident the event would join otherwise; when it is not
    /// among them, the event joins it and re-roots nothing.
    pub(super) fn absorbable(&mut self, rules: &Rules, rc: usize, input: &CorrInput<'_>, view: &EventView<'_>, ids: &Identities, joins: Option<u32>) -> Vec<u32> {
        let rule_c = &rules.rules[rc];
        // Only incidents opened within the lookback can be re-rooted: the few
        // in `recent` (pruned by the caller), not every incident the event links to.
        let me = root_key(input.ev, input.id);
        let mut out = Vec::new();
        for &(opened, slot) in &self.recent {
            let Some(o) = self.slots[slot as usize].as_ref() else { continue };
            if o.opened_t != opened || input.t_us - opened > rule_c.lookback_us || out.contains(&slot) {
                continue;
            }
            let p = &o.root_kept;
            let dt = (input.t_us - p.t_us).abs();
            if !takes(rule_c, &p.view(), &p.ids, ids, dt) {
                continue;
            }
            let earlier = me < root_key(&p.ev, &p.id);
            if earlier || !self.fits_slot(rules, slot, view, ids, input.t_us) {
                out.push(slot);
            }
        }
        if joins.is_some_and(|j| !out.contains(&j)) {
            return Vec::new();
        }
        out
    }

    /// Makes this event the root of the incidents in `absorb` (merged into
    /// one): see the module doc. Returns the incident's (new) id.
    pub(super) fn reroot(&mut self, rules: &Rules, rc: u32, root: Kept, mut absorb: Vec<u32>, out: &mut Vec<Incident>) -> String {
        let input = &root.input();
        let (uid, ids) = (root.uid, &root.ids);
        absorb.sort_by(|a, b| {
            let ka = self.slots[*a as usize].as_ref().map(|o| root_key(&o.root_kept.ev, &o.root_kept.id));
            let kb = self.slots[*b as usize].as_ref().map(|o| root_key(&o.root_kept.ev, &o.root_kept.id));
            ka.cmp(&kb)
        });
        let keep = absorb[0];
        let rule = &rules.rules[rc as usize];
        let root_cause = input.root_cause();
        // The last version of every id the incident had: resolved, naming its new root.
        for &slot in &absorb {
            let o = self.slots[slot as usize].as_mut().expect("absorbed slots are open");
            let old_rule = &rules.rules[o.rule as usize];
            out.push(o.rerooted(old_rule, &root_cause, input.t_us));
        }
        for &slot in &absorb[1..] {
            self.merge_into(rules, slot, keep);
        }
        let o = self.slots[keep as usize].as_mut().expect("kept slot is open");
        o.id = input.id.to_string();
        o.rule = rc;
        o.root = root_cause;
        o.root_detail = root_detail(rule, input.metadata);
        o.severity = o.severity.max(input.severity).max(rule.severity.unwrap_or(Severity::Info));
        o.opened_t = input.t_us;
        self.note_recent(input.t_us, keep);
        let o = self.slots[keep as usize].as_mut().expect("kept slot is open");
        o.restart_versions();
        self.counts.rerooted += 1;
        self.counts.joined += 1;
        self.add_member(rules, keep, input, uid, Some(ids));
        let t = input.t_us;
        let o = self.slots[keep as usize].as_mut().expect("kept slot is open");
        out.push(o.publish(rule, schemas::records::Status::Open, t));
        let id = o.id.clone();
        *o.root_kept = root;
        let keys: Vec<Key> = o.keys.iter().copied().collect();
        self.adopt(rules, keep, keys, t, out);
        id
    }

    /// Forgets the incidents opened longer than every lookback ago.
    pub(super) fn prune_recent(&mut self, rules: &Rules, t_us: i64) {
        while self.recent.front().is_some_and(|(t, _)| t_us.saturating_sub(*t) > rules.max_lookback_us) {
            self.recent.pop_front();
        }
    }

    /// Remembers an incident opened (or re-rooted) at `t` as one a late cause
    /// may re-root; at most [`MAX_RECENT`] are remembered.
    pub(super) fn note_recent(&mut self, t: i64, slot: u32) {
        if self.recent.len() >= MAX_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((t, slot));
    }

    /// Moves everything incident `from` gathered into incident `to`, and frees `from`.
    fn merge_into(&mut self, rules: &Rules, from: u32, to: u32) {
        let Some(f) = self.slots[from as usize].take() else { return };
        self.deadlines.remove(&(f.deadline, from));
        for k in &f.keys {
            if let Some(v) = self.index.get_mut(k) {
                v.retain(|s| *s != from);
                if v.is_empty() {
                    self.index.remove(k);
                }
            }
        }
        let t = self.slots[to as usize].as_mut().expect("merge target is open");
        for u in &f.uids {
            if self.by_uid.get(u) == Some(&from) {
                self.by_uid.insert(*u, to);
            }
            if t.uids.len() < super::incident::MAX_UIDS {
                t.uids.push(*u);
            }
        }
        for k in &f.keys {
            if t.keys.len() >= super::incident::MAX_KEYS {
                break;
            }
            if t.keys.insert(*k) {
                self.index.entry(*k).or_default().push(to);
            }
        }
        t.absorb(f);
        self.free.push(from);
        self.open -= 1;
        self.reschedule(rules, to);
    }

    /// An event that stands alone: kept for a cause that may still come.
    pub(super) fn keep_orphan(&mut self, rules: &Rules, input: &CorrInput<'_>, uid: u64, ids: &Identities, view: &EventView<'_>) {
        if !rules.is_effect(view) {
            return;
        }
        self.prune_orphans(rules, input.t_us);
        let reason = &input.ev.reason;
        // An orphan is never a root: the metadata (the root's detail) is not kept.
        let kept = Kept::new(&CorrInput { metadata: &Metadata::new(), ..*input }, uid, ids);
        self.orphans.push(kept, |via| matches!(via, Via::Object | Via::Owner) || rules.may_link(via, reason));
    }

    fn prune_orphans(&mut self, rules: &Rules, t_us: i64) {
        while self.orphans.oldest_t().is_some_and(|t| t_us.saturating_sub(t) > rules.max_lookback_us) {
            self.orphans.pop_front();
        }
    }

    /// The orphans the incident in `slot` takes in now that it registered
    /// `keys` (a new root or member): those it would have taken had they come
    /// after, within its rule's lookback; and, through what they link, the
    /// orphans those reach (a pod's `Killing` through its `Evicted`).
    pub(super) fn adopt(&mut self, rules: &Rules, slot: u32, mut keys: Vec<Key>, t_us: i64, out: &mut Vec<Incident>) {
        self.prune_orphans(rules, t_us);
        if self.orphans.len() == 0 {
            return;
        }
        let Some(o) = self.slots[slot as usize].as_ref() else { return };
        let lookback = rules.rules[o.rule as usize].lookback_us;
        let mut adopted = false;
        while let Some(key) = keys.pop() {
            for seq in self.orphans.linked(key) {
                let Some(orphan) = self.orphans.get(seq) else { continue };
                if t_us - orphan.t_us > lookback || self.by_uid.contains_key(&orphan.uid) {
                    continue;
                }
                if !self.fits_slot(rules, slot, &orphan.view(), &orphan.ids, orphan.t_us) {
                    continue;
                }
                let orphan = self.orphans.take(seq).expect("just found");
                self.counts.joined += 1;
                self.counts.adopted += 1;
                self.fresh_keys.clear();
                self.add_member(rules, slot, &orphan.input(), orphan.uid, Some(&orphan.ids));
                keys.append(&mut self.fresh_keys);
                adopted = true;
            }
        }
        if adopted {
            if let Some(o) = self.slots[slot as usize].as_mut() {
                let rule = &rules.rules[o.rule as usize];
                if o.should_publish(t_us) {
                    out.push(o.publish(rule, schemas::records::Status::Open, t_us));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::state::Limits;
    use schemas::model::ObjectRef;
    use schemas::records::Status;

    fn pod_event(uid: &str, reason: &str, note: &str, t: i64) -> NormalizedEvent {
        NormalizedEvent {
            uid: uid.into(),
            name: format!("init-demo.{:x}", t * 1000).into(),
            namespace: "shop".into(),
            event_type: "Warning".into(),
            reason: reason.into(),
            note: note.into(),
            regarding: ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: "init-demo".into(), ..Default::default() },
            first_seen_us: t,
            last_seen_us: t,
            count: 1,
            ..Default::default()
        }
    }

    fn input<'a>(cluster: &'a ClusterId, meta: &'a Metadata, id: &'a str, ev: &'a NormalizedEvent, t: i64) -> CorrInput<'a> {
        CorrInput { cluster, id, ev, category: "container-crash", severity: Severity::Error, metadata: meta, occurrences: 1, t_us: t }
    }

    #[test]
    fn a_late_cause_re_roots_and_the_old_id_says_so() {
        let rules = Rules::builtin();
        let mut st = CorrelationState::new(Limits::default());
        let (cluster, meta) = (ClusterId { name: "c".into(), uid: "c".into() }, Metadata::new());
        let mut out = Vec::new();
        let t = 1_790_000_000_000_000;
        let shim = "Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: unknown";
        let backoff = pod_event("b", "BackOff", "Back-off restarting failed container helper in pod init-demo_shop(1)", t);
        assert_eq!(st.observe(&rules, &input(&cluster, &meta, "id-b", &backoff, t), &mut out).as_deref(), Some("id-b"));
        // The failure that caused it, read 1 s later with the same second's time.
        let failed = pod_event("f", "Failed", shim, t);
        assert_eq!(st.observe(&rules, &input(&cluster, &meta, "id-f", &failed, t + 1_000_000), &mut out).as_deref(), Some("id-f"));
        let old = out.iter().rfind(|i| i.id == "id-b").unwrap();
        assert_eq!((old.status, old.root_cause.event_id.as_str(), old.version), (Status::Resolved, "id-f", 2));
        assert!(old.summary.starts_with("re-rooted at Failed on Pod shop/init-demo (incident id-f)"), "{}", old.summary);
        let new = out.iter().rfind(|i| i.id == "id-f").unwrap();
        assert_eq!((new.version, new.rule.as_str(), new.event_count), (1, "container-start-failure", 2));
        assert_eq!(st.member_of("c", "b").as_deref(), Some("id-f"));
        assert_eq!((st.counts.rerooted, st.open_incidents()), (1, 1));
        // Beyond the lookback, a cause joins as an effect instead.
        let later = pod_event("f2", "Failed", shim, t + 60_000_000);
        assert_eq!(st.observe(&rules, &input(&cluster, &meta, "id-f2", &later, t + 60_000_000), &mut out).as_deref(), Some("id-f"));
        assert_eq!(st.counts.rerooted, 1);
    }
}
