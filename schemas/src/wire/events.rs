//! The per-event records: raw record, processed event, cluster heartbeat.

use super::{cluster, collector, event, long, map, pairs, severity, source, string, watch_kind_index, Reader, Wire, WireError};
use crate::records::{ClusterHeartbeat, Heartbeat, ProcessedEvent, RawRecord, WatchEvent};

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
                    event: Box::new(r.event()?),
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
        severity(out, self.severity);
        string(out, &self.rule);
        string(out, &self.correlation_id);
        long(out, self.occurrences);
        pairs(out, self.metadata.iter());
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
            event: Box::new(r.event()?),
            category: r.str("category")?.into(),
            severity: r.severity("severity")?,
            rule: r.str("rule")?.into(),
            correlation_id: r.string("correlation_id")?,
            occurrences: r.long("occurrences")?,
            metadata: r.metadata("metadata")?,
            labels: r.map("labels")?.into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiShape, ClusterId, NormalizedEvent, ObjectRef, Severity};
    use crate::records::{CollectorMeta, SourcePos, WatchKind};
    use std::collections::BTreeMap;
    use crate::avro::{current_schema, AvroRecord};

    fn ev(variant: u8) -> NormalizedEvent {
        NormalizedEvent {
            uid: "u-é-1".into(),
            namespace: "shop".into(),
            name: "cart.17f".into(),
            resource_version: "42".into(),
            api_shape: if variant.is_multiple_of(2) { ApiShape::CoreV1 } else { ApiShape::EventsV1 },
            event_type: "Warning".into(),
            reason: "BackOff".into(),
            note: "x".repeat(300 * variant as usize).into(),
            action: "".into(),
            regarding: ObjectRef { kind: "Pod".into(), name: "cart".into(), ..Default::default() },
            related: (variant % 2 == 1).then(|| ObjectRef { kind: "Node".into(), name: "n1".into(), ..Default::default() }),
            reporting_controller: "kubelet".into(),
            reporting_instance: "n1".into(),
            count: [1, 63, 64, 8191, i64::MAX][variant as usize % 5],
            series: variant.is_multiple_of(3),
            first_seen_us: -1,
            last_seen_us: 1_763_633_171_000_000,
            event_time_us: variant.is_multiple_of(2).then_some(i64::MIN),
            created_us: 0,
            labels: (0..variant).map(|i| (format!("k{i}"), format!("v{i}"))).collect(),
            annotations: Default::default(),
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
        let rec = RawRecord { event: Some(WatchEvent { kind: WatchKind::Deleted, event: Box::new(ev(1)) }), ..Default::default() };
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
                event: Some(WatchEvent { kind: kinds[v as usize % 4], event: Box::new(ev(v)) }),
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
                event: Box::new(ev(v)),
                category: "container-crash".into(),
                severity: Severity::ALL[v as usize % 4],
                rule: "r".into(),
                correlation_id: "corr".into(),
                occurrences: v as i64 - 2,
                metadata: (0..v).map(|i| (format!("m{i}"), "x".into())).collect::<BTreeMap<_, _>>().into(),
                labels: Default::default(),
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
        ProcessedEvent { event: Box::new(ev(3)), ..Default::default() }.write(&mut bytes);
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
