//! Occurrence accounting: how many times an event happened, from the versions of
//! its Event object, and which versions add nothing (duplicates, stale leaders).
//!
//! Kubernetes repeats an event by updating the same object with a higher count
//! (`series.count` or the legacy `count`; [`NormalizedEvent::count`] already takes
//! whichever the shape has). So per (cluster uid, event uid) we keep the highest
//! resourceVersion seen, the count at that version and when it was last seen:
//! - first sight of a uid with count N: N occurrences (they happened, whether we
//!   saw the earlier versions or not);
//! - a newer version: the count delta (never negative);
//! - the same resourceVersion again (re-delivery, relist of an unchanged object,
//!   a deposed collector leader's late write): [`Verdict::Duplicate`], no output;
//! - a lower resourceVersion (out of order): emitted with 0 occurrences, state kept;
//! - DELETED: 0 occurrences (a deletion is not an occurrence);
//! - a record whose collector leader epoch is below the highest seen for its
//!   cluster: [`Verdict::StaleEpoch`], no output.
//!
//! Determinism is the point: the state is a pure function of the records of the
//! partition, so a new owner that replays the same records rebuilds the same state
//! and re-emits identical outputs (see `restore`). Hence time is *record time*
//! (`observed_us`, the collector's receive time carried in the record — immune to
//! emitters' clock skew), never the wall clock:
//! - an entry whose last update is older than `horizon` behind the partition's
//!   watermark (the highest record time seen) is treated as absent at lookup, and
//!   periodic sweeps only delete entries lookups already ignore, so sweep timing
//!   cannot change an output;
//! - the hard cap (`max_entries`) evicts the oldest entries when exceeded. It is a
//!   memory safety valve: once it triggers (metric `state_evictions{cause="cap"}`),
//!   a replaying member may keep entries the first one dropped and differ for them.
//!
//! Keys are the xxh3-64 of (cluster uid, event uid): no allocation per lookup,
//! and a small table. Two event objects sharing a key would share counts: about
//! n²/2⁶⁵ for n entries (3·10⁻⁸ at the 1 M cap), accepted.

use rustc_hash::FxHashMap;
use schemas::model::NormalizedEvent;
use schemas::records::WatchKind;
use xxhash_rust::xxh3::xxh3_64;

/// What to do with one event version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Emit an output carrying `occurrences`. `out_of_order` when the version is
    /// older than one already seen (then `occurrences` is 0).
    Emit { occurrences: i64, out_of_order: bool },
    /// This (uid, resourceVersion) was seen already: no output.
    Duplicate,
}

/// 24 bytes, so that a slot with its key is 32: the table is probed for every
/// record, and its size decides how much of it stays in cache.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// resourceVersion as a number, or [`HASHED`] | its hash when not numeric
    /// (then only equality means anything: Kubernetes calls RVs opaque).
    rv: u64,
    last_us: i64,
    /// Kubernetes counts are int32 (`count`, `series.count`).
    count: i32,
}

/// Marks an `Entry::rv` that is a hash, not a number (etcd revisions stay far
/// below 2⁶³).
const HASHED: u64 = 1 << 63;

/// Counters of evictions, read by the worker for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evictions {
    pub horizon: u64,
    pub cap: u64,
}

/// Occurrence and leader-epoch state of one raw partition.
#[derive(Debug)]
pub struct OccurrenceState {
    entries: FxHashMap<u64, Entry>,
    /// Highest collector leader epoch per cluster (xxh3-64 of the cluster uid).
    epochs: FxHashMap<u64, i64>,
    watermark_us: i64,
    last_sweep_us: i64,
    horizon_us: i64,
    max_entries: usize,
    evictions: Evictions,
}

impl OccurrenceState {
    pub fn new(horizon_us: i64, max_entries: usize) -> Self {
        OccurrenceState {
            // Sized for a typical partition's working set, so a new owner does
            // not rehash its way up from empty (bounded by the cap).
            entries: FxHashMap::with_capacity_and_hasher(max_entries.clamp(1, 16_384), Default::default()),
            epochs: FxHashMap::default(),
            watermark_us: i64::MIN,
            last_sweep_us: i64::MIN,
            horizon_us: horizon_us.max(1),
            max_entries: max_entries.max(1),
            evictions: Evictions::default(),
        }
    }

    /// Whether a record of `cluster_uid` written under `epoch` is current; records
    /// from an older leadership term than the newest seen are stale. Raises the
    /// cluster's epoch when newer.
    #[inline]
    pub fn accept_epoch(&mut self, cluster_uid: &str, epoch: i64) -> bool {
        let max = self.epochs.entry(xxh3_64(cluster_uid.as_bytes())).or_insert(epoch);
        if epoch < *max {
            return false;
        }
        *max = epoch;
        true
    }

    /// Advance the partition's record-time watermark (every record calls this,
    /// heartbeats included, so quiet clusters still age out).
    #[inline]
    pub fn advance(&mut self, record_us: i64) {
        if record_us > self.watermark_us {
            self.watermark_us = record_us;
            if self.last_sweep_us == i64::MIN {
                self.last_sweep_us = record_us;
            } else if record_us - self.last_sweep_us >= self.horizon_us / 8 {
                self.sweep();
            }
        }
    }

    /// Decide about one version of an event object, seen at record time
    /// `record_us`, and update the state.
    pub fn observe(&mut self, cluster_uid: &str, kind: WatchKind, ev: &NormalizedEvent, record_us: i64) -> Verdict {
        self.advance(record_us);
        let key = entry_key(cluster_uid, &ev.uid);
        let rv = parse_rv(&ev.resource_version);
        let count = ev.count.clamp(0, i32::MAX as i64) as i32;
        let floor = self.watermark_us.saturating_sub(self.horizon_us);
        let deleted = kind == WatchKind::Deleted;
        let verdict = match self.entries.get_mut(&key) {
            Some(e) if e.last_us >= floor => {
                if e.rv == rv {
                    return Verdict::Duplicate;
                }
                if (rv | e.rv) & HASHED == 0 && rv < e.rv {
                    return Verdict::Emit { occurrences: 0, out_of_order: true };
                }
                let occurrences = if deleted { 0 } else { (count - e.count).max(0) as i64 };
                e.rv = rv;
                e.count = e.count.max(count);
                e.last_us = e.last_us.max(record_us);
                Verdict::Emit { occurrences, out_of_order: false }
            }
            _ => {
                self.entries.insert(key, Entry { rv, count, last_us: record_us });
                let occurrences = if deleted { 0 } else { count.max(1) as i64 };
                Verdict::Emit { occurrences, out_of_order: false }
            }
        };
        if self.entries.len() > self.max_entries {
            self.evict_oldest();
        }
        verdict
    }

    /// Entries currently held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Evictions so far.
    pub fn evictions(&self) -> Evictions {
        self.evictions
    }

    /// Highest record time seen (µs), `i64::MIN` before any record.
    pub fn watermark_us(&self) -> i64 {
        self.watermark_us
    }

    /// Drop entries that lookups already treat as absent.
    fn sweep(&mut self) {
        self.last_sweep_us = self.watermark_us;
        let floor = self.watermark_us.saturating_sub(self.horizon_us);
        let before = self.entries.len();
        self.entries.retain(|_, e| e.last_us >= floor);
        self.evictions.horizon += (before - self.entries.len()) as u64;
    }

    /// Over the cap: drop the oldest tenth (amortizes the O(n) selection).
    fn evict_oldest(&mut self) {
        let target = self.max_entries - self.max_entries / 10;
        let mut times: Vec<i64> = self.entries.values().map(|e| e.last_us).collect();
        let drop = times.len() - target;
        let (_, cut, _) = times.select_nth_unstable(drop - 1);
        let cut = *cut;
        let before = self.entries.len();
        self.entries.retain(|_, e| e.last_us > cut);
        self.evictions.cap += (before - self.entries.len()) as u64;
    }
}

#[inline]
fn entry_key(cluster_uid: &str, event_uid: &str) -> u64 {
    schemas::ids::with_joined(&[cluster_uid, event_uid], 0x1f, xxh3_64)
}

#[inline]
fn parse_rv(rv: &str) -> u64 {
    match rv.parse::<u64>() {
        Ok(n) if n < HASHED => n,
        _ => xxh3_64(rv.as_bytes()) | HASHED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::model::ApiShape;

    const H: i64 = 7_200_000_000; // 2 h in µs
    const MIN: i64 = 60_000_000;

    fn ev(uid: &str, rv: u64, count: i64, shape: ApiShape) -> NormalizedEvent {
        NormalizedEvent {
            uid: uid.into(),
            resource_version: rv.to_string().into(),
            api_shape: shape,
            series: shape == ApiShape::EventsV1 && count > 1,
            count,
            ..Default::default()
        }
    }

    fn emit(n: i64) -> Verdict {
        Verdict::Emit { occurrences: n, out_of_order: false }
    }

    #[test]
    fn new_repeats_and_both_shapes() {
        for shape in [ApiShape::EventsV1, ApiShape::CoreV1] {
            let mut s = OccurrenceState::new(H, 1000);
            assert_eq!(s.observe("c", WatchKind::Added, &ev("a", 10, 1, shape), MIN), emit(1));
            assert_eq!(s.observe("c", WatchKind::Modified, &ev("a", 11, 2, shape), 2 * MIN), emit(1));
            assert_eq!(s.observe("c", WatchKind::Modified, &ev("a", 15, 7, shape), 3 * MIN), emit(5));
            // A MODIFIED that changes something else: no new occurrences, still emitted.
            assert_eq!(s.observe("c", WatchKind::Modified, &ev("a", 16, 7, shape), 3 * MIN), emit(0));
            // First sight of a uid with count 4 (we missed its earlier versions).
            assert_eq!(s.observe("c", WatchKind::Modified, &ev("b", 17, 4, shape), 3 * MIN), emit(4));
            // Same uid in another cluster is another object.
            assert_eq!(s.observe("d", WatchKind::Modified, &ev("b", 17, 4, shape), 3 * MIN), emit(4));
        }
    }

    #[test]
    fn duplicates_relists_out_of_order_and_deleted() {
        let mut s = OccurrenceState::new(H, 1000);
        let shape = ApiShape::EventsV1;
        assert_eq!(s.observe("c", WatchKind::Added, &ev("a", 10, 3, shape), MIN), emit(3));
        // Re-delivery and a relist of the unchanged object.
        assert_eq!(s.observe("c", WatchKind::Added, &ev("a", 10, 3, shape), MIN), Verdict::Duplicate);
        assert_eq!(s.observe("c", WatchKind::Relisted, &ev("a", 10, 3, shape), 2 * MIN), Verdict::Duplicate);
        assert_eq!(s.observe("c", WatchKind::Modified, &ev("a", 20, 5, shape), 2 * MIN), emit(2));
        // A late, older version: emitted with nothing, state unchanged.
        assert_eq!(
            s.observe("c", WatchKind::Modified, &ev("a", 15, 4, shape), 2 * MIN),
            Verdict::Emit { occurrences: 0, out_of_order: true }
        );
        assert_eq!(s.observe("c", WatchKind::Modified, &ev("a", 21, 6, shape), 2 * MIN), emit(1));
        assert_eq!(s.observe("c", WatchKind::Deleted, &ev("a", 30, 6, shape), 62 * MIN), emit(0));
        assert_eq!(s.observe("c", WatchKind::Deleted, &ev("a", 30, 6, shape), 62 * MIN), Verdict::Duplicate);
        // DELETED of an object never seen: still no occurrences.
        assert_eq!(s.observe("c", WatchKind::Deleted, &ev("z", 31, 9, shape), 62 * MIN), emit(0));
        // Non-numeric RVs: equality only.
        let mut e = ev("q", 0, 1, shape);
        e.resource_version = "abc".into();
        assert_eq!(s.observe("c", WatchKind::Added, &e, 62 * MIN), emit(1));
        assert_eq!(s.observe("c", WatchKind::Added, &e, 62 * MIN), Verdict::Duplicate);
        e.resource_version = "abd".into();
        e.count = 2;
        assert_eq!(s.observe("c", WatchKind::Modified, &e, 62 * MIN), emit(1));
    }

    #[test]
    fn stale_epochs_are_per_cluster() {
        let mut s = OccurrenceState::new(H, 1000);
        assert!(s.accept_epoch("c", 3));
        assert!(s.accept_epoch("c", 3));
        assert!(s.accept_epoch("c", 4));
        assert!(!s.accept_epoch("c", 3), "a deposed leader's late write");
        assert!(s.accept_epoch("d", 1), "another cluster has its own terms");
    }

    #[test]
    fn horizon_eviction_is_by_record_time_and_sweep_timing_does_not_matter() {
        // Two states see the same records; one also gets many watermark advances
        // (sweeps) in between. Their verdicts must be identical.
        let run = |extra_sweeps: bool| {
            let mut s = OccurrenceState::new(H, 1000);
            let mut out = vec![s.observe("c", WatchKind::Added, &ev("old", 1, 2, ApiShape::CoreV1), 0)];
            for m in 1..=200 {
                if extra_sweeps {
                    s.advance(m * MIN - 1);
                }
                out.push(s.observe("c", WatchKind::Added, &ev(&format!("n{m}"), 1 + m as u64, 1, ApiShape::CoreV1), m * MIN));
            }
            // 200 min later the first object's entry is past the 2 h horizon: a
            // version of it counts from scratch (it cannot happen in Kubernetes,
            // which deleted it after 1 h; the point is that both agree).
            out.push(s.observe("c", WatchKind::Modified, &ev("old", 500, 5, ApiShape::CoreV1), 200 * MIN));
            // n150 is 50 min old: still known.
            out.push(s.observe("c", WatchKind::Modified, &ev("n150", 501, 3, ApiShape::CoreV1), 200 * MIN));
            (out, s.len())
        };
        let (a, len_a) = run(false);
        let (b, _) = run(true);
        assert_eq!(a, b);
        assert_eq!(a[a.len() - 2], emit(5), "expired entry: first sight again");
        assert_eq!(a[a.len() - 1], emit(2), "live entry: delta");
        assert!(len_a < 140, "sweeps bound the state, have {len_a}");
    }

    #[test]
    fn hard_cap_evicts_the_oldest() {
        let mut s = OccurrenceState::new(H, 100);
        for i in 0..250 {
            s.observe("c", WatchKind::Added, &ev(&format!("u{i}"), i as u64 + 1, 1, ApiShape::CoreV1), i * 1000);
        }
        assert!(s.len() <= 100);
        assert!(s.evictions().cap >= 150);
        // The newest is still known, the oldest is not.
        assert_eq!(s.observe("c", WatchKind::Added, &ev("u249", 250, 1, ApiShape::CoreV1), 250_000), Verdict::Duplicate);
        assert_eq!(s.observe("c", WatchKind::Added, &ev("u0", 1, 1, ApiShape::CoreV1), 250_000), emit(1));
    }
}
