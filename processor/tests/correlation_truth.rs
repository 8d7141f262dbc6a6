//! Correlation against the simulator's ground truth.
//!
//! Every scenario's watch stream (each write of each Event, in time order, as
//! the collector would publish it) goes through the processor's real step;
//! the correlation ids it assigns are compared with the truth:
//! - per truth incident: the predicted incident of its root event has that
//!   event as its root cause;
//! - event → incident assignment: precision (of the events put into an
//!   incident, how many are in the right one) and recall (of the events that
//!   belong to an incident, how many were put into the right one);
//! - a healthy rollout and background noise open no incident.
//!
//! Run: `cargo test -p kevents-processor --test correlation_truth -- --nocapture`
//! (prints the per-scenario table).

use kevents_processor::output::Output;
use kevents_processor::step::{Engine, PartitionState};
use schemas::model::ClusterId;
use schemas::records::Incident;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::sim::{generate, generate_run, ClusterCtx, Emission, GroundTruth, ScenarioKind, ScenarioParams, TimedEmission, WatchStream};

/// What the processor concluded about one run.
struct Outcome {
    /// Event uid → correlation id of its last version.
    corr: BTreeMap<String, String>,
    /// Incident id → its last version.
    incidents: BTreeMap<String, Incident>,
}

fn play(start: SystemTime, emissions: &[TimedEmission]) -> Outcome {
    let engine = Engine::builtin();
    let mut state = PartitionState::new(0, 7_200_000_000, 1_000_000);
    let mut watch = WatchStream::new(ClusterId { name: "sim-1".into(), uid: "cluster-uid-1".into() });
    let mut out = Vec::new();
    let mut o = Outcome { corr: BTreeMap::new(), incidents: BTreeMap::new() };
    for (i, raw) in watch.records(start, emissions).into_iter().enumerate() {
        out.clear();
        state.process(&engine, raw, i as i64, &mut out).unwrap();
        for r in out.drain(..) {
            match r {
                Output::Processed(p) => {
                    o.corr.insert(p.event.uid.to_string(), p.correlation_id.clone());
                }
                Output::Incident(inc) => {
                    o.incidents.insert(inc.id.clone(), inc);
                }
                _ => {}
            }
        }
    }
    o
}

#[derive(Default, Debug)]
struct Score {
    truth_incidents: usize,
    roots_right: usize,
    predicted_assigned: usize,
    correct: usize,
    truth_members: usize,
    spurious_incidents: usize,
    misses: Vec<String>,
}

impl Score {
    fn add(&mut self, o: &Score) {
        self.truth_incidents += o.truth_incidents;
        self.roots_right += o.roots_right;
        self.predicted_assigned += o.predicted_assigned;
        self.correct += o.correct;
        self.truth_members += o.truth_members;
        self.spurious_incidents += o.spurious_incidents;
        self.misses.extend(o.misses.iter().cloned());
    }
    fn precision(&self) -> f64 {
        if self.predicted_assigned == 0 { 1.0 } else { self.correct as f64 / self.predicted_assigned as f64 }
    }
    fn recall(&self) -> f64 {
        if self.truth_members == 0 { 1.0 } else { self.correct as f64 / self.truth_members as f64 }
    }
}

fn score(truth: &GroundTruth, o: &Outcome) -> Score {
    let mut s = Score::default();
    // The predicted incident of a uid: its correlation id when that is an incident.
    let predicted = |uid: &str| o.corr.get(uid).filter(|c| o.incidents.contains_key(*c)).cloned();
    let mut truth_of: HashMap<&str, usize> = HashMap::new();
    let mut matched: Vec<Option<String>> = Vec::new();
    for (i, t) in truth.incidents.iter().enumerate() {
        s.truth_incidents += 1;
        for u in &t.member_uids {
            truth_of.insert(u, i);
        }
        let p = predicted(&t.root_cause_uid);
        match p.as_ref().and_then(|id| o.incidents.get(id)) {
            Some(inc) if inc.root_cause.event_uid == t.root_cause_uid => s.roots_right += 1,
            Some(inc) => s.misses.push(format!("{}: root predicted {} ({})", t.name, inc.root_cause.reason, inc.summary)),
            None => s.misses.push(format!("{}: root event not in any incident", t.name)),
        }
        matched.push(p);
    }
    for uid in o.corr.keys() {
        let Some(p) = predicted(uid) else { continue };
        s.predicted_assigned += 1;
        match truth_of.get(uid.as_str()) {
            Some(&i) if matched[i].as_deref() == Some(p.as_str()) => s.correct += 1,
            Some(&i) => s.misses.push(format!("{}: member {uid} put in {}", truth.incidents[i].name, o.incidents[&p].summary)),
            None => s.misses.push(format!("noise {uid} put in {}", o.incidents[&p].summary)),
        }
    }
    s.truth_members = truth_of.len();
    let true_roots: BTreeSet<Option<&String>> = matched.iter().map(|m| m.as_ref()).collect();
    s.spurious_incidents = o.incidents.keys().filter(|id| !true_roots.contains(&Some(*id))).count();
    s
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

#[test]
fn every_scenario_matches_its_ground_truth() {
    let mut total = Score::default();
    println!("{:<28} {:>9} {:>6} {:>9} {:>7} {:>9}", "scenario", "incidents", "roots", "precision", "recall", "spurious");
    for kind in ScenarioKind::ALL {
        let mut per = Score::default();
        for seed in 1..=8u64 {
            let params = ScenarioParams::new(seed * 7919 + kind as u64, start());
            let sc = generate(kind, &params);
            let o = play(sc.start, &sc.emissions);
            let s = score(&sc.truth, &o);
            if !kind.has_incident() {
                assert!(o.incidents.is_empty(), "{kind} seed {seed} opened incidents: {:?}", o.incidents.values().map(|i| &i.summary).collect::<Vec<_>>());
            }
            per.add(&s);
        }
        println!(
            "{:<28} {:>9} {:>6} {:>9.3} {:>7.3} {:>9}",
            kind.name(),
            per.truth_incidents,
            per.roots_right,
            per.precision(),
            per.recall(),
            per.spurious_incidents
        );
        total.add(&per);
    }
    println!("{:<28} {:>9} {:>6} {:>9.3} {:>7.3} {:>9}", "all", total.truth_incidents, total.roots_right, total.precision(), total.recall(), total.spurious_incidents);
    for m in total.misses.iter().take(20) {
        println!("  miss: {m}");
    }
    assert_eq!(total.roots_right, total.truth_incidents, "every root cause right: {:?}", &total.misses[..total.misses.len().min(10)]);
    assert!(total.precision() >= 0.95, "precision {:.3}", total.precision());
    assert!(total.recall() >= 0.95, "recall {:.3}", total.recall());
    assert_eq!(total.spurious_incidents, 0, "no incident without a truth incident");
}

#[test]
fn overlapping_scenarios_in_one_cluster_with_noise() {
    let kinds: Vec<ScenarioKind> = ScenarioKind::ALL.into_iter().chain([ScenarioKind::Noise, ScenarioKind::Noise]).collect();
    let mut total = Score::default();
    for seed in 1..=4u64 {
        let run = generate_run(&kinds, seed, start(), &ClusterCtx::new("sim-1", 6), Duration::from_secs(20));
        let o = play(run.start, &run.emissions);
        total.add(&score(&run.truth, &o));
    }
    println!(
        "overlapping: {} incidents, {} roots right, precision {:.3}, recall {:.3}, spurious {}",
        total.truth_incidents,
        total.roots_right,
        total.precision(),
        total.recall(),
        total.spurious_incidents
    );
    for m in total.misses.iter().take(20) {
        println!("  miss: {m}");
    }
    assert!(total.roots_right as f64 >= 0.95 * total.truth_incidents as f64, "roots {}/{}", total.roots_right, total.truth_incidents);
    assert!(total.precision() >= 0.95, "precision {:.3}", total.precision());
    assert!(total.recall() >= 0.95, "recall {:.3}", total.recall());
}

#[test]
#[ignore]
fn debug_one() {
    let kind: ScenarioKind = std::env::var("KIND").unwrap().parse().unwrap();
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let params = ScenarioParams::new(seed * 7919 + kind as u64, start());
    let sc = generate(kind, &params);
    let o = play(sc.start, &sc.emissions);
    for t in &sc.truth.incidents {
        println!("truth {} root {} members {}", t.name, t.root_cause_uid, t.member_uids.len());
    }
    let t0 = start().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
    for e in &sc.emissions {
        let Emission::Apply(k) = &e.emission else { continue };
        let ev = schemas::convert::from_core_v1(k);
        let c = o.corr.get(ev.uid.as_str()).map(|c| if o.incidents.contains_key(c) { &c[..8] } else { "-" }).unwrap_or("?");
        println!("{:>8.1}s {} {:<10} {:<20} {:<50} {} {}", (e.offset.as_micros() as i64) as f64 / 1e6, &ev.uid[..8], c, ev.reason, ev.regarding.name, ev.count, &ev.note.chars().take(60).collect::<String>());
    }
    let _ = t0;
    for i in o.incidents.values() {
        println!("incident {} {:?} {}", &i.id[..8], i.status, i.summary);
    }
}
