//! Pattern detection on one core, on a realistic replay.
//!
//! The stream: 6 simulated clusters × 4 hours of the simulator's scenarios (every
//! incident kind, healthy rollouts) overlapping with background noise, interleaved
//! by time as one raw partition carries them, as the processor sees them after
//! classification (`ProcessedEvent`s of the real step: severity, occurrences, ids),
//! with a heartbeat every 5 s of record time. The inputs' strings are packed into
//! one buffer in stream order, as a just-decoded record is in cache when the step
//! reaches patterns (iterating 100k scattered `ProcessedEvent`s would measure
//! cache misses of the bench's own data instead).
//! - `patterns/template`: the message template alone, for every event version.
//! - `patterns/observe`: `PatternDetector::observe` for every event version (the
//!   severity filter, template, key hash, window, baseline, episodes) plus
//!   `advance` at each heartbeat; fresh detector per iteration — the work patterns
//!   add to the per-record step.
//! - `patterns/observe_warnings`: the same, only the versions at or above the
//!   default `min_severity` (every one of them templated and counted).
//!
//! Run: `cargo bench -p kevents-processor --bench patterns`.
//! Criterion reports elements/s = event versions/s on one core.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kevents_processor::output::Output;
use kevents_processor::patterns::{template_into, PatternConfig, PatternDetector, PatternInput};
use kevents_processor::step::{Engine, PartitionState};
use schemas::model::{ClusterId, Severity};
use schemas::records::{Pattern, ProcessedEvent, RawRecord};
use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};
use testkit::sim::{generate_run, ClusterCtx, ScenarioKind, WatchStream};

const HEARTBEAT_US: i64 = 5_000_000;

/// (processed event, record time µs), in record-time order across clusters.
fn stream() -> Vec<(ProcessedEvent, i64)> {
    let engine = Engine::builtin();
    let mut kinds: Vec<ScenarioKind> = ScenarioKind::ALL.to_vec();
    kinds.extend([ScenarioKind::Noise; 12]);
    let mut raw: Vec<(i64, RawRecord)> = Vec::new();
    for c in 0..6u64 {
        let name = format!("sim-{c}");
        let cluster = ClusterId { name: name.clone().into(), uid: format!("uid-{name}").into() };
        let mut watch = WatchStream::new(cluster.clone());
        for hour in 0..4u64 {
            let start = UNIX_EPOCH + Duration::from_secs(1_790_000_000 + hour * 3600 + c * 17);
            let run = generate_run(&kinds, c * 100 + hour, start, &ClusterCtx::new(&name, 8), Duration::from_secs(15));
            raw.extend(watch.records(start, &run.emissions).into_iter().map(|r| (r.observed_us, r)));
        }
    }
    raw.sort_by_key(|(t, _)| *t);
    let mut state = PartitionState::new(0, 7_200_000_000, 1_000_000);
    let mut out = Vec::new();
    let mut processed = Vec::new();
    for (offset, (t, r)) in raw.into_iter().enumerate() {
        out.clear();
        state.process(&engine, r, offset as i64, &mut out).unwrap();
        processed.extend(out.drain(..).filter_map(|o| match o {
            Output::Processed(p) => Some((p, t)),
            _ => None,
        }));
    }
    processed
}

/// The fields patterns read, strings packed into one buffer in stream order.
struct Packed {
    buf: String,
    clusters: Vec<ClusterId>,
    items: Vec<Item>,
}

struct Item {
    cluster: usize,
    /// id, reason, kind, namespace, note: byte ranges in `buf`.
    ranges: [(u32, u32); 5],
    severity: Severity,
    occurrences: i64,
    t_us: i64,
}

impl Packed {
    fn new(events: &[(ProcessedEvent, i64)]) -> Self {
        let mut p = Packed { buf: String::new(), clusters: Vec::new(), items: Vec::new() };
        for (e, t) in events {
            let c = match p.clusters.iter().position(|c| *c == e.cluster) {
                Some(i) => i,
                None => {
                    p.clusters.push(e.cluster.clone());
                    p.clusters.len() - 1
                }
            };
            let parts: [&str; 5] = [&e.id, &e.event.reason, &e.event.regarding.kind, &e.event.regarding.namespace, &e.event.note];
            let ranges = parts.map(|s| {
                let start = p.buf.len() as u32;
                p.buf.push_str(s);
                (start, p.buf.len() as u32)
            });
            p.items.push(Item { cluster: c, ranges, severity: e.severity, occurrences: e.occurrences, t_us: *t });
        }
        p
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn input(&self, i: usize) -> PatternInput<'_> {
        let it = &self.items[i];
        let s = |k: usize| &self.buf[it.ranges[k].0 as usize..it.ranges[k].1 as usize];
        PatternInput {
            cluster: &self.clusters[it.cluster],
            event_id: s(0),
            reason: s(1),
            kind: s(2),
            namespace: s(3),
            note: s(4),
            severity: it.severity,
            occurrences: it.occurrences,
            t_us: it.t_us,
        }
    }
}

/// Everything the detector sees, as the per-record step does it (one reused
/// output buffer, cleared per record); returns the detector and how many pattern
/// records were written (`keep`: and the records).
fn detect(cfg: &PatternConfig, events: &Packed, keep: bool) -> (PatternDetector, usize, Vec<Pattern>) {
    let mut d = PatternDetector::new(cfg);
    let mut out = Vec::new();
    let mut kept = Vec::new();
    let mut written = 0;
    let mut next_heartbeat = events.items.first().map_or(0, |e| e.t_us);
    for i in 0..events.len() {
        let input = events.input(i);
        while input.t_us >= next_heartbeat {
            d.advance(next_heartbeat, &mut out);
            next_heartbeat += HEARTBEAT_US;
        }
        d.observe(&input, &mut out);
        written += out.len();
        if keep {
            kept.append(&mut out);
        }
        out.clear();
    }
    (d, written, kept)
}

fn bench(c: &mut Criterion) {
    let cfg = PatternConfig::default();
    let stream = stream();
    let events = Packed::new(&stream);
    let warnings_only: Vec<(ProcessedEvent, i64)> =
        stream.iter().filter(|(p, _)| p.severity >= cfg.min_severity).cloned().collect();
    let warnings = Packed::new(&warnings_only);
    let (detector, _, written) = detect(&cfg, &events, true);
    let episodes: BTreeSet<&str> = written.iter().map(|p| p.id.as_str()).collect();
    eprintln!(
        "patterns bench: {} event versions ({} at warning or above, {} occurrences), {} keys, {} pattern versions, {} episodes",
        events.len(),
        warnings.len(),
        stream.iter().map(|(p, _)| p.occurrences).sum::<i64>(),
        detector.len(),
        written.len(),
        episodes.len()
    );
    drop(stream);

    let mut g = c.benchmark_group("patterns");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("template", |b| {
        let mut buf = String::new();
        b.iter(|| {
            for i in 0..events.len() {
                template_into(events.input(i).note, &mut buf);
                black_box(&buf);
            }
        })
    });
    g.bench_function("observe", |b| {
        b.iter_batched(|| (), |_| black_box(detect(&cfg, &events, false)), BatchSize::PerIteration)
    });
    g.throughput(Throughput::Elements(warnings.len() as u64));
    g.bench_function("observe_warnings", |b| {
        b.iter_batched(|| (), |_| black_box(detect(&cfg, &warnings, false)), BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
