//! Alert notifications from processor members, against the real local broker
//! and local HTTP receivers standing in for a webhook and Alertmanager (the
//! notifier set alone is tested in `notify/tests/notifiers.rs`).
//!
//! - `each_alert_once_at_each_receiver_across_kill_9`: two processor processes
//!   notify a webhook and an Alertmanager receiver; one is killed with SIGKILL
//!   (no drain, no commit) after it delivered alerts whose offsets it had not
//!   committed yet. The survivor takes its partitions over, reads the
//!   sent-markers, and skips what was delivered: every alert version (firing and
//!   resolved) arrives exactly once at each receiver.

mod common;
/// The notifier tests' alert helpers (alerts, receivers' views, notifier settings).
#[path = "../../notify/tests/common/mod.rs"]
mod alerts;

use alerts::{alert, am_alerts, count, notifier, produce, webhook_alerts};
use common::member::{metric, Member, Members};
use common::{config, producer};
use kevents_processor::alerts::AlertsConfig;
use notify::{NotifierKind, NotifyConfig};
use schemas::records::Alert;
use std::collections::BTreeSet;
use std::time::Duration;
use testkit::receiver::Receiver;
use testkit::services::{read_topic, Services};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_alert_once_at_each_receiver_across_kill_9() {
    let s = Services::get();
    let topics = s
        .create_topics("alerts-once", &[("raw", 2), ("processed", 1), ("heartbeats", 1), ("dlq", 1), ("incidents", 1), ("patterns", 1), ("alerts", 4), ("sent", 2)])
        .await;
    let hook = Receiver::start().await.unwrap();
    let am = Receiver::start().await.unwrap();
    let mut cfg = config(&topics, &format!("g-{}", topics.name("raw")));
    cfg.topics.incidents = topics.name("incidents").into();
    cfg.topics.patterns = topics.name("patterns").into();
    cfg.topics.alerts = topics.name("alerts").into();
    cfg.alerts = AlertsConfig {
        notify: NotifyConfig {
            notifiers: vec![notifier("hook", NotifierKind::Webhook, format!("{}/hook", hook.url())), notifier("am", NotifierKind::Alertmanager, am.url())],
            group_wait_secs: 1,
            repeat_interval_secs: 0,
            // Nothing is committed by the timer during the test: the killed member's
            // deliveries are all uncommitted, so the survivor must skip them by marker.
            commit_interval_secs: 600,
            sent_topic: topics.name("sent").into(),
            group_id: format!("n-{}", topics.name("alerts")),
            ..Default::default()
        },
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("processor.yaml");
    std::fs::write(&cfg_path, serde_norway::to_string(&cfg).unwrap()).unwrap();
    let mut members = Members((0..2).map(|_| Member::spawn(&cfg_path, None)).collect());
    // Let both join both notifier groups before anything is read.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let p = producer(topics.bootstrap());
    let alerts_topic = topics.name("alerts");
    let (clusters, per) = (8usize, 8usize);
    let mut expected: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut resolves = 0;
    let mut note = |batch: &[Alert], expected: &mut BTreeSet<(String, i64)>| {
        for a in batch {
            expected.insert((a.id.clone(), a.version));
            resolves += usize::from(!a.firing);
        }
    };
    let batch1: Vec<Alert> = (0..clusters).flat_map(|c| (0..per).map(move |n| alert(c, n, 1, true))).collect();
    note(&batch1, &mut expected);
    produce(&p, alerts_topic, 4, &batch1).await;
    let n1 = expected.len();
    assert!(hook.wait_until(Duration::from_secs(60), |r| webhook_alerts(r).len() >= n1).await, "webhook got batch 1");
    assert!(am.wait_until(Duration::from_secs(60), |r| am_alerts(r).len() >= n1).await, "alertmanager got batch 1");
    // Every delivery of batch 1 is recorded (markers acknowledged): kill now.
    let bootstrap = topics.bootstrap().to_string();
    let sent_topic = topics.name("sent").to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read_topic(&bootstrap, &sent_topic).unwrap().len() < 2 * n1 {
        assert!(std::time::Instant::now() < deadline, "markers of batch 1 not written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    members.0[0].child.kill().unwrap();
    members.0[0].child.wait().unwrap();

    // Mid-stream: resolves, re-fires and new alerts while the dead member's
    // partitions wait for the session timeout to move.
    let mut batch2 = Vec::new();
    for c in 0..clusters {
        for n in 0..per {
            if n.is_multiple_of(2) {
                batch2.push(alert(c, n, 2, false));
            }
            if n.is_multiple_of(4) {
                batch2.push(alert(c, n, 3, true));
            }
        }
        batch2.extend((per..per + 2).map(|n| alert(c, n, 1, true)));
    }
    note(&batch2, &mut expected);
    produce(&p, alerts_topic, 4, &batch2).await;
    // Processor-style re-deliveries of records already notified, then the last resolves.
    let dupes: Vec<Alert> = batch1.iter().step_by(5).chain(batch2.iter().step_by(7)).cloned().collect();
    let batch3: Vec<Alert> = (0..clusters).flat_map(|c| (0..per).filter(|n| n.is_multiple_of(4)).map(move |n| alert(c, n, 4, false))).collect();
    note(&batch3, &mut expected);
    let mut tail = dupes.clone();
    tail.extend(batch3);
    produce(&p, alerts_topic, 4, &tail).await;

    let want = expected.len();
    assert!(hook.wait_until(Duration::from_secs(90), |r| webhook_alerts(r).iter().map(|a| (a.0.clone(), a.1)).collect::<BTreeSet<_>>().len() >= want).await, "webhook incomplete");
    assert!(am.wait_until(Duration::from_secs(60), |r| am_alerts(r).iter().map(|a| (a.0.clone(), a.1)).collect::<BTreeSet<_>>().len() >= want).await, "alertmanager incomplete");
    // Room for a late duplicate to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let w = webhook_alerts(&hook.requests());
    let a = am_alerts(&am.requests());
    let wc = count(w.iter().map(|x| (x.0.clone(), x.1)));
    let ac = count(a.iter().map(|x| (x.0.clone(), x.1)));
    let w_dup: Vec<_> = wc.iter().filter(|(_, n)| **n > 1).collect();
    let a_dup: Vec<_> = ac.iter().filter(|(_, n)| **n > 1).collect();
    let survivor = &members.0[1].ops;
    let skipped_hook = metric(survivor, "kevents_notifier_skipped_total{notifier=\"hook\",reason=\"duplicate\"}") as u64;
    let skipped_am = metric(survivor, "kevents_notifier_skipped_total{notifier=\"am\",reason=\"duplicate\"}") as u64;
    eprintln!(
        "alerts once: {} alert versions expected ({} resolves); webhook received {} in {} requests ({} duplicated), alertmanager {} in {} requests ({} duplicated); \
         {} re-delivered records produced; the survivor skipped as already sent: webhook {}, alertmanager {}",
        want,
        resolves,
        w.len(),
        hook.accepted().len(),
        w_dup.len(),
        a.len(),
        am.accepted().len(),
        a_dup.len(),
        dupes.len(),
        skipped_hook,
        skipped_am
    );
    assert!(w_dup.is_empty(), "webhook duplicates: {w_dup:?}");
    assert!(a_dup.is_empty(), "alertmanager duplicates: {a_dup:?}");
    assert_eq!(wc.keys().cloned().collect::<BTreeSet<_>>(), expected, "webhook: exactly the expected alert versions");
    assert_eq!(ac.keys().cloned().collect::<BTreeSet<_>>(), expected, "alertmanager: exactly the expected alert versions");
    assert_eq!(w.iter().filter(|x| x.2 == "resolved").count(), resolves);
    assert_eq!(a.iter().filter(|x| x.2).count(), resolves);
    assert!(w.iter().all(|x| !x.3), "no repeats configured");
    // The survivor replayed the dead member's uncommitted partitions: more
    // already-sent versions skipped than the re-deliveries alone explain.
    assert!(skipped_hook > dupes.len() as u64 && skipped_am > dupes.len() as u64, "no replay seen: {skipped_hook}/{skipped_am} skipped, {} re-delivered", dupes.len());

    let st = members.0[1].terminate();
    assert!(st.success(), "survivor exit status {st}");
}
