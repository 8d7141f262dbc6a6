//! Patterns: the episodes of each cluster, biggest first ([`Store::top_patterns`]);
//! across the fleet and across days: the same similarity key as a
//! pattern in several clusters ([`Store::fleet_patterns`]), and every episode of a
//! key, per cluster, in order ([`Store::pattern_episodes`]: "also on Nov 3 and
//! Nov 10").
//!
//! Both read the latest version of each episode (`patterns_latest`, 0003) through
//! the shapes of migration 0004: episodes come from the `pattern_episodes` view;
//! fleet patterns are grouped here exactly like the `fleet_patterns` view, but
//! after the time range is applied, so "in the last day" counts only that day's
//! episodes (the view itself is over all time, for dashboards and ad-hoc SQL).
//! Values are bound parameters (see [`crate::sql`]); keys contain `|`, `<*>` and
//! quotes and are only ever values.

use crate::output::{Cell, Table};
use crate::sql::{check_limit, Conditions, Param, Params, Source, Statement};
use crate::{QueryError, Store};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// Which fleet patterns. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetFilter {
    /// Only episodes active (last seen) at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// Only episodes that started before this time, Unix ms.
    pub until_ms: Option<i64>,
    /// Clusters a key must be a pattern in. At least 2.
    pub min_clusters: u64,
    pub namespaces: Vec<String>,
    pub reasons: Vec<String>,
    pub limit: u64,
}

impl Default for FleetFilter {
    fn default() -> Self {
        FleetFilter {
            since_ms: None,
            until_ms: None,
            min_clusters: 2,
            namespaces: vec![],
            reasons: vec![],
            limit: crate::events::DEFAULT_LIMIT,
        }
    }
}

/// One similarity key seen as a pattern in several clusters.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct FleetPatternRecord {
    pub key: String,
    pub reason: String,
    pub kind: String,
    pub namespace: String,
    pub template: String,
    pub cluster_count: u64,
    /// Cluster names, sorted.
    pub clusters: Vec<String>,
    /// Clusters where an episode of the key is open.
    pub open_clusters: u64,
    pub episodes: u64,
    pub count: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub max_anomaly_score: f64,
}

/// Which cluster patterns (episodes), biggest first. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopFilter {
    /// Only episodes active (last seen) at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    pub reasons: Vec<String>,
    /// `open`, `resolved`.
    pub statuses: Vec<String>,
    /// Only anomalies (`anomaly_score > 0`).
    pub anomalies_only: bool,
    pub limit: u64,
}

/// One pattern episode of one cluster (its latest version).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct PatternRecord {
    pub cluster: String,
    pub key: String,
    pub id: String,
    pub status: String,
    pub reason: String,
    pub kind: String,
    pub namespace: String,
    pub template: String,
    pub count: i64,
    pub per_minute: f64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub anomaly_score: f64,
    pub samples: Vec<String>,
    pub previous_episodes: u64,
}

/// The episodes of one key. Empty `clusters`: every cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeQuery {
    /// The similarity key, `reason|kind|namespace|template`.
    pub key: String,
    pub clusters: Vec<String>,
    /// Only episodes active (last seen) at or after this time, Unix ms; numbering
    /// still counts the earlier ones.
    pub since_ms: Option<i64>,
    pub limit: u64,
}

/// One episode of a key in a cluster.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EpisodeRecord {
    pub cluster: String,
    pub key: String,
    pub id: String,
    pub status: String,
    pub count: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub per_minute: f64,
    pub anomaly_score: f64,
    /// 1-based number among the key's episodes in this cluster, by start.
    pub episode: u64,
    /// Episodes of the key in this cluster.
    pub episodes: u64,
    /// Start of the episode before (0 for the first).
    pub previous_first_seen_ms: i64,
}

impl Store {
    /// Cluster pattern episodes, the biggest first.
    pub async fn top_patterns(&self, f: &TopFilter) -> Result<Vec<PatternRecord>, QueryError> {
        Ok(build_top(f)?.to_query(&self.client).fetch_all().await?)
    }

    /// Keys that are patterns in at least `f.min_clusters` clusters, most
    /// widespread first.
    pub async fn fleet_patterns(&self, f: &FleetFilter) -> Result<Vec<FleetPatternRecord>, QueryError> {
        Ok(build_fleet(f)?.to_query(&self.client).fetch_all().await?)
    }

    /// Every episode of `q.key`, oldest first.
    pub async fn pattern_episodes(&self, q: &EpisodeQuery) -> Result<Vec<EpisodeRecord>, QueryError> {
        Ok(build_episodes(q)?.to_query(&self.client).fetch_all().await?)
    }
}

/// Compile a cluster-patterns question.
pub fn build_top(f: &TopFilter) -> Result<Statement, QueryError> {
    check_limit(f.limit)?;
    for s in &f.statuses {
        if s != "open" && s != "resolved" {
            return Err(QueryError::Invalid(format!("unknown status {s:?} (expected open or resolved)")));
        }
    }
    let mut params = Params::default();
    let mut c = Conditions::new(&mut params);
    c.push("scope = 'cluster'");
    c.one_of("clusters", "cluster", &f.clusters);
    c.one_of("namespaces", "namespace", &f.namespaces);
    c.one_of("reasons", "reason", &f.reasons);
    c.one_of("statuses", "status", &f.statuses);
    c.at_or_after("since_ms", "last_seen", f.since_ms);
    if f.anomalies_only {
        c.push("anomaly_score > 0");
    }
    let cond = c.sql();
    let limit = params.limit(f.limit);
    let sql = format!(
        "SELECT CAST(cluster AS String) AS cluster, key, id, CAST(status AS String) AS status, CAST(reason AS String) AS reason, CAST(kind AS String) AS kind, CAST(namespace AS String) AS namespace, template, count, per_minute, toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, anomaly_score, samples, toUInt64(length(previous_episodes)) AS previous_episodes\n\
FROM patterns_latest\nWHERE {cond}\nORDER BY count DESC, last_seen DESC, id ASC\nLIMIT {limit}"
    );
    Ok(Statement { sql, params, source: Source::PatternsLatest, why: "the latest version of each cluster pattern episode".into() })
}

/// Compile a fleet question.
pub fn build_fleet(f: &FleetFilter) -> Result<Statement, QueryError> {
    check_limit(f.limit)?;
    if f.min_clusters < 2 {
        return Err(QueryError::Invalid("min_clusters must be at least 2 (one cluster is not a fleet)".into()));
    }
    let mut params = Params::default();
    let mut c = Conditions::new(&mut params);
    c.push("scope = 'cluster'");
    c.one_of("namespaces", "namespace", &f.namespaces);
    c.one_of("reasons", "reason", &f.reasons);
    c.at_or_after("since_ms", "last_seen", f.since_ms);
    c.before("until_ms", "first_seen", f.until_ms);
    let cond = c.sql();
    let min = params.add("min_clusters", Param::Int(f.min_clusters.min(i64::MAX as u64) as i64));
    let limit = params.limit(f.limit);
    let sql = format!(
        "SELECT key, CAST(reason AS String) AS reason, CAST(kind AS String) AS kind, \
CAST(namespace AS String) AS namespace, template, toUInt64(uniqExact(cluster_uid)) AS cluster_count, \
arraySort(groupUniqArray(CAST(cluster AS String))) AS clusters, \
toUInt64(uniqExactIf(cluster_uid, status = 'open')) AS open_clusters, toUInt64(count()) AS episodes, \
sum(count) AS count, toUnixTimestamp64Milli(min(first_seen)) AS first_seen_ms, \
toUnixTimestamp64Milli(max(last_seen)) AS last_seen_ms, max(anomaly_score) AS max_anomaly_score\n\
FROM patterns_latest\nWHERE {cond}\nGROUP BY key, reason, kind, namespace, template\n\
HAVING cluster_count >= {min}\nORDER BY cluster_count DESC, count DESC, key ASC\nLIMIT {limit}"
    );
    Ok(Statement { sql, params, source: Source::PatternsLatest, why: "grouped like fleet_patterns, after the time range".into() })
}

/// Compile an episodes question.
pub fn build_episodes(q: &EpisodeQuery) -> Result<Statement, QueryError> {
    check_limit(q.limit)?;
    if q.key.is_empty() {
        return Err(QueryError::Invalid("a pattern key is required (reason|kind|namespace|template)".into()));
    }
    let mut params = Params::default();
    let key = params.add("key", Param::Str(q.key.clone()));
    let mut c = Conditions::new(&mut params);
    c.push(format!("key = {key}"));
    c.one_of("clusters", "cluster", &q.clusters);
    c.at_or_after("since_ms", "last_seen", q.since_ms);
    let cond = c.sql();
    let limit = params.limit(q.limit);
    let sql = format!(
        "SELECT CAST(cluster AS String) AS cluster, key, id, CAST(status AS String) AS status, count, \
toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, \
per_minute, anomaly_score, episode, episodes, toUnixTimestamp64Milli(previous_first_seen) AS previous_first_seen_ms\n\
FROM pattern_episodes\nWHERE {cond}\nORDER BY first_seen ASC, cluster ASC, id ASC\nLIMIT {limit}"
    );
    Ok(Statement { sql, params, source: Source::PatternEpisodes, why: "every episode of the key, numbered per cluster".into() })
}

/// Cluster patterns as a [`Table`].
pub fn top_table(rows: &[PatternRecord]) -> Table {
    let mut t = Table::new(&[
        "last_seen", "first_seen", "cluster", "status", "count", "per_minute", "reason", "kind", "namespace", "template",
        "anomaly", "earlier_episodes", "key",
    ]);
    for r in rows {
        t.push(vec![
            Cell::Time(r.last_seen_ms),
            Cell::Time(r.first_seen_ms),
            r.cluster.clone().into(),
            r.status.clone().into(),
            Cell::Int(r.count),
            format!("{:.2}", r.per_minute).into(),
            r.reason.clone().into(),
            r.kind.clone().into(),
            r.namespace.clone().into(),
            r.template.clone().into(),
            format!("{:.1}", r.anomaly_score).into(),
            Cell::Int(r.previous_episodes as i64),
            r.key.clone().into(),
        ]);
    }
    t
}

/// Fleet patterns as a [`Table`].
pub fn fleet_table(rows: &[FleetPatternRecord]) -> Table {
    let mut t = Table::new(&[
        "last_seen", "first_seen", "clusters", "open", "episodes", "count", "reason", "kind", "namespace",
        "template", "anomaly", "cluster_names",
    ]);
    for r in rows {
        t.push(vec![
            Cell::Time(r.last_seen_ms),
            Cell::Time(r.first_seen_ms),
            Cell::Int(r.cluster_count as i64),
            Cell::Int(r.open_clusters as i64),
            Cell::Int(r.episodes as i64),
            Cell::Int(r.count),
            r.reason.clone().into(),
            r.kind.clone().into(),
            r.namespace.clone().into(),
            r.template.clone().into(),
            format!("{:.1}", r.max_anomaly_score).into(),
            r.clusters.join(",").into(),
        ]);
    }
    t
}

/// Episodes as a [`Table`].
pub fn episodes_table(rows: &[EpisodeRecord]) -> Table {
    let mut t = Table::new(&[
        "first_seen", "last_seen", "cluster", "episode", "of", "status", "count", "per_minute", "anomaly",
        "previous", "id",
    ]);
    for r in rows {
        t.push(vec![
            Cell::Time(r.first_seen_ms),
            Cell::Time(r.last_seen_ms),
            r.cluster.clone().into(),
            Cell::Int(r.episode as i64),
            Cell::Int(r.episodes as i64),
            r.status.clone().into(),
            Cell::Int(r.count),
            format!("{:.2}", r.per_minute).into(),
            format!("{:.1}", r.anomaly_score).into(),
            if r.previous_first_seen_ms > 0 { Cell::Time(r.previous_first_seen_ms) } else { String::new().into() },
            r.id.clone().into(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_and_episode_questions_bind_every_value() {
        let f = FleetFilter { since_ms: Some(5), reasons: vec!["BackOff".into()], ..Default::default() };
        let st = build_fleet(&f).unwrap();
        assert!(st.sql.contains("FROM patterns_latest") && st.sql.contains("scope = 'cluster'"), "{}", st.sql);
        assert!(st.sql.contains("has({reasons:Array(String)}, reason)"));
        assert!(st.sql.contains("HAVING cluster_count >= {min_clusters:Int64}"));
        assert_eq!(st.params.get("since_ms"), Some(&Param::Int(5)));
        assert!(!st.sql.contains('?'), "the clickhouse crate would take ? for a bind");
        assert!(build_fleet(&FleetFilter { min_clusters: 1, ..Default::default() }).is_err());
        let key = "BackOff|Pod|o'brien|Back-off \"<*>\" x ?".to_string();
        let st = build_episodes(&EpisodeQuery { key: key.clone(), clusters: vec![], since_ms: None, limit: 10 }).unwrap();
        assert!(st.sql.contains("WHERE key = {key:String}") && !st.sql.contains("o'brien"), "{}", st.sql);
        assert_eq!(st.params.get("key"), Some(&Param::Str(key)));
        assert!(st.to_string().starts_with("-- table: pattern_episodes"));
        assert!(build_episodes(&EpisodeQuery { key: String::new(), clusters: vec![], since_ms: None, limit: 1 }).is_err());
        let st = build_top(&TopFilter { statuses: vec!["open".into()], clusters: vec!["a'b".into()], limit: 5, ..Default::default() }).unwrap();
        assert!(st.sql.contains("has({statuses:Array(String)}, status)") && !st.sql.contains("a'b"), "{}", st.sql);
        assert!(build_top(&TopFilter { statuses: vec!["closed".into()], limit: 5, ..Default::default() }).is_err());
    }
}
