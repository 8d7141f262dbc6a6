//! Fleet patterns in process: the same similarity key (reason, kind, namespace,
//! template — no cluster in it) as a pattern in several clusters is one fleet
//! pattern. `kevents analyze` uses this on the patterns of a file; the running
//! pipeline, whose clusters live on different partitions and members, gets the same
//! answer from the `fleet_patterns` view in ClickHouse (migration 0004).

use schemas::ids::stable_id;
use schemas::model::ClusterId;
use schemas::records::{Pattern, PatternScope, Status};
use std::collections::{BTreeMap, BTreeSet};

/// One fleet pattern per key that is a pattern in at least `min_clusters`
/// clusters (distinct cluster uids), from cluster patterns in any status.
///
/// Input may hold several versions of an episode: only the highest version of each
/// id counts. Several episodes of one key in one cluster add up (counts, samples)
/// but count as one cluster. The fleet pattern: `clusters` sorted by name, counts
/// summed, first/last seen the min/max, `per_minute` and `anomaly_score` the sum
/// and max of the episodes', status open while any episode is, samples the first
/// three by episode start, `previous_episodes` the earlier episodes' starts.
/// Its id is `stable_id(["pattern", "fleet", "", key, first_seen])` and its version
/// the sum of the episodes' versions, so it grows whenever one of them changes.
/// Sorted by count (highest first), then key.
pub fn merge(cluster_patterns: &[Pattern], min_clusters: usize) -> Vec<Pattern> {
    let mut latest: BTreeMap<&str, &Pattern> = BTreeMap::new();
    for p in cluster_patterns.iter().filter(|p| p.scope == PatternScope::Cluster) {
        let e = latest.entry(p.id.as_str()).or_insert(p);
        if p.version > e.version {
            *e = p;
        }
    }
    let mut by_key: BTreeMap<&str, Vec<&Pattern>> = BTreeMap::new();
    for p in latest.into_values() {
        by_key.entry(p.key.as_str()).or_default().push(p);
    }
    let mut fleet: Vec<Pattern> = by_key
        .into_iter()
        .filter_map(|(key, mut eps)| {
            let uids: BTreeSet<&str> = eps.iter().map(|p| p.cluster.uid.as_str()).collect();
            if uids.len() < min_clusters.max(1) {
                return None;
            }
            eps.sort_by(|a, b| (a.first_seen_us, &a.cluster.uid, &a.id).cmp(&(b.first_seen_us, &b.cluster.uid, &b.id)));
            let first = eps[0];
            let first_seen_us = first.first_seen_us;
            let names: BTreeSet<&str> = eps.iter().map(|p| p.cluster.name.as_str()).collect();
            let mut previous: Vec<i64> = eps
                .iter()
                .flat_map(|p| p.previous_episodes.iter().copied())
                .filter(|&s| s < first_seen_us)
                .collect();
            previous.sort_unstable();
            previous.dedup();
            Some(Pattern {
                id: stable_id(&["pattern", "fleet", "", key, &first_seen_us.to_string()]),
                version: eps.iter().map(|p| p.version).sum(),
                scope: PatternScope::Fleet,
                cluster: ClusterId::default(),
                clusters: names.into_iter().map(str::to_string).collect(),
                key: key.to_string(),
                reason: first.reason.clone(),
                kind: first.kind.clone(),
                namespace: first.namespace.clone(),
                template: first.template.clone(),
                status: if eps.iter().any(|p| p.status == Status::Open) { Status::Open } else { Status::Resolved },
                count: eps.iter().map(|p| p.count).sum(),
                first_seen_us,
                last_seen_us: eps.iter().map(|p| p.last_seen_us).max().unwrap_or(first_seen_us),
                per_minute: eps.iter().map(|p| p.per_minute).sum(),
                samples: eps.iter().flat_map(|p| p.samples.iter().cloned()).take(3).collect(),
                previous_episodes: previous,
                anomaly_score: eps.iter().map(|p| p.anomaly_score).fold(0.0, f64::max),
                ..Default::default()
            })
        })
        .collect();
    fleet.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    fleet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn p(cluster: &str, key: &str, id: &str, version: i64, count: i64, first: i64, last: i64, status: Status) -> Pattern {
        Pattern {
            id: id.into(),
            version,
            cluster: ClusterId { name: cluster.into(), uid: format!("uid-{cluster}").into() },
            clusters: vec![cluster.into()],
            key: key.into(),
            reason: key.split('|').next().unwrap().into(),
            status,
            count,
            first_seen_us: first,
            last_seen_us: last,
            per_minute: 1.0,
            samples: vec![format!("{id}-s1"), format!("{id}-s2")],
            ..Default::default()
        }
    }

    #[test]
    fn a_key_in_enough_clusters_is_one_fleet_pattern() {
        use Status::*;
        let input = vec![
            p("eu", "BackOff|Pod|shop|t", "a1", 1, 3, 100, 200, Open),
            p("eu", "BackOff|Pod|shop|t", "a1", 4, 30, 100, 900, Resolved), // later version wins
            p("us", "BackOff|Pod|shop|t", "b1", 2, 10, 50, 400, Open),
            p("us", "BackOff|Pod|shop|t", "b2", 1, 5, 1000, 1100, Resolved), // same cluster, 2nd episode
            p("eu", "Failed|Pod|shop|x", "c1", 1, 99, 10, 20, Open),          // one cluster only
            p("ap", "Failed|Pod|db|x", "d1", 1, 7, 10, 20, Open),             // other namespace: other key
        ];
        let fleet = merge(&input, 2);
        assert_eq!(fleet.len(), 1, "{fleet:#?}");
        let f = &fleet[0];
        assert_eq!((f.scope, f.key.as_str(), &f.clusters), (PatternScope::Fleet, "BackOff|Pod|shop|t", &vec!["eu".to_string(), "us".to_string()]));
        assert_eq!((f.count, f.first_seen_us, f.last_seen_us, f.version), (45, 50, 1100, 7));
        assert_eq!(f.status, Open, "b1 is still open");
        assert_eq!(f.samples, vec!["b1-s1", "b1-s2", "a1-s1"], "first by episode start");
        assert_eq!(f.cluster, ClusterId::default());
        assert_eq!(f.id, stable_id(&["pattern", "fleet", "", "BackOff|Pod|shop|t", "50"]));
        assert_eq!(merge(&input, 3), vec![], "only two clusters");
        // Order of the input does not matter.
        let mut rev = input.clone();
        rev.reverse();
        assert_eq!(merge(&rev, 2), fleet);
    }
}
