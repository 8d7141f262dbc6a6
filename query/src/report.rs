//! What `kevents report` reads from ClickHouse: every event of a window (or of
//! one incident) as its latest version with its total occurrences, the
//! incidents with their root cause event, and the pattern episodes with the
//! starts of their earlier episodes.
//!
//! `events` holds one row per event *version* (every repeat is a row, its
//! `occurrences` the count delta), so an event is grouped by
//! `(cluster, event_uid)`: occurrences summed, first/last seen widened, and
//! the other columns taken from the newest version (`argMax(…, observed_at)`,
//! e.g. the incident it belongs to after a late re-root). Incidents and
//! patterns come from their `*_latest` views (one row per id, 0003).
//! Values are bound parameters (see [`crate::sql`]).

use crate::filter::Filter;
use crate::sql::{check_limit, Conditions, Params, Source, Statement};
use crate::{QueryError, Store};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// Which data a report covers. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportFilter {
    /// Events that happened (a version's event time) at or after / before, Unix ms;
    /// incidents and pattern episodes active (last seen) at or after `from_ms`.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    /// Only this incident and its member events.
    pub incident: Option<String>,
    /// At most this many events (the earliest of the window are kept).
    pub limit: u64,
}

/// One event: its newest version, with totals over all its versions.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct ReportEvent {
    pub cluster: String,
    pub event_uid: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub event_type: String,
    pub category: String,
    pub severity: String,
    pub component: String,
    pub message: String,
    pub occurrences: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub correlation_id: String,
    /// The typed metadata columns and the `metadata` map, as key/value arrays.
    pub meta_keys: Vec<String>,
    pub meta_values: Vec<String>,
}

/// One incident with what a timeline needs (its root cause event's uid).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct ReportIncident {
    pub id: String,
    pub cluster: String,
    pub status: String,
    pub severity: String,
    pub rule: String,
    pub root_event_uid: String,
    pub summary: String,
    pub event_count: i64,
    pub occurrences: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// One cluster pattern episode with the starts of its key's earlier episodes.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ReportPattern {
    pub cluster: String,
    pub reason: String,
    pub kind: String,
    pub namespace: String,
    pub template: String,
    pub status: String,
    pub count: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub per_minute: f64,
    pub anomaly_score: f64,
    pub previous_ms: Vec<i64>,
}

/// Metadata columns of `events` (0001) shown with an event, besides the map.
const META_COLUMNS: [&str; 7] = ["node", "owner_kind", "owner_name", "container", "image", "volume", "exit_code"];

/// Compile the events question.
pub fn build_events(f: &ReportFilter) -> Result<Statement, QueryError> {
    check_limit(f.limit)?;
    let mut params = Params::default();
    let filter = Filter {
        time: crate::TimeRange { from_ms: f.from_ms, to_ms: f.to_ms },
        clusters: f.clusters.clone(),
        namespaces: f.namespaces.clone(),
        ..Default::default()
    };
    let mut cond = filter.conditions("event_time", true, &mut params);
    if let Some(id) = &f.incident {
        // Every version of the incident's members, not only those that already named it.
        let p = params.add("incident", crate::Param::Str(id.clone()));
        cond = format!("{cond} AND (cluster, event_uid) IN (SELECT cluster, event_uid FROM events WHERE {})", crate::sql::in_incident(&p));
    }
    let last = |col: &str| format!("argMax(CAST({col} AS String), observed_at)");
    let typed_keys = META_COLUMNS.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ");
    let typed_values = META_COLUMNS.iter().map(|c| format!("ifNull(toString({c}), '')")).collect::<Vec<_>>().join(", ");
    let limit = params.limit(f.limit);
    let sql = format!(
        "SELECT cluster, event_uid, namespace, kind, name, reason, event_type, category, severity, component, message, occurrences, first_ms, last_ms, correlation_id,\n\
       arrayConcat(arrayFilter((k, v) -> v != '', [{typed_keys}], typed), mapKeys(meta)) AS meta_keys,\n\
       arrayConcat(arrayFilter(v -> v != '', typed), mapValues(meta)) AS meta_values\n\
FROM (\n\
  SELECT CAST(cluster AS String) AS cluster, event_uid, {ns} AS namespace, {kind} AS kind, {name} AS name, {reason} AS reason,\n\
         {typ} AS event_type, {cat} AS category, {sev} AS severity, {comp} AS component, {msg} AS message,\n\
         toInt64(sum(occurrences)) AS occurrences, toUnixTimestamp64Milli(min(first_seen)) AS first_ms,\n\
         toUnixTimestamp64Milli(max(greatest(last_seen, event_time))) AS last_ms, {corr} AS correlation_id,\n\
         argMax([{typed_values}], observed_at) AS typed,\n\
         argMax(CAST(metadata AS Map(String, String)), observed_at) AS meta\n\
  FROM {table}\n  WHERE {cond}\n  GROUP BY cluster, event_uid\n)\nORDER BY first_ms ASC, event_uid ASC\nLIMIT {limit}",
        ns = last("namespace"),
        kind = last("kind"),
        name = last("name"),
        reason = last("reason"),
        typ = last("event_type"),
        cat = last("category"),
        sev = last("severity"),
        comp = last("component"),
        msg = last("message"),
        corr = last("correlation_id"),
        table = Source::Events.table(),
    );
    Ok(Statement { sql, params, source: Source::Events, why: "each event's versions, folded into one".into() })
}

/// Compile the incidents question.
pub fn build_incidents(f: &ReportFilter) -> Result<Statement, QueryError> {
    let mut params = Params::default();
    let mut c = Conditions::new(&mut params);
    match &f.incident {
        Some(id) => c.one_of("ids", "id", std::slice::from_ref(id)),
        None => {
            c.one_of("clusters", "cluster", &f.clusters);
            c.one_of("namespaces", "root_namespace", &f.namespaces);
            c.at_or_after("from_ms", "last_seen", f.from_ms);
            c.before("to_ms", "first_seen", f.to_ms);
        }
    }
    let cond = c.sql();
    let sql = format!(
        "SELECT id, CAST(cluster AS String) AS cluster, CAST(status AS String) AS status, CAST(severity AS String) AS severity,\n\
       CAST(rule AS String) AS rule, root_event_uid, summary, event_count, occurrences,\n\
       toUnixTimestamp64Milli(first_seen) AS first_ms, toUnixTimestamp64Milli(last_seen) AS last_ms\n\
FROM {table}\nWHERE {cond}\nORDER BY first_seen ASC, id ASC",
        table = Source::IncidentsLatest.table()
    );
    Ok(Statement { sql, params, source: Source::IncidentsLatest, why: "one row per incident, its latest version".into() })
}

/// Compile the patterns question (none for a single incident's report).
pub fn build_patterns(f: &ReportFilter) -> Result<Statement, QueryError> {
    let mut params = Params::default();
    let mut c = Conditions::new(&mut params);
    c.push("scope = 'cluster'");
    c.one_of("clusters", "cluster", &f.clusters);
    c.one_of("namespaces", "namespace", &f.namespaces);
    c.at_or_after("from_ms", "last_seen", f.from_ms);
    c.before("to_ms", "first_seen", f.to_ms);
    let cond = c.sql();
    let sql = format!(
        "SELECT CAST(cluster AS String) AS cluster, CAST(reason AS String) AS reason, CAST(kind AS String) AS kind,\n\
       CAST(namespace AS String) AS namespace, template, CAST(status AS String) AS status, count,\n\
       toUnixTimestamp64Milli(first_seen) AS first_ms, toUnixTimestamp64Milli(last_seen) AS last_ms, per_minute, anomaly_score,\n\
       arrayMap(t -> toUnixTimestamp64Milli(t), previous_episodes) AS previous_ms\n\
FROM {table}\nWHERE {cond}\nORDER BY count DESC, id ASC",
        table = Source::PatternsLatest.table()
    );
    Ok(Statement { sql, params, source: Source::PatternsLatest, why: "the latest version of each cluster pattern episode".into() })
}

impl Store {
    /// The report's events: one row per event, earliest first.
    pub async fn report_events(&self, f: &ReportFilter) -> Result<Vec<ReportEvent>, QueryError> {
        Ok(build_events(f)?.to_query(&self.client).fetch_all().await?)
    }

    /// The report's incidents (one, with `f.incident`).
    pub async fn report_incidents(&self, f: &ReportFilter) -> Result<Vec<ReportIncident>, QueryError> {
        Ok(build_incidents(f)?.to_query(&self.client).fetch_all().await?)
    }

    /// The report's pattern episodes.
    pub async fn report_patterns(&self, f: &ReportFilter) -> Result<Vec<ReportPattern>, QueryError> {
        Ok(build_patterns(f)?.to_query(&self.client).fetch_all().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Param;

    #[test]
    fn one_incident_takes_every_version_of_its_members() {
        let f = ReportFilter { incident: Some("x' OR 1=1".into()), limit: 10, ..Default::default() };
        let st = build_events(&f).unwrap();
        assert!(st.sql.contains("IN (SELECT cluster, event_uid FROM events WHERE (correlation_id = {incident:String} OR"), "{}", st.sql);
        assert!(!st.sql.contains("OR 1=1"));
        assert_eq!(st.params.get("incident"), Some(&Param::Str("x' OR 1=1".into())));
        let st = build_incidents(&f).unwrap();
        assert!(st.sql.contains("FROM incidents_latest") && st.sql.contains("has({ids:Array(String)}, id)"), "{}", st.sql);
        assert!(build_events(&ReportFilter::default()).is_err(), "a limit is required");
    }
}
