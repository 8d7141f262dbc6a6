//! Alert notifications against the real local broker and local HTTP receivers
//! standing in for a webhook, Slack and Alertmanager.
//!
//! - `each_alert_once_at_each_receiver_across_kill_9`: two processor processes
//!   notify a webhook and an Alertmanager receiver; one is killed with SIGKILL
//!   (no drain, no commit) after it delivered alerts whose offsets it had not
//!   committed yet. The survivor takes its partitions over, reads the
//!   sent-markers, and skips what was delivered: every alert version (firing and
//!   resolved) arrives exactly once at each receiver.
//! - `grouping_retries_repeats_and_a_down_receiver`: one in-process notifier
//!   set; grouping into one message per (rule, cluster) and one Alertmanager
//!   POST, a 500 retried, reminders after `repeat_interval`, resolves, and a
//!   hanging Slack receiver that delays nobody else.

mod common;

use common::{config, producer};
use kevents_processor::alerts::{AlertsConfig, NotifierConfig, NotifierKind, NotifyMetrics};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::avro::Codec;
use runtime::secret::Secret;
use schemas::ids::stable_id;
use schemas::model::{ClusterId, Severity};
use schemas::records::{Alert, AlertSource};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::receiver::{Receiver, Received, Reply};
use testkit::services::{http_request, read_topic, Services};

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// An alert version of incident `n` of cluster `c` (rules alternate).
fn alert(c: usize, n: usize, version: i64, firing: bool) -> Alert {
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
async fn produce(p: &FutureProducer, topic: &str, partitions: usize, alerts: &[Alert]) {
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
fn webhook_alerts(reqs: &[Received]) -> Vec<(String, i64, String, bool)> {
    reqs.iter()
        .filter(|r| r.accepted())
        .flat_map(|r| r.json["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["version"].as_i64().unwrap(), a["status"].as_str().unwrap().to_string(), a["repeat"].as_bool().unwrap()))
        .collect()
}

/// (alert id, version, resolved) of every alert an Alertmanager receiver
/// accepted. Resolved = has `endsAt`, which holds with `repeat_interval_secs: 0`
/// (otherwise firing alerts carry a future `endsAt` too).
fn am_alerts(reqs: &[Received]) -> Vec<(String, i64, bool)> {
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

fn count<K: Ord + Clone>(keys: impl IntoIterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// A processor process and the ops address it printed.
struct Member {
    child: Child,
    ops: String,
    _stdout: ChildStdout,
}

fn spawn_member(config: &Path) -> Member {
    let mut child = Command::new(env!("CARGO_BIN_EXE_processor-member"))
        .args(["--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn processor-member");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ops = line.trim().strip_prefix("ops ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_string();
    Member { child, ops: format!("http://{ops}"), _stdout: out.into_inner() }
}

struct Members(Vec<Member>);

impl Drop for Members {
    fn drop(&mut self) {
        for m in &mut self.0 {
            if matches!(m.child.try_wait(), Ok(None)) {
                let _ = m.child.kill();
                let _ = m.child.wait();
            }
        }
    }
}

/// A counter from a member's /metrics (0 when absent).
fn metric(ops: &str, name_and_labels: &str) -> u64 {
    let (_, body) = http_request(ops, "GET", "/metrics", "", Duration::from_secs(5)).unwrap();
    body.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or(0.0) as u64
}

fn notifier(name: &str, kind: NotifierKind, url: String) -> NotifierConfig {
    NotifierConfig { name: name.into(), kind, url: Some(Secret::new(url)), url_file: None, headers: Default::default(), link_template: Some("https://grafana.example/d/incidents?var-id={{origin_id}}".into()), timeout_secs: 10 }
}

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
        notifiers: vec![notifier("hook", NotifierKind::Webhook, format!("{}/hook", hook.url())), notifier("am", NotifierKind::Alertmanager, am.url())],
        group_wait_secs: 1,
        repeat_interval_secs: 0,
        // Nothing is committed by the timer during the test: the killed member's
        // deliveries are all uncommitted, so the survivor must skip them by marker.
        commit_interval_secs: 600,
        sent_topic: topics.name("sent").into(),
        group_id: format!("n-{}", topics.name("alerts")),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("processor.yaml");
    std::fs::write(&cfg_path, serde_norway::to_string(&cfg).unwrap()).unwrap();
    let mut members = Members((0..2).map(|_| spawn_member(&cfg_path)).collect());
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
    let skipped_hook = metric(survivor, "kevents_notifier_skipped_total{notifier=\"hook\",reason=\"duplicate\"}");
    let skipped_am = metric(survivor, "kevents_notifier_skipped_total{notifier=\"am\",reason=\"duplicate\"}");
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

    let m = &mut members.0[1].child;
    assert!(Command::new("kill").args(["-TERM", &m.id().to_string()]).status().unwrap().success());
    let st = m.wait().unwrap();
    assert!(st.success(), "survivor exit status {st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_retries_repeats_and_a_down_receiver() {
    let s = Services::get();
    let topics = s.create_topics("alerts-group", &[("alerts", 2), ("sent", 1)]).await;
    let hook = Receiver::start().await.unwrap();
    let am = Receiver::start().await.unwrap();
    let slack = Receiver::start().await.unwrap();
    // Slack hangs 5 s on every request, then fails: it must delay nobody else.
    slack.set_default(Reply::slow(503, Duration::from_secs(5)));
    // The webhook's first request fails once.
    hook.script([Reply::status(500)]);
    let cfg = AlertsConfig {
        notifiers: vec![
            notifier("hook", NotifierKind::Webhook, format!("{}/hook", hook.url())),
            notifier("am", NotifierKind::Alertmanager, format!("{}/", am.url())),
            notifier("slack", NotifierKind::Slack, format!("{}/services/T0/B0/x", slack.url())),
        ],
        group_wait_secs: 2,
        repeat_interval_secs: 4,
        max_retries: 1,
        backoff_initial_ms: 50,
        backoff_max_secs: 1,
        sent_topic: topics.name("sent").into(),
        group_id: format!("n-{}", topics.name("alerts")),
        ..Default::default()
    };
    cfg.validate("alerts").unwrap();
    let kafka = runtime::kafka::KafkaConfig { brokers: topics.bootstrap().into(), ..Default::default() };
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = NotifyMetrics::register(&mut registry);
    let stop = kevents_processor::shutdown::CancellationToken::new();
    let notifier = kevents_processor::alerts::notify::start(&cfg, &kafka.client_config().unwrap(), topics.name("alerts"), 0, Codec::default(), metrics.clone(), stop.clone(), Default::default())
        .await
        .unwrap()
        .expect("notifiers configured");

    // Cluster 0: 5 alerts of rule incident-error (n even) and 5 of node-fanout.
    let firing: Vec<Alert> = (0..10).map(|n| alert(0, n, 1, true)).collect();
    produce(&producer(topics.bootstrap()), topics.name("alerts"), 2, &firing).await;
    assert!(hook.wait_until(Duration::from_secs(30), |r| webhook_alerts(r).len() >= 10).await, "webhook");
    assert!(am.wait_until(Duration::from_secs(30), |r| am_alerts(r).len() >= 10).await, "alertmanager");
    // Slack's first request is still hanging: the others did not wait for it.
    let sent = |n: &str| metrics.sent.get_or_create(&kevents_processor::alerts::notify::metrics::NotifierLabel { notifier: n.into() }).get();
    let failed = |n: &str| metrics.failed.get_or_create(&kevents_processor::alerts::notify::metrics::NotifierLabel { notifier: n.into() }).get();
    assert_eq!((sent("slack"), failed("slack")), (0, 0), "slack still on its first request");

    // Grouping: one webhook message per (rule, cluster), one Alertmanager POST.
    let ok: Vec<Received> = hook.accepted();
    assert_eq!(ok.len(), 2, "two groups: {:?}", ok.iter().map(|r| &r.json["group"]).collect::<Vec<_>>());
    for r in &ok {
        let rule = r.json["group"]["rule"].as_str().unwrap();
        let alerts = r.json["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 5);
        assert!(alerts.iter().all(|a| a["rule"] == rule && a["cluster"] == "c0" && a["status"] == "firing"));
        assert!(alerts[0]["link"].as_str().unwrap().starts_with("https://grafana.example/d/incidents?var-id=inc-0-"));
    }
    // The retry: the first attempt got 500, the same body then went through.
    let all = hook.requests();
    assert_eq!(all[0].status, 500);
    assert_eq!(all[1].status, 200);
    assert_eq!(all[0].body, all[1].body);
    assert_eq!(metrics.retried.get_or_create(&kevents_processor::alerts::notify::metrics::NotifierLabel { notifier: "hook".into() }).get(), 1);
    // Alertmanager gets whole groups per POST: all due groups in one when they are
    // due together (within 200 ms), at most one POST per group on a loaded machine.
    let posts = am.accepted();
    let sizes: Vec<usize> = posts.iter().map(|p| p.json.as_array().unwrap().len()).collect();
    assert!(!posts.is_empty() && posts.len() <= 2, "Alertmanager POSTs: {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 10);
    assert!(sizes.iter().all(|n| n % 5 == 0), "whole groups per POST: {sizes:?}");

    // Repeats: still firing after repeat_interval → sent again, marked as repeats.
    assert!(hook.wait_until(Duration::from_secs(20), |r| webhook_alerts(r).iter().filter(|a| a.3).count() >= 10).await, "repeats");
    let repeats: BTreeSet<String> = webhook_alerts(&hook.requests()).into_iter().filter(|a| a.3).map(|a| a.0).collect();
    assert_eq!(repeats, firing.iter().map(|a| a.id.clone()).collect());
    assert!(am.wait_until(Duration::from_secs(10), |r| am_alerts(r).len() >= 20).await, "Alertmanager refreshed too");

    // Resolve them: resolves go out once, then no more repeats.
    let resolved: Vec<Alert> = (0..10).map(|n| alert(0, n, 2, false)).collect();
    produce(&producer(topics.bootstrap()), topics.name("alerts"), 2, &resolved).await;
    assert!(hook.wait_until(Duration::from_secs(20), |r| webhook_alerts(r).iter().filter(|a| a.2 == "resolved").count() >= 10).await, "resolves");
    let settled = webhook_alerts(&hook.requests()).len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = webhook_alerts(&hook.requests());
    assert_eq!(after.len(), settled, "nothing after the resolves (no repeat of resolved alerts)");
    assert_eq!(after.iter().filter(|a| a.2 == "resolved").count(), 10, "each resolve once");

    // Slack kept failing on its own: every alert version recorded as failed.
    let mut waited = 0;
    while failed("slack") < 10 && waited < 60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
    }
    let slack_text = slack.requests()[0].json["text"].as_str().unwrap().to_string();
    eprintln!(
        "grouping: webhook {} requests ({} accepted), alertmanager {} POSTs, slack {} attempts, slack failed {} alert versions, hook sent {}; first Slack message:\n{slack_text}",
        hook.requests().len(),
        hook.accepted().len(),
        am.accepted().len(),
        slack.requests().len(),
        failed("slack"),
        sent("hook"),
    );
    assert!(failed("slack") >= 10, "slack failures recorded: {}", failed("slack"));
    assert!(slack_text.starts_with("*5 alerts* (5 firing, 0 resolved)"), "{slack_text}");
    assert_eq!(sent("hook"), 30, "10 firing + 10 repeats + 10 resolves");
    stop.cancel();
    notifier.join().await.expect("the notifiers stop cleanly");
}
