//! Incidents (`kevents incidents`): the latest version of each incident, from the
//! `incidents_latest` view (never the `incidents` table, which may still hold several
//! versions of one id until a merge: 0003_state.sql), most recently active first.

use crate::output::{Cell, Table};
use crate::sql::{check_limit, Conditions, Params, Source, Statement};
use crate::QueryError;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// Which incidents. Empty lists mean "any"; `namespaces` match the root cause's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFilter {
    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    /// `open` / `resolved`.
    pub statuses: Vec<String>,
    pub severities: Vec<String>,
    /// Only incidents active (last seen) at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    pub limit: u64,
}

impl Default for IncidentFilter {
    fn default() -> Self {
        IncidentFilter {
            clusters: vec![],
            namespaces: vec![],
            statuses: vec![],
            severities: vec![],
            since_ms: None,
            limit: crate::events::DEFAULT_LIMIT,
        }
    }
}

/// One incident: its root cause, status, counts and span.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub id: String,
    pub version: i64,
    pub cluster: String,
    pub status: String,
    pub severity: String,
    pub rule: String,
    pub root_reason: String,
    pub root_category: String,
    pub root_kind: String,
    pub root_namespace: String,
    pub root_name: String,
    pub event_count: i64,
    pub occurrences: i64,
    pub affected: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub summary: String,
}

/// The SELECT list, in [`IncidentRecord`]'s field order.
const COLUMNS: &str = "id, version, CAST(cluster AS String) AS cluster, CAST(status AS String) AS status, \
CAST(severity AS String) AS severity, CAST(rule AS String) AS rule, CAST(root_reason AS String) AS root_reason, \
CAST(root_category AS String) AS root_category, CAST(root_kind AS String) AS root_kind, \
CAST(root_namespace AS String) AS root_namespace, root_name, event_count, occurrences, \
toInt64(length(affected_objects)) AS affected, toUnixTimestamp64Milli(first_seen) AS first_seen_ms, \
toUnixTimestamp64Milli(last_seen) AS last_seen_ms, summary";

/// Compile `f` (what `--explain` prints).
pub fn build(f: &IncidentFilter) -> Result<Statement, QueryError> {
    check_limit(f.limit)?;
    let mut params = Params::default();
    let mut c = Conditions::new(&mut params);
    c.one_of("clusters", "cluster", &f.clusters);
    c.one_of("namespaces", "root_namespace", &f.namespaces);
    c.one_of("statuses", "status", &f.statuses);
    c.one_of("severities", "severity", &f.severities);
    c.at_or_after("since_ms", "last_seen", f.since_ms);
    let cond = c.sql();
    let limit = params.limit(f.limit);
    let sql = format!(
        "SELECT {COLUMNS}\nFROM {table}\nWHERE {cond}\nORDER BY last_seen DESC, id ASC\nLIMIT {limit}",
        table = Source::IncidentsLatest.table()
    );
    Ok(Statement {
        sql,
        params,
        source: Source::IncidentsLatest,
        why: "one row per incident, its latest version".into(),
    })
}

/// The rows as a [`Table`].
pub fn table(rows: &[IncidentRecord]) -> Table {
    let mut t = Table::new(&[
        "last_seen",
        "first_seen",
        "cluster",
        "status",
        "severity",
        "root_reason",
        "root_category",
        "root_object",
        "events",
        "occurrences",
        "affected",
        "summary",
        "id",
    ]);
    for r in rows {
        let object = if r.root_namespace.is_empty() {
            format!("{}/{}", r.root_kind, r.root_name)
        } else {
            format!("{}/{}/{}", r.root_kind, r.root_namespace, r.root_name)
        };
        t.push(vec![
            Cell::Time(r.last_seen_ms),
            Cell::Time(r.first_seen_ms),
            r.cluster.clone().into(),
            r.status.clone().into(),
            r.severity.clone().into(),
            r.root_reason.clone().into(),
            r.root_category.clone().into(),
            object.into(),
            Cell::Int(r.event_count),
            Cell::Int(r.occurrences),
            Cell::Int(r.affected),
            r.summary.clone().into(),
            r.id.clone().into(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Param;

    #[test]
    fn reads_the_latest_view_with_bound_filters() {
        let f = IncidentFilter { statuses: vec!["open".into()], since_ms: Some(5), ..Default::default() };
        let st = build(&f).unwrap();
        assert!(st.sql.contains("FROM incidents_latest"), "{}", st.sql);
        assert!(st.sql.contains("has({statuses:Array(String)}, status)"));
        assert_eq!(st.params.get("since_ms"), Some(&Param::Int(5)));
        assert_eq!(st.params.get("limit"), Some(&Param::Int(100)));
    }
}
