//! Event collection requests: list (with `limit`/`continue`, `resourceVersion` +
//! `resourceVersionMatch`, selectors) and GET by name, in both API shapes. A `watch=1`
//! request is handed to `watch.rs`.
//!
//! resourceVersion semantics (api-concepts "Resource versions", etcd3 store `GetList`):
//! unset → a consistent read at the newest RV; `0` → any RV (we serve the newest);
//! `N` + `NotOlderThan` → the newest, after waiting up to 3 s for the store to reach `N`
//! (then 504 "Too large resource version"); `N` + `Exact` (or legacy `N` with `limit`) →
//! the snapshot at `N`, 410 if compacted. A continue token pins the snapshot of the first
//! page; once compacted it gets 410 with an inconsistent continuation token, like etcd.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use super::selectors::{FieldSelector, Filter, LabelSelector};
use super::shapes::Shape;
use super::status::{json_response, ApiError};
use super::store::{Key, RvError};
use super::{faults::Stats, watch, AppState};

/// Query parameters of an Event collection request (list or watch).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventsQuery {
    pub watch: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    pub limit: Option<String>,
    #[serde(rename = "continue")]
    pub continue_: Option<String>,
    pub timeout_seconds: Option<String>,
    pub allow_watch_bookmarks: Option<String>,
    pub send_initial_events: Option<String>,
}

/// Go's `strconv.ParseBool`, which the apiserver uses for boolean query parameters.
pub(crate) fn parse_bool(v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "strconv.ParseBool: parsing \"{other}\": invalid syntax"
        ))),
    }
}

pub(crate) fn parse_rv(v: &str) -> Result<u64, ApiError> {
    v.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version \"{v}\"")))
}

pub(crate) fn build_filter(
    q: &EventsQuery,
    shape: Shape,
    namespace: Option<String>,
) -> Result<Filter, ApiError> {
    let fields = FieldSelector::parse(q.field_selector.as_deref().unwrap_or(""), shape)
        .map_err(|e| ApiError::bad_request(e.0))?;
    let labels = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.0))?;
    Ok(Filter {
        namespace,
        fields,
        labels,
    })
}

/// The continue token's JSON, as `k8s.io/apiserver/pkg/storage` encodes it.
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(rv: i64, after: &Key) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: format!("{}/{}\u{0}", after.0, after.1),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&t).expect("token serializes"))
}

fn decode_continue(token: &str) -> Result<(i64, Key), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.v != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let start = t.start.strip_suffix('\u{0}').ok_or_else(bad)?;
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((t.rv, (ns.to_string(), name.to_string())))
}

/// How long a NotOlderThan read waits for a future RV (the cacher's 3 s).
const TOO_LARGE_WAIT: Duration = Duration::from_secs(3);

async fn list(
    app: &AppState,
    shape: Shape,
    namespace: Option<String>,
    q: &EventsQuery,
) -> Result<Response, ApiError> {
    Stats::bump(&app.stats.lists);
    let filter = build_filter(q, shape, namespace)?;
    let limit = match q.limit.as_deref() {
        None | Some("") => None,
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit \"{l}\"")))?,
        ),
    }
    .filter(|l| *l > 0)
    .map(|l| l as usize);
    let rv = q.resource_version.as_deref().filter(|s| !s.is_empty());
    let rv_match = q
        .resource_version_match
        .as_deref()
        .filter(|s| !s.is_empty());
    let store = &app.store;

    let (at, after) = if let Some(token) = q.continue_.as_deref().filter(|s| !s.is_empty()) {
        if rv.is_some_and(|v| v != "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (trv, key) = decode_continue(token)?;
        ((trv > 0).then_some(trv as u64), Some(key))
    } else {
        let at = match (rv, rv_match) {
            (None, Some(_)) => {
                return Err(ApiError::invalid("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"))
            }
            (None | Some("0"), None | Some("NotOlderThan")) => None,
            (Some("0"), Some("Exact")) => {
                return Err(ApiError::invalid("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
            }
            (Some(v), Some("Exact")) => Some(parse_rv(v)?),
            // Legacy semantics: an RV with a limit and no match is an exact read.
            (Some(v), None) if limit.is_some() => Some(parse_rv(v)?),
            (Some(v), None | Some("NotOlderThan")) => {
                wait_for_rv(app, parse_rv(v)?).await?;
                None
            }
            (_, Some(other)) => {
                return Err(ApiError::invalid(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
                )))
            }
        };
        if let Some(at) = at {
            if at > store.current_rv() {
                return Err(ApiError::too_large_rv(at, store.current_rv()));
            }
        }
        (at, None)
    };

    let page = match store.list_page(&filter, at, after.as_ref(), limit) {
        Ok(p) => p,
        Err(RvError::TooOld { compacted_through }) => {
            return Err(match after {
                Some(k) => ApiError::continue_expired(Some(encode_continue(-1, &k))),
                None => ApiError::too_old(at.unwrap_or(0), compacted_through),
            })
        }
    };

    let mut body = BytesMut::with_capacity(
        256 + page
            .items
            .iter()
            .map(|i| i.item(shape).len() + 1)
            .sum::<usize>(),
    );
    body.put_slice(
        format!(
            r#"{{"kind":"EventList","apiVersion":"{}","metadata":{{"resourceVersion":"{}""#,
            shape.api_version(),
            page.rv
        )
        .as_bytes(),
    );
    if let Some(k) = &page.continue_after {
        body.put_slice(
            format!(r#","continue":"{}""#, encode_continue(page.rv as i64, k)).as_bytes(),
        );
    }
    if let Some(n) = page.remaining {
        body.put_slice(format!(r#","remainingItemCount":{n}"#).as_bytes());
    }
    body.put_slice(br#"},"items":["#);
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(item.item(shape));
    }
    body.put_slice(b"]}");
    Ok(json_response(body.freeze()))
}

/// Waits (like the cacher) for the store to reach `rv`, else 504 Too large resource version.
async fn wait_for_rv(app: &AppState, rv: u64) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + TOO_LARGE_WAIT;
    while app.store.current_rv() < rv {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::too_large_rv(rv, app.store.current_rv()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn collection(
    app: AppState,
    shape: Shape,
    namespace: Option<String>,
    q: EventsQuery,
) -> Response {
    let result = match parse_bool(q.watch.as_deref()) {
        Ok(true) => match build_filter(&q, shape, namespace) {
            Ok(filter) => return watch::serve(app, shape, filter, q).await,
            Err(e) => Err(e),
        },
        Ok(false) => list(&app, shape, namespace, &q).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| e.into_response())
}

fn get_one(app: &AppState, shape: Shape, ns: &str, name: &str) -> Response {
    match app.store.get_stored(ns, name) {
        Some(s) => json_response(s.object(shape).clone()),
        None => ApiError::not_found(shape.group(), "events", name).into_response(),
    }
}

pub(crate) async fn core_all(
    State(app): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Response {
    collection(app, Shape::Core, None, q).await
}

pub(crate) async fn core_ns(
    State(app): State<AppState>,
    Path(ns): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Response {
    collection(app, Shape::Core, Some(ns), q).await
}

pub(crate) async fn v1_all(State(app): State<AppState>, Query(q): Query<EventsQuery>) -> Response {
    collection(app, Shape::EventsV1, None, q).await
}

pub(crate) async fn v1_ns(
    State(app): State<AppState>,
    Path(ns): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Response {
    collection(app, Shape::EventsV1, Some(ns), q).await
}

pub(crate) async fn core_get(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    get_one(&app, Shape::Core, &ns, &name)
}

pub(crate) async fn v1_get(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    get_one(&app, Shape::EventsV1, &ns, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trip() {
        let key = ("ns".to_string(), "a.b".to_string());
        let t = encode_continue(42, &key);
        assert_eq!(decode_continue(&t).unwrap(), (42, key));
        assert_eq!(decode_continue("garbage!").unwrap_err().code, 400);
    }

    #[test]
    fn go_bools() {
        assert!(parse_bool(Some("1")).unwrap() && parse_bool(Some("True")).unwrap());
        assert!(!parse_bool(None).unwrap() && !parse_bool(Some("0")).unwrap());
        assert!(parse_bool(Some("yes")).is_err());
    }
}
