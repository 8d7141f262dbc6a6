//! The notifiers' part of the processor's `alerts:` section: which notifiers, and
//! how notifications are grouped, repeated and retried. The processor's
//! `NotifyConfig` flattens [`NotifyConfig`] into `alerts:` beside its rule
//! settings, so the file format is one flat section. Each field's doc is the user
//! documentation; error fields are named from the `alerts.` prefix the caller
//! passes.

use runtime::kafka::FieldError;
use runtime::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::template::Template;

/// Placeholders a notifier's `link_template` may use (values are URL-encoded).
pub const LINK_VARS: &[&str] = &["id", "origin_id", "origin", "rule", "cluster", "namespace", "severity"];

/// Notifications: the notifier fields of `alerts:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Where notifications go. Empty (default): alerts are only written to the
    /// alerts topic (and stored by the sink); no notifier runs.
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
    /// Alerts with equal values of these labels (`rule`, `cluster`, `namespace`,
    /// `severity`, `origin`, or any alert label) that arrive within
    /// `group_wait_secs` go out as one message. Default `[rule, cluster]`.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// How long the first alert of a group waits for others, seconds. Default 10
    /// (Alertmanager's is 30; kevents alerts come from incidents that already
    /// group their events).
    #[serde(default = "default_group_wait")]
    pub group_wait_secs: u64,
    /// A still-firing alert is sent again after this long, seconds; 0 never.
    /// Default 14400 (4 h, Alertmanager's default).
    #[serde(default = "default_repeat")]
    pub repeat_interval_secs: u64,
    /// Send a notification when an alert resolves. Default true.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Retries of one notification after its first attempt (on connection
    /// errors, timeouts, 408, 429 and 5xx; other 4xx are permanent). After the
    /// last, the notification is recorded as failed and the notifier moves on.
    /// Default 6 (about a minute of trying with the default backoff).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First retry delay, milliseconds; doubles each retry, with jitter (a delay
    /// is drawn between half and all of it). Default 500.
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_ms: u64,
    /// Longest retry delay, seconds. Default 30.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: u64,
    /// Alert versions older than this when the notifier reads them (by their
    /// Kafka timestamp) are not sent: after a long outage, or when a notifier is
    /// added to a running deployment, nobody wants yesterday's pages. Seconds;
    /// 0 sends any age. Default 3600.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Alerts read and not yet notified, per notifier; when reached, the
    /// notifier stops reading until it caught up. Default 10,000.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// How often each notifier commits its position in the alerts topic,
    /// seconds (also on rebalance and shutdown). Default 5.
    #[serde(default = "default_commit_interval")]
    pub commit_interval_secs: u64,
    /// Compacted topic of sent-markers: after a receiver accepted a notification
    /// (or it failed for good) the notifier records (notifier, alert id,
    /// version) here, and every member reads it back when it gets partitions,
    /// so a restart or rebalance does not notify twice. Default
    /// `kevents.alerts.sent`.
    #[serde(default = "default_sent_topic")]
    pub sent_topic: String,
    /// Consumer group prefix: each notifier reads the alerts topic in its own
    /// group `<group_id>.<notifier name>`, so a slow or down receiver only
    /// delays itself. Default `kevents-notifier`.
    #[serde(default = "default_group_id")]
    pub group_id: String,
}

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    /// Generic webhook: POST of a JSON object with the group's alerts.
    Webhook,
    /// Slack incoming webhook: POST of `{"text": …}`, one readable message per group.
    Slack,
    /// Alertmanager API v2: POST `{url}/api/v2/alerts` with an array of alerts.
    Alertmanager,
}

impl NotifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierKind::Webhook => "webhook",
            NotifierKind::Slack => "slack",
            NotifierKind::Alertmanager => "alertmanager",
        }
    }
}

/// One notification target.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Unique; letters, digits, `-`, `_`. Names the consumer group, the metrics
    /// label and the sent-markers, so renaming a notifier makes it new.
    pub name: String,
    pub kind: NotifierKind,
    /// The endpoint (for Alertmanager its base URL, e.g. `http://am:9093`).
    /// Never logged. Set this or `url_file`.
    #[serde(default)]
    pub url: Option<Secret>,
    /// Read the URL from this file (a mounted Secret: Slack webhook URLs are
    /// credentials). Read once at start.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Extra request headers (e.g. `Authorization`); values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Link put in each notification, with `{{id}}`, `{{origin_id}}`,
    /// `{{origin}}`, `{{rule}}`, `{{cluster}}`, `{{namespace}}`, `{{severity}}`,
    /// e.g. `https://grafana.example/d/incidents?var-id={{origin_id}}`.
    #[serde(default)]
    pub link_template: Option<String>,
    /// Per request, seconds. Default 10.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_group_by() -> Vec<String> {
    vec!["rule".into(), "cluster".into()]
}
fn default_group_wait() -> u64 {
    10
}
fn default_repeat() -> u64 {
    4 * 3600
}
fn yes() -> bool {
    true
}
fn default_max_retries() -> u32 {
    6
}
fn default_backoff_initial() -> u64 {
    500
}
fn default_backoff_max() -> u64 {
    30
}
fn default_max_age() -> u64 {
    3600
}
fn default_max_pending() -> usize {
    10_000
}
fn default_commit_interval() -> u64 {
    5
}
fn default_sent_topic() -> String {
    "kevents.alerts.sent".into()
}
fn default_group_id() -> String {
    "kevents-notifier".into()
}
fn default_timeout() -> u64 {
    10
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            notifiers: vec![],
            group_by: default_group_by(),
            group_wait_secs: default_group_wait(),
            repeat_interval_secs: default_repeat(),
            send_resolved: true,
            max_retries: default_max_retries(),
            backoff_initial_ms: default_backoff_initial(),
            backoff_max_secs: default_backoff_max(),
            max_age_secs: default_max_age(),
            max_pending: default_max_pending(),
            commit_interval_secs: default_commit_interval(),
            sent_topic: default_sent_topic(),
            group_id: default_group_id(),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn http_url(s: &str) -> bool {
    let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl NotifyConfig {
    /// Check what serde cannot; `prefix` is the section's path (`alerts`).
    pub fn validate(&self, prefix: &str) -> Result<(), FieldError> {
        let f = |field: &str| format!("{prefix}.{field}");
        if self.group_by.is_empty() || self.group_by.iter().any(|g| g.trim().is_empty()) {
            return Err(FieldError::new(f("group_by"), "must list at least one label, none empty"));
        }
        if self.backoff_initial_ms == 0 {
            return Err(FieldError::new(f("backoff_initial_ms"), "must be at least 1"));
        }
        if self.backoff_max_secs * 1000 < self.backoff_initial_ms {
            return Err(FieldError::new(f("backoff_max_secs"), "must be at least backoff_initial_ms"));
        }
        if self.max_retries > 30 {
            return Err(FieldError::new(f("max_retries"), "must be 30 or less (a notification that cannot go out in 30 tries is failed)"));
        }
        if self.max_pending == 0 {
            return Err(FieldError::new(f("max_pending"), "must be at least 1"));
        }
        if self.commit_interval_secs == 0 {
            return Err(FieldError::new(f("commit_interval_secs"), "must be at least 1"));
        }
        if self.sent_topic.trim().is_empty() {
            return Err(FieldError::new(f("sent_topic"), "must not be empty"));
        }
        if self.group_id.trim().is_empty() {
            return Err(FieldError::new(f("group_id"), "must not be empty"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, n) in self.notifiers.iter().enumerate() {
            let nf = |field: &str| f(&format!("notifiers[{i}].{field}"));
            if !valid_name(&n.name) {
                return Err(FieldError::new(nf("name"), "letters, digits, '-' and '_' (at most 64)"));
            }
            if !names.insert(n.name.as_str()) {
                return Err(FieldError::new(nf("name"), format!("duplicate notifier name {:?}", n.name)));
            }
            match (&n.url, &n.url_file) {
                (Some(_), Some(_)) | (None, None) => return Err(FieldError::new(nf("url"), "set exactly one of url, url_file")),
                // The message must not quote the URL: it may be a credential.
                (Some(u), None) if !http_url(u.expose()) => return Err(FieldError::new(nf("url"), "must be an http:// or https:// URL")),
                (None, Some(p)) if !p.is_file() => return Err(FieldError::new(nf("url_file"), format!("{} is not a readable file", p.display()))),
                _ => {}
            }
            for k in n.headers.keys() {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return Err(FieldError::new(nf("headers"), format!("invalid header name {k:?}")));
                }
            }
            if let Some(t) = &n.link_template {
                Template::parse(t, LINK_VARS).map_err(|e| FieldError::new(nf("link_template"), e))?;
            }
            if n.timeout_secs == 0 {
                return Err(FieldError::new(nf("timeout_secs"), "must be at least 1"));
            }
        }
        Ok(())
    }

    pub fn group_wait(&self) -> Duration {
        Duration::from_secs(self.group_wait_secs)
    }
}

impl NotifierConfig {
    /// The URL, from the config or its file (trimmed). The error names the field
    /// and never quotes the URL.
    pub fn resolve_url(&self, field_prefix: &str) -> Result<Secret, FieldError> {
        let url = match (&self.url, &self.url_file) {
            (Some(u), _) => u.clone(),
            (None, Some(p)) => {
                let text = std::fs::read_to_string(p).map_err(|e| FieldError::new(format!("{field_prefix}.url_file"), format!("{}: {e}", p.display())))?;
                Secret::new(text.trim())
            }
            (None, None) => return Err(FieldError::new(format!("{field_prefix}.url"), "set exactly one of url, url_file")),
        };
        if !http_url(url.expose()) {
            return Err(FieldError::new(format!("{field_prefix}.url_file"), "the file must hold an http:// or https:// URL"));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(yaml: &str) -> NotifyConfig {
        serde_norway::from_str(&format!("notifiers:\n- {yaml}\n")).unwrap()
    }

    #[test]
    fn defaults_and_field_errors() {
        let c = NotifyConfig::default();
        c.validate("alerts").unwrap();
        assert_eq!(c.group_by, ["rule", "cluster"]);
        assert_eq!((c.group_wait_secs, c.repeat_interval_secs, c.send_resolved), (10, 14400, true));
        assert_eq!(c.sent_topic, "kevents.alerts.sent");
        let ok = notifier("{name: ops, kind: webhook, url: 'http://h:1/x', link_template: 'https://g/d?id={{id}}'}");
        ok.validate("alerts").unwrap();
        let field = |c: NotifyConfig| c.validate("alerts").unwrap_err().field;
        assert_eq!(field(notifier("{name: ops, kind: slack, url: 'ftp://h'}")), "alerts.notifiers[0].url");
        assert_eq!(field(notifier("{name: ops, kind: slack}")), "alerts.notifiers[0].url");
        assert_eq!(field(notifier("{name: 'o p', kind: slack, url: 'http://h'}")), "alerts.notifiers[0].name");
        assert_eq!(field(notifier("{name: a, kind: webhook, url: 'http://h', link_template: '{{idd}}'}")), "alerts.notifiers[0].link_template");
        assert_eq!(field(notifier("{name: a, kind: webhook, url_file: /nonexistent/u}")), "alerts.notifiers[0].url_file");
        assert_eq!(field(notifier("{name: a, kind: webhook, url: 'http://h', headers: {'a b': x}}")), "alerts.notifiers[0].headers");
        let mut two = notifier("{name: a, kind: webhook, url: 'http://h'}");
        two.notifiers.push(two.notifiers[0].clone());
        assert_eq!(field(two), "alerts.notifiers[1].name");
        let e = serde_norway::from_str::<NotifyConfig>("notifiers:\n- {name: a, kind: pager, url: 'http://h'}\n").unwrap_err().to_string();
        assert!(e.contains("pager"), "{e}");
        let c = NotifyConfig { backoff_max_secs: 0, ..Default::default() };
        assert_eq!(field(c), "alerts.backoff_max_secs");
    }

    #[test]
    fn url_from_a_file_is_trimmed_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slack-url");
        std::fs::write(&p, "https://hooks.slack.example/services/T0/B0/secret\n").unwrap();
        let c = notifier(&format!("{{name: s, kind: slack, url_file: {}}}", p.display()));
        c.validate("alerts").unwrap();
        let url = c.notifiers[0].resolve_url("alerts.notifiers[0]").unwrap();
        assert_eq!(url.expose(), "https://hooks.slack.example/services/T0/B0/secret");
        assert!(!format!("{c:?}").contains("secret"));
        std::fs::write(&p, "not a url").unwrap();
        assert_eq!(c.notifiers[0].resolve_url("alerts.notifiers[0]").unwrap_err().field, "alerts.notifiers[0].url_file");
    }
}
