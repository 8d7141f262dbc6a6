//! The `kevents collector` binary against a real kube-apiserver + etcd
//! (`testkit::kube_real`), fed by the fleet simulator writing through the Kubernetes
//! API (`--target real`: creates, and PATCHes of `count` / `series`) as fast as the
//! server takes it. The collector is killed with SIGKILL and restarted twice; during
//! the second outage etcd is compacted past the collector's cursor, so its resume gets
//! 410 Expired and relists. An independent client watches the same server from the
//! start (re-watching and relisting on its own 410s) and records every
//! (uid, resourceVersion) the server served; each must be in the raw topic exactly once,
//! except versions that a later version of the same Event superseded inside the
//! compaction gap — the relist shows an object's latest version only, and that version,
//! carrying the occurrences, must be there. The simulator's ground truth, in the
//! server's uids, must match the Events the server holds.
//!
//! A second test runs `kevents simulate --target real` itself against two kubeconfigs.

use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
mod collector_proc;

use collector_proc::{ops_get, published_async, wait_ready, Collector};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::kube_real::RealApiServer;
use testkit::services::{free_port, http_request, Services};
use testkit::sim::{Fleet, FleetOptions, RealCluster, Target};

/// Above what the real server sustains on 2 cores: the writer's backpressure finds the limit.
const TARGET_RATE: f64 = 4_000.0;

/// A counter of the collector's `/metrics` (summed over labels).
async fn metric(port: u16, name: &str) -> u64 {
    let (_, body) = ops_get(port, "/metrics").await.expect("metrics answer");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// What the independent watcher recorded.
#[derive(Default)]
struct Served {
    versions: Mutex<HashSet<(String, u64)>>,
    relists: AtomicU64,
    rewatches: AtomicU64,
}

fn rv_of(ev: &Event) -> u64 {
    ev.metadata.resource_version.as_deref().and_then(|r| r.parse().ok()).expect("numeric resourceVersion")
}

/// Lists every Event (pages of 500); records each version; returns the list's RV.
async fn list_all(api: &Api<Event>, served: &Served) -> String {
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await.expect("listing events");
        let mut v = served.versions.lock().unwrap();
        for ev in &page.items {
            v.insert((ev.metadata.uid.clone().unwrap(), rv_of(ev)));
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => return page.metadata.resource_version.unwrap(),
        }
    }
}

/// Watches every events.k8s.io/v1 Event from the first list until `stop`, re-watching
/// when the server ends a watch and relisting after a 410.
fn watch_everything(api: Api<Event>, served: Arc<Served>, stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut rv = list_all(&api, &served).await;
        while !*stop.borrow() {
            let mut stream = api.watch(&WatchParams::default().timeout(290), &rv).await.expect("watch").boxed();
            let mut gone = false;
            loop {
                let next = tokio::select! {
                    n = stream.next() => n,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if *stop.borrow() { return; } else { continue; }
                    }
                };
                match next {
                    None => break,
                    Some(Err(e)) => {
                        // A broken stream resumes from the last version seen, as a watcher does.
                        eprintln!("independent watcher: stream failed ({e}), watching again from {rv}");
                        break;
                    }
                    Some(Ok(WatchEvent::Added(ev) | WatchEvent::Modified(ev) | WatchEvent::Deleted(ev))) => {
                        rv = ev.metadata.resource_version.clone().unwrap();
                        served.versions.lock().unwrap().insert((ev.metadata.uid.clone().unwrap(), rv_of(&ev)));
                    }
                    Some(Ok(WatchEvent::Bookmark(b))) => rv = b.metadata.resource_version,
                    Some(Ok(WatchEvent::Error(status))) => {
                        assert_eq!(status.code, 410, "unexpected watch error {status:?}");
                        gone = true;
                        break;
                    }
                }
            }
            if gone {
                served.relists.fetch_add(1, Ordering::Relaxed);
                rv = list_all(&api, &served).await;
            } else {
                served.rewatches.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// Polls the collector's log, from byte `from`, for its "relist done" line; returns
/// the list's resourceVersion: the relist published the objects as of that version.
async fn relist_rv(log: &Path, from: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(text.get(from..).unwrap_or_default());
        let plain = strip_ansi(&text);
        if let Some(line) = plain.lines().find(|l| l.contains("relist done")) {
            let rv = line.split("list_rv=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|r| r.parse().ok());
            return rv.unwrap_or_else(|| panic!("no list_rv in {line:?}"));
        }
        assert!(Instant::now() < deadline, "the collector never finished a relist after the compaction");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Compacts etcd at `revision` (physical), as `--etcd-compaction-interval` would.
fn compact(etcd_url: &str, revision: u64) {
    let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
    let (status, answer) = http_request(etcd_url, "POST", "/v3/kv/compaction", &body, Duration::from_secs(10)).expect("etcd compaction");
    assert_eq!(status, 200, "etcd compaction refused: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_twice_and_compaction_on_a_real_api_server_lose_and_double_nothing() {
    let kube = tokio::task::spawn_blocking(RealApiServer::start).await.unwrap().expect("real kube-apiserver + etcd");
    let services = Services::get();
    let topics = services.create_topics("cli-real-kill9", &[("raw", 3)]).await;
    let (brokers, topic) = (services.kafka_bootstrap(), topics.name("raw").to_string());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("sim-1.kubeconfig");
    kube.write_kubeconfig(&kubeconfig, kube.admin_token()).unwrap();
    let port = free_port().unwrap();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "cluster: {{name: sim-1}}\nkubeconfig: {}\nkafka: {{brokers: \"{brokers}\"}}\ntopic: {topic}\n\
             heartbeat_interval_secs: 1\nstall_timeout_secs: 30\nlisten: 127.0.0.1:{port}\ninstance: c0\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let log = std::env::temp_dir().join(format!("kevents-real-apiserver-sim-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);

    // The independent watcher, from before the first write.
    let events: Api<Event> = Api::all(kube.client().await);
    let served = Arc::new(Served::default());
    let (stop_watch, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = watch_everything(events.clone(), served.clone(), stop_rx);

    let mut collector = Collector::start(&config, &log);
    wait_ready(port).await;
    let opts = FleetOptions {
        clusters: 1,
        target: Target::Real(vec![RealCluster { name: "sim-1".into(), kubeconfig: kubeconfig.clone() }]),
        rate: TARGET_RATE,
        seed: 16,
        ..Default::default()
    };
    let mut fleet = Fleet::start(opts).await.expect("the simulator connects to the real API server");

    // Outage 1: kill -9, restart at once; the resume is an ordinary watch from the cursor.
    tokio::time::sleep(Duration::from_secs(4)).await;
    collector.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    collector = Collector::start(&config, &log);
    wait_ready(port).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Outage 2: kill -9, writes go on, etcd compacts past the cursor, then restart.
    collector.kill9();
    let cursor = published_async(&brokers, &topic).await.keys().map(|k| k.1).max().expect("records before the second kill");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let revision = kube.etcd_revision().unwrap();
    let compacted_at = revision - 50;
    assert!(compacted_at > cursor + 2, "the compaction ({compacted_at}) must pass the collector's cursor ({cursor})");
    let url = kube.etcd_url().to_string();
    tokio::task::spawn_blocking(move || compact(&url, compacted_at)).await.unwrap();
    let log_offset = std::fs::metadata(&log).map(|m| m.len() as usize).unwrap_or(0);
    collector = Collector::start(&config, &log);
    wait_ready(port).await;
    let relisted_by = relist_rv(&log, log_offset).await;
    let gone = metric(port, "kevents_collector_gone_total").await;
    let relists = metric(port, "kevents_collector_relists_total").await;
    assert!(gone >= 1 && relists >= 1, "the resume after the compaction must hit 410 and relist (gone {gone}, relists {relists})");
    tokio::time::sleep(Duration::from_secs(4)).await;
    fleet.stop().await;
    let stats = fleet.stats();
    let writes = stats.clusters[0].writes.clone().expect("real API server write stats");
    eprintln!(
        "simulator on the real API server: {} writes in {:.1} s = {:.0}/s (target {TARGET_RATE}/s); {writes:?}",
        stats.applied,
        stats.elapsed.as_secs_f64(),
        stats.achieved_rate
    );
    assert_eq!((writes.rejected, writes.abandoned), (0, 0), "every write acknowledged: {writes:?}");
    assert!(writes.patches > 0, "repeats are PATCHes: {writes:?}");

    // The watcher has caught up once it holds the latest version of every Event.
    let deadline = Instant::now() + Duration::from_secs(60);
    let latest = loop {
        let probe = Served::default();
        list_all(&events, &probe).await;
        let latest = probe.versions.into_inner().unwrap();
        if latest.is_subset(&served.versions.lock().unwrap()) {
            break latest;
        }
        assert!(Instant::now() < deadline, "the independent watcher did not catch up");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = stop_watch.send(true);
    watcher.await.unwrap();
    let served_all = served.versions.lock().unwrap().clone();

    // What the topic must hold: every served version, but a version superseded inside
    // the gap (after the cursor, up to the relist) by a later one that is published.
    let in_gap = |rv: u64| rv > cursor && rv <= relisted_by;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (seen, missing) = loop {
        let seen = published_async(&brokers, &topic).await;
        let mut newest: HashMap<&str, u64> = HashMap::new();
        for (uid, rv) in seen.keys() {
            let n = newest.entry(uid.as_str()).or_default();
            *n = (*n).max(*rv);
        }
        let missing: Vec<(String, u64)> = served_all
            .iter()
            .filter(|k| !seen.contains_key(*k))
            .filter(|(uid, rv)| !(in_gap(*rv) && newest.get(uid.as_str()).is_some_and(|n| n > rv)))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (seen, missing);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    collector.kill9();
    let superseded = served_all.iter().filter(|k| !seen.contains_key(*k)).count();
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let unknown: Vec<_> = seen.keys().filter(|k| !served_all.contains(*k)).collect();
    eprintln!(
        "served {} versions of {} Events (watcher: {} re-watches, {} relists); topic: {} versions; {superseded} superseded \
         inside the compaction gap ({cursor}, {relisted_by}], compacted at {compacted_at}; collector after it: gone {gone}, relists {relists} (log {})",
        served_all.len(),
        latest.len(),
        served.rewatches.load(Ordering::Relaxed),
        served.relists.load(Ordering::Relaxed),
        seen.len(),
        log.display()
    );
    assert!(missing.is_empty(), "{} served versions missing from the topic, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(doubled.is_empty(), "{} versions published more than once, e.g. {:?}", doubled.len(), &doubled[..doubled.len().min(5)]);
    assert!(latest.iter().all(|k| seen.contains_key(k)), "the latest version of every Event is published");
    if served.relists.load(Ordering::Relaxed) == 0 {
        assert!(unknown.is_empty(), "the topic holds versions never served: {:?}", &unknown[..unknown.len().min(5)]);
    }

    // The ground truth speaks of the server's objects, with their occurrences.
    let truth = &fleet.truth()[0].truth;
    let by_uid: BTreeMap<String, i64> = {
        let api = events.clone();
        let mut out = BTreeMap::new();
        for ev in api.list(&ListParams::default()).await.unwrap().items {
            let n = ev.series.as_ref().map(|s| s.count as i64).or(ev.deprecated_count.map(i64::from)).unwrap_or(1);
            out.insert(ev.metadata.uid.clone().unwrap(), n);
        }
        out
    };
    assert!(!truth.incidents.is_empty(), "scenarios ran");
    for (uid, n) in &truth.occurrences {
        assert_eq!(by_uid.get(uid), Some(n), "truth occurrences of {uid} against the server");
    }
    eprintln!("ground truth: {} incidents over {} scenario Events, all on the server with their occurrences", truth.incidents.len(), truth.occurrences.len());
    fleet.shutdown().await;
    drop(topics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_command_writes_through_real_api_servers_and_says_so() {
    let kube = RealApiServer::shared_async().await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["simulate".to_string(), "--target".into(), "real".into()];
    for name in ["east", "west"] {
        let kc = dir.path().join(format!("{name}.kubeconfig"));
        kube.write_kubeconfig(&kc, kube.admin_token()).unwrap();
        args.extend(["--kubeconfig".to_string(), kc.display().to_string()]);
    }
    args.extend(["--rate", "300", "--duration", "4s", "--seed", "5"].map(String::from));
    let out = tokio::task::spawn_blocking(move || Command::new(env!("CARGO_BIN_EXE_kevents")).args(&args).output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "simulate failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}");
    assert!(stdout.contains("cluster east on a kube-apiserver at https://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("cluster west on a kube-apiserver"), "{stdout}");
    let writes: Vec<&str> = stdout.lines().filter(|l| l.contains("API writes:")).collect();
    assert_eq!(writes.len(), 2, "one write summary per cluster: {stdout}");
    assert!(writes.iter().all(|l| l.contains("refused 0, abandoned 0")), "{stdout}");
    let done = stdout.lines().find(|l| l.starts_with("done: ")).expect("a summary line");
    let applied: u64 = done["done: ".len()..].split_whitespace().next().unwrap().parse().unwrap();
    // 4 s at 300/s; the real server takes that easily.
    assert!((1000..=1300).contains(&applied), "{done}");
    // The events are on the server.
    let events: Api<Event> = Api::all(kube.client().await);
    let listed = events.list(&ListParams::default().limit(1)).await.unwrap();
    assert!(listed.metadata.remaining_item_count.unwrap_or(0) + listed.items.len() as i64 >= applied as i64 / 2, "{done}");
}
