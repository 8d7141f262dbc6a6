//! Plumbing every stage needs, kept beside the contract so that stages never import
//! each other: Kafka connection settings ([`kafka`]), config-file loading with env
//! overrides ([`config`]), and the ops HTTP endpoint with health, readiness and
//! Prometheus metrics ([`ops`]), and [`secret::Secret`] for passwords in configs.

pub mod config;
pub mod kafka;
pub mod ops;
pub mod secret;
