//! The pattern state machine of one raw partition: similarity keys per cluster,
//! their rate windows and baselines, and the episodes they open and resolve.
//!
//! Pure and deterministic: time is the record time the caller passes in (never a
//! clock), and every output is a function of the state and the inputs, so a replay
//! of the same records from the same state writes byte-identical `Pattern`
//! versions (same ids, versions, counts), which storage then keeps once. The
//! processor's per-record step holds one detector per partition and calls
//! [`PatternDetector::observe`] for each processed event version and
//! [`PatternDetector::advance`] for heartbeats.
//!
//! A key's life: occurrences fill a per-minute window → when the window holds
//! `min_count` and the rate is above `min_per_minute` (or the minute is an anomaly)
//! an episode opens (version 1, status open) → versions follow when the count
//! doubled, on an anomaly, or `update_every_secs` after the last with new
//! occurrences → it resolves after `close_after_secs` of silence or of a rate over
//! the whole window under half the threshold → its start joins the key's history,
//! which the next episode lists in `previous_episodes`. Keys beyond `max_keys` are
//! forgotten least recently seen first.

use super::anomaly::Baseline;
use super::config::PatternConfig;
use super::template::template_into;
use rustc_hash::FxHashMap;
use schemas::ids::stable_id;
use schemas::model::{ClusterId, Severity};
use schemas::records::{Pattern, PatternScope, Status};
use std::collections::{BTreeSet, VecDeque};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

const MINUTE_US: i64 = 60_000_000;
const SECOND_US: i64 = 1_000_000;

/// One processed event version, as patterns see it.
#[derive(Debug, Clone, Copy)]
pub struct PatternInput<'a> {
    pub cluster: &'a ClusterId,
    /// The processed event's id (becomes a sample).
    pub event_id: &'a str,
    pub reason: &'a str,
    /// Kind of the involved object.
    pub kind: &'a str,
    pub namespace: &'a str,
    /// The message; its template is part of the key.
    pub note: &'a str,
    pub severity: Severity,
    /// Occurrences this version adds (0 for a re-delivered version: ignored).
    pub occurrences: i64,
    /// Record time, µs.
    pub t_us: i64,
}

/// Occurrences of one minute within the rate window.
#[derive(Debug, Clone, PartialEq)]
struct Bucket {
    minute: i64,
    count: i64,
    first_us: i64,
}

/// The open episode of a key.
#[derive(Debug, Clone, PartialEq)]
struct Episode {
    id: String,
    start_us: i64,
    last_seen_us: i64,
    count: i64,
    version: i64,
    samples: Vec<String>,
    /// Window rate at the last occurrence: what versions report.
    per_minute: f64,
    /// Count and time of the last version written.
    written_count: i64,
    written_us: i64,
    /// Since when the rate over the whole window has been under half the threshold.
    low_since_us: Option<i64>,
}

/// Everything known about one similarity key of one cluster.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    cluster: ClusterId,
    /// `reason|kind|namespace|template`.
    key: Box<str>,
    /// Byte lengths of reason, kind and namespace at the start of `key`.
    lens: [u32; 3],
    last_seen_us: i64,
    window: VecDeque<Bucket>,
    window_count: i64,
    /// The first events of the current window (≤ 3), before an episode opens.
    candidates: Vec<(i64, String)>,
    baseline: Baseline,
    episode: Option<Episode>,
    /// Start times of earlier episodes, oldest first.
    history: VecDeque<i64>,
    /// While open: the time of its entry in the detector's queue.
    due_us: i64,
}

/// Detects patterns and anomalies in one raw partition's events (all its clusters).
#[derive(Debug, Clone)]
pub struct PatternDetector {
    cfg: PatternConfig,
    entries: FxHashMap<u128, Entry>,
    /// Keys with an open episode, by when they next need a look: the earliest time
    /// they could resolve. `advance` looks only at the ones due, so a heartbeat
    /// costs nothing while nothing is due. An occurrence only moves that time
    /// later, so entries are not updated on `observe`: one looked at early is
    /// simply queued again (ordered: deterministic output).
    due: BTreeSet<(i64, u128)>,
    /// Highest record time seen.
    now_us: i64,
    /// `advance` does its work at most once per record-time second.
    next_check_us: i64,
    evictions: u64,
    /// Direct-mapped memo: xxh3-64 of a note → xxh3-128 of its template. Repeats
    /// of one event carry the same message, so most versions skip templating.
    /// (A hit and a miss give the same hash: outputs do not depend on it.)
    memo: Vec<(u64, u128)>,
    /// The template of the note whose hash is `template_of`.
    template: String,
    template_of: Option<u64>,
    hash_buf: Vec<u8>,
}

/// Slots of the template memo (32 KB).
const MEMO_SLOTS: usize = 1024;

impl PatternDetector {
    pub fn new(cfg: &PatternConfig) -> Self {
        PatternDetector {
            cfg: cfg.clone(),
            entries: FxHashMap::default(),
            due: BTreeSet::new(),
            now_us: i64::MIN,
            next_check_us: i64::MIN,
            evictions: 0,
            memo: vec![(0, 0); MEMO_SLOTS],
            template: String::new(),
            template_of: None,
            hash_buf: Vec::new(),
        }
    }

    /// Count one processed event version. Appends the pattern versions it causes
    /// (`source` left default: the caller sets the input's position).
    pub fn observe(&mut self, ev: &PatternInput<'_>, out: &mut Vec<Pattern>) {
        if ev.occurrences <= 0 || ev.severity < self.cfg.min_severity {
            return;
        }
        self.now_us = self.now_us.max(ev.t_us);
        let note_hash = xxh3_64(ev.note.as_bytes());
        let h = self.key_hash(ev, note_hash);
        if !self.entries.contains_key(&h) {
            if self.entries.len() >= self.cfg.max_keys {
                self.make_room(out);
            }
            if self.template_of != Some(note_hash) {
                template_into(ev.note, &mut self.template);
                self.template_of = Some(note_hash);
            }
            self.entries.insert(h, Entry::new(ev, &self.template));
        }
        let Some(e) = self.entries.get_mut(&h) else { return };
        // Per key, time never goes back (clusters' clocks may differ a little).
        let t = ev.t_us.max(e.last_seen_us);
        let before = e.episode.as_ref().map(|ep| ep.start_us);
        let old_due = e.due_us;
        e.tick(t, &self.cfg, out);
        e.add(t, ev.occurrences, ev.event_id, &self.cfg, out);
        let after = e.episode.as_ref().map(|ep| ep.start_us);
        if before != after {
            // Resolved by the tick, opened by the occurrence, or both.
            if before.is_some() {
                self.due.remove(&(old_due, h));
            }
            if after.is_some() {
                e.due_us = e.due(t, &self.cfg);
                self.due.insert((e.due_us, h));
            }
        }
    }

    /// Record time passed (a heartbeat, or the end of a batch): resolve the open
    /// patterns that went quiet. Does work at most once per record-time second.
    pub fn advance(&mut self, t_us: i64, out: &mut Vec<Pattern>) {
        self.now_us = self.now_us.max(t_us);
        if self.now_us < self.next_check_us {
            return;
        }
        self.next_check_us = self.now_us.div_euclid(SECOND_US) * SECOND_US + SECOND_US;
        let now = self.now_us;
        while let Some(&(due, h)) = self.due.first() {
            if due > now {
                break;
            }
            self.due.pop_first();
            let Some(e) = self.entries.get_mut(&h) else { continue };
            e.tick(now.max(e.last_seen_us), &self.cfg, out);
            if e.episode.is_some() {
                e.due_us = e.due(now, &self.cfg).max(now + 1);
                self.due.insert((e.due_us, h));
            }
        }
    }

    /// Write a version of every open pattern that has occurrences no version
    /// carries yet (`kevents analyze` calls it at the end of its input).
    pub fn flush(&mut self, out: &mut Vec<Pattern>) {
        for (_, h) in &self.due {
            if let Some(e) = self.entries.get_mut(h) {
                if e.episode.as_ref().is_some_and(|ep| ep.count > ep.written_count) {
                    e.write(Status::Open, &self.cfg, out);
                }
            }
        }
    }

    /// Similarity keys held (never more than `max_keys`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Open patterns.
    pub fn open_count(&self) -> usize {
        self.due.len()
    }

    /// Keys forgotten to stay within `max_keys`, since start.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The key's identity: xxh3-128 of (cluster uid, reason, kind, namespace,
    /// template hash). No allocation; templating only on a memo miss.
    fn key_hash(&mut self, ev: &PatternInput<'_>, note_hash: u64) -> u128 {
        let slot = (note_hash as usize) & (MEMO_SLOTS - 1);
        let template_hash = match self.memo[slot] {
            (n, t) if n == note_hash && t != 0 => t,
            _ => {
                template_into(ev.note, &mut self.template);
                self.template_of = Some(note_hash);
                let t = xxh3_128(self.template.as_bytes()).max(1);
                self.memo[slot] = (note_hash, t);
                t
            }
        };
        let b = &mut self.hash_buf;
        b.clear();
        for part in [ev.cluster.uid.as_str(), ev.reason, ev.kind, ev.namespace] {
            b.extend_from_slice(part.as_bytes());
            b.push(0x1f);
        }
        b.extend_from_slice(&template_hash.to_le_bytes());
        xxh3_128(b)
    }

    /// Forget the least recently seen keys (closed ones first), a batch at a time
    /// so the scan is amortized; open ones forgotten are resolved.
    fn make_room(&mut self, out: &mut Vec<Pattern>) {
        let batch = (self.cfg.max_keys / 32).max(1);
        let mut order: Vec<(bool, i64, u128)> =
            self.entries.iter().map(|(h, e)| (e.episode.is_some(), e.last_seen_us, *h)).collect();
        let victims = if batch < order.len() {
            order.select_nth_unstable(batch - 1);
            &mut order[..batch]
        } else {
            &mut order[..]
        };
        victims.sort_unstable();
        for (_, _, h) in victims.iter() {
            if let Some(mut e) = self.entries.remove(h) {
                if e.episode.is_some() {
                    e.close(&self.cfg, out);
                    self.due.remove(&(e.due_us, *h));
                }
                self.evictions += 1;
            }
        }
    }
}

impl Entry {
    fn new(ev: &PatternInput<'_>, template: &str) -> Self {
        let key = [ev.reason, ev.kind, ev.namespace, template].join("|");
        Entry {
            cluster: ev.cluster.clone(),
            key: key.into_boxed_str(),
            lens: [ev.reason.len() as u32, ev.kind.len() as u32, ev.namespace.len() as u32],
            last_seen_us: ev.t_us,
            window: VecDeque::new(),
            window_count: 0,
            candidates: Vec::new(),
            baseline: Baseline::new(ev.t_us.div_euclid(MINUTE_US)),
            episode: None,
            history: VecDeque::new(),
            due_us: i64::MIN,
        }
    }

    /// Bring the key to time `t`: drop minutes that left the window and resolve
    /// the episode if it has been quiet or low long enough.
    fn tick(&mut self, t: i64, cfg: &PatternConfig, out: &mut Vec<Pattern>) {
        let minute = t.div_euclid(MINUTE_US);
        let oldest = minute - i64::from(cfg.window_minutes) + 1;
        while self.window.front().is_some_and(|b| b.minute < oldest) {
            if let Some(b) = self.window.pop_front() {
                self.window_count -= b.count;
            }
        }
        self.candidates.retain(|(at, _)| at.div_euclid(MINUTE_US) >= oldest);
        let full = self.full_window_rate(cfg);
        let Some(ep) = self.episode.as_mut() else { return };
        track_low(ep, full, t, cfg);
        let close_after = cfg.close_after_secs as i64 * SECOND_US;
        let quiet = t - ep.last_seen_us >= close_after;
        let low = ep.low_since_us.is_some_and(|s| t - s >= close_after);
        if quiet || low {
            self.close(cfg, out);
        }
    }

    /// Count `n` occurrences at `t` (after `tick(t)`).
    fn add(&mut self, t: i64, n: i64, event_id: &str, cfg: &PatternConfig, out: &mut Vec<Pattern>) {
        let minute = t.div_euclid(MINUTE_US);
        match self.window.back_mut() {
            Some(b) if b.minute == minute => b.count += n,
            _ => self.window.push_back(Bucket { minute, count: n, first_us: t }),
        }
        self.window_count += n;
        self.last_seen_us = t;
        self.baseline.roll(minute, cfg.anomaly.alpha);
        let anomaly = self.baseline.add(n, &cfg.anomaly);
        let rate = self.rate(t);
        let full = self.full_window_rate(cfg);
        match self.episode.as_mut() {
            Some(ep) => {
                ep.count += n;
                ep.last_seen_us = t;
                ep.per_minute = rate;
                if ep.samples.len() < 3 {
                    ep.samples.push(event_id.to_string());
                }
                track_low(ep, full, t, cfg);
                let due = ep.count >= 2 * ep.written_count
                    || t - ep.written_us >= cfg.update_every_secs as i64 * SECOND_US;
                if due || anomaly.is_some() {
                    self.write(Status::Open, cfg, out);
                }
            }
            None => {
                if self.candidates.len() < 3 {
                    self.candidates.push((t, event_id.to_string()));
                }
                let fixed = self.window_count >= cfg.min_count && rate > cfg.min_per_minute;
                if fixed || anomaly.is_some() {
                    self.open_episode(t, rate, cfg, out);
                }
            }
        }
    }

    fn open_episode(&mut self, t: i64, rate: f64, cfg: &PatternConfig, out: &mut Vec<Pattern>) {
        // The candidates are the window's first events, so it starts no later.
        let start_us = self.window.front().map_or(t, |b| b.first_us);
        let id = stable_id(&["pattern", "cluster", &self.cluster.uid, &self.key, &start_us.to_string()]);
        self.episode = Some(Episode {
            id,
            start_us,
            last_seen_us: t,
            count: self.window_count,
            version: 0,
            samples: self.candidates.drain(..).map(|(_, id)| id).collect(),
            per_minute: rate,
            written_count: 0,
            written_us: t,
            low_since_us: None,
        });
        self.write(Status::Open, cfg, out);
    }

    /// Resolve the open episode: a last version, its start into the history, and
    /// a fresh window (a new episode needs new evidence).
    fn close(&mut self, cfg: &PatternConfig, out: &mut Vec<Pattern>) {
        self.write(Status::Resolved, cfg, out);
        if let Some(ep) = self.episode.take() {
            self.history.push_back(ep.start_us);
            while self.history.len() > cfg.max_history {
                self.history.pop_front();
            }
        }
        self.window.clear();
        self.window_count = 0;
        self.candidates.clear();
    }

    /// Append the next version of the open episode.
    fn write(&mut self, status: Status, cfg: &PatternConfig, out: &mut Vec<Pattern>) {
        let anomaly_score = match status {
            Status::Open => self.baseline.reported_score(&cfg.anomaly),
            Status::Resolved => 0.0,
        };
        let Some(ep) = self.episode.as_mut() else { return };
        ep.version += 1;
        ep.written_count = ep.count;
        ep.written_us = ep.last_seen_us;
        let [r, k, n] = self.lens.map(|l| l as usize);
        let key = &*self.key;
        out.push(Pattern {
            id: ep.id.clone(),
            version: ep.version,
            scope: PatternScope::Cluster,
            cluster: self.cluster.clone(),
            clusters: vec![self.cluster.name.to_string()],
            key: key.to_string(),
            reason: key[..r].to_string(),
            kind: key[r + 1..r + 1 + k].to_string(),
            namespace: key[r + k + 2..r + k + 2 + n].to_string(),
            template: key[r + k + n + 3..].to_string(),
            status,
            count: ep.count,
            first_seen_us: ep.start_us,
            last_seen_us: ep.last_seen_us,
            per_minute: ep.per_minute,
            samples: ep.samples.clone(),
            previous_episodes: self.history.iter().copied().collect(),
            anomaly_score,
            ..Default::default()
        });
    }

    /// The earliest time the open episode could resolve, as of `t`: when it has
    /// been silent or low for `close_after_secs`, or — not low yet — when the
    /// oldest minute leaves the window (the only way the count can fall).
    fn due(&self, t: i64, cfg: &PatternConfig) -> i64 {
        let Some(ep) = &self.episode else { return i64::MAX };
        let close_after = cfg.close_after_secs as i64 * SECOND_US;
        let low = match (ep.low_since_us, self.window.front()) {
            (Some(since), _) => since + close_after,
            (None, None) => t,
            (None, Some(front)) => (front.minute + i64::from(cfg.window_minutes)) * MINUTE_US,
        };
        (ep.last_seen_us + close_after).min(low)
    }

    /// Occurrences per minute in the window, over the time since its first
    /// occurrence (at least one minute): what opens a pattern and what versions
    /// report, so three in two minutes count as 1.5 per minute.
    fn rate(&self, t: i64) -> f64 {
        let Some(front) = self.window.front() else { return 0.0 };
        let minutes = ((t - front.first_us) as f64 / MINUTE_US as f64).max(1.0);
        self.window_count as f64 / minutes
    }

    /// Occurrences per minute over the whole window: what keeps a pattern open.
    /// Unlike [`Entry::rate`], one lone occurrence does not look like a rate of one
    /// per minute, so a trickle after a storm lets the pattern resolve.
    fn full_window_rate(&self, cfg: &PatternConfig) -> f64 {
        self.window_count as f64 / f64::from(cfg.window_minutes)
    }
}

fn track_low(ep: &mut Episode, rate: f64, t: i64, cfg: &PatternConfig) {
    if rate < cfg.min_per_minute / 2.0 {
        ep.low_since_us.get_or_insert(t);
    } else {
        ep.low_since_us = None;
    }
}
