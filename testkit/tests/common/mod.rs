//! Helpers shared by the test API server's integration tests: a server with a
//! kube-rs client connected through a real kubeconfig file, and an Event builder.

#![allow(dead_code)] // each test binary uses its own subset

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kevents_testkit::apiserver::{ApiServer, ServerOptions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub async fn start(opts: ServerOptions) -> (ApiServer, Client, tempfile::TempDir) {
    let server = ApiServer::start(opts).await.expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "sim-1").unwrap();
    let kc = Kubeconfig::read_from(&path).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(cfg).unwrap();
    (server, client, dir)
}

pub fn ev(ns: &str, name: &str, kind: &str, reason: &str, ty: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some(kind.into()),
            name: Some(name.split('.').next().unwrap().into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(format!("{reason} happened")),
        type_: Some(ty.into()),
        count: Some(1),
        ..Default::default()
    }
}
