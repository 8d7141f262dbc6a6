//! A per-worker, two-level memo of extracted metadata, so that the regexes run
//! once per distinct message rather than once per event.
//!
//! - **Whole results**, keyed by the rule inputs plus what the involved object
//!   gives ([`ObjectKeys`]: container, node, owner): a repeat of an Event (a
//!   MODIFIED version, a relist, a replay) differs only in count and
//!   timestamps, and pods of one Deployment on one node often share their
//!   messages, so both hit and cost one reference count (the value is a
//!   [`Metadata`] the outputs share; the cache is one worker's, so the counter
//!   stays on its core).
//! - **Message results**, keyed by [`rule_inputs_hash`]: pods of one workload
//!   mostly share their messages ("Started container app", "Pulling image
//!   …"), so a new event of a known message skips the regexes and only adds
//!   the cheap structural and name-based keys
//!   ([`MetadataExtractor::message_keys`] says why that is the same result).
//!
//! As with the classification cache, a 64-bit collision would share a result
//! (≈ n²/2⁶⁵ for n entries; accepted). Bounding, ownership and rebinding to
//! another [`MetadataExtractor`] are [`crate::memo::Memo`]'s.

use crate::memo::{rule_inputs_hash, Memo};
use rustc_hash::FxHasher;
use schemas::metadata::Metadata;
use schemas::model::NormalizedEvent;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::{MetadataExtractor, ObjectKeys};

/// Default number of entries of each level before it is emptied, when every
/// entry is distinct: about 8 MB of whole results per raw partition (a
/// [`Metadata`] of ~6 pairs is ~250 bytes) and about 20 MB of message results
/// (a map of ~6 keys is ~600 bytes). 8,192 measured no faster on `--bench core`.
pub const DEFAULT_CAPACITY: usize = 32_768;

type Map = BTreeMap<String, String>;

/// Memo of metadata by event content. See the module docs.
#[derive(Debug)]
pub struct MetadataCache {
    whole: Memo<Metadata>,
    messages: Memo<Map>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MetadataCache {
    /// A cache of at most `capacity` results per level; emptied when full.
    pub fn new(capacity: usize) -> Self {
        MetadataCache { whole: Memo::new(capacity), messages: Memo::new(capacity) }
    }

    /// [`MetadataExtractor::extract`] as a [`Metadata`], from memory when possible.
    pub fn extract(&mut self, extractor: &MetadataExtractor, ev: &NormalizedEvent) -> Metadata {
        self.extract_keyed(extractor, ev, rule_inputs_hash(ev))
    }

    /// [`Self::extract`] with the event's [`rule_inputs_hash`] already computed.
    pub fn extract_keyed(&mut self, extractor: &MetadataExtractor, ev: &NormalizedEvent, rules_key: u64) -> Metadata {
        let object = ObjectKeys::of(ev);
        let messages = &mut self.messages;
        self.whole
            .get_or_insert_with(extractor.id(), whole_key(rules_key, &object), || {
                let message_keys = messages.get_or_insert_with(extractor.id(), rules_key, || {
                    let mut m = Map::new();
                    extractor.message_keys(ev, &mut m);
                    m
                });
                let mut pairs = Vec::with_capacity(16);
                object.pairs(message_keys, &mut pairs);
                Metadata::from_sorted(pairs.iter().copied())
            })
            .clone()
    }

    /// Lookups answered from memory (whole results).
    pub fn hits(&self) -> u64 {
        self.whole.hits()
    }

    /// Lookups that built a result (from a remembered message or the regexes).
    pub fn misses(&self) -> u64 {
        self.whole.misses()
    }

    /// Lookups that ran the regexes.
    pub fn message_misses(&self) -> u64 {
        self.messages.misses()
    }

    /// Whole results currently held.
    pub fn len(&self) -> usize {
        self.whole.len()
    }

    pub fn is_empty(&self) -> bool {
        self.whole.is_empty()
    }
}

/// The rule inputs plus what the involved object gives (container, node,
/// owner): the whole result is a function of exactly these.
fn whole_key(rules_key: u64, object: &ObjectKeys<'_>) -> u64 {
    let mut h = FxHasher::default();
    rules_key.hash(&mut h);
    object.hash(&mut h);
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
                assert_eq!(cache.extract(&x, &repeat).to_map(), direct);
            }
        }
        assert_eq!((cache.misses(), cache.hits()), (3, 6));
        assert_eq!(cache.message_misses(), 2, "two pods pulling the same image share the regex work");
        // Another pod of the same Deployment on the same node: the same result, from memory.
        let sibling = ev("Pulling", "web-6f9c8d7b5-b7k9z", "Pulling image \"nginx:1.27\"");
        let mut direct = BTreeMap::new();
        x.extract(&sibling, &mut direct);
        assert_eq!(cache.extract(&x, &sibling).to_map(), direct);
        assert_eq!((cache.misses(), cache.hits()), (3, 7));
        // Different pods, same message: different owners, so different entries.
        assert_eq!(&cache.extract(&x, &events[1])["owner_name"], "api");
    }

    #[test]
    fn a_shared_message_keeps_each_events_own_structure_and_owner() {
        let x = MetadataExtractor::builtin();
        let mut cache = MetadataCache::new(64);
        // The message names container `other`; the field path says `app` and wins.
        for (name, fp, node) in [
            ("web-6f9c8d7b5-x2kqp", "spec.containers{app}", "node-1"),
            ("api-7c5d9b8f4-q8wnm", "", "node-2"),
            ("db-0", "spec.containers{db}", ""),
        ] {
            let mut e = ev("Started", name, "Started container other");
            e.regarding.field_path = fp.into();
            e.reporting_instance = node.into();
            let mut direct = BTreeMap::new();
            x.extract(&e, &mut direct);
            assert_eq!(cache.extract(&x, &e).to_map(), direct, "{name}");
        }
        assert_eq!(cache.message_misses(), 1);
        let mut e = ev("Killing", "job-28000000-b2c4d", "Container app failed liveness probe, will be restarted");
        e.reporting_instance = "node-3".into();
        let mut direct = BTreeMap::new();
        x.extract(&e, &mut direct);
        assert_eq!(cache.extract(&x, &e).to_map(), direct);
        assert_eq!(direct["owner_kind"], "CronJob");
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
        assert_eq!(&cache.extract(&x, &e)["node"], "node-1");
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
            &cache.extract(&y, &e)["image"], "nginx",
            "the other extractor's result, not the memo"
        );
    }
}
