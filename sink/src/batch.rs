//! A batch on its way into ClickHouse: the rows of one table, the original Kafka
//! records they came from, and how it is written — whole, or bisected when ClickHouse
//! refuses some of its rows.
//!
//! Guarantee: every row of the batch is either stored (once: a retried part carries
//! the same deduplication token) or sent to the dead-letter topic with ClickHouse's
//! message, before [`Job::write`] returns. A permanent error (see `classify`) splits
//! the part that failed in two and writes the halves, left first, down to single
//! rows; a single row ClickHouse still refuses is dead-lettered, with its original
//! key and bytes, *before* any later row of the batch is inserted. That order keeps
//! the high-water marks honest: a mark that moved past a rejected row was written by
//! an INSERT that came after the row reached the dead-letter topic, so a restart never
//! skips a rejected row that is in neither place. A batch with k bad rows out of n
//! costs about 2·k·log2(n) extra INSERTs; a batch that is wholly bad (a column gone
//! after a bad migration) costs 2n and sends every row to the dead-letter topic, which
//! is where they can be replayed from once the schema is fixed.

use crate::dlq;
use crate::insert::{self, InsertCtx, InsertError};
use crate::metrics::TopicLabel;
use clickhouse::{Row, RowOwned, RowWrite};
use rdkafka::producer::FutureProducer;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a row came from and its original bytes (in [`Originals`]' arena).
#[derive(Debug, Clone)]
struct Original {
    partition: i32,
    offset: i64,
    key: Option<Range<usize>>,
    value: Range<usize>,
}

/// The original records of a batch's rows, one per row, in row order. One arena per
/// batch: a copy per record, no allocation per record.
#[derive(Debug, Default)]
pub struct Originals {
    arena: Vec<u8>,
    items: Vec<Original>,
}

impl Originals {
    /// Keep the record behind the next row.
    pub fn push(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: &[u8]) {
        let key = key.map(|k| {
            let start = self.arena.len();
            self.arena.extend_from_slice(k);
            start..self.arena.len()
        });
        let start = self.arena.len();
        self.arena.extend_from_slice(value);
        self.items.push(Original { partition, offset, key, value: start..self.arena.len() });
    }

    /// Keep only the records whose `keep` is true (rows dropped on revocation).
    pub fn retain_by(&mut self, keep: &[bool]) {
        let mut i = 0;
        self.items.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// (partition, offset, key, value) of row `i`.
    pub fn get(&self, i: usize) -> (i32, i64, Option<&[u8]>, &[u8]) {
        let o = &self.items[i];
        (o.partition, o.offset, o.key.clone().map(|k| &self.arena[k]), &self.arena[o.value.clone()])
    }
}

/// What the writer needs besides the INSERT settings: where rejected rows go.
#[derive(Clone)]
pub struct WriteCtx {
    pub insert: InsertCtx,
    pub producer: FutureProducer,
    pub dlq_topic: String,
}

/// The outcome of a batch: rows stored and rows dead-lettered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub stored: usize,
    pub rejected: usize,
}

/// A batch the writer can run without knowing its row type.
pub trait Job: Send {
    fn table(&self) -> &'static str;
    fn rows(&self) -> usize;
    /// Insert (bisecting on permanent errors) until every row is stored or
    /// dead-lettered. `Err` only when stopped.
    fn write<'a>(self: Box<Self>, w: &'a mut WriteCtx) -> BoxFuture<'a, Result<Written, InsertError>>;
}

/// The rows of one table taken from a loader.
pub struct Batch<R> {
    pub table: &'static str,
    pub topic: String,
    pub token: String,
    pub rows: Vec<R>,
    pub originals: Originals,
}

impl<R> Job for Batch<R>
where
    R: Row + RowOwned + RowWrite + serde::Serialize + Send + Sync + 'static,
{
    fn table(&self) -> &'static str {
        self.table
    }

    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn write<'a>(self: Box<Self>, w: &'a mut WriteCtx) -> BoxFuture<'a, Result<Written, InsertError>> {
        Box::pin(async move { write_bisecting(*self, w).await })
    }
}

/// The token of the part `lo..hi` of a batch of `n` rows: the batch's own for the
/// whole, derived (and as deterministic) for a part.
pub fn part_token(token: &str, lo: usize, hi: usize, n: usize) -> String {
    if (lo, hi) == (0, n) {
        token.to_string()
    } else {
        format!("{token}/{lo}-{hi}")
    }
}

async fn write_bisecting<R>(b: Batch<R>, w: &mut WriteCtx) -> Result<Written, InsertError>
where
    R: Row + RowOwned + RowWrite + serde::Serialize + Send + Sync + 'static,
{
    let n = b.rows.len();
    let mut out = Written::default();
    // Parts still to write, the next one last: left halves go first.
    let mut todo: Vec<(usize, usize)> = if n > 0 { vec![(0, n)] } else { Vec::new() };
    while let Some((lo, hi)) = todo.pop() {
        let token = part_token(&b.token, lo, hi, n);
        match insert::insert_batch(&mut w.insert, b.table, &b.rows[lo..hi], &token).await {
            Ok(()) => out.stored += hi - lo,
            Err(InsertError::Rejected { message, code, .. }) if hi - lo == 1 => {
                let (partition, offset, key, value) = b.originals.get(lo);
                tracing::warn!(table = b.table, topic = %b.topic, partition, offset, ?code, reason = %message, "row rejected by ClickHouse → dead-letter topic");
                let letter = dlq::Letter { topic: &b.topic, partition, offset, key, payload: Some(value), reason: &message };
                let stop = w.insert.stop.clone();
                dlq::send(&w.producer, &w.dlq_topic, dlq::STAGE, &letter, &stop)
                    .await
                    .map_err(|last| InsertError::Stopped { table: b.table.to_string(), last })?;
                w.insert.metrics.dead_lettered.get_or_create(&TopicLabel { topic: b.topic.clone() }).inc();
                out.rejected += 1;
            }
            Err(InsertError::Rejected { .. }) => {
                let mid = lo + (hi - lo) / 2;
                todo.push((mid, hi));
                todo.push((lo, mid));
            }
            Err(e @ (InsertError::Stopped { .. } | InsertError::Panicked { .. })) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originals_keep_each_record_and_survive_a_filter() {
        let mut o = Originals::default();
        o.push(0, 10, Some(b"k0"), b"v0");
        o.push(1, 11, None, b"value-1");
        o.push(0, 12, Some(b"k2"), b"v2");
        assert_eq!(o.get(1), (1, 11, None, &b"value-1"[..]));
        o.retain_by(&[true, false, true]);
        assert_eq!(o.len(), 2);
        assert_eq!(o.get(1), (0, 12, Some(&b"k2"[..]), &b"v2"[..]));
    }

    #[test]
    fn part_tokens_are_the_batch_token_for_the_whole_and_distinct_per_part() {
        assert_eq!(part_token("t", 0, 8, 8), "t");
        assert_eq!(part_token("t", 0, 4, 8), "t/0-4");
        assert_ne!(part_token("t", 0, 4, 8), part_token("t", 4, 8, 8));
    }
}
