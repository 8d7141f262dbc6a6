//! The dead-letter topic: records the endpoint rejected for good (a permanent 4xx on
//! the record alone, see [`crate::send`]) and records that cannot be decoded go there
//! with the reason, never retried and never silently dropped. The format and the
//! sending are the sink's too: [`runtime::dlq`].

pub use runtime::dlq::{send, Letter, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_STAGE, HEADER_TOPIC};

/// `kevents.dlq.stage` of the exporter's dead letters.
pub const STAGE: &str = "export";
