//! The test API server driven by the real kube-rs client, through a kubeconfig file, as the
//! collector will drive it: lists with paging and consistent continue, both API shapes,
//! watches (ADDED/MODIFIED/DELETED, RV 0, bookmarks), selectors, Leases with optimistic
//! concurrency, cluster identity, and kube-runtime's watcher (paged and streaming lists).
//! Failure modes are in `apiserver_faults.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kevents_testkit::apiserver::ServerOptions;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

mod common;
use common::{ev, start};

fn labeled(mut e: Event, labels: &[(&str, &str)]) -> Event {
    e.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    e
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn list_pages_with_continue_in_a_consistent_snapshot() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    for i in 0..25 {
        store.apply(ev(
            if i % 2 == 0 { "a" } else { "b" },
            &format!("p{i:02}.1"),
            "Pod",
            "Started",
            "Normal",
        ));
    }
    let api: Api<Event> = Api::all(client.clone());
    let first = api.list(&ListParams::default().limit(10)).await.unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.metadata.remaining_item_count, Some(15));
    let list_rv = first.metadata.resource_version.clone().unwrap();
    assert_eq!(list_rv, store.current_rv().to_string());
    // Changes after the first page must not show in the rest of the snapshot.
    store.delete("b", "p23.1");
    store.apply(ev("z", "late.1", "Pod", "Started", "Normal"));
    let mut names: Vec<String> = first
        .items
        .iter()
        .map(|e| e.metadata.name.clone().unwrap())
        .collect();
    let mut token = first.metadata.continue_.clone();
    while let Some(t) = token {
        let page = api
            .list(&ListParams::default().limit(10).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version.as_deref(),
            Some(list_rv.as_str())
        );
        names.extend(page.items.iter().map(|e| e.metadata.name.clone().unwrap()));
        token = page.metadata.continue_.clone();
    }
    assert_eq!(names.len(), 25);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 25);
    assert!(names.contains(&"p23.1".to_string()) && !names.contains(&"late.1".to_string()));
    // Every item carries its own RV; a fresh list sees the new state.
    assert!(first.items.iter().all(|e| e
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse::<u64>()
        .is_ok()));
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        25
    );
    let ns_a: Api<Event> = Api::namespaced(client.clone(), "a");
    assert_eq!(
        ns_a.list(&ListParams::default()).await.unwrap().items.len(),
        13
    );

    // A continue token whose snapshot was compacted: 410 Expired, like etcd.
    let first = api.list(&ListParams::default().limit(5)).await.unwrap();
    store.apply(ev("a", "p00.1", "Pod", "Again", "Normal"));
    store.compact();
    let err = api
        .list(
            &ListParams::default()
                .limit(5)
                .continue_token(first.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(410));
}

#[tokio::test]
async fn both_shapes_and_single_get() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    server
        .store()
        .apply(ev("a", "web.1", "Pod", "BackOff", "Warning"));
    let core: Api<Event> = Api::namespaced(client.clone(), "a");
    let new: Api<events::Event> = Api::namespaced(client.clone(), "a");
    let c = core.get("web.1").await.unwrap();
    let n = new.get("web.1").await.unwrap();
    assert_eq!(c.message.as_deref(), Some("BackOff happened"));
    assert_eq!(n.note, c.message);
    assert_eq!(n.regarding.as_ref().unwrap().name.as_deref(), Some("web"));
    assert_eq!(n.deprecated_count, Some(1));
    assert_eq!(n.metadata.uid, c.metadata.uid);
    let all: Api<events::Event> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let err = core.get("nope").await.unwrap_err();
    assert_eq!(status_code(&err), Some(404));
}

#[tokio::test]
async fn watch_sees_added_modified_deleted_in_both_shapes() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    store.apply(ev("a", "old.1", "Pod", "Pulled", "Normal"));
    let rv = store.current_rv().to_string();
    let core: Api<Event> = Api::all(client.clone());
    let new: Api<events::Event> = Api::all(client.clone());
    let wp = WatchParams::default().timeout(3);
    let core_stream = core.watch(&wp, &rv).await.unwrap();
    let new_stream = new.watch(&wp, &rv).await.unwrap();
    store.apply(ev("a", "x.1", "Pod", "Pulled", "Normal"));
    store.apply(ev("a", "y.1", "Pod", "Pulled", "Normal"));
    let mut again = ev("a", "x.1", "Pod", "Pulled", "Normal");
    again.count = Some(2);
    store.apply(again);
    store.delete("a", "y.1");
    let core_events: Vec<_> = core_stream.take(4).try_collect().await.unwrap();
    let kinds: Vec<&str> = core_events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "A",
            WatchEvent::Modified(m) => {
                assert_eq!(m.count, Some(2));
                "M"
            }
            WatchEvent::Deleted(d) => {
                assert_eq!(
                    d.metadata.resource_version,
                    Some(store.current_rv().to_string())
                );
                "D"
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["A", "A", "M", "D"]);
    let new_events: Vec<_> = new_stream.take(4).try_collect().await.unwrap();
    match &new_events[2] {
        WatchEvent::Modified(e) => assert_eq!(e.deprecated_count, Some(2)),
        other => panic!("unexpected {other:?}"),
    }

    // RV "0": synthetic ADDED for what exists (old.1 and x.1), then live changes.
    let mut s = core.watch(&wp, "0").await.unwrap().boxed();
    let mut added = Vec::new();
    for _ in 0..2 {
        match s.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(e) => added.push(e.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    added.sort();
    assert_eq!(added, ["old.1", "x.1"]);
}

#[tokio::test]
async fn bookmarks_carry_progress() {
    let opts = ServerOptions {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let (server, client, _d) = start(opts).await;
    let store = server.store();
    let api: Api<Event> = Api::all(client);
    let rv = store.current_rv().to_string();
    // Filtered watch: the write below is invisible to it, but bookmarks still move past it.
    let wp = WatchParams::default().timeout(5).fields("type=Warning");
    let mut s = api.watch(&wp, &rv).await.unwrap().boxed();
    let written = store.apply(ev("a", "n.1", "Pod", "Pulled", "Normal"));
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        assert!(Instant::now() < deadline, "no bookmark past the write");
        match s.try_next().await.unwrap().unwrap() {
            WatchEvent::Bookmark(b) => {
                if b.metadata.resource_version.parse::<u64>().unwrap() >= written {
                    break;
                }
            }
            other => panic!("filtered watch got {other:?}"),
        }
    }
}

#[tokio::test]
async fn field_and_label_selectors_on_list_and_watch() {
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    store.apply(labeled(
        ev("a", "p.1", "Pod", "BackOff", "Warning"),
        &[("app", "web")],
    ));
    store.apply(labeled(
        ev("a", "p.2", "Pod", "Pulled", "Normal"),
        &[("app", "db")],
    ));
    store.apply(labeled(
        ev("b", "n.1", "Node", "NodeNotReady", "Warning"),
        &[("tier", "infra")],
    ));
    let core: Api<Event> = Api::all(client.clone());
    let count = |lp: ListParams| {
        let core = core.clone();
        async move { core.list(&lp).await.map(|l| l.items.len()) }
    };
    assert_eq!(
        count(ListParams::default().fields("type=Warning"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        count(ListParams::default().fields("type==Warning,involvedObject.kind=Pod"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(ListParams::default().fields("reason!=BackOff"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        count(ListParams::default().fields("metadata.namespace=b"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(ListParams::default().labels("app in (web,db)"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        count(ListParams::default().labels("app notin (web)"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        count(ListParams::default().labels("!app")).await.unwrap(),
        1
    );
    assert_eq!(
        count(ListParams::default().labels("tier")).await.unwrap(),
        1
    );
    let err = count(ListParams::default().fields("spec.foo=1"))
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(400));
    let new: Api<events::Event> = Api::all(client.clone());
    let l = new
        .list(&ListParams::default().fields("regarding.kind=Node"))
        .await
        .unwrap();
    assert_eq!(l.items.len(), 1);
    assert_eq!(
        status_code(
            &new.list(&ListParams::default().fields("involvedObject.kind=Node"))
                .await
                .unwrap_err()
        ),
        Some(400)
    );

    // Watches filter too: only the Warning on a Pod in namespace a comes through.
    let ns_a: Api<Event> = Api::namespaced(client, "a");
    let rv = store.current_rv().to_string();
    let wp = WatchParams::default()
        .timeout(2)
        .fields("type=Warning")
        .labels("app=web");
    let s = ns_a.watch(&wp, &rv).await.unwrap();
    store.apply(labeled(
        ev("b", "p.9", "Pod", "BackOff", "Warning"),
        &[("app", "web")],
    ));
    store.apply(labeled(
        ev("a", "p.8", "Pod", "BackOff", "Normal"),
        &[("app", "web")],
    ));
    store.apply(labeled(
        ev("a", "p.7", "Pod", "BackOff", "Warning"),
        &[("app", "db")],
    ));
    store.apply(labeled(
        ev("a", "p.6", "Pod", "BackOff", "Warning"),
        &[("app", "web")],
    ));
    let got: Vec<_> = s.try_collect().await.unwrap();
    let names: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(e) => e.metadata.name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["p.6"]);
}

#[tokio::test]
async fn leases_have_optimistic_concurrency() {
    let (_server, client, _d) = start(ServerOptions::default()).await;
    let api: Api<Lease> = Api::namespaced(client, "kevents");
    assert_eq!(
        status_code(&api.get("leader").await.unwrap_err()),
        Some(404)
    );
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("leader".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    let created = api.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(
        status_code(
            &api.create(&PostParams::default(), &lease)
                .await
                .unwrap_err()
        ),
        Some(409)
    );
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let updated = api
        .replace("leader", &PostParams::default(), &mine)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    // A second writer still holding the old RV loses.
    let err = api
        .replace("leader", &PostParams::default(), &created)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("{other:?}"),
    }
    let now = api.get("leader").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("b"));
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

#[tokio::test]
async fn cluster_identity_and_version() {
    let opts = ServerOptions {
        cluster_uid: Some("0e6f1c3a-1111-4222-8333-444455556666".into()),
        ..Default::default()
    };
    let (server, client, _d) = start(opts).await;
    let ns: Api<Namespace> = Api::all(client.clone());
    let ks = ns.get("kube-system").await.unwrap();
    assert_eq!(
        ks.metadata.uid.as_deref(),
        Some("0e6f1c3a-1111-4222-8333-444455556666")
    );
    assert_eq!(server.cluster_uid(), "0e6f1c3a-1111-4222-8333-444455556666");
    let v = client.apiserver_version().await.unwrap();
    assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "33"));
}

#[tokio::test]
async fn kube_runtime_watcher_lists_then_follows() {
    use kube::runtime::watcher::{watcher, Config as WatcherConfig, Event as WEvent};
    let (server, client, _d) = start(ServerOptions::default()).await;
    let store = server.store();
    for i in 0..7 {
        store.apply(ev("a", &format!("e{i}.1"), "Pod", "Pulled", "Normal"));
    }
    let api: Api<Event> = Api::all(client);
    let mut w = watcher(api, WatcherConfig::default().page_size(3)).boxed();
    let mut initial = 0;
    loop {
        match w.try_next().await.unwrap().unwrap() {
            WEvent::InitApply(_) => initial += 1,
            WEvent::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, 7);
    store.apply(ev("a", "live.1", "Pod", "Pulled", "Normal"));
    match w.try_next().await.unwrap().unwrap() {
        WEvent::Apply(e) => assert_eq!(e.metadata.name.as_deref(), Some("live.1")),
        other => panic!("unexpected {other:?}"),
    }
    // Streaming list (sendInitialEvents) gives the same initial set.
    let api: Api<Event> = Api::all(
        Client::try_from(
            Config::from_custom_kubeconfig(
                Kubeconfig::from_yaml(&server.kubeconfig_yaml("s")).unwrap(),
                &KubeConfigOptions::default(),
            )
            .await
            .unwrap(),
        )
        .unwrap(),
    );
    let mut w = watcher(api, WatcherConfig::default().streaming_lists()).boxed();
    let mut initial = 0;
    loop {
        match w.try_next().await.unwrap().unwrap() {
            WEvent::InitApply(_) => initial += 1,
            WEvent::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, 8);
}
