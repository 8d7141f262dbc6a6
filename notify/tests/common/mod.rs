//! Shared by the notifier tests here and the processor's `alerts_notify` (which
//! includes this file): alert versions to write to the alerts topic, a producer
//! for it, notifier settings, and what the local receivers standing in for a
//! webhook and Alertmanager accepted.
#![allow(dead_code)]

use notify::{NotifierConfig, NotifierKind};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use runtime::secret::Secret;
use schemas::avro::Codec;
use schemas::ids::stable_id;
use schemas::model::{ClusterId, Severity};
use schemas::records::{Alert, AlertSource};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::receiver::Received;

/// An idempotent producer for the alerts topic.
pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new().set("bootstrap.servers", bootstrap).set("enable.idempotence", "true").set("linger.ms", "5").create().unwrap()
}

pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// An alert version of incident `n` of cluster `c` (rules alternate).
pub fn alert(c: usize, n: usize, version: i64, firing: bool) -> Alert {
    let rule = if n.is_multiple_of(2) { "incident-error" } else { "node-fanout" };
    let origin_id = format!("inc-{c}-{n}");
    let t = now_us();
    Alert {
        id: stable_id(&["alert", rule, &origin_id]),
        version,
        rule: rule.into(),
        origin: AlertSource::Incident,
        origin_id,
        firing,
        severity: Severity::Error,
        cluster: ClusterId { name: format!("c{c}").into(), uid: format!("uid-{c}").into() },
        namespace: "shop".into(),
        summary: format!("incident {n} of cluster {c}, version {version}"),
        labels: [("cluster", format!("c{c}")), ("namespace", "shop".into()), ("severity", "error".into())].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        starts_us: t - 60_000_000,
        ends_us: if firing { 0 } else { t },
        ..Default::default()
    }
}

/// Write alerts, all in flight, partition = cluster index mod `partitions` (a
/// cluster's alerts stay in order, as the processor writes them).
pub async fn produce(p: &FutureProducer, topic: &str, partitions: usize, alerts: &[Alert]) {
    let codec = Codec::default();
    let recs: Vec<(i32, String, Vec<u8>)> = alerts
        .iter()
        .map(|a| {
            let c: usize = a.cluster.name[1..].parse().unwrap();
            ((c % partitions) as i32, a.cluster.uid.to_string(), codec.encode(a).unwrap())
        })
        .collect();
    let futs: Vec<_> = recs.iter().map(|(part, k, v)| p.send(FutureRecord::to(topic).partition(*part).key(k).payload(v), Duration::from_secs(30))).collect();
    for f in futs {
        f.await.map_err(|(e, _)| e).unwrap();
    }
}

/// (alert id, version, status, repeat) of every alert a webhook receiver accepted.
pub fn webhook_alerts(reqs: &[Received]) -> Vec<(String, i64, String, bool)> {
    reqs.iter()
        .filter(|r| r.accepted())
        .flat_map(|r| r.json["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["version"].as_i64().unwrap(), a["status"].as_str().unwrap().to_string(), a["repeat"].as_bool().unwrap()))
        .collect()
}

/// (alert id, version, resolved) of every alert an Alertmanager receiver
/// accepted. Resolved = has `endsAt`, which holds with `repeat_interval_secs: 0`
/// (otherwise firing alerts carry a future `endsAt` too).
pub fn am_alerts(reqs: &[Received]) -> Vec<(String, i64, bool)> {
    reqs.iter()
        .filter(|r| r.accepted())
        .inspect(|r| assert_eq!(r.path, "/api/v2/alerts"))
        .flat_map(|r| r.json.as_array().cloned().unwrap_or_default())
        .map(|a| {
            let resolved = a.get("endsAt").is_some();
            (a["labels"]["kevents_id"].as_str().unwrap().to_string(), a["annotations"]["kevents_version"].as_str().unwrap().parse().unwrap(), resolved)
        })
        .collect()
}

pub fn count<K: Ord + Clone>(keys: impl IntoIterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// A notifier of `kind` posting to `url`, with a Grafana link.
pub fn notifier(name: &str, kind: NotifierKind, url: String) -> NotifierConfig {
    NotifierConfig { name: name.into(), kind, url: Some(Secret::new(url)), url_file: None, headers: Default::default(), link_template: Some("https://grafana.example/d/incidents?var-id={{origin_id}}".into()), timeout_secs: 10 }
}
