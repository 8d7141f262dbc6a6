//! Single events (`kevents query`): the rows of `events` that match a [`Filter`],
//! newest first. Always the raw table: the rollups have no single events.
//!
//! Order: `event_time DESC, id DESC`, so equal times still come back in one fixed
//! order and a limit cuts the same rows every time.

use crate::filter::Filter;
use crate::output::{Cell, Table};
use crate::sql::{check_limit, Params, Source, Statement};
use crate::QueryError;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// `kevents query`'s default `--limit`.
pub const DEFAULT_LIMIT: u64 = 100;

/// A question about single events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub filter: Filter,
    /// At most this many rows (the newest).
    pub limit: u64,
}

/// One event version as the CLI shows it (a subset of `events`' columns).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct EventRecord {
    /// `event_time` (when it last happened) in Unix milliseconds.
    pub time_ms: i64,
    pub cluster: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub event_type: String,
    pub reason: String,
    pub category: String,
    pub severity: String,
    pub component: String,
    pub count: i64,
    pub occurrences: i64,
    pub correlation_id: String,
    pub message: String,
    pub id: String,
}

/// The SELECT list, in [`EventRecord`]'s field order (RowBinary is positional).
const COLUMNS: &str = "toUnixTimestamp64Milli(event_time) AS time_ms, CAST(cluster AS String) AS cluster, \
CAST(namespace AS String) AS namespace, CAST(kind AS String) AS kind, name, \
CAST(event_type AS String) AS event_type, CAST(reason AS String) AS reason, \
CAST(category AS String) AS category, CAST(severity AS String) AS severity, \
CAST(component AS String) AS component, count, occurrences, correlation_id, message, id";

/// Compile `q` (what `--explain` prints).
pub fn build(q: &EventQuery) -> Result<Statement, QueryError> {
    check_limit(q.limit)?;
    let mut params = Params::default();
    let cond = q.filter.conditions("event_time", true, &mut params);
    let limit = params.limit(q.limit);
    let sql = format!(
        "SELECT {COLUMNS}\nFROM {table}\nWHERE {cond}\nORDER BY event_time DESC, id DESC\nLIMIT {limit}",
        table = Source::Events.table()
    );
    Ok(Statement { sql, params, source: Source::Events, why: "single events exist only in the raw table".into() })
}

/// The rows as a [`Table`] for rendering.
pub fn table(rows: &[EventRecord]) -> Table {
    let mut t = Table::new(&[
        "time",
        "cluster",
        "namespace",
        "kind",
        "name",
        "type",
        "reason",
        "category",
        "severity",
        "component",
        "count",
        "occurrences",
        "correlation_id",
        "message",
        "id",
    ]);
    for r in rows {
        t.push(vec![
            Cell::Time(r.time_ms),
            r.cluster.clone().into(),
            r.namespace.clone().into(),
            r.kind.clone().into(),
            r.name.clone().into(),
            r.event_type.clone().into(),
            r.reason.clone().into(),
            r.category.clone().into(),
            r.severity.clone().into(),
            r.component.clone().into(),
            Cell::Int(r.count),
            Cell::Int(r.occurrences),
            r.correlation_id.clone().into(),
            r.message.clone().into(),
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
    fn newest_first_with_a_bound_limit() {
        let q = EventQuery { filter: Filter::default(), limit: 7 };
        let st = build(&q).unwrap();
        assert!(st.sql.ends_with("ORDER BY event_time DESC, id DESC\nLIMIT {limit:Int64}"), "{}", st.sql);
        assert_eq!(st.params.get("limit"), Some(&Param::Int(7)));
        assert!(!st.sql.contains('?'), "the clickhouse crate would take ? for a bind");
        assert!(build(&EventQuery { filter: Filter::default(), limit: 0 }).is_err());
    }
}
