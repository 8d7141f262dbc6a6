//! The step as `--bench core` and `examples/step_profile.rs` run it: one
//! `PartitionState` per cluster (as in the processor: a cluster's records share
//! a raw partition), fresh state per run.

use kevents_processor::output::Output;
use kevents_processor::step::{Engine, PartitionState};
use schemas::records::RawRecord;
use std::hint::black_box;

/// One fresh state per raw partition of the replays (6).
pub fn states() -> Vec<PartitionState> {
    (0..6).map(|p| PartitionState::new(p, 7_200_000_000, 1_000_000)).collect()
}

/// The built-in engine with no correlation rules: classification, occurrences
/// and metadata (what the processor did before correlation), patterns and alerts.
pub fn without_correlation() -> Engine {
    Engine { correlation: kevents_processor::correlate::Rules::from_yaml_str("none", "rules: []").expect("an empty rule file"), ..Engine::builtin() }
}

/// The processor stage of the issue that defined it: occurrences,
/// classification, metadata and the outputs, with no correlation rules and
/// pattern detection off (`patterns.enabled: false`), so no alert has
/// anything to fire on.
pub fn classify_occurrence_metadata() -> Engine {
    let mut engine = without_correlation();
    engine.patterns.enabled = false;
    engine
}

/// The step over `records`, each into its partition's state (`parts`, worked
/// out beforehand: the processor gets a record's partition from Kafka), each
/// record's outputs dropped before the next. Returns the number of outputs.
pub fn step_all(engine: &Engine, records: Vec<RawRecord>, parts: &[usize], states: &mut [PartitionState]) -> usize {
    let mut out: Vec<Output> = Vec::with_capacity(8);
    let mut outputs = 0;
    for (off, (r, &p)) in records.into_iter().zip(parts).enumerate() {
        out.clear();
        states[p].process(engine, r, off as i64, &mut out).expect("bench records are valid");
        outputs += black_box(&out).len();
    }
    outputs
}
