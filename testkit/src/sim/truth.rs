//! Ground truth: what a correct processor should conclude from a scenario's events.
//!
//! Every written Event uid is either a member of exactly the incidents it was tagged
//! with, or noise. Occurrence counts come in two flavours because client-go's spam
//! filter hides some occurrences from the API server: `occurrences` is what a reader
//! of the server can know (the last written `count` / `series.count`), and
//! `emitted_occurrences` is everything the emitter counted.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One incident: events that belong together, and the one that caused the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthIncident {
    /// Human-readable name, e.g. `crash-loop shop/checkout-x7k2`.
    pub name: String,
    /// uid of the Event that is the root cause.
    pub root_cause_uid: String,
    /// uids of every Event of the incident, the root cause included.
    pub member_uids: BTreeSet<String>,
    /// Scenario kind that produced it (e.g. `crash-loop`); see `ScenarioKind::name`.
    pub kind: String,
}

/// The truth about one scenario, or about everything a fleet applied to one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroundTruth {
    pub incidents: Vec<TruthIncident>,
    /// uids of written Events that belong to no incident.
    pub noise_uids: BTreeSet<String>,
    /// Per written Event uid: occurrences visible on the server (the last written
    /// `count` or `series.count`, 1 for a singleton).
    pub occurrences: BTreeMap<String, i64>,
    /// Per written Event uid: occurrences the emitter counted, including those the
    /// spam filter kept from the server (≥ `occurrences`).
    pub emitted_occurrences: BTreeMap<String, i64>,
    /// Occurrences the client-go spam filter dropped in total.
    pub suppressed_occurrences: u64,
}

impl GroundTruth {
    /// Every uid the truth mentions.
    pub fn all_uids(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.noise_uids.iter().map(String::as_str).collect();
        for i in &self.incidents {
            out.insert(&i.root_cause_uid);
            out.extend(i.member_uids.iter().map(String::as_str));
        }
        out.extend(self.occurrences.keys().map(String::as_str));
        out
    }

    /// Sum of visible occurrences over all events.
    pub fn total_occurrences(&self) -> i64 {
        self.occurrences.values().sum()
    }

    /// Appends another truth (another scenario of the same cluster).
    pub fn merge(&mut self, other: GroundTruth) {
        self.incidents.extend(other.incidents);
        self.noise_uids.extend(other.noise_uids);
        self.occurrences.extend(other.occurrences);
        self.emitted_occurrences.extend(other.emitted_occurrences);
        self.suppressed_occurrences += other.suppressed_occurrences;
    }

    /// The same truth with every uid renamed through `map` (uids it lacks are kept):
    /// a real API server gives each object its own uid.
    pub fn rename_uids(&self, map: &std::collections::HashMap<String, String>) -> GroundTruth {
        let r = |u: &String| map.get(u).cloned().unwrap_or_else(|| u.clone());
        let counts = |m: &BTreeMap<String, i64>| m.iter().map(|(u, n)| (r(u), *n)).collect();
        GroundTruth {
            incidents: self
                .incidents
                .iter()
                .map(|i| TruthIncident {
                    root_cause_uid: r(&i.root_cause_uid),
                    member_uids: i.member_uids.iter().map(r).collect(),
                    ..i.clone()
                })
                .collect(),
            noise_uids: self.noise_uids.iter().map(r).collect(),
            occurrences: counts(&self.occurrences),
            emitted_occurrences: counts(&self.emitted_occurrences),
            suppressed_occurrences: self.suppressed_occurrences,
        }
    }

    /// The truth as far as a partial playback got: `applied` maps each uid applied so
    /// far to the occurrences its last applied version showed. Incidents whose root
    /// cause was not applied yet are left out; members are cut to applied uids.
    pub fn restrict(&self, applied: &BTreeMap<String, i64>) -> GroundTruth {
        let incidents = self
            .incidents
            .iter()
            .filter(|i| applied.contains_key(&i.root_cause_uid))
            .map(|i| TruthIncident {
                member_uids: i.member_uids.iter().filter(|u| applied.contains_key(*u)).cloned().collect(),
                ..i.clone()
            })
            .collect();
        let emitted = self
            .emitted_occurrences
            .iter()
            .filter(|(u, _)| applied.contains_key(*u))
            .map(|(u, n)| (u.clone(), *n))
            .collect();
        GroundTruth {
            incidents,
            noise_uids: self.noise_uids.iter().filter(|u| applied.contains_key(*u)).cloned().collect(),
            occurrences: applied.iter().filter(|(u, _)| self.occurrences.contains_key(*u)).map(|(u, n)| (u.clone(), *n)).collect(),
            emitted_occurrences: emitted,
            suppressed_occurrences: self.suppressed_occurrences,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> GroundTruth {
        GroundTruth {
            incidents: vec![TruthIncident {
                name: "x".into(),
                root_cause_uid: "a".into(),
                member_uids: ["a", "b"].iter().map(|s| s.to_string()).collect(),
                kind: "crash-loop".into(),
            }],
            noise_uids: ["n".to_string()].into(),
            occurrences: [("a".to_string(), 3), ("b".to_string(), 1), ("n".to_string(), 1)].into(),
            emitted_occurrences: [("a".to_string(), 5), ("b".to_string(), 1), ("n".to_string(), 1)].into(),
            suppressed_occurrences: 2,
        }
    }

    #[test]
    fn restrict_cuts_to_applied() {
        let applied = [("a".to_string(), 2)].into();
        let r = truth().restrict(&applied);
        assert_eq!(r.incidents.len(), 1);
        assert_eq!(r.incidents[0].member_uids.len(), 1);
        assert_eq!(r.occurrences.get("a"), Some(&2));
        assert!(r.noise_uids.is_empty());
        let none = truth().restrict(&[("b".to_string(), 1)].into());
        assert!(none.incidents.is_empty());
    }

    #[test]
    fn rename_uids_renames_everywhere() {
        let map = [("a".to_string(), "A".to_string()), ("n".to_string(), "N".to_string())].into();
        let t = truth().rename_uids(&map);
        assert_eq!(t.incidents[0].root_cause_uid, "A");
        assert!(t.incidents[0].member_uids.contains("A") && t.incidents[0].member_uids.contains("b"));
        assert!(t.noise_uids.contains("N"));
        assert_eq!(t.occurrences.get("A"), Some(&3));
        assert_eq!(t.emitted_occurrences.get("A"), Some(&5));
        assert_eq!(t.total_occurrences(), truth().total_occurrences());
    }

    #[test]
    fn all_uids_and_totals() {
        let t = truth();
        assert_eq!(t.all_uids().len(), 3);
        assert_eq!(t.total_occurrences(), 5);
    }
}
