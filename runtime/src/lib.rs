//! kevents-runtime: what every stage runs on, beside the contract. The contract
//! (`schemas`: the event model, Avro, ids, ClickHouse DDL) stays free of I/O; the
//! plumbing the stages share lives here, so that stages never import each other and
//! never copy it.
//!
//! Layout:
//! - [`kafka`]: Kafka connection settings (TLS, SASL), the client config they render,
//!   and the start-up preflight that names a bad field.
//! - [`config`]: YAML config files with `KEVENTS__…` env overrides; errors name the field.
//! - [`ops`]: the ops HTTP endpoint (`/healthz` from progress probes, `/readyz`,
//!   `/metrics`).
//! - [`backoff`]: the one retry backoff (doubling, jitter, cap, `Retry-After`, reset).
//! - [`shutdown`]: how every stage stops (one cancellation token).
//! - [`secret`]: [`secret::Secret`], a password that never reaches a log.
//! - [`registry`]: the optional Confluent schema-registry client for the Avro ids.

pub mod backoff;
pub mod config;
pub mod dlq;
pub mod kafka;
pub mod ops;
pub mod registry;
pub mod secret;
pub mod shutdown;
