//! The dead-letter topic: records the sink cannot decode, and rows ClickHouse rejects
//! with a permanent error (see `batch`), go there with why and where they came from,
//! and are never retried (retrying cannot make bad bytes good). The format and the
//! sending are shared with the exporter: [`runtime::dlq`].

pub use runtime::dlq::{send, Letter, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_STAGE, HEADER_TOPIC};

/// `kevents.dlq.stage` of the sink's dead letters.
pub const STAGE: &str = "sink";
