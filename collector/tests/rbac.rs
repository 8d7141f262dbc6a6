//! RBAC enforced: the collector runs on kube-apiserver with the ServiceAccount token of
//! `deploy/overlays/collector` (its RBAC objects applied as rendered by `kubectl
//! kustomize`), publishes every event, and holds its Lease; the same token is refused
//! (403) an Event create and a Secrets read.

mod common;
use common::cluster::{assert_topic_exactly, metric, wait_ready, Cluster, Server};
use common::start;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Secret};
use kevents_collector::config::{ApiKind, LeaderElectionConfig};
use kube::api::{Api, ListParams, PostParams};
use std::time::{Duration, Instant};
use testkit::services::{workspace_root, Services};

/// The overlay's RBAC documents (ServiceAccount, Role(Binding), ClusterRole(Binding)).
fn overlay_rbac(kubectl: &std::path::Path) -> String {
    let out = std::process::Command::new(kubectl)
        .args(["kustomize", "deploy/overlays/collector"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "kustomize: {}", String::from_utf8_lossy(&out.stderr));
    let all = String::from_utf8(out.stdout).unwrap();
    let kinds = ["ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];
    let docs: Vec<&str> = all
        .split("\n---\n")
        .filter(|d| d.lines().any(|l| kinds.iter().any(|k| l == format!("kind: {k}"))))
        .collect();
    assert_eq!(docs.len(), 5, "the overlay's RBAC objects:\n{all}");
    docs.join("\n---\n")
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_works_with_the_overlay_rbac_and_nothing_more() {
    let c = Cluster::start(Server::Real, "rbac").await;
    let real = c.real().unwrap();
    let rbac = overlay_rbac(&real.kubectl_path());
    tokio::task::block_in_place(|| {
        real.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kevents\n").unwrap();
        real.apply(&rbac).unwrap();
    });
    let token = tokio::task::block_in_place(|| real.create_token("kevents", "kevents-collector")).unwrap();
    let sa_kubeconfig = c.dir().join("sa.kubeconfig");
    real.write_kubeconfig(&sa_kubeconfig, &token).unwrap();

    // Refused: writing Events, reading Secrets.
    let sa = real.client_with_token(&token).await;
    let ev = Event { metadata: kube::api::ObjectMeta { name: Some("x.1".into()), ..Default::default() }, ..Default::default() };
    let err = Api::<Event>::namespaced(sa.clone(), &c.ns).create(&PostParams::default(), &ev).await.unwrap_err();
    assert_eq!(code(err), 403, "Event create");
    for ns in ["kevents", "kube-system"] {
        let err = Api::<Secret>::namespaced(sa.clone(), ns).list(&ListParams::default()).await.unwrap_err();
        assert_eq!(code(err), 403, "Secrets list in {ns}");
        let err = Api::<Secret>::namespaced(sa.clone(), ns).get("anything").await.unwrap_err();
        assert_eq!(code(err), 403, "Secret get in {ns}");
    }
    // A Lease of another name is refused too (the Role names kevents-collector).
    let err = Api::<Lease>::namespaced(sa.clone(), "kevents").get("other").await.unwrap_err();
    assert_eq!(code(err), 403, "foreign Lease get");

    // Allowed: the collector, cluster-wide as the overlay deploys it, with its Lease.
    let topics = Services::get().create_topics("rbac", &[("raw", 1)]).await;
    let topic = topics.name("raw").to_string();
    let mut cfg = c.collector_config("rbac", &topic);
    cfg.kubeconfig = Some(sa_kubeconfig);
    cfg.namespaces = vec![];
    cfg.label_selector = Some(format!("run={}", c.ns)); // only this test's events
    cfg.leader_election = Some(LeaderElectionConfig {
        namespace: "kevents".into(),
        lease_name: "kevents-collector".into(),
        identity: Some("rbac-replica".into()),
        lease_duration_secs: 15,
        renew_deadline_secs: 10,
        retry_period_secs: 2,
    });
    let t0 = Instant::now();
    let run = start(cfg.clone());
    wait_ready(cfg.listen).await;
    println!("ready (leader, watching) {:.2?} after start", t0.elapsed());
    let mut want = Vec::new();
    let other = c.namespace("rbac-b").await;
    for i in 0..6 {
        let ns = if i % 2 == 0 { &c.ns } else { &other };
        let shape = if i % 3 == 0 { ApiKind::CoreV1 } else { ApiKind::EventsV1 };
        want.push(c.create(shape, ns, &format!("e-{i}.1"), "Warning", &[("run", &c.ns)]).await);
        want.push(c.bump(shape, ns, &format!("e-{i}.1")).await);
    }
    let seen = assert_topic_exactly(&topic, &c.uid, &want).await;
    assert_eq!(metric(cfg.listen, "kevents_collector_leader").await, 1.0);
    let lease = Api::<Lease>::namespaced(c.client.clone(), "kevents").get("kevents-collector").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("rbac-replica"));
    println!("with the ServiceAccount token: {} versions exactly once in {:.2?}, Lease held", seen.len(), t0.elapsed());
    tokio::time::timeout(Duration::from_secs(30), run.stop()).await.unwrap();
    drop(topics);
}
