//! Scenario output as files a person or a test can load: the Events as
//! `kubectl get events -A -o json` prints them (core/v1), as
//! `kubectl get events.v1.events.k8s.io -A -o json` prints them, and the ground truth.
//!
//! kubectl wraps the items of any `get -o json` in `{"apiVersion": "v1", "kind":
//! "List", "metadata": {"resourceVersion": ""}, "items": [...]}`; each item carries its
//! own `apiVersion`/`kind`. The events.k8s.io items are converted with the test API
//! server's conversion (`apiserver::to_events_v1`), the same one it serves.

use super::scenarios::{final_events, generate, ScenarioKind, ScenarioParams};
use super::timeline::{Emission, TimedEmission};
use super::truth::GroundTruth;
use super::objects::ClusterCtx;
use crate::apiserver::to_events_v1;
use k8s_openapi::api::core::v1::Event;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum EventListError {
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The three files [`write_eventlist`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventListFiles {
    /// core/v1 list, at the path given.
    pub core_v1: PathBuf,
    /// events.k8s.io/v1 list: `<stem>.events-v1.json` beside it.
    pub events_v1: PathBuf,
    /// Ground truth: `<stem>.truth.json` beside it.
    pub truth: PathBuf,
}

impl EventListFiles {
    /// The sibling paths for a core/v1 list at `path`.
    pub fn for_path(path: &Path) -> Self {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "events".into());
        let dir = path.parent().unwrap_or(Path::new(""));
        EventListFiles {
            core_v1: path.to_path_buf(),
            events_v1: dir.join(format!("{stem}.events-v1.json")),
            truth: dir.join(format!("{stem}.truth.json")),
        }
    }
}

/// Several scenarios played in one cluster, merged into one timeline.
#[derive(Debug, Clone)]
pub struct Run {
    pub start: SystemTime,
    pub emissions: Vec<TimedEmission>,
    pub truth: GroundTruth,
}

impl Run {
    /// The Events the server holds at the end of the run.
    pub fn final_events(&self) -> Vec<Event> {
        final_events(self.emissions.iter().map(|e| &e.emission))
    }
}

/// Plays `kinds` in one cluster, each started `stagger` after the previous one, with
/// seeds derived from `seed`. Same arguments → identical run.
pub fn generate_run(kinds: &[ScenarioKind], seed: u64, start: SystemTime, cluster: &ClusterCtx, stagger: Duration) -> Run {
    let mut emissions = Vec::new();
    let mut truth = GroundTruth::default();
    for (i, kind) in kinds.iter().enumerate() {
        let offset = stagger * i as u32;
        let params = ScenarioParams {
            seed: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64 + 1),
            start: start + offset,
            cluster: cluster.clone(),
            namespace: super::objects::NAMESPACES[i % super::objects::NAMESPACES.len()].to_string(),
            event_ttl: None,
        };
        let sc = generate(*kind, &params);
        emissions.extend(sc.emissions.into_iter().map(|e| TimedEmission { offset: e.offset + offset, ..e }));
        truth.merge(sc.truth);
    }
    emissions.sort_by_key(|e| e.offset);
    Run { start, emissions, truth }
}

/// `kubectl get events -A -o json` for these Events (resourceVersions assigned in order).
pub fn core_v1_list(events: &[Event]) -> Result<Value, serde_json::Error> {
    let items = with_resource_versions(events)
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list(items))
}

/// `kubectl get events.v1.events.k8s.io -A -o json` for the same Events.
pub fn events_v1_list(events: &[Event]) -> Result<Value, serde_json::Error> {
    let items = with_resource_versions(events)
        .iter()
        .map(|e| serde_json::to_value(to_events_v1(e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list(items))
}

fn list(items: Vec<Value>) -> Value {
    json!({ "apiVersion": "v1", "items": items, "kind": "List", "metadata": { "resourceVersion": "" } })
}

fn with_resource_versions(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            e.metadata.resource_version = Some((1000 + i).to_string());
            e
        })
        .collect()
}

/// Writes the core/v1 list to `path`, the events.k8s.io/v1 list and the truth beside it.
pub fn write_eventlist(path: &Path, events: &[Event], truth: &GroundTruth) -> Result<EventListFiles, EventListError> {
    let files = EventListFiles::for_path(path);
    let write = |p: &Path, v: &Value| -> Result<(), EventListError> {
        let bytes = serde_json::to_vec_pretty(v)?;
        std::fs::write(p, bytes).map_err(|source| EventListError::Io { path: p.to_path_buf(), source })
    };
    write(&files.core_v1, &core_v1_list(events)?)?;
    write(&files.events_v1, &events_v1_list(events)?)?;
    write(&files.truth, &serde_json::to_value(truth)?)?;
    Ok(files)
}

/// Whether an emission list ever deletes (only with an event TTL).
pub fn has_deletes(emissions: &[TimedEmission]) -> bool {
    emissions.iter().any(|e| matches!(e.emission, Emission::Delete { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_paths() {
        let f = EventListFiles::for_path(Path::new("/tmp/x/run.json"));
        assert_eq!(f.events_v1, Path::new("/tmp/x/run.events-v1.json"));
        assert_eq!(f.truth, Path::new("/tmp/x/run.truth.json"));
    }

    #[test]
    fn lists_have_kubectl_shape() {
        let run = generate_run(
            &[ScenarioKind::CrashLoop],
            5,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            &ClusterCtx::new("sim-1", 3),
            Duration::from_secs(60),
        );
        let evs = run.final_events();
        let core = core_v1_list(&evs).unwrap();
        assert_eq!(core["kind"], "List");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["items"][0]["kind"], "Event");
        assert_eq!(core["items"][0]["apiVersion"], "v1");
        assert!(core["items"][0]["involvedObject"]["name"].is_string());
        let v1 = events_v1_list(&evs).unwrap();
        assert_eq!(v1["items"][0]["apiVersion"], "events.k8s.io/v1");
        assert!(v1["items"][0]["regarding"]["name"].is_string());
        assert_eq!(v1["items"].as_array().unwrap().len(), evs.len());
        assert!(!has_deletes(&run.emissions));
    }
}
