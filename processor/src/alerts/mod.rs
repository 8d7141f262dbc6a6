//! Alerts: rules that turn incidents, patterns and anomalies into alerts (pure,
//! per raw partition, inside the per-record step). The notifiers that send alert
//! versions from the alerts topic to people are the `kevents-notify` crate, which
//! the processor starts beside event processing (`crate::start`).
//!
//! Data flow: correlation/patterns → [`AlertEngine`] (rules from
//! `rules/alerts.yaml` + users' files) → `Output::Alert` on `topics.alerts` →
//! `notify` (own consumer groups) → webhook / Slack / Alertmanager.
//!
//! Layout:
//! - [`config`]: `alerts:` in the processor's config (`AlertsConfig`; the
//!   notifier fields are `notify::NotifyConfig`, flattened into it).
//! - [`rules`]: the YAML rules, their validation, matching; summaries are
//!   `notify::template` templates (one template language for summaries and links).
//! - [`engine`]: firing/resolve decisions per (rule, origin), stable ids.

pub mod config;
pub mod engine;
pub mod rules;

pub use config::AlertsConfig;
pub use engine::AlertEngine;
pub use rules::{AlertRule, AlertRules};
