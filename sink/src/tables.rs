//! The five tables the sink loads, and the per-table batch ([`Loader`]): decode a
//! message, drop replays (see `progress`), buffer the row, and write the batch when
//! it is full or old enough.
//!
//! One [`Table`] impl per table ties a topic's record type to its row type; the
//! consume loop holds the loaders as `dyn TableLoader` and never names a record type.

use crate::batch::{Batch, BoxFuture, Job, Originals};
use crate::insert;
use crate::progress::{self, Marks, Verdict};
use crate::rows::{AlertRow, EventRow, HeartbeatRow, IncidentRow, PatternRow, Positioned};
use clickhouse::{Row, RowOwned, RowWrite};
use schemas::avro::{AvroRecord, Codec, CodecError};
use schemas::records::{Alert, ClusterHeartbeat, Incident, Pattern, ProcessedEvent};
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A table: its name (in ClickHouse and in `sink_progress`), record and row types.
pub trait Table: Send + Sync + 'static {
    const NAME: &'static str;
    type Record: AvroRecord + Send;
    type Row: Row + RowOwned + RowWrite + serde::Serialize + Positioned + Send + Sync + 'static;
    fn row(record: Self::Record, kafka_partition: i32) -> Self::Row;
}

macro_rules! table {
    ($t:ident, $name:literal, $rec:ty, $row:ty) => {
        #[doc = concat!("The `", $name, "` table.")]
        pub struct $t;
        impl Table for $t {
            const NAME: &'static str = $name;
            type Record = $rec;
            type Row = $row;
            fn row(record: $rec, kafka_partition: i32) -> $row {
                <$row>::new(record, kafka_partition)
            }
        }
    };
}
table!(Events, "events", ProcessedEvent, EventRow);
table!(Incidents, "incidents", Incident, IncidentRow);
table!(Patterns, "patterns", Pattern, PatternRow);
table!(Alerts, "alerts", Alert, AlertRow);
table!(Heartbeats, "cluster_heartbeats", ClusterHeartbeat, HeartbeatRow);

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Buffered,
    /// Stored already (at or below the mark).
    Replay,
}

/// The open batch, taken for the writer: the job, and the offsets to commit once
/// it is written, per partition (the next offset to read).
pub struct Taken {
    pub job: Box<dyn Job>,
    pub commit: Vec<(i32, i64)>,
}

/// The object-safe face of a [`Loader`] the consume loop works with.
pub trait TableLoader: Send {
    fn table(&self) -> &'static str;
    fn topic(&self) -> &str;
    /// Decode and buffer one message (or recognise it as a replay), keeping its
    /// key and bytes for the dead-letter topic should ClickHouse reject the row. A
    /// decode error is permanent: the caller dead-letters the message and calls
    /// [`TableLoader::consumed`] for it.
    fn push(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, payload: &[u8]) -> Result<Pushed, CodecError>;
    /// Note a message that produced no row (dead-lettered), so its offset is committed
    /// with the next batch.
    fn consumed(&mut self, partition: i32, offset: i64);
    /// When the open batch must be written (None: nothing open).
    fn deadline(&self) -> Option<Instant>;
    fn is_full(&self) -> bool;
    /// Whether anything was consumed since the last [`TableLoader::take`].
    fn is_open(&self) -> bool;
    /// Take the open batch (possibly without rows: offsets of replays and
    /// dead-lettered records to commit in order behind the batches before it).
    fn take(&mut self) -> Taken;
    /// Load the marks of newly assigned partitions.
    fn assign<'a>(
        &'a mut self,
        client: &'a clickhouse::Client,
        partitions: &'a [i32],
    ) -> BoxFuture<'a, Result<(), clickhouse::error::Error>>;
    /// Forget revoked partitions: their marks and their unwritten rows (the new
    /// owner reads them again from the committed offset).
    fn revoke(&mut self, partitions: &[i32]);
}

/// The open batch of one table.
pub struct Loader<T: Table> {
    topic: String,
    codec: std::sync::Arc<Codec>,
    marks: Marks,
    rows: Vec<T::Row>,
    /// The record behind each row, in row order.
    originals: Originals,
    /// Per partition: first and last offset consumed since the last flush.
    ranges: BTreeMap<i32, (i64, i64)>,
    opened: Option<Instant>,
    max_rows: usize,
    max_wait: Duration,
    metrics: crate::metrics::Metrics,
    _t: PhantomData<T>,
}

impl<T: Table> Loader<T> {
    pub fn new(
        topic: &str,
        codec: std::sync::Arc<Codec>,
        max_rows: usize,
        max_wait: Duration,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        Loader {
            topic: topic.to_string(),
            codec,
            marks: Marks::default(),
            rows: Vec::new(),
            originals: Originals::default(),
            ranges: BTreeMap::new(),
            opened: None,
            max_rows,
            max_wait,
            metrics,
            _t: PhantomData,
        }
    }

    fn note(&mut self, partition: i32, offset: i64) {
        self.ranges
            .entry(partition)
            .and_modify(|r| r.1 = r.1.max(offset))
            .or_insert((offset, offset));
        self.opened.get_or_insert_with(Instant::now);
    }
}

impl<T: Table> TableLoader for Loader<T> {
    fn table(&self) -> &'static str {
        T::NAME
    }

    fn topic(&self) -> &str {
        &self.topic
    }

    fn push(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, payload: &[u8]) -> Result<Pushed, CodecError> {
        let record: T::Record = self.codec.decode(payload)?;
        self.note(partition, offset);
        let row = T::row(record, partition);
        match self.marks.accept(partition, row.source()) {
            Verdict::Accept => {
                self.rows.push(row);
                self.originals.push(partition, offset, key, payload);
                Ok(Pushed::Buffered)
            }
            Verdict::Replay => {
                self.metrics.replays_skipped.get_or_create(&crate::metrics::Metrics::table(T::NAME)).inc();
                Ok(Pushed::Replay)
            }
        }
    }

    fn consumed(&mut self, partition: i32, offset: i64) {
        self.note(partition, offset);
    }

    fn deadline(&self) -> Option<Instant> {
        self.opened.map(|t| t + self.max_wait)
    }

    fn is_full(&self) -> bool {
        self.rows.len() >= self.max_rows
    }

    fn is_open(&self) -> bool {
        !self.ranges.is_empty()
    }

    fn take(&mut self) -> Taken {
        let ranges: Vec<(i32, i64, i64)> = self.ranges.iter().map(|(p, (a, b))| (*p, *a, *b)).collect();
        let rows = std::mem::take(&mut self.rows);
        let token = insert::token(T::NAME, &self.topic, &ranges, rows.len());
        let commit = ranges.iter().map(|(p, _, last)| (*p, last + 1)).collect();
        self.ranges.clear();
        self.opened = None;
        let job = Box::new(Batch {
            table: T::NAME,
            topic: self.topic.clone(),
            token,
            rows,
            originals: std::mem::take(&mut self.originals),
        });
        Taken { job, commit }
    }

    fn assign<'a>(
        &'a mut self,
        client: &'a clickhouse::Client,
        partitions: &'a [i32],
    ) -> BoxFuture<'a, Result<(), clickhouse::error::Error>> {
        Box::pin(async move {
            let loaded: HashMap<i32, HashMap<i32, (i64, i32)>> = progress::load(client, T::NAME, partitions).await?;
            for (p, m) in loaded {
                tracing::debug!(table = T::NAME, partition = p, marks = ?m, "loaded high-water marks");
                self.marks.set_partition(p, m);
            }
            Ok(())
        })
    }

    fn revoke(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.marks.forget(*p);
            self.ranges.remove(p);
        }
        let keep: Vec<bool> = self.rows.iter().map(|r| !partitions.contains(&r.kafka_partition())).collect();
        let mut i = 0;
        self.rows.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        self.originals.retain_by(&keep);
        if self.ranges.is_empty() {
            self.opened = None;
        }
    }
}
