//! kevents-schemas: the contract between the stages: types, Avro, ids, ClickHouse DDL,
//! and no I/O (no Kafka, HTTP or async runtime: those are `kevents-runtime`'s). Every
//! stage depends on this crate and on no other stage.
//!
//! Layout:
//! - [`model`]: the normalized event, one shape for both Kubernetes API shapes.
//! - [`convert`]: `events.k8s.io/v1` and `core/v1` Events → [`model::NormalizedEvent`]
//!   (the field mapping, written down once).
//! - [`records`]: the Kafka records (raw envelope, processed event, incident,
//!   pattern, alert, heartbeat).
//! - [`avro`]: Avro schemas, ids, Confluent framing, encode/decode.
//! - [`wire`]: hand-written Avro binary encoding of the per-event records (hot path).
//! - [`ids`]: deterministic record ids (a replay yields the same ids).
//! - [`metadata`]: the extracted facts of an event, a compact shared map.
//! - [`topics`]: the default Kafka topic names every stage agrees on.
//! - [`clickhouse`]: the ClickHouse migrations and their rendering (single node or
//!   cluster).

pub mod avro;
pub mod clickhouse;
pub mod convert;
pub mod event_json;
pub mod ids;
pub mod metadata;
pub mod model;
pub mod records;
pub mod topics;
pub mod wire;

pub use model::{ApiShape, ClusterId, NormalizedEvent, ObjectRef, Severity};
