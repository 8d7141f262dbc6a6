//! Alerts: rules that turn incidents, patterns and anomalies into alerts (pure,
//! per raw partition, inside the per-record step), and the notifiers that send
//! alert versions from the alerts topic to people (a runtime task beside it).
//!
//! Data flow: correlation/patterns → [`AlertEngine`] (rules from
//! `rules/alerts.yaml` + users' files) → `Output::Alert` on `topics.alerts` →
//! [`notify`] (own consumer groups) → webhook / Slack / Alertmanager.
//!
//! Layout:
//! - [`config`]: `alerts:` in the processor's config (`AlertsConfig`).
//! - [`rules`]: the YAML rules, their validation, matching.
//! - [`engine`]: firing/resolve decisions per (rule, origin), stable ids.
//! - [`template`]: `{{placeholder}}` summaries and links.
//! - [`notify`]: the notifier loop, dedup by sent-markers, one file per format;
//!   its module doc states the delivery guarantee.

pub mod config;
pub mod engine;
pub mod notify;
pub mod rules;
pub mod template;

pub use config::{AlertsConfig, NotifierConfig, NotifierKind};
pub use engine::AlertEngine;
pub use notify::{Notifier, NotifyMetrics};
pub use rules::{AlertRule, AlertRules};
