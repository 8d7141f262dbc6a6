//! Shared by the export tests here and `cli/tests/export_kill9.rs` (which includes
//! this file): processed events and incident versions to write to the result
//! topics, a producer, and the ids the exporter must deliver for them.
#![allow(dead_code)]

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schemas::avro::Codec;
use schemas::model::{ClusterId, NormalizedEvent, ObjectRef, Severity};
use schemas::records::{Incident, ProcessedEvent, RootCause, Status};

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new().set("bootstrap.servers", bootstrap).set("enable.idempotence", "true").set("linger.ms", "5").create().unwrap()
}

pub fn cluster() -> ClusterId {
    ClusterId { name: "prod-eu".into(), uid: "uid-prod-eu".into() }
}

/// Event version `n`: a BackOff of pod `api-<n % 7>`; every third stands alone,
/// the others belong to incident `inc-<n % 2>`.
pub fn event(n: usize) -> ProcessedEvent {
    let id = format!("ev-{n:06}");
    let incident = if n.is_multiple_of(3) { id.clone() } else { format!("inc-{}", n % 2) };
    let t = 1_765_000_000_000_000 + n as i64 * 1_000_000;
    ProcessedEvent {
        id,
        cluster: cluster(),
        observed_us: t + 500_000,
        event: Box::new(NormalizedEvent {
            uid: format!("uid-{n}").into(),
            namespace: "shop".into(),
            name: format!("api-{}.{n:x}", n % 7).into(),
            event_type: "Warning".into(),
            reason: "BackOff".into(),
            note: format!("Back-off restarting failed container api in pod api-{} ({n})", n % 7).into(),
            regarding: ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: format!("api-{}", n % 7).into(), uid: format!("pod-uid-{}", n % 7).into(), api_version: "v1".into(), ..Default::default() },
            count: 1,
            first_seen_us: t,
            last_seen_us: t,
            created_us: t,
            ..Default::default()
        }),
        category: "crashloop".into(),
        severity: if n.is_multiple_of(5) { Severity::Critical } else { Severity::Error },
        rule: "crashloop-backoff".into(),
        correlation_id: incident,
        occurrences: 1,
        ..Default::default()
    }
}

/// Version `version` of incident `inc-<k>`.
pub fn incident(k: usize, version: i64, status: Status) -> Incident {
    Incident {
        id: format!("inc-{k}"),
        version,
        cluster: cluster(),
        status,
        severity: Severity::Error,
        root_cause: RootCause { event_id: "ev-000001".into(), reason: "BackOff".into(), category: "crashloop".into(), object: ObjectRef { kind: "Deployment".into(), namespace: "shop".into(), name: "api".into(), ..Default::default() }, note: "crash".into(), ..Default::default() },
        rule: "owner-rollup".into(),
        event_count: 10 * version,
        occurrences: 10 * version,
        first_seen_us: 1_765_000_000_000_000,
        last_seen_us: 1_765_000_000_000_000 + version * 60_000_000,
        summary: format!("api crash-looping (incident {k}, version {version})"),
        ..Default::default()
    }
}

/// The `log.record.uid` of incident `inc-<k>` version `v` (logs::incident_uid).
pub fn incident_uid(k: usize, v: i64) -> String {
    format!("inc-{k}.v{v}")
}

/// Write records round-robin over `partitions`, all enqueued at once
/// (`send_result` queues without waiting), then wait for every acknowledgement.
pub async fn produce<T: schemas::avro::AvroRecord>(p: &FutureProducer, topic: &str, partitions: i32, records: &[T]) {
    let codec = Codec::default();
    let payloads: Vec<Vec<u8>> = records.iter().map(|r| codec.encode(r).unwrap()).collect();
    let mut acks = Vec::with_capacity(payloads.len());
    for (i, v) in payloads.iter().enumerate() {
        let rec = FutureRecord::<(), _>::to(topic).partition(i as i32 % partitions).payload(v);
        acks.push(p.send_result(rec).map_err(|(e, _)| e).expect("the producer queue takes the record"));
    }
    for a in acks {
        a.await.expect("not cancelled").map_err(|(e, _)| e).unwrap();
    }
}

/// How many times each id was received, and the report a test prints: how
/// many expected ids arrived, which are missing, which arrived more than once,
/// and any id nobody expected.
pub struct Tally {
    pub distinct: usize,
    pub missing: Vec<String>,
    pub duplicated: Vec<(String, usize)>,
    pub unexpected: Vec<String>,
    pub total: usize,
}

pub fn tally<'a>(expected: &[String], received: impl IntoIterator<Item = &'a str>) -> Tally {
    let mut seen: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let mut total = 0;
    for id in received {
        *seen.entry(id).or_default() += 1;
        total += 1;
    }
    let want: std::collections::BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    Tally {
        distinct: seen.len(),
        missing: expected.iter().filter(|id| !seen.contains_key(id.as_str())).cloned().collect(),
        duplicated: seen.iter().filter(|(_, n)| **n > 1).map(|(id, n)| (id.to_string(), *n)).collect(),
        unexpected: seen.keys().filter(|id| !want.contains(*id)).map(|s| s.to_string()).collect(),
        total,
    }
}
