//! Every schema round-trips its Rust type, the Rust types match the `.avsc` files,
//! and data written with every schema kept in `schemas/avro/history/` is readable by
//! today's reader (Avro schema resolution, driven by the id in the Confluent frame).

use apache_avro::{to_avro_datum, types::Value, Schema};
use kevents_schemas::avro::{builtin_id, history, split_frame, Codec, CodecError, RecordType};
use kevents_schemas::records::*;
use kevents_schemas::{ApiShape, ClusterId, NormalizedEvent, ObjectRef, Severity};
use std::collections::BTreeMap;

fn event() -> NormalizedEvent {
    NormalizedEvent {
        uid: "u-1".into(),
        namespace: "shop".into(),
        name: "cart.17f".into(),
        resource_version: "42".into(),
        api_shape: ApiShape::CoreV1,
        event_type: "Warning".into(),
        reason: "BackOff".into(),
        note: "Back-off restarting failed container cart".into(),
        action: "".into(),
        regarding: ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: "cart".into(), uid: "p-1".into(), api_version: "v1".into(), field_path: "spec.containers{cart}".into() },
        related: Some(ObjectRef { kind: "Node".into(), name: "n1".into(), ..Default::default() }),
        reporting_controller: "kubelet".into(),
        reporting_instance: "n1".into(),
        count: 3,
        series: false,
        first_seen_us: 1,
        last_seen_us: 2,
        event_time_us: Some(5),
        created_us: 1,
        labels: BTreeMap::from([("a".into(), "b".into())]).into(),
        annotations: Default::default(),
    }
}

fn cluster() -> ClusterId {
    ClusterId { name: "prod-eu".into(), uid: "c-uid".into() }
}

fn pos() -> SourcePos {
    SourcePos { partition: 2, offset: 99, seq: 1 }
}

fn roundtrip<T: kevents_schemas::avro::AvroRecord + PartialEq + std::fmt::Debug>(rec: T) {
    let codec = Codec::default();
    let bytes = codec.encode(&rec).unwrap();
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let (id, _) = split_frame(&bytes).unwrap();
    assert_eq!(id, builtin_id(T::TYPE, T::TYPE.current_version()));
    let back: T = codec.decode(&bytes).unwrap();
    assert_eq!(back, rec);
}

#[test]
fn raw_record_event_and_heartbeat_round_trip() {
    for kind in [WatchKind::Added, WatchKind::Modified, WatchKind::Deleted, WatchKind::Relisted] {
        roundtrip(RawRecord {
            cluster: cluster(),
            collector: CollectorMeta { instance: "col-0".into(), leader_epoch: 3 },
            observed_us: 10,
            resource_version: "42".into(),
            event: Some(WatchEvent { kind, event: Box::new(event()) }),
            heartbeat: None,
        });
    }
    roundtrip(RawRecord {
        cluster: cluster(),
        collector: CollectorMeta { instance: "col-0".into(), leader_epoch: 3 },
        observed_us: 10,
        resource_version: "43".into(),
        event: None,
        heartbeat: Some(Heartbeat { scope: "".into(), resource_version: "43".into(), last_bookmark_us: 9, published_since_last: 7 }),
    });
}

#[test]
fn processed_event_round_trips() {
    for severity in Severity::ALL {
        roundtrip(ProcessedEvent {
            source: pos(),
            id: "id".into(),
            cluster: cluster(),
            watch_kind: WatchKind::Modified,
            observed_us: 1,
            leader_epoch: 2,
            event: Box::new(event()),
            category: "container-crash".into(),
            severity,
            rule: "kubelet-backoff-restart".into(),
            correlation_id: "inc-1".into(),
            occurrences: 2,
            metadata: BTreeMap::from([("container".into(), "cart".into())]).into(),
            labels: Default::default(),
        });
    }
}

#[test]
fn incident_pattern_alert_heartbeat_round_trip() {
    roundtrip(Incident {
        source: pos(),
        id: "inc".into(),
        version: 4,
        cluster: cluster(),
        status: Status::Resolved,
        severity: Severity::Error,
        root_cause: RootCause { event_id: "e".into(), event_uid: "u".into(), reason: "FailedMount".into(), category: "volume".into(), object: event().regarding, note: "timed out".into() },
        rule: "mount-then-backoff".into(),
        affected_objects: vec![event().regarding, ObjectRef { kind: "Deployment".into(), ..Default::default() }],
        reason_counts: BTreeMap::from([("BackOff".into(), 14)]),
        event_count: 15,
        occurrences: 40,
        first_seen_us: 1,
        last_seen_us: 2,
        summary: "FailedMount on pod shop/cart caused 14 back-offs over 6 min".into(),
    });
    roundtrip(Pattern {
        source: pos(),
        id: "p".into(),
        version: 1,
        scope: PatternScope::Fleet,
        cluster: ClusterId::default(),
        clusters: vec!["a".into(), "b".into()],
        key: "BackOff|Pod|shop|Back-off restarting failed container <*>".into(),
        reason: "BackOff".into(),
        kind: "Pod".into(),
        namespace: "shop".into(),
        template: "Back-off restarting failed container <*>".into(),
        status: Status::Open,
        count: 12,
        first_seen_us: 1,
        last_seen_us: 2,
        per_minute: 1.5,
        samples: vec!["e1".into()],
        previous_episodes: vec![100, 200],
        anomaly_score: 4.2,
    });
    for origin in [AlertSource::Incident, AlertSource::Pattern, AlertSource::Anomaly] {
        roundtrip(Alert {
            source: pos(),
            id: "a".into(),
            version: 2,
            rule: "critical-incidents".into(),
            origin,
            origin_id: "inc".into(),
            firing: false,
            severity: Severity::Critical,
            cluster: cluster(),
            namespace: "shop".into(),
            summary: "s".into(),
            labels: BTreeMap::from([("team".into(), "payments".into())]),
            starts_us: 1,
            ends_us: 2,
        });
    }
    roundtrip(ClusterHeartbeat {
        source: pos(),
        cluster: cluster(),
        collector: CollectorMeta { instance: "c".into(), leader_epoch: 1 },
        observed_us: 5,
        resource_version: "77".into(),
        last_bookmark_us: 4,
    });
}

#[test]
fn avsc_files_match_the_checked_in_text() {
    // The files are the published contract; the built-in table must parse them all.
    for ty in RecordType::ALL {
        let s = Schema::parse_str(ty.schema_text()).unwrap();
        assert!(matches!(s, Schema::Record(_)), "{}", ty.name());
    }
}

/// Build a value of the writer schema by hand, with only the fields it has.
fn old_raw_record_value(schema: &Schema) -> Value {
    // Take a current record, encode it with the current schema, then re-shape:
    // simplest honest way is to build the v1 value directly.
    let _ = schema;
    let objref = |kind: &str| {
        Value::Record(vec![
            ("kind".into(), Value::String(kind.into())),
            ("namespace".into(), Value::String("shop".into())),
            ("name".into(), Value::String("cart".into())),
            ("uid".into(), Value::String("p-1".into())),
            ("api_version".into(), Value::String("v1".into())),
            ("field_path".into(), Value::String("".into())),
        ])
    };
    let ev = Value::Record(vec![
        ("uid".into(), Value::String("u-1".into())),
        ("namespace".into(), Value::String("shop".into())),
        ("name".into(), Value::String("cart.1".into())),
        ("resource_version".into(), Value::String("7".into())),
        ("event_type".into(), Value::String("Warning".into())),
        ("reason".into(), Value::String("BackOff".into())),
        ("note".into(), Value::String("n".into())),
        ("action".into(), Value::String("".into())),
        ("regarding".into(), objref("Pod")),
        ("related".into(), Value::Union(0, Box::new(Value::Null))),
        ("reporting_controller".into(), Value::String("kubelet".into())),
        ("reporting_instance".into(), Value::String("n1".into())),
        ("count".into(), Value::Long(2)),
        ("series".into(), Value::Boolean(false)),
        ("first_seen_us".into(), Value::Long(1)),
        ("last_seen_us".into(), Value::Long(2)),
        ("event_time_us".into(), Value::Union(0, Box::new(Value::Null))),
        ("created_us".into(), Value::Long(1)),
        ("labels".into(), Value::Map(Default::default())),
        ("annotations".into(), Value::Map(Default::default())),
    ]);
    Value::Record(vec![
        ("cluster".into(), Value::Record(vec![("name".into(), Value::String("c".into())), ("uid".into(), Value::String("cu".into()))])),
        ("collector".into(), Value::Record(vec![("instance".into(), Value::String("col".into()))])),
        ("observed_us".into(), Value::Long(3)),
        ("resource_version".into(), Value::String("7".into())),
        (
            "event".into(),
            Value::Union(1, Box::new(Value::Record(vec![("kind".into(), Value::Enum(1, "Modified".into())), ("event".into(), ev)]))),
        ),
        ("heartbeat".into(), Value::Union(0, Box::new(Value::Null))),
    ])
}

#[test]
fn every_history_version_is_readable_by_the_current_reader() {
    let codec = Codec::default();
    let mut checked = 0;
    for (ty, version, text) in history() {
        let writer = Schema::parse_str(text).unwrap();
        let id = builtin_id(*ty, *version);
        match ty {
            RecordType::Raw => {
                let datum = to_avro_datum(&writer, old_raw_record_value(&writer)).unwrap();
                let mut framed = vec![0];
                framed.extend_from_slice(&id.to_be_bytes());
                framed.extend_from_slice(&datum);
                let rec: RawRecord = codec.decode(&framed).unwrap();
                // Fields added since v1 take their defaults.
                assert_eq!(rec.collector.leader_epoch, 0);
                assert_eq!(rec.collector.instance, "col");
                let ev = rec.event.unwrap();
                assert_eq!(ev.kind, WatchKind::Modified);
                assert_eq!(ev.event.api_shape, ApiShape::EventsV1);
                assert_eq!(ev.event.count, 2);
                checked += 1;
            }
            RecordType::Processed => {
                // Write a current record with the old schema: resolution drops the
                // fields v1 lacks when writing, the reader restores their defaults.
                let cur = ProcessedEvent { source: pos(), id: "x".into(), cluster: cluster(), event: Box::new(event()), category: "c".into(), severity: Severity::Error, rule: "r".into(), leader_epoch: 4, ..Default::default() };
                let mut v = apache_avro::to_value(&cur).unwrap();
                if let Value::Record(fields) = &mut v {
                    fields.retain(|(n, _)| !["source", "leader_epoch", "rule"].contains(&n.as_str()));
                    for (n, f) in fields.iter_mut() {
                        if n == "event" {
                            if let Value::Record(ef) = f {
                                ef.retain(|(n, _)| n != "api_shape");
                            }
                        }
                    }
                }
                let datum = to_avro_datum(&writer, v).unwrap();
                let mut framed = vec![0];
                framed.extend_from_slice(&id.to_be_bytes());
                framed.extend_from_slice(&datum);
                let rec: ProcessedEvent = codec.decode(&framed).unwrap();
                assert_eq!(rec.id, "x");
                assert_eq!(rec.severity, Severity::Error);
                assert_eq!(rec.source, SourcePos::default());
                assert_eq!(&*rec.rule, "");
                assert_eq!(rec.leader_epoch, 0);
                assert_eq!(rec.event.reason, "BackOff");
                checked += 1;
            }
            other => panic!("history entry for {other:?} has no reader test: add one"),
        }
    }
    assert_eq!(checked, history().len());
}

#[test]
fn bad_frames_are_typed_errors() {
    let codec = Codec::default();
    assert!(matches!(codec.decode::<RawRecord>(&[0, 0]), Err(CodecError::TooShort(2))));
    assert!(matches!(codec.decode::<RawRecord>(&[1, 0, 0, 0, 0]), Err(CodecError::BadMagic(1))));
    assert!(matches!(codec.decode::<RawRecord>(&[0, 0, 0, 0, 7, 1]), Err(CodecError::UnknownSchemaId(7))));
    let alert = codec.encode(&Alert::default()).unwrap();
    assert!(matches!(codec.decode::<RawRecord>(&alert), Err(CodecError::WrongType { .. })));
    let mut truncated = codec.encode(&ProcessedEvent { event: Box::new(event()), ..Default::default() }).unwrap();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(codec.decode::<ProcessedEvent>(&truncated), Err(CodecError::Avro(_))));
}
