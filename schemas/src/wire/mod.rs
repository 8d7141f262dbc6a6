//! Hand-written Avro binary encoding of the per-event records, for the hot path.
//!
//! apache-avro's serde path builds a `Value` tree for every record: about 15 µs to
//! encode and 40 µs to decode a raw record here, which would cap a stage at a few
//! ten thousand events per second per core (see `benches/codec.rs`). The records
//! that flow once per event — [`RawRecord`], [`ProcessedEvent`], [`ClusterHeartbeat`]
//! — are therefore written and read directly in the Avro binary encoding of their
//! *current* schema. Older writer schemas, and the low-volume records, still go
//! through apache-avro's schema resolution ([`crate::avro::Codec`] chooses).
//!
//! The field order must follow the `.avsc` files; the tests check our bytes against
//! apache-avro's for the same record (both ways), so a schema change that is not
//! mirrored here fails the tests instead of corrupting data. Maps are written in
//! key order, so a replayed record is byte-identical to its first emission.
//!
//! Layout: this file has the primitives, [`Wire`] and [`Reader`]; `events.rs` the
//! per-event records; `results.rs` incidents, patterns and alerts.

mod events;
mod results;

use std::collections::BTreeMap;

use crate::metadata::Metadata;
use crate::model::{ApiShape, ClusterId, NormalizedEvent, ObjectRef, Severity};
use crate::records::Status;
use crate::records::{CollectorMeta, SourcePos, WatchKind};

/// Why a datum could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("datum ends early (reading {0})")]
    Eof(&'static str),
    #[error("bad varint (reading {0})")]
    Varint(&'static str),
    #[error("invalid UTF-8 in {0}")]
    Utf8(&'static str),
    #[error("{what}: index {index} out of range")]
    Index { what: &'static str, index: i64 },
    #[error("negative length, or a count beyond the bytes left, in {0}")]
    Length(&'static str),
}

// ---- writing -------------------------------------------------------------

pub(super) fn long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn boolean(out: &mut Vec<u8>, b: bool) {
    out.push(b as u8);
}

pub(super) fn double(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// An array as one block (count, items) and the end marker.
pub(super) fn array<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    if !items.is_empty() {
        long(out, items.len() as i64);
        for i in items {
            item(out, i);
        }
    }
    long(out, 0);
}

/// A map of longs, in key order.
pub(super) fn map_long(out: &mut Vec<u8>, m: &BTreeMap<String, i64>) {
    if !m.is_empty() {
        long(out, m.len() as i64);
        for (k, v) in m {
            string(out, k);
            long(out, *v);
        }
    }
    long(out, 0);
}

pub(super) fn severity(out: &mut Vec<u8>, s: Severity) {
    long(out, s as i64);
}

pub(super) fn status(out: &mut Vec<u8>, s: Status) {
    long(out, matches!(s, Status::Resolved) as i64);
}

pub(super) fn map(out: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    pairs(out, m.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

/// An Avro map of string values from its pairs (one block, then the end marker).
pub(super) fn pairs<'a>(out: &mut Vec<u8>, m: impl ExactSizeIterator<Item = (&'a str, &'a str)>) {
    if m.len() > 0 {
        long(out, m.len() as i64);
        for (k, v) in m {
            string(out, k);
            string(out, v);
        }
    }
    long(out, 0);
}

pub(super) fn object_ref(out: &mut Vec<u8>, r: &ObjectRef) {
    string(out, &r.kind);
    string(out, &r.namespace);
    string(out, &r.name);
    string(out, &r.uid);
    string(out, &r.api_version);
    string(out, &r.field_path);
}

pub(super) fn cluster(out: &mut Vec<u8>, c: &ClusterId) {
    string(out, &c.name);
    string(out, &c.uid);
}

pub(super) fn collector(out: &mut Vec<u8>, c: &CollectorMeta) {
    string(out, &c.instance);
    long(out, c.leader_epoch);
}

pub(super) fn source(out: &mut Vec<u8>, s: &SourcePos) {
    long(out, s.partition as i64);
    long(out, s.offset);
    long(out, s.seq as i64);
}

pub(super) fn watch_kind_index(k: WatchKind) -> i64 {
    match k {
        WatchKind::Added => 0,
        WatchKind::Modified => 1,
        WatchKind::Deleted => 2,
        WatchKind::Relisted => 3,
    }
}

pub(super) fn event(out: &mut Vec<u8>, e: &NormalizedEvent) {
    string(out, &e.uid);
    string(out, &e.namespace);
    string(out, &e.name);
    string(out, &e.resource_version);
    long(out, matches!(e.api_shape, ApiShape::CoreV1) as i64);
    string(out, &e.event_type);
    string(out, &e.reason);
    string(out, &e.note);
    string(out, &e.action);
    object_ref(out, &e.regarding);
    match &e.related {
        None => long(out, 0),
        Some(r) => {
            long(out, 1);
            object_ref(out, r);
        }
    }
    string(out, &e.reporting_controller);
    string(out, &e.reporting_instance);
    long(out, e.count);
    boolean(out, e.series);
    long(out, e.first_seen_us);
    long(out, e.last_seen_us);
    match e.event_time_us {
        None => long(out, 0),
        Some(t) => {
            long(out, 1);
            long(out, t);
        }
    }
    long(out, e.created_us);
    pairs(out, e.labels.iter());
    pairs(out, e.annotations.iter());
}

/// A record with a hand-written encoding of its current schema.
pub trait Wire: Sized {
    fn write(&self, out: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

// ---- reading -------------------------------------------------------------

/// A cursor over one datum.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not consumed (a complete datum leaves none).
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn long(&mut self, what: &'static str) -> Result<i64, WireError> {
        let mut n: u64 = 0;
        for (i, b) in self.buf.iter().enumerate() {
            if i == 10 {
                return Err(WireError::Varint(what));
            }
            n |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        Err(WireError::Eof(what))
    }

    pub(super) fn int(&mut self, what: &'static str) -> Result<i32, WireError> {
        let v = self.long(what)?;
        i32::try_from(v).map_err(|_| WireError::Varint(what))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.long(what)?;
        let len = usize::try_from(len).map_err(|_| WireError::Length(what))?;
        if len > self.buf.len() {
            return Err(WireError::Eof(what));
        }
        let (b, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(b)
    }

    /// An owned string (`String`, or the inline-when-short `Text` of event fields).
    pub(super) fn string<T: for<'s> From<&'s str>>(&mut self, what: &'static str) -> Result<T, WireError> {
        self.str(what).map(T::from)
    }

    /// A string borrowed from the input.
    fn str(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| WireError::Utf8(what))
    }

    pub(super) fn boolean(&mut self, what: &'static str) -> Result<bool, WireError> {
        let (&b, rest) = self.buf.split_first().ok_or(WireError::Eof(what))?;
        self.buf = rest;
        match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Index { what, index: b as i64 }),
        }
    }

    pub(super) fn union(&mut self, what: &'static str, branches: i64) -> Result<i64, WireError> {
        let i = self.long(what)?;
        if (0..branches).contains(&i) {
            Ok(i)
        } else {
            Err(WireError::Index { what, index: i })
        }
    }

    pub(super) fn double(&mut self, what: &'static str) -> Result<f64, WireError> {
        if self.buf.len() < 8 {
            return Err(WireError::Eof(what));
        }
        let (b, rest) = self.buf.split_at(8);
        self.buf = rest;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// An array in blocks, each item read by `item`.
    pub(super) fn array<T>(
        &mut self,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        let mut v = Vec::new();
        loop {
            let count = self.block_count(what)?;
            if count == 0 {
                return Ok(v);
            }
            for _ in 0..count {
                v.push(item(self)?);
            }
        }
    }

    pub(super) fn map_long(&mut self, what: &'static str) -> Result<BTreeMap<String, i64>, WireError> {
        let pairs = self.array(what, |r| Ok((r.string(what)?, r.long(what)?)))?;
        Ok(pairs.into_iter().collect())
    }

    pub(super) fn severity(&mut self, what: &'static str) -> Result<Severity, WireError> {
        let i = self.long(what)?;
        Severity::ALL
            .get(usize::try_from(i).unwrap_or(usize::MAX))
            .copied()
            .ok_or(WireError::Index { what, index: i })
    }

    pub(super) fn status(&mut self, what: &'static str) -> Result<Status, WireError> {
        match self.long(what)? {
            0 => Ok(Status::Open),
            1 => Ok(Status::Resolved),
            i => Err(WireError::Index { what, index: i }),
        }
    }

    /// The item count of an Avro array or map block. A negative count is followed by
    /// the block's size in bytes (skipped). Every item of kevents' arrays and maps
    /// takes at least one byte, so a count beyond the bytes left is corrupt: refusing
    /// it keeps a poison message from spinning through billions of empty reads (the
    /// avro_decode fuzz target found `-i64::MIN`, which overflows).
    fn block_count(&mut self, what: &'static str) -> Result<u64, WireError> {
        let count = self.long(what)?;
        let count = if count < 0 {
            self.long(what)?;
            count.unsigned_abs()
        } else {
            count as u64
        };
        if count > self.remaining() as u64 {
            return Err(WireError::Length(what));
        }
        Ok(count)
    }

    pub(super) fn map(&mut self, what: &'static str) -> Result<BTreeMap<String, String>, WireError> {
        let mut m = BTreeMap::new();
        self.map_pairs(what, |k, v| {
            m.insert(k.to_owned(), v.to_owned());
        })?;
        Ok(m)
    }

    /// A string map as [`Metadata`], built from the borrowed pairs (no string
    /// per key and value on the way; see `Metadata`'s `FromIterator`).
    pub(super) fn metadata(&mut self, what: &'static str) -> Result<Metadata, WireError> {
        let mut pairs = Vec::new();
        self.map_pairs(what, |k, v| pairs.push((k, v)))?;
        Ok(pairs.into_iter().collect())
    }

    /// Each (key, value) of an Avro string map, in the order written.
    fn map_pairs(&mut self, what: &'static str, mut f: impl FnMut(&'a str, &'a str)) -> Result<(), WireError> {
        loop {
            let count = self.block_count(what)?;
            if count == 0 {
                return Ok(());
            }
            for _ in 0..count {
                let k = self.str(what)?;
                let v = self.str(what)?;
                f(k, v);
            }
        }
    }

    pub(super) fn object_ref(&mut self) -> Result<ObjectRef, WireError> {
        Ok(ObjectRef {
            kind: self.string("ref.kind")?,
            namespace: self.string("ref.namespace")?,
            name: self.string("ref.name")?,
            uid: self.string("ref.uid")?,
            api_version: self.string("ref.api_version")?,
            field_path: self.string("ref.field_path")?,
        })
    }

    pub(super) fn cluster(&mut self) -> Result<ClusterId, WireError> {
        Ok(ClusterId {
            name: self.string("cluster.name")?,
            uid: self.string("cluster.uid")?,
        })
    }

    pub(super) fn collector(&mut self) -> Result<CollectorMeta, WireError> {
        Ok(CollectorMeta {
            instance: self.string("collector.instance")?,
            leader_epoch: self.long("collector.leader_epoch")?,
        })
    }

    pub(super) fn source(&mut self) -> Result<SourcePos, WireError> {
        Ok(SourcePos {
            partition: self.int("source.partition")?,
            offset: self.long("source.offset")?,
            seq: self.int("source.seq")?,
        })
    }

    pub(super) fn watch_kind(&mut self) -> Result<WatchKind, WireError> {
        Ok(match self.long("watch kind")? {
            0 => WatchKind::Added,
            1 => WatchKind::Modified,
            2 => WatchKind::Deleted,
            3 => WatchKind::Relisted,
            i => return Err(WireError::Index { what: "watch kind", index: i }),
        })
    }

    pub(super) fn event(&mut self) -> Result<NormalizedEvent, WireError> {
        Ok(NormalizedEvent {
            uid: self.string("event.uid")?,
            namespace: self.string("event.namespace")?,
            name: self.string("event.name")?,
            resource_version: self.string("event.resource_version")?,
            api_shape: match self.long("event.api_shape")? {
                0 => ApiShape::EventsV1,
                1 => ApiShape::CoreV1,
                i => return Err(WireError::Index { what: "event.api_shape", index: i }),
            },
            event_type: self.string("event.event_type")?,
            reason: self.string("event.reason")?,
            note: self.string("event.note")?,
            action: self.string("event.action")?,
            regarding: self.object_ref()?,
            related: match self.union("event.related", 2)? {
                0 => None,
                _ => Some(self.object_ref()?),
            },
            reporting_controller: self.string("event.reporting_controller")?,
            reporting_instance: self.string("event.reporting_instance")?,
            count: self.long("event.count")?,
            series: self.boolean("event.series")?,
            first_seen_us: self.long("event.first_seen_us")?,
            last_seen_us: self.long("event.last_seen_us")?,
            event_time_us: match self.union("event.event_time_us", 2)? {
                0 => None,
                _ => Some(self.long("event.event_time_us")?),
            },
            created_us: self.long("event.created_us")?,
            labels: self.metadata("event.labels")?,
            annotations: self.metadata("event.annotations")?,
        })
    }
}

