//! The default Kafka topic names: part of the contract between the stages, so
//! a collector, a processor and a sink configured with defaults find each
//! other. Each stage's config can rename any of them.

/// Raw watch records and heartbeats (collector → processor).
pub const RAW: &str = "kevents.raw";
/// Classified events (processor → sink).
pub const PROCESSED: &str = "kevents.processed";
/// Cluster heartbeats (processor → sink).
pub const HEARTBEATS: &str = "kevents.heartbeats";
/// Incident versions (processor → sink).
pub const INCIDENTS: &str = "kevents.incidents";
/// Pattern versions (processor → sink).
pub const PATTERNS: &str = "kevents.patterns";
/// Alert versions (processor → sink and the notifiers).
pub const ALERTS: &str = "kevents.alerts";
/// Dead letters: records a stage could not decode, with the reason.
pub const DLQ: &str = "kevents.dlq";
