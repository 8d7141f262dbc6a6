//! One leadership term of the collector: read the cursor from the topic, start a
//! watch per scope, and publish what they produce plus periodic heartbeats, until
//! shutdown or loss of leadership. [`supervise`] loops over terms.

use rdkafka::producer::FutureProducer;
use runtime::ops::Health;
use schemas::model::ClusterId;
use schemas::records::{CollectorMeta, Heartbeat, RawRecord, WatchEvent};
use std::collections::BTreeMap;
use std::time::Duration;
use runtime::shutdown::CancellationToken;
use tokio::sync::mpsc;

use runtime::backoff::Backoff;
use crate::config::CollectorConfig;
use crate::cursor::{consumer_config, read_cursor, CursorError};
use crate::leader::Elector;
use crate::metrics::Metrics;
use crate::publish::{now_us, partition_for, partitions_of, producer_config, Budget, PublishError, Publisher};
use crate::source::EventSource;
use crate::watch::{Item, Machine, ScopeWatch};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("reading the cursor: {0}")]
    Cursor(#[from] CursorError),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// A scope's watch task ended while the collector ran (a panic, or a return it
    /// never makes): its scope would go silent while the others keep health green,
    /// so the collector stops and its supervisor restarts it.
    #[error("the watch of scope {scope:?} ended: {how}")]
    WatchEnded { scope: String, how: String },
}

const PROBE_WATCH: &str = "watch";
const PROBE_PUBLISH: &str = "publish";


/// A standby makes no watch progress by design: keep its probes fresh while it
/// waits for the lease.
async fn standby_alive(health: &Health) {
    loop {
        health.touch(PROBE_WATCH);
        health.touch(PROBE_PUBLISH);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How much time a graceful stop gives Kafka to acknowledge what was sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

struct ScopeState {
    rv: String,
    last_bookmark_us: i64,
    since_heartbeat: i64,
}

fn instance_name(cfg: &CollectorConfig) -> String {
    cfg.instance
        .clone()
        .or_else(|| cfg.leader_election.as_ref().and_then(|l| l.identity.clone()))
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "collector".into())
}

/// Retry `f` with backoff until it succeeds or `stop` is cancelled. `None` = stopped.
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    stop: &CancellationToken,
    mut f: impl FnMut() -> F,
) -> Option<T> {
    let mut backoff = Backoff::default();
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => {
                let d = backoff.next_delay(None);
                tracing::warn!(error = %e, retry_in = ?d, "{what} failed");
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stop.cancelled() => return None,
                }
            }
        }
    }
}

/// Run leadership terms until `stop` is cancelled.
pub async fn supervise(
    cfg: CollectorConfig,
    client: kube::Client,
    metrics: Metrics,
    health: Health,
    stop: CancellationToken,
) -> Result<(), PipelineError> {
    let uid = match &cfg.cluster.uid {
        Some(u) => u.clone(),
        None => {
            let c = client.clone();
            match retry("reading the kube-system namespace UID", &stop, || crate::source::cluster_uid(c.clone())).await {
                Some(u) => u,
                None => return Ok(()),
            }
        }
    };
    let cluster = ClusterId { name: cfg.cluster.name.clone().into(), uid: uid.clone().into() };
    let codec = match retry("registering the Avro schemas", &stop, || runtime::registry::codec(cfg.schema_registry.as_ref())).await {
        Some(c) => c,
        None => return Ok(()),
    };
    let budget = Budget { records: cfg.max_in_flight, bytes: cfg.max_in_flight_bytes };
    let producer: FutureProducer = producer_config(&cfg.kafka, budget)?
        .create()
        .map_err(PublishError::from)?;
    if cfg.create_topic_partitions > 0 {
        let (kafka, topic, n) = (cfg.kafka.clone(), cfg.topic.clone(), cfg.create_topic_partitions);
        if retry("creating the raw topic", &stop, || {
            let (kafka, topic) = (kafka.clone(), topic.clone());
            async move {
                let client = kafka.client_config().map_err(|e| e.to_string())?;
                runtime::kafka::ensure_topic(&client, &topic, n, &[]).await.map_err(|e| e.to_string())
            }
        })
        .await
        .is_none()
        {
            return Ok(());
        }
    }
    let partitions = {
        let p = producer.clone();
        let topic = cfg.topic.clone();
        match retry("reading the raw topic's metadata", &stop, || {
            let (p, topic) = (p.clone(), topic.clone());
            async move { tokio::task::spawn_blocking(move || partitions_of(&p, &topic)).await.expect("metadata task") }
        })
        .await
        {
            Some(n) => n,
            None => return Ok(()),
        }
    };
    let partition = partition_for(uid.as_bytes(), partitions);
    health.set_ready("kafka", true, format!("topic {} partition {partition}", cfg.topic));
    // Not ready until a watch is established (a standby replica stays not ready).
    health.set_ready("watch", false, "not watching yet");
    // Liveness. `watch`: an event, bookmark or (re)opened watch at least every watch
    // timeout + stall timeout (a quiet cluster without bookmarks only re-watches).
    // `publish`: Kafka acknowledges within the stall timeout (heartbeats guarantee
    // there is always something to acknowledge).
    health.probe(PROBE_WATCH, Duration::from_secs(cfg.watch_timeout_secs as u64 + cfg.stall_timeout_secs));
    health.probe(PROBE_PUBLISH, Duration::from_secs(cfg.stall_timeout_secs));
    tracing::info!(cluster = %cluster.name, cluster_uid = %uid, topic = %cfg.topic, partition, "collector starting");
    let instance = instance_name(&cfg);
    let elector = cfg
        .leader_election
        .as_ref()
        .map(|le| Elector::new(client.clone(), le, instance.clone()));
    loop {
        let acquired = match &elector {
            None => None,
            Some(e) => {
                health.set_ready("leader", true, "standby (follower)");
                health.set_ready("watch", false, "standby: another replica leads");
                metrics.leader.set(0);
                tokio::select! {
                    acquired = e.acquire() => Some(acquired),
                    _ = standby_alive(&health) => unreachable!("loops forever"),
                    _ = stop.cancelled() => return Ok(()),
                }
            }
        };
        let epoch = acquired.map_or(0, |(epoch, _)| epoch);
        metrics.leader.set(1);
        health.set_ready("leader", true, format!("leader, epoch {epoch}"));
        tracing::info!(epoch, %instance, "publishing as leader");
        let term = Term {
            cfg: &cfg,
            client: client.clone(),
            cluster: cluster.clone(),
            meta: CollectorMeta { instance: instance.clone(), leader_epoch: epoch },
            publisher: Publisher::new(producer.clone(), &cfg.topic, partition, budget, codec.clone(), metrics.clone()),
            codec: codec.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
        };
        let lost = async {
            match &elector {
                Some(e) => e.hold(epoch, acquired.expect("elected").1).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = term.run(&stop) => {
                if let Some(e) = &elector {
                    e.release().await;
                }
                return r;
            }
            _ = lost => {
                tracing::warn!(epoch, "leadership lost: stopped publishing");
                health.set_ready("watch", false, "not leader");
            }
        }
    }
}

struct Term<'a> {
    cfg: &'a CollectorConfig,
    codec: schemas::avro::Codec,
    client: kube::Client,
    cluster: ClusterId,
    meta: CollectorMeta,
    publisher: Publisher,
    metrics: Metrics,
    health: Health,
}

impl Term<'_> {
    fn record(&self, rv: String, event: Option<WatchEvent>, heartbeat: Option<Heartbeat>) -> RawRecord {
        RawRecord {
            cluster: self.cluster.clone(),
            collector: self.meta.clone(),
            observed_us: now_us(),
            resource_version: rv,
            event,
            heartbeat,
        }
    }

    async fn run(mut self, stop: &CancellationToken) -> Result<(), PipelineError> {
        let cfg = self.cfg;
        let scoped = !cfg.namespaces.is_empty();
        let scopes: Vec<String> = if scoped { cfg.namespaces.clone() } else { vec![String::new()] };
        let cursor = {
            let codec = self.codec.clone();
            let consumer = consumer_config(&cfg.kafka, cfg.max_in_flight_bytes)?;
            let (topic, partition, uid, scopes) = (
                cfg.topic.clone(),
                self.publisher.partition(),
                self.cluster.uid.clone(),
                scopes.clone(),
            );
            tokio::task::spawn_blocking(move || read_cursor(consumer, &topic, partition, &uid, &scopes, scoped, &codec))
                .await
                .expect("cursor task")?
        };
        tracing::info!(resume = ?cursor.resume, scanned = cursor.scanned, last_epoch = cursor.last_epoch, "cursor read from the raw topic");
        let (tx, mut rx) = mpsc::channel::<Item>(256);
        let mut state: BTreeMap<String, ScopeState> = BTreeMap::new();
        let mut watchers = Vec::new();
        for scope in &scopes {
            let resume = cursor.resume.get(scope).cloned();
            state.insert(
                scope.clone(),
                ScopeState { rv: resume.clone().unwrap_or_default(), last_bookmark_us: 0, since_heartbeat: 0 },
            );
            let source = EventSource::new(
                self.client.clone(),
                cfg.api,
                if scoped { Some(scope.as_str()) } else { None },
                cfg.field_selector.clone(),
                cfg.label_selector.clone(),
            );
            let machine = Machine::new(source, cfg.watch_timeout_secs, cfg.watch_idle_timeout());
            let w = ScopeWatch::new(scope.clone(), machine, cfg.drop.clone(), self.metrics.clone(), tx.clone());
            watchers.push(tokio::spawn(w.run(resume)));
        }
        drop(tx);
        // Ready once every scope's watch is established (after its first list).
        let mut live = std::collections::BTreeSet::new();
        self.health.set_ready("watch", false, "listing");
        let mut tick = tokio::time::interval(cfg.heartbeat_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            if self.publisher.ack_ready()? > 0 || self.publisher.in_flight() == 0 {
                self.health.touch(PROBE_PUBLISH);
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => break Ok(()),
                (ended, i, _) = futures::future::select_all(watchers.iter_mut()), if !watchers.is_empty() => {
                    let how = match ended {
                        Ok(stop) => format!("returned ({stop:?})"),
                        Err(e) if e.is_panic() => format!("panicked: {}", runtime::shutdown::panic_message(e.into_panic().as_ref())),
                        Err(e) => e.to_string(),
                    };
                    tracing::error!(scope = %scopes[i], %how, "a watch task ended: the collector stops");
                    break Err(PipelineError::WatchEnded { scope: scopes[i].clone(), how });
                }
                acked = self.publisher.acked() => {
                    acked?;
                    self.health.touch(PROBE_PUBLISH);
                }
                item = rx.recv() => {
                    let Some(item) = item else { break Ok(()) };
                    self.health.touch(PROBE_WATCH);
                    if live.len() < scopes.len() {
                        if let Item::Progress { scope, .. } = &item {
                            live.insert(scope.clone());
                            if live.len() == scopes.len() {
                                self.health.set_ready("watch", true, format!("watching {} scope(s)", scopes.len()));
                            }
                        }
                    }
                    match item {
                        Item::Event { scope, kind, event, cursor_rv } => {
                            let rec = self.record(cursor_rv.clone(), Some(WatchEvent { kind, event }), None);
                            self.publisher.send(&rec, kind.as_str()).await?;
                            let s = state.get_mut(&scope).expect("known scope");
                            s.rv = cursor_rv;
                            s.since_heartbeat += 1;
                        }
                        Item::Progress { scope, rv, bookmark } => {
                            let s = state.get_mut(&scope).expect("known scope");
                            s.rv = rv;
                            if bookmark {
                                s.last_bookmark_us = now_us();
                            }
                        }
                    }
                }
                _ = tick.tick() => {
                    for (scope, s) in state.iter_mut() {
                        if s.rv.is_empty() {
                            continue;
                        }
                        let hb = Heartbeat {
                            scope: scope.clone(),
                            resource_version: s.rv.clone(),
                            last_bookmark_us: s.last_bookmark_us,
                            published_since_last: s.since_heartbeat,
                        };
                        s.since_heartbeat = 0;
                        let rec = self.record(s.rv.clone(), None, Some(hb));
                        self.publisher.send(&rec, "HEARTBEAT").await?;
                    }
                }
            }
        };
        drop(rx);
        for w in watchers {
            w.abort();
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, self.publisher.drain()).await {
            Ok(r) => r?,
            Err(_) => tracing::warn!(in_flight = self.publisher.in_flight(), "Kafka did not acknowledge everything before the drain timeout; the next start resumes from the last acknowledged record"),
        }
        result
    }
}
