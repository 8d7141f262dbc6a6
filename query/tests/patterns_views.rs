//! Fleet patterns and recurrence against the real ClickHouse: generated pattern
//! episodes (several versions each, four clusters, thirty days, keys with quotes,
//! `|` and `<*>`) are loaded through `PatternRow` like the sink loads them, and
//! `Store::fleet_patterns`, `Store::pattern_episodes` and the `fleet_patterns` view
//! (migration 0004) must equal the same questions answered in plain Rust over the
//! generated data.


use schemas::clickhouse::RenderOptions;
use schemas::records::{Pattern, PatternScope, SourcePos, Status};
use schemas::ClusterId;
use kevents_query::patterns::{EpisodeQuery, EpisodeRecord, FleetFilter, FleetPatternRecord};
use kevents_query::Store;
use sink::rows::PatternRow;
use std::collections::{BTreeMap, BTreeSet};
use testkit::services::{Services, TestDb};

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// A small deterministic generator (same data every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const CLUSTERS: [&str; 4] = ["prod-eu", "prod-us", "staging", "dev"];

/// (reason, kind, namespace, template)
const KEYS: [(&str, &str, &str, &str); 6] = [
    ("BackOff", "Pod", "shop", "Back-off restarting failed container <*> in pod <*>(<uid>)"),
    ("FailedMount", "Pod", "o'brien", "MountVolume.SetUp failed for volume \"<*>\" : secret \"<*>\" not found"),
    ("FailedScheduling", "Pod", "batch", "<num>/<num> nodes are available: <num> Insufficient cpu."),
    ("OOMKilling", "Node", "", "Memory cgroup out of memory: Killed process <num> (<*>) a|b"),
    ("Unhealthy", "Pod", "shop", "Readiness probe failed: Get \"<*>\": dial tcp <ip>: connect: connection refused"),
    ("Evicted", "Pod", "shop", "The node was low on resource: memory."),
];

fn key_of(k: &(&str, &str, &str, &str)) -> String {
    [k.0, k.1, k.2, k.3].join("|")
}

/// Every stored version of every episode: the last version of an id is its truth.
fn generate(base: i64) -> Vec<Pattern> {
    let mut r = Lcg(7);
    let mut out = Vec::new();
    for (ci, cluster) in CLUSTERS.iter().enumerate() {
        for (ki, k) in KEYS.iter().enumerate() {
            // Key 5 only ever in one cluster; the others in 1–4 episodes where present.
            if (ki == 5 && ci > 0) || r.next(5) == 0 {
                continue;
            }
            let mut start = base + r.next(3 * DAY as u64) as i64;
            for ep in 0..1 + r.next(4) {
                let duration = (5 + r.next(120) as i64) * MINUTE + r.next(1000) as i64;
                let key = key_of(k);
                let id = schemas::ids::stable_id(&["pattern", "cluster", cluster, &key, &start.to_string()]);
                let versions = 1 + r.next(3) as i64;
                let last_open = ep == 0 && r.next(3) == 0;
                for v in 1..=versions {
                    let final_version = v == versions;
                    out.push(Pattern {
                        source: SourcePos { partition: -1, offset: out.len() as i64, seq: 0 },
                        id: id.clone(),
                        version: v,
                        scope: PatternScope::Cluster,
                        cluster: ClusterId { name: cluster.to_string().into(), uid: format!("uid-{cluster}").into() },
                        clusters: vec![cluster.to_string()],
                        key: key.clone(),
                        reason: k.0.into(),
                        kind: k.1.into(),
                        namespace: k.2.into(),
                        template: k.3.into(),
                        status: if final_version && !last_open { Status::Resolved } else { Status::Open },
                        count: 3 * v + r.next(50) as i64,
                        first_seen_us: start * 1000,
                        last_seen_us: (start + duration * v / versions) * 1000,
                        per_minute: (r.next(400) as f64) / 16.0,
                        samples: vec![format!("ev-{id}-1")],
                        previous_episodes: vec![],
                        anomaly_score: if r.next(4) == 0 { 4.5 + r.next(10) as f64 / 8.0 } else { 0.0 },
                    });
                }
                start += (1 + r.next(9) as i64) * DAY + r.next(DAY as u64) as i64;
            }
        }
    }
    // A fleet-scope row (e.g. written by a tool): never counted again.
    let mut fleet = out[0].clone();
    fleet.scope = PatternScope::Fleet;
    fleet.id = "fleet-row".into();
    fleet.cluster = ClusterId::default();
    fleet.count = 1_000_000;
    out.push(fleet);
    out
}

/// The latest version of each cluster-scope episode.
fn latest(all: &[Pattern]) -> Vec<Pattern> {
    let mut m: BTreeMap<&str, &Pattern> = BTreeMap::new();
    for p in all.iter().filter(|p| p.scope == PatternScope::Cluster) {
        let e = m.entry(&p.id).or_insert(p);
        if p.version > e.version {
            *e = p;
        }
    }
    m.into_values().cloned().collect()
}

fn ms(us: i64) -> i64 {
    us / 1000
}

fn model_fleet(all: &[Pattern], f: &FleetFilter) -> Vec<FleetPatternRecord> {
    let inl = |list: &Vec<String>, v: &str| list.is_empty() || list.iter().any(|x| x == v);
    let mut groups: BTreeMap<String, Vec<Pattern>> = BTreeMap::new();
    for p in latest(all).into_iter().filter(|p| {
        inl(&f.namespaces, &p.namespace)
            && inl(&f.reasons, &p.reason)
            && f.since_ms.is_none_or(|s| ms(p.last_seen_us) >= s)
            && f.until_ms.is_none_or(|u| ms(p.first_seen_us) < u)
    }) {
        groups.entry(p.key.clone()).or_default().push(p);
    }
    let mut rows: Vec<FleetPatternRecord> = groups
        .into_iter()
        .filter_map(|(key, eps)| {
            let uids: BTreeSet<&str> = eps.iter().map(|p| p.cluster.uid.as_str()).collect();
            if (uids.len() as u64) < f.min_clusters {
                return None;
            }
            let open: BTreeSet<&str> =
                eps.iter().filter(|p| p.status == Status::Open).map(|p| p.cluster.uid.as_str()).collect();
            let names: BTreeSet<String> = eps.iter().map(|p| p.cluster.name.to_string()).collect();
            Some(FleetPatternRecord {
                key,
                reason: eps[0].reason.clone(),
                kind: eps[0].kind.clone(),
                namespace: eps[0].namespace.clone(),
                template: eps[0].template.clone(),
                cluster_count: uids.len() as u64,
                clusters: names.into_iter().collect(),
                open_clusters: open.len() as u64,
                episodes: eps.len() as u64,
                count: eps.iter().map(|p| p.count).sum(),
                first_seen_ms: eps.iter().map(|p| ms(p.first_seen_us)).min().unwrap(),
                last_seen_ms: eps.iter().map(|p| ms(p.last_seen_us)).max().unwrap(),
                max_anomaly_score: eps.iter().map(|p| p.anomaly_score).fold(0.0, f64::max),
            })
        })
        .collect();
    rows.sort_by(|a, b| (b.cluster_count, b.count, &a.key).cmp(&(a.cluster_count, a.count, &b.key)));
    rows.truncate(f.limit as usize);
    rows
}

fn model_episodes(all: &[Pattern], q: &EpisodeQuery) -> Vec<EpisodeRecord> {
    let mut per: BTreeMap<String, Vec<Pattern>> = BTreeMap::new();
    for p in latest(all).into_iter().filter(|p| p.key == q.key) {
        per.entry(p.cluster.uid.to_string()).or_default().push(p);
    }
    let mut rows = Vec::new();
    for eps in per.values_mut() {
        eps.sort_by(|a, b| (a.first_seen_us, &a.id).cmp(&(b.first_seen_us, &b.id)));
        for (i, p) in eps.iter().enumerate() {
            rows.push(EpisodeRecord {
                cluster: p.cluster.name.to_string(),
                key: p.key.clone(),
                id: p.id.clone(),
                status: if p.status == Status::Open { "open" } else { "resolved" }.into(),
                count: p.count,
                first_seen_ms: ms(p.first_seen_us),
                last_seen_ms: ms(p.last_seen_us),
                per_minute: p.per_minute,
                anomaly_score: p.anomaly_score,
                episode: i as u64 + 1,
                episodes: eps.len() as u64,
                previous_first_seen_ms: if i == 0 { 0 } else { ms(eps[i - 1].first_seen_us) },
            });
        }
    }
    rows.retain(|r| {
        (q.clusters.is_empty() || q.clusters.contains(&r.cluster)) && q.since_ms.is_none_or(|s| r.last_seen_ms >= s)
    });
    rows.sort_by(|a, b| (a.first_seen_ms, &a.cluster, &a.id).cmp(&(b.first_seen_ms, &b.cluster, &b.id)));
    rows.truncate(q.limit as usize);
    rows
}

async fn load(prefix: &str) -> (Store, TestDb, Vec<Pattern>, i64) {
    let db = Services::get().fresh_database(prefix).await;
    let server = clickhouse::Client::default().with_url(Services::get().clickhouse_url());
    sink::migrate::apply(&server, &RenderOptions::single(&db.name)).await.unwrap();
    let base = (kevents_query::now_ms() / DAY - 30) * DAY;
    let all = generate(base);
    // Versions arrive in any order; storage keeps the highest.
    let mut shuffled = all.clone();
    shuffled.reverse();
    let mut ins = db.client.insert::<PatternRow>("patterns").await.unwrap();
    for p in &shuffled {
        ins.write(&PatternRow::new(p.clone(), 0)).await.unwrap();
    }
    ins.end().await.unwrap();
    let n: u64 = db.client.query("SELECT count() FROM patterns_latest").fetch_one().await.unwrap();
    assert_eq!(n as usize, latest(&all).len() + 1, "one row per episode (and the fleet row)");
    (Store::new(server, &db.name), db, all, base)
}

#[tokio::test]
async fn fleet_patterns_equal_the_model() {
    let (store, db, all, base) = load("patterns_fleet").await;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases = vec![
        FleetFilter::default(),
        FleetFilter { min_clusters: 3, ..Default::default() },
        FleetFilter { min_clusters: 4, ..Default::default() },
        FleetFilter { since_ms: Some(base + 12 * DAY), ..Default::default() },
        FleetFilter { since_ms: Some(base + 5 * DAY), until_ms: Some(base + 15 * DAY), ..Default::default() },
        FleetFilter { namespaces: s(&["o'brien", ""]), ..Default::default() },
        FleetFilter { reasons: s(&["BackOff", "Unhealthy"]), limit: 1, ..Default::default() },
    ];
    let mut seen_keys = BTreeSet::new();
    for f in &cases {
        let want = model_fleet(&all, f);
        let got = store.fleet_patterns(f).await.unwrap();
        assert_eq!(got, want, "{f:?}");
        seen_keys.extend(want.iter().map(|r| r.key.clone()));
    }
    assert!(seen_keys.len() >= 4, "the cases select several keys: {seen_keys:?}");
    assert!(!seen_keys.contains(&key_of(&KEYS[5])), "a key in one cluster is no fleet pattern");
    // A time range applies before grouping: fewer clusters, not the all-time ones.
    let recent = FleetFilter { since_ms: Some(base + 12 * DAY), ..Default::default() };
    assert_ne!(model_fleet(&all, &recent), model_fleet(&all, &FleetFilter { limit: 1000, ..Default::default() }));

    // The all-time view answers like the model without a filter.
    #[derive(Debug, PartialEq, clickhouse::Row, serde::Deserialize)]
    struct ViewRow {
        key: String,
        cluster_count: u64,
        clusters: Vec<String>,
        open_clusters: u64,
        episodes: u64,
        count: i64,
        first_seen_ms: i64,
        last_seen_ms: i64,
    }
    let view: Vec<ViewRow> = db
        .client
        .query(
            "SELECT key, cluster_count, CAST(clusters AS Array(String)) AS clusters, open_clusters, episodes, count, \
             toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms \
             FROM fleet_patterns ORDER BY key",
        )
        .fetch_all()
        .await
        .unwrap();
    let mut want = model_fleet(&all, &FleetFilter { limit: 1000, ..Default::default() });
    want.sort_by(|a, b| a.key.cmp(&b.key));
    let want: Vec<ViewRow> = want
        .into_iter()
        .map(|r| ViewRow {
            key: r.key,
            cluster_count: r.cluster_count,
            clusters: r.clusters,
            open_clusters: r.open_clusters,
            episodes: r.episodes,
            count: r.count,
            first_seen_ms: r.first_seen_ms,
            last_seen_ms: r.last_seen_ms,
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(view, want);
}

#[tokio::test]
async fn episodes_of_a_key_are_numbered_in_order_per_cluster() {
    let (store, _db, all, base) = load("patterns_episodes").await;
    let (mut recurring, mut renumbered) = (0, 0);
    for k in &KEYS {
        let key = key_of(k);
        let cases = vec![
            EpisodeQuery { key: key.clone(), clusters: vec![], since_ms: None, limit: 1000 },
            EpisodeQuery { key: key.clone(), clusters: vec!["prod-eu".into(), "dev".into()], since_ms: None, limit: 1000 },
            // Later episodes only: their numbers still count the earlier ones.
            EpisodeQuery { key: key.clone(), clusters: vec![], since_ms: Some(base + 10 * DAY), limit: 1000 },
            EpisodeQuery { key: key.clone(), clusters: vec![], since_ms: None, limit: 2 },
        ];
        for q in &cases {
            let want = model_episodes(&all, q);
            let got = store.pattern_episodes(q).await.unwrap();
            assert_eq!(got, want, "{q:?}");
        }
        let every = model_episodes(&all, &cases[0]);
        recurring += every.iter().filter(|r| r.episode > 1).count();
        // Rows of the `since` case whose earlier episodes were filtered out: the
        // numbering must not have been computed after the filter.
        let mut position: BTreeMap<String, u64> = BTreeMap::new();
        for r in model_episodes(&all, &cases[2]) {
            let i = position.entry(r.cluster.clone()).or_default();
            *i += 1;
            renumbered += usize::from(r.episode > *i);
        }
    }
    assert!(recurring >= 5, "the data has recurrences to number: {recurring}");
    assert!(renumbered >= 1, "the since case filters out earlier episodes");
    let none = EpisodeQuery { key: "Nope|Pod|x|y".into(), clusters: vec![], since_ms: None, limit: 10 };
    assert!(store.pattern_episodes(&none).await.unwrap().is_empty());
}
