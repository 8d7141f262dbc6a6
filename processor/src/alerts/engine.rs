//! The alert engine: incident and pattern versions in, alert versions out. One
//! per raw partition, pure and deterministic (no clock: every time is a field
//! of the origin record), so a replay that rebuilds a partition re-emits
//! byte-identical alerts.
//!
//! An alert is (rule, origin): id = `stable_id(["alert", rule, origin_id])`, the
//! same id for its whole life. It is emitted only on change:
//! - firing (`firing = true`, `ends_us = 0`) when the origin is open and the
//!   rule matches while it did not before;
//! - resolved (`firing = false`, `ends_us` set) when the origin resolves or stops
//!   matching.
//!
//! Later versions of a firing origin that still match emit nothing (the
//! notifier's `repeat_interval` reminds people; the storage keeps the incident).
//! An alert's `version` is the version of the origin record that caused the
//! change, so it only grows, also across episodes: an origin that resolves and
//! opens again fires again with a higher version, even when this engine's state
//! was rebuilt or evicted in between.
//!
//! State: only firing alerts (resolved ones are forgotten at once), at most
//! `max_firing` per engine; beyond it the least recently updated are dropped
//! (counted in [`AlertEngine::evicted`]) — such an alert gets no resolve
//! version, the notifier's repeats for it keep going until the origin's next
//! change. The cap is a safety valve: origins resolve themselves (quiet period).

use rustc_hash::FxHashMap;
use schemas::ids::stable_id;
use schemas::model::{ClusterId, Severity};
use schemas::records::{Alert, AlertSource, Incident, Pattern, PatternScope, SourcePos, Status};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::rules::{AlertRule, AlertRules};

/// A firing alert: which rule, since when, last origin version and time seen.
#[derive(Debug, Clone)]
struct Firing {
    rule: u32,
    version: i64,
    starts_us: i64,
    last_us: i64,
}

/// One raw partition's alert state. See the module doc.
#[derive(Debug)]
pub struct AlertEngine {
    rules: Arc<AlertRules>,
    incident_rules: Vec<u32>,
    pattern_rules: Vec<u32>,
    /// Origin id → its firing alerts.
    firing: FxHashMap<Box<str>, Vec<Firing>>,
    entries: usize,
    max_firing: usize,
    /// Firing alerts dropped by the cap (for the caller's metrics).
    pub evicted: u64,
}

/// What the engine needs to know about an origin, whatever its kind.
struct Origin<'a> {
    kind: AlertSource,
    id: &'a str,
    version: i64,
    open: bool,
    source: SourcePos,
    cluster: &'a ClusterId,
    namespace: &'a str,
    severity: Severity,
    first_us: i64,
    last_us: i64,
}

impl AlertEngine {
    pub fn new(rules: Arc<AlertRules>, max_firing: usize) -> Self {
        let mut incident_rules = Vec::new();
        let mut pattern_rules = Vec::new();
        for (i, r) in rules.rules().iter().enumerate() {
            match r.on {
                AlertSource::Incident => incident_rules.push(i as u32),
                AlertSource::Pattern | AlertSource::Anomaly => pattern_rules.push(i as u32),
            }
        }
        AlertEngine { rules, incident_rules, pattern_rules, firing: FxHashMap::default(), entries: 0, max_firing: max_firing.max(1), evicted: 0 }
    }

    /// Firing alerts held.
    pub fn firing(&self) -> usize {
        self.entries
    }

    /// Evaluate the incident-rules on one incident version; push changes to `out`.
    pub fn on_incident(&mut self, inc: &Incident, out: &mut Vec<Alert>) {
        let origin = Origin {
            kind: AlertSource::Incident,
            id: &inc.id,
            version: inc.version,
            open: inc.status == Status::Open,
            source: inc.source,
            cluster: &inc.cluster,
            namespace: &inc.root_cause.object.namespace,
            severity: inc.severity,
            first_us: inc.first_seen_us,
            last_us: inc.last_seen_us,
        };
        let list = std::mem::take(&mut self.incident_rules);
        self.evaluate(&origin, &list, |r| r.matches_incident(inc), |r, f| incident_alert(r, inc, f), out);
        self.incident_rules = list;
    }

    /// Evaluate the pattern- and anomaly-rules on one pattern version.
    pub fn on_pattern(&mut self, p: &Pattern, out: &mut Vec<Alert>) {
        let origin = Origin {
            kind: AlertSource::Pattern,
            id: &p.id,
            version: p.version,
            open: p.status == Status::Open,
            source: p.source,
            cluster: &p.cluster,
            namespace: &p.namespace,
            severity: Severity::Warning,
            first_us: p.first_seen_us,
            last_us: p.last_seen_us,
        };
        let list = std::mem::take(&mut self.pattern_rules);
        self.evaluate(&origin, &list, |r| r.matches_pattern(p), |r, f| pattern_alert(r, p, f), out);
        self.pattern_rules = list;
    }

    fn evaluate(
        &mut self,
        o: &Origin<'_>,
        rule_ids: &[u32],
        matches: impl Fn(&AlertRule) -> bool,
        text: impl Fn(&AlertRule, &AlertFields) -> (String, BTreeMap<String, String>),
        out: &mut Vec<Alert>,
    ) {
        let rules = self.rules.clone();
        let mut changed = false;
        for &ri in rule_ids {
            let rule = &rules.rules()[ri as usize];
            let now_matches = o.open && matches(rule);
            let held = self.firing.get(o.id).and_then(|v| v.iter().position(|f| f.rule == ri));
            match (now_matches, held) {
                (true, None) => {
                    let starts_us = o.last_us.max(o.first_us);
                    let f = Firing { rule: ri, version: o.version, starts_us, last_us: o.last_us };
                    out.push(build(rule, o, &f, true, &text));
                    self.firing.entry(o.id.into()).or_default().push(f);
                    self.entries += 1;
                    changed = true;
                }
                (true, Some(i)) => {
                    let f = &mut self.firing.get_mut(o.id).expect("held")[i];
                    f.last_us = f.last_us.max(o.last_us);
                    f.version = f.version.max(o.version);
                }
                (false, Some(i)) => {
                    let v = self.firing.get_mut(o.id).expect("held");
                    // An older version than the one that fired (out of order): ignore.
                    if o.version <= v[i].version {
                        continue;
                    }
                    let f = v.swap_remove(i);
                    if v.is_empty() {
                        self.firing.remove(o.id);
                    }
                    self.entries -= 1;
                    let f = Firing { version: o.version, last_us: o.last_us.max(f.starts_us), ..f };
                    out.push(build(rule, o, &f, false, &text));
                }
                (false, None) => {}
            }
        }
        if changed && self.entries > self.max_firing {
            self.evict();
        }
    }

    /// Drop the least recently updated firing alerts down to 90% of the cap.
    /// Deterministic: ordered by (last update, origin id, rule).
    fn evict(&mut self) {
        let target = self.max_firing - self.max_firing / 10;
        let mut all: Vec<(i64, Box<str>, u32)> = self.firing.iter().flat_map(|(id, v)| v.iter().map(move |f| (f.last_us, id.clone(), f.rule))).collect();
        all.sort_unstable();
        for (_, id, rule) in all.into_iter().take(self.entries - target) {
            if let Some(v) = self.firing.get_mut(&id) {
                v.retain(|f| f.rule != rule);
                if v.is_empty() {
                    self.firing.remove(&id);
                }
            }
            self.entries -= 1;
            self.evicted += 1;
        }
    }
}

/// What the text builders need from the engine's decision.
struct AlertFields {
    severity: Severity,
}

fn build(
    rule: &AlertRule,
    o: &Origin<'_>,
    f: &Firing,
    firing: bool,
    text: &impl Fn(&AlertRule, &AlertFields) -> (String, BTreeMap<String, String>),
) -> Alert {
    let origin = match o.kind {
        AlertSource::Incident => AlertSource::Incident,
        _ => rule.on,
    };
    let severity = rule.severity.unwrap_or(o.severity);
    let (summary, mut labels) = text(rule, &AlertFields { severity });
    let mut all = rule.labels.clone();
    all.append(&mut labels);
    all.insert("severity".into(), severity.as_str().into());
    if !o.cluster.name.is_empty() {
        all.insert("cluster".into(), o.cluster.name.to_string());
    }
    if !o.namespace.is_empty() {
        all.insert("namespace".into(), o.namespace.to_string());
    }
    Alert {
        source: o.source,
        id: stable_id(&["alert", &rule.name, o.id]),
        version: f.version,
        rule: rule.name.to_string(),
        origin,
        origin_id: o.id.to_string(),
        firing,
        severity,
        cluster: o.cluster.clone(),
        namespace: o.namespace.to_string(),
        summary,
        labels: all,
        starts_us: f.starts_us,
        ends_us: if firing { 0 } else { f.last_us.max(1) },
    }
}

fn incident_alert(rule: &AlertRule, inc: &Incident, a: &AlertFields) -> (String, BTreeMap<String, String>) {
    let rc = &inc.root_cause;
    let summary = match &rule.summary {
        None if !inc.summary.is_empty() => inc.summary.clone(),
        None => format!("{} on {} {}/{} ({} events)", rc.reason, rc.object.kind, rc.object.namespace, rc.object.name, inc.event_count),
        Some(t) => t.render(|v| match v {
            "summary" => inc.summary.clone(),
            "rule" => rule.name.to_string(),
            "severity" => a.severity.as_str().into(),
            "cluster" => inc.cluster.name.to_string(),
            "clusters" => "1".into(),
            "namespace" => rc.object.namespace.to_string(),
            "reason" => rc.reason.clone(),
            "kind" => rc.object.kind.to_string(),
            "object" => rc.object.name.to_string(),
            "category" => rc.category.clone(),
            "events" | "count" => inc.event_count.to_string(),
            "occurrences" => inc.occurrences.to_string(),
            "objects" => inc.affected_objects.len().to_string(),
            _ => String::new(),
        }),
    };
    let mut labels = BTreeMap::new();
    for (k, v) in [("category", &rc.category), ("reason", &rc.reason)] {
        if !v.is_empty() {
            labels.insert(k.to_string(), v.clone());
        }
    }
    (summary, labels)
}

fn pattern_alert(rule: &AlertRule, p: &Pattern, a: &AlertFields) -> (String, BTreeMap<String, String>) {
    let where_ = if p.cluster.name.is_empty() { p.clusters.join(", ") } else { p.cluster.name.to_string() };
    let summary = match &rule.summary {
        None => pattern_summary(p, rule.on, &where_),
        Some(t) => t.render(|v| match v {
            "summary" => pattern_summary(p, rule.on, &where_),
            "rule" => rule.name.to_string(),
            "severity" => a.severity.as_str().into(),
            "cluster" => where_.clone(),
            "clusters" => p.clusters.len().max(1).to_string(),
            "namespace" => p.namespace.clone(),
            "reason" => p.reason.clone(),
            "kind" => p.kind.clone(),
            "count" | "occurrences" => p.count.to_string(),
            "per_minute" => format!("{:.1}", p.per_minute),
            "score" => format!("{:.1}", p.anomaly_score),
            "template" => p.template.clone(),
            _ => String::new(),
        }),
    };
    let mut labels = BTreeMap::new();
    if !p.reason.is_empty() {
        labels.insert("reason".to_string(), p.reason.clone());
    }
    let scope = match p.scope {
        PatternScope::Cluster => "cluster",
        PatternScope::Fleet => "fleet",
    };
    labels.entry("scope".to_string()).or_insert_with(|| scope.to_string());
    (summary, labels)
}

fn pattern_summary(p: &Pattern, on: AlertSource, where_: &str) -> String {
    let place = if p.scope == PatternScope::Fleet { format!("{} clusters ({where_})", p.clusters.len()) } else { where_.to_string() };
    let ns = if p.namespace.is_empty() { String::new() } else { format!("/{}", p.namespace) };
    match on {
        AlertSource::Anomaly => format!(
            "Burst of {} on {} in {place}{ns}: {} times, {:.1}/min ({:.1} deviations above baseline)",
            p.reason, p.kind, p.count, p.per_minute, p.anomaly_score
        ),
        _ => format!("{} on {} in {place}{ns}: {} times, {:.1}/min: {}", p.reason, p.kind, p.count, p.per_minute, p.template),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
