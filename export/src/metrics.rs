//! Every `kevents_export_*` metric, in one place so names and labels do not drift.
//! A down endpoint shows as `requests{result="retried"}` growing while
//! `records{outcome="exported"}` stays flat; a wrong token as
//! `requests{result="refused"}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::send::Signal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabel {
    pub topic: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    pub signal: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabel {
    pub signal: String,
}

/// Cheap to clone (each metric is an `Arc` inside).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Kafka records done with, by topic and outcome: `exported` (the endpoint
    /// accepted everything made of it) or `dead_lettered` (rejected for good, or
    /// undecodable).
    pub records: Family<RecordLabel, Counter>,
    /// Requests made, by signal and result: `ok`, `retried` (connection error,
    /// timeout, 408, 429, 5xx), `refused` (401, 403, 404, 405, 415: retried) or
    /// `rejected` (another 4xx: the batch is split).
    pub requests: Family<RequestLabel, Counter>,
    /// Records the endpoint accepted and then dropped itself (OTLP partial success).
    pub receiver_dropped: Family<SignalLabel, Counter>,
    /// Offset commits that failed (the records are sent again after a restart).
    pub commit_failures: Counter,
    /// Batches dropped unsent because the partitions were reassigned while they
    /// were read (their records are read again from the committed offsets).
    pub batches_abandoned: Counter,
}

impl Metrics {
    pub fn register(reg: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = reg.sub_registry_with_prefix("kevents_export");
        r.register("records", "Kafka records exported or dead-lettered", m.records.clone());
        r.register("requests", "OTLP requests by signal and result", m.requests.clone());
        r.register("receiver_dropped", "Records the endpoint accepted and dropped (partial success)", m.receiver_dropped.clone());
        r.register("commit_failures", "Offset commits that failed", m.commit_failures.clone());
        r.register("batches_abandoned", "Batches dropped unsent on a rebalance (read again)", m.batches_abandoned.clone());
        m
    }

    pub fn record(&self, topic: &str, outcome: &str, n: u64) {
        self.records.get_or_create(&RecordLabel { topic: topic.into(), outcome: outcome.into() }).inc_by(n);
    }

    pub fn records(&self, topic: &str, outcome: &str) -> u64 {
        self.records.get_or_create(&RecordLabel { topic: topic.into(), outcome: outcome.into() }).get()
    }

    pub fn request(&self, signal: Signal, result: &str) {
        self.requests.get_or_create(&RequestLabel { signal: signal.as_str().into(), result: result.into() }).inc();
    }

    pub fn requests(&self, signal: Signal, result: &str) -> u64 {
        self.requests.get_or_create(&RequestLabel { signal: signal.as_str().into(), result: result.into() }).get()
    }

    pub fn receiver_dropped(&self, signal: Signal, n: u64) {
        self.receiver_dropped.get_or_create(&SignalLabel { signal: signal.as_str().into() }).inc_by(n);
    }
}
