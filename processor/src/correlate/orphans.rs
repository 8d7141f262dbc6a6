//! Stand-alone effects kept for a late cause ([`super::late`]): a bounded,
//! time-ordered buffer indexed by the keys each event links through, so that
//! an incident that gains a member looks only at the orphans that member's
//! keys can reach (a busy cluster keeps many orphans — every `SuccessfulCreate`
//! is an effect of some rule — and incidents gain members all the time).

use rustc_hash::FxHashMap;
use std::collections::VecDeque;

use super::late::Kept;
use super::links::{Key, Via};

/// Orphans kept at most (the oldest go first).
pub(crate) const MAX_ORPHANS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Orphans {
    /// Oldest first, with the keys each is indexed by; `None` once taken in.
    /// Entry `i` has sequence `first + i`.
    list: VecDeque<Option<(Kept, Vec<Key>)>>,
    first: u64,
    live: usize,
    by_key: FxHashMap<Key, Vec<u64>>,
}

/// The keys an event may be linked through, for the ways `links` allows.
fn keys_of(k: &Kept, links: impl Fn(Via) -> bool) -> Vec<Key> {
    let mut all = Vec::new();
    let mut keys = Vec::new();
    for via in Via::ALL {
        if links(via) {
            k.ids.lookup_keys(via, &mut keys);
            all.extend_from_slice(&keys);
        }
    }
    all.sort_unstable();
    all.dedup();
    all
}

impl Orphans {
    /// Orphans kept now.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Keeps an orphan, indexed by its keys for the ways some rule could link
    /// it (`links`: a node or cluster key only when a rule links its reason
    /// that way, so that the one cluster key does not list every orphan).
    pub(crate) fn push(&mut self, k: Kept, links: impl Fn(Via) -> bool) {
        if self.list.len() >= MAX_ORPHANS {
            self.pop_front();
        }
        let seq = self.first + self.list.len() as u64;
        let keys = keys_of(&k, links);
        for key in &keys {
            self.by_key.entry(*key).or_default().push(seq);
        }
        self.list.push_back(Some((k, keys)));
        self.live += 1;
    }

    /// Record time of the oldest entry (taken-in ones included).
    pub(crate) fn oldest_t(&self) -> Option<i64> {
        match self.list.front() {
            Some(Some((k, _))) => Some(k.t_us),
            Some(None) => Some(i64::MIN),
            None => None,
        }
    }

    pub(crate) fn pop_front(&mut self) {
        if let Some(entry) = self.list.pop_front() {
            let seq = self.first;
            self.first += 1;
            if let Some((_, keys)) = entry {
                self.forget(seq, &keys);
            }
        }
    }

    fn forget(&mut self, seq: u64, keys: &[Key]) {
        self.live -= 1;
        for key in keys {
            if let Some(v) = self.by_key.get_mut(key) {
                v.retain(|s| *s != seq);
                if v.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
    }

    /// The orphans linked through `key`, oldest first.
    pub(crate) fn linked(&self, key: Key) -> Vec<u64> {
        self.by_key.get(&key).cloned().unwrap_or_default()
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&Kept> {
        let i = seq.checked_sub(self.first)? as usize;
        self.list.get(i).and_then(|e| e.as_ref()).map(|(k, _)| k)
    }

    /// Removes an orphan (it joined an incident).
    pub(crate) fn take(&mut self, seq: u64) -> Option<Kept> {
        let i = seq.checked_sub(self.first)? as usize;
        let (k, keys) = self.list.get_mut(i)?.take()?;
        self.forget(seq, &keys);
        Some(k)
    }
}
