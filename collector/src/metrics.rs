//! Every metric the collector exports, in one place so names do not drift.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: String,
}

/// The collector's metrics. Cheap to clone (each metric is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    /// Watch events received, by type (ADDED, MODIFIED, DELETED, BOOKMARK, RELISTED).
    pub received: Family<TypeLabel, Counter>,
    /// Records acknowledged by Kafka, by type (incl. HEARTBEAT).
    pub published: Family<TypeLabel, Counter>,
    /// Events dropped by drop rules.
    pub dropped: Family<RuleLabel, Counter>,
    /// Watch (re)starts, by cause (start, timeout, closed, error, empty, gone, idle).
    pub watch_restarts: Family<CauseLabel, Counter>,
    pub gone_410: Counter,
    pub relists: Counter,
    /// Stale-RV watches answered with an empty 200 (kubernetes #104171).
    pub empty_watches: Counter,
    /// resourceVersion went backwards (etcd restore): the cursor was reset.
    pub rv_resets: Counter,
    /// Seconds from send to Kafka acknowledgement.
    pub publish_latency: Histogram,
    /// Seconds from the event's last-seen time to its acknowledgement.
    pub end_to_end_lag: Histogram,
    /// Records waiting for Kafka acknowledgement.
    pub queue_depth: Gauge,
    /// Bytes (value + key) of the records waiting for Kafka acknowledgement; at most
    /// `max_in_flight_bytes` (plus one record larger than it).
    pub queue_bytes: Gauge,
    /// Unix seconds of the last bookmark seen.
    pub last_bookmark: Gauge<f64, AtomicU64>,
    /// Relists from a known cursor (after 410 or desync): each is a window in which
    /// changes were compacted away, so events deleted meanwhile may be missing.
    pub possible_gaps: Counter,
    /// 1 while this replica is the leader (or leader election is off).
    pub leader: Gauge,
}

impl Metrics {
    pub fn register(reg: &mut Registry) -> Self {
        let m = Metrics {
            received: Default::default(),
            published: Default::default(),
            dropped: Default::default(),
            watch_restarts: Default::default(),
            gone_410: Default::default(),
            relists: Default::default(),
            empty_watches: Default::default(),
            rv_resets: Default::default(),
            publish_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            end_to_end_lag: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            queue_depth: Default::default(),
            queue_bytes: Default::default(),
            last_bookmark: Default::default(),
            possible_gaps: Default::default(),
            leader: Default::default(),
        };
        let r = reg.sub_registry_with_prefix("kevents_collector");
        r.register("events_received", "Watch events received by type", m.received.clone());
        r.register("records_published", "Records acknowledged by Kafka by type", m.published.clone());
        r.register("events_dropped", "Events dropped by drop rules", m.dropped.clone());
        r.register("watch_restarts", "Watch (re)starts by cause", m.watch_restarts.clone());
        r.register("gone", "410 Gone answers", m.gone_410.clone());
        r.register("relists", "Relists after 410 or desync", m.relists.clone());
        r.register("empty_watches", "Stale watches answered with an empty 200", m.empty_watches.clone());
        r.register("rv_resets", "resourceVersion resets detected", m.rv_resets.clone());
        r.register("publish_latency_seconds", "Send to Kafka acknowledgement", m.publish_latency.clone());
        r.register("end_to_end_lag_seconds", "Event last-seen time to Kafka acknowledgement", m.end_to_end_lag.clone());
        r.register("queue_depth", "Records waiting for Kafka acknowledgement", m.queue_depth.clone());
        r.register("queue_bytes", "Bytes of the records waiting for Kafka acknowledgement", m.queue_bytes.clone());
        r.register("last_bookmark_timestamp_seconds", "Unix time of the last bookmark", m.last_bookmark.clone());
        r.register("possible_gaps", "Relists from a known cursor: windows where events may be missing", m.possible_gaps.clone());
        r.register("leader", "1 while this replica publishes", m.leader.clone());
        m
    }

    pub fn received(&self, ty: &str) {
        self.received.get_or_create(&TypeLabel { r#type: ty.into() }).inc();
    }

    pub fn published(&self, ty: &str) {
        self.published.get_or_create(&TypeLabel { r#type: ty.into() }).inc();
    }

    pub fn restart(&self, cause: &str) {
        self.watch_restarts.get_or_create(&CauseLabel { cause: cause.into() }).inc();
    }
}
