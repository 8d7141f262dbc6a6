//! Applying the ClickHouse migrations of `schemas::clickhouse` at start-up (or by
//! `kevents migrate`).
//!
//! Rules:
//! - The database and `kevents_migrations` are created first; a migration's
//!   version is recorded there only after all its statements ran. Every statement
//!   is `IF NOT EXISTS`, so a half-applied migration is simply run again.
//! - Re-running is a no-op (idempotent); two sinks starting at once may both run a
//!   migration, which is harmless for the same reason.
//! - A newer sink on an older database applies the versions it is missing.
//! - An older sink on a newer database (versions it does not know) continues when
//!   all the versions it knows are present, and warns: migrations only add, so
//!   the tables it writes still accept its rows.
//! - On a cluster with Keeper replication one server runs everything `ON CLUSTER`.
//!   With `Distributed` replication (nodes without a DDLWorker, such as chdb: `ON
//!   CLUSTER` fails there with "Replicated DDL queries are disabled") [`apply_each_node`]
//!   runs the same rules on every node, each with its own `kevents_migrations`, after
//!   checking the nodes it was given are exactly the cluster's members.

use clickhouse::Row;
use schemas::clickhouse::{
    migrations_table_ddl, render, Migration, RenderError, RenderOptions, Replication, MIGRATIONS, MIGRATIONS_TABLE,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("migration {version} ({name}), statement {index}: {source}\n{sql}")]
    Statement {
        version: u32,
        name: &'static str,
        index: usize,
        sql: String,
        source: clickhouse::error::Error,
    },
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("database {database} lacks migrations {missing:?}; run `kevents migrate` (or enable `migrate`)")]
    Missing { database: String, missing: Vec<u32> },
    #[error("cluster {cluster}: system.clusters lists {members:?}, clickhouse.cluster_nodes are {nodes:?} (host:native port); they must be the same nodes")]
    ClusterNodes { cluster: String, members: Vec<String>, nodes: Vec<String> },
}

/// One node of a cluster: its HTTP URL (for messages and its host) and a client.
#[derive(Clone)]
pub struct Node {
    pub url: String,
    pub client: clickhouse::Client,
}

#[derive(Debug, Row, Deserialize)]
struct Member {
    host_name: String,
    port: u16,
}

/// Check that `nodes` are exactly the members of `cluster` as `entry` sees them in
/// `system.clusters` (by host and native port: a node reports its own with
/// `tcpPort()`), so that no node is left without tables.
pub async fn check_members(entry: &clickhouse::Client, cluster: &str, nodes: &[Node]) -> Result<(), MigrateError> {
    let members: Vec<Member> = entry
        .query("SELECT host_name, port FROM system.clusters WHERE cluster = ?")
        .bind(cluster)
        .fetch_all()
        .await?;
    let mut members: Vec<String> = members.iter().map(|m| format!("{}:{}", m.host_name, m.port)).collect();
    let mut listed = Vec::with_capacity(nodes.len());
    for n in nodes {
        let port: u16 = n.client.query("SELECT tcpPort()").fetch_one().await?;
        listed.push(format!("{}:{port}", url_host(&n.url)));
    }
    members.sort();
    listed.sort();
    if members.is_empty() || members != listed {
        return Err(MigrateError::ClusterNodes { cluster: cluster.to_string(), members, nodes: listed });
    }
    Ok(())
}

fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    }
}

/// Apply the migrations on every node of a cluster with `Distributed` replication
/// (`opts.cluster` names it): check the nodes against `system.clusters` on `entry`,
/// then [`apply`] on each. The report merges the nodes': `applied` holds a version
/// any node lacked.
pub async fn apply_each_node(entry: &clickhouse::Client, nodes: &[Node], opts: &RenderOptions) -> Result<Report, MigrateError> {
    if let Some(c) = &opts.cluster {
        check_members(entry, &c.name, nodes).await?;
    }
    let mut merged = Report::default();
    for n in nodes {
        let r = apply(&n.client, opts).await?;
        tracing::debug!(node = %n.url, report = ?r, "migrations on cluster node");
        merge(&mut merged, r);
    }
    merged.present.retain(|v| !merged.applied.contains(v));
    Ok(merged)
}

/// [`check`] on every node (`migrate: false` with `Distributed` replication).
pub async fn check_each_node(entry: &clickhouse::Client, cluster: &str, nodes: &[Node], database: &str) -> Result<Report, MigrateError> {
    check_members(entry, cluster, nodes).await?;
    let mut merged = Report::default();
    for n in nodes {
        merge(&mut merged, check(&n.client, database).await?);
    }
    Ok(merged)
}

fn merge(into: &mut Report, r: Report) {
    for (all, new) in [(&mut into.applied, r.applied), (&mut into.present, r.present), (&mut into.unknown, r.unknown)] {
        all.extend(new);
        all.sort_unstable();
        all.dedup();
    }
}

/// What [`apply`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Versions applied by this call.
    pub applied: Vec<u32>,
    /// Known versions that were already there.
    pub present: Vec<u32>,
    /// Versions in the database that this build does not know (a newer sink ran).
    pub unknown: Vec<u32>,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct Applied {
    version: u32,
    name: String,
}

/// Apply every known migration that `client`'s server lacks. `client` needs no
/// default database.
pub async fn apply(client: &clickhouse::Client, opts: &RenderOptions) -> Result<Report, MigrateError> {
    apply_list(client, opts, MIGRATIONS).await
}

/// [`apply`] with an explicit list (tests play an older sink with a prefix of it).
pub async fn apply_list(
    client: &clickhouse::Client,
    opts: &RenderOptions,
    migrations: &[Migration],
) -> Result<Report, MigrateError> {
    let on_cluster = match &opts.cluster {
        Some(c) if c.replication == Replication::Keeper => format!(" ON CLUSTER '{}'", c.name),
        _ => String::new(),
    };
    client
        .query_raw(&format!("CREATE DATABASE IF NOT EXISTS {}{on_cluster}", opts.database))
        .execute()
        .await?;
    client.query_raw(&migrations_table_ddl(opts)).execute().await?;
    let have = applied_versions(client, &opts.database).await?;
    let mut report = Report::default();
    for m in migrations {
        if have.contains(&m.version) {
            report.present.push(m.version);
            continue;
        }
        for (index, sql) in render(m, opts)?.into_iter().enumerate() {
            client.query_raw(&sql).execute().await.map_err(|source| MigrateError::Statement {
                version: m.version,
                name: m.name,
                index,
                sql: sql.clone(),
                source,
            })?;
        }
        let mut ins = client.clone().with_database(&opts.database).insert::<Applied>(MIGRATIONS_TABLE).await?;
        ins.write(&Applied { version: m.version, name: m.name.to_string() }).await?;
        ins.end().await?;
        tracing::info!(version = m.version, name = m.name, database = %opts.database, "migration applied");
        report.applied.push(m.version);
    }
    report.unknown = unknown(&have, migrations);
    warn_unknown(&report, &opts.database);
    Ok(report)
}

/// Check without changing anything: every known migration must be present.
pub async fn check(client: &clickhouse::Client, database: &str) -> Result<Report, MigrateError> {
    let exists: u8 = client
        .query("SELECT count() > 0 FROM system.tables WHERE database = ? AND name = ?")
        .bind(database)
        .bind(MIGRATIONS_TABLE)
        .fetch_one()
        .await?;
    let have = if exists == 1 { applied_versions(client, database).await? } else { Vec::new() };
    let missing: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).filter(|v| !have.contains(v)).collect();
    if !missing.is_empty() {
        return Err(MigrateError::Missing { database: database.to_string(), missing });
    }
    let report = Report {
        applied: vec![],
        present: MIGRATIONS.iter().map(|m| m.version).collect(),
        unknown: unknown(&have, MIGRATIONS),
    };
    warn_unknown(&report, database);
    Ok(report)
}

async fn applied_versions(client: &clickhouse::Client, database: &str) -> Result<Vec<u32>, clickhouse::error::Error> {
    client
        .query(&format!("SELECT DISTINCT version FROM {database}.{MIGRATIONS_TABLE} ORDER BY version"))
        .fetch_all::<u32>()
        .await
}

fn unknown(have: &[u32], known: &[Migration]) -> Vec<u32> {
    have.iter().copied().filter(|v| !known.iter().any(|m| m.version == *v)).collect()
}

fn warn_unknown(report: &Report, database: &str) {
    if !report.unknown.is_empty() {
        tracing::warn!(
            database,
            unknown = ?report.unknown,
            "the database has migrations this sink does not know (a newer kevents applied them); \
             continuing, since all migrations this sink needs are present — upgrade the sink"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_hosts_come_from_their_urls() {
        assert_eq!(url_host("http://127.0.0.1:8123"), "127.0.0.1");
        assert_eq!(url_host("https://user@ch-0.ch:8443/"), "ch-0.ch");
        assert_eq!(url_host("http://clickhouse"), "clickhouse");
    }

    #[test]
    fn merged_reports_say_what_any_node_lacked() {
        let mut m = Report::default();
        merge(&mut m, Report { applied: vec![], present: vec![1, 2], unknown: vec![] });
        merge(&mut m, Report { applied: vec![2], present: vec![1], unknown: vec![9] });
        m.present.retain(|v| !m.applied.contains(v));
        assert_eq!(m, Report { applied: vec![2], present: vec![1], unknown: vec![9] });
    }

    #[test]
    fn unknown_versions_are_the_ones_not_in_the_list() {
        assert_eq!(unknown(&[1, 2, 3, 9], &MIGRATIONS[..2]), vec![3, 9]);
        assert!(unknown(&[1], MIGRATIONS).is_empty());
    }
}
