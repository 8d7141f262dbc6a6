//! Every metric the sink exports, in one place so names do not drift.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

type HistFamily = Family<TableLabel, Histogram, fn() -> Histogram>;

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 10))
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The sink's metrics. Cheap to clone (each metric is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    /// Rows ClickHouse acknowledged, by table.
    pub rows_inserted: Family<TableLabel, Counter>,
    /// Records dropped because `sink_progress` says they are stored already
    /// (replays after a processor or sink restart), by table.
    pub replays_skipped: Family<TableLabel, Counter>,
    /// Rows per INSERT, by table.
    pub batch_rows: HistFamily,
    /// Seconds from the start of an INSERT attempt to ClickHouse's acknowledgement.
    pub insert_latency: HistFamily,
    /// Failed INSERT attempts that were retried, by table.
    pub insert_retries: Family<TableLabel, Counter>,
    /// INSERTs ClickHouse refused with a permanent error (each bisected), by table.
    pub insert_rejections: Family<TableLabel, Counter>,
    /// Messages behind the partition's end, from librdkafka statistics.
    pub consumer_lag: Family<PartitionLabel, Gauge>,
    /// Records sent to the dead-letter topic (undecodable, or rows ClickHouse
    /// rejects), by source topic.
    pub dead_lettered: Family<TopicLabel, Counter>,
    /// Offset commits that failed (harmless for correctness: a replay is skipped).
    pub commit_failures: Counter,
}

impl Metrics {
    pub fn register(reg: &mut Registry) -> Self {
        let m = Metrics {
            rows_inserted: Default::default(),
            replays_skipped: Default::default(),
            batch_rows: Family::new_with_constructor(batch_histogram),
            insert_latency: Family::new_with_constructor(latency_histogram),
            insert_retries: Default::default(),
            insert_rejections: Default::default(),
            consumer_lag: Default::default(),
            dead_lettered: Default::default(),
            commit_failures: Default::default(),
        };
        let r = reg.sub_registry_with_prefix("kevents_sink");
        r.register("rows_inserted", "Rows acknowledged by ClickHouse by table", m.rows_inserted.clone());
        r.register("replays_skipped", "Records already stored (at or below sink_progress) by table", m.replays_skipped.clone());
        r.register("batch_rows", "Rows per INSERT by table", m.batch_rows.clone());
        r.register("insert_latency_seconds", "INSERT attempt to acknowledgement by table", m.insert_latency.clone());
        r.register("insert_retries", "Failed INSERT attempts that were retried by table", m.insert_retries.clone());
        r.register("insert_rejections", "INSERTs refused with a permanent error (then bisected) by table", m.insert_rejections.clone());
        r.register("consumer_lag", "Messages behind the end of the partition", m.consumer_lag.clone());
        r.register("dead_lettered", "Records sent to the dead-letter topic (undecodable, or rejected by ClickHouse) by source topic", m.dead_lettered.clone());
        r.register("commit_failures", "Kafka offset commits that failed", m.commit_failures.clone());
        m
    }

    pub fn table(t: &str) -> TableLabel {
        TableLabel { table: t.to_string() }
    }
}
