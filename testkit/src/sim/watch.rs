//! Scenario output as the collector publishes it: every write of every Event,
//! in time order, as raw records of one cluster (ADDED at first sight, MODIFIED
//! after; deletions left out), with increasing resourceVersions and the write's
//! time as the record time. For tests and benches that feed the processor's
//! step directly, without an API server and a collector in between.

use super::timeline::{Emission, TimedEmission};
use schemas::model::ClusterId;
use schemas::records::{CollectorMeta, RawRecord, WatchEvent, WatchKind};
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

/// One cluster's watch, across any number of runs.
#[derive(Debug)]
pub struct WatchStream {
    cluster: ClusterId,
    seen: HashSet<String>,
    last_rv: u64,
    last_us: i64,
}

impl WatchStream {
    pub fn new(cluster: ClusterId) -> Self {
        WatchStream { cluster, seen: HashSet::new(), last_rv: 0, last_us: 0 }
    }

    pub fn cluster(&self) -> &ClusterId {
        &self.cluster
    }

    /// The raw records of `emissions` played from `start`. Record time never goes
    /// back across calls (runs may overlap, the watch still delivers in order).
    pub fn records(&mut self, start: SystemTime, emissions: &[TimedEmission]) -> Vec<RawRecord> {
        let t0 = start.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
        let mut sorted: Vec<&TimedEmission> = emissions.iter().collect();
        sorted.sort_by_key(|e| e.offset);
        let mut out = Vec::with_capacity(sorted.len());
        for e in sorted {
            let Emission::Apply(k) = &e.emission else { continue };
            let mut ev = schemas::convert::from_core_v1(k);
            self.last_rv += 1;
            ev.resource_version = self.last_rv.to_string().into();
            let kind = if self.seen.insert(ev.uid.to_string()) { WatchKind::Added } else { WatchKind::Modified };
            self.last_us = self.last_us.max(t0 + e.offset.as_micros() as i64);
            out.push(RawRecord {
                cluster: self.cluster.clone(),
                collector: CollectorMeta::default(),
                observed_us: self.last_us,
                resource_version: ev.resource_version.to_string(),
                event: Some(WatchEvent { kind, event: Box::new(ev) }),
                heartbeat: None,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{generate, ScenarioKind, ScenarioParams};
    use std::time::Duration;

    #[test]
    fn repeats_are_modified_and_versions_grow() {
        let start = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let sc = generate(ScenarioKind::CrashLoop, &ScenarioParams::new(3, start));
        let mut w = WatchStream::new(ClusterId { name: "c".into(), uid: "u".into() });
        let recs = w.records(sc.start, &sc.emissions);
        assert!(recs.len() > 10);
        let kinds: HashSet<WatchKind> = recs.iter().map(|r| r.event.as_ref().unwrap().kind).collect();
        assert!(kinds.contains(&WatchKind::Added) && kinds.contains(&WatchKind::Modified));
        assert!(recs.windows(2).all(|p| p[0].observed_us <= p[1].observed_us));
        let more = w.records(sc.start, &sc.emissions);
        assert!(more.iter().all(|r| r.event.as_ref().unwrap().kind == WatchKind::Modified), "the same objects again");
        assert_eq!(more[0].resource_version, (recs.len() + 1).to_string());
    }
}
