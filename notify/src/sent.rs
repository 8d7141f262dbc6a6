//! What each notifier has already notified: the sent-markers it writes to the
//! compacted `sent_topic` after a receiver's answer, the in-memory log every
//! member rebuilds from them, and the dedup decision for each alert version
//! read from the alerts topic.
//!
//! The topic is keyed `<notifier>/<alert id>`, so compaction keeps the latest
//! marker of each alert per notifier, which is all the decision needs. The
//! writer half is in [`crate::pipeline`] (a marker is produced after the
//! request and the alerts offset is released only when its ack came back).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use schemas::records::Alert;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How a notification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The receiver answered 2xx.
    Sent,
    /// Given up (permanent 4xx, or retries exhausted): not retried after a restart.
    Failed,
    /// Not notified by configuration (a resolve with `send_resolved: false`);
    /// recorded so the alert's repeats stop everywhere.
    Suppressed,
}

/// One sent-marker (JSON value on the sent topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub notifier: String,
    pub alert_id: String,
    pub version: i64,
    pub firing: bool,
    pub outcome: Outcome,
    /// Wall clock of the answer, ms since the epoch: when to repeat, when to forget.
    pub at_ms: i64,
    /// The alerts-topic partition of the alert: its owner sends the repeats.
    pub partition: i32,
    /// The alert itself while firing, so any later owner can repeat it.
    #[serde(default)]
    pub alert: Option<Alert>,
}

pub fn key(notifier: &str, alert_id: &str) -> String {
    format!("{notifier}/{alert_id}")
}

/// What is known about one alert id.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    version: i64,
    firing: bool,
    at_ms: i64,
    partition: i32,
    alert: Option<Alert>,
}

/// The notifier's memory of what it notified, per alert id.
#[derive(Debug, Default)]
pub struct SentLog {
    known: FxHashMap<String, Known>,
}

impl SentLog {
    /// Record a marker; an older one than what is known (by version, then
    /// time) changes nothing, so markers may be applied in any order and twice.
    pub fn apply(&mut self, m: Marker) {
        let k = Known { version: m.version, firing: m.firing, at_ms: m.at_ms, partition: m.partition, alert: m.alert };
        match self.known.get_mut(&m.alert_id) {
            Some(old) if (old.version, old.at_ms) >= (k.version, k.at_ms) => {}
            Some(old) => *old = k,
            None => {
                self.known.insert(m.alert_id, k);
            }
        }
    }

    /// (version, firing) last notified for this alert.
    pub fn get(&self, alert_id: &str) -> Option<(i64, bool)> {
        self.known.get(alert_id).map(|k| (k.version, k.firing))
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub fn firing(&self) -> usize {
        self.known.values().filter(|k| k.firing).count()
    }

    /// Forget resolved alerts notified before `before_ms`: any replay of them is
    /// older than `max_age` and skipped as stale anyway. Firing ones are kept
    /// (they are repeated).
    pub fn prune(&mut self, before_ms: i64) -> usize {
        let n = self.known.len();
        self.known.retain(|_, k| k.firing || k.at_ms >= before_ms);
        n - self.known.len()
    }

    /// Firing alerts last notified at least `every_ms` before `now_ms`, in
    /// partitions `owned`, not `busy` (a newer version is on its way).
    pub fn due_repeats(&self, now_ms: i64, every_ms: i64, owned: impl Fn(i32) -> bool, busy: impl Fn(&str) -> bool) -> Vec<(Alert, i32)> {
        let mut due: Vec<(Alert, i32)> = self
            .known
            .iter()
            .filter(|(id, k)| k.firing && now_ms - k.at_ms >= every_ms && owned(k.partition) && !busy(id))
            .filter_map(|(_, k)| k.alert.clone().map(|a| (a, k.partition)))
            .collect();
        due.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        due
    }
}

/// What to do with an alert version read from the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Record it (a marker) without notifying.
    Suppress,
    /// Nothing to do; the reason is a metric label.
    Skip(&'static str),
}

/// The dedup rule. `prev` is the (version, firing) last notified or on its way.
pub fn decide(prev: Option<(i64, bool)>, a: &Alert, send_resolved: bool) -> Decision {
    match (a.firing, prev) {
        (_, Some((v, _))) if v >= a.version => Decision::Skip("duplicate"),
        (true, Some((_, true))) => Decision::Skip("already_firing"),
        (true, _) => Decision::Send,
        (false, None) => Decision::Skip("never_fired"),
        (false, Some((_, false))) => Decision::Skip("already_resolved"),
        (false, Some((_, true))) if send_resolved => Decision::Send,
        (false, Some((_, true))) => Decision::Suppress,
    }
}

/// Reads one notifier's markers from every partition of the sent topic. Not in
/// a consumer group: every member needs all of them.
pub struct MarkerReader {
    consumer: BaseConsumer,
    topic: String,
    prefix: String,
    /// Next offset to read per partition.
    next: FxHashMap<i32, i64>,
}

impl MarkerReader {
    pub fn new(base: &ClientConfig, topic: &str, notifier: &str) -> rdkafka::error::KafkaResult<Self> {
        let mut c = base.clone();
        c.set("group.id", format!("kevents-markers-{notifier}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest");
        Ok(MarkerReader { consumer: c.create()?, topic: topic.into(), prefix: format!("{notifier}/"), next: FxHashMap::default() })
    }

    /// Apply every marker written before this call (up to each partition's high
    /// watermark) to `log`. Returns the number applied.
    pub fn catch_up(&mut self, log: &mut SentLog, timeout: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        let md = self.consumer.fetch_metadata(Some(&self.topic), timeout).map_err(|e| e.to_string())?;
        let t = md.topics().iter().find(|t| t.name() == self.topic).ok_or("sent topic missing from metadata")?;
        if let Some(e) = t.error() {
            return Err(format!("sent topic {}: {e:?}", self.topic));
        }
        let parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        if parts.iter().any(|p| !self.next.contains_key(p)) {
            let mut tpl = TopicPartitionList::new();
            for p in &parts {
                let off = self.next.get(p).map_or(Offset::Beginning, |o| Offset::Offset(*o));
                tpl.add_partition_offset(&self.topic, *p, off).map_err(|e| e.to_string())?;
                self.next.entry(*p).or_insert(0);
            }
            self.consumer.assign(&tpl).map_err(|e| e.to_string())?;
        }
        let mut high = FxHashMap::default();
        for p in &parts {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
            let (low, h) = self.consumer.fetch_watermarks(&self.topic, *p, left).map_err(|e| e.to_string())?;
            let n = self.next.entry(*p).or_insert(0);
            *n = (*n).max(low);
            high.insert(*p, h);
        }
        let mut applied = 0;
        while parts.iter().any(|p| self.next[p] < high[p]) {
            if Instant::now() > deadline {
                return Err(format!("reading the sent topic {} timed out", self.topic));
            }
            let Some(m) = self.consumer.poll(Duration::from_millis(200)) else { continue };
            let m = m.map_err(|e| e.to_string())?;
            self.next.insert(m.partition(), m.offset() + 1);
            let key = m.key().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or("");
            if !key.starts_with(&self.prefix) {
                continue;
            }
            match m.payload().map(serde_json::from_slice::<Marker>) {
                Some(Ok(marker)) => {
                    log.apply(marker);
                    applied += 1;
                }
                // A tombstone (compaction) or a foreign record: nothing to learn.
                None => {}
                Some(Err(e)) => tracing::warn!(error = %e, partition = m.partition(), offset = m.offset(), "unreadable sent-marker skipped"),
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use crate::target::tests::alert;
    use super::*;

    fn marker(id: &str, version: i64, firing: bool, at_ms: i64) -> Marker {
        Marker { notifier: "n".into(), alert_id: id.into(), version, firing, outcome: Outcome::Sent, at_ms, partition: 1, alert: firing.then(|| alert(id, true)) }
    }

    #[test]
    fn decisions() {
        let mut a = alert("a", true);
        a.version = 3;
        assert_eq!(decide(None, &a, true), Decision::Send);
        assert_eq!(decide(Some((3, true)), &a, true), Decision::Skip("duplicate"));
        assert_eq!(decide(Some((5, false)), &a, true), Decision::Skip("duplicate"));
        assert_eq!(decide(Some((2, true)), &a, true), Decision::Skip("already_firing"));
        assert_eq!(decide(Some((2, false)), &a, true), Decision::Send, "fires again after a resolve");
        let mut r = alert("a", false);
        r.version = 4;
        assert_eq!(decide(Some((3, true)), &r, true), Decision::Send);
        assert_eq!(decide(Some((3, true)), &r, false), Decision::Suppress);
        assert_eq!(decide(Some((4, false)), &r, true), Decision::Skip("duplicate"));
        assert_eq!(decide(Some((3, false)), &r, true), Decision::Skip("already_resolved"));
        assert_eq!(decide(None, &r, true), Decision::Skip("never_fired"));
    }

    #[test]
    fn log_keeps_the_newest_prunes_resolved_and_finds_repeats() {
        let mut log = SentLog::default();
        log.apply(marker("a", 3, true, 1_000));
        log.apply(marker("a", 2, false, 5_000));
        assert_eq!(log.get("a"), Some((3, true)), "an older version never wins");
        log.apply(marker("a", 3, true, 9_000));
        log.apply(marker("b", 1, true, 2_000));
        log.apply(marker("c", 2, false, 2_000));
        assert_eq!((log.len(), log.firing()), (3, 2));
        let due = log.due_repeats(10_000, 5_000, |p| p == 1, |_| false);
        assert_eq!(due.iter().map(|(a, _)| a.id.as_str()).collect::<Vec<_>>(), ["b"], "a was repeated at 9000");
        assert!(log.due_repeats(10_000, 5_000, |p| p == 0, |_| false).is_empty(), "other partitions' owners repeat those");
        assert!(log.due_repeats(10_000, 5_000, |_| true, |id| id == "b").is_empty());
        assert_eq!(log.prune(3_000), 1);
        assert_eq!(log.get("c"), None);
        assert_eq!(log.get("b"), Some((1, true)), "firing alerts are never pruned");
        let json = serde_json::to_string(&marker("a", 3, true, 1)).unwrap();
        assert_eq!(serde_json::from_str::<Marker>(&json).unwrap(), marker("a", 3, true, 1));
        assert!(json.contains("\"outcome\":\"sent\""), "{json}");
    }
}
