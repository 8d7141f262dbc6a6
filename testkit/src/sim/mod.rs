//! The fleet simulator: seeded scenarios of Kubernetes Events, emitted exactly as the
//! real emitters (client-go's two recorders) write them, with ground truth, and a
//! driver that plays them into test API servers, or real ones through the Kubernetes
//! API, at a target rate.
//!
//! Layout:
//! - `timeline` — emissions (`Apply`/`Delete`) with offsets, seeded ids, time units.
//! - `objects` — object references, nodes, workloads, the cluster context.
//! - `recorder` — client-go `tools/record` and `tools/events` emulation.
//! - `scenarios` — one generator per incident kind, background noise.
//! - `truth` — incidents, root causes, occurrence counts.
//! - `fleet` — N API servers (test servers, or real ones by kubeconfig) fed at a target rate.
//! - `driver` — one cluster's pacing task and the counters and truth it keeps.
//! - `apiwrite` — writes through a real API server as the two recorders do (create,
//!   PATCH of `count` or `series`), with bounded concurrency and counted retries.
//! - `eventlist` — kubectl-style `List` JSON files in both API shapes, plus truth.
//! - `watch` — scenario output as the raw records a collector publishes.

pub mod apiwrite;
mod driver;
pub mod eventlist;
pub mod fleet;
pub mod objects;
pub mod recorder;
pub mod scenarios;
pub mod timeline;
pub mod truth;
pub mod watch;

pub use eventlist::{generate_run, write_eventlist, EventListError, EventListFiles, Run};
pub use apiwrite::{WriteStats, WriterOptions};
pub use fleet::{ClusterHandle, ClusterStats, ClusterTruth, Fleet, FleetError, FleetOptions, FleetStats, RealCluster, Target};
pub use objects::ClusterCtx;
pub use scenarios::{generate, Scenario, ScenarioKind, ScenarioParams};
pub use timeline::{Emission, TimedEmission};
pub use truth::{GroundTruth, TruthIncident};
pub use watch::WatchStream;
