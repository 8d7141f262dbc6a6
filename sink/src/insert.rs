//! One batch into ClickHouse: a RowBinary INSERT with a deduplication token,
//! retried with backoff until ClickHouse acknowledges it or the sink is told to stop.
//!
//! Why a retry cannot double rows: the token names the batch (table, topic, and the
//! first..last offset of every Kafka partition in it, plus the row count), and every
//! attempt sends the same rows with the same token. When an earlier attempt did land
//! but its acknowledgement was lost, ClickHouse drops the repeated block — in the
//! table (`non_replicated_deduplication_window` on one node; always on replicated
//! tables) and, with `deduplicate_blocks_in_dependent_materialized_views`, in the
//! rollups and `sink_progress` fed by its views. (Verified against ClickHouse 26.9 by
//! `tests/exactly_once.rs`.) Across restarts the batches differ, and the marks of
//! `progress` do that job instead.
//!
//! Retryable errors are retried; a permanent one (see `classify`) is returned to the
//! caller, which bisects the batch (see `batch`).

use runtime::backoff::Backoff;
use crate::classify::{Class, Rules};
use crate::metrics::Metrics;
use crate::retrying::Failing;
use clickhouse::{Row, RowOwned, RowWrite};
use runtime::ops::Health;
use std::time::{Duration, Instant};

/// Why a batch was not inserted.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// The sink is stopping; the batch's offsets are not committed, so the next run
    /// reads (and, thanks to the marks, skips or inserts) them again.
    #[error("stopped while retrying an insert into {table}: {last}")]
    Stopped { table: String, last: String },
    /// ClickHouse refuses these rows (a permanent error, see `classify`): retrying
    /// cannot help. `message` is the server's.
    #[error("ClickHouse rejects the rows for {table}: {message}")]
    Rejected { table: String, code: Option<u32>, message: String },
    /// The writer task panicked (a bug); reported by the writer, never retried.
    #[error("the writer panicked while writing into {table}")]
    Panicked { table: String },
}

/// What an INSERT needs: the client and the retry settings. Cheap to clone.
#[derive(Clone)]
pub struct InsertCtx {
    pub client: clickhouse::Client,
    pub metrics: Metrics,
    pub health: Health,
    pub failing: Failing,
    pub max_backoff: Duration,
    pub timeout: Duration,
    pub stop: runtime::shutdown::CancellationToken,
}

/// The readiness condition that says whether ClickHouse takes our inserts.
pub const READY_CLICKHOUSE: &str = "clickhouse";

async fn attempt<R>(ctx: &InsertCtx, table: &str, rows: &[R], token: &str) -> Result<(), clickhouse::error::Error>
where
    R: Row + RowOwned + RowWrite + serde::Serialize,
{
    let mut insert = ctx
        .client
        .insert::<R>(table)
        .await?
        .with_setting("insert_deduplication_token", token)
        .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1")
        .with_timeouts(Some(ctx.timeout), Some(ctx.timeout));
    for r in rows {
        insert.write(r).await?;
    }
    insert.end().await
}

/// Insert `rows` into `table`, retrying retryable errors until acknowledged (or
/// stopped); a permanent error returns [`InsertError::Rejected`] at once.
pub async fn insert_batch<R>(ctx: &mut InsertCtx, table: &str, rows: &[R], token: &str) -> Result<(), InsertError>
where
    R: Row + RowOwned + RowWrite + serde::Serialize,
{
    let label = Metrics::table(table);
    let mut backoff = Backoff::up_to(ctx.max_backoff);
    let mut streak = None;
    loop {
        let started = Instant::now();
        let e = match attempt(ctx, table, rows, token).await {
            Ok(()) => {
                ctx.metrics.insert_latency.get_or_create(&label).observe(started.elapsed().as_secs_f64());
                ctx.metrics.batch_rows.get_or_create(&label).observe(rows.len() as f64);
                ctx.metrics.rows_inserted.get_or_create(&label).inc_by(rows.len() as u64);
                ctx.health.set_ready(READY_CLICKHOUSE, true, "inserts acknowledged");
                return Ok(());
            }
            Err(e) => e,
        };
        let failure = Rules::builtin().classify(&e);
        if failure.class == Class::Permanent {
            ctx.metrics.insert_rejections.get_or_create(&label).inc();
            tracing::warn!(table, rows = rows.len(), code = ?failure.code, error = %failure.message, "ClickHouse rejects the batch (permanent)");
            return Err(InsertError::Rejected { table: table.to_string(), code: failure.code, message: failure.message });
        }
        streak.get_or_insert_with(|| ctx.failing.streak());
        ctx.metrics.insert_retries.get_or_create(&label).inc();
        ctx.health.set_ready(READY_CLICKHOUSE, false, format!("insert into {table} failing: {e}"));
        let delay = backoff.next_delay(None);
        tracing::warn!(table, rows = rows.len(), code = ?failure.code, error = %e, retry_in_ms = delay.as_millis() as u64, "insert failed (retryable); retrying the same batch");
        // Still alive: retrying is progress of a kind the operator sees in logs,
        // metrics and /readyz, not a silent stall; the `clickhouse` probe (see
        // `retrying`) fails /healthz when it lasts too long.
        ctx.health.touch(crate::consume::PROBE);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ctx.stop.cancelled() => {
                return Err(InsertError::Stopped { table: table.to_string(), last: e.to_string() });
            }
        }
    }
}

/// The deduplication token of a batch: what it is, not when it was sent.
pub fn token(table: &str, topic: &str, ranges: &[(i32, i64, i64)], rows: usize) -> String {
    let mut parts: Vec<String> = vec![table.to_string(), topic.to_string(), rows.to_string()];
    parts.extend(ranges.iter().map(|(p, a, b)| format!("{p}:{a}-{b}")));
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    format!("kevents-{}", schemas::ids::stable_id(&refs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_the_content() {
        let a = token("events", "t", &[(0, 1, 10), (1, 5, 6)], 12);
        assert_eq!(a, token("events", "t", &[(0, 1, 10), (1, 5, 6)], 12));
        assert_ne!(a, token("events", "t", &[(0, 1, 11), (1, 5, 6)], 12));
        assert_ne!(a, token("events", "t", &[(0, 1, 10), (1, 5, 6)], 11));
        assert_ne!(a, token("alerts", "t", &[(0, 1, 10), (1, 5, 6)], 12));
    }
}
