//! The notifier set alone, against the real local broker and local HTTP
//! receivers standing in for a webhook, Slack and Alertmanager (the processor's
//! `alerts_notify` runs them inside processor members, across a `kill -9`).
//!
//! - `grouping_retries_repeats_and_a_down_receiver`: one notifier set;
//!   grouping into one message per (rule, cluster) and one Alertmanager POST, a
//!   500 retried, reminders after `repeat_interval`, resolves, and a hanging
//!   Slack receiver that delays nobody else.

// The name the processor (and the shared `common`) knows this crate by.
extern crate kevents_notify as notify;

mod common;

use common::{alert, am_alerts, notifier, produce, producer, webhook_alerts};
use notify::metrics::NotifierLabel;
use notify::{NotifierKind, NotifyConfig, NotifyMetrics};
use schemas::avro::Codec;
use schemas::records::Alert;
use std::collections::BTreeSet;
use std::time::Duration;
use testkit::receiver::{Receiver, Received, Reply};
use testkit::services::Services;

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
    let cfg = NotifyConfig {
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
    let stop = notify::CancellationToken::new();
    let notifier = notify::start(&cfg, &kafka.client_config().unwrap(), topics.name("alerts"), 0, Codec::default(), metrics.clone(), stop.clone(), None)
        .await
        .unwrap()
        .expect("notifiers configured");

    // Cluster 0: 5 alerts of rule incident-error (n even) and 5 of node-fanout.
    let firing: Vec<Alert> = (0..10).map(|n| alert(0, n, 1, true)).collect();
    produce(&producer(topics.bootstrap()), topics.name("alerts"), 2, &firing).await;
    assert!(hook.wait_until(Duration::from_secs(30), |r| webhook_alerts(r).len() >= 10).await, "webhook");
    assert!(am.wait_until(Duration::from_secs(30), |r| am_alerts(r).len() >= 10).await, "alertmanager");
    // Slack's first request is still hanging: the others did not wait for it.
    let sent = |n: &str| metrics.sent.get_or_create(&NotifierLabel { notifier: n.into() }).get();
    let failed = |n: &str| metrics.failed.get_or_create(&NotifierLabel { notifier: n.into() }).get();
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
    assert_eq!(metrics.retried.get_or_create(&NotifierLabel { notifier: "hook".into() }).get(), 1);
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
