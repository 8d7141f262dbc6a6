//! The processor's per-record core, and the Avro codec around it, on two
//! replays. Each cluster's records go to their own `PartitionState`, as in the
//! processor (a cluster's records share a raw partition; caches are per
//! partition), fresh state per iteration.
//!
//! - `core/*`: `support/stream.rs`, 60,000 raw records of 14 real event shapes
//!   in 6 clusters, mostly repeats (MODIFIED with a higher count, both API
//!   shapes), 5% re-deliveries, a heartbeat every 50 records. Its 4,200 event
//!   objects per cluster with few owner links open ~7,900 incidents: far more
//!   than real traffic, so this is correlation's worst case.
//! - `sim/*`: `support/sim_stream.rs`, ~60,000 raw records of the simulator's
//!   scenarios and noise in 6 clusters with the collector's heartbeats: most
//!   records are new Event objects (each rollout's Scheduled, Pulling, Pulled,
//!   Created, Started…), incidents as rare as in real traffic.
//!
//! Measured on each:
//! - `step`: occurrence decision + classification + metadata + correlation +
//!   patterns + alerts + building the outputs (`PartitionState::process`).
//! - `step_without_correlation`: the same with no correlation rules:
//!   classification + occurrences + metadata (+ patterns and alerts).
//! - `classify_occurrence_metadata`: the same with pattern detection off too
//!   (`patterns.enabled: false`): occurrence decision + classification +
//!   metadata + building the outputs, the processor stage without the
//!   correlation/pattern/alert issue's work.
//! - `core/replay`: the step with outputs thrown away (what a restore replays).
//! - `codec/decode_raw`: Avro decode of the raw records (`Codec::decode`).
//! - `codec/encode_processed`: Avro encode of the outputs (`Codec::encode_into`).
//!
//! Run: `cargo bench -p kevents-processor --bench core`.
//! Criterion reports elements/s = records/s on one core.

/// The allocator the `kevents` binary ships with, so the figures are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kevents_processor::output::Output;
use kevents_processor::step::Engine;
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::hint::black_box;

#[path = "support/sim_stream.rs"]
mod sim_stream;
#[path = "support/step.rs"]
mod step;
#[path = "support/stream.rs"]
mod stream;
use sim_stream::sim_stream;
use step::{states, step_all};
use stream::stream;

fn partition_of(r: &RawRecord) -> usize {
    stream::partition_of(&r.cluster.uid)
}

/// The step benches of one replay; returns the whole step's outputs.
fn step_group(c: &mut Criterion, name: &str, records: &[RawRecord], with_replay: bool) -> Vec<Output> {
    let engine = Engine::builtin();
    let no_corr = step::without_correlation();
    let com = step::classify_occurrence_metadata();
    let parts: Vec<usize> = records.iter().map(partition_of).collect();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(10);
    for (label, engine) in [("step", &engine), ("step_without_correlation", &no_corr), ("classify_occurrence_metadata", &com)] {
        g.bench_function(label, |b| {
            b.iter_batched(
                || (records.to_vec(), states()),
                |(recs, mut st)| {
                    step_all(engine, recs, &parts, &mut st);
                    st
                },
                BatchSize::PerIteration,
            )
        });
    }
    if with_replay {
        // What a restore replays: the whole step, outputs thrown away.
        g.bench_function("replay", |b| {
            b.iter_batched(
                || (records.to_vec(), states()),
                |(recs, mut st)| {
                    for (off, (r, &p)) in recs.into_iter().zip(&parts).enumerate() {
                        st[p].replay(&engine, r, off as i64).unwrap();
                    }
                    st
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    let mut st = states();
    let mut outputs = Vec::new();
    for (off, r) in records.iter().enumerate() {
        st[partition_of(r)].process(&engine, r.clone(), off as i64, &mut outputs).unwrap();
    }
    let incidents = outputs.iter().filter(|o| matches!(o, Output::Incident(_))).count();
    let opened: u64 = st.iter().map(|s| s.correlation().counts.opened).sum();
    eprintln!("{name} stream: {} records → {} outputs ({incidents} incident versions, {opened} incidents opened)", records.len(), outputs.len());
    outputs
}

fn bench(c: &mut Criterion) {
    let records = stream(60_000);
    let codec = Codec::default();
    let outputs = step_group(c, "core", &records, true);
    step_group(c, "sim", &sim_stream(60_000), false);

    let encoded: Vec<Vec<u8>> = records.iter().map(|r| codec.encode(r).unwrap()).collect();
    let mut g = c.benchmark_group("codec");
    g.sample_size(10);
    g.throughput(Throughput::Elements(encoded.len() as u64));
    g.bench_function("decode_raw", |b| {
        b.iter(|| {
            for e in &encoded {
                black_box(codec.decode::<RawRecord>(e).unwrap());
            }
        })
    });
    g.throughput(Throughput::Elements(outputs.len() as u64));
    g.bench_function("encode_processed", |b| {
        let mut buf = Vec::with_capacity(4096);
        b.iter(|| {
            for o in &outputs {
                buf.clear();
                o.encode_into(&codec, &mut buf).unwrap();
                black_box(&buf);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
