//! kevents notifiers: alert versions from the alerts topic to webhooks, Slack and
//! Alertmanager. The processor starts them ([`start`]) in its own process, beside
//! event processing but apart from it: their own consumer groups and threads, a
//! stop signal the processor passes in and they raise when they end.
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
//! Layout (data flows top to bottom):
//! - [`config`]: `NotifyConfig`, the notifier fields of the processor's `alerts:`
//!   section (the processor flattens it into its `NotifyConfig`), and validation.
//! - [`template`]: `{{placeholder}}` links (and the processor's alert summaries).
//! - [`kafka`]: the consumer and producer settings.
//! - [`pipeline`]: one notifier's thread: the consumer loop, rebalances, offsets.
//! - [`sent`]: sent-markers, reading them back, the dedup decision.
//! - [`group`]: grouping by `group_by` labels within `group_wait_secs`.
//! - [`target`]: what is sent (`Item`, `Group`) and to whom (`Target`).
//! - [`send`]: one HTTP POST with retries (retryable vs permanent answers).
//! - [`webhook`], [`slack`], [`alertmanager`]: one file per format.
//! - [`metrics`]: every `kevents_notifier_*` metric.
//! - [`error`]: `NotifyError`, and how a thread's or task's end (a panic too)
//!   becomes one.
//!
//! What the caller provides: the `alerts:` settings, the Kafka client settings
//! and codec, a metrics registry entry ([`NotifyMetrics::register`]), the stop
//! signal (a [`CancellationToken`]: cancel it to stop; every notifier thread
//! holds a drop guard of it, so a thread that ends or panics stops the caller
//! too), and optionally a [`RecordHook`] called on every alert record (the
//! processor's fault injection for its panic tests).


pub mod alertmanager;
pub mod config;
pub mod error;
pub mod group;
pub mod metrics;
pub mod pipeline;
pub mod send;
pub mod sent;
pub mod slack;
pub mod target;
pub mod template;
pub mod webhook;

pub use config::{NotifierConfig, NotifierKind, NotifyConfig};
pub use error::NotifyError;
pub use metrics::NotifyMetrics;
pub use target::{group_value, origin_str, rfc3339, status, Group, Item, Target};
pub use tokio_util::sync::CancellationToken;

use rdkafka::ClientConfig;
use runtime::kafka::FieldError;
use schemas::avro::Codec;
use std::sync::Arc;

/// Called by a notifier thread with each alert record's payload, before it is
/// decoded, and a description of where it was read (notifier, partition,
/// offset). The processor passes its fault injection here (`debug.panic_on_text`
/// with `panic_in: notifier`), so a test can prove that a panicking notifier
/// stops the member; `None` in production.
pub type RecordHook = Arc<dyn Fn(&[u8], &dyn Fn() -> String) + Send + Sync>;

/// The running notifiers of one process: their threads, which stop on the
/// caller's stop signal and raise it when they end.
pub struct Notifier {
    threads: Vec<(String, std::thread::JoinHandle<Result<(), NotifyError>>)>,
}

impl Notifier {
    /// Wait for every notifier thread to end (each sends what is pending, up to
    /// [`pipeline::DRAIN`], commits and leaves its group once the stop signal is
    /// raised); the first error or panic.
    pub async fn join(self) -> Result<(), NotifyError> {
        let mut result = Ok(());
        for (what, t) in self.threads {
            let r = error::join_thread(&what, t).await;
            result = result.and(r);
        }
        result
    }
}

/// Start one pipeline thread per configured notifier; `None` when there are none.
/// `create_partitions > 0` creates the sent topic if missing. `stop` is the
/// caller's stop signal: cancelling it stops every notifier (see
/// [`Notifier::join`]); any notifier thread ending cancels it.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    cfg: &NotifyConfig,
    base: &ClientConfig,
    alerts_topic: &str,
    create_partitions: i32,
    codec: Codec,
    metrics: NotifyMetrics,
    stop: CancellationToken,
    on_record: Option<RecordHook>,
) -> Result<Option<Notifier>, NotifyError> {
    if cfg.notifiers.is_empty() {
        return Ok(None);
    }
    if cfg.sent_topic == alerts_topic {
        return Err(FieldError::new("alerts.sent_topic", "must differ from topics.alerts").into());
    }
    if create_partitions > 0 {
        // Compacted: only the newest marker per (notifier, alert) matters.
        runtime::kafka::ensure_topic(base, &cfg.sent_topic, create_partitions, &[("cleanup.policy", "compact")]).await?;
    }
    let mut threads = Vec::new();
    let producer: rdkafka::producer::FutureProducer = runtime::kafka::producer_config(base).create()?;
    for (i, n) in cfg.notifiers.iter().enumerate() {
        let target = Target::from_config(n, i, cfg)?;
        let p = pipeline::Pipeline::new(cfg, base, alerts_topic, target, codec.clone(), producer.clone(), metrics.clone(), tokio::runtime::Handle::current(), stop.clone(), on_record.clone())?;
        let name = format!("kevents-notify-{i}");
        let guard = stop.clone();
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // However it ends (a panic included), the caller stops.
                let _stop_all = guard.drop_guard();
                p.run()
            })
            .map_err(|e| FieldError::new(format!("alerts.notifiers[{i}]"), format!("cannot start its thread: {e}")))?;
        threads.push((format!("notifier {}", n.name), t));
        tracing::info!(notifier = %n.name, kind = n.kind.as_str(), group = %format!("{}.{}", cfg.group_id, n.name), "notifier started");
    }
    Ok(Some(Notifier { threads }))
}
