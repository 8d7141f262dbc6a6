//! kevents-testkit: what the tests and `kevents simulate` stand on. Not a stage:
//! stages use it only as a dev-dependency.
//!
//! Layout:
//! - `apiserver`: the test Kubernetes API server (Events in both shapes, watches, Leases, faults).
//! - `receiver`: a local HTTP receiver for alert notifications (webhook, Slack, Alertmanager v2), with scripted failures.
//! - `kube_real`: a real etcd + kube-apiserver (TLS, token auth, RBAC) as children of the test process.
//! - `registry`: a small Confluent-compatible schema registry (register, look up by id).
//! - `sim`: the seeded fleet simulator (scenarios of real-emitter Events, ground truth, fleet driver).
//! - `services`: the real local broker and ClickHouse (scripts/services), private ones for fault tests.
//! - `otelcol`: a real OpenTelemetry Collector (OTLP receiver → files) for the export tests.

pub mod services;
pub mod apiserver;
pub mod kube_real;
pub mod receiver;
pub mod registry;
pub mod sim;
pub mod otelcol;
