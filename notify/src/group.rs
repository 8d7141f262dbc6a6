//! Grouping: alerts with equal `group_by` values that arrive within
//! `group_wait` of the group's first alert go out together. Time is passed in
//! (`now`), so the rule is tested without sleeping.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::{group_value, Group, Item};

struct Pending {
    labels: BTreeMap<String, String>,
    deadline: Instant,
    /// Arrival order of the group's first alert, to send groups in order.
    first: u64,
    items: Vec<Item>,
}

/// The groups waiting to be sent.
pub struct Groups {
    by: Vec<String>,
    wait: Duration,
    pending: BTreeMap<String, Pending>,
    arrivals: u64,
}

impl Groups {
    pub fn new(by: Vec<String>, wait: Duration) -> Self {
        Groups { by, wait, pending: BTreeMap::new(), arrivals: 0 }
    }

    /// Add an item to its group (a new group waits until `now + wait`).
    pub fn push(&mut self, item: Item, now: Instant) {
        let labels: BTreeMap<String, String> = self.by.iter().map(|l| (l.clone(), group_value(&item.alert, l))).collect();
        let key = labels.values().cloned().collect::<Vec<_>>().join("\u{1f}");
        self.arrivals += 1;
        let (wait, first) = (self.wait, self.arrivals);
        self.pending.entry(key).or_insert_with(|| Pending { labels, deadline: now + wait, first, items: Vec::new() }).items.push(item);
    }

    /// Groups whose wait is over (all of them with `force`), in arrival order.
    pub fn take_due(&mut self, now: Instant, force: bool) -> Vec<Group> {
        let due: Vec<String> = self.pending.iter().filter(|(_, g)| force || g.deadline <= now).map(|(k, _)| k.clone()).collect();
        let mut taken: Vec<Pending> = due.iter().filter_map(|k| self.pending.remove(k)).collect();
        taken.sort_by_key(|p| p.first);
        taken.into_iter().map(|p| Group { labels: p.labels, items: p.items }).collect()
    }

    /// When the next group is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|g| g.deadline).min()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::target::tests::alert;
    use super::*;

    fn item(id: &str, rule: &str, cluster: &str) -> Item {
        let mut a = alert(id, true);
        a.rule = rule.into();
        a.cluster.name = cluster.into();
        Item { alert: a, partition: 0, offset: None, repeat: false }
    }

    fn ids(g: &Group) -> Vec<&str> {
        g.items.iter().map(|i| i.alert.id.as_str()).collect()
    }

    #[test]
    fn same_key_within_the_wait_is_one_group() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut g = Groups::new(vec!["rule".into(), "cluster".into()], 10 * s);
        g.push(item("a", "r1", "c1"), t0);
        g.push(item("b", "r2", "c1"), t0 + s);
        g.push(item("c", "r1", "c1"), t0 + 5 * s);
        g.push(item("d", "r1", "c2"), t0 + 6 * s);
        assert_eq!(g.next_deadline(), Some(t0 + 10 * s));
        assert!(g.take_due(t0 + 9 * s, false).is_empty());
        let due = g.take_due(t0 + 10 * s, false);
        assert_eq!(due.len(), 1);
        assert_eq!(ids(&due[0]), ["a", "c"]);
        assert_eq!(due[0].labels, [("cluster".to_string(), "c1".to_string()), ("rule".to_string(), "r1".to_string())].into());
        // A late alert of a group already sent starts a new group.
        g.push(item("e", "r1", "c1"), t0 + 10 * s);
        let due = g.take_due(t0 + 16 * s, false);
        assert_eq!(due.iter().map(ids).collect::<Vec<_>>(), [vec!["b"], vec!["d"]]);
        let due = g.take_due(t0 + 16 * s, true);
        assert_eq!(due.iter().map(ids).collect::<Vec<_>>(), [vec!["e"]], "force sends before the wait is over");
        assert!(g.is_empty() && g.next_deadline().is_none());
    }

    #[test]
    fn group_by_any_label() {
        let t0 = Instant::now();
        let mut g = Groups::new(vec!["team".into()], Duration::ZERO);
        g.push(item("a", "r1", "c1"), t0);
        g.push(item("b", "r2", "c2"), t0);
        let due = g.take_due(t0, false);
        assert_eq!(due.len(), 1, "both alerts have team=storage");
        assert_eq!(ids(&due[0]), ["a", "b"]);
    }
}
