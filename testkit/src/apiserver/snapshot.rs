//! Lists as of a resourceVersion: the current Events with every later change undone from
//! the retained history, as etcd's MVCC serves a list at an older revision. This is what
//! keeps the pages of a paged list one consistent snapshot, and what makes an old
//! continue token expire (410) once compaction dropped the changes it would need.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::selectors::Filter;
use super::store::{lock, Key, RvError, Store, Stored};

/// One page of a list.
pub(crate) struct Page {
    pub rv: u64,
    pub items: Vec<Arc<Stored>>,
    /// Key of the last returned item when more follow.
    pub continue_after: Option<Key>,
    pub remaining: Option<i64>,
}

impl Store {
    /// One page of Events matching `filter` as of `at` (None: now), after key `after`.
    pub(crate) fn list_page(
        &self,
        filter: &Filter,
        at: Option<u64>,
        after: Option<&Key>,
        limit: Option<usize>,
    ) -> Result<Page, RvError> {
        let st = lock(&self.inner.events);
        let current = self.current_rv();
        let at = at.unwrap_or(current).min(current);
        // State at `at` = current state with every later change undone, oldest prev wins.
        let mut overrides: BTreeMap<Key, Option<Arc<Stored>>> = BTreeMap::new();
        if at < current {
            if at < st.compacted_through {
                return Err(RvError::TooOld {
                    compacted_through: st.compacted_through,
                });
            }
            for c in st.history.iter().rev().take_while(|c| c.rv > at) {
                overrides.insert(c.object.key(), c.prev.clone());
            }
        }
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        let mut base = st
            .items
            .range::<Key, _>((lower, Bound::Unbounded))
            .peekable();
        let mut over = overrides
            .range::<Key, _>((lower, Bound::Unbounded))
            .peekable();
        let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut continue_after = None;
        let mut remaining = 0i64;
        let plain = filter.fields.is_empty() && filter.labels.is_empty();
        loop {
            // Merge the two sorted sources; an override replaces the current state.
            let next: Option<(&Key, Option<&Arc<Stored>>)> = match (base.peek(), over.peek()) {
                (None, None) => break,
                (Some((bk, _)), Some((ok, _))) if bk < ok => base.next().map(|(k, v)| (k, Some(v))),
                (Some((bk, _)), Some((ok, _))) if bk == ok => {
                    base.next();
                    over.next().map(|(k, v)| (k, v.as_ref()))
                }
                (_, Some(_)) => over.next().map(|(k, v)| (k, v.as_ref())),
                (Some(_), None) => base.next().map(|(k, v)| (k, Some(v))),
            };
            let Some((key, Some(obj))) = next else {
                continue;
            };
            if !filter.matches(&obj.event) {
                continue;
            }
            if items.len() < limit {
                items.push(obj.clone());
                continue;
            }
            if continue_after.is_none() {
                continue_after = Some(
                    items
                        .last()
                        .map(|s: &Arc<Stored>| s.key())
                        .unwrap_or_else(|| key.clone()),
                );
                if !plain {
                    break;
                }
            }
            remaining += 1;
        }
        let remaining = (continue_after.is_some() && plain).then_some(remaining);
        Ok(Page {
            rv: at,
            items,
            continue_after,
            remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::store::tests::{event, store};

    #[test]
    fn pages_are_consistent_snapshots() {
        let s = store(100);
        for i in 0..5 {
            s.apply(event("a", &format!("e{i}"), "X"));
        }
        let f = Filter::default();
        let p1 = s.list_page(&f, None, None, Some(2)).unwrap();
        assert_eq!(p1.items.len(), 2);
        assert_eq!(p1.remaining, Some(3));
        // Writes after the first page are invisible to the rest of the snapshot.
        s.delete("a", "e3");
        s.apply(event("a", "e9", "X"));
        s.apply(event("a", "e4", "Changed"));
        let p2 = s
            .list_page(&f, Some(p1.rv), p1.continue_after.as_ref(), Some(10))
            .unwrap();
        let names: Vec<_> = p2.items.iter().map(|x| x.key().1).collect();
        assert_eq!(names, ["e2", "e3", "e4"]);
        assert_eq!(p2.items[2].event.reason.as_deref(), Some("X"));
        assert!(p2.continue_after.is_none());
        s.compact();
        assert_eq!(
            s.list_page(&f, Some(p1.rv), p1.continue_after.as_ref(), None)
                .err(),
            Some(RvError::TooOld {
                compacted_through: s.current_rv()
            })
        );
    }
}
