//! Fuzz target: watch-event JSON → the normalized event, for both API shapes —
//! `events.k8s.io/v1` (what the collector watches) and `core/v1` (older dumps) —
//! through the typed path the collector takes (k8s-openapi, then `convert`) and the
//! untyped path `kevents analyze` takes (`convert::from_json`). Errors are fine;
//! panics are bugs.
#![no_main]

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use libfuzzer_sys::fuzz_target;

extern crate kevents_schemas as schemas;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = serde_json::from_slice::<events::Event>(data) {
        let _ = schemas::convert::from_events_v1(&e);
    }
    if let Ok(e) = serde_json::from_slice::<core::Event>(data) {
        let _ = schemas::convert::from_core_v1(&e);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = schemas::convert::from_json(0, v);
    }
});
