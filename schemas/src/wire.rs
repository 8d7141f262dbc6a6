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
//! The field order below must follow the `.avsc` files; `tests` check that these
//! bytes equal apache-avro's for the same record, so a schema change that is not
//! mirrored here fails the tests instead of corrupting data.

use std::collections::BTreeMap;

use crate::model::{ApiShape, ClusterId, NormalizedEvent, ObjectRef, Severity};
use crate::records::{
    ClusterHeartbeat, CollectorMeta, Heartbeat, ProcessedEvent, RawRecord, SourcePos, WatchEvent, WatchKind,
};

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
    #[error("negative length in {0}")]
    Length(&'static str),
}

// ---- writing -------------------------------------------------------------

fn long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.push(b as u8);
}

fn map(out: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    if !m.is_empty() {
        long(out, m.len() as i64);
        for (k, v) in m {
            string(out, k);
            string(out, v);
        }
    }
    long(out, 0);
}

fn object_ref(out: &mut Vec<u8>, r: &ObjectRef) {
    string(out, &r.kind);
    string(out, &r.namespace);
    string(out, &r.name);
    string(out, &r.uid);
    string(out, &r.api_version);
    string(out, &r.field_path);
}

fn cluster(out: &mut Vec<u8>, c: &ClusterId) {
    string(out, &c.name);
    string(out, &c.uid);
}

fn collector(out: &mut Vec<u8>, c: &CollectorMeta) {
    string(out, &c.instance);
    long(out, c.leader_epoch);
}

fn source(out: &mut Vec<u8>, s: &SourcePos) {
    long(out, s.partition as i64);
    long(out, s.offset);
    long(out, s.seq as i64);
}

fn watch_kind_index(k: WatchKind) -> i64 {
    match k {
        WatchKind::Added => 0,
        WatchKind::Modified => 1,
        WatchKind::Deleted => 2,
        WatchKind::Relisted => 3,
    }
}

fn event(out: &mut Vec<u8>, e: &NormalizedEvent) {
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
    map(out, &e.labels);
    map(out, &e.annotations);
}

/// A record with a hand-written encoding of its current schema.
pub trait Wire: Sized {
    fn write(&self, out: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

impl Wire for RawRecord {
    fn write(&self, out: &mut Vec<u8>) {
        cluster(out, &self.cluster);
        collector(out, &self.collector);
        long(out, self.observed_us);
        string(out, &self.resource_version);
        match &self.event {
            None => long(out, 0),
            Some(w) => {
                long(out, 1);
                long(out, watch_kind_index(w.kind));
                event(out, &w.event);
            }
        }
        match &self.heartbeat {
            None => long(out, 0),
            Some(h) => {
                long(out, 1);
                string(out, &h.scope);
                string(out, &h.resource_version);
                long(out, h.last_bookmark_us);
                long(out, h.published_since_last);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(RawRecord {
            cluster: r.cluster()?,
            collector: r.collector()?,
            observed_us: r.long("observed_us")?,
            resource_version: r.string("resource_version")?,
            event: match r.union("event", 2)? {
                0 => None,
                _ => Some(WatchEvent {
                    kind: r.watch_kind()?,
                    event: r.event()?,
                }),
            },
            heartbeat: match r.union("heartbeat", 2)? {
                0 => None,
                _ => Some(Heartbeat {
                    scope: r.string("heartbeat.scope")?,
                    resource_version: r.string("heartbeat.resource_version")?,
                    last_bookmark_us: r.long("heartbeat.last_bookmark_us")?,
                    published_since_last: r.long("heartbeat.published_since_last")?,
                }),
            },
        })
    }
}

impl Wire for ProcessedEvent {
    fn write(&self, out: &mut Vec<u8>) {
        source(out, &self.source);
        string(out, &self.id);
        cluster(out, &self.cluster);
        long(out, watch_kind_index(self.watch_kind));
        long(out, self.observed_us);
        long(out, self.leader_epoch);
        event(out, &self.event);
        string(out, &self.category);
        long(out, self.severity as i64);
        string(out, &self.rule);
        string(out, &self.correlation_id);
        long(out, self.occurrences);
        map(out, &self.metadata);
        map(out, &self.labels);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(ProcessedEvent {
            source: r.source()?,
            id: r.string("id")?,
            cluster: r.cluster()?,
            watch_kind: r.watch_kind()?,
            observed_us: r.long("observed_us")?,
            leader_epoch: r.long("leader_epoch")?,
            event: r.event()?,
            category: r.string("category")?,
            severity: {
                let i = r.long("severity")?;
                *Severity::ALL
                    .get(usize::try_from(i).unwrap_or(usize::MAX))
                    .ok_or(WireError::Index { what: "severity", index: i })?
            },
            rule: r.string("rule")?,
            correlation_id: r.string("correlation_id")?,
            occurrences: r.long("occurrences")?,
            metadata: r.map("metadata")?,
            labels: r.map("labels")?,
        })
    }
}

impl Wire for ClusterHeartbeat {
    fn write(&self, out: &mut Vec<u8>) {
        source(out, &self.source);
        cluster(out, &self.cluster);
        collector(out, &self.collector);
        long(out, self.observed_us);
        string(out, &self.resource_version);
        long(out, self.last_bookmark_us);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(ClusterHeartbeat {
            source: r.source()?,
            cluster: r.cluster()?,
            collector: r.collector()?,
            observed_us: r.long("observed_us")?,
            resource_version: r.string("resource_version")?,
            last_bookmark_us: r.long("last_bookmark_us")?,
        })
    }
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

    fn long(&mut self, what: &'static str) -> Result<i64, WireError> {
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

    fn int(&mut self, what: &'static str) -> Result<i32, WireError> {
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

    fn string(&mut self, what: &'static str) -> Result<String, WireError> {
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| WireError::Utf8(what))
    }

    fn boolean(&mut self, what: &'static str) -> Result<bool, WireError> {
        let (&b, rest) = self.buf.split_first().ok_or(WireError::Eof(what))?;
        self.buf = rest;
        match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Index { what, index: b as i64 }),
        }
    }

    fn union(&mut self, what: &'static str, branches: i64) -> Result<i64, WireError> {
        let i = self.long(what)?;
        if (0..branches).contains(&i) {
            Ok(i)
        } else {
            Err(WireError::Index { what, index: i })
        }
    }

    fn map(&mut self, what: &'static str) -> Result<BTreeMap<String, String>, WireError> {
        let mut m = BTreeMap::new();
        loop {
            let mut count = self.long(what)?;
            if count == 0 {
                return Ok(m);
            }
            if count < 0 {
                // A negative count is followed by the block's size in bytes.
                count = -count;
                self.long(what)?;
            }
            for _ in 0..count {
                let k = self.string(what)?;
                let v = self.string(what)?;
                m.insert(k, v);
            }
        }
    }

    fn object_ref(&mut self) -> Result<ObjectRef, WireError> {
        Ok(ObjectRef {
            kind: self.string("ref.kind")?,
            namespace: self.string("ref.namespace")?,
            name: self.string("ref.name")?,
            uid: self.string("ref.uid")?,
            api_version: self.string("ref.api_version")?,
            field_path: self.string("ref.field_path")?,
        })
    }

    fn cluster(&mut self) -> Result<ClusterId, WireError> {
        Ok(ClusterId {
            name: self.string("cluster.name")?,
            uid: self.string("cluster.uid")?,
        })
    }

    fn collector(&mut self) -> Result<CollectorMeta, WireError> {
        Ok(CollectorMeta {
            instance: self.string("collector.instance")?,
            leader_epoch: self.long("collector.leader_epoch")?,
        })
    }

    fn source(&mut self) -> Result<SourcePos, WireError> {
        Ok(SourcePos {
            partition: self.int("source.partition")?,
            offset: self.long("source.offset")?,
            seq: self.int("source.seq")?,
        })
    }

    fn watch_kind(&mut self) -> Result<WatchKind, WireError> {
        Ok(match self.long("watch kind")? {
            0 => WatchKind::Added,
            1 => WatchKind::Modified,
            2 => WatchKind::Deleted,
            3 => WatchKind::Relisted,
            i => return Err(WireError::Index { what: "watch kind", index: i }),
        })
    }

    fn event(&mut self) -> Result<NormalizedEvent, WireError> {
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
            labels: self.map("event.labels")?,
            annotations: self.map("event.annotations")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{current_schema, AvroRecord};

    fn ev(variant: u8) -> NormalizedEvent {
        NormalizedEvent {
            uid: "u-é-1".into(),
            namespace: "shop".into(),
            name: "cart.17f".into(),
            resource_version: "42".into(),
            api_shape: if variant % 2 == 0 { ApiShape::CoreV1 } else { ApiShape::EventsV1 },
            event_type: "Warning".into(),
            reason: "BackOff".into(),
            note: "x".repeat(300 * variant as usize),
            action: "".into(),
            regarding: ObjectRef { kind: "Pod".into(), name: "cart".into(), ..Default::default() },
            related: (variant % 2 == 1).then(|| ObjectRef { kind: "Node".into(), name: "n1".into(), ..Default::default() }),
            reporting_controller: "kubelet".into(),
            reporting_instance: "n1".into(),
            count: [1, 63, 64, 8191, i64::MAX][variant as usize % 5],
            series: variant % 3 == 0,
            first_seen_us: -1,
            last_seen_us: 1_763_633_171_000_000,
            event_time_us: (variant % 2 == 0).then_some(i64::MIN),
            created_us: 0,
            labels: (0..variant).map(|i| (format!("k{i}"), format!("v{i}"))).collect(),
            annotations: BTreeMap::new(),
        }
    }

    /// apache-avro's encoding of `rec` (the reference).
    fn reference<T: AvroRecord>(rec: &T) -> Vec<u8> {
        let v = apache_avro::to_value(rec).unwrap();
        apache_avro::to_avro_datum(current_schema(T::TYPE), v).unwrap()
    }

    /// Our bytes read back by apache-avro, apache-avro's bytes read by us, both
    /// equal to `rec`; the byte strings differ at most in the order of map entries
    /// (apache-avro writes its maps in hash order), so their lengths are equal.
    fn same<T: AvroRecord + Wire + PartialEq + std::fmt::Debug>(rec: T) {
        let mut ours = Vec::new();
        rec.write(&mut ours);
        let theirs = reference(&rec);
        assert_eq!(ours.len(), theirs.len(), "encodings differ for {rec:?}");
        let schema = current_schema(T::TYPE);
        let v = apache_avro::from_avro_datum(schema, &mut &ours[..], None).unwrap();
        assert_eq!(apache_avro::from_value::<T>(&v).unwrap(), rec, "apache-avro reads our bytes");
        let mut r = Reader::new(&theirs);
        assert_eq!(T::read(&mut r).unwrap(), rec, "we read apache-avro's bytes");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn without_maps_the_bytes_are_identical() {
        let rec = RawRecord { event: Some(WatchEvent { kind: WatchKind::Deleted, event: ev(1) }), ..Default::default() };
        let mut ours = Vec::new();
        rec.write(&mut ours);
        assert_eq!(ours, reference(&rec));
    }

    #[test]
    fn raw_records_encode_exactly_like_apache_avro() {
        for v in 0..5u8 {
            let kinds = [WatchKind::Added, WatchKind::Modified, WatchKind::Deleted, WatchKind::Relisted];
            same(RawRecord {
                cluster: ClusterId { name: "c".into(), uid: "cu".into() },
                collector: CollectorMeta { instance: "col".into(), leader_epoch: v as i64 },
                observed_us: 5,
                resource_version: "42".into(),
                event: Some(WatchEvent { kind: kinds[v as usize % 4], event: ev(v) }),
                heartbeat: None,
            });
        }
        same(RawRecord {
            heartbeat: Some(Heartbeat { scope: "ns".into(), resource_version: "9".into(), last_bookmark_us: 3, published_since_last: 77 }),
            ..Default::default()
        });
    }

    #[test]
    fn processed_events_and_heartbeats_encode_exactly_like_apache_avro() {
        for v in 0..5u8 {
            same(ProcessedEvent {
                source: SourcePos { partition: v as i32, offset: 1 << (10 * v), seq: -(v as i32) },
                id: "id".into(),
                cluster: ClusterId { name: "c".into(), uid: "cu".into() },
                watch_kind: WatchKind::Modified,
                observed_us: 1,
                leader_epoch: 2,
                event: ev(v),
                category: "container-crash".into(),
                severity: Severity::ALL[v as usize % 4],
                rule: "r".into(),
                correlation_id: "corr".into(),
                occurrences: v as i64 - 2,
                metadata: (0..v).map(|i| (format!("m{i}"), "x".into())).collect(),
                labels: BTreeMap::new(),
            });
        }
        same(ClusterHeartbeat {
            source: SourcePos::default(),
            cluster: ClusterId { name: "c".into(), uid: "u".into() },
            collector: CollectorMeta { instance: "i".into(), leader_epoch: 7 },
            observed_us: 1,
            resource_version: "77".into(),
            last_bookmark_us: -5,
        });
    }

    #[test]
    fn truncated_and_corrupt_data_are_errors_not_panics() {
        let mut bytes = Vec::new();
        ProcessedEvent { event: ev(3), ..Default::default() }.write(&mut bytes);
        for cut in 0..bytes.len() {
            assert!(ProcessedEvent::read(&mut Reader::new(&bytes[..cut])).is_err(), "cut at {cut}");
        }
        assert!(RawRecord::read(&mut Reader::new(&[0xff; 12])).is_err());
        assert_eq!(
            RawRecord::read(&mut Reader::new(&[0, 0, 0, 0, 0, 0, 7])),
            Err(WireError::Index { what: "event", index: -4 })
        );
    }
}
