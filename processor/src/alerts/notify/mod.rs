//! Notifiers: alert versions from the alerts topic to webhooks, Slack and
//! Alertmanager, in the processor process but apart from event processing.
//!
//! # Guarantee
//!
//! **Each alert version is notified once per notifier, across restarts,
//! `kill -9` and rebalances — except that a member that dies in the few
//! milliseconds between a receiver's 2xx and the broker's acknowledgement of the
//! sent-marker causes that request to be sent again by the next owner.** Every
//! payload carries the alert's stable `id` and `version` so a receiver can drop
//! such a duplicate itself (Alertmanager does: equal label sets, and `kevents_id`
//! is a label).
//!
//! How:
//! - Each notifier reads the alerts topic in its own consumer group
//!   (`<group_id>.<name>`), on its own thread: a receiver that is down or slow
//!   grows only its own lag (`kevents_notifier_lag`); event processing never
//!   waits for notifications, nor does any other notifier.
//! - Sent-markers: after a request is answered 2xx (or failed for good: a
//!   permanent 4xx, or retries exhausted), the notifier writes one record per
//!   alert version in it, `(notifier, alert id) → version, firing, outcome,
//!   time`, to the compacted `sent_topic`, and waits for the broker's ack.
//! - Offsets of the alerts topic are stored only for alerts whose marker is
//!   acknowledged (or that needed no notification) and committed every
//!   `commit_interval_secs`, and synchronously on revoke and shutdown.
//! - On every partition assignment a member first reads the sent topic up to
//!   its end, so whatever a dead or revoked owner delivered is known before any
//!   record of the alerts topic is looked at again: replayed versions are
//!   skipped (`kevents_notifier_skipped{reason="duplicate"}`).
//! - A revoke (eager protocol: all partitions) waits for the request in flight
//!   (up to [`pipeline::DRAIN`]), then drops what was read but not sent: the
//!   next owner sends it, nothing is lost. A request still retrying after that
//!   is abandoned, and the next owner may repeat it (a second, rarer window).
//!
//! Dedup is by alert id: a firing version is sent when the alert is not known to
//! be firing; a resolve when it is (and `send_resolved`); a firing alert is sent
//! again only after `repeat_interval_secs`, by whichever member owns its
//! partition (the marker keeps the alert for that). Alert versions older than
//! `max_age_secs` are not sent at all.
//!
//! Grouping: alerts with equal `group_by` values read within `group_wait_secs`
//! of the group's first go out together — one message per group for webhook and
//! Slack, one POST for all due groups for Alertmanager. One request is in flight
//! per notifier at a time, so a resolve never overtakes its firing.
//!
//! Layout: [`pipeline`] (the consumer loop, offsets), [`group`], [`sent`]
//! (markers and the dedup decision), [`send`] (HTTP with retries), one file per
//! format ([`webhook`], [`slack`], [`alertmanager`]), [`metrics`].

pub mod alertmanager;
pub mod group;
pub mod metrics;
pub mod pipeline;
pub mod send;
pub mod sent;
pub mod slack;
pub mod webhook;

pub use metrics::NotifyMetrics;

use rdkafka::ClientConfig;
use schemas::avro::Codec;
use runtime::kafka::FieldError;
use runtime::secret::Secret;
use schemas::records::{Alert, AlertSource};
use std::collections::BTreeMap;
use std::time::Duration;

use super::config::{AlertsConfig, NotifierConfig, NotifierKind, LINK_VARS};
use super::template::{url_encode, Template};
use crate::fault::Fault;
use crate::shutdown::{self, CancellationToken};
use crate::ProcessorError;

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
    pub fn from_config(n: &NotifierConfig, i: usize, alerts: &AlertsConfig) -> Result<Target, FieldError> {
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

/// The running notifiers of one process: their threads, which stop on the
/// member's stop signal (see `crate::shutdown`) and raise it when they end.
pub struct Notifier {
    threads: Vec<(String, std::thread::JoinHandle<Result<(), ProcessorError>>)>,
}

impl Notifier {
    /// Wait for every notifier thread to end (each sends what is pending, up to
    /// [`pipeline::DRAIN`], commits and leaves its group once the member's stop
    /// signal is raised); the first error or panic.
    pub async fn join(self) -> Result<(), ProcessorError> {
        let mut result = Ok(());
        for (what, t) in self.threads {
            let r = shutdown::join_thread(&what, t).await;
            result = result.and(r);
        }
        result
    }
}

/// Create the compacted sent-markers topic if it does not exist.
async fn ensure_sent_topic(base: &ClientConfig, topic: &str, partitions: i32) -> Result<(), ProcessorError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = base.create()?;
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    for r in admin.create_topics([&t], &AdminOptions::new()).await? {
        match r {
            Ok(_) => tracing::info!(%topic, partitions, "created sent-markers topic (compacted)"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(ProcessorError::Topic { topic: name, message: code.to_string() }),
        }
    }
    Ok(())
}

/// Start one pipeline thread per configured notifier; `None` when there are none.
/// `create_partitions > 0` creates the sent topic if missing.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    cfg: &AlertsConfig,
    base: &ClientConfig,
    alerts_topic: &str,
    create_partitions: i32,
    codec: Codec,
    metrics: NotifyMetrics,
    stop: CancellationToken,
    fault: Fault,
) -> Result<Option<Notifier>, ProcessorError> {
    if cfg.notifiers.is_empty() {
        return Ok(None);
    }
    if cfg.sent_topic == alerts_topic {
        return Err(FieldError::new("alerts.sent_topic", "must differ from topics.alerts").into());
    }
    if create_partitions > 0 {
        ensure_sent_topic(base, &cfg.sent_topic, create_partitions).await?;
    }
    let mut threads = Vec::new();
    let producer: rdkafka::producer::FutureProducer = crate::producer_config(base).create()?;
    for (i, n) in cfg.notifiers.iter().enumerate() {
        let target = Target::from_config(n, i, cfg)?;
        let p = pipeline::Pipeline::new(cfg, base, alerts_topic, target, codec.clone(), producer.clone(), metrics.clone(), tokio::runtime::Handle::current(), stop.clone(), fault.clone())?;
        let name = format!("kevents-notify-{i}");
        let guard = stop.clone();
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // However it ends (a panic included), the member stops.
                let _stop_all = guard.drop_guard();
                p.run()
            })
            .map_err(|e| FieldError::new(format!("alerts.notifiers[{i}]"), format!("cannot start its thread: {e}")))?;
        threads.push((format!("notifier {}", n.name), t));
        tracing::info!(notifier = %n.name, kind = n.kind.as_str(), group = %format!("{}.{}", cfg.group_id, n.name), "notifier started");
    }
    Ok(Some(Notifier { threads }))
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
        Target::from_config(&cfg, 0, &AlertsConfig::default()).unwrap()
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
