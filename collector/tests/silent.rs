//! The silent connection: the API server accepts the watch and then writes nothing and
//! never closes. Measured end to end on the test API server: how long until events flow
//! again (the watch idle timeout), how long until `/healthz` says so when every watch
//! goes silent, and that a leader cut off this way stops publishing before the standby
//! can take its Lease.

mod common;
use common::cluster::{metric, wait_ready, NO_BOOKMARKS};
use common::*;
use kevents_collector::config::LeaderElectionConfig;
use schemas::avro::Codec;
use schemas::records::RawRecord;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::apiserver::{ApiServer, ServerOptions};
use testkit::services::{http_request, read_topic, Services};
use tokio::sync::watch;

async fn healthz(listen: SocketAddr) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        http_request(&format!("http://{listen}"), "GET", "/healthz", "", Duration::from_secs(5)).unwrap_or((0, String::new()))
    })
    .await
    .unwrap()
}

/// Poll until `f` holds; returns how long it took (fails after `within`).
async fn until<F: std::future::Future<Output = bool>>(what: &str, within: Duration, mut f: impl FnMut() -> F) -> Duration {
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t0.elapsed()
}

async fn server() -> ApiServer {
    let s = ApiServer::start(ServerOptions { bookmark_interval: NO_BOOKMARKS, ..Default::default() }).await.unwrap();
    s.store().log_changes();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_watch_recovers_by_the_idle_timeout_and_health_reports_persistent_silence() {
    let (_s, mut cfg, topic, _dir) = setup("silent").await;
    drop(_s); // setup's server sends bookmarks; this test uses one without, like kube-apiserver
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    server.write_kubeconfig(&dir.path().join("kc"), "silent").unwrap();
    cfg.kubeconfig = Some(dir.path().join("kc"));
    cfg.listen = format!("127.0.0.1:{}", testkit::services::free_port().unwrap()).parse().unwrap();
    cfg.watch_timeout_secs = 2;
    cfg.watch_idle_timeout_secs = Some(4);
    cfg.stall_timeout_secs = 3;
    let store = server.store();
    let uid = store.cluster_uid().to_string();
    let run = start(cfg.clone());
    wait_ready(cfg.listen).await;
    for i in 0..50 {
        store.apply(event(i, 1));
    }
    assert_eq!(wait_published(&cfg.kafka.brokers, &topic, &uid, 50).await.len(), 50);

    // 1. The open watch goes silent; events written now must still arrive.
    server.faults().silence_watches_now();
    let t0 = Instant::now();
    for i in 50..100 {
        store.apply(event(i, 1));
    }
    assert_eq!(wait_published(&cfg.kafka.brokers, &topic, &uid, 100).await.len(), 100);
    let recovered = t0.elapsed();
    assert_eq!(server.stats().watches_silenced, 1);
    assert!(metric(cfg.listen, "kevents_collector_watch_restarts_total{cause=\"idle\"}").await >= 1.0);
    // The idle timeout counts from the last item, which came shortly before the silence.
    assert!(recovered >= Duration::from_millis(2500) && recovered < Duration::from_secs(10), "{recovered:?}");

    // 2. Every watch goes silent: /healthz must say so; then it recovers.
    server.faults().set_silent_watches(true);
    server.faults().silence_watches_now();
    let to_unhealthy = until("healthz 503", Duration::from_secs(30), || async { healthz(cfg.listen).await.0 == 503 }).await;
    let (_, body) = healthz(cfg.listen).await;
    assert!(body.contains("watch: STALLED"), "{body}");
    assert!(!body.contains("publish: STALLED"), "Kafka is fine: {body}");
    server.faults().set_silent_watches(false);
    for i in 100..120 {
        store.apply(event(i, 1));
    }
    let to_flowing = until("events flow again", Duration::from_secs(30), || {
        let (b, t, u) = (cfg.kafka.brokers.clone(), topic.clone(), uid.clone());
        async move { tokio::task::spawn_blocking(move || published(&b, &t, &u).len() >= 120).await.unwrap() }
    })
    .await;
    let to_healthy = until("healthz 200", Duration::from_secs(30), || async { healthz(cfg.listen).await.0 == 200 }).await + to_flowing;
    println!(
        "silent connection (idle timeout 4 s, watch timeout 2 s, stall 3 s): events flowing again {recovered:.2?} after the watch went silent; \
         every watch silent: /healthz 503 after {to_unhealthy:.2?}; fault cleared: events again after {to_flowing:.2?}, /healthz 200 after {to_healthy:.2?}"
    );
    let seen = wait_published(&cfg.kafka.brokers, &topic, &uid, 120).await;
    run.stop().await;
    assert_exactly_once(&store, &seen);
}

/// A TCP proxy that can go silent: forwarding stops both ways, every connection stays
/// open, new ones are accepted and ignored. The leader's only path to the API server.
async fn silent_proxy(upstream: SocketAddr) -> (SocketAddr, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, cut_rx) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let mut cut = cut_rx.clone();
            tokio::spawn(async move {
                if !*cut.borrow_and_update() {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut down, &mut up) => return,
                            _ = cut.wait_for(|c| *c) => {}
                        }
                        let _hold = up;
                    }
                }
                std::future::pending::<()>().await; // hold `down` open, say nothing
            });
        }
    });
    (addr, cut)
}

fn records(topic: &str) -> Vec<RawRecord> {
    let codec = Codec::default();
    read_topic(&Services::get().kafka_bootstrap(), topic).unwrap().iter().map(|m| codec.decode(&m.payload).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_cut_off_stops_publishing_before_its_lease_can_be_taken() {
    let (_s, base, topic, _dir) = setup("cutoff").await;
    drop(_s);
    let server = server().await;
    let store = server.store();
    let uid = store.cluster_uid().to_string();
    let (proxy, cut) = silent_proxy(server.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let replica = |id: &str, url: String| {
        let kc = dir.path().join(id);
        std::fs::write(&kc, testkit::apiserver::kubeconfig_yaml(&[("cutoff", url)])).unwrap();
        let mut cfg = base.clone();
        cfg.kubeconfig = Some(kc);
        cfg.listen = format!("127.0.0.1:{}", testkit::services::free_port().unwrap()).parse().unwrap();
        cfg.leader_election = Some(LeaderElectionConfig {
            namespace: "kevents".into(),
            lease_name: "kevents-collector".into(),
            identity: Some(id.into()),
            lease_duration_secs: 6,
            renew_deadline_secs: 4,
            retry_period_secs: 1,
        });
        cfg
    };
    let a = replica("replica-a", format!("http://{proxy}"));
    let b = replica("replica-b", server.url());
    let run_a = start(a.clone());
    wait_ready(a.listen).await;
    let run_b = start(b.clone());
    for i in 0..30 {
        store.apply(event(i, 1));
    }
    assert_eq!(wait_published(&base.kafka.brokers, &topic, &uid, 30).await.len(), 30);

    cut.send(true).unwrap();
    let t0 = Instant::now();
    let (a_down, b_up) = tokio::join!(
        until("replica-a steps down", Duration::from_secs(30), || async { metric(a.listen, "kevents_collector_leader").await == 0.0 }),
        until("replica-b leads", Duration::from_secs(30), || async { metric(b.listen, "kevents_collector_leader").await == 1.0 }),
    );
    println!("leader cut off (lease 6 s, renew deadline 4 s, retry 1 s): replica-a stopped publishing after {a_down:.2?}, replica-b leads after {b_up:.2?} (since the cut, {:.2?} ago)", t0.elapsed());
    assert!(a_down < b_up, "the old leader stepped down after the new one took over");
    assert!(a_down <= Duration::from_secs(5), "within the renew deadline (+ one retry): {a_down:?}");
    for i in 0..30 {
        store.apply(event(i, 2));
    }
    let seen = wait_published(&base.kafka.brokers, &topic, &uid, store.changes().len()).await;
    assert_exactly_once(&store, &seen);
    // No record of the old epoch was produced after the new leader's first one.
    let recs = tokio::task::spawn_blocking({ let t = topic.clone(); move || records(&t) }).await.unwrap();
    let new_epoch = recs.iter().map(|r| r.collector.leader_epoch).max().unwrap();
    let first_new = recs.iter().filter(|r| r.collector.leader_epoch == new_epoch).map(|r| r.observed_us).min().unwrap();
    let last_old = recs.iter().filter(|r| r.collector.leader_epoch < new_epoch).map(|r| r.observed_us).max().unwrap();
    assert!(last_old < first_new, "old leader's last record {last_old} after the new leader's first {first_new}");
    assert_eq!(recs.iter().filter(|r| r.collector.leader_epoch == new_epoch).map(|r| r.collector.instance.as_str()).collect::<std::collections::BTreeSet<_>>().len(), 1);
    run_b.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(20), run_a.stop()).await;
}
