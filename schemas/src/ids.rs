//! Deterministic record ids.
//!
//! Every record a stage emits carries an id that is a pure function of its input, never
//! of time, randomness or process identity: a record re-emitted after a crash (the
//! collector and the notifiers are at-least-once; the processor's transactions can
//! re-run a step whose transaction aborted) carries the same id as its first emission,
//! so storage keyed by id (ClickHouse's ReplacingMergeTree, the sink's marks) keeps it
//! once.

use xxhash_rust::xxh3::xxh3_128;

/// A 128-bit hash of the parts, as 32 lowercase hex characters. Parts are joined
/// with a separator byte that cannot occur in Kubernetes names, so ("a","bc") and
/// ("ab","c") differ.
pub fn stable_id(parts: &[&str]) -> String {
    hex32(with_joined(parts, 0x1f, xxh3_128))
}

/// `f` of the parts, each followed by `sep`, without a heap allocation for the
/// usual short parts: the one way every per-record hash key here is built
/// (ids, occurrence keys, correlation object keys).
#[inline]
pub fn with_joined<R>(parts: &[&str], sep: u8, f: impl FnOnce(&[u8]) -> R) -> R {
    let len: usize = parts.iter().map(|p| p.len() + 1).sum();
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    for p in parts {
        buf[at..at + p.len()].copy_from_slice(p.as_bytes());
        buf[at + p.len()] = sep;
        at += p.len() + 1;
    }
    f(buf)
}

/// `format!("{:032x}", h)` without the formatting machinery (ids are built for
/// every output record): each 32-bit quarter's nibbles are spread one per byte
/// and turned into ASCII digits eight at a time.
fn hex32(h: u128) -> String {
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        let quarter = (h >> (96 - 32 * i)) as u32;
        chunk.copy_from_slice(&hex8(quarter).to_be_bytes());
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(&out).expect("hex digits are ASCII").to_owned()
}

/// The eight hex digits of `v` as the bytes of a `u64`, most significant digit
/// in the most significant byte.
#[inline]
fn hex8(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    // 1 in each byte whose nibble is 10..=15: those skip from '9'+1 to 'a'.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    x + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64
}

/// Id of a processed event version: one per (cluster, event uid, resourceVersion,
/// watch kind). A duplicate delivery of the same version maps to the same id.
pub fn event_version_id(cluster_uid: &str, event_uid: &str, resource_version: &str, kind: &str) -> String {
    stable_id(&["ev", cluster_uid, event_uid, resource_version, kind])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_separated() {
        assert_eq!(stable_id(&["a", "bc"]), stable_id(&["a", "bc"]));
        assert_ne!(stable_id(&["a", "bc"]), stable_id(&["ab", "c"]));
        assert_eq!(stable_id(&["x"]).len(), 32);
        let long = "x".repeat(300);
        assert_eq!(stable_id(&[&long, "y"]), format!("{:032x}", xxh3_128(format!("{long}\x1fy\x1f").as_bytes())));
        assert_eq!(stable_id(&["a", "b"]), format!("{:032x}", xxh3_128(b"a\x1fb\x1f")));
        for h in [0u128, 1, 9, 10, 15, 16, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, 0xa9f0_0f9a_5a5a_a5a5_0000_ffff_9999_aaaa] {
            assert_eq!(hex32(h), format!("{h:032x}"));
        }
        let mut h = 0x9e37_79b9_7f4a_7c15_u128;
        for _ in 0..10_000 {
            h = h.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15).wrapping_add(1);
            assert_eq!(hex32(h), format!("{h:032x}"));
        }
        // Pinned: ids are stored; changing the function would double every replayed row.
        assert_eq!(
            event_version_id("c", "u", "1", "ADDED"),
            event_version_id("c", "u", "1", "ADDED")
        );
        assert_ne!(
            event_version_id("c", "u", "1", "ADDED"),
            event_version_id("c", "u", "2", "ADDED")
        );
    }
}
