//! Conformance: the same tests against the real kube-apiserver (+ etcd) and against
//! testkit's API server, so that what the fault tests prove on the test server holds on
//! a cluster. Each scenario is one `async fn(Server)`, run twice (`::test`, `::real`).
//! The raw topic must hold exactly the (uid, resourceVersion) versions an independent
//! client wrote, once each, with the written occurrence count.
//!
//! Differences between the two servers found here (also in docs/real-apiserver.md):
//! - BOOKMARKs: kube-apiserver sends none on Event watches (Events bypass the watch
//!   cache, which makes bookmarks); the test server sends one per `bookmark_interval`
//!   (default 60 s). It matters: with bookmarks a collector's resourceVersion follows the
//!   whole cluster, without them it stays at the last Event of its scope, so after a
//!   compaction only the real server makes the next re-watch 410. The tests run the test
//!   server without bookmarks ([`common::cluster::NO_BOOKMARKS`]) and [`bookmarks`] shows
//!   the difference; the collector must not need bookmarks (its idle timeout does not).
//! - Event writes are validated by kube-apiserver only (events.k8s.io/v1 needs eventTime,
//!   reportingController, reportingInstance, action); the test server stores what it gets.

mod common;
use common::cluster::{assert_topic_exactly, metric, wait_ready, Cluster, Server, Written};
use common::start;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1 as events;
use kevents_collector::config::{ApiKind, LeaderElectionConfig};
use kube::api::{Api, WatchEvent, WatchParams};
use std::time::{Duration, Instant};
use testkit::services::Services;

/// Each scenario against both servers.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn test() { super::$name(super::Server::Test).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn real() { super::$name(super::Server::Real).await }
        }
    )*};
}
on_both!(list_then_watch_both_shapes, bookmarks, restart_resumes, gone_on_resume_and_mid_watch, selectors_and_namespaces, two_replicas_with_a_lease);

const SHAPES: [ApiKind; 2] = [ApiKind::EventsV1, ApiKind::CoreV1];

async fn topic(name: &str) -> String {
    let topics = Services::get().create_topics(name, &[("raw", 1)]).await;
    let t = topics.name("raw").to_string();
    std::mem::forget(topics); // kept for the test's lifetime
    t
}

/// Events created before the collector starts reach it by the list (RELISTED), the rest
/// by the watch (ADDED, MODIFIED), whichever shape wrote them and whichever it watches.
async fn list_then_watch_both_shapes(server: Server) {
    let c = Cluster::start(server, "conf-shapes").await;
    let mut want = Vec::new();
    for i in 0..6 {
        want.push(c.create(SHAPES[i % 2], &c.ns, &format!("pre-{i}.1"), "Warning", &[]).await);
    }
    let mut runs = Vec::new();
    for api in SHAPES {
        let t = topic(&format!("conf-shapes-{api:?}")).await;
        let mut cfg = c.collector_config("conf-shapes", &t);
        cfg.api = api;
        runs.push((t, start(cfg)));
    }
    for (t, _) in &runs {
        assert_topic_exactly(t, &c.uid, &want).await;
    }
    let listed = want.len();
    for i in 0..4 {
        want.push(c.create(SHAPES[i % 2], &c.ns, &format!("live-{i}.1"), "Normal", &[]).await);
    }
    for round in 0..2 {
        for i in 0..6 {
            want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("pre-{i}.1")).await);
        }
        if round == 0 {
            for i in 0..4 {
                want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("live-{i}.1")).await);
            }
        }
    }
    for (t, run) in runs {
        let seen = assert_topic_exactly(&t, &c.uid, &want).await;
        run.stop().await;
        let relisted = seen.values().filter(|s| s.kinds == ["RELISTED"]).count();
        assert_eq!(relisted, listed, "{server:?} {t}");
        println!("{server:?} {t}: {} versions exactly once ({listed} listed, {} watched)", seen.len(), seen.len() - listed);
    }
}

/// BOOKMARKs on an Event watch, and when the server ends it (timeoutSeconds=4).
async fn bookmarks(server: Server) {
    let c = Cluster::start(server, "conf-bookmarks").await;
    let api: Api<events::Event> = Api::namespaced(c.client.clone(), &c.ns);
    let rv = c.create(ApiKind::EventsV1, &c.ns, "first.1", "Normal", &[]).await.rv;
    let t0 = Instant::now();
    let mut stream = api.watch(&WatchParams::default().timeout(4), &rv).await.unwrap().boxed();
    let mut bookmarks = 0;
    while let Some(item) = stream.next().await {
        if let WatchEvent::Bookmark(_) = item.unwrap() {
            bookmarks += 1;
        }
    }
    let ended = t0.elapsed();
    println!("{server:?}: {bookmarks} bookmarks in a quiet 4 s Event watch, ended after {ended:.2?}");
    assert!(ended >= Duration::from_millis(3900) && ended < Duration::from_secs(7), "ended after {ended:?}");
    // Events bypass the watch cache: a quiet watch is silent until timeoutSeconds.
    assert_eq!(bookmarks, 0);
    if c.test_server().is_some() {
        // The test server's own default (a bookmark per interval) on a second server.
        let opts = testkit::apiserver::ServerOptions { bookmark_interval: Duration::from_millis(500), ..Default::default() };
        let with = testkit::apiserver::ApiServer::start(opts).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        with.write_kubeconfig(&dir.path().join("kc"), "b").unwrap();
        let kc = kube::config::Kubeconfig::read_from(dir.path().join("kc")).unwrap();
        let client = kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap()).unwrap();
        let api: Api<events::Event> = Api::namespaced(client, &c.ns);
        let rv = with.store().current_rv().to_string();
        let items: Vec<_> = api.watch(&WatchParams::default().timeout(2), &rv).await.unwrap().collect().await;
        let n = items.iter().filter(|i| matches!(i, Ok(WatchEvent::Bookmark(_)))).count();
        assert!(n >= 3, "test server with bookmark_interval 500 ms: {n} bookmarks in 2 s");
    }
}

/// A collector restart resumes from the cursor in the topic by a watch, not a list.
async fn restart_resumes(server: Server) {
    let c = Cluster::start(server, "conf-restart").await;
    let t = topic("conf-restart").await;
    let cfg = c.collector_config("conf-restart", &t);
    let run = start(cfg.clone());
    let mut want: Vec<Written> = Vec::new();
    // The first run lists an empty namespace: wait until it watches (a heartbeat).
    wait_metric(cfg.listen, "kevents_collector_relists_total", 1.0).await;
    for i in 0..10 {
        want.push(c.create(SHAPES[i % 2], &c.ns, &format!("e-{i}.1"), "Warning", &[]).await);
        want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("e-{i}.1")).await);
    }
    assert_topic_exactly(&t, &c.uid, &want).await;
    run.stop().await;
    for i in 0..10 {
        want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("e-{i}.1")).await);
        want.push(c.create(SHAPES[i % 2], &c.ns, &format!("down-{i}.1"), "Normal", &[]).await);
    }
    let run = start(cfg.clone());
    for i in 0..5 {
        want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("down-{i}.1")).await);
    }
    let seen = assert_topic_exactly(&t, &c.uid, &want).await;
    assert_eq!(metric(cfg.listen, "kevents_collector_relists_total").await, 0.0, "resumed by a watch");
    run.stop().await;
    println!("{server:?}: {} versions exactly once across a restart", seen.len());
}

async fn wait_metric(listen: std::net::SocketAddr, name: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = metric(listen, name).await;
        if v >= at_least {
            return v;
        }
        assert!(Instant::now() < deadline, "{name} still {v} (want >= {at_least})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes elsewhere in the cluster move the revision past the collector's last RV
/// without it seeing them, so that a compaction now makes its RV too old (a watch from
/// the compaction revision - 1 or later would still stream).
async fn move_revision_and_compact(c: &Cluster, other_ns: &str) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for _ in 0..3 {
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        c.create(ApiKind::CoreV1, other_ns, &format!("elsewhere-{n}.1"), "Normal", &[]).await;
    }
    c.compact().await;
}

/// `410 Gone` after a compaction, on resume (collector down) and mid-watch (the next
/// re-watch of a running collector): it relists, and nothing is lost or doubled.
async fn gone_on_resume_and_mid_watch(server: Server) {
    let c = Cluster::start(server, "conf-gone").await;
    let other = c.namespace("conf-gone-other").await;
    let t = topic("conf-gone").await;
    let mut cfg = c.collector_config("conf-gone", &t);
    cfg.watch_timeout_secs = 2;
    let mut want = Vec::new();
    for i in 0..10 {
        want.push(c.create(SHAPES[i % 2], &c.ns, &format!("e-{i}.1"), "Warning", &[]).await);
    }
    let run = start(cfg.clone());
    assert_topic_exactly(&t, &c.uid, &want).await;
    // Listed records carry the pre-list cursor (none): one watched write gives the
    // topic a cursor to resume from.
    want.push(c.create(ApiKind::CoreV1, &c.ns, "e-10.1", "Warning", &[]).await);
    assert_topic_exactly(&t, &c.uid, &want).await;
    run.stop().await;
    // On resume: one write per object while down (a relist sees only the latest version).
    for i in 0..10 {
        want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("e-{i}.1")).await);
        want.push(c.create(SHAPES[i % 2], &c.ns, &format!("down-{i}.1"), "Normal", &[]).await);
    }
    move_revision_and_compact(&c, &other).await;
    let run = start(cfg.clone());
    assert_topic_exactly(&t, &c.uid, &want).await;
    assert_eq!(metric(cfg.listen, "kevents_collector_gone_total").await, 1.0, "410 on resume");
    // Mid-watch: compaction does not end an open watch; its next re-watch gets the 410.
    move_revision_and_compact(&c, &other).await;
    let t0 = Instant::now();
    wait_metric(cfg.listen, "kevents_collector_gone_total", 2.0).await;
    println!("{server:?}: 410 on the re-watch {:.2?} after the compaction", t0.elapsed());
    for i in 0..10 {
        want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("down-{i}.1")).await);
    }
    let seen = assert_topic_exactly(&t, &c.uid, &want).await;
    assert_eq!(metric(cfg.listen, "kevents_collector_relists_total").await, 2.0);
    run.stop().await;
    println!("{server:?}: {} versions exactly once through two 410s", seen.len());
}

/// Field and label selectors are applied by the server; namespace scopes watch only
/// their namespaces; a cluster-wide watch sees every namespace.
async fn selectors_and_namespaces(server: Server) {
    let c = Cluster::start(server, "conf-sel").await;
    let ns2 = c.namespace("conf-sel-b").await;
    let ns3 = c.namespace("conf-sel-c").await;
    let run_id = c.ns.clone();
    let mut want_scoped = Vec::new();
    let mut want_wide = Vec::new();
    let mut runs = Vec::new();
    for api in SHAPES {
        let t = topic(&format!("conf-sel-{api:?}")).await;
        let mut cfg = c.collector_config("conf-sel", &t);
        cfg.api = api;
        cfg.namespaces = vec![c.ns.clone(), ns2.clone()];
        cfg.field_selector = Some("type=Warning".into());
        cfg.label_selector = Some("app=x".into());
        runs.push((t, cfg.listen, start(cfg)));
    }
    let wide_topic = topic("conf-sel-wide").await;
    let mut wide = c.collector_config("conf-sel", &wide_topic);
    wide.namespaces = vec![];
    wide.label_selector = Some(format!("run={run_id}"));
    let wide_run = start(wide.clone());
    for (_, listen, _) in &runs {
        wait_metric(*listen, "kevents_collector_relists_total", 2.0).await; // one list per scope
    }
    wait_metric(wide.listen, "kevents_collector_relists_total", 1.0).await;
    let mut n = 0;
    for ns in [&c.ns, &ns2, &ns3] {
        for ty in ["Warning", "Normal"] {
            for app in ["x", "y"] {
                n += 1;
                let w = c.create(SHAPES[n % 2], ns, &format!("s-{n}.1"), ty, &[("app", app), ("run", &run_id)]).await;
                let b = c.bump(SHAPES[n % 2], ns, &format!("s-{n}.1")).await;
                if ns != &ns3 && ty == "Warning" && app == "x" {
                    want_scoped.extend([w.clone(), b.clone()]);
                }
                want_wide.extend([w, b]);
            }
        }
    }
    for (t, _, run) in runs {
        assert_topic_exactly(&t, &c.uid, &want_scoped).await;
        run.stop().await;
    }
    assert_topic_exactly(&wide_topic, &c.uid, &want_wide).await;
    wide_run.stop().await;
    println!("{server:?}: selectors kept {} of {} versions; cluster-wide by label {}", want_scoped.len(), want_wide.len(), want_wide.len());
}

/// Two replicas, one Lease (coordination.k8s.io/v1): one publishes; when it stops (and
/// releases) the other takes over with the next epoch; nothing lost or doubled.
async fn two_replicas_with_a_lease(server: Server) {
    let c = Cluster::start(server, "conf-lease").await;
    let t = topic("conf-lease").await;
    let replica = |id: &str| {
        let mut cfg = c.collector_config("conf-lease", &t);
        cfg.leader_election = Some(LeaderElectionConfig {
            namespace: c.ns.clone(),
            lease_name: "kevents-collector".into(),
            identity: Some(id.into()),
            lease_duration_secs: 4,
            renew_deadline_secs: 3,
            retry_period_secs: 1,
        });
        cfg
    };
    let (a, b) = (replica("replica-a"), replica("replica-b"));
    let run_a = start(a.clone());
    wait_ready(a.listen).await; // leads and watches
    let run_b = start(b.clone());
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), &c.ns);
    let mut want = Vec::new();
    for i in 0..10 {
        want.push(c.create(SHAPES[i % 2], &c.ns, &format!("e-{i}.1"), "Warning", &[]).await);
    }
    assert_topic_exactly(&t, &c.uid, &want).await;
    assert_eq!(metric(b.listen, "kevents_collector_leader").await, 0.0, "b stands by");
    let lease = leases.get("kevents-collector").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-a"));
    let t0 = Instant::now();
    run_a.stop().await; // releases the Lease
    wait_metric(b.listen, "kevents_collector_leader", 1.0).await;
    println!("{server:?}: replica-b leads {:.2?} after replica-a stopped", t0.elapsed());
    for i in 0..10 {
        want.push(c.bump(SHAPES[i % 2], &c.ns, &format!("e-{i}.1")).await);
    }
    let seen = assert_topic_exactly(&t, &c.uid, &want).await;
    let lease = leases.get("kevents-collector").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-b"));
    let epochs: std::collections::BTreeSet<i64> = seen.values().flat_map(|s| s.epochs.clone()).collect();
    assert_eq!(epochs.len(), 2, "one epoch per leader: {epochs:?}");
    assert_eq!(lease.lease_transitions, epochs.last().map(|e| *e as i32));
    run_b.stop().await;
}
