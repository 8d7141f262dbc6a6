//! Fuzz target: watch-event JSON → the normalized event, for both API shapes —
//! `events.k8s.io/v1` (what the collector watches) and `core/v1` (older dumps) —
//! through the path the collector takes (`event_json`, JSON straight into the
//! normalized event, also what `convert::from_json` uses for `kevents analyze`) and
//! the typed path (k8s-openapi, then `convert`) the simulator uses. Where both
//! decode, they must agree. Errors are fine; panics are bugs.
#![no_main]

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use libfuzzer_sys::fuzz_target;

extern crate kevents_schemas as schemas;

use schemas::event_json::{CoreV1Json, EventsV1Json};
use schemas::NormalizedEvent;

fuzz_target!(|data: &[u8]| {
    let lean = serde_json::from_slice::<EventsV1Json>(data).ok().map(NormalizedEvent::from);
    if let (Ok(e), Some(lean)) = (serde_json::from_slice::<events::Event>(data), lean) {
        assert_eq!(schemas::convert::from_events_v1(&e), lean);
    }
    let lean = serde_json::from_slice::<CoreV1Json>(data).ok().map(NormalizedEvent::from);
    if let (Ok(e), Some(lean)) = (serde_json::from_slice::<core::Event>(data), lean) {
        assert_eq!(schemas::convert::from_core_v1(&e), lean);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = schemas::convert::from_json(0, v);
    }
});
