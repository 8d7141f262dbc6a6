//! The notifiers' metrics, all labelled by notifier name, under
//! `kevents_notifier_*` in the caller's registry (the processor's `/metrics`). A down receiver shows as
//! `retries` and `failed` growing and `lag` rising while the other notifiers'
//! stay flat.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabel {
    pub notifier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabel {
    pub notifier: String,
    pub reason: String,
}

/// Cheap to clone (each metric is an `Arc` inside).
#[derive(Clone, Debug, Default)]
pub struct NotifyMetrics {
    /// Alert versions a receiver accepted (2xx), repeats included.
    pub sent: Family<NotifierLabel, Counter>,
    /// Alert versions given up on (permanent 4xx, or retries exhausted).
    pub failed: Family<NotifierLabel, Counter>,
    /// Retried requests.
    pub retried: Family<NotifierLabel, Counter>,
    /// HTTP requests made (one carries a group, or for Alertmanager a batch).
    pub requests: Family<NotifierLabel, Counter>,
    /// Reminders of still-firing alerts (`repeat_interval_secs`).
    pub repeats: Family<NotifierLabel, Counter>,
    /// Alert versions read and not sent, by reason (`duplicate`: that version or
    /// a newer one was already notified; `already_firing`; `already_resolved`;
    /// `never_fired`: a resolve of an alert never notified; `stale`: older than
    /// `max_age_secs`; `undecodable`).
    pub skipped: Family<SkipLabel, Counter>,
    /// Alerts read and not yet notified.
    pub pending: Family<NotifierLabel, Gauge>,
    /// Alert records behind the end of the assigned partitions (not yet
    /// notified and committed): grows while a receiver is down.
    pub lag: Family<NotifierLabel, Gauge>,
    /// Alerts this member knows to be firing (from its sends and the markers).
    pub firing: Family<NotifierLabel, Gauge>,
}

impl NotifyMetrics {
    pub fn register(reg: &mut Registry) -> Self {
        let m = NotifyMetrics::default();
        let r = reg.sub_registry_with_prefix("kevents_notifier");
        r.register("sent", "Alert versions accepted by the receiver", m.sent.clone());
        r.register("failed", "Alert versions given up on", m.failed.clone());
        r.register("retried", "Retried notification requests", m.retried.clone());
        r.register("requests", "Notification requests made", m.requests.clone());
        r.register("repeats", "Reminders of still-firing alerts", m.repeats.clone());
        r.register("skipped", "Alert versions read and not sent, by reason", m.skipped.clone());
        r.register("pending", "Alerts read and not yet notified", m.pending.clone());
        r.register("lag", "Alert records not yet notified and committed", m.lag.clone());
        r.register("firing", "Alerts known to be firing", m.firing.clone());
        m
    }

    pub fn counter(family: &Family<NotifierLabel, Counter>, notifier: &str) -> Counter {
        family.get_or_create(&NotifierLabel { notifier: notifier.into() }).clone()
    }

    pub fn gauge(family: &Family<NotifierLabel, Gauge>, notifier: &str) -> Gauge {
        family.get_or_create(&NotifierLabel { notifier: notifier.into() }).clone()
    }

    pub fn skip(&self, notifier: &str, reason: &str) {
        self.skipped.get_or_create(&SkipLabel { notifier: notifier.into(), reason: reason.into() }).inc();
    }

    pub fn skipped(&self, notifier: &str, reason: &str) -> u64 {
        self.skipped.get_or_create(&SkipLabel { notifier: notifier.into(), reason: reason.into() }).get()
    }
}
