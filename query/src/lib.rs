//! Reading kevents data back: the Query / Aggregate / Incidents API behind
//! `kevents query`, `kevents aggregate` and `kevents incidents`.
//!
//! Every question compiles to a [`Statement`]: SQL with ClickHouse `{name:Type}`
//! placeholders plus the bound values (see [`sql`] for why nothing a user typed is
//! ever part of the SQL text). [`Store`] runs statements and fetches RowBinary rows;
//! the `build_*` functions only compile, which is what `--explain` prints.
//!
//! Layout:
//! - [`sql`]: `Statement`, `Params`, `Source` (the table read).
//! - [`filter`]: the filters events questions share, and their WHERE clause.
//! - [`events`]: single events, newest first.
//! - [`aggregate`]: counts by dimensions and time buckets; rollup or raw table.
//! - [`incidents`]: the latest version of each incident.
//! - [`report`]: what `kevents report` draws: events folded per event, incidents, episodes.
//! - [`output`]: table / JSON / CSV rendering.

pub mod aggregate;
pub mod events;
pub mod filter;
pub mod incidents;
pub mod output;
pub mod patterns;
pub mod report;
pub mod sql;

pub use aggregate::{AggregateQuery, AggregateRow, GroupBy, Interval, Metric};
pub use events::{EventQuery, EventRecord};
pub use filter::{Filter, ObjectRef, TimeRange};
pub use incidents::{IncidentFilter, IncidentRecord};
pub use output::{Format, Table};
pub use report::{ReportEvent, ReportFilter, ReportIncident, ReportPattern};
pub use sql::{Param, Params, Source, Statement};

use std::time::Duration;

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The question itself is wrong (bad duration, time, object, empty metric list).
    #[error("invalid query: {0}")]
    Invalid(String),
    /// ClickHouse failed or rejected the statement.
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

/// The read side of the kevents database.
#[derive(Clone)]
pub struct Store {
    client: clickhouse::Client,
}

impl Store {
    /// `client` may have any default database; reads go to `database`.
    pub fn new(client: clickhouse::Client, database: &str) -> Self {
        Store { client: client.with_database(database) }
    }

    /// Events matching `q`, newest first.
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, QueryError> {
        let st = events::build(q)?;
        Ok(st.to_query(&self.client).fetch_all::<EventRecord>().await?)
    }

    /// Aggregated counts for `q`.
    pub async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<AggregateRow>, QueryError> {
        let st = aggregate::build(q)?;
        Ok(st.to_query(&self.client).fetch_all::<AggregateRow>().await?)
    }

    /// Incidents matching `f`, most recently active first.
    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentRecord>, QueryError> {
        let st = incidents::build(f)?;
        Ok(st.to_query(&self.client).fetch_all::<IncidentRecord>().await?)
    }
}

/// `30s`, `15m`, `1h`, `7d`, `2w` (one number, one unit).
pub fn parse_duration(s: &str) -> Result<Duration, QueryError> {
    let bad = || QueryError::Invalid(format!("duration {s:?}: expected a number and one of s, m, h, d, w (e.g. 1h)"));
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// An RFC 3339 time (`2026-11-23T21:00:00Z`) in Unix milliseconds.
pub fn parse_time(s: &str) -> Result<i64, QueryError> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| QueryError::Invalid(format!("time {s:?}: {e} (expected RFC 3339, e.g. 2026-11-23T21:00:00Z)")))
}

/// Unix milliseconds now (from `SystemTime`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The range of `--since D` or `--from T --to T` (`since` wins over `from`).
pub fn time_range(
    since: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now_ms: i64,
) -> Result<TimeRange, QueryError> {
    let from_ms = match (since, from) {
        (Some(d), _) => Some(now_ms - parse_duration(d)?.as_millis() as i64),
        (None, Some(t)) => Some(parse_time(t)?),
        (None, None) => None,
    };
    let to_ms = to.map(parse_time).transpose()?;
    if let (Some(f), Some(t)) = (from_ms, to_ms) {
        if f >= t {
            return Err(QueryError::Invalid(format!("empty time range: from {f} ms is not before to {t} ms")));
        }
    }
    Ok(TimeRange { from_ms, to_ms })
}

/// Milliseconds as RFC 3339 UTC with milliseconds (how every output shows times).
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2w").unwrap(), Duration::from_secs(14 * 86_400));
        for bad in ["", "h", "1", "1y", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(format_ms(1500), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn time_ranges_from_flags() {
        let r = time_range(Some("1m"), None, None, 100_000).unwrap();
        assert_eq!(r, TimeRange { from_ms: Some(40_000), to_ms: None });
        let r = time_range(None, Some("1970-01-01T00:00:01Z"), Some("1970-01-01T00:00:02Z"), 0).unwrap();
        assert_eq!(r, TimeRange { from_ms: Some(1000), to_ms: Some(2000) });
        assert!(time_range(None, Some("1970-01-01T00:00:02Z"), Some("1970-01-01T00:00:01Z"), 0).is_err());
    }
}
