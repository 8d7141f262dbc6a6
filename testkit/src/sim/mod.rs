//! The fleet simulator: seeded scenarios of Kubernetes Events, emitted exactly as the
//! real emitters (client-go's two recorders) write them, with ground truth, and a
//! driver that plays them into test API servers at a target rate.
//!
//! Layout:
//! - `timeline` — emissions (`Apply`/`Delete`) with offsets, seeded ids, time units.
//! - `objects` — object references, nodes, workloads, the cluster context.
//! - `recorder` — client-go `tools/record` and `tools/events` emulation.
//! - `scenarios` — one generator per incident kind, background noise.
//! - `truth` — incidents, root causes, occurrence counts.
//! - `fleet` — N API servers fed at a target rate.
//! - `eventlist` — kubectl-style `List` JSON files in both API shapes, plus truth.
//! - `watch` — scenario output as the raw records a collector publishes.

pub mod eventlist;
pub mod fleet;
pub mod objects;
pub mod recorder;
pub mod scenarios;
pub mod timeline;
pub mod truth;
pub mod watch;

pub use eventlist::{generate_run, write_eventlist, EventListError, EventListFiles, Run};
pub use fleet::{ClusterHandle, ClusterStats, ClusterTruth, Fleet, FleetError, FleetOptions, FleetStats};
pub use objects::ClusterCtx;
pub use scenarios::{generate, Scenario, ScenarioKind, ScenarioParams};
pub use timeline::{Emission, TimedEmission};
pub use truth::{GroundTruth, TruthIncident};
pub use watch::WatchStream;
