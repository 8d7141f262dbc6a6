//! What a notifier sends and to whom: one alert version ([`Item`]), the alerts
//! sent together ([`Group`], by the `group_by` labels), and a configured
//! notifier ready to send ([`Target`]: endpoint, headers, link, HTTP client).
//! The formats (`webhook`, `slack`, `alertmanager`) turn a group into a body.

use runtime::kafka::FieldError;
use runtime::secret::Secret;
use schemas::records::{Alert, AlertSource};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{NotifierConfig, NotifierKind, NotifyConfig, LINK_VARS};
use crate::template::{url_encode, Template};

/// One alert version to notify (or a reminder of a firing one).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub alert: Alert,
    /// Alerts-topic partition, and offset (`None` for a repeat).
    pub partition: i32,
    pub offset: Option<i64>,
    /// A reminder of a still-firing alert (`repeat_interval_secs`).
    pub repeat: bool,
}

/// Alerts notified together: equal values of the `group_by` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub labels: BTreeMap<String, String>,
    pub items: Vec<Item>,
}

/// The value of a `group_by` label for an alert.
pub fn group_value(a: &Alert, label: &str) -> String {
    match label {
        "rule" => a.rule.clone(),
        "cluster" => a.cluster.name.to_string(),
        "namespace" => a.namespace.clone(),
        "severity" => a.severity.as_str().into(),
        "origin" => origin_str(a.origin).into(),
        other => a.labels.get(other).cloned().unwrap_or_default(),
    }
}

pub fn origin_str(o: AlertSource) -> &'static str {
    match o {
        AlertSource::Incident => "incident",
        AlertSource::Pattern => "pattern",
        AlertSource::Anomaly => "anomaly",
    }
}

/// `firing` or `resolved`.
pub fn status(a: &Alert) -> &'static str {
    if a.firing {
        "firing"
    } else {
        "resolved"
    }
}

/// RFC 3339 UTC with milliseconds, from microseconds since the epoch.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A configured notifier, ready to send.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub kind: NotifierKind,
    url: Secret,
    pub headers: Vec<(String, Secret)>,
    pub link: Option<Template>,
    pub client: reqwest::Client,
    /// Alertmanager only: how long a firing alert stays valid without a repeat.
    pub keep_firing: Option<Duration>,
}

impl Target {
    /// `i` is the notifier's index, for error field names.
    pub fn from_config(n: &NotifierConfig, i: usize, alerts: &NotifyConfig) -> Result<Target, FieldError> {
        let prefix = format!("alerts.notifiers[{i}]");
        let url = n.resolve_url(&prefix)?;
        let link = match &n.link_template {
            Some(t) => Some(Template::parse(t, LINK_VARS).map_err(|e| FieldError::new(format!("{prefix}.link_template"), e))?),
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(n.timeout_secs))
            .user_agent(concat!("kevents-notifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FieldError::new(format!("{prefix}.url"), format!("cannot build an HTTP client: {}", e.without_url())))?;
        let keep_firing = match (n.kind, alerts.repeat_interval_secs) {
            (NotifierKind::Alertmanager, r) if r > 0 => Some(Duration::from_secs(2 * r)),
            _ => None,
        };
        Ok(Target {
            name: n.name.clone(),
            kind: n.kind,
            url,
            headers: n.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            link,
            client,
            keep_firing,
        })
    }

    /// Where requests go (Alertmanager: the base URL + `/api/v2/alerts`).
    pub fn endpoint(&self) -> String {
        let u = self.url.expose();
        match self.kind {
            NotifierKind::Alertmanager if !u.trim_end_matches('/').ends_with("/api/v2/alerts") => {
                format!("{}/api/v2/alerts", u.trim_end_matches('/'))
            }
            _ => u.to_string(),
        }
    }

    /// The alert's link from `link_template`, placeholder values URL-encoded.
    pub fn link(&self, a: &Alert) -> Option<String> {
        self.link.as_ref().map(|t| {
            t.render_with(
                |v| match v {
                    "id" => a.id.clone(),
                    "origin_id" => a.origin_id.clone(),
                    "origin" => origin_str(a.origin).into(),
                    "rule" => a.rule.clone(),
                    "cluster" => a.cluster.name.to_string(),
                    "namespace" => a.namespace.clone(),
                    "severity" => a.severity.as_str().into(),
                    _ => String::new(),
                },
                url_encode,
            )
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use schemas::model::{ClusterId, Severity};

    /// A firing or resolved alert at 2026-01-02T03:04:05Z (ends 10 min later).
    pub fn alert(id: &str, firing: bool) -> Alert {
        Alert {
            id: id.into(),
            version: 3,
            rule: "incident-error".into(),
            origin: AlertSource::Incident,
            origin_id: format!("inc-{id}"),
            firing,
            severity: Severity::Error,
            cluster: ClusterId { name: "prod eu".into(), uid: "uid-1".into() },
            namespace: "shop".into(),
            summary: format!("summary of {id}"),
            labels: [("team", "storage"), ("cluster", "prod eu"), ("namespace", "shop"), ("severity", "error")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts_us: 1_767_323_045_000_000,
            ends_us: if firing { 0 } else { 1_767_323_645_000_000 },
            ..Default::default()
        }
    }

    pub fn group(alerts: Vec<Alert>) -> Group {
        let labels = ["rule", "cluster"].iter().map(|l| (l.to_string(), group_value(&alerts[0], l))).collect();
        Group { labels, items: alerts.into_iter().map(|alert| Item { alert, partition: 0, offset: Some(0), repeat: false }).collect() }
    }

    pub fn target_at(kind: NotifierKind, url: &str) -> Target {
        let cfg: NotifierConfig = serde_norway::from_str(&format!("{{name: hook, kind: {}, url: '{url}', headers: {{x-token: t0k}}}}", kind.as_str())).unwrap();
        Target::from_config(&cfg, 0, &NotifyConfig::default()).unwrap()
    }

    pub fn target(kind: NotifierKind, link: Option<&str>) -> Target {
        let mut t = target_at(kind, "http://127.0.0.1:9/base/");
        t.link = link.map(|l| Template::parse(l, LINK_VARS).unwrap());
        t
    }

    #[test]
    fn endpoints_and_group_values() {
        assert_eq!(target(NotifierKind::Webhook, None).endpoint(), "http://127.0.0.1:9/base/");
        assert_eq!(target_at(NotifierKind::Alertmanager, "http://am:9093/api/v2/alerts").endpoint(), "http://am:9093/api/v2/alerts");
        let a = alert("x", true);
        assert_eq!(group_value(&a, "severity"), "error");
        assert_eq!(group_value(&a, "team"), "storage");
        assert_eq!(group_value(&a, "missing"), "");
        assert_eq!(rfc3339(a.starts_us), "2026-01-02T03:04:05.000Z");
        assert!(!format!("{:?}", target_at(NotifierKind::Slack, "https://hooks.slack.example/T/B/sekrit")).contains("sekrit"));
    }
}
