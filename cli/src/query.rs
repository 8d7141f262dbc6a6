//! `kevents query`, `aggregate`, `incidents` and `patterns`: the read side of the
//! ClickHouse database, on top of `kevents_query` (which compiles every question to
//! parameterized SQL; see its module doc). This file only turns flags into those
//! questions, connects, and prints.
//!
//! Connection: the `clickhouse` section of a sink config (`--config`, plus the usual
//! `KEVENTS__CLICKHOUSE__*` env overrides, e.g. the password), then `--url` /
//! `--database` on top. `--explain` prints the statement, its parameters and the table
//! chosen (and why) instead of running it.

use anyhow::Context;
use clap::Args;
use kevents_query::{
    self as query, aggregate, events, incidents, AggregateQuery, EventQuery, Filter, Format, GroupBy, IncidentFilter, Interval,
    Metric, ObjectRef, Statement, Store,
};
use std::path::PathBuf;

/// Where ClickHouse is.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// A sink YAML config; only its `clickhouse` section is used. Env overrides
    /// (`KEVENTS__CLICKHOUSE__URL`, `…__PASSWORD`, …) apply as for the sink.
    #[arg(long, short, env = "KEVENTS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override `clickhouse.url`, e.g. http://127.0.0.1:8123.
    #[arg(long)]
    pub url: Option<String>,
    /// Override `clickhouse.database`.
    #[arg(long)]
    pub database: Option<String>,
}

/// How to print.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short, default_value = "table", value_parser = ["table", "json", "csv"])]
    pub output: String,
    /// Print the SQL, its parameters and the table chosen (and why); do not run it.
    #[arg(long)]
    pub explain: bool,
}

/// The time window: `--since 1h`, or `--from`/`--to` (RFC 3339).
#[derive(Args, Debug, Clone)]
pub struct TimeArgs {
    /// Events of the last D: 30s, 15m, 1h, 7d, 2w.
    #[arg(long, conflicts_with = "from")]
    pub since: Option<String>,
    /// Start (inclusive), RFC 3339, e.g. 2026-11-23T08:00:00Z.
    #[arg(long)]
    pub from: Option<String>,
    /// End (exclusive), RFC 3339. Default: now.
    #[arg(long)]
    pub to: Option<String>,
}

/// Filters shared by `query` and `aggregate`. Lists take commas or repeated flags.
#[derive(Args, Debug, Clone)]
pub struct FilterArgs {
    #[command(flatten)]
    pub time: TimeArgs,
    /// Clusters (names as configured in the collectors).
    #[arg(long = "cluster", alias = "clusters", value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// Namespaces.
    #[arg(long = "namespace", short = 'n', alias = "namespaces", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Categories (workload, scheduling, image, node, …).
    #[arg(long = "category", alias = "categories", value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Severities: info, warning, error, critical.
    #[arg(long = "severity", alias = "severities", value_delimiter = ',')]
    pub severities: Vec<String>,
    /// Reasons (BackOff, FailedScheduling, …).
    #[arg(long = "reason", alias = "reasons", value_delimiter = ',')]
    pub reasons: Vec<String>,
    /// Object kinds (case-insensitive). Raw table only.
    #[arg(long = "kind", alias = "kinds", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Correlation id. Raw table only.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// One object: name, kind/name or kind/namespace/name. Raw table only.
    #[arg(long)]
    pub object: Option<String>,
    /// Case-insensitive text in the message. Raw table only.
    #[arg(long)]
    pub text: Option<String>,
}

impl FilterArgs {
    /// The filter; `default_since` applies when no start was given.
    fn filter(&self, now_ms: i64, default_since: Option<&str>) -> anyhow::Result<Filter> {
        let t = &self.time;
        let since = t.since.as_deref().or(if t.from.is_none() { default_since } else { None });
        let time = query::time_range(since, t.from.as_deref(), t.to.as_deref(), now_ms)?;
        let object = self.object.as_deref().map(str::parse::<ObjectRef>).transpose()?;
        Ok(Filter {
            time,
            clusters: self.clusters.clone(),
            namespaces: self.namespaces.clone(),
            categories: self.categories.clone(),
            severities: self.severities.clone(),
            reasons: self.reasons.clone(),
            kinds: self.kinds.clone(),
            correlation_id: self.correlation_id.clone(),
            object,
            text: self.text.clone(),
        })
    }
}

/// `kevents query`: single events, newest first.
#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many events (the newest).
    #[arg(long, default_value_t = events::DEFAULT_LIMIT)]
    pub limit: u64,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `kevents aggregate`: counts by dimensions, optionally per time bucket.
#[derive(Args, Debug, Clone)]
pub struct AggregateArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Dimensions: cluster, namespace, kind, reason, category, severity (comma list).
    #[arg(long, value_delimiter = ',')]
    pub group_by: Vec<String>,
    /// Metrics: count (event versions), occurrences, distinct_objects. The first sorts.
    #[arg(long, value_delimiter = ',', default_value = "count")]
    pub metrics: Vec<String>,
    /// Time buckets: 1m, 1h or 1d. Default: one bucket for the whole window.
    #[arg(long)]
    pub interval: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `kevents incidents`: the latest version of each incident.
#[derive(Args, Debug, Clone)]
pub struct IncidentsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Clusters.
    #[arg(long = "cluster", alias = "clusters", value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// Namespaces of the root cause.
    #[arg(long = "namespace", short = 'n', alias = "namespaces", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// open, resolved.
    #[arg(long = "status", value_delimiter = ',')]
    pub statuses: Vec<String>,
    /// info, warning, error, critical.
    #[arg(long = "severity", alias = "severities", value_delimiter = ',')]
    pub severities: Vec<String>,
    /// Only incidents active in the last D (30s, 15m, 1h, 7d, 2w).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many incidents (the most recently active).
    #[arg(long, default_value_t = events::DEFAULT_LIMIT)]
    pub limit: u64,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `kevents patterns`: cluster pattern episodes (default), fleet patterns, or the
/// episodes of one key.
#[derive(Args, Debug, Clone)]
pub struct PatternsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The same key as a pattern in several clusters (`fleet_patterns`), most
    /// widespread first.
    #[arg(long, conflicts_with = "key")]
    pub fleet: bool,
    /// With --fleet: clusters a key must be a pattern in.
    #[arg(long, default_value_t = 2)]
    pub min_clusters: u64,
    /// Every episode of this similarity key (`reason|kind|namespace|template`,
    /// as printed in the `key` column), oldest first: its recurrences over days.
    #[arg(long)]
    pub key: Option<String>,
    /// Clusters.
    #[arg(long = "cluster", alias = "clusters", value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// Namespaces.
    #[arg(long = "namespace", short = 'n', alias = "namespaces", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Reasons.
    #[arg(long = "reason", alias = "reasons", value_delimiter = ',')]
    pub reasons: Vec<String>,
    /// open, resolved.
    #[arg(long = "status", value_delimiter = ',')]
    pub statuses: Vec<String>,
    /// Only anomalies (bursts far above the key's baseline).
    #[arg(long)]
    pub anomalies: bool,
    /// Only patterns active in the last D (30s, 15m, 1h, 7d, 2w).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = events::DEFAULT_LIMIT)]
    pub limit: u64,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// Window of `kevents aggregate` when none is given.
const AGGREGATE_DEFAULT_SINCE: &str = "24h";

pub async fn run_query(args: QueryArgs) -> anyhow::Result<()> {
    let q = EventQuery { filter: args.filter.filter(query::now_ms(), None)?, limit: args.limit };
    let st = events::build(&q)?;
    let Some((store, format)) = prepare(&args.conn, &args.out, &st)? else { return Ok(()) };
    let rows = store.events(&q).await.context("running the query")?;
    print!("{}", events::table(&rows).render(format));
    Ok(())
}

pub async fn run_aggregate(args: AggregateArgs) -> anyhow::Result<()> {
    let now = query::now_ms();
    let mut filter = args.filter.filter(now, Some(AGGREGATE_DEFAULT_SINCE))?;
    filter.time.to_ms.get_or_insert(now);
    let q = AggregateQuery {
        filter,
        group_by: args.group_by.iter().map(|g| g.parse::<GroupBy>()).collect::<Result<_, _>>()?,
        metrics: args.metrics.iter().map(|m| m.parse::<Metric>()).collect::<Result<_, _>>()?,
        interval: args.interval.as_deref().map(str::parse::<Interval>).transpose()?,
        limit: args.limit,
    };
    let st = aggregate::build(&q)?;
    let Some((store, format)) = prepare(&args.conn, &args.out, &st)? else { return Ok(()) };
    let rows = store.aggregate(&q).await.context("running the aggregate")?;
    print!("{}", aggregate::table(&q, &rows).render(format));
    Ok(())
}

pub async fn run_incidents(args: IncidentsArgs) -> anyhow::Result<()> {
    let since_ms = since_ms(args.since.as_deref())?;
    let f = IncidentFilter {
        clusters: args.clusters,
        namespaces: args.namespaces,
        statuses: args.statuses,
        severities: args.severities,
        since_ms,
        limit: args.limit,
    };
    let st = incidents::build(&f)?;
    let Some((store, format)) = prepare(&args.conn, &args.out, &st)? else { return Ok(()) };
    let rows = store.incidents(&f).await.context("listing incidents")?;
    print!("{}", incidents::table(&rows).render(format));
    Ok(())
}

pub async fn run_patterns(args: PatternsArgs) -> anyhow::Result<()> {
    use kevents_query::patterns::{self, EpisodeQuery, FleetFilter, TopFilter};
    let since_ms = since_ms(args.since.as_deref())?;
    let format: Format = args.out.output.parse()?;
    let explain = |st: &Statement| {
        if args.out.explain {
            print!("{st}");
        }
        args.out.explain
    };
    if let Some(key) = args.key.clone() {
        let q = EpisodeQuery { key, clusters: args.clusters, since_ms, limit: args.limit };
        if explain(&patterns::build_episodes(&q)?) {
            return Ok(());
        }
        let rows = store(&args.conn)?.pattern_episodes(&q).await.context("listing the episodes")?;
        print!("{}", patterns::episodes_table(&rows).render(format));
    } else if args.fleet {
        let f = FleetFilter { since_ms, until_ms: None, min_clusters: args.min_clusters, namespaces: args.namespaces, reasons: args.reasons, limit: args.limit };
        if explain(&patterns::build_fleet(&f)?) {
            return Ok(());
        }
        let rows = store(&args.conn)?.fleet_patterns(&f).await.context("listing fleet patterns")?;
        print!("{}", patterns::fleet_table(&rows).render(format));
    } else {
        let f = TopFilter {
            since_ms,
            clusters: args.clusters,
            namespaces: args.namespaces,
            reasons: args.reasons,
            statuses: args.statuses,
            anomalies_only: args.anomalies,
            limit: args.limit,
        };
        if explain(&patterns::build_top(&f)?) {
            return Ok(());
        }
        let rows = store(&args.conn)?.top_patterns(&f).await.context("listing patterns")?;
        print!("{}", patterns::top_table(&rows).render(format));
    }
    Ok(())
}

/// `--since D` as a start time, Unix ms.
fn since_ms(since: Option<&str>) -> anyhow::Result<Option<i64>> {
    Ok(since.map(|d| query::parse_duration(d).map(|d| query::now_ms() - d.as_millis() as i64)).transpose()?)
}

/// With `--explain`: print `st` and return None. Else the store and the format.
fn prepare(conn: &ConnArgs, out: &OutputArgs, st: &Statement) -> anyhow::Result<Option<(Store, Format)>> {
    let format: Format = out.output.parse()?;
    if out.explain {
        print!("{st}");
        return Ok(None);
    }
    Ok(Some((store(conn)?, format)))
}

/// The sink config's `clickhouse` section (file, env overrides), then the flags.
pub(crate) fn store(conn: &ConnArgs) -> anyhow::Result<Store> {
    let cfg: sink::SinkConfig =
        runtime::config::load(conn.config.as_deref()).context("loading the config (clickhouse section)")?;
    let mut ch = cfg.clickhouse;
    if let Some(u) = &conn.url {
        ch.url = u.clone();
    }
    if let Some(d) = &conn.database {
        ch.database = d.clone();
    }
    let client = ch.client().context("clickhouse config")?;
    Ok(Store::new(client, &ch.database))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Q {
        #[command(flatten)]
        a: AggregateArgs,
    }

    #[test]
    fn aggregate_flags_compile_to_the_rollup_plan() {
        let q = Q::try_parse_from([
            "x",
            "--group-by",
            "cluster,severity",
            "--metrics",
            "count,occurrences",
            "--since",
            "2d",
            "--cluster",
            "a,b",
            "--explain",
        ])
        .unwrap();
        assert_eq!(q.a.group_by, ["cluster", "severity"]);
        assert_eq!(q.a.filter.clusters, ["a", "b"]);
        let f = q.a.filter.filter(10 * 86_400_000, Some(AGGREGATE_DEFAULT_SINCE)).unwrap();
        assert_eq!(f.time.from_ms, Some(8 * 86_400_000));
        assert!(Q::try_parse_from(["x", "--since", "1h", "--from", "2026-01-01T00:00:00Z"]).is_err());
        assert!(Q::try_parse_from(["x", "--output", "yaml"]).is_err());
    }
}
