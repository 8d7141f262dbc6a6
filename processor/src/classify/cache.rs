//! A per-worker memo of classification results, so that a repeated event (a
//! MODIFIED version of the same Event, a relist, a replay) is not matched again,
//! and the worker's own shared copies of what an output carries.
//!
//! The key is [`rule_inputs_hash`]: exactly the fields rules can look at (reason,
//! type, component, involved kind, namespace, message); the value is the
//! position of the matching rule. A repeat of an Event differs only in count
//! and timestamps, which are not hashed, so it hits. Two different inputs
//! sharing a 64-bit hash would share a result: with the bounded size below the
//! chance is about n²/2⁶⁵ (≈ 3·10⁻¹¹ for 65k entries), accepted for speed.
//!
//! A result is a [`Classified`]: category, rule and labels as `Arc`s built once
//! per rule *by this worker*, so that an output costs three reference counts
//! and no allocation, and workers on other cores never touch the same counters
//! (a shared `Arc` per rule would bounce its cache line between cores).
//!
//! Bounding, ownership and rebinding to another [`Classifier`] are
//! [`crate::memo::Memo`]'s; the per-rule copies are rebuilt on a rebind too.

use crate::memo::{rule_inputs_hash, Memo};
use schemas::model::{NormalizedEvent, Severity};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Classification, Classifier};

/// Default number of entries before the cache is emptied (about 1.5 MB).
pub const DEFAULT_CAPACITY: usize = 65_536;

/// A classification as an output carries it. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub category: Arc<str>,
    pub severity: Severity,
    /// Name of the rule that matched; empty when no rule matched.
    pub rule: Arc<str>,
    pub labels: Arc<BTreeMap<String, String>>,
    /// No rule matched: category is `unknown`, severity follows the event type.
    pub unknown: bool,
}

impl From<Classification<'_>> for Classified {
    fn from(c: Classification<'_>) -> Self {
        Classified {
            category: c.category.into(),
            severity: c.severity,
            rule: c.rule.into(),
            labels: Arc::new(c.labels.clone()),
            unknown: c.unknown,
        }
    }
}

/// Memo of rule positions by event content, and this worker's [`Classified`]
/// per position. See the module docs.
#[derive(Debug)]
pub struct ClassifyCache {
    memo: Memo<u32>,
    /// Indexed by rule position; the last two slots are "no match" for a
    /// Normal and a Warning event (their severities differ).
    shared: Vec<Option<Classified>>,
    /// The classifier `shared` was built from.
    owner: u64,
}

/// Stored for "no rule matched", which is worth caching too.
const NO_MATCH: u32 = u32::MAX;

impl Default for ClassifyCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl ClassifyCache {
    /// A cache holding at most `capacity` results; when full it is emptied
    /// (cheaper than LRU bookkeeping, and the working set refills it at once).
    pub fn new(capacity: usize) -> Self {
        ClassifyCache { memo: Memo::new(capacity), shared: Vec::new(), owner: 0 }
    }

    /// Same result as [`Classifier::classify`], from memory when possible.
    #[inline]
    pub fn classify(&mut self, classifier: &Classifier, ev: &NormalizedEvent) -> &Classified {
        self.classify_keyed(classifier, ev, rule_inputs_hash(ev))
    }

    /// [`Self::classify`] with the event's [`rule_inputs_hash`] already
    /// computed (the step hashes once for this cache and the metadata cache).
    #[inline]
    pub fn classify_keyed(&mut self, classifier: &Classifier, ev: &NormalizedEvent, rules_key: u64) -> &Classified {
        let pos = *self.memo.get_or_insert_with(classifier.id(), rules_key, || {
            classifier.match_position(ev).unwrap_or(NO_MATCH)
        });
        if self.owner != classifier.id() {
            self.owner = classifier.id();
            self.shared.clear();
            self.shared.resize(classifier.rule_count() + 2, None);
        }
        let slot = match pos {
            NO_MATCH => classifier.rule_count() + ev.is_warning() as usize,
            p => p as usize,
        };
        self.shared[slot].get_or_insert_with(|| {
            classifier.classification_at((pos != NO_MATCH).then_some(pos), ev).into()
        })
    }

    /// Lookups answered from memory, for a hit-ratio metric.
    pub fn hits(&self) -> u64 {
        self.memo.hits()
    }

    /// Lookups that ran the rules.
    pub fn misses(&self) -> u64 {
        self.memo.misses()
    }

    /// Entries currently held.
    pub fn len(&self) -> usize {
        self.memo.len()
    }

    pub fn is_empty(&self) -> bool {
        self.memo.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(reason: &str, ty: &str, note: &str) -> NormalizedEvent {
        NormalizedEvent {
            reason: reason.into(),
            event_type: ty.into(),
            reporting_controller: "kubelet".into(),
            note: note.into(),
            count: 1,
            ..Default::default()
        }
    }

    #[test]
    fn cached_results_equal_direct_results_and_repeats_hit() {
        let c = Classifier::builtin();
        let mut cache = ClassifyCache::new(16);
        let events = [
            ev(
                "BackOff",
                "Warning",
                "Back-off restarting failed container app in pod a_b(c)",
            ),
            ev("BackOff", "Normal", "Back-off pulling image \"nginx:1.2\""),
            ev("Failed", "Warning", "Error: ErrImagePull"),
            ev("NoSuchReason", "Warning", "x"),
        ];
        for round in 0..3 {
            for e in &events {
                let mut repeat = e.clone();
                repeat.count = 5 + round; // a repeat: only count/timestamps change
                assert_eq!(*cache.classify(&c, &repeat), Classified::from(c.classify(e)));
            }
        }
        assert_eq!(cache.misses(), 4);
        assert_eq!(cache.hits(), 8);
    }

    #[test]
    fn cache_is_bounded_and_rebinds_to_a_new_classifier() {
        let c1 = Classifier::builtin();
        let mut cache = ClassifyCache::new(2);
        for i in 0..5 {
            cache.classify(&c1, &ev("Pulled", "Normal", &format!("m{i}")));
            assert!(cache.len() <= 2);
        }
        let c2 = Classifier::from_yaml_str(
            "u.yaml",
            "rules:\n- name: pulled-is-error\n  reason: Pulled\n  category: image\n  severity: error\n",
        )
        .unwrap();
        let e = ev("Pulled", "Normal", "m4");
        assert_eq!(&*cache.classify(&c1, &e).rule, c1.classify(&e).rule);
        assert_eq!(&*cache.classify(&c2, &e).rule, "pulled-is-error");
        assert_eq!(&*cache.classify(&c1, &e).rule, c1.classify(&e).rule);
    }
}
