//! Exactly-once loading: the high-water marks of `sink_progress`.
//!
//! Every row carries its raw position (`src_partition`, `src_offset`, `src_seq`) and
//! the Kafka partition it was read from. A materialized view per table writes
//! `maxState((src_offset, src_seq))` per (table, kafka partition, raw partition) into
//! `sink_progress` in the same INSERT as the rows (migrations 0001/0003), so the mark
//! never says more than what is stored.
//!
//! The processor writes outputs in input order, so within one Kafka partition the
//! positions of one raw partition only grow, and any replay (the processor
//! restarting and re-emitting, the sink re-reading uncommitted offsets) repeats
//! positions at or below the mark. [`Marks`] therefore keeps, per assigned Kafka
//! partition, the mark of each raw partition: loaded from ClickHouse when the
//! partition is assigned, advanced as records are accepted into a batch, and
//! forgotten when the partition is revoked (another sink may write it meanwhile).
//! Records at or below the mark are dropped.
//!
//! Records without a position (`SourcePos::default()`, partition -1: tools outside
//! the pipeline) are always accepted; the tables' ReplacingMergeTree collapses their
//! copies by id at merge time.

use clickhouse::Row;
use schemas::records::SourcePos;
use serde::Deserialize;
use std::collections::HashMap;

/// Per Kafka partition, per raw partition: the highest (offset, seq) stored.
#[derive(Debug, Default, Clone)]
pub struct Marks {
    by_kafka: HashMap<i32, HashMap<i32, (i64, i32)>>,
}

/// What [`Marks::accept`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New: insert it (the mark moved to it).
    Accept,
    /// At or below the mark: stored already.
    Replay,
}

impl Marks {
    /// Replace the marks of `kafka_partition` (on assignment).
    pub fn set_partition(&mut self, kafka_partition: i32, marks: HashMap<i32, (i64, i32)>) {
        self.by_kafka.insert(kafka_partition, marks);
    }

    /// Forget a partition (on revocation).
    pub fn forget(&mut self, kafka_partition: i32) {
        self.by_kafka.remove(&kafka_partition);
    }

    /// Whether marks were loaded for this partition.
    pub fn knows(&self, kafka_partition: i32) -> bool {
        self.by_kafka.contains_key(&kafka_partition)
    }

    /// Decide on a record read from `kafka_partition` and, if new, advance the mark.
    pub fn accept(&mut self, kafka_partition: i32, pos: SourcePos) -> Verdict {
        if pos.partition < 0 {
            return Verdict::Accept;
        }
        let marks = self.by_kafka.entry(kafka_partition).or_default();
        let here = (pos.offset, pos.seq);
        match marks.get(&pos.partition) {
            Some(m) if here <= *m => Verdict::Replay,
            _ => {
                marks.insert(pos.partition, here);
                Verdict::Accept
            }
        }
    }
}

#[derive(Debug, Row, Deserialize)]
struct MarkRow {
    kafka_partition: i32,
    src_partition: i32,
    high_water: (i64, i32),
}

/// Load the marks of `table` for the given Kafka partitions. `client` has the
/// kevents database as its default.
pub async fn load(
    client: &clickhouse::Client,
    table: &str,
    kafka_partitions: &[i32],
) -> Result<HashMap<i32, HashMap<i32, (i64, i32)>>, clickhouse::error::Error> {
    let rows: Vec<MarkRow> = client
        .query(
            "SELECT kafka_partition, src_partition, maxMerge(high_water) AS high_water \
             FROM sink_progress WHERE table_name = ? AND kafka_partition IN ? \
             GROUP BY kafka_partition, src_partition",
        )
        .bind(table)
        .bind(kafka_partitions)
        .fetch_all()
        .await?;
    let mut out: HashMap<i32, HashMap<i32, (i64, i32)>> =
        kafka_partitions.iter().map(|p| (*p, HashMap::new())).collect();
    for r in rows {
        out.entry(r.kafka_partition).or_default().insert(r.src_partition, r.high_water);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(partition: i32, offset: i64, seq: i32) -> SourcePos {
        SourcePos { partition, offset, seq }
    }

    #[test]
    fn replays_at_or_below_the_mark_are_dropped_per_partition_pair() {
        let mut m = Marks::default();
        m.set_partition(0, HashMap::from([(3, (10, 1))]));
        assert_eq!(m.accept(0, pos(3, 10, 1)), Verdict::Replay);
        assert_eq!(m.accept(0, pos(3, 9, 5)), Verdict::Replay);
        assert_eq!(m.accept(0, pos(3, 10, 2)), Verdict::Accept, "next output of the same input");
        assert_eq!(m.accept(0, pos(3, 10, 2)), Verdict::Replay, "a second copy in the same session");
        assert_eq!(m.accept(0, pos(4, 0, 0)), Verdict::Accept, "other raw partition");
        assert_eq!(m.accept(1, pos(3, 5, 0)), Verdict::Accept, "other Kafka partition has its own marks");
        assert_eq!(m.accept(0, pos(-1, -1, 0)), Verdict::Accept);
        assert_eq!(m.accept(0, pos(-1, -1, 0)), Verdict::Accept, "untracked records always pass");
        m.forget(0);
        assert!(!m.knows(0));
        assert_eq!(m.accept(0, pos(3, 1, 0)), Verdict::Accept);
    }
}
