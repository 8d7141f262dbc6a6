//! A realistic raw stream from the simulator, for the benches that need one
//! whose incidents and patterns are as rare as in real traffic.
//!
//! Six clusters (one per raw partition of the pipeline bench), each playing
//! simulated hours of every scenario (crash loops, image and mount failures,
//! node loss, evictions, failed jobs, healthy rollouts…) overlapping with
//! background noise, as `WatchStream` publishes them (ADDED then MODIFIED with
//! growing counts). The clusters' streams are merged in record-time order, and
//! each cluster gets the collector's heartbeat every 5 s of record time (its
//! default interval). Deterministic: seeds are fixed.

use schemas::model::ClusterId;
use schemas::records::{CollectorMeta, Heartbeat, RawRecord};
use std::time::{Duration, UNIX_EPOCH};
use testkit::sim::{generate_run, ClusterCtx, ScenarioKind, WatchStream};

const CLUSTERS: u64 = 6;
const HEARTBEAT_US: i64 = 5_000_000;

/// At least `n` raw records (whole simulated hours, so a few more), in record-time order.
pub fn sim_stream(n: usize) -> Vec<RawRecord> {
    let mut kinds: Vec<ScenarioKind> = ScenarioKind::ALL.to_vec();
    kinds.extend([ScenarioKind::Noise; 12]);
    let mut per_cluster: Vec<Vec<RawRecord>> = Vec::new();
    let mut watches: Vec<WatchStream> = (0..CLUSTERS)
        .map(|c| WatchStream::new(ClusterId { name: format!("c{c}").into(), uid: format!("cluster-{c}-5b0f8e2a-uid").into() }))
        .collect();
    let mut total = 0usize;
    let mut hour = 0u64;
    while total < n {
        for (c, watch) in watches.iter_mut().enumerate() {
            let seed = hour * CLUSTERS + c as u64;
            let start = UNIX_EPOCH + Duration::from_secs(1_790_000_000 + hour * 3600);
            let run = generate_run(&kinds, seed, start, &ClusterCtx::new(&format!("sim-{c}"), 8), Duration::from_secs(15));
            let recs = watch.records(start, &run.emissions);
            total += recs.len();
            if per_cluster.len() <= c {
                per_cluster.push(Vec::new());
            }
            per_cluster[c].extend(recs);
        }
        hour += 1;
    }
    let mut out: Vec<RawRecord> = Vec::with_capacity(total + total / 20);
    for recs in per_cluster {
        let mut next_hb = recs.first().map_or(0, |r| r.observed_us) + HEARTBEAT_US;
        let mut since = 0i64;
        for r in recs {
            while r.observed_us >= next_hb {
                out.push(RawRecord {
                    cluster: r.cluster.clone(),
                    collector: CollectorMeta::default(),
                    observed_us: next_hb,
                    resource_version: r.resource_version.clone(),
                    event: None,
                    heartbeat: Some(Heartbeat { scope: String::new(), resource_version: r.resource_version.clone(), last_bookmark_us: next_hb, published_since_last: since }),
                });
                next_hb += HEARTBEAT_US;
                since = 0;
            }
            since += 1;
            out.push(r);
        }
    }
    // Stable: each cluster's own order (and its heartbeats' place) is kept.
    out.sort_by_key(|r| r.observed_us);
    out
}
