//! Correlation on one core, on a realistic replay.
//!
//! The stream: 24 simulated cluster-hours' worth of the simulator's scenarios
//! (every incident kind, healthy rollouts) overlapping with background noise,
//! as the processor sees them after classification and metadata extraction
//! (`ProcessedEvent`s of the real step). Measured: `CorrelationState::observe`
//! for every event version, fresh state per iteration — the work correlation
//! adds to the processor's per-record step.
//!
//! Run: `cargo bench -p kevents-processor --bench correlate`.
//! Criterion reports elements/s = events/s on one core.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kevents_processor::correlate::{CorrInput, CorrelationState, Limits};
use kevents_processor::output::Output;
use kevents_processor::step::{Engine, PartitionState};
use schemas::model::ClusterId;
use schemas::records::ProcessedEvent;
use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};
use testkit::sim::{generate_run, ClusterCtx, ScenarioKind, WatchStream};

fn stream() -> Vec<(ProcessedEvent, i64)> {
    let engine = Engine::builtin();
    let mut kinds: Vec<ScenarioKind> = ScenarioKind::ALL.to_vec();
    kinds.extend([ScenarioKind::Noise; 12]);
    let cluster = ClusterId { name: "sim".into(), uid: "uid-sim".into() };
    let mut out = Vec::new();
    let mut processed = Vec::new();
    let mut offset = 0i64;
    for seed in 0..24u64 {
        let start = UNIX_EPOCH + Duration::from_secs(1_790_000_000 + seed * 3600);
        let run = generate_run(&kinds, seed, start, &ClusterCtx::new("sim", 8), Duration::from_secs(15));
        let mut state = PartitionState::new(0, 7_200_000_000, 1_000_000);
        let mut watch = WatchStream::new(cluster.clone());
        for raw in watch.records(start, &run.emissions) {
            let t = raw.observed_us;
            offset += 1;
            out.clear();
            state.process(&engine, raw, offset, &mut out).unwrap();
            for o in out.drain(..) {
                if let Output::Processed(p) = o {
                    processed.push((p, t));
                }
            }
        }
    }
    processed
}

fn bench(c: &mut Criterion) {
    let engine = Engine::builtin();
    let events = stream();
    let mut g = c.benchmark_group("correlate");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function("observe", |b| {
        b.iter_batched(
            || CorrelationState::new(Limits::default()),
            |mut state| {
                let mut incidents = Vec::new();
                for (p, t) in &events {
                    let input = CorrInput {
                        cluster: &p.cluster,
                        id: &p.id,
                        ev: &p.event,
                        category: &p.category,
                        severity: p.severity,
                        metadata: &p.metadata,
                        occurrences: p.occurrences,
                        t_us: *t,
                    };
                    black_box(state.observe(&engine.correlation, &input, &mut incidents));
                    incidents.clear();
                }
                state
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    eprintln!("stream: {} event versions", events.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
