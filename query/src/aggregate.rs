//! Aggregates (`kevents aggregate`): counts of events by any of cluster, namespace,
//! kind, reason, category, severity, optionally per time bucket.
//!
//! Which table answers (the plan, shown by `--explain`):
//! - `events` (raw) when something only it has is asked for: a `kind` group, the
//!   `distinct_objects` metric, or a kind / object / correlation id / text filter.
//! - else `events_per_hour` when the interval is ≥ 1h, or, without an interval, when
//!   the window is ≥ 1 day (the hourly rollup is kept 365 days and is 60× smaller);
//! - else `events_per_minute`.
//!
//! The window is widened to whole buckets of the plan's resolution (minute or hour):
//! `[floor(from), ceil(to))`, whichever table is read. So the answer does not depend on
//! the table chosen: the raw table, read over the same aligned window, gives exactly
//! what the rollups give (they are filled by the same INSERT).
//!
//! Dynamic columns, fixed row shape: every row is `(bucket_ms, group_keys
//! Array(String), metric_values Array(Int64))` in the order asked for, so one
//! RowBinary struct fits every `--group-by` / `--metrics` combination. Column names in
//! the SQL come from the [`GroupBy`] and [`Metric`] enums only.

use crate::filter::Filter;
use crate::output::{Cell, Table};
use crate::sql::{Param, Params, Source, Statement};
use crate::QueryError;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Cluster,
    Namespace,
    Kind,
    Reason,
    Category,
    Severity,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] =
        [GroupBy::Cluster, GroupBy::Namespace, GroupBy::Kind, GroupBy::Reason, GroupBy::Category, GroupBy::Severity];

    /// The column (same name in `events` and the rollups).
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Cluster => "cluster",
            GroupBy::Namespace => "namespace",
            GroupBy::Kind => "kind",
            GroupBy::Reason => "reason",
            GroupBy::Category => "category",
            GroupBy::Severity => "severity",
        }
    }

    fn in_rollups(self) -> bool {
        self != GroupBy::Kind
    }
}

impl std::str::FromStr for GroupBy {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        GroupBy::ALL.into_iter().find(|g| g.column() == s.trim()).ok_or_else(|| {
            QueryError::Invalid(format!("group-by {s:?}: one of cluster, namespace, kind, reason, category, severity"))
        })
    }
}

/// What to compute per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Event versions (rows of `events`; `sum(events)` in the rollups).
    Count,
    /// Occurrences those versions added (what "how often did it happen" means).
    Occurrences,
    /// Distinct objects (cluster, namespace, kind, name): raw table only.
    DistinctObjects,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Count => "count",
            Metric::Occurrences => "occurrences",
            Metric::DistinctObjects => "distinct_objects",
        }
    }

    /// The Int64 expression over `source`; None when that table cannot compute it.
    fn expr(self, source: Source) -> Option<&'static str> {
        let raw = source == Source::Events;
        Some(match self {
            Metric::Count if raw => "toInt64(count())",
            Metric::Count => "toInt64(sum(events))",
            Metric::Occurrences => "toInt64(sum(occurrences))",
            Metric::DistinctObjects if raw => "toInt64(uniqExact(cluster, namespace, kind, name))",
            Metric::DistinctObjects => return None,
        })
    }
}

impl std::str::FromStr for Metric {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        [Metric::Count, Metric::Occurrences, Metric::DistinctObjects]
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| QueryError::Invalid(format!("metric {s:?}: one of count, occurrences, distinct_objects")))
    }
}

/// A time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub fn ms(self) -> i64 {
        match self {
            Interval::Minute => MINUTE_MS,
            Interval::Hour => HOUR_MS,
            Interval::Day => DAY_MS,
        }
    }

    fn start_fn(self) -> &'static str {
        match self {
            Interval::Minute => "toStartOfMinute",
            Interval::Hour => "toStartOfHour",
            Interval::Day => "toStartOfDay",
        }
    }
}

impl std::str::FromStr for Interval {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.trim() {
            "1m" | "minute" => Ok(Interval::Minute),
            "1h" | "hour" => Ok(Interval::Hour),
            "1d" | "day" => Ok(Interval::Day),
            _ => Err(QueryError::Invalid(format!("interval {s:?}: one of 1m, 1h, 1d"))),
        }
    }
}

/// An aggregate question. `filter.time` must have both ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateQuery {
    pub filter: Filter,
    /// Dimensions, in output order; empty = one total (per bucket).
    pub group_by: Vec<GroupBy>,
    /// At least one, in output order. The first one sorts the groups (descending).
    pub metrics: Vec<Metric>,
    pub interval: Option<Interval>,
    pub limit: Option<u64>,
}

/// One group: its bucket start (the window start without an interval), its key values
/// (in `group_by` order) and its metric values (in `metrics` order).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct AggregateRow {
    pub bucket_ms: i64,
    pub group_keys: Vec<String>,
    pub metric_values: Vec<i64>,
}

/// Which table answers, at what resolution, over which aligned window, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub source: Source,
    /// Bucket size the window is aligned to (minute or hour).
    pub resolution_ms: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub why: String,
}

/// Choose the table (see the module doc).
pub fn plan(q: &AggregateQuery) -> Result<Plan, QueryError> {
    let (Some(from), Some(to)) = (q.filter.time.from_ms, q.filter.time.to_ms) else {
        return Err(QueryError::Invalid("an aggregate needs a window with both ends (--since or --from/--to)".into()));
    };
    if from >= to {
        return Err(QueryError::Invalid("empty window".into()));
    }
    if q.metrics.is_empty() {
        return Err(QueryError::Invalid("at least one metric".into()));
    }
    let hourly_reason = match q.interval {
        Some(i) if i.ms() >= HOUR_MS => Some("interval ≥ 1h"),
        Some(_) => None,
        None if to - from >= DAY_MS => Some("window ≥ 1 day"),
        None => None,
    };
    let resolution_ms = if hourly_reason.is_some() { HOUR_MS } else { MINUTE_MS };
    let from_ms = from.div_euclid(resolution_ms) * resolution_ms;
    let to_ms = (to + resolution_ms - 1).div_euclid(resolution_ms) * resolution_ms;
    let blocker = if let Some(g) = q.group_by.iter().find(|g| !g.in_rollups()) {
        Some(format!("group by {} is not in the rollups", g.column()))
    } else if q.metrics.contains(&Metric::DistinctObjects) {
        Some("distinct_objects needs single objects".to_string())
    } else {
        q.filter.rollup_blocker().map(|b| format!("{b} is not in the rollups"))
    };
    let (source, why) = match (blocker, hourly_reason) {
        (Some(b), _) => (Source::Events, b),
        (None, Some(h)) => (Source::EventsPerHour, format!("every column is in the rollups; {h}")),
        (None, None) => (Source::EventsPerMinute, "every column is in the rollups; window < 1 day".to_string()),
    };
    Ok(Plan { source, resolution_ms, from_ms, to_ms, why })
}

/// Compile `q` (what `--explain` prints).
pub fn build(q: &AggregateQuery) -> Result<Statement, QueryError> {
    let p = plan(q)?;
    let (time_col, raw) = match p.source {
        Source::Events => ("event_time", true),
        Source::EventsPerMinute => ("minute", false),
        _ => ("hour", false),
    };
    let mut filter = q.filter.clone();
    filter.time.from_ms = Some(p.from_ms);
    filter.time.to_ms = Some(p.to_ms);
    let mut params = Params::default();
    let cond = filter.conditions(time_col, raw, &mut params);
    let bucket = match q.interval {
        Some(i) => format!("toInt64(toUnixTimestamp({}({time_col}))) * 1000", i.start_fn()),
        // The same placeholder the window condition declared.
        None => "{from_ms:Int64}".to_string(),
    };
    let mut group_by: Vec<GroupBy> = Vec::new();
    for g in &q.group_by {
        if !group_by.contains(g) {
            group_by.push(*g);
        }
    }
    let keys: Vec<&str> = group_by.iter().map(|g| g.column()).collect();
    let mut metrics = Vec::new();
    for m in &q.metrics {
        metrics.push(
            m.expr(p.source).ok_or_else(|| QueryError::Invalid(format!("{} on {}", m.name(), p.source.table())))?,
        );
    }
    let mut sql = format!(
        "SELECT {bucket} AS bucket_ms,\n  CAST([{keys}] AS Array(String)) AS group_keys,\n  \
         CAST([{metrics}] AS Array(Int64)) AS metric_values\nFROM {table}\nWHERE {cond}\n\
         GROUP BY bucket_ms, group_keys\nORDER BY bucket_ms ASC, metric_values[1] DESC, group_keys ASC",
        keys = keys.join(", "),
        metrics = metrics.join(", "),
        table = p.source.table(),
    );
    if let Some(limit) = q.limit {
        let ph = params.add("limit", Param::Int(limit.min(i64::MAX as u64) as i64));
        sql.push_str(&format!("\nLIMIT {ph}"));
    }
    let why = format!(
        "{}; window aligned to {} buckets: [{}, {})",
        p.why,
        if p.resolution_ms == HOUR_MS { "hour" } else { "minute" },
        crate::format_ms(p.from_ms),
        crate::format_ms(p.to_ms)
    );
    Ok(Statement { sql, params, source: p.source, why })
}

/// The rows as a [`Table`]: bucket (when an interval was asked), keys, metrics.
pub fn table(q: &AggregateQuery, rows: &[AggregateRow]) -> Table {
    let mut cols: Vec<&str> = Vec::new();
    if q.interval.is_some() {
        cols.push("bucket");
    }
    let mut seen = Vec::new();
    for g in &q.group_by {
        if !seen.contains(g) {
            seen.push(*g);
            cols.push(g.column());
        }
    }
    cols.extend(q.metrics.iter().map(|m| m.name()));
    let mut t = Table::new(&cols);
    for r in rows {
        let mut cells = Vec::new();
        if q.interval.is_some() {
            cells.push(Cell::Time(r.bucket_ms));
        }
        cells.extend(r.group_keys.iter().map(|k| Cell::from(k.clone())));
        cells.extend(r.metric_values.iter().map(|v| Cell::Int(*v)));
        t.push(cells);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::TimeRange;

    fn q(hours: i64, group_by: Vec<GroupBy>, metrics: Vec<Metric>, interval: Option<Interval>) -> AggregateQuery {
        AggregateQuery {
            filter: Filter {
                time: TimeRange { from_ms: Some(90_000), to_ms: Some(90_000 + hours * HOUR_MS) },
                ..Default::default()
            },
            group_by,
            metrics,
            interval,
            limit: None,
        }
    }

    #[test]
    fn plan_prefers_rollups_and_picks_the_resolution() {
        let p = plan(&q(2, vec![GroupBy::Cluster], vec![Metric::Count], None)).unwrap();
        assert_eq!((p.source, p.from_ms, p.to_ms), (Source::EventsPerMinute, 60_000, 2 * HOUR_MS + 120_000));
        let p = plan(&q(24, vec![GroupBy::Reason], vec![Metric::Occurrences], None)).unwrap();
        assert_eq!((p.source, p.from_ms, p.to_ms), (Source::EventsPerHour, 0, 25 * HOUR_MS));
        let p = plan(&q(48, vec![], vec![Metric::Count], Some(Interval::Minute))).unwrap();
        assert_eq!(p.source, Source::EventsPerMinute);
        let p = plan(&q(1, vec![], vec![Metric::Count], Some(Interval::Day))).unwrap();
        assert_eq!(p.source, Source::EventsPerHour);
        let p = plan(&q(1, vec![GroupBy::Kind], vec![Metric::Count], None)).unwrap();
        assert_eq!(p.source, Source::Events);
        let p = plan(&q(48, vec![], vec![Metric::DistinctObjects], None)).unwrap();
        assert_eq!((p.source, p.resolution_ms), (Source::Events, HOUR_MS));
        let mut k = q(1, vec![], vec![Metric::Count], None);
        k.filter.text = Some("oom".into());
        assert_eq!(plan(&k).unwrap().source, Source::Events);
        k.metrics.clear();
        assert!(plan(&k).is_err());
    }

    #[test]
    fn sql_uses_enum_columns_and_placeholders() {
        let st = build(&q(
            2,
            vec![GroupBy::Cluster, GroupBy::Severity, GroupBy::Cluster],
            vec![Metric::Count, Metric::Occurrences],
            Some(Interval::Minute),
        ))
        .unwrap();
        assert!(st.sql.contains("CAST([cluster, severity] AS Array(String))"), "{}", st.sql);
        assert!(st.sql.contains("toInt64(sum(events)), toInt64(sum(occurrences))"), "{}", st.sql);
        assert!(st.sql.contains("FROM events_per_minute"));
        assert!(!st.sql.contains('?'));
        assert_eq!(st.params.get("from_ms"), Some(&Param::Int(60_000)));
        assert!("kind".parse::<GroupBy>().is_ok() && "owner".parse::<GroupBy>().is_err());
        assert!("distinct_objects".parse::<Metric>().is_ok() && "1w".parse::<Interval>().is_err());
    }
}
