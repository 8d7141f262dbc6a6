//! Patterns and anomalies: similar events grouped by a similarity key, reported as
//! a pattern when they recur often enough, with episodes, recurrence and a rate
//! baseline per key. Pure and deterministic (record time, no clock): the per-record
//! step calls it; `kevents analyze` runs it in process.
//!
//! The similarity key is `reason|kind|namespace|template` ([`similarity_key`]): the
//! event's reason, the kind of its involved object, its namespace, and its message
//! with names, numbers and ids masked ([`template()`]). Per cluster a key is a
//! pattern while its occurrences within `window_minutes` reach `min_count` at more
//! than `min_per_minute`; across clusters the same key is a fleet pattern
//! ([`fleet::merge`] in process, the `fleet_patterns` view in ClickHouse).
//!
//! Layout:
//! - [`config`]: `PatternConfig` (`patterns:` in the processor's config).
//! - [`mod@template`]: the message template (the masks, and why hand-written).
//! - [`detector`]: `PatternDetector`, the per-partition state machine and episodes.
//! - [`anomaly`]: the per-key EWMA baseline and deviation score.
//! - [`fleet`]: the same key in several clusters as one fleet pattern.

pub mod anomaly;
pub mod config;
pub mod detector;
pub mod fleet;
pub mod template;

pub use config::{AnomalyConfig, PatternConfig};
pub use detector::{PatternDetector, PatternInput};
pub use template::{template, template_into};

/// `reason|kind|namespace|template`: what [`schemas::records::Pattern::key`] holds.
pub fn similarity_key(reason: &str, kind: &str, namespace: &str, template: &str) -> String {
    [reason, kind, namespace, template].join("|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::model::{ClusterId, Severity};
    use schemas::records::{Pattern, Status};
    use std::collections::BTreeSet;

    const MIN: i64 = 60_000_000;
    const SEC: i64 = 1_000_000;
    const T0: i64 = 1_800_000_000 * SEC;

    fn cluster(n: &str) -> ClusterId {
        ClusterId { name: n.into(), uid: format!("uid-{n}").into() }
    }

    /// An event, owned (a `PatternInput` borrows from it).
    #[derive(Clone)]
    struct Ev {
        cluster: ClusterId,
        id: String,
        reason: &'static str,
        namespace: String,
        note: String,
        severity: Severity,
        occurrences: i64,
        t_us: i64,
    }

    impl Ev {
        fn input(&self) -> PatternInput<'_> {
            PatternInput {
                cluster: &self.cluster,
                event_id: &self.id,
                reason: self.reason,
                kind: "Pod",
                namespace: &self.namespace,
                note: &self.note,
                severity: self.severity,
                occurrences: self.occurrences,
                t_us: self.t_us,
            }
        }
    }

    /// A crash-loop back-off of pod number `pod` at `t_us`.
    fn backoff(t_us: i64, pod: usize) -> Ev {
        Ev {
            cluster: cluster("eu"),
            id: format!("ev-{t_us}-{pod}"),
            reason: "BackOff",
            namespace: "shop".into(),
            note: format!("Back-off restarting failed container app in pod web-7d9f8c6b5-x{pod}k4q_shop(0b8c1f7e-1111-2222-3333-44445555{pod:04})"),
            severity: Severity::Warning,
            occurrences: 1,
            t_us,
        }
    }

    /// Feed events in order, advancing time (like heartbeats) every 5 s between them.
    fn run(d: &mut PatternDetector, evs: &[Ev]) -> Vec<Pattern> {
        let mut out = Vec::new();
        for e in evs {
            d.observe(&e.input(), &mut out);
            d.advance(e.t_us, &mut out);
        }
        out
    }

    fn heartbeats(d: &mut PatternDetector, from: i64, to: i64) -> Vec<Pattern> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            d.advance(t, &mut out);
            t += 5 * SEC;
        }
        out
    }

    fn episodes(out: &[Pattern]) -> BTreeSet<String> {
        out.iter().map(|p| p.id.clone()).collect()
    }

    #[test]
    fn thresholds_two_is_nothing_three_in_two_minutes_opens_a_slow_rate_never() {
        let cfg = PatternConfig::default();
        let mut d = PatternDetector::new(&cfg);
        assert!(run(&mut d, &[backoff(T0, 1), backoff(T0 + MIN, 2)]).is_empty());
        let out = run(&mut d, &[backoff(T0 + 2 * MIN, 3)]);
        assert_eq!(out.len(), 1, "{out:#?}");
        let p = &out[0];
        assert_eq!((p.version, p.status, p.count, p.first_seen_us, p.last_seen_us), (1, Status::Open, 3, T0, T0 + 2 * MIN));
        assert_eq!(p.key, "BackOff|Pod|shop|Back-off restarting failed container <*> in pod <*>(<uid>)");
        assert_eq!((p.reason.as_str(), p.kind.as_str(), p.namespace.as_str()), ("BackOff", "Pod", "shop"));
        assert_eq!(p.template, "Back-off restarting failed container <*> in pod <*>(<uid>)");
        assert_eq!(p.key, similarity_key(&p.reason, &p.kind, &p.namespace, &p.template));
        assert_eq!((p.cluster.clone(), p.clusters.clone()), (cluster("eu"), vec!["eu".to_string()]));
        assert_eq!(p.samples, vec![format!("ev-{T0}-1"), format!("ev-{}-2", T0 + MIN), format!("ev-{}-3", T0 + 2 * MIN)]);
        assert!((p.per_minute - 1.5).abs() < 1e-9, "3 in 2 minutes: {}", p.per_minute);
        assert_eq!(p.id, schemas::ids::stable_id(&["pattern", "cluster", "uid-eu", &p.key, &T0.to_string()]));
        assert!(p.previous_episodes.is_empty() && p.anomaly_score == 0.0);

        // 0.3 per minute (one every 200 s) for three hours: never a pattern.
        let mut d = PatternDetector::new(&cfg);
        let slow: Vec<Ev> = (0..54).map(|i| backoff(T0 + i * 200 * SEC, i as usize)).collect();
        assert!(run(&mut d, &slow).is_empty());
        assert_eq!(d.len(), 1, "one key for every pod");
    }

    #[test]
    fn occurrences_add_up_redeliveries_and_chatter_do_not_count() {
        let cfg = PatternConfig::default();
        let mut d = PatternDetector::new(&cfg);
        let mut redelivered = backoff(T0 + 10 * SEC, 2);
        redelivered.occurrences = 0;
        let mut normal = backoff(T0 + 20 * SEC, 3);
        normal.severity = Severity::Info;
        assert!(run(&mut d, &[backoff(T0, 1), redelivered.clone(), redelivered, normal.clone(), normal]).is_empty());
        let mut repeat = backoff(T0 + 30 * SEC, 4);
        repeat.occurrences = 5;
        let out = run(&mut d, &[repeat]);
        assert_eq!((out.len(), out[0].count), (1, 6), "a repeat adds its count delta");
    }

    #[test]
    fn a_flapping_key_is_one_episode_and_quiet_resolves_it() {
        let cfg = PatternConfig::default();
        let mut d = PatternDetector::new(&cfg);
        // Two hours alternating 10 minutes at 0.75/min (every 80 s) and 10 at
        // 0.3/min (every 200 s): around the threshold, never under half of it.
        let mut evs = Vec::new();
        let mut t = T0;
        while t < T0 + 120 * MIN {
            let fast = (t - T0) / (10 * MIN) % 2 == 0;
            evs.push(backoff(t, evs.len()));
            t += if fast { 80 * SEC } else { 200 * SEC };
        }
        let mut out = run(&mut d, &evs);
        assert_eq!(episodes(&out).len(), 1, "one episode");
        assert!(out.iter().all(|p| p.status == Status::Open));
        let versions: Vec<i64> = out.iter().map(|p| p.version).collect();
        assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>(), "versions increase by one");
        let last_t = evs.last().unwrap().t_us;
        // Quiet: resolved once, `close_after_secs` after the last occurrence.
        assert!(heartbeats(&mut d, last_t, last_t + 10 * MIN - 5 * SEC).is_empty(), "not before");
        let closed = heartbeats(&mut d, last_t + 10 * MIN, last_t + 30 * MIN);
        assert_eq!(closed.len(), 1, "{closed:#?}");
        let r = &closed[0];
        assert_eq!((r.status, r.count, r.last_seen_us), (Status::Resolved, evs.len() as i64, last_t));
        assert_eq!(r.version, out.last().unwrap().version + 1);
        assert_eq!(d.open_count(), 0);
        // Bursts with gaps shorter than close_after stay one episode too.
        let mut d = PatternDetector::new(&cfg);
        let bursts: Vec<Ev> =
            (0..60).map(|i| backoff(T0 + (i / 5) * 8 * MIN + (i % 5) * SEC, i as usize)).collect();
        out = run(&mut d, &bursts);
        assert_eq!(episodes(&out).len(), 1);
    }

    #[test]
    fn a_trickle_under_half_the_threshold_resolves_and_does_not_reopen() {
        let cfg = PatternConfig::default();
        let mut d = PatternDetector::new(&cfg);
        let mut evs: Vec<Ev> = (0..5).map(|i| backoff(T0 + i * SEC, i as usize)).collect();
        // Then one every 9 minutes: never quiet for 10, but 0.11 per minute.
        evs.extend((1..14).map(|i| backoff(T0 + i * 9 * MIN, 10 + i as usize)));
        let out = run(&mut d, &evs);
        let statuses: Vec<Status> = out.iter().map(|p| p.status).collect();
        assert_eq!(statuses.first(), Some(&Status::Open));
        assert_eq!(statuses.iter().filter(|s| **s == Status::Resolved).count(), 1, "{out:#?}");
        assert_eq!(episodes(&out).len(), 1, "a trickle never reopens it");
        let resolved = out.iter().find(|p| p.status == Status::Resolved).unwrap();
        assert!(resolved.last_seen_us < evs.last().unwrap().t_us, "resolved while the trickle went on");
    }

    #[test]
    fn recurrence_lists_earlier_episodes() {
        let cfg = PatternConfig { max_history: 2, ..Default::default() };
        let mut d = PatternDetector::new(&cfg);
        let mut all = Vec::new();
        let starts: Vec<i64> = (0..4).map(|k| T0 + k * 24 * 60 * MIN).collect();
        for (k, &s) in starts.iter().enumerate() {
            let burst: Vec<Ev> = (0..4).map(|i| backoff(s + i * 10 * SEC, k * 10 + i as usize)).collect();
            all.extend(run(&mut d, &burst));
            all.extend(heartbeats(&mut d, s, s + 20 * MIN));
        }
        let ids = episodes(&all);
        assert_eq!(ids.len(), 4, "a new episode (id) each day");
        let firsts: Vec<&Pattern> = all.iter().filter(|p| p.version == 1).collect();
        assert_eq!(firsts.len(), 4);
        assert_eq!(firsts[0].previous_episodes, Vec::<i64>::new());
        assert_eq!(firsts[1].previous_episodes, vec![starts[0]]);
        assert_eq!(firsts[2].previous_episodes, vec![starts[0], starts[1]]);
        assert_eq!(firsts[3].previous_episodes, vec![starts[1], starts[2]], "max_history 2");
        assert_eq!(all.iter().filter(|p| p.status == Status::Resolved).count(), 4);
    }

    #[test]
    fn a_storm_makes_few_versions_with_the_first_three_samples() {
        let cfg = PatternConfig::default();
        let mut d = PatternDetector::new(&cfg);
        // 50,000 back-offs of 500 pods in 10 minutes.
        let storm: Vec<Ev> = (0..50_000).map(|i| backoff(T0 + i * 12_000, (i % 500) as usize)).collect();
        let mut out = run(&mut d, &storm);
        d.flush(&mut out);
        assert!(out.len() <= 30, "{} versions", out.len());
        assert_eq!(episodes(&out).len(), 1);
        let last = out.last().unwrap();
        assert_eq!(last.count, 50_000);
        assert_eq!(last.samples, vec![storm[0].id.clone(), storm[1].id.clone(), storm[2].id.clone()]);
        assert!(out.iter().all(|p| p.samples.len() <= 3));
        let mut again = Vec::new();
        d.flush(&mut again);
        assert!(again.is_empty(), "nothing new to flush");
    }

    #[test]
    fn keys_are_bounded_by_evicting_the_least_recently_seen() {
        let cfg = PatternConfig { max_keys: 64, ..Default::default() };
        let mut d = PatternDetector::new(&cfg);
        let mut out = Vec::new();
        let key_event = |t: i64, ns: String| Ev { namespace: ns, ..backoff(t, 1) };
        // An open pattern in namespace "hot", then 1,000 other keys seen once.
        for i in 0..3 {
            d.observe(&key_event(T0 + i * SEC, "hot".into()).input(), &mut out);
        }
        for i in 0..1000 {
            d.observe(&key_event(T0 + (10 + i) * SEC, format!("ns-{i}")).input(), &mut out);
            assert!(d.len() <= 64, "never more than max_keys");
        }
        assert_eq!(d.evictions() as usize + d.len(), 1001);
        assert_eq!((d.open_count(), out.len()), (1, 1), "closed keys go first: the open one stays");
        // When only open patterns are left to forget, each is resolved, not dropped.
        let mut d = PatternDetector::new(&cfg);
        let mut out = Vec::new();
        for k in 0..200 {
            for i in 0..3 {
                d.observe(&key_event(T0 + (k * 3 + i) * SEC, format!("ns-{k}")).input(), &mut out);
                assert!(d.len() <= 64);
            }
        }
        let resolved: Vec<&Pattern> = out.iter().filter(|p| p.status == Status::Resolved).collect();
        assert_eq!(resolved.len() as u64, d.evictions());
        assert_eq!(d.evictions() as usize + d.len(), 200);
        assert_eq!(resolved[0].namespace, "ns-0", "least recently seen first");
    }

    /// A fleet-like mix: 3 clusters, 6 reasons, bursts, slow keys, repeats.
    fn mix(n: i64) -> Vec<Ev> {
        let reasons = ["BackOff", "Unhealthy", "FailedMount", "FailedScheduling", "Evicted", "Pulled"];
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move |m: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s % m
        };
        (0..n)
            .map(|i| {
                let r = rnd(6) as usize;
                Ev {
                    cluster: cluster(["eu", "us", "ap"][rnd(3) as usize]),
                    id: format!("ev-{i}"),
                    reason: reasons[r],
                    namespace: format!("ns-{}", rnd(4)),
                    note: format!("{} happened to pod web-{}-x{} after {}s", reasons[r], rnd(50), rnd(9), rnd(100)),
                    severity: if r == 5 { Severity::Info } else { Severity::Warning },
                    occurrences: [0, 1, 1, 1, 2, 7][rnd(6) as usize],
                    t_us: T0 + i * 700_000 + (rnd(3) as i64) * SEC,
                }
            })
            .collect()
    }

    #[test]
    fn a_replay_from_the_same_state_writes_byte_identical_records() {
        let cfg = PatternConfig { max_keys: 40, anomaly: AnomalyConfig { warmup_minutes: 5, min_burst: 3, ..Default::default() }, ..Default::default() };
        let evs = mix(20_000);
        let codec = schemas::avro::Codec::default();
        let encode = |ps: &[Pattern]| -> Vec<Vec<u8>> { ps.iter().map(|p| codec.encode(p).unwrap()).collect() };
        let (mut a, mut b) = (PatternDetector::new(&cfg), PatternDetector::new(&cfg));
        let (oa, ob) = (run(&mut a, &evs[..12_000]), run(&mut b, &evs[..12_000]));
        assert!(oa.len() > 20, "the mix makes patterns: {}", oa.len());
        assert_eq!(encode(&oa), encode(&ob));
        // From a copy of the state mid-way, the rest replays identically.
        let mut c = a.clone();
        let (ra, rc) = (run(&mut a, &evs[12_000..]), run(&mut c, &evs[12_000..]));
        assert!(!ra.is_empty());
        assert_eq!(encode(&ra), encode(&rc));
        assert!(a.evictions() > 0, "the mix exercises eviction");
    }

    #[test]
    fn a_burst_far_above_a_steady_baseline_is_an_anomaly() {
        let cfg = PatternConfig { anomaly: AnomalyConfig { warmup_minutes: 30, ..Default::default() }, ..Default::default() };
        // One per minute for an hour (an open pattern all along), then 25 in a minute.
        let steady: Vec<Ev> = (0..60).map(|i| backoff(T0 + i * MIN + 7 * SEC, i as usize)).collect();
        let mut d = PatternDetector::new(&cfg);
        let out = run(&mut d, &steady);
        assert!(!out.is_empty() && out.iter().all(|p| p.anomaly_score == 0.0), "a steady rate is no anomaly");
        let burst: Vec<Ev> = (0..25).map(|i| backoff(T0 + 60 * MIN + i * SEC, 100 + i as usize)).collect();
        let out = run(&mut d, &burst);
        let anomalies: Vec<&Pattern> = out.iter().filter(|p| p.anomaly_score > 0.0).collect();
        assert!(!anomalies.is_empty(), "{out:#?}");
        assert!(anomalies[0].anomaly_score >= cfg.anomaly.threshold);
        assert_eq!(episodes(&out).len(), 1, "the same episode, flagged");

        // Two events in one minute after hours of almost nothing: under the fixed
        // thresholds, flagged when the config allows small bursts.
        let quiet = |d: &mut PatternDetector| {
            let mut out = run(d, &[backoff(T0, 1)]);
            out.extend(run(d, &[backoff(T0 + 180 * MIN, 2)]));
            out.extend(run(d, &[backoff(T0 + 300 * MIN, 3), backoff(T0 + 300 * MIN + 20 * SEC, 4)]));
            out
        };
        assert!(quiet(&mut PatternDetector::new(&PatternConfig::default())).is_empty(), "defaults: nothing");
        let small = PatternConfig {
            anomaly: AnomalyConfig { min_burst: 2, min_deviation: 0.5, threshold: 3.0, ..Default::default() },
            ..Default::default()
        };
        let out = quiet(&mut PatternDetector::new(&small));
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!((out[0].count, out[0].status), (2, Status::Open));
        assert!(out[0].anomaly_score >= 3.0, "{}", out[0].anomaly_score);
    }

    #[test]
    fn clusters_are_apart_and_pods_of_any_workload_together() {
        let cfg = PatternConfig::default();
        let mut d = PatternDetector::new(&cfg);
        let mut evs = Vec::new();
        for (i, c) in ["eu", "us"].iter().enumerate() {
            for k in 0..3 {
                let mut e = backoff(T0 + (i as i64 * 3 + k) * SEC, k as usize);
                e.cluster = cluster(c);
                e.note = format!(
                    "Back-off restarting failed container {} in pod {}-6c4b9d7f8-bcd{k}g_shop(1c9d2f8a-aaaa-bbbb-cccc-ddddeeeeff{k:02})",
                    ["cart", "web", "api"][k as usize],
                    ["cart", "web", "api"][k as usize]
                );
                evs.push(e);
            }
        }
        let out = run(&mut d, &evs);
        assert_eq!(out.len(), 2, "one pattern per cluster");
        assert_eq!(out[0].key, out[1].key);
        assert_ne!(out[0].id, out[1].id);
        let fleet = fleet::merge(&out, 2);
        assert_eq!((fleet.len(), fleet[0].count, fleet[0].clusters.len()), (1, 6, 2));
    }
}
