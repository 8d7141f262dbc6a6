//! Avro encode/decode cost of the records every stage handles per event.
//!
//! `cargo bench -p kevents-schemas --bench codec`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kevents_schemas::avro::Codec;
use kevents_schemas::records::{CollectorMeta, ProcessedEvent, RawRecord, SourcePos, WatchEvent, WatchKind};
use kevents_schemas::{ApiShape, ClusterId, NormalizedEvent, ObjectRef, Severity};
use std::collections::BTreeMap;
use std::hint::black_box;

fn event() -> NormalizedEvent {
    NormalizedEvent {
        uid: "5b0c6c1e-3f0e-4c4b-9a59-0d1b7c2e9f11".into(),
        namespace: "shop".into(),
        name: "cart-7d9f8b6c5-x2kqp.1879b1f0a3c2d4e5".into(),
        resource_version: "884990".into(),
        api_shape: ApiShape::EventsV1,
        event_type: "Warning".into(),
        reason: "BackOff".into(),
        note: "Back-off restarting failed container cart in pod cart-7d9f8b6c5-x2kqp_shop(5b0c6c1e-3f0e-4c4b-9a59-0d1b7c2e9f11)".into(),
        action: "".into(),
        regarding: ObjectRef {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "cart-7d9f8b6c5-x2kqp".into(),
            uid: "6c1d7d2f-4a1f-4d5c-8b6a-1e2c8d3fa022".into(),
            api_version: "v1".into(),
            field_path: "spec.containers{cart}".into(),
        },
        related: None,
        reporting_controller: "kubelet".into(),
        reporting_instance: "node-a-1".into(),
        count: 14,
        series: false,
        first_seen_us: 1_763_632_805_000_000,
        last_seen_us: 1_763_633_171_000_000,
        event_time_us: None,
        created_us: 1_763_632_805_000_000,
        labels: Default::default(),
        annotations: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let codec = Codec::default();
    let raw = RawRecord {
        cluster: ClusterId { name: "prod-eu-1".into(), uid: "c0a8f1d2-0000-4000-8000-000000000001".into() },
        collector: CollectorMeta { instance: "collector-0".into(), leader_epoch: 3 },
        observed_us: 1_763_633_171_100_000,
        resource_version: "884990".into(),
        event: Some(WatchEvent { kind: WatchKind::Modified, event: Box::new(event()) }),
        heartbeat: None,
    };
    let processed = ProcessedEvent {
        source: SourcePos { partition: 3, offset: 123_456, seq: 0 },
        id: "0f3c2a9e8b7d6c5b4a39281706f5e4d3".into(),
        cluster: raw.cluster.clone(),
        watch_kind: WatchKind::Modified,
        observed_us: raw.observed_us,
        leader_epoch: 3,
        event: Box::new(event()),
        category: "container-crash".into(),
        severity: Severity::Error,
        rule: "kubelet-backoff-restart".into(),
        correlation_id: "0f3c2a9e8b7d6c5b4a39281706f5e4d3".into(),
        occurrences: 1,
        metadata: BTreeMap::from([("container".into(), "cart".into()), ("node".into(), "node-a-1".into())]).into(),
        labels: Default::default(),
    };
    let raw_bytes = codec.encode(&raw).unwrap();
    let processed_bytes = codec.encode(&processed).unwrap();
    let mut g = c.benchmark_group("avro");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(1024);
    g.bench_function("encode_raw", |b| {
        b.iter(|| {
            buf.clear();
            codec.encode_into(black_box(&raw), &mut buf).unwrap();
        })
    });
    g.bench_function("decode_raw", |b| b.iter(|| codec.decode::<RawRecord>(black_box(&raw_bytes)).unwrap()));
    g.bench_function("encode_processed", |b| {
        b.iter(|| {
            buf.clear();
            codec.encode_into(black_box(&processed), &mut buf).unwrap();
        })
    });
    g.bench_function("decode_processed", |b| {
        b.iter(|| codec.decode::<ProcessedEvent>(black_box(&processed_bytes)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
