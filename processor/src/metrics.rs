//! Every metric the processor exports, in one place so names do not drift.
//!
//! Hot-path counts (per category, per record) are kept in plain integers by each
//! partition worker ([`LocalCounts`]) and added to these metrics in batches, so a
//! record costs no label lookup and no allocation.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabel {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: String,
}

/// The processor's metrics. Cheap to clone (each metric is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Raw records consumed (emitting; replayed records are in `replayed`).
    pub consumed: Counter,
    /// Records acknowledged by Kafka, by output topic.
    pub produced: Family<TopicLabel, Counter>,
    /// Processed events by category.
    pub categories: Family<CategoryLabel, Counter>,
    /// Events no classification rule matched (category `unknown`).
    pub unknown: Counter,
    /// Event versions already seen (re-delivery, relist, deposed leader): no output.
    pub duplicates: Counter,
    /// Versions older than one already seen: emitted with 0 occurrences.
    pub out_of_order: Counter,
    /// Records from a collector leader older than the newest seen for the cluster.
    pub stale_epochs: Counter,
    /// Raw records sent to the dead-letter topic.
    pub dead_letters: Counter,
    /// Records replayed (without output) to rebuild a partition's state.
    pub replayed: Counter,
    /// Partition state restores, by how (`replay`, `kept` when the state of a
    /// previous assignment could be reused, `empty` at the start of a partition).
    pub restores: Family<CauseLabel, Counter>,
    /// Consumer group rebalances (assign and revoke events).
    pub rebalances: Family<CauseLabel, Counter>,
    /// Occurrence entries evicted, by cause (`horizon`, `cap`).
    pub evictions: Family<CauseLabel, Counter>,
    /// Raw records behind the partition's end, per assigned partition.
    pub lag: Family<PartitionLabel, Gauge>,
    /// Occurrence entries held, per assigned partition.
    pub state_entries: Family<PartitionLabel, Gauge>,
    /// Outputs sent and not yet acknowledged, per assigned partition.
    pub in_flight: Family<PartitionLabel, Gauge>,
    /// Partitions assigned to this member.
    pub assigned: Gauge,
    /// Assigned partitions whose fetching is paused because their worker's queue
    /// is full (a slow or hot partition; the others keep flowing).
    pub paused: Gauge,
    /// Times a partition was paused that way.
    pub pauses: Counter,
    /// Incidents by what happened (`opened`, `resolved`, `evicted`: resolved
    /// early because the partition hit `correlation.max_open_incidents`).
    pub incidents: Family<CauseLabel, Counter>,
    /// Open incidents held, per assigned partition.
    pub open_incidents: Family<PartitionLabel, Gauge>,
    /// Transactions committed (outputs and raw offsets together, `txn`).
    pub commits: Counter,
    /// How long a commit held the workers (flush, offsets, commit), seconds.
    pub commit_seconds: Histogram,
}

impl Metrics {
    pub fn register(reg: &mut Registry) -> Self {
        let m = Metrics {
            consumed: Default::default(),
            produced: Default::default(),
            categories: Default::default(),
            unknown: Default::default(),
            duplicates: Default::default(),
            out_of_order: Default::default(),
            stale_epochs: Default::default(),
            dead_letters: Default::default(),
            replayed: Default::default(),
            restores: Default::default(),
            rebalances: Default::default(),
            evictions: Default::default(),
            lag: Default::default(),
            state_entries: Default::default(),
            in_flight: Default::default(),
            assigned: Default::default(),
            paused: Default::default(),
            pauses: Default::default(),
            incidents: Default::default(),
            open_incidents: Default::default(),
            commits: Default::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        };
        let r = reg.sub_registry_with_prefix("kevents_processor");
        r.register("records_consumed", "Raw records consumed", m.consumed.clone());
        r.register("records_produced", "Records acknowledged by Kafka, by output topic", m.produced.clone());
        r.register("events_by_category", "Processed events by category", m.categories.clone());
        r.register("events_unknown", "Events no classification rule matched", m.unknown.clone());
        r.register("duplicates", "Event versions already seen: no output", m.duplicates.clone());
        r.register("out_of_order", "Versions older than one already seen", m.out_of_order.clone());
        r.register("stale_epochs", "Records from a deposed collector leader, dropped", m.stale_epochs.clone());
        r.register("dead_letters", "Raw records sent to the dead-letter topic", m.dead_letters.clone());
        r.register("records_replayed", "Records replayed to rebuild partition state", m.replayed.clone());
        r.register("state_restores", "Partition state restores by how", m.restores.clone());
        r.register("rebalances", "Consumer group rebalance events by kind", m.rebalances.clone());
        r.register("state_evictions", "Occurrence entries evicted by cause", m.evictions.clone());
        r.register("partition_lag", "Raw records behind the partition end", m.lag.clone());
        r.register("state_entries", "Occurrence entries held per partition", m.state_entries.clone());
        r.register("in_flight", "Outputs awaiting acknowledgement per partition", m.in_flight.clone());
        r.register("partitions_assigned", "Raw partitions assigned to this member", m.assigned.clone());
        r.register("partitions_paused", "Assigned partitions paused because their worker is full", m.paused.clone());
        r.register("partition_pauses", "Times a partition was paused because its worker was full", m.pauses.clone());
        r.register("incidents", "Incidents by what happened (opened, resolved, evicted)", m.incidents.clone());
        r.register("open_incidents", "Open incidents held per partition", m.open_incidents.clone());
        r.register("transactions_committed", "Transactions committed (outputs and raw offsets together)", m.commits.clone());
        r.register("transaction_commit_seconds", "How long a commit held the workers (flush, offsets, commit)", m.commit_seconds.clone());
        m
    }

    pub fn produced(&self, topic: &str, n: u64) {
        if n > 0 {
            self.produced.get_or_create(&TopicLabel { topic: topic.into() }).inc_by(n);
        }
    }

    pub fn cause(family: &Family<CauseLabel, Counter>, cause: &str, n: u64) {
        if n > 0 {
            family.get_or_create(&CauseLabel { cause: cause.into() }).inc_by(n);
        }
    }

    pub fn partition(family: &Family<PartitionLabel, Gauge>, partition: i32) -> Gauge {
        family.get_or_create(&PartitionLabel { partition: partition.to_string() }).clone()
    }
}

/// A worker's counts since the last flush.
#[derive(Debug, Default)]
pub struct LocalCounts {
    pub consumed: u64,
    pub unknown: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub stale_epochs: u64,
    pub dead_letters: u64,
    pub replayed: u64,
    /// Acknowledged outputs per output kind (indexed by `OutputKind as usize`).
    pub produced: [u64; crate::output::OutputKind::COUNT],
    /// Per category, keyed by the address of the worker's shared name (see
    /// `classify::cache`): counting costs no string hashing. The map holds a
    /// clone, so an address is never reused for another name while counted.
    pub categories: FxHashMap<usize, (std::sync::Arc<str>, u64)>,
    /// Incidents opened, resolved, evicted (resolved early at the limit).
    pub incidents: [u64; 3],
}

impl LocalCounts {
    /// Adds what correlation did between two snapshots of its counters.
    pub fn incidents(&mut self, before: crate::correlate::CorrCounts, after: crate::correlate::CorrCounts) {
        self.incidents[0] += after.opened - before.opened;
        self.incidents[1] += after.resolved - before.resolved;
        self.incidents[2] += after.evicted - before.evicted;
    }

    #[inline]
    pub fn category(&mut self, category: &std::sync::Arc<str>) {
        let key = std::sync::Arc::as_ptr(category) as *const u8 as usize;
        match self.categories.get_mut(&key) {
            Some((_, n)) => *n += 1,
            None => {
                self.categories.insert(key, (category.clone(), 1));
            }
        }
    }

    /// Add the counts to `m` and reset them. `topics` names each output kind's topic.
    pub fn flush(&mut self, m: &Metrics, topics: &[&str; crate::output::OutputKind::COUNT]) {
        m.consumed.inc_by(std::mem::take(&mut self.consumed));
        m.unknown.inc_by(std::mem::take(&mut self.unknown));
        m.duplicates.inc_by(std::mem::take(&mut self.duplicates));
        m.out_of_order.inc_by(std::mem::take(&mut self.out_of_order));
        m.stale_epochs.inc_by(std::mem::take(&mut self.stale_epochs));
        m.dead_letters.inc_by(std::mem::take(&mut self.dead_letters));
        m.replayed.inc_by(std::mem::take(&mut self.replayed));
        for (i, n) in self.produced.iter_mut().enumerate() {
            m.produced(topics[i], std::mem::take(n));
        }
        for (i, cause) in ["opened", "resolved", "evicted"].into_iter().enumerate() {
            Metrics::cause(&m.incidents, cause, std::mem::take(&mut self.incidents[i]));
        }
        for (c, n) in self.categories.values_mut() {
            if *n > 0 {
                m.categories.get_or_create(&CategoryLabel { category: c.to_string() }).inc_by(std::mem::take(n));
            }
        }
    }
}
