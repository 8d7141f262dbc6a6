//! A compiled statement: SQL text with ClickHouse `{name:Type}` placeholders, the
//! values bound to them, and which table it reads and why.
//!
//! Why parameters and not escaping: every value a user typed (cluster names, reasons,
//! a search text, times) travels as an HTTP `param_<name>` setting and is parsed by
//! ClickHouse as a value of the declared type, so it can never change the statement.
//! The only things spliced into the text are column names and SQL fragments chosen by
//! this crate from fixed enums (`GroupBy`, `Metric`, `Source`).
//!
//! One pitfall of the `clickhouse` crate: `client.query(sql)` treats `?` in the text as
//! a positional bind placeholder, so no fragment here may contain a `?`.

use serde::Serialize;
use std::fmt;

/// A value bound to a `{name:Type}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Param {
    /// `String`.
    Str(String),
    /// `Array(String)`, for `has({p:Array(String)}, column)` (an IN list).
    Strs(Vec<String>),
    /// `Int64` (times travel as Unix milliseconds).
    Int(i64),
}

impl Param {
    /// The ClickHouse type the placeholder declares.
    pub fn ch_type(&self) -> &'static str {
        match self {
            Param::Str(_) => "String",
            Param::Strs(_) => "Array(String)",
            Param::Int(_) => "Int64",
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Str(s) => write!(f, "{s:?}"),
            Param::Strs(v) => write!(f, "{v:?}"),
            Param::Int(i) => write!(f, "{i}"),
        }
    }
}

/// The table a statement reads. Fixed names: never user text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Events,
    EventsPerMinute,
    EventsPerHour,
    IncidentsLatest,
    PatternsLatest,
    PatternEpisodes,
}

impl Source {
    pub fn table(self) -> &'static str {
        match self {
            Source::Events => "events",
            Source::EventsPerMinute => "events_per_minute",
            Source::EventsPerHour => "events_per_hour",
            Source::IncidentsLatest => "incidents_latest",
            Source::PatternsLatest => "patterns_latest",
            Source::PatternEpisodes => "pattern_episodes",
        }
    }
}

/// Placeholders and their values, in the order they were added. Builders call
/// [`Params::add`], which returns the `{name:Type}` text to put in the SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Param)>);

impl Params {
    /// Register `value` under `name` (an identifier chosen by this crate) and return
    /// its placeholder.
    pub fn add(&mut self, name: &str, value: Param) -> String {
        debug_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        debug_assert!(!self.0.iter().any(|(n, _)| n == name), "parameter {name} added twice");
        let placeholder = format!("{{{name}:{}}}", value.ch_type());
        self.0.push((name.to_string(), value));
        placeholder
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, Param)> {
        self.0.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The `LIMIT` placeholder (a count above `i64::MAX` is bound as `i64::MAX`).
    pub fn limit(&mut self, limit: u64) -> String {
        self.add("limit", Param::Int(limit.min(i64::MAX as u64) as i64))
    }
}

/// A question's `LIMIT` must let at least one row through.
pub fn check_limit(limit: u64) -> Result<(), crate::QueryError> {
    if limit == 0 {
        return Err(crate::QueryError::Invalid("limit must be at least 1".into()));
    }
    Ok(())
}

/// The conditions of a `WHERE` clause, the values they compare with bound in
/// the builder's [`Params`]: the filters every question shares (a column is one
/// of a list, a time column from or before an instant) written once.
pub struct Conditions<'p> {
    params: &'p mut Params,
    c: Vec<String>,
}

impl<'p> Conditions<'p> {
    pub fn new(params: &'p mut Params) -> Self {
        Conditions { params, c: Vec::new() }
    }

    /// Where a condition's own values are bound.
    pub fn params(&mut self) -> &mut Params {
        self.params
    }

    /// A condition as SQL (its values already bound through [`Self::params`]).
    pub fn push(&mut self, condition: impl Into<String>) {
        self.c.push(condition.into());
    }

    /// `col` is one of `values`; no condition when the list is empty ("any").
    pub fn one_of(&mut self, name: &str, col: &str, values: &[String]) {
        if !values.is_empty() {
            let p = self.params.add(name, Param::Strs(values.to_vec()));
            self.c.push(format!("has({p}, {col})"));
        }
    }

    /// The time column `col` is at or after `ms` (Unix ms, UTC), when given.
    pub fn at_or_after(&mut self, name: &str, col: &str, ms: Option<i64>) {
        if let Some(ms) = ms {
            let p = self.params.add(name, Param::Int(ms));
            self.c.push(format!("{col} >= fromUnixTimestamp64Milli({p}, 'UTC')"));
        }
    }

    /// The time column `col` is before `ms` (Unix ms, UTC), when given.
    pub fn before(&mut self, name: &str, col: &str, ms: Option<i64>) {
        if let Some(ms) = ms {
            let p = self.params.add(name, Param::Int(ms));
            self.c.push(format!("{col} < fromUnixTimestamp64Milli({p}, 'UTC')"));
        }
    }

    /// The conditions joined with `AND`; `1` when there is none.
    pub fn sql(self) -> String {
        if self.c.is_empty() {
            "1".into()
        } else {
            self.c.join("\n  AND ")
        }
    }
}

/// A statement ready to run or to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Params,
    pub source: Source,
    /// Why `source` was chosen (shown by `--explain`).
    pub why: String,
}

impl Statement {
    /// A `clickhouse` query with every parameter bound.
    pub fn to_query(&self, client: &clickhouse::Client) -> clickhouse::query::Query {
        let mut q = client.query(&self.sql);
        for (name, value) in self.params.iter() {
            q = match value {
                Param::Str(s) => q.param(name, s),
                Param::Strs(v) => q.param(name, v),
                Param::Int(i) => q.param(name, i),
            };
        }
        q
    }
}

/// The `--explain` text: table and reason, SQL, then one line per parameter.
impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "-- table: {} ({})", self.source.table(), self.why)?;
        writeln!(f, "{}", self.sql)?;
        for (name, value) in self.params.iter() {
            writeln!(f, "-- param {name} {} = {value}", value.ch_type())?;
        }
        Ok(())
    }
}

/// The condition "this event belongs to incident `p`" (a bound parameter): its
/// `correlation_id` is the incident's id, or an id the incident replaced when a late
/// cause re-rooted it (the events processed before the re-root still carry the old id;
/// the old id's last version is rooted at the new incident's event, migration 0006).
pub fn in_incident(p: &str) -> String {
    format!("(correlation_id = {p} OR correlation_id IN (SELECT id FROM incidents WHERE root_event_id = {p} AND id != {p}))")
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_declare_the_value_type() {
        let mut p = Params::default();
        assert_eq!(p.add("clusters", Param::Strs(vec!["a".into()])), "{clusters:Array(String)}");
        assert_eq!(p.add("from_ms", Param::Int(5)), "{from_ms:Int64}");
        assert_eq!(p.add("text", Param::Str("x' OR 1=1 --".into())), "{text:String}");
        assert_eq!(p.get("from_ms"), Some(&Param::Int(5)));
        let st = Statement { sql: "SELECT 1".into(), params: p, source: Source::Events, why: "test".into() };
        let text = st.to_string();
        assert!(text.contains("-- table: events (test)"), "{text}");
        assert!(text.contains(r#"-- param text String = "x' OR 1=1 --""#), "{text}");
    }
}
