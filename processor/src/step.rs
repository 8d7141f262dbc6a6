//! The per-record step: decide (leader epoch, occurrences), then classify and
//! extract metadata, then build the outputs. Pure given (state, input): no clock,
//! no randomness, no I/O — which is what lets a replay rebuild the state and a
//! new owner re-emit byte-identical records.
//!
//! [`PartitionState::replay`] applies exactly the state changes of
//! [`PartitionState::process`] without building outputs (no classification), so
//! a restore costs a fraction of processing.

use schemas::ids::event_version_id;
use schemas::records::{Alert, ClusterHeartbeat, Incident, Pattern, ProcessedEvent, RawRecord, SourcePos, WatchKind};
use std::sync::Arc;

use crate::alerts::{AlertEngine, AlertRules};
use crate::classify::{Classifier, ClassifyCache, RuleError};
use crate::config::ProcessorConfig;
use crate::correlate::{self, CorrInput, CorrelationState};
use crate::metadata::{MetadataCache, MetadataExtractor};
use crate::patterns::{PatternConfig, PatternDetector, PatternInput};
use crate::metrics::LocalCounts;
use crate::occurrence::{OccurrenceState, Verdict};
use crate::output::{next_seq, Output, OutputKind};

/// The immutable rules every worker shares (`Arc`), and the limits of each
/// partition's state.
#[derive(Debug)]
pub struct Engine {
    pub classifier: Classifier,
    pub extractor: MetadataExtractor,
    pub correlation: correlate::Rules,
    pub correlation_limits: correlate::Limits,
    pub alerts: Arc<AlertRules>,
    /// Firing alerts remembered per partition (`alerts.max_firing_per_partition`).
    pub max_firing_alerts: usize,
    pub patterns: PatternConfig,
}

impl Engine {
    /// Built-in rules and extractors only.
    pub fn builtin() -> Self {
        Engine {
            classifier: Classifier::builtin(),
            extractor: MetadataExtractor::builtin(),
            correlation: correlate::Rules::builtin(),
            correlation_limits: correlate::Limits::default(),
            alerts: Arc::new(AlertRules::builtin()),
            max_firing_alerts: crate::alerts::AlertsConfig::default().max_firing_per_partition,
            patterns: PatternConfig::default(),
        }
    }

    /// Built-in rules plus the users' files the configuration names.
    pub fn from_config(cfg: &ProcessorConfig) -> Result<Self, RuleError> {
        Ok(Engine {
            classifier: Classifier::with_user_files(&cfg.rules_files)?,
            extractor: MetadataExtractor::with_user_files(&cfg.metadata_files)?,
            correlation: correlate::Rules::load(&cfg.correlation.rules_files)?,
            correlation_limits: cfg.correlation.limits(),
            alerts: Arc::new(AlertRules::with_user_files(&cfg.alerts.rules_files)?),
            max_firing_alerts: cfg.alerts.max_firing_per_partition,
            patterns: cfg.patterns.clone(),
        })
    }
}

/// A raw record that decodes but breaks the contract: permanent, dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRecord {
    #[error("raw record has neither an event nor a heartbeat")]
    Empty,
    #[error("raw record has both an event and a heartbeat")]
    Both,
}

/// What the decision part of the step concluded.
enum Decision {
    StaleEpoch,
    Heartbeat,
    Event(Verdict),
}

/// Everything one raw partition's worker keeps: occurrence and correlation
/// state (the part that must survive an owner change, see `restore`) and memo
/// caches (which do not: they only save work).
#[derive(Debug)]
pub struct PartitionState {
    partition: i32,
    occ: OccurrenceState,
    corr: CorrelationState,
    classify: ClassifyCache,
    meta: MetadataCache,
    incidents: Vec<Incident>,
    /// Created from the engine's config on first use.
    detector: Option<PatternDetector>,
    patterns: Vec<Pattern>,
    /// Created from the engine's rules on first use.
    alert_engine: Option<AlertEngine>,
    alerts: Vec<Alert>,
    replay_out: Vec<Output>,
    pub counts: LocalCounts,
}

impl PartitionState {
    pub fn new(partition: i32, horizon_us: i64, max_entries: usize) -> Self {
        PartitionState {
            partition,
            occ: OccurrenceState::new(horizon_us, max_entries),
            corr: CorrelationState::new(correlate::Limits::default()),
            classify: ClassifyCache::default(),
            meta: MetadataCache::default(),
            incidents: Vec::new(),
            detector: None,
            patterns: Vec::new(),
            alert_engine: None,
            alerts: Vec::new(),
            replay_out: Vec::new(),
            counts: LocalCounts::default(),
        }
    }

    /// The same, with the engine's limits on correlation state.
    pub fn for_engine(engine: &Engine, partition: i32, horizon_us: i64, max_entries: usize) -> Self {
        PartitionState { corr: CorrelationState::new(engine.correlation_limits), ..Self::new(partition, horizon_us, max_entries) }
    }

    pub fn correlation(&self) -> &CorrelationState {
        &self.corr
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn occurrences(&self) -> &OccurrenceState {
        &self.occ
    }

    fn decide(&mut self, raw: &RawRecord) -> Result<Decision, BadRecord> {
        match (&raw.event, &raw.heartbeat) {
            (None, None) => return Err(BadRecord::Empty),
            (Some(_), Some(_)) => return Err(BadRecord::Both),
            _ => {}
        }
        let t = record_time_us(raw);
        // Ingested application events take no part in the collector's leadership
        // terms: neither dropped behind them nor raising them (CollectorMeta::is_ingest).
        if !raw.collector.is_ingest() && !self.occ.accept_epoch(&raw.cluster.uid, raw.collector.leader_epoch) {
            self.occ.advance(t);
            return Ok(Decision::StaleEpoch);
        }
        Ok(match &raw.event {
            Some(w) => Decision::Event(self.occ.observe(&raw.cluster.uid, w.kind, &w.event, t)),
            None => {
                self.occ.advance(t);
                Decision::Heartbeat
            }
        })
    }

    /// Rebuild state from a record an earlier owner already processed: exactly
    /// [`Self::process`] with the outputs thrown away (correlation needs the
    /// classification, so nothing is skipped), counted only as replayed.
    pub fn replay(&mut self, engine: &Engine, raw: RawRecord, offset: i64) -> Result<(), BadRecord> {
        let counts = std::mem::take(&mut self.counts);
        let mut out = std::mem::take(&mut self.replay_out);
        let r = self.process(engine, raw, offset, &mut out);
        out.clear();
        self.replay_out = out;
        self.counts = counts;
        self.counts.replayed += 1;
        r
    }

    /// Correlation of one event version; the incident versions it caused are
    /// left in `self.incidents`.
    fn correlate(&mut self, engine: &Engine, raw_cluster: &schemas::model::ClusterId, p: &ProcessedEvent, t: i64) -> Option<String> {
        let before = self.corr.counts;
        let id = if p.watch_kind == WatchKind::Deleted {
            self.corr.advance(&engine.correlation, t, &mut self.incidents);
            self.corr.member_of(&raw_cluster.uid, &p.event.uid)
        } else {
            let input = CorrInput {
                cluster: raw_cluster,
                id: &p.id,
                ev: &p.event,
                category: &p.category,
                severity: p.severity,
                metadata: &p.metadata,
                occurrences: p.occurrences,
                t_us: t,
            };
            self.corr.observe(&engine.correlation, &input, &mut self.incidents)
        };
        self.counts.incidents(before, self.corr.counts);
        id
    }

    /// End of input (`kevents analyze`): a version of every open pattern whose
    /// latest occurrences no version carries yet, as outputs of `offset`.
    pub fn finish(&mut self, engine: &Engine, offset: i64, out: &mut Vec<Output>) {
        let start = out.len();
        if let Some(d) = self.detector.as_mut() {
            d.flush(&mut self.patterns);
        }
        self.push_results(engine, out, start, offset);
    }

    /// Appends the pending incident and pattern versions, and the alerts they
    /// raise or resolve, as outputs of the current input.
    fn push_results(&mut self, engine: &Engine, out: &mut Vec<Output>, start: usize, offset: i64) {
        if self.incidents.is_empty() && self.patterns.is_empty() {
            return;
        }
        let alerts = self.alert_engine.get_or_insert_with(|| AlertEngine::new(engine.alerts.clone(), engine.max_firing_alerts));
        for mut inc in self.incidents.drain(..) {
            inc.source = SourcePos { partition: self.partition, offset, seq: next_seq(out, start, OutputKind::Incident) };
            alerts.on_incident(&inc, &mut self.alerts);
            out.push(Output::Incident(inc));
        }
        for mut p in self.patterns.drain(..) {
            p.source = SourcePos { partition: self.partition, offset, seq: next_seq(out, start, OutputKind::Pattern) };
            alerts.on_pattern(&p, &mut self.alerts);
            out.push(Output::Pattern(p));
        }
        for mut a in self.alerts.drain(..) {
            a.source = SourcePos { partition: self.partition, offset, seq: next_seq(out, start, OutputKind::Alert) };
            out.push(Output::Alert(a));
        }
    }

    /// Process the record at `offset` of this partition, appending its outputs
    /// (in the order they must be written) to `out`.
    pub fn process(&mut self, engine: &Engine, raw: RawRecord, offset: i64, out: &mut Vec<Output>) -> Result<(), BadRecord> {
        let start = out.len();
        let partition = self.partition;
        let source = |seq| SourcePos { partition, offset, seq };
        let t = record_time_us(&raw);
        let decision = self.decide(&raw)?;
        if !matches!(decision, Decision::Event(Verdict::Emit { .. })) {
            let before = self.corr.counts;
            self.corr.advance(&engine.correlation, t, &mut self.incidents);
            self.counts.incidents(before, self.corr.counts);
        }
        if let Some(d) = detector(&mut self.detector, &engine.patterns) {
            d.advance(t, &mut self.patterns);
        }
        match decision {
            Decision::StaleEpoch => self.counts.stale_epochs += 1,
            Decision::Event(Verdict::Duplicate) => self.counts.duplicates += 1,
            Decision::Heartbeat => {
                let hb = raw.heartbeat.expect("decided a heartbeat");
                let resource_version = if hb.resource_version.is_empty() { raw.resource_version } else { hb.resource_version };
                let seq = next_seq(out, start, OutputKind::Heartbeat);
                out.push(Output::Heartbeat(ClusterHeartbeat {
                    source: source(seq),
                    cluster: raw.cluster,
                    collector: raw.collector,
                    observed_us: raw.observed_us,
                    resource_version,
                    last_bookmark_us: hb.last_bookmark_us,
                }));
            }
            Decision::Event(Verdict::Emit { occurrences, out_of_order }) => {
                if out_of_order {
                    self.counts.out_of_order += 1;
                }
                let w = raw.event.expect("decided an event");
                let ev = w.event;
                let rules_key = crate::memo::rule_inputs_hash(&ev);
                let c = self.classify.classify_keyed(&engine.classifier, &ev, rules_key);
                if c.unknown {
                    self.counts.unknown += 1;
                }
                self.counts.category(&c.category);
                let (category, severity, rule, labels) = (c.category.clone(), c.severity, c.rule.clone(), c.labels.clone());
                let metadata = self.meta.extract_keyed(&engine.extractor, &ev, rules_key);
                let id = event_version_id(&raw.cluster.uid, &ev.uid, &ev.resource_version, w.kind.as_str());
                let seq = next_seq(out, start, OutputKind::Processed);
                let mut p = ProcessedEvent {
                    source: source(seq),
                    correlation_id: String::new(),
                    id,
                    cluster: raw.cluster,
                    watch_kind: w.kind,
                    observed_us: raw.observed_us,
                    leader_epoch: raw.collector.leader_epoch,
                    event: ev,
                    category,
                    severity,
                    rule,
                    occurrences,
                    metadata,
                    labels,
                };
                let cluster = std::mem::take(&mut p.cluster);
                p.correlation_id = self.correlate(engine, &cluster, &p, t).unwrap_or_else(|| p.id.clone());
                p.cluster = cluster;
                if let Some(d) = detector(&mut self.detector, &engine.patterns) {
                    d.observe(
                        &PatternInput {
                            cluster: &p.cluster,
                            event_id: &p.id,
                            reason: &p.event.reason,
                            kind: &p.event.regarding.kind,
                            // A Node's events live in `default` but concern no namespace.
                            namespace: &p.event.regarding.namespace,
                            note: &p.event.note,
                            severity: p.severity,
                            occurrences: p.occurrences,
                            t_us: t,
                        },
                        &mut self.patterns,
                    );
                }
                out.push(Output::Processed(p));
            }
        }
        self.push_results(engine, out, start, offset);
        Ok(())
    }
}

/// The partition's pattern detector, created from the config on first use;
/// none when pattern detection is off.
fn detector<'a>(slot: &'a mut Option<PatternDetector>, cfg: &PatternConfig) -> Option<&'a mut PatternDetector> {
    if !cfg.enabled {
        return None;
    }
    Some(slot.get_or_insert_with(|| PatternDetector::new(cfg)))
}

/// The record's time for state ageing: when the collector received it, or the
/// event's own time for records written without one.
fn record_time_us(raw: &RawRecord) -> i64 {
    if raw.observed_us > 0 {
        return raw.observed_us;
    }
    raw.event.as_ref().map(|w| w.event.effective_time_us()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::model::{ClusterId, NormalizedEvent};
    use schemas::records::{CollectorMeta, Heartbeat, WatchEvent, WatchKind};

    fn raw(kind: WatchKind, uid: &str, rv: u64, count: i64, epoch: i64) -> RawRecord {
        RawRecord {
            cluster: ClusterId { name: "prod".into(), uid: "c1".into() },
            collector: CollectorMeta { instance: "i".into(), leader_epoch: epoch },
            observed_us: 1_700_000_000_000_000 + rv as i64,
            resource_version: rv.to_string(),
            event: Some(WatchEvent {
                kind,
                event: Box::new(NormalizedEvent {
                    uid: uid.into(),
                    namespace: "default".into(),
                    resource_version: rv.to_string().into(),
                    event_type: "Warning".into(),
                    reason: "BackOff".into(),
                    reporting_controller: "kubelet".into(),
                    reporting_instance: "node-1".into(),
                    note: "Back-off restarting failed container app in pod web-1_default(abc)".into(),
                    regarding: schemas::model::ObjectRef {
                        kind: "Pod".into(),
                        name: "web-1".into(),
                        field_path: "spec.containers{app}".into(),
                        ..Default::default()
                    },
                    count,
                    ..Default::default()
                }),
            }),
            heartbeat: None,
        }
    }

    #[test]
    fn process_builds_deterministic_outputs_and_replay_matches() {
        let engine = Engine::builtin();
        let inputs = [
            raw(WatchKind::Added, "a", 10, 1, 1),
            raw(WatchKind::Modified, "a", 11, 4, 1),
            raw(WatchKind::Modified, "a", 11, 4, 1), // duplicate
            raw(WatchKind::Modified, "a", 12, 5, 0), // stale epoch
            RawRecord {
                heartbeat: Some(Heartbeat { resource_version: "12".into(), ..Default::default() }),
                event: None,
                ..raw(WatchKind::Added, "-", 12, 1, 1)
            },
            raw(WatchKind::Modified, "a", 13, 6, 1),
        ];
        let run = |replay_first: usize| {
            let mut s = PartitionState::new(3, 7_200_000_000, 1000);
            for (i, r) in inputs[..replay_first].iter().enumerate() {
                s.replay(&engine, r.clone(), 100 + i as i64).unwrap();
            }
            let mut out = Vec::new();
            for (i, r) in inputs.iter().enumerate().skip(replay_first) {
                s.process(&engine, r.clone(), 100 + i as i64, &mut out).unwrap();
            }
            (out, s)
        };
        let (all, s) = run(0);
        let occ: Vec<i64> = all
            .iter()
            .filter_map(|o| match o {
                Output::Processed(p) => Some(p.occurrences),
                _ => None,
            })
            .collect();
        assert_eq!(occ, vec![1, 3, 2], "the stale-epoch version (count 5) changed nothing");
        assert_eq!((s.counts.duplicates, s.counts.stale_epochs), (1, 1));
        let Output::Processed(p) = &all[0] else { panic!() };
        assert_eq!(&*p.category, "container-crash");
        assert_eq!(p.metadata.get("container"), Some("app"));
        assert_eq!(p.source, SourcePos { partition: 3, offset: 100, seq: 0 });
        assert_eq!(p.id, event_version_id("c1", "a", "10", "ADDED"));
        // A crash-loop back-off opens an incident whose id is the root event's.
        assert_eq!(p.correlation_id, p.id);
        let Output::Incident(inc) = &all[1] else { panic!("{:?}", all[1]) };
        assert_eq!((inc.id.as_str(), inc.version, inc.source.seq), (p.id.as_str(), 1, 0));
        let hb = all.iter().find(|o| o.kind() == OutputKind::Heartbeat).unwrap();
        assert_eq!(hb.source().offset, 104);
        // A new owner that replays the first four records emits exactly the tail.
        let (tail, _) = run(4);
        let expected: Vec<Output> = all.iter().filter(|o| o.source().offset >= 104).cloned().collect();
        assert_eq!(tail, expected);
    }

    #[test]
    fn patterns_can_be_switched_off() {
        // A crash loop: the same warning every 10 s, its count rising.
        let inputs: Vec<RawRecord> = (1..=30).map(|i| raw(if i == 1 { WatchKind::Added } else { WatchKind::Modified }, "a", 10 + i, i as i64, 1)).collect();
        let run = |engine: &Engine| {
            let mut s = PartitionState::new(0, 7_200_000_000, 1000);
            let mut out = Vec::new();
            for (i, r) in inputs.iter().enumerate() {
                let mut r = r.clone();
                r.observed_us = 1_700_000_000_000_000 + i as i64 * 10_000_000;
                s.process(engine, r, i as i64, &mut out).unwrap();
            }
            out
        };
        let on = run(&Engine::builtin());
        assert!(on.iter().any(|o| o.kind() == OutputKind::Pattern), "the default engine sees the repeat as a pattern");
        let mut engine = Engine::builtin();
        engine.patterns.enabled = false;
        let off = run(&engine);
        assert!(!off.iter().any(|o| o.kind() == OutputKind::Pattern));
        let events = |v: &[Output]| v.iter().filter(|o| o.kind() == OutputKind::Processed).cloned().collect::<Vec<_>>();
        assert_eq!(events(&off), events(&on), "the events themselves do not change");
    }

    #[test]
    fn contract_violations_are_bad_records() {
        let mut s = PartitionState::new(0, 7_200_000_000, 1000);
        let mut r = raw(WatchKind::Added, "a", 1, 1, 0);
        r.heartbeat = Some(Heartbeat::default());
        assert_eq!(s.process(&Engine::builtin(), r.clone(), 0, &mut vec![]), Err(BadRecord::Both));
        r.event = None;
        r.heartbeat = None;
        assert_eq!(s.replay(&Engine::builtin(), r, 1), Err(BadRecord::Empty));
    }
    /// Ingested application events (`kevents ingest`, epoch 0) of a cluster whose
    /// collector writes under epoch 5 are neither dropped as stale nor make the
    /// collector's later records stale; a deposed collector leader still is.
    #[test]
    fn ingested_records_are_exempt_from_leader_epochs() {
        let engine = Engine::builtin();
        let ingest = |uid: &str| RawRecord { collector: CollectorMeta::ingest("ingest-0"), resource_version: String::new(), ..raw(WatchKind::Added, uid, 1, 1, 0) };
        let mut s = PartitionState::new(0, 7_200_000_000, 1000);
        let mut out = Vec::new();
        for (i, r) in [
            raw(WatchKind::Added, "k1", 10, 1, 5),
            ingest("app-1"),
            raw(WatchKind::Added, "k2", 11, 1, 5),
            ingest("app-2"),
            raw(WatchKind::Added, "k3", 12, 1, 4), // a deposed collector leader
            ingest("app-1"),                       // the client's retry
        ]
        .into_iter()
        .enumerate()
        {
            s.process(&engine, r, i as i64, &mut out).unwrap();
        }
        let uids: Vec<String> = out.iter().filter_map(|o| match o { Output::Processed(p) => Some(p.event.uid.to_string()), _ => None }).collect();
        assert_eq!(uids, ["k1", "app-1", "k2", "app-2"]);
        assert_eq!((s.counts.stale_epochs, s.counts.duplicates), (1, 1), "only the deposed leader is stale; the retry is a duplicate");
        assert!(!CollectorMeta { instance: "collector-0".into(), leader_epoch: 0 }.is_ingest());
    }
}
