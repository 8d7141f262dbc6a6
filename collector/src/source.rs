//! The API server side of the watch: list and watch Events through kube-rs, in
//! either API shape, normalized on arrival. No informer, no cache: objects are
//! converted and handed on one by one, so memory does not grow with the number of
//! events in the cluster.

use futures::{stream::BoxStream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::Status;
use schemas::model::NormalizedEvent;
use schemas::records::WatchKind;

use crate::config::ApiKind;

/// One item of a watch stream. Not boxed: nearly every item is an object.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Change {
    Object(WatchKind, NormalizedEvent),
    Bookmark(String),
    /// An `ERROR` line (e.g. 410 Expired).
    Error(Box<Status>),
}

/// One page of a list.
pub struct Page {
    pub items: Vec<NormalizedEvent>,
    pub resource_version: String,
    pub continue_token: Option<String>,
}

#[derive(Clone)]
enum Shape {
    EventsV1(Api<events::Event>),
    CoreV1(Api<core::Event>),
}

/// Lists and watches one scope (all namespaces, or one namespace).
#[derive(Clone)]
pub struct EventSource {
    shape: Shape,
    field_selector: Option<String>,
    label_selector: Option<String>,
    page_size: u32,
}

impl EventSource {
    pub fn new(
        client: kube::Client,
        api: ApiKind,
        namespace: Option<&str>,
        field_selector: Option<String>,
        label_selector: Option<String>,
    ) -> Self {
        let shape = match (api, namespace) {
            (ApiKind::EventsV1, None) => Shape::EventsV1(Api::all(client)),
            (ApiKind::EventsV1, Some(ns)) => Shape::EventsV1(Api::namespaced(client, ns)),
            (ApiKind::CoreV1, None) => Shape::CoreV1(Api::all(client)),
            (ApiKind::CoreV1, Some(ns)) => Shape::CoreV1(Api::namespaced(client, ns)),
        };
        EventSource {
            shape,
            field_selector,
            label_selector,
            page_size: 500,
        }
    }

    fn list_params(&self, cont: Option<String>) -> ListParams {
        let mut lp = ListParams::default().limit(self.page_size);
        lp.field_selector = self.field_selector.clone();
        lp.label_selector = self.label_selector.clone();
        lp.continue_token = cont;
        lp
    }

    /// One page of a consistent list (the first page fixes the snapshot).
    pub async fn list_page(&self, cont: Option<String>) -> Result<Page, kube::Error> {
        let lp = self.list_params(cont);
        let (items, meta) = match &self.shape {
            Shape::EventsV1(api) => {
                let l = api.list(&lp).await?;
                (l.items.iter().map(schemas::convert::from_events_v1).collect(), l.metadata)
            }
            Shape::CoreV1(api) => {
                let l = api.list(&lp).await?;
                (l.items.iter().map(schemas::convert::from_core_v1).collect(), l.metadata)
            }
        };
        Ok(Page {
            items,
            resource_version: meta.resource_version.unwrap_or_default(),
            continue_token: meta.continue_.filter(|c| !c.is_empty()),
        })
    }

    /// Open a watch from `rv` with bookmarks.
    pub async fn watch(
        &self,
        rv: &str,
        timeout_secs: u32,
    ) -> Result<BoxStream<'static, Result<Change, kube::Error>>, kube::Error> {
        let mut wp = WatchParams::default().timeout(timeout_secs);
        wp.field_selector = self.field_selector.clone();
        wp.label_selector = self.label_selector.clone();
        Ok(match &self.shape {
            Shape::EventsV1(api) => api
                .watch(&wp, rv)
                .await?
                .map_ok(|e| change(e, schemas::convert::from_events_v1))
                .boxed(),
            Shape::CoreV1(api) => api
                .watch(&wp, rv)
                .await?
                .map_ok(|e| change(e, schemas::convert::from_core_v1))
                .boxed(),
        })
    }
}

fn change<K>(e: WatchEvent<K>, convert: fn(&K) -> NormalizedEvent) -> Change {
    match e {
        WatchEvent::Added(o) => Change::Object(WatchKind::Added, convert(&o)),
        WatchEvent::Modified(o) => Change::Object(WatchKind::Modified, convert(&o)),
        WatchEvent::Deleted(o) => Change::Object(WatchKind::Deleted, convert(&o)),
        WatchEvent::Bookmark(b) => Change::Bookmark(b.metadata.resource_version),
        WatchEvent::Error(s) => Change::Error(s),
    }
}

/// Read the cluster UID: the UID of the `kube-system` namespace.
pub async fn cluster_uid(client: kube::Client) -> Result<String, kube::Error> {
    let ns: Api<core::Namespace> = Api::all(client);
    let n = ns.get("kube-system").await?;
    Ok(n.metadata.uid.unwrap_or_default())
}
