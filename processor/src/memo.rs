//! A bounded, per-worker memo keyed by a 64-bit content hash, bound to one owner
//! (a rule set): the mechanism under the classification and metadata caches.
//!
//! Bounded by emptying when full (cheaper than LRU bookkeeping; the working set
//! refills it at once). Used with a different owner (another rule set), it empties
//! itself first, so a result never outlives the rules that produced it. One worker
//! owns it (`&mut self`, no lock). Two inputs with the same 64-bit hash would share
//! a result: ≈ n²/2⁶⁵ for n entries, accepted for speed.

use rustc_hash::{FxHashMap, FxHasher};
use schemas::model::NormalizedEvent;
use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};

/// Hash of every field a classification rule or a metadata extractor can
/// look at: reason, type, reporting component, involved kind, namespace,
/// message. A repeat of an Event differs only in count and timestamps, and
/// pods of one workload often share a message, so both hit. `str::hash`
/// appends a terminator, so ("ab","c") and ("a","bc") hash differently.
#[inline]
pub fn rule_inputs_hash(ev: &NormalizedEvent) -> u64 {
    let mut h = FxHasher::default();
    ev.reason.hash(&mut h);
    ev.event_type.hash(&mut h);
    ev.reporting_controller.hash(&mut h);
    ev.regarding.kind.hash(&mut h);
    ev.namespace.hash(&mut h);
    ev.note.hash(&mut h);
    h.finish()
}

#[derive(Debug)]
pub struct Memo<V> {
    map: FxHashMap<u64, V>,
    capacity: usize,
    owner: u64,
    hits: u64,
    misses: u64,
}

impl<V> Memo<V> {
    /// A memo of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Memo { map: FxHashMap::default(), capacity: capacity.max(1), owner: 0, hits: 0, misses: 0 }
    }

    /// The value for `key` computed by `owner`, computing it with `f` on a miss.
    #[inline]
    pub fn get_or_insert_with(&mut self, owner: u64, key: u64, f: impl FnOnce() -> V) -> &V {
        if self.owner != owner {
            self.map.clear();
            self.owner = owner;
        }
        // Full: make room, unless this lookup is a hit (checked only when full).
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.map.clear();
        }
        match self.map.entry(key) {
            Entry::Occupied(e) => {
                self.hits += 1;
                e.into_mut()
            }
            Entry::Vacant(e) => {
                self.misses += 1;
                e.insert(f())
            }
        }
    }

    /// Lookups answered from memory (for a hit-ratio metric).
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that computed their value.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Entries currently held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bounds_and_rebinds() {
        let mut m = Memo::new(2);
        assert_eq!(*m.get_or_insert_with(1, 10, || "a"), "a");
        assert_eq!(*m.get_or_insert_with(1, 10, || "b"), "a");
        assert_eq!((m.hits(), m.misses()), (1, 1));
        m.get_or_insert_with(1, 11, || "c");
        m.get_or_insert_with(1, 12, || "d");
        assert!(m.len() <= 2);
        assert_eq!(*m.get_or_insert_with(2, 12, || "e"), "e", "another owner starts empty");
        assert_eq!(m.len(), 1);
    }
}
