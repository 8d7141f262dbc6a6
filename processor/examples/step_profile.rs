//! The processor's step once over a bench replay, for profilers: the same work
//! as `--bench core`'s `step_without_correlation` (one `PartitionState` per
//! cluster, no correlation rules, outputs dropped as they come), without
//! criterion's repetitions, so a deterministic profiler can count it.
//!
//! On this noisy 2-core machine wall-clock medians move ±15 % within an hour;
//! instruction counts do not, so code changes are compared with:
//!
//! ```text
//! cargo build --release -p kevents-processor --example step_profile
//! valgrind --tool=callgrind --toggle-collect='*run_step*' \
//!     $CARGO_TARGET_DIR/release/examples/step_profile sim      # or: core
//! ```
//!
//! A second argument, `classify_occurrence_metadata`, runs that bench's engine
//! (pattern detection off too) instead.
//!
//! (`Collected` is the instruction count of the step alone; `callgrind_annotate
//! --inclusive=yes` shows where they go.)

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/support/sim_stream.rs"]
mod sim_stream;
#[path = "../benches/support/step.rs"]
mod step;
#[path = "../benches/support/stream.rs"]
mod stream;

use kevents_processor::step::Engine;
use schemas::records::RawRecord;

/// The measured part (callgrind's `--toggle-collect` names it): fresh states,
/// then every record through its cluster's state.
#[inline(never)]
fn run_step(engine: &Engine, records: Vec<RawRecord>, parts: &[usize]) -> usize {
    let mut states = step::states();
    step::step_all(engine, records, parts, &mut states)
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "sim".into());
    let records = match which.as_str() {
        "sim" => sim_stream::sim_stream(60_000),
        "core" => stream::stream(60_000),
        other => {
            eprintln!("step_profile: unknown replay {other:?}: expected sim or core");
            std::process::exit(2);
        }
    };
    let parts: Vec<usize> = records.iter().map(|r| stream::partition_of(&r.cluster.uid)).collect();
    let engine = match std::env::args().nth(2).as_deref() {
        None | Some("without_correlation") => step::without_correlation(),
        Some("classify_occurrence_metadata") => step::classify_occurrence_metadata(),
        Some(other) => {
            eprintln!("step_profile: unknown engine {other:?}: expected without_correlation or classify_occurrence_metadata");
            std::process::exit(2);
        }
    };
    let n = records.len();
    let started = std::time::Instant::now();
    let outputs = run_step(&engine, records, &parts);
    println!("{which} replay: {n} records → {outputs} outputs in {:?}", started.elapsed());
}
