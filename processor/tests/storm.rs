//! A storm: a noisy fleet's events reduced to incidents and patterns.
//!
//! Three simulated clusters, each playing every failure scenario again and
//! again over several hours on top of heavy background noise (the simulator's
//! real emitters, their repeats, series and spam filter), through the
//! processor's real step, one partition state per cluster as in production.
//! Must show: at least 50,000 event versions in, at least 20× fewer incidents +
//! patterns out, and every ground-truth incident present with its root cause.
//!
//! Run: `cargo test -p kevents-processor --release --test storm -- --nocapture`.

use kevents_processor::output::Output;
use kevents_processor::step::{Engine, PartitionState};
use schemas::model::ClusterId;
use schemas::records::{Heartbeat, Incident, RawRecord, WatchKind};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};
use testkit::sim::{generate_run, ClusterCtx, GroundTruth, ScenarioKind, WatchStream};

#[test]
fn a_noisy_fleet_reduces_twenty_fold_and_keeps_every_incident() {
    let engine = Engine::builtin();
    let mut kinds: Vec<ScenarioKind> = ScenarioKind::ALL.to_vec();
    kinds.extend([ScenarioKind::Noise; 24]);
    let mut versions = 0usize;
    let mut objects = 0usize;
    let mut incidents: BTreeMap<String, Incident> = BTreeMap::new();
    let mut patterns: BTreeSet<String> = BTreeSet::new();
    let mut truth_incidents = 0usize;
    let mut missing: Vec<String> = Vec::new();
    let mut rerooted_at_a_cause: Vec<String> = Vec::new();
    for c in 0..3u64 {
        let cluster = ClusterId { name: format!("storm-{c}").into(), uid: format!("uid-storm-{c}").into() };
        let mut state = PartitionState::for_engine(&engine, c as i32, 7_200_000_000, 1_000_000);
        let mut truth = GroundTruth::default();
        let mut corr: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::new();
        let mut watch = WatchStream::new(cluster.clone());
        let mut offset = 0i64;
        let mut last_t = 0i64;
        for round in 0..12u64 {
            // One round every 20 minutes: scenarios overlap within a round, and
            // rounds follow each other like a bad afternoon.
            let start = UNIX_EPOCH + Duration::from_secs(1_790_000_000 + round * 1200);
            let run = generate_run(&kinds, c * 1000 + round, start, &ClusterCtx::new(&cluster.name, 10), Duration::from_secs(10));
            truth.merge(run.truth.clone());
            for raw in watch.records(start, &run.emissions) {
                if raw.event.as_ref().is_some_and(|w| w.kind == WatchKind::Added) {
                    objects += 1;
                }
                offset += 1;
                last_t = raw.observed_us;
                versions += 1;
                out.clear();
                state.process(&engine, raw, offset, &mut out).unwrap();
                collect(&mut out, &mut corr, &mut incidents, &mut patterns);
            }
        }
        // An hour later everything has resolved.
        let hb = RawRecord {
            cluster: cluster.clone(),
            observed_us: last_t + 3_600_000_000,
            heartbeat: Some(Heartbeat::default()),
            ..Default::default()
        };
        out.clear();
        state.process(&engine, hb, offset + 1, &mut out).unwrap();
        collect(&mut out, &mut corr, &mut incidents, &mut patterns);
        for t in &truth.incidents {
            truth_incidents += 1;
            let first = corr.get(&t.root_cause_uid).and_then(|id| incidents.get(id));
            let ok = first.is_some_and(|i| i.root_cause.event_uid == t.root_cause_uid);
            // A late cause the rules name (a node's OOM kill within the lookback of a
            // crash loop on that node: rule oom-kill takes BackOffs via the node) may
            // re-root a truth incident: the episode is kept, under a wider root. Such
            // coincidences of the noise are counted, listed and bounded below.
            let rerooted = !ok
                && first.is_some_and(|i| i.summary.starts_with("re-rooted at ") && incidents.get(&i.root_cause.event_id).is_some_and(|n| n.root_cause.event_id == i.root_cause.event_id));
            if rerooted {
                rerooted_at_a_cause.push(t.name.clone());
            } else if !ok {
                let got = match corr.get(&t.root_cause_uid) {
                    None => "never seen".to_string(),
                    Some(id) => incidents.get(id).map(|i| format!("in {}", i.summary)).unwrap_or_else(|| "stands alone".into()),
                };
                missing.push(format!("{} (root {got})", t.name));
            }
        }
    }
    let resolved = incidents.values().filter(|i| i.status == schemas::records::Status::Resolved).count();
    let out_count = incidents.len() + patterns.len();
    let ratio = versions as f64 / out_count.max(1) as f64;
    println!(
        "storm: {versions} event versions ({objects} event objects) → {} incidents ({resolved} resolved) + {} patterns = {out_count}: {ratio:.1}× fewer; {} of {truth_incidents} truth incidents found with their root, {} under a late cause's root",
        incidents.len(),
        patterns.len(),
        truth_incidents - missing.len() - rerooted_at_a_cause.len(),
        rerooted_at_a_cause.len()
    );
    assert!(versions >= 50_000, "{versions} event versions");
    assert!(ratio >= 20.0, "only {ratio:.1}× fewer");
    assert!(missing.is_empty(), "truth incidents not found: {missing:?}");
    println!("re-rooted at a late cause of the noise: {rerooted_at_a_cause:?}");
    assert!(rerooted_at_a_cause.len() * 100 <= truth_incidents, "more than 1 % re-rooted: {rerooted_at_a_cause:?}");
    assert_eq!(resolved, incidents.len(), "every incident resolves after an hour of quiet");
}

fn collect(out: &mut Vec<Output>, corr: &mut BTreeMap<String, String>, incidents: &mut BTreeMap<String, Incident>, patterns: &mut BTreeSet<String>) {
    for o in out.drain(..) {
        match o {
            Output::Processed(p) => {
                corr.entry(p.event.uid.to_string()).or_insert(p.correlation_id);
            }
            Output::Incident(i) => {
                incidents.insert(i.id.clone(), i);
            }
            Output::Pattern(p) => {
                patterns.insert(p.id);
            }
            _ => {}
        }
    }
}
