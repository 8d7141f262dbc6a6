//! One notifier's loop: a dedicated thread polls the alerts topic in the
//! notifier's own consumer group, decides per alert version (see [`crate::sent`]),
//! groups what is to be sent, hands due groups to one async send at a time, and
//! releases offsets behind the sent-markers' acknowledgements. The guarantee and
//! its window are stated in the crate doc.
//!
//! Why a thread with a `BaseConsumer` (like the processor's consume loop): the
//! revoke callback must wait for the request in flight before the partitions
//! move, and it runs inside `poll`; blocking there must not block a runtime.
//! The requests themselves run on the caller's tokio runtime, one task at a
//! time, whose handle this loop owns: a send task that panics ends this loop
//! with the error, and the thread's end (a panic too) raises the caller's stop
//! signal (the drop guard in [`crate::start`]).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use schemas::avro::Codec;
use schemas::records::Alert;
use std::collections::BTreeSet;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::send::{self, Counters, Delivery, RetryPolicy};
use crate::sent::{decide, key, Decision, Marker, MarkerReader, Outcome, SentLog};
use crate::group::Groups;
use crate::{alertmanager, slack, webhook, Group, Item, NotifyMetrics, Target};
use crate::config::{NotifierKind, NotifyConfig};
use crate::error::{self, NotifyError};
use crate::{CancellationToken, RecordHook};

/// How long a revoke or shutdown waits for the request in flight.
pub const DRAIN: Duration = Duration::from_secs(15);
/// A group due this soon is sent with the groups due now.
const COALESCE: Duration = Duration::from_millis(200);
/// Housekeeping period: offsets stored, repeats found, metrics set.
const TICK: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Settings and handles every part of the loop reads.
struct Shared {
    target: Target,
    alerts_topic: String,
    sent_topic: String,
    repeat_ms: Option<i64>,
    send_resolved: bool,
    max_age_ms: Option<i64>,
    max_pending: usize,
    policy: RetryPolicy,
    codec: Codec,
    producer: FutureProducer,
    runtime: tokio::runtime::Handle,
    metrics: NotifyMetrics,
    counters: Counters,
    sent: Counter,
    failed: Counter,
    repeats: Counter,
    pending: Gauge,
    lag: Gauge,
    firing: Gauge,
}

/// Offsets of one assigned partition.
#[derive(Debug, Default)]
struct Part {
    /// Offsets read whose notification is not finished.
    unfinished: BTreeSet<i64>,
    /// One past the last offset read (-1: nothing read yet).
    next: i64,
    stored: i64,
}

impl Part {
    fn releasable(&self) -> Option<i64> {
        (self.next >= 0).then(|| self.unfinished.first().copied().unwrap_or(self.next))
    }
}

struct InFlight {
    /// (alert id, version, firing, partition, offset) of each item, in marker order.
    items: Vec<(String, i64, bool, i32, Option<i64>)>,
    done: mpsc::Receiver<Vec<Marker>>,
    task: tokio::task::JoinHandle<()>,
}

/// Everything the loop and the rebalance callbacks share.
struct Book {
    log: SentLog,
    groups: Groups,
    suppressed: Vec<Item>,
    /// Latest (version, firing) per alert id that is pending or in flight.
    view: FxHashMap<String, (i64, bool)>,
    pending: usize,
    inflight: Option<InFlight>,
    parts: FxHashMap<i32, Part>,
    /// The sent topic was read up to its end for the current assignment.
    markers_ok: bool,
    paused: bool,
}

pub struct Ctx {
    book: Mutex<Book>,
    reader: Mutex<MarkerReader>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    /// Called on every alert record before it is decoded (`crate::RecordHook`).
    on_record: Option<RecordHook>,
    /// A send task that panicked: the loop returns it.
    failure: Mutex<Option<NotifyError>>,
}

impl ClientContext for Ctx {
    fn stats(&self, stats: rdkafka::Statistics) {
        let Some(t) = stats.topics.get(&self.shared.alerts_topic) else { return };
        let owned: Vec<i32> = self.book.lock().unwrap().parts.keys().copied().collect();
        let lag: i64 = owned.iter().filter_map(|p| t.partitions.get(p)).map(|p| p.consumer_lag_stored.max(0)).sum();
        self.shared.lag.set(lag);
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(notifier = %self.shared.target.name, partitions = ?parts, "alert partitions revoked: finishing the request in flight");
            self.finish_inflight(DRAIN);
            let mut b = self.book.lock().unwrap();
            // Eager protocol: everything is revoked. What was read and not sent
            // is dropped; the next owner reads it again from the committed offset.
            b.groups.clear();
            b.suppressed.clear();
            b.view.clear();
            b.pending = 0;
            self.store(consumer, &mut b);
            b.parts.clear();
            b.markers_ok = false;
            drop(b);
            commit_sync(consumer, &self.shared.target.name);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            // Learn what earlier owners sent before looking at any record.
            let ok = self.catch_up_markers();
            let mut b = self.book.lock().unwrap();
            b.markers_ok = ok;
            b.paused = false;
            for p in &parts {
                b.parts.insert(*p, Part { next: -1, stored: -1, ..Default::default() });
            }
            tracing::info!(notifier = %self.shared.target.name, partitions = ?parts, known = b.log.len(), "alert partitions assigned");
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(notifier = %self.shared.target.name, error = %e, "offset commit failed (the next one retries)");
        }
    }
}

fn commit_sync(consumer: &BaseConsumer<Ctx>, name: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(notifier = %name, error = %e, "offset commit failed"),
    }
}

impl Ctx {
    /// Read the sent topic to its end, retrying until it works or we stop.
    fn catch_up_markers(&self) -> bool {
        let mut reader = self.reader.lock().unwrap();
        loop {
            let mut b = self.book.lock().unwrap();
            match reader.catch_up(&mut b.log, Duration::from_secs(30)) {
                Ok(n) => {
                    tracing::debug!(notifier = %self.shared.target.name, markers = n, "sent-markers read");
                    return true;
                }
                Err(e) => tracing::warn!(notifier = %self.shared.target.name, error = %e, "cannot read the sent-markers; not notifying until it works"),
            }
            drop(b);
            if self.stop.is_cancelled() {
                return false;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Store releasable offsets of every assigned partition.
    fn store(&self, consumer: &BaseConsumer<Ctx>, b: &mut Book) {
        let mut tpl = TopicPartitionList::new();
        for (p, part) in b.parts.iter_mut() {
            if let Some(off) = part.releasable() {
                if off > part.stored {
                    let _ = tpl.add_partition_offset(&self.shared.alerts_topic, *p, Offset::Offset(off));
                    part.stored = off;
                }
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.store_offsets(&tpl) {
                tracing::debug!(notifier = %self.shared.target.name, error = %e, "store_offsets failed (partition gone?)");
            }
        }
    }

    /// Wait up to `wait` for the request in flight and record its outcome; after
    /// that, abandon it (see the guarantee in the crate doc).
    fn finish_inflight(&self, wait: Duration) {
        let Some(f) = self.book.lock().unwrap().inflight.take() else { return };
        match f.done.recv_timeout(wait) {
            Ok(markers) => self.record(f.items, markers),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                f.task.abort();
                tracing::warn!(notifier = %self.shared.target.name, alerts = f.items.len(), "request still in flight after the drain timeout: abandoned, the next owner sends it");
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => self.task_ended(f.task),
        }
    }

    /// The send task ended without an outcome: it panicked. The caller stops.
    fn task_ended(&self, task: tokio::task::JoinHandle<()>) {
        let what = format!("notifier {}'s send task", self.shared.target.name);
        let e = error::task_result(&what, self.shared.runtime.block_on(task)).err();
        let mut f = self.failure.lock().unwrap();
        if f.is_none() {
            *f = Some(e.unwrap_or(NotifyError::Ended { what }));
        }
    }

    /// Non-blocking: record the outcome of the request in flight if it is done.
    fn poll_inflight(&self) {
        let mut b = self.book.lock().unwrap();
        let Some(f) = &b.inflight else { return };
        match f.done.try_recv() {
            Ok(markers) => {
                let f = b.inflight.take().expect("checked");
                drop(b);
                self.record(f.items, markers);
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                let f = b.inflight.take().expect("checked");
                drop(b);
                self.task_ended(f.task);
            }
        }
    }

    fn record(&self, items: Vec<(String, i64, bool, i32, Option<i64>)>, markers: Vec<Marker>) {
        let mut b = self.book.lock().unwrap();
        for ((id, version, firing, p, off), m) in items.into_iter().zip(markers) {
            match m.outcome {
                Outcome::Sent => drop(self.shared.sent.inc()),
                Outcome::Failed => drop(self.shared.failed.inc()),
                Outcome::Suppressed => {}
            }
            b.log.apply(m);
            if b.view.get(&id) == Some(&(version, firing)) {
                b.view.remove(&id);
            }
            if let (Some(off), Some(part)) = (off, b.parts.get_mut(&p)) {
                part.unfinished.remove(&off);
            }
            b.pending = b.pending.saturating_sub(1);
        }
    }

    fn on_message(&self, m: &BorrowedMessage<'_>) {
        let (p, off) = (m.partition(), m.offset());
        if let Some(hook) = &self.on_record {
            hook(m.payload().unwrap_or_default(), &|| format!("notifier {} at alerts partition {p} offset {off}", self.shared.target.name));
        }
        let mut b = self.book.lock().unwrap();
        if !b.markers_ok {
            return;
        }
        let Some(part) = b.parts.get_mut(&p) else { return };
        part.next = off + 1;
        let s = &self.shared;
        let alert: Alert = match s.codec.decode(m.payload().unwrap_or_default()) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(notifier = %s.target.name, partition = p, offset = off, error = %e, "undecodable alert record skipped");
                s.metrics.skip(&s.target.name, "undecodable");
                return;
            }
        };
        if let (Some(max), Some(ts)) = (s.max_age_ms, m.timestamp().to_millis()) {
            if now_ms() - ts > max {
                s.metrics.skip(&s.target.name, "stale");
                return;
            }
        }
        let prev = b.view.get(&alert.id).copied().or_else(|| b.log.get(&alert.id));
        match decide(prev, &alert, s.send_resolved) {
            Decision::Skip(reason) => s.metrics.skip(&s.target.name, reason),
            d => {
                b.parts.get_mut(&p).expect("checked").unfinished.insert(off);
                b.view.insert(alert.id.clone(), (alert.version, alert.firing));
                b.pending += 1;
                let item = Item { alert, partition: p, offset: Some(off), repeat: false };
                if d == Decision::Suppress {
                    b.suppressed.push(item);
                } else {
                    self.enqueue(&mut b, item);
                }
            }
        }
    }

    fn enqueue(&self, b: &mut Book, item: Item) {
        b.groups.push(item, Instant::now());
    }

    /// Start sending due groups (all of them with `force`) when nothing is in flight.
    fn maybe_flush(&self, force: bool) {
        let mut b = self.book.lock().unwrap();
        if b.inflight.is_some() {
            return;
        }
        // Groups due within COALESCE go now too: alerts read in one poll batch
        // reach Alertmanager in one POST instead of one per group.
        let groups = b.groups.take_due(Instant::now() + COALESCE, force);
        if groups.is_empty() && b.suppressed.is_empty() {
            return;
        }
        let suppressed = std::mem::take(&mut b.suppressed);
        let items = groups
            .iter()
            .flat_map(|g| g.items.iter())
            .chain(suppressed.iter())
            .map(|i| (i.alert.id.clone(), i.alert.version, i.alert.firing, i.partition, i.offset))
            .collect();
        let (tx, rx) = mpsc::sync_channel(1);
        let shared = self.shared.clone();
        let task = self.shared.runtime.spawn(async move {
            let markers = deliver(&shared, groups, suppressed).await;
            let _ = tx.send(markers);
        });
        b.inflight = Some(InFlight { items, done: rx, task });
    }

    /// Queue reminders of firing alerts whose `repeat_interval` passed.
    fn repeats(&self) {
        let Some(every) = self.shared.repeat_ms else { return };
        let mut b = self.book.lock().unwrap();
        if !b.markers_ok {
            return;
        }
        let due = b.log.due_repeats(now_ms(), every, |p| b.parts.contains_key(&p), |id| b.view.contains_key(id));
        for (alert, partition) in due {
            b.view.insert(alert.id.clone(), (alert.version, true));
            b.pending += 1;
            self.shared.repeats.inc();
            self.enqueue(&mut b, Item { alert, partition, offset: None, repeat: true });
        }
    }

    /// Until when the loop may block in `poll`.
    fn poll_timeout(&self) -> Duration {
        let b = self.book.lock().unwrap();
        let next = b.groups.next_deadline();
        let cap = if b.inflight.is_some() { Duration::from_millis(20) } else { Duration::from_millis(100) };
        next.map_or(cap, |d| d.saturating_duration_since(Instant::now()).min(cap))
    }
}

/// Send the groups, write a marker per alert (and per suppressed one), wait for
/// the markers' acks, return them in item order.
async fn deliver(s: &Shared, groups: Vec<Group>, suppressed: Vec<Item>) -> Vec<Marker> {
    let t = &s.target;
    let mut outcome: Vec<Outcome> = Vec::with_capacity(groups.len());
    let result = |d: Delivery| match d {
        Delivery::Delivered { .. } => Outcome::Sent,
        Delivery::Failed { reason, attempts } => {
            tracing::error!(notifier = %t.name, %reason, attempts, "notification failed for good");
            Outcome::Failed
        }
    };
    match t.kind {
        NotifierKind::Alertmanager if groups.is_empty() => {}
        NotifierKind::Alertmanager => {
            let refs: Vec<&Group> = groups.iter().collect();
            let body = alertmanager::body(t, &refs, now_ms() * 1000);
            let o = result(send::post(t, &body, &s.policy, &s.counters).await);
            outcome.resize(groups.len(), o);
        }
        NotifierKind::Webhook | NotifierKind::Slack => {
            for g in &groups {
                let body = if t.kind == NotifierKind::Slack { slack::body(t, g) } else { webhook::body(t, g) };
                outcome.push(result(send::post(t, &body, &s.policy, &s.counters).await));
            }
        }
    }
    let at_ms = now_ms();
    let markers: Vec<Marker> = groups
        .iter()
        .zip(outcome)
        .flat_map(|(g, o)| g.items.iter().map(move |i| (i, o)))
        .chain(suppressed.iter().map(|i| (i, Outcome::Suppressed)))
        .map(|(i, o)| Marker {
            notifier: t.name.clone(),
            alert_id: i.alert.id.clone(),
            version: i.alert.version,
            firing: i.alert.firing,
            outcome: o,
            at_ms,
            partition: i.partition,
            alert: i.alert.firing.then(|| i.alert.clone()),
        })
        .collect();
    let records: Vec<(String, Vec<u8>)> = markers.iter().map(|m| (key(&m.notifier, &m.alert_id), serde_json::to_vec(m).unwrap_or_default())).collect();
    let acks: Vec<_> = records
        .iter()
        .map(|(k, payload)| s.producer.send(FutureRecord::to(&s.sent_topic).key(k).payload(payload), rdkafka::util::Timeout::Never))
        .collect();
    for r in futures::future::join_all(acks).await {
        if let Err((e, _)) = r {
            tracing::error!(notifier = %t.name, error = %e, "sent-marker not written: these alerts may be notified again after a restart");
        }
    }
    markers
}

/// One notifier's consumer and loop.
pub struct Pipeline {
    consumer: BaseConsumer<Ctx>,
    stop: CancellationToken,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &NotifyConfig,
        base: &ClientConfig,
        alerts_topic: &str,
        target: Target,
        codec: Codec,
        producer: FutureProducer,
        metrics: NotifyMetrics,
        runtime: tokio::runtime::Handle,
        stop: CancellationToken,
        on_record: Option<RecordHook>,
    ) -> Result<Self, NotifyError> {
        let policy = RetryPolicy::from_config(cfg);
        let name = target.name.clone();
        let mut cc = runtime::kafka::consumer_config(base, &format!("{}.{}", cfg.group_id, name));
        // Eager assignment: a revoke takes every partition, which the
        // revoke handling above relies on.
        cc.set("partition.assignment.strategy", "range,roundrobin")
            // At-least-once with sent-markers (module doc): librdkafka commits what
            // this loop stored.
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", (cfg.commit_interval_secs * 1000).to_string())
            // The loop never blocks in a request (they run on the runtime), but a
            // revoke waits up to DRAIN: keep the poll interval well above it.
            .set("max.poll.interval.ms", "300000");
        let reader = MarkerReader::new(base, &cfg.sent_topic, &name)?;
        let shared = Arc::new(Shared {
            alerts_topic: alerts_topic.into(),
            sent_topic: cfg.sent_topic.clone(),
            repeat_ms: (cfg.repeat_interval_secs > 0).then(|| cfg.repeat_interval_secs as i64 * 1000),
            send_resolved: cfg.send_resolved,
            max_age_ms: (cfg.max_age_secs > 0).then(|| cfg.max_age_secs as i64 * 1000),
            max_pending: cfg.max_pending,
            policy,
            codec,
            producer,
            runtime,
            counters: Counters { requests: NotifyMetrics::counter(&metrics.requests, &name), retried: NotifyMetrics::counter(&metrics.retried, &name) },
            sent: NotifyMetrics::counter(&metrics.sent, &name),
            failed: NotifyMetrics::counter(&metrics.failed, &name),
            repeats: NotifyMetrics::counter(&metrics.repeats, &name),
            pending: NotifyMetrics::gauge(&metrics.pending, &name),
            lag: NotifyMetrics::gauge(&metrics.lag, &name),
            firing: NotifyMetrics::gauge(&metrics.firing, &name),
            metrics,
            target,
        });
        let book = Book {
            log: SentLog::default(),
            groups: Groups::new(cfg.group_by.clone(), cfg.group_wait()),
            suppressed: Vec::new(),
            view: FxHashMap::default(),
            pending: 0,
            inflight: None,
            parts: FxHashMap::default(),
            markers_ok: false,
            paused: false,
        };
        let ctx = Ctx { book: Mutex::new(book), reader: Mutex::new(reader), shared, stop: stop.clone(), on_record, failure: Mutex::default() };
        let consumer: BaseConsumer<Ctx> = cc.create_with_context(ctx)?;
        consumer.subscribe(&[alerts_topic])?;
        Ok(Pipeline { consumer, stop })
    }

    /// Poll, decide, group, send, release — until the stop signal; then send what
    /// is pending (up to [`DRAIN`]), commit and leave the group. A send task that
    /// panicked ends it at once with the error.
    pub fn run(self) -> Result<(), NotifyError> {
        let ctx = self.consumer.context();
        let s = ctx.shared.clone();
        let mut last_tick = Instant::now();
        let mut last_prune = Instant::now();
        while !self.stop.is_cancelled() {
            ctx.poll_inflight();
            if let Some(e) = ctx.failure.lock().unwrap().take() {
                return Err(e);
            }
            ctx.maybe_flush(false);
            match self.consumer.poll(ctx.poll_timeout()) {
                Some(Ok(m)) => ctx.on_message(&m),
                Some(Err(e)) => tracing::warn!(notifier = %s.target.name, error = %e, "consumer error"),
                None => {}
            }
            self.backpressure();
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                ctx.repeats();
                let mut b = ctx.book.lock().unwrap();
                ctx.store(&self.consumer, &mut b);
                if let (Some(max), true) = (s.max_age_ms, last_prune.elapsed() >= Duration::from_secs(60)) {
                    last_prune = Instant::now();
                    b.log.prune(now_ms() - max);
                }
                s.pending.set(b.pending as i64);
                s.firing.set(b.log.firing() as i64);
            }
        }
        tracing::info!(notifier = %s.target.name, "notifier stopping: sending what is pending");
        let deadline = Instant::now() + DRAIN;
        loop {
            ctx.finish_inflight(deadline.saturating_duration_since(Instant::now()));
            let b = ctx.book.lock().unwrap();
            let idle = b.groups.is_empty() && b.suppressed.is_empty() && b.inflight.is_none();
            drop(b);
            if idle || Instant::now() >= deadline {
                break;
            }
            ctx.maybe_flush(true);
        }
        let mut b = ctx.book.lock().unwrap();
        ctx.store(&self.consumer, &mut b);
        drop(b);
        commit_sync(&self.consumer, &s.target.name);
        self.consumer.unsubscribe();
        ctx.failure.lock().unwrap().take().map_or(Ok(()), Err)
    }

    /// Stop fetching while `max_pending` alerts wait; resume at half.
    fn backpressure(&self) {
        let ctx = self.consumer.context();
        let mut b = ctx.book.lock().unwrap();
        let pause = b.pending >= ctx.shared.max_pending;
        if pause == b.paused || (!pause && b.pending > ctx.shared.max_pending / 2) {
            return;
        }
        let Ok(assignment) = self.consumer.assignment() else { return };
        let r = if pause { self.consumer.pause(&assignment) } else { self.consumer.resume(&assignment) };
        if r.is_ok() {
            b.paused = pause;
        }
    }
}
