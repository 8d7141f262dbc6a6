//! `alerts:` in the processor's configuration: which rule files the alert engine
//! loads and how many firing alerts it holds, and — flattened into the same
//! section — the notifiers' settings ([`notify::NotifyConfig`], owned by the
//! `kevents-notify` crate: which notifiers, grouping, repeats, retries). Each
//! field's doc is the user documentation.

use notify::NotifyConfig;
use runtime::kafka::FieldError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Alert rules and notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Users' alert rule files, loaded before the built-in `rules/alerts.yaml`
    /// (a rule of the same name replaces the built-in one; earlier files win).
    #[serde(default)]
    pub rules_files: Vec<PathBuf>,
    /// Cap on firing alerts held per raw partition by the alert engine; beyond
    /// it the least recently updated are forgotten (they get no resolve).
    /// Default 100,000 (about 10 MB).
    #[serde(default = "default_max_firing")]
    pub max_firing_per_partition: usize,
    /// The notifiers and how they group, repeat and retry (`notifiers`,
    /// `group_by`, `sent_topic`, ...: see `notify::NotifyConfig`), written in
    /// this section beside the fields above.
    #[serde(flatten)]
    pub notify: NotifyConfig,
}

fn default_max_firing() -> usize {
    100_000
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { rules_files: vec![], max_firing_per_partition: default_max_firing(), notify: NotifyConfig::default() }
    }
}

impl AlertsConfig {
    /// Check what serde cannot; `prefix` is this struct's path (`alerts`).
    pub fn validate(&self, prefix: &str) -> Result<(), FieldError> {
        let f = |field: &str| format!("{prefix}.{field}");
        for (i, p) in self.rules_files.iter().enumerate() {
            if !p.is_file() {
                return Err(FieldError::new(f(&format!("rules_files[{i}]")), format!("{} is not a readable file", p.display())));
            }
        }
        if self.max_firing_per_partition < 100 {
            return Err(FieldError::new(f("max_firing_per_partition"), "must be at least 100"));
        }
        self.notify.validate(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flat_section_for_rules_and_notifiers() {
        let c: AlertsConfig = serde_norway::from_str(
            "rules_files: []\nmax_firing_per_partition: 500\nnotifiers:\n- {name: ops, kind: webhook, url: 'http://h:1/x'}\ngroup_wait_secs: 3\nsent_topic: s\n",
        )
        .unwrap();
        assert_eq!((c.max_firing_per_partition, c.notify.group_wait_secs, c.notify.sent_topic.as_str()), (500, 3, "s"));
        assert_eq!((c.notify.notifiers.len(), c.notify.repeat_interval_secs), (1, 14400));
        c.validate("alerts").unwrap();
        // Written back flat, as read.
        let text = serde_norway::to_string(&c).unwrap();
        assert!(text.contains("\ngroup_wait_secs: 3\n") && !text.contains("notify"), "{text}");
        let back: AlertsConfig = serde_norway::from_str(&text).unwrap();
        assert_eq!(back.notify.notifiers[0].name, "ops");
        // A misspelled field of either part is still an error that names it.
        let e = serde_norway::from_str::<AlertsConfig>("group_wait: 3\n").unwrap_err().to_string();
        assert!(e.contains("group_wait"), "{e}");
        let e = serde_norway::from_str::<AlertsConfig>("max_firing: 3\n").unwrap_err().to_string();
        assert!(e.contains("max_firing"), "{e}");
        let field = |c: AlertsConfig| c.validate("alerts").unwrap_err().field;
        assert_eq!(field(AlertsConfig { max_firing_per_partition: 10, ..Default::default() }), "alerts.max_firing_per_partition");
        let mut c = AlertsConfig::default();
        c.notify.backoff_max_secs = 0;
        assert_eq!(field(c), "alerts.backoff_max_secs");
    }
}
