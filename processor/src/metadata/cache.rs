//! A per-worker memo of extracted metadata, so that a repeated event (a
//! MODIFIED version of the same Event, a relist, a replay) skips the regexes.
//!
//! The key is a 64-bit FxHash of every field extraction reads (reason, type,
//! component, reporting instance, involved kind/name/field path, namespace,
//! message); a repeat differs only in count and timestamps, so it hits. As
//! with the classification cache, a 64-bit collision would share a result
//! (≈ n²/2⁶⁵ for n entries; accepted). The value is the extracted map behind
//! an `Arc` that outputs share: a hit costs a reference count, not a copy of
//! each string. The cache is one worker's, so those counters stay on its core.
//!
//! Bounding, ownership and rebinding to another [`MetadataExtractor`] are
//! [`crate::memo::Memo`]'s.

use crate::memo::Memo;
use rustc_hash::FxHasher;
use schemas::model::NormalizedEvent;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::MetadataExtractor;

/// Default number of entries before the cache is emptied (a few MB).
pub const DEFAULT_CAPACITY: usize = 32_768;

/// Memo of metadata by event content. See the module docs.
#[derive(Debug)]
pub struct MetadataCache {
    memo: Memo<Arc<BTreeMap<String, String>>>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MetadataCache {
    /// A cache of at most `capacity` results; emptied when full.
    pub fn new(capacity: usize) -> Self {
        MetadataCache { memo: Memo::new(capacity) }
    }

    /// [`MetadataExtractor::extract`] into a fresh map, from memory when possible.
    pub fn extract(&mut self, extractor: &MetadataExtractor, ev: &NormalizedEvent) -> Arc<BTreeMap<String, String>> {
        self.memo
            .get_or_insert_with(extractor.id(), content_hash(ev), || {
                let mut fresh = BTreeMap::new();
                extractor.extract(ev, &mut fresh);
                Arc::new(fresh)
            })
            .clone()
    }

    /// Lookups answered from memory.
    pub fn hits(&self) -> u64 {
        self.memo.hits()
    }

    /// Lookups that ran the extractors.
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

/// Hash of every field extraction reads.
fn content_hash(ev: &NormalizedEvent) -> u64 {
    let mut h = FxHasher::default();
    ev.reason.hash(&mut h);
    ev.event_type.hash(&mut h);
    ev.reporting_controller.hash(&mut h);
    ev.reporting_instance.hash(&mut h);
    ev.regarding.kind.hash(&mut h);
    ev.regarding.name.hash(&mut h);
    ev.regarding.field_path.hash(&mut h);
    ev.namespace.hash(&mut h);
    ev.note.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(reason: &str, name: &str, note: &str) -> NormalizedEvent {
        let mut e = NormalizedEvent {
            reason: reason.into(),
            reporting_controller: "kubelet".into(),
            reporting_instance: "node-1".into(),
            note: note.into(),
            count: 1,
            ..Default::default()
        };
        e.regarding.kind = "Pod".into();
        e.regarding.name = name.into();
        e
    }

    #[test]
    fn cached_metadata_equals_direct_metadata_and_repeats_hit() {
        let x = MetadataExtractor::builtin();
        let mut cache = MetadataCache::new(64);
        let events = [
            ev(
                "Pulling",
                "web-6f9c8d7b5-x2kqp",
                "Pulling image \"nginx:1.27\"",
            ),
            ev(
                "Pulling",
                "api-7c5d9b8f4-q8wnm",
                "Pulling image \"nginx:1.27\"",
            ),
            ev(
                "Unhealthy",
                "web-6f9c8d7b5-x2kqp",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
            ),
        ];
        for round in 0..3 {
            for e in &events {
                let mut repeat = e.clone();
                repeat.count = 2 + round;
                let mut direct = BTreeMap::new();
                x.extract(e, &mut direct);
                assert_eq!(*cache.extract(&x, &repeat), direct);
            }
        }
        assert_eq!((cache.misses(), cache.hits()), (3, 6));
        // Different pods, same message: different owners, so different entries.
        assert_eq!(cache.extract(&x, &events[1])["owner_name"], "api");
    }

    #[test]
    fn the_cache_is_bounded_and_rebinds() {
        let x = MetadataExtractor::builtin();
        let mut cache = MetadataCache::new(2);
        let e = ev(
            "Pulling",
            "web-6f9c8d7b5-x2kqp",
            "Pulling image \"nginx:1.27\"",
        );
        assert_eq!(cache.extract(&x, &e)["node"], "node-1");
        for i in 0..5 {
            cache.extract(
                &x,
                &ev("Pulling", "p", &format!("Pulling image \"i{i}\"")),
            );
            assert!(cache.len() <= 2);
        }
        let y = MetadataExtractor::from_yaml_str(
            "u.yaml",
            "extractors:\n- name: image-ref\n  reason: Pulling\n  regex: 'image \"(?P<image>[^:\"]+)'\n",
        )
        .unwrap();
        assert_eq!(
            cache.extract(&y, &e)["image"], "nginx",
            "the other extractor's result, not the memo"
        );
    }
}
