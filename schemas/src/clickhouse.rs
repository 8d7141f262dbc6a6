//! The ClickHouse schema as ordered, idempotent SQL migrations
//! (`schemas/clickhouse/NNNN_name.sql`), rendered for one node or for a cluster.
//!
//! The sink applies them at start-up (it owns the ClickHouse connection); this module
//! only knows the files and how to render them, so the DDL lives beside the rest of
//! the contract and tests can check it without a server.
//!
//! Template language (kept tiny on purpose):
//! - `{{db}}` → the database; `{{ttl_days}}` → raw-row retention in days.
//! - `{{on_cluster}}` → `""`, or ` ON CLUSTER 'name'` on a cluster with Keeper replication.
//! - `{{local:T}}` → `T` on one node, `T_local` on a cluster (the shard-local table).
//! - `{{engine:E}}` / `{{engine:E(args)}}` → `E(args)` on one node and on a cluster with
//!   `Distributed` replication; `ReplicatedE('/clickhouse/tables/{shard}/db/T_local',
//!   '{replica}', args)` on a cluster with Keeper replication.
//! - A line `-- @distributed T sharding_key` → on a cluster, a `Distributed` table `T`
//!   over `T_local`; nothing on one node.
//!
//! Statements are separated by `;` at the end of a line. Every statement must be
//! idempotent (`IF NOT EXISTS`), so re-running a half-applied migration is safe.

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// All migrations, in order. Append only: a released migration never changes.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../clickhouse/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "rollups",
        sql: include_str!("../clickhouse/0002_rollups.sql"),
    },
    Migration {
        version: 3,
        name: "state",
        sql: include_str!("../clickhouse/0003_state.sql"),
    },
    Migration {
        version: 4,
        name: "patterns_fleet",
        sql: include_str!("../clickhouse/0004_patterns_fleet.sql"),
    },
    Migration {
        version: 5,
        name: "stored_at",
        sql: include_str!("../clickhouse/0005_stored_at.sql"),
    },
    Migration {
        version: 6,
        name: "incidents_current",
        sql: include_str!("../clickhouse/0006_incidents_current.sql"),
    },
];

/// The table that records which migrations a database has.
pub const MIGRATIONS_TABLE: &str = "kevents_migrations";

/// How to render: one node, or a ClickHouse cluster with replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    pub database: String,
    /// `Some(cluster)`: render for a ClickHouse cluster (`T_local` tables on every node,
    /// `Distributed` tables over them); how depends on its [`Replication`].
    pub cluster: Option<ClusterTarget>,
    /// Retention of raw event rows, days.
    pub ttl_days: u32,
}

/// A ClickHouse cluster the migrations render for: its name in `remote_servers` and how
/// its replicas get their rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    pub name: String,
    pub replication: Replication,
}

impl From<&str> for ClusterTarget {
    /// A cluster with Keeper replication (the servers' usual set-up).
    fn from(name: &str) -> Self {
        ClusterTarget { name: name.to_string(), replication: Replication::Keeper }
    }
}

/// How the replicas of a cluster's shards get their rows (docs/clickhouse-cluster.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replication {
    /// `Replicated*MergeTree` through ZooKeeper/Keeper, replicas fetching parts from each
    /// other over the interserver HTTP port; DDL `ON CLUSTER` (the DDLWorker spreads it).
    /// Needs `clickhouse-server` on every node.
    #[default]
    Keeper,
    /// Plain `*MergeTree` on every node, the same engines as on one node; the
    /// `Distributed` tables write every replica themselves (`internal_replication` false
    /// in `remote_servers`); no `ON CLUSTER`: the caller runs the DDL on each node. For
    /// nodes that serve the native protocol but cannot replicate or run distributed DDL,
    /// such as chdb (clickhouse-local) processes.
    Distributed,
}

impl RenderOptions {
    pub fn single(database: &str) -> Self {
        RenderOptions {
            database: database.to_string(),
            cluster: None,
            ttl_days: 30,
        }
    }

    /// `Some(name)` when the DDL says `ON CLUSTER name` (Keeper replication only).
    fn on_cluster(&self) -> Option<&str> {
        match &self.cluster {
            Some(c) if c.replication == Replication::Keeper => Some(&c.name),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("migration {version}: unknown placeholder {{{{{placeholder}}}}}")]
    UnknownPlaceholder { version: u32, placeholder: String },
    #[error("migration {version}: unclosed placeholder")]
    Unclosed { version: u32 },
    #[error("migration {version}: bad directive {line:?}")]
    BadDirective { version: u32, line: String },
}

/// Render one migration into executable statements.
pub fn render(m: &Migration, opts: &RenderOptions) -> Result<Vec<String>, RenderError> {
    let mut out = Vec::new();
    for raw in split_statements(m.sql) {
        let mut extra = Vec::new();
        let mut body = String::new();
        for line in raw.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("-- @distributed") {
                // The key is the rest of the line (it may hold spaces).
                let mut parts = rest.trim().splitn(2, char::is_whitespace);
                let (Some(table), Some(key)) = (parts.next(), parts.next().map(str::trim).filter(|k| !k.is_empty())) else {
                    return Err(RenderError::BadDirective {
                        version: m.version,
                        line: t.to_string(),
                    });
                };
                if let Some(c) = &opts.cluster {
                    let db = &opts.database;
                    let name = &c.name;
                    let on_cluster = opts.on_cluster().map(|c| format!(" ON CLUSTER '{c}'")).unwrap_or_default();
                    extra.push(format!(
                        "CREATE TABLE IF NOT EXISTS {db}.{table}{on_cluster} AS {db}.{table}_local \
                         ENGINE = Distributed('{name}', '{db}', '{table}_local', {key})"
                    ));
                }
            } else if !t.starts_with("--") && !t.is_empty() {
                body.push_str(line);
                body.push('\n');
            }
        }
        if !body.trim().is_empty() {
            out.push(expand(m.version, body.trim(), opts)?);
        }
        out.extend(extra);
    }
    Ok(out)
}

fn split_statements(sql: &str) -> Vec<String> {
    let mut stmts = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        cur.push_str(line);
        cur.push('\n');
        let t = line.trim_end();
        if t.ends_with(';') && !t.trim_start().starts_with("--") {
            let s = cur.trim_end().trim_end_matches(';').to_string();
            stmts.push(s);
            cur.clear();
        } else if line.trim().starts_with("-- @") {
            stmts.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        stmts.push(cur);
    }
    stmts
}

fn expand(version: u32, stmt: &str, opts: &RenderOptions) -> Result<String, RenderError> {
    // The first {{local:T}} names the table an {{engine:…}} belongs to.
    let table = stmt
        .split("{{local:")
        .nth(1)
        .and_then(|r| r.split("}}").next())
        .unwrap_or("")
        .to_string();
    let mut out = String::with_capacity(stmt.len());
    let mut rest = stmt;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(RenderError::Unclosed { version })?;
        let ph = &after[..end];
        out.push_str(&placeholder(version, ph, &table, opts)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn placeholder(version: u32, ph: &str, table: &str, opts: &RenderOptions) -> Result<String, RenderError> {
    let db = &opts.database;
    Ok(match ph {
        "db" => db.clone(),
        "ttl_days" => opts.ttl_days.to_string(),
        "on_cluster" => match opts.on_cluster() {
            Some(c) => format!(" ON CLUSTER '{c}'"),
            None => String::new(),
        },
        _ if ph.starts_with("local:") => {
            let t = &ph["local:".len()..];
            match opts.cluster {
                Some(_) => format!("{t}_local"),
                None => t.to_string(),
            }
        }
        _ if ph.starts_with("engine:") => {
            let e = &ph["engine:".len()..];
            let (name, args) = match e.find('(') {
                Some(i) => (&e[..i], e[i + 1..].trim_end_matches(')')),
                None => (e, ""),
            };
            match &opts.cluster {
                None
                | Some(ClusterTarget {
                    replication: Replication::Distributed,
                    ..
                }) => format!("{name}({args})"),
                Some(_) => {
                    let sep = if args.is_empty() { "" } else { ", " };
                    format!(
                        "Replicated{name}('/clickhouse/tables/{{shard}}/{db}/{table}_local', '{{replica}}'{sep}{args})"
                    )
                }
            }
        }
        _ => {
            return Err(RenderError::UnknownPlaceholder {
                version,
                placeholder: ph.to_string(),
            })
        }
    })
}

/// The bookkeeping table's DDL (created before any migration runs).
pub fn migrations_table_ddl(opts: &RenderOptions) -> String {
    let db = &opts.database;
    // Distributed replication: each node keeps its own record (the caller migrates
    // every node), so the plain table, as on one node.
    match opts.on_cluster() {
        None => format!(
            "CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE} (version UInt32, name String, \
             applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version"
        ),
        Some(c) => format!(
            "CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE} ON CLUSTER '{c}' (version UInt32, \
             name String, applied_at DateTime DEFAULT now()) ENGINE = \
             ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{db}/{MIGRATIONS_TABLE}', \
             '{{replica}}') ORDER BY version"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_render_on_one_node() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "versions are 1, 2, 3, … without gaps");
            let stmts = render(m, &RenderOptions::single("kev")).unwrap();
            assert!(!stmts.is_empty());
            for s in &stmts {
                assert!(!s.contains("{{"), "unrendered placeholder in {s}");
                assert!(!s.contains("_local"), "single node has no local tables: {s}");
                assert!(!s.contains("Replicated"), "{s}");
                assert!(s.contains("IF NOT EXISTS") || s.contains("CREATE OR REPLACE"), "statements must be idempotent: {s}");
            }
        }
    }

    #[test]
    fn cluster_rendering_uses_replicated_engines_and_distributed_tables() {
        let opts = RenderOptions {
            database: "kev".into(),
            cluster: Some("fleet".into()),
            ttl_days: 7,
        };
        let stmts = render(&MIGRATIONS[0], &opts).unwrap();
        let events = stmts.iter().find(|s| s.contains("kev.events_local")).unwrap();
        assert!(events.contains("ON CLUSTER 'fleet'"), "{events}");
        assert!(
            events.contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/kev/events_local', '{replica}')"),
            "{events}"
        );
        assert!(events.contains("INTERVAL 7 DAY"));
        assert!(stmts.iter().any(|s| s.contains(
            "CREATE TABLE IF NOT EXISTS kev.events ON CLUSTER 'fleet' AS kev.events_local ENGINE = Distributed('fleet', 'kev', 'events_local', cityHash64(kafka_partition, src_partition))"
        )));
        assert!(migrations_table_ddl(&opts).contains("ReplicatedReplacingMergeTree"));
    }

    #[test]
    fn every_data_table_feeds_sink_progress_and_has_a_dedup_window() {
        let opts = RenderOptions::single("kev");
        let all: Vec<String> = MIGRATIONS.iter().flat_map(|m| render(m, &opts).unwrap()).collect();
        for table in ["events", "incidents", "patterns", "alerts", "cluster_heartbeats"] {
            let mv = all
                .iter()
                .find(|s| s.contains(&format!("MATERIALIZED VIEW IF NOT EXISTS kev.{table}_progress_mv")))
                .unwrap_or_else(|| panic!("no progress view for {table}"));
            assert!(mv.contains(&format!("'{table}' AS table_name")), "{mv}");
            assert!(mv.contains("TO kev.sink_progress"), "{mv}");
        }
        for s in all.iter().filter(|s| s.starts_with("CREATE TABLE")) {
            assert!(s.contains("non_replicated_deduplication_window"), "retries need the window: {s}");
        }
        let hourly = all.iter().find(|s| s.contains("TABLE IF NOT EXISTS kev.events_per_hour")).unwrap();
        assert!(hourly.contains("INTERVAL 365 DAY"), "{hourly}");
        let minute = all.iter().find(|s| s.contains("TABLE IF NOT EXISTS kev.events_per_minute")).unwrap();
        assert!(minute.contains("INTERVAL 30 DAY"), "{minute}");
    }

    #[test]
    fn cluster_rendering_of_state_tables_and_views() {
        let opts = RenderOptions {
            database: "kev".into(),
            cluster: Some("fleet".into()),
            ttl_days: 7,
        };
        let stmts = render(&MIGRATIONS[2], &opts).unwrap();
        let inc = stmts.iter().find(|s| s.contains("kev.incidents_local ON CLUSTER")).unwrap();
        assert!(
            inc.contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/kev/incidents_local', '{replica}', version)"),
            "{inc}"
        );
        assert!(stmts.iter().any(|s| s.contains(
            "kev.incidents ON CLUSTER 'fleet' AS kev.incidents_local ENGINE = Distributed('fleet', 'kev', 'incidents_local', cityHash64(id))"
        )));
        // Readers' views read the Distributed table; the progress views the local one.
        let latest = stmts.iter().find(|s| s.contains("incidents_latest")).unwrap();
        assert!(latest.contains("ON CLUSTER 'fleet'") && latest.contains("FROM kev.incidents FINAL"), "{latest}");
        let mv = stmts.iter().find(|s| s.contains("incidents_progress_mv_local")).unwrap();
        assert!(mv.contains("TO kev.sink_progress_local") && mv.contains("FROM kev.incidents_local"), "{mv}");
        let rollups = render(&MIGRATIONS[1], &opts).unwrap();
        let hourly = rollups.iter().find(|s| s.contains("kev.events_per_hour_local ON CLUSTER")).unwrap();
        assert!(hourly.contains("ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/kev/events_per_hour_local', '{replica}')"), "{hourly}");
        assert!(rollups.iter().any(|s| s.contains("Distributed('fleet', 'kev', 'events_per_minute_local', cityHash64(cluster))")));
    }

    #[test]
    fn distributed_replication_renders_plain_engines_without_on_cluster() {
        let opts = RenderOptions {
            database: "kev".into(),
            cluster: Some(ClusterTarget { name: "fleet".into(), replication: Replication::Distributed }),
            ttl_days: 7,
        };
        let all: Vec<String> = MIGRATIONS.iter().flat_map(|m| render(m, &opts).unwrap()).collect();
        for s in &all {
            assert!(!s.contains("ON CLUSTER"), "each node gets the DDL itself: {s}");
            assert!(!s.contains("Replicated"), "{s}");
            assert!(!s.contains("{{"), "{s}");
        }
        let events = all.iter().find(|s| s.contains("TABLE IF NOT EXISTS kev.events_local")).unwrap();
        assert!(events.contains("ENGINE = ReplacingMergeTree()"), "{events}");
        assert!(all.iter().any(|s| s
            == "CREATE TABLE IF NOT EXISTS kev.events AS kev.events_local ENGINE = Distributed('fleet', 'kev', 'events_local', cityHash64(kafka_partition, src_partition))"));
        let mv = all.iter().find(|s| s.contains("kev.events_progress_mv_local")).unwrap();
        assert!(mv.contains("TO kev.sink_progress_local") && mv.contains("FROM kev.events_local"), "{mv}");
        let migrations = migrations_table_ddl(&opts);
        assert!(!migrations.contains("ON CLUSTER") && !migrations.contains("Replicated"), "{migrations}");
    }

    #[test]
    fn unknown_placeholders_are_errors() {
        let m = Migration { version: 9, name: "bad", sql: "CREATE TABLE IF NOT EXISTS {{nope}} (x UInt8);" };
        assert_eq!(
            render(&m, &RenderOptions::single("d")),
            Err(RenderError::UnknownPlaceholder { version: 9, placeholder: "nope".into() })
        );
    }
}
