//! The processor's per-record core, and the Avro codec around it, on a
//! realistic replay.
//!
//! The stream (`support/stream.rs`): 60,000 raw records of 14 real event shapes,
//! mostly repeats, 5% re-deliveries, a heartbeat every 50 records.
//! - `core/step`: occurrence decision + classification + metadata +
//!   correlation + building the outputs (`PartitionState::process`), fresh
//!   state per iteration. The stream's 6 clusters × 4,200 event objects with
//!   few owner links open ~7,900 incidents: far more than real traffic, so
//!   this is correlation's worst case (see `benches/correlate.rs` for a
//!   realistic replay).
//! - `core/step_without_correlation`: the same with no correlation rules:
//!   classification + occurrences + metadata alone.
//! - `core/replay`: the same step with outputs thrown away (what a restore
//!   replays to rebuild occurrence and correlation state).
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
use kevents_processor::step::{Engine, PartitionState};
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::hint::black_box;

#[path = "support/stream.rs"]
mod stream;
use stream::stream;

fn bench(c: &mut Criterion) {
    let engine = Engine::builtin();
    let records = stream(60_000);
    let codec = Codec::default();

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(10);
    g.bench_function("step", |b| {
        b.iter_batched(
            || (records.clone(), PartitionState::new(0, 7_200_000_000, 1_000_000)),
            |(recs, mut state)| {
                let mut out: Vec<Output> = Vec::with_capacity(2);
                for (off, r) in recs.into_iter().enumerate() {
                    out.clear();
                    state.process(&engine, r, off as i64, &mut out).unwrap();
                    black_box(&out);
                }
                state
            },
            BatchSize::PerIteration,
        )
    });
    // The step without correlation rules: classification, occurrences and
    // metadata alone (what the processor did before correlation).
    let no_corr = Engine { correlation: kevents_processor::correlate::Rules::from_yaml_str("none", "rules: []").unwrap(), ..Engine::builtin() };
    g.bench_function("step_without_correlation", |b| {
        b.iter_batched(
            || (records.clone(), PartitionState::new(0, 7_200_000_000, 1_000_000)),
            |(recs, mut state)| {
                let mut out: Vec<Output> = Vec::with_capacity(2);
                for (off, r) in recs.into_iter().enumerate() {
                    out.clear();
                    state.process(&no_corr, r, off as i64, &mut out).unwrap();
                    black_box(&out);
                }
                state
            },
            BatchSize::PerIteration,
        )
    });
    // What a restore replays: the whole step, outputs thrown away.
    g.bench_function("replay", |b| {
        b.iter_batched(
            || (records.clone(), PartitionState::new(0, 7_200_000_000, 1_000_000)),
            |(recs, mut state)| {
                for (off, r) in recs.into_iter().enumerate() {
                    state.replay(&engine, r, off as i64).unwrap();
                }
                state
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let encoded: Vec<Vec<u8>> = records.iter().map(|r| codec.encode(r).unwrap()).collect();
    let mut outputs = Vec::new();
    let mut st = PartitionState::new(0, 7_200_000_000, 1_000_000);
    for (off, r) in records.iter().enumerate() {
        st.process(&engine, r.clone(), off as i64, &mut outputs).unwrap();
    }
    let incidents = outputs.iter().filter(|o| matches!(o, Output::Incident(_))).count();
    eprintln!(
        "stream: {} records → {} outputs ({incidents} incident versions, {} incidents opened, {} open at the end)",
        records.len(),
        outputs.len(),
        st.correlation().counts.opened,
        st.correlation().open_incidents()
    );
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
