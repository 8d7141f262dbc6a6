//! What a scenario produces: a timeline of writes to one cluster's API server, plus
//! the seeded identity source every generator draws names and uids from.
//!
//! Times inside the simulator are nanoseconds since the Unix epoch ([`Nanos`]):
//! client-go names events `<object>.<hex UnixNano>`, so nanoseconds are the unit the
//! emitters themselves think in. They become `metav1.Time` (seconds) or
//! `metav1.MicroTime` (microseconds) only when an Event object is built.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

pub(crate) const SECOND: Nanos = 1_000_000_000;
pub(crate) const MILLI: Nanos = 1_000_000;

/// One write the simulator makes to a cluster's API server.
/// Nearly every emission is an `Apply`, so the Event is kept inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Emission {
    /// Create or update the Event with this namespace and name (the store keys on them).
    /// A repeat is the same object (same uid and name) with a higher count or series count.
    Apply(Event),
    /// Delete the Event object, as the API server does when its TTL expires.
    Delete { namespace: String, name: String },
}

impl Emission {
    /// The event's uid for an apply, `None` for a delete.
    pub fn uid(&self) -> Option<&str> {
        match self {
            Emission::Apply(ev) => ev.metadata.uid.as_deref(),
            Emission::Delete { .. } => None,
        }
    }
}

/// An emission and when it happens, relative to the start of its scenario (or of the
/// fleet, for background noise).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEmission {
    pub offset: Duration,
    pub emission: Emission,
}

/// Converts a `SystemTime` to [`Nanos`]; times before 1970 are clamped to the epoch.
pub fn nanos_of(t: SystemTime) -> Nanos {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as Nanos).unwrap_or(0)
}

/// `metav1.Time` has second precision on the wire and in etcd: truncate like Go does.
pub(crate) fn k8s_time(t: Nanos) -> Time {
    Time(Timestamp::from_second(t.div_euclid(SECOND)).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// `metav1.MicroTime` keeps microseconds.
pub(crate) fn k8s_micro_time(t: Nanos) -> MicroTime {
    MicroTime(Timestamp::from_microsecond(t.div_euclid(1_000)).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The alphabet Kubernetes uses for generated name suffixes
/// (apimachinery `util/rand.SafeEncodeString`: no vowels, no confusable digits).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The seeded source of every random choice in a generator: same seed, same output.
pub struct Ids {
    rng: ChaCha8Rng,
}

impl Ids {
    pub fn new(seed: u64) -> Self {
        Ids { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// A random (version 4) UUID, as the API server assigns to `metadata.uid`.
    pub fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        format_uuid(b)
    }

    /// `n` characters of the Kubernetes safe alphabet (pod and ReplicaSet suffixes).
    pub fn suffix(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| SAFE_ALPHABET[self.rng.random_range(0..SAFE_ALPHABET.len())] as char)
            .collect()
    }

    pub fn range(&mut self, lo: i64, hi_inclusive: i64) -> i64 {
        self.rng.random_range(lo..=hi_inclusive)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    /// A jitter in `[0, max)` nanoseconds, so two emitters never share a timestamp.
    pub fn jitter(&mut self, max: Nanos) -> Nanos {
        if max <= 0 {
            0
        } else {
            self.rng.random_range(0..max)
        }
    }

    /// A pod IP in 10.42.0.0/16, for probe messages.
    pub fn pod_ip(&mut self) -> String {
        format!("10.42.{}.{}", self.range(0, 63), self.range(2, 254))
    }

    pub fn seed(&mut self) -> u64 {
        self.rng.random()
    }
}

fn format_uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A uid derived from a name alone (FNV-1a into a seeded rng), so every scenario of a
/// cluster agrees on the uid of a shared object such as a Node.
pub fn stable_uid(name: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    Ids::new(h).uuid()
}

/// Go's `time.Duration.String()` for a duration truncated to milliseconds, as the
/// kubelet prints pull times ("845ms", "2.345s", "1m3.5s").
pub(crate) fn go_duration_ms(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mins = ms / 60_000;
    let rest_ms = ms % 60_000;
    let secs = rest_ms / 1000;
    let frac = rest_ms % 1000;
    let mut s = String::new();
    if mins > 0 {
        s.push_str(&format!("{mins}m"));
    }
    s.push_str(&secs.to_string());
    if frac > 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('s');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_v4_shaped_and_seeded() {
        let a = Ids::new(7).uuid();
        let b = Ids::new(7).uuid();
        assert_eq!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(Ids::new(8).uuid(), a);
    }

    #[test]
    fn stable_uid_depends_on_name_only() {
        assert_eq!(stable_uid("node-1"), stable_uid("node-1"));
        assert_ne!(stable_uid("node-1"), stable_uid("node-2"));
    }

    #[test]
    fn go_durations_print_like_go() {
        assert_eq!(go_duration_ms(845), "845ms");
        assert_eq!(go_duration_ms(2345), "2.345s");
        assert_eq!(go_duration_ms(2300), "2.3s");
        assert_eq!(go_duration_ms(5000), "5s");
        assert_eq!(go_duration_ms(63_500), "1m3.5s");
    }

    #[test]
    fn times_truncate_to_their_precision() {
        let t = 1_700_000_000 * SECOND + 123_456_789;
        assert_eq!(k8s_time(t).0.as_second(), 1_700_000_000);
        assert_eq!(k8s_micro_time(t).0.as_microsecond(), 1_700_000_000_123_456);
    }

    #[test]
    fn suffix_uses_safe_alphabet() {
        let s = Ids::new(1).suffix(40);
        assert!(s.bytes().all(|c| SAFE_ALPHABET.contains(&c)));
    }
}

/// Items waiting for their time: pops the earliest first, and items due at the same
/// time in the order they were pushed (so a seeded run is replayed identically).
#[derive(Debug)]
pub(crate) struct Agenda<T> {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Slot<T>>>,
    seq: u64,
}

#[derive(Debug)]
struct Slot<T> {
    at: Nanos,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Slot<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl<T> Default for Agenda<T> {
    fn default() -> Self {
        Agenda { heap: Default::default(), seq: 0 }
    }
}

impl<T> Agenda<T> {
    pub(crate) fn push(&mut self, at: Nanos, item: T) {
        self.seq += 1;
        self.heap.push(std::cmp::Reverse(Slot { at, seq: self.seq, item }));
    }

    /// Time of the earliest item.
    pub(crate) fn next_at(&self) -> Option<Nanos> {
        self.heap.peek().map(|s| s.0.at)
    }

    /// The earliest item with its time.
    pub(crate) fn pop(&mut self) -> Option<(Nanos, T)> {
        self.heap.pop().map(|s| (s.0.at, s.0.item))
    }

    /// The earliest item if it is due by `now`.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<T> {
        if self.next_at()? <= now {
            self.pop().map(|(_, item)| item)
        } else {
            None
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
