//! The test API server's failure modes and load, seen by the real kube-rs client: 410 after
//! compaction, re-watch after dropped connections, the empty-200 case (kubernetes#104171),
//! 429/500, TTL expiry, an etcd-restore RV reset, the silent connection, the HTTP admin
//! endpoint, and throughput.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Event;
use kevents_testkit::apiserver::ServerOptions;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::Api;

mod common;
use common::{ev, start};

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn watch_from_compacted_rv_gets_410() {
    let opts = ServerOptions {
        compaction_window: 5,
        ..Default::default()
    };
    let (server, client, _d) = start(opts).await;
    let store = server.store();
    let old = store.current_rv();
    for i in 0..10 {
        store.apply(ev("a", &format!("e{i}.1"), "Pod", "Pulled", "Normal"));
    }
    let api: Api<Event> = Api::all(client);
    let wp = WatchParams::default().timeout(2);
    let got: Vec<_> = api
        .watch(&wp, &old.to_string())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    match &got[0] {
        WatchEvent::Error(s) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    // Inside the window resume works and delivers exactly the retained tail.
    let tail = (store.current_rv() - 3).to_string();
    let got: Vec<_> = api
        .watch(&wp, &tail)
        .await
        .unwrap()
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    // Forced 410 on the next watch, then normal again.
    server.faults().expire_next_watches(1);
    let now = store.current_rv().to_string();
    let first: Vec<_> = api
        .watch(&wp, &now)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(matches!(&first[..], [WatchEvent::Error(s)] if s.code == 410));
    assert_eq!(server.stats().watch_expired, 2);
}

/// Re-watches from the last seen RV until `expected` distinct objects were ADDED.
async fn follow(api: Api<Event>, mut rv: String, expected: usize) -> (usize, usize) {
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut watches = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} seen",
            seen.len()
        );
        watches += 1;
        let Ok(stream) = api.watch(&WatchParams::default().timeout(10), &rv).await else {
            continue;
        };
        let mut stream = stream.boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(WatchEvent::Added(e)) => {
                    rv = e.metadata.resource_version.clone().unwrap();
                    if !seen.insert(e.metadata.name.unwrap()) {
                        duplicates += 1;
                    }
                }
                Ok(WatchEvent::Bookmark(b)) => rv = b.metadata.resource_version,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => break, // connection dropped: re-watch from rv
            }
        }
    }
    (duplicates, watches)
}

#[tokio::test]
async fn rewatch_after_dropped_connections_misses_nothing() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    let api: Api<Event> = Api::all(client);
    let rv = store.current_rv().to_string();
    let follower = tokio::spawn(follow(api, rv, 3000));
    server
        .faults()
        .drop_watches_every(Some(Duration::from_millis(40)));
    let writer = store.clone();
    tokio::spawn(async move {
        for i in 0..3000 {
            writer.apply(ev("a", &format!("e{i}.1"), "Pod", "Pulled", "Normal"));
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .await
    .unwrap();
    let (duplicates, watches) = follower.await.unwrap();
    server.faults().drop_watches_every(None);
    assert_eq!(duplicates, 0);
    assert!(watches > 1, "the follower never had to re-watch");
    assert!(server.stats().watches_dropped >= 1);
}

#[tokio::test]
async fn stale_rv_empty_200_is_observable() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    let old = store.current_rv().to_string();
    store.apply(ev("a", "e.1", "Pod", "Pulled", "Normal"));
    store.compact();
    server.faults().set_stale_watch_empty_200(true);
    let api: Api<Event> = Api::all(client);
    let wp = WatchParams::default().timeout(5);
    let start = Instant::now();
    for _ in 0..3 {
        let got: Vec<_> = api
            .watch(&wp, &old)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(got.is_empty(), "empty 200 expected, got {got:?}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the empty watches must end at once"
    );
    assert_eq!(server.stats().watch_empty, 3);
    server.faults().set_stale_watch_empty_200(false);
    let got: Vec<_> = api
        .watch(&wp, &old)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(matches!(&got[..], [WatchEvent::Error(s)] if s.code == 410));
    // The one-shot variant, from a valid RV.
    server.faults().empty_next_watches(1);
    let now = store.current_rv().to_string();
    assert!(api
        .watch(&wp, &now)
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .is_empty());
}

/// The silent connection: accepted, then nothing — no line, no end — even past the
/// watch's `timeoutSeconds`, both for a watch silenced mid-stream and for a new one.
#[tokio::test]
async fn silent_watches_write_nothing_and_never_end() {
    // Bookmarks at the default 60 s: none can be in flight when the watch is silenced.
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    let api: Api<Event> = Api::all(client);
    let wp = WatchParams::default().timeout(1);
    let mut live = api.watch(&wp, &store.current_rv().to_string()).await.unwrap().boxed();
    store.apply(ev("a", "before.1", "Pod", "Pulled", "Normal"));
    assert!(matches!(live.next().await, Some(Ok(WatchEvent::Added(_)))));
    server.faults().silence_watches_now();
    // Let the watch task see the signal before the next write.
    while server.stats().watches_silenced < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store.apply(ev("a", "after.1", "Pod", "Pulled", "Normal"));
    // 3 s: three times its timeoutSeconds.
    let r = tokio::time::timeout(Duration::from_secs(3), live.next()).await;
    assert!(r.is_err(), "a silenced watch wrote or ended: {r:?}");

    server.faults().silent_next_watches(1);
    let mut fresh = api.watch(&wp, &store.current_rv().to_string()).await.unwrap().boxed();
    store.apply(ev("a", "later.1", "Pod", "Pulled", "Normal"));
    let r = tokio::time::timeout(Duration::from_secs(3), fresh.next()).await;
    assert!(r.is_err(), "a silent watch wrote or ended: {r:?}");
    assert_eq!(server.stats().watches_silenced, 2);
    // The fault was for one watch: the next one streams (and ends at its timeout).
    let rv = (store.current_rv() - 1).to_string();
    let got: Vec<_> = api.watch(&wp, &rv).await.unwrap().try_collect().await.unwrap();
    assert!(matches!(got.first(), Some(WatchEvent::Added(e)) if e.metadata.name.as_deref() == Some("later.1")), "{got:?}");
}

#[tokio::test]
async fn throttling_is_retried_and_500s_surface() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let api: Api<Event> = Api::all(client);
    server.faults().throttle_next(2, 1);
    let t = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "kube honours Retry-After"
    );
    assert_eq!(server.stats().throttled, 2);
    server.faults().fail_next(1);
    assert_eq!(
        status_code(&api.list(&ListParams::default()).await.unwrap_err()),
        Some(500)
    );
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(server.stats().failed, 1);
}

#[tokio::test]
async fn ttl_expiry_sends_deleted() {
    let opts = ServerOptions {
        event_ttl: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let (server, client, _d) = start(opts).await;
    let api: Api<Event> = Api::all(client);
    let rv = server.store().current_rv().to_string();
    let s = api
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap();
    server
        .store()
        .apply(ev("a", "short.1", "Pod", "Pulled", "Normal"));
    let got: Vec<_> = s.take(2).try_collect().await.unwrap();
    assert!(matches!(
        &got[..],
        [WatchEvent::Added(_), WatchEvent::Deleted(_)]
    ));
    assert_eq!(server.store().len(), 0);
}

#[tokio::test]
async fn rv_reset_makes_remembered_rvs_future() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    let backup = store.apply(ev("a", "kept.1", "Pod", "Pulled", "Normal"));
    for i in 0..5 {
        store.apply(ev("a", &format!("lost{i}.1"), "Pod", "Pulled", "Normal"));
    }
    let remembered = store.current_rv();
    let api: Api<Event> = Api::all(client);
    let open = api
        .watch(&WatchParams::default().timeout(5), &remembered.to_string())
        .await
        .unwrap();
    store.reset_resource_version(backup);
    // The open watch ends (apiserver restart); the list shows the restored state.
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(2), open.try_collect::<Vec<_>>())
        .await
        .unwrap()
        .unwrap();
    assert!(got.is_empty());
    let l = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.metadata.resource_version, Some(backup.to_string()));
    // Watching from the remembered (now future) RV: silence until the counter passes it.
    let s = api
        .watch(
            &WatchParams::default().timeout(1).disable_bookmarks(),
            &remembered.to_string(),
        )
        .await
        .unwrap();
    store.apply(ev("a", "after.1", "Pod", "Pulled", "Normal"));
    let got: Vec<_> = s.try_collect().await.unwrap();
    assert!(
        got.is_empty(),
        "a write below the remembered RV must not be delivered: {got:?}"
    );
}

#[tokio::test]
async fn admin_endpoint_drives_faults() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let req = http::Request::post(format!("{}/_testkit/faults", server.url()))
        .header("content-type", "application/json")
        .body(r#"{"fail_next":1,"compact":true}"#.as_bytes().to_vec())
        .unwrap();
    let state: serde_json::Value = client.request(req).await.unwrap();
    assert_eq!(state["faults"]["fail_next"], 1);
    assert_eq!(state["compacted_rv"], server.store().current_rv());
    let api: Api<Event> = Api::all(client);
    assert_eq!(
        status_code(&api.list(&ListParams::default()).await.unwrap_err()),
        Some(500)
    );
}

/// The throughput the simulator needs: ≥ 20,000 Event writes/s in one process over three
/// servers while a kube-rs watcher follows each server (writers never wait for watchers),
/// and every watcher still gets every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustains_twenty_thousand_writes_per_second_with_watchers() {
    const PER_SERVER: usize = 20_000;
    let mut servers = Vec::new();
    let mut followers = Vec::new();
    for _ in 0..3 {
        let (server, client, dir) = start(ServerOptions::default()).await;
        let api: Api<Event> = Api::all(client);
        let rv = server.store().current_rv().to_string();
        followers.push(tokio::spawn(follow(api, rv, PER_SERVER)));
        servers.push((server, dir));
    }
    let t = Instant::now();
    let writers: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(s, (server, _))| {
            let store = server.store();
            tokio::task::spawn_blocking(move || {
                for i in 0..PER_SERVER {
                    let mut e = ev("default", &format!("pod-{s}-{i}.17a2b3c4d5e6f7"), "Pod", "BackOff", "Warning");
                    e.message = Some(format!("Back-off restarting failed container app in pod pod-{s}-{i}_default({i:08x}-aaaa-bbbb-cccc-dddddddddddd)"));
                    e.source = Some(k8s_openapi::api::core::v1::EventSource { component: Some("kubelet".into()), host: Some("node-1".into()) });
                    store.apply(e);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let rate = (3 * PER_SERVER) as f64 / t.elapsed().as_secs_f64();
    let lagged: u64 = servers.iter().map(|(s, _)| s.stats().watchers_lagged).sum();
    eprintln!("writes/s over 3 servers with watchers: {rate:.0} (slow watchers closed: {lagged})");
    assert!(rate >= 20_000.0, "only {rate:.0} writes/s");
    for f in followers {
        let (duplicates, _watches) = f.await.unwrap();
        assert_eq!(duplicates, 0);
    }
}
