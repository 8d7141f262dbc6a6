//! Incidents do not depend on the order records arrive in (within the
//! correlation lookback), through the processor's real per-record step — the
//! engine `kevents analyze` runs too.
//!
//! The property: a stream's records shuffled within windows of 2 s of record
//! time (each event's own versions keep their order, as the collector
//! guarantees; arrival times stay where they were, the events move) give the
//! same incidents as the stream in time order: same ids, rules, roots, member
//! events, counts, times and summaries. Checked with seeded shuffles (no
//! extra dependency: a splitmix64 generator) on:
//! - every simulator scenario (several seeds) and overlapping runs with noise;
//! - the real public dumps of `cli/testdata/dumps` (origins in its README);
//! - the defects issue #17 names, written as records with the emitters' real
//!   messages: a Node's NotReady read after its pods' "Node is not ready" of
//!   the same second, an init container that fails to start ("failed to create
//!   shim task") and then backs off, a failed Job and its pods, siblings
//!   failing in the same second.
//!
//! Run: `cargo test -p kevents-processor --test order_independence -- --nocapture`.

use kevents_processor::output::Output;
use kevents_processor::step::{Engine, PartitionState};
use schemas::model::{ClusterId, NormalizedEvent, ObjectRef};
use schemas::records::{CollectorMeta, Heartbeat, Incident, RawRecord, WatchEvent, WatchKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::sim::{generate, generate_run, ClusterCtx, ScenarioKind, ScenarioParams, WatchStream};

const WINDOW_US: i64 = 2_000_000;

fn cluster() -> ClusterId {
    ClusterId { name: "sim-1".into(), uid: "cluster-uid-1".into() }
}

fn engine() -> Engine {
    let mut e = Engine::builtin();
    // Remember every incident's members to the end, as `kevents analyze` does.
    e.correlation_limits.closed_keep_us = i64::MAX / 4;
    e
}

/// What an incident is, without its version bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    rule: String,
    root_uid: String,
    members: BTreeSet<String>,
    events: i64,
    occurrences: i64,
    first_us: i64,
    last_us: i64,
    summary: String,
}

/// Runs the records in the given order; every incident resolved at the end.
fn run(engine: &Engine, records: &[RawRecord]) -> BTreeMap<String, Seen> {
    let mut state = PartitionState::for_engine(engine, 0, 7_200_000_000, 1_000_000);
    let mut out = Vec::new();
    let mut last: BTreeMap<String, Incident> = BTreeMap::new();
    let mut uids: BTreeSet<String> = BTreeSet::new();
    let mut end = 0i64;
    let take = |out: &mut Vec<Output>, last: &mut BTreeMap<String, Incident>| {
        for o in out.drain(..) {
            if let Output::Incident(i) = o {
                last.insert(i.id.clone(), i);
            }
        }
    };
    for (i, r) in records.iter().enumerate() {
        end = end.max(r.observed_us);
        if let Some(w) = &r.event {
            uids.insert(w.event.uid.to_string());
        }
        state.process(engine, r.clone(), i as i64, &mut out).unwrap();
        take(&mut out, &mut last);
    }
    let hb = RawRecord { cluster: cluster(), observed_us: end + 86_400_000_000, heartbeat: Some(Heartbeat::default()), ..Default::default() };
    state.process(engine, hb, records.len() as i64, &mut out).unwrap();
    take(&mut out, &mut last);
    let mut members: HashMap<String, BTreeSet<String>> = HashMap::new();
    for u in &uids {
        if let Some(id) = state.correlation().member_of(&cluster().uid, u) {
            members.entry(id).or_default().insert(u.clone());
        }
    }
    last.into_values()
        // A re-rooted id's last version names the incident that replaced it.
        .filter(|i| i.root_cause.event_id == i.id)
        .map(|i| {
            let seen = Seen {
                rule: i.rule.clone(),
                root_uid: i.root_cause.event_uid.clone(),
                members: members.remove(&i.id).unwrap_or_default(),
                events: i.event_count,
                occurrences: i.occurrences,
                first_us: i.first_seen_us,
                last_us: i.last_seen_us,
                summary: i.summary.clone(),
            };
            (i.id, seen)
        })
        .collect()
}

/// splitmix64: a seeded generator, enough for shuffles.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn uid_of(r: &RawRecord) -> String {
    r.event.as_ref().map(|w| w.event.uid.to_string()).unwrap_or_default()
}

/// The records shuffled within windows of record time; an event's versions
/// keep their order; the arrival times stay in place.
fn shuffle(records: &[RawRecord], rng: &mut Rng) -> Vec<RawRecord> {
    let times: Vec<i64> = records.iter().map(|r| r.observed_us).collect();
    let mut out: Vec<RawRecord> = Vec::with_capacity(records.len());
    let mut start = 0;
    while start < records.len() {
        let w = records[start].observed_us / WINDOW_US;
        let mut end = start;
        while end < records.len() && records[end].observed_us / WINDOW_US == w {
            end += 1;
        }
        let mut bucket: Vec<RawRecord> = records[start..end].to_vec();
        for i in (1..bucket.len()).rev() {
            let j = rng.below(i + 1);
            bucket.swap(i, j);
        }
        // Each event's versions back in their order, in the slots it now has.
        let mut by_uid: HashMap<String, Vec<RawRecord>> = HashMap::new();
        for r in &records[start..end] {
            by_uid.entry(uid_of(r)).or_default().push(r.clone());
        }
        let mut next: HashMap<String, usize> = HashMap::new();
        for slot in bucket.iter_mut() {
            let u = uid_of(slot);
            let k = next.entry(u.clone()).or_default();
            *slot = by_uid[&u][*k].clone();
            *k += 1;
        }
        out.extend(bucket);
        start = end;
    }
    for (r, t) in out.iter_mut().zip(times) {
        r.observed_us = t;
    }
    out
}

/// Checks the property on one stream; returns (incidents, shuffles) checked.
fn check(name: &str, records: &[RawRecord], shuffles: usize, seed: u64) -> (usize, usize) {
    let engine = engine();
    let want = run(&engine, records);
    let mut rng = Rng(seed);
    for n in 0..shuffles {
        let order = shuffle(records, &mut rng);
        let got = run(&engine, &order);
        if got != want {
            let only_want: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).map(|(k, v)| format!("{k}: {v:?}")).collect();
            let only_got: Vec<_> = got.iter().filter(|(k, v)| want.get(*k) != Some(v)).map(|(k, v)| format!("{k}: {v:?}")).collect();
            panic!("{name}, shuffle {n}: incidents differ\n in time order only: {only_want:#?}\n shuffled only: {only_got:#?}");
        }
    }
    (want.len(), shuffles)
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

#[test]
fn simulator_streams_give_the_same_incidents_in_any_order_within_the_window() {
    let (mut incidents, mut runs, mut records) = (0, 0, 0);
    for kind in ScenarioKind::ALL {
        for seed in 1..=3u64 {
            let params = ScenarioParams::new(seed * 7919 + kind as u64, start());
            let sc = generate(kind, &params);
            let recs = WatchStream::new(cluster()).records(sc.start, &sc.emissions);
            records += recs.len();
            let (i, s) = check(&format!("{} seed {seed}", kind.name()), &recs, 12, seed);
            incidents += i;
            runs += s;
        }
    }
    let kinds: Vec<ScenarioKind> = ScenarioKind::ALL.into_iter().chain([ScenarioKind::Noise, ScenarioKind::Noise]).collect();
    for seed in 1..=2u64 {
        let run = generate_run(&kinds, seed, start(), &ClusterCtx::new("sim-1", 6), Duration::from_secs(20));
        let recs = WatchStream::new(cluster()).records(run.start, &run.emissions);
        records += recs.len();
        let (i, s) = check(&format!("overlapping seed {seed}"), &recs, 6, seed);
        incidents += i;
        runs += s;
    }
    println!("simulator: {records} records, {incidents} incidents, {runs} shuffled runs, all equal to time order");
    assert!(incidents >= 40);
}

/// A dump's events as a watch would have shown them: the first occurrence at
/// its first time, the last version (its whole count) at its last time.
fn dump_records(path: &std::path::Path) -> Vec<RawRecord> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for (i, item) in v["items"].as_array().unwrap().iter().enumerate() {
        let e = schemas::convert::from_json(i, item.clone()).unwrap();
        let last = e.effective_time_us();
        let first = if e.first_seen_us > 0 { e.first_seen_us } else { last };
        if e.count > 1 && last > first {
            let mut head = e.clone();
            head.count = 1;
            head.last_seen_us = first;
            head.resource_version = format!("{}1", i + 1).into();
            out.push(record(WatchKind::Added, head, first));
        }
        let mut tail = e;
        tail.resource_version = format!("{}2", i + 1).into();
        let kind = if out.last().is_some_and(|r: &RawRecord| uid_of(r) == tail.uid.as_str()) { WatchKind::Modified } else { WatchKind::Added };
        out.push(record(kind, tail, last));
    }
    out.sort_by_key(|r| r.observed_us);
    out
}

fn record(kind: WatchKind, ev: NormalizedEvent, t: i64) -> RawRecord {
    RawRecord {
        cluster: cluster(),
        collector: CollectorMeta::default(),
        observed_us: t.max(1),
        resource_version: ev.resource_version.to_string(),
        event: Some(WatchEvent { kind, event: Box::new(ev) }),
        heartbeat: None,
    }
}

#[test]
fn real_dumps_give_the_same_incidents_in_any_order_within_the_window() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/testdata/dumps");
    let mut dumps: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    dumps.sort();
    let (mut incidents, mut records) = (0, 0);
    for d in &dumps {
        let recs = dump_records(d);
        records += recs.len();
        incidents += check(&d.display().to_string(), &recs, 30, 17).0;
    }
    println!("real dumps: {} dumps, {records} records, {incidents} incidents, 30 shuffles each", dumps.len());
    assert!(dumps.len() >= 8);
}

// ------------------------------------------------------------ issue #17's cases

const T0: i64 = 1_790_000_000_000_000;

#[allow(clippy::too_many_arguments)]
fn ev(uid: &str, kind: &str, ns: &str, name: &str, etype: &str, reason: &str, note: &str, t: i64, component: &str, host: &str) -> NormalizedEvent {
    NormalizedEvent {
        uid: uid.into(),
        name: format!("{name}.{:x}", t * 1000).into(),
        namespace: if ns.is_empty() { "default".into() } else { ns.into() },
        resource_version: "1".into(),
        event_type: etype.into(),
        reason: reason.into(),
        note: note.into(),
        reporting_controller: component.into(),
        reporting_instance: host.into(),
        regarding: ObjectRef { kind: kind.into(), namespace: ns.into(), name: name.into(), ..Default::default() },
        first_seen_us: t - t % 1_000_000,
        last_seen_us: t - t % 1_000_000,
        count: 1,
        ..Default::default()
    }
}

/// Every order of the records (all permutations when few, else shuffles):
/// the same incidents. Returns them.
fn all_orders(records: &[RawRecord]) -> BTreeMap<String, Seen> {
    let engine = engine();
    let want = run(&engine, records);
    let mut rng = Rng(99);
    for _ in 0..200 {
        let mut order = records.to_vec();
        for i in (1..order.len()).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
        // Arrival times stay increasing; the events move.
        for (r, t) in order.iter_mut().zip(records.iter().map(|r| r.observed_us)) {
            r.observed_us = t;
        }
        assert_eq!(run(&engine, &order), want, "a different order changed the incidents");
    }
    want
}

#[test]
fn a_node_not_ready_read_after_its_pods_takes_them_in() {
    let mut recs = Vec::new();
    for (i, pod) in ["web-7d9f8c6b5-x2kqp", "api-5f7b9c4d8-zz4kq", "db-0"].iter().enumerate() {
        let e = ev(&format!("p{i}"), "Pod", "shop", pod, "Warning", "NodeNotReady", "Node is not ready", T0 + 100_000 * i as i64, "node-controller", "");
        recs.push(record(WatchKind::Added, e, T0 + 100_000 * i as i64));
    }
    let node = ev("n", "Node", "", "node-7", "Normal", "NodeNotReady", "Node node-7 status is now: NodeNotReady", T0 + 400_000, "node-controller", "");
    recs.push(record(WatchKind::Added, node, T0 + 400_000));
    let got = all_orders(&recs);
    assert_eq!(got.len(), 1, "{got:#?}");
    let inc = got.values().next().unwrap();
    assert_eq!((inc.rule.as_str(), inc.root_uid.as_str(), inc.members.len()), ("node-not-ready", "n", 4), "{inc:#?}");
}

#[test]
fn an_init_container_that_fails_to_start_then_backs_off_is_rooted_at_the_failure() {
    let pod = "migrate-6c9d7f8b4-q2w5z";
    let failed = ev(
        "f",
        "Pod",
        "shop",
        pod,
        "Warning",
        "Failed",
        "Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"/migrate\": stat /migrate: no such file or directory: unknown",
        T0,
        "kubelet",
        "node-1",
    );
    let backoff = ev("b", "Pod", "shop", pod, "Warning", "BackOff", "Back-off restarting failed container migrate in pod migrate-6c9d7f8b4-q2w5z_shop(8d1c)", T0 + 300_000, "kubelet", "node-1");
    let recs = vec![record(WatchKind::Added, failed, T0), record(WatchKind::Added, backoff, T0 + 300_000)];
    let got = all_orders(&recs);
    assert_eq!(got.len(), 1, "{got:#?}");
    let inc = got.values().next().unwrap();
    assert_eq!((inc.rule.as_str(), inc.root_uid.as_str(), inc.members.len()), ("container-start-failure", "f", 2), "{inc:#?}");
}

#[test]
fn a_failed_job_is_an_incident_with_its_pods_failures() {
    let job = ev("j", "Job", "batch", "report", "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit", T0 + 200_000, "job-controller", "");
    let pod1 = ev("p1", "Pod", "batch", "report-x2kqp", "Warning", "BackOff", "Back-off restarting failed container main in pod report-x2kqp_batch(1)", T0, "kubelet", "node-1");
    let pod2 = ev("p2", "Pod", "batch", "report-zz4kq", "Warning", "BackOff", "Back-off restarting failed container main in pod report-zz4kq_batch(2)", T0 + 100_000, "kubelet", "node-2");
    let recs = vec![record(WatchKind::Added, pod1, T0), record(WatchKind::Added, pod2, T0 + 100_000), record(WatchKind::Added, job, T0 + 200_000)];
    let got = all_orders(&recs);
    assert_eq!(got.len(), 1, "{got:#?}");
    let inc = got.values().next().unwrap();
    assert_eq!(inc.members.len(), 3, "{inc:#?}");
    // Alone, the Job's failure is an incident too.
    let alone = all_orders(&recs[2..]);
    assert_eq!(alone.values().map(|i| i.rule.as_str()).collect::<Vec<_>>(), ["job-failed"]);
}

#[test]
fn siblings_failing_in_the_same_second_have_one_root_whatever_the_order() {
    let a = ev("a", "Pod", "shop", "cart-7d9f8c6b5-x2kqp", "Warning", "FailedMount", "MountVolume.SetUp failed for volume \"data\" : secret \"cart\" not found", T0 + 10, "kubelet", "node-1");
    let b = ev("b", "Pod", "shop", "cart-7d9f8c6b5-zz4kq", "Warning", "FailedMount", "MountVolume.SetUp failed for volume \"data\" : secret \"cart\" not found", T0 + 20, "kubelet", "node-2");
    let recs = vec![record(WatchKind::Added, a, T0 + 10), record(WatchKind::Added, b, T0 + 20)];
    let got = all_orders(&recs);
    assert_eq!(got.len(), 1, "{got:#?}");
    let inc = got.values().next().unwrap();
    assert_eq!((inc.root_uid.as_str(), inc.members.len()), ("a", 2), "the one created first (its name's nanoseconds) is the root: {inc:#?}");
}
