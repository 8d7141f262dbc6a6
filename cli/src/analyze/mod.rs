//! `kevents analyze`: the processor's engine on a `kubectl` dump, in process,
//! with no infrastructure.
//!
//! The events go through exactly the processor's per-record step
//! (`processor::step::PartitionState::process`: occurrences,
//! classification, metadata, correlation, patterns), as raw records of one
//! cluster. A snapshot (`kubectl get events -o json`) holds each Event once,
//! with its total count; it is replayed as the watch would have shown it: the
//! first occurrence at `firstTimestamp`/`eventTime`, the repeats spread evenly
//! up to the last-seen time (a version at least every half of the shortest
//! correlation `quiet`, so that one episode stays one incident, as the
//! watch's updates keep it), the last version at the last-seen time; all in
//! event-time order (kubectl lists by namespace and name). A watch stream
//! keeps each event's versions in their order and is sorted by event time too.
//!
//! An event's incident is the one it belongs to at the end (a late cause may
//! re-root an incident or take in an event that stood alone: see
//! `processor::correlate::late`); an incident id that was re-rooted is not
//! listed (its last version names the incident that replaced it).
//!
//! Output: text for people (incidents first, then patterns, then counts) or
//! JSON for tools ([`report`] documents the fields).

mod input;
mod report;

use anyhow::Context;
use processor::output::Output;
use processor::step::{Engine, PartitionState};
use processor::ProcessorConfig;
use schemas::model::{ClusterId, NormalizedEvent};
use schemas::records::{CollectorMeta, Heartbeat, Incident, Pattern, ProcessedEvent, RawRecord, WatchEvent, WatchKind};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

pub use input::{parse, Shape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `kevents analyze [--output text|json] [--rules FILE]... FILE|-`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `kubectl get events -A -o json` or `-o yaml` output (core/v1 or
    /// events.k8s.io/v1), or a watch stream (`kubectl get events -A -w -o json`).
    /// `-` reads standard input.
    pub file: PathBuf,
    /// `text` for people, `json` for tools.
    #[arg(long, short, value_enum, default_value = "text")]
    pub output: Format,
    /// A rule file to use on top of the built-in rules: classification rules,
    /// metadata extractors or correlation rules (told apart by their content).
    /// Repeatable; earlier files win.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// The cluster name to report (a dump does not say which cluster it is from).
    #[arg(long, default_value = "kubectl")]
    pub cluster: String,
}

/// Everything the engine concluded about one input.
#[derive(Debug, Default)]
pub struct Analysis {
    pub source: String,
    /// The last processed version of each input event, in input order.
    pub events: Vec<ProcessedEvent>,
    /// The last version of each incident (re-rooted ids left out), by start then id.
    pub incidents: Vec<Incident>,
    /// The last version of each pattern episode, in order of first report.
    pub patterns: Vec<Pattern>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (source, text) = read(&args.file)?;
    let engine = engine(&args.rules)?;
    let (shape, events) = parse(&text).with_context(|| format!("reading {source}"))?;
    let analysis = analyze(&engine, &args.cluster, shape, events, source);
    let out = match args.output {
        Format::Text => report::text(&analysis),
        Format::Json => serde_json::to_string_pretty(&report::json(&analysis))? + "\n",
    };
    print!("{out}");
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<(String, String)> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
        return Ok(("standard input".into(), s));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// Which kind of rule file `path` is, from its content.
fn rule_kind(path: &Path) -> anyhow::Result<&'static str> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading rule file {}", path.display()))?;
    let v: serde_norway::Value = serde_norway::from_str(&text).with_context(|| format!("{}: not valid YAML", path.display()))?;
    if v.get("extractors").is_some() {
        return Ok("metadata");
    }
    let first = v.get("rules").and_then(|r| r.as_sequence()).and_then(|r| r.first());
    match first {
        Some(r) if r.get("cause").is_some() => Ok("correlation"),
        Some(r) if r.get("category").is_some() || r.get("severity").is_some() => Ok("classification"),
        _ => anyhow::bail!(
            "{}: cannot tell what kind of rules it holds (expected `extractors:`, or `rules:` whose entries have `cause` (correlation) or `category`/`severity` (classification))",
            path.display()
        ),
    }
}

/// The processor's engine with the user's rule files.
pub fn engine(rules: &[PathBuf]) -> anyhow::Result<Engine> {
    let mut cfg = ProcessorConfig::default();
    for p in rules {
        match rule_kind(p)? {
            "metadata" => cfg.metadata_files.push(p.clone()),
            "correlation" => cfg.correlation.rules_files.push(p.clone()),
            _ => cfg.rules_files.push(p.clone()),
        }
    }
    let mut engine = Engine::from_config(&cfg)?;
    // A dump is read at once: every event's incident is remembered to the end.
    engine.correlation_limits.closed_keep_us = i64::MAX / 4;
    Ok(engine)
}

/// The longest gap between replayed versions of a repeated event: half the
/// shortest `quiet` of the correlation rules (at least a minute).
fn replay_step_us(engine: &Engine) -> i64 {
    engine.correlation.rules.iter().map(|r| r.quiet_us / 2).min().unwrap_or(300_000_000).max(60_000_000)
}

/// One raw record to replay, with its sort key.
pub struct Replay {
    pub t: i64,
    order: (usize, u32),
    pub event: NormalizedEvent,
}

/// When an event first happened, as well as the object tells.
fn first_time(e: &NormalizedEvent) -> i64 {
    [e.event_time_us.unwrap_or(0), e.first_seen_us, e.created_us, e.last_seen_us].into_iter().find(|t| *t > 0).unwrap_or(0)
}

/// The watch versions a snapshot or stream stands for, in replay order.
/// `step_us`: the longest gap between the versions of a repeated event.
pub fn replays(shape: Shape, events: Vec<NormalizedEvent>, step_us: i64) -> Vec<Replay> {
    let step_us = step_us.max(1_000_000);
    let mut out = Vec::with_capacity(events.len() * 2);
    let mut stream_last: std::collections::HashMap<String, i64> = Default::default();
    for (i, mut e) in events.into_iter().enumerate() {
        match shape {
            Shape::Stream => {
                if e.resource_version.is_empty() {
                    e.resource_version = (i + 1).to_string().into();
                }
                // A later version of an event is never replayed before an earlier one.
                let t = stream_last.get(e.uid.as_str()).copied().unwrap_or(i64::MIN).max(e.effective_time_us());
                stream_last.insert(e.uid.to_string(), t);
                out.push(Replay { t, order: (i, 0), event: e });
            }
            Shape::Snapshot => {
                let first = first_time(&e);
                let last = e.effective_time_us().max(first);
                // Versions of the object's own resourceVersion when it has one
                // (ids then do not depend on where kubectl listed it).
                let base = e.resource_version.parse::<u64>().ok().filter(|v| *v < u64::MAX / 1_000_000 - 1).unwrap_or(i as u64 + 1);
                let rv = |j: u32| (base * 1_000_000 + j as u64).to_string();
                let mut j = 0u32;
                if e.count > 1 && last > first {
                    let mut head = e.clone();
                    head.count = 1;
                    head.last_seen_us = first;
                    head.resource_version = rv(j).into();
                    out.push(Replay { t: first, order: (i, j), event: head });
                    // The repeats in between, as evenly spread as the count allows.
                    let (n, span) = (e.count as i128, (last - first) as i128);
                    let mut prev = 1i64;
                    let mut t = first + step_us;
                    while t < last && j < 999_998 {
                        let count = 1 + ((n - 1) * (t - first) as i128 / span) as i64;
                        if count > prev && count < e.count {
                            j += 1;
                            let mut mid = e.clone();
                            mid.count = count;
                            mid.last_seen_us = t;
                            mid.resource_version = rv(j).into();
                            out.push(Replay { t, order: (i, j), event: mid });
                            prev = count;
                        }
                        t += step_us;
                    }
                    j += 1;
                }
                e.resource_version = rv(j).into();
                out.push(Replay { t: last, order: (i, j), event: e });
            }
        }
    }
    // Stable: a stream's versions of one event keep their order.
    out.sort_by_key(|r| (r.t, r.order));
    out
}

/// Runs the engine over the events.
pub fn analyze(engine: &Engine, cluster_name: &str, shape: Shape, mut events: Vec<NormalizedEvent>, source: String) -> Analysis {
    // Events without a uid (hand-written files) still need one to be told apart.
    for (i, e) in events.iter_mut().enumerate() {
        if e.uid.is_empty() {
            e.uid = format!("{}/{}#{i}", e.namespace, e.name).into();
        }
    }
    let cluster = ClusterId { name: cluster_name.to_string().into(), uid: format!("analyze:{cluster_name}").into() };
    let input_order: Vec<String> = {
        let mut seen = HashSet::new();
        events.iter().map(|e| e.uid.to_string()).filter(|u| seen.insert(u.clone())).collect()
    };
    let mut state = PartitionState::for_engine(engine, 0, i64::MAX / 4, usize::MAX / 2);
    let mut seen: HashSet<String> = HashSet::new();
    let mut last: BTreeMap<String, ProcessedEvent> = BTreeMap::new();
    let mut incidents: BTreeMap<String, (usize, Incident)> = BTreeMap::new();
    let mut patterns: BTreeMap<String, (usize, Pattern)> = BTreeMap::new();
    let mut out = Vec::new();
    let mut end = 0i64;
    let records = replays(shape, events, replay_step_us(engine));
    let n = records.len();
    let mut collect = |out: &mut Vec<Output>| {
        for o in out.drain(..) {
            match o {
                Output::Processed(p) => {
                    last.insert(p.event.uid.to_string(), p);
                }
                Output::Incident(i) => {
                    let order = incidents.get(&i.id).map(|(o, _)| *o).unwrap_or(incidents.len());
                    incidents.insert(i.id.clone(), (order, i));
                }
                Output::Pattern(p) => {
                    let order = patterns.get(&p.id).map(|(o, _)| *o).unwrap_or(patterns.len());
                    patterns.insert(p.id.clone(), (order, p));
                }
                _ => {}
            }
        }
    };
    for (offset, r) in records.into_iter().enumerate() {
        let kind = if seen.insert(r.event.uid.to_string()) { WatchKind::Added } else { WatchKind::Modified };
        end = end.max(r.t);
        let raw = RawRecord {
            cluster: cluster.clone(),
            collector: CollectorMeta::default(),
            observed_us: r.t.max(1),
            resource_version: r.event.resource_version.to_string(),
            event: Some(WatchEvent { kind, event: Box::new(r.event) }),
            heartbeat: None,
        };
        // Both contract checks hold by construction (an event, no heartbeat).
        let _ = state.process(engine, raw, offset as i64, &mut out);
        collect(&mut out);
    }
    // The dump was taken at its newest event: what was quiet for long enough by then is resolved.
    let hb = RawRecord {
        cluster: cluster.clone(),
        observed_us: end.max(1),
        heartbeat: Some(Heartbeat::default()),
        ..Default::default()
    };
    let _ = state.process(engine, hb, n as i64, &mut out);
    state.finish(engine, n as i64, &mut out);
    collect(&mut out);

    // Each event's incident is the one it belongs to at the end (a late cause
    // may have re-rooted it or taken it in).
    let events = input_order
        .iter()
        .filter_map(|u| last.remove(u))
        .map(|mut p| {
            if let Some(id) = state.correlation().member_of(&cluster.uid, &p.event.uid) {
                p.correlation_id = id;
            }
            p
        })
        .collect();
    // A re-rooted id's last version names its new root, whose id it is not.
    let mut incidents: Vec<Incident> = incidents.into_values().map(|(_, i)| i).filter(|i| i.root_cause.event_id == i.id).collect();
    incidents.sort_by(|a, b| (a.first_seen_us, &a.id).cmp(&(b.first_seen_us, &b.id)));
    let mut patterns: Vec<(usize, Pattern)> = patterns.into_values().collect();
    patterns.sort_by_key(|(o, _)| *o);
    Analysis {
        source,
        events,
        incidents,
        patterns: patterns.into_iter().map(|(_, p)| p).collect(),
    }
}
