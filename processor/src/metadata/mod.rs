//! Facts pulled out of an event into a small typed map: which container,
//! image, node, volume; exit codes, probe kinds, scheduling breakdowns,
//! autoscaler node groups, the owning workload.
//!
//! Sources, in this order (a key, once set, is never overwritten, so the more
//! reliable source wins):
//! 1. structure: the container from `regarding.field_path`
//!    (`spec.containers{app}`), the node from the involved Node or, for kubelet
//!    events, from `reporting_instance` (the kubelet reports as its node);
//! 2. the message, through the extractors of `rules/metadata.yaml` (data, see
//!    [`patterns`]), indexed by reason like the classification rules;
//! 3. names: the owning Deployment/CronJob guessed from the involved object's
//!    name ([`owner`] documents the heuristics and their limits);
//! 4. derivation: `signal` from an `exit_code` above 128.
//!
//! [`MetadataCache`] memoizes the result by event content (replays, repeating
//! events, sibling pods) and the message part by message (pods sharing one).
//!
//! Every key is in [`KEYS`] or starts with a prefix of [`KEY_FAMILIES`];
//! extractor files are checked against them at load.

mod cache;
#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod message_tests;
pub(crate) mod owner;
mod patterns;

use schemas::model::NormalizedEvent;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

pub use cache::MetadataCache;

use crate::classify::select::ReasonIndex;
use crate::classify::RuleError;
use patterns::{expand, normalize_key, parse_extractor_file, Extractor, Output};

/// The documented metadata keys and what each holds.
pub const KEYS: &[(&str, &str)] = &[
    (
        "container",
        "Container name (from the field path, else the message).",
    ),
    ("image", "Image reference as written in the pod spec."),
    ("image_size", "Pulled image size in bytes."),
    (
        "duration",
        "Time an image pull took, as printed (\"1.627s\").",
    ),
    ("exit_code", "Exit code of a container or process."),
    (
        "signal",
        "Signal name derived from exit codes above 128 (137 → SIGKILL).",
    ),
    (
        "oom",
        "\"true\" when the event reports an out-of-memory kill.",
    ),
    (
        "node",
        "Node name (involved Node, kubelet's instance, or the message).",
    ),
    ("volume", "Volume name (pod volume or PersistentVolume)."),
    ("claim", "PersistentVolumeClaim name."),
    ("probe", "liveness, readiness or startup."),
    ("probe_result", "failed, errored or warning."),
    ("http_status", "HTTP status code returned to a probe."),
    (
        "backoff",
        "Back-off delay as printed by the kubelet (\"5m0s\").",
    ),
    (
        "untolerated_taint",
        "First taint the pod did not tolerate (\"key: value\").",
    ),
    (
        "nodes_available",
        "Scheduler: nodes that fit (the N of \"N/M nodes are available\").",
    ),
    ("nodes_total", "Scheduler: nodes considered (the M)."),
    (
        "affinity_mismatch",
        "Scheduler: nodes that did not match the pod's node affinity/selector.",
    ),
    (
        "unschedulable_nodes",
        "Scheduler: nodes that were unschedulable (cordoned).",
    ),
    (
        "volume_conflict",
        "Scheduler: nodes with a volume node affinity conflict.",
    ),
    (
        "pvc_unbound",
        "\"true\" when the pod has unbound immediate PersistentVolumeClaims.",
    ),
    ("preemptor", "UID of the pod that preempted this one."),
    ("node_group", "cluster-autoscaler node group."),
    (
        "scale_from",
        "Size before a scaling step (replicas or nodes).",
    ),
    ("scale_to", "Size after a scaling step."),
    ("scale_max", "Maximum size of the scaled group."),
    ("replicas", "Replica count set by an autoscaler."),
    (
        "metric",
        "Metric an autoscaler failed to read (cpu, memory, ...).",
    ),
    (
        "child",
        "Object a controller created, deleted or scaled (pod, job, replica set).",
    ),
    (
        "owner_kind",
        "Kind of the workload owning the involved object (Deployment, CronJob).",
    ),
    ("owner_name", "Name of that workload."),
    (
        "resource",
        "Resource a node was low on, or a pod lacked (memory, cpu, ephemeral-storage).",
    ),
    ("threshold", "Eviction threshold quantity."),
    (
        "available",
        "Available quantity when an eviction threshold was met.",
    ),
    (
        "requested",
        "Kubelet admission: amount requested by the pod.",
    ),
    (
        "used",
        "Kubelet admission: amount already used on the node.",
    ),
    ("capacity", "Kubelet admission: node capacity."),
    ("process", "Process name (OOM kill, hung task)."),
    ("pid", "Process id."),
    (
        "reason_detail",
        "Short sub-reason (ErrImagePull, an RPC code, the HPA's scaling reason, ...).",
    ),
];

/// Key families: prefix + a normalized name from the message.
pub const KEY_FAMILIES: &[(&str, &str)] = &[(
    "insufficient_",
    "Scheduler: number of nodes short of a resource (insufficient_cpu, insufficient_memory, insufficient_nvidia_com_gpu).",
)];

pub(crate) fn is_known_key(k: &str) -> bool {
    KEYS.iter().any(|(name, _)| *name == k)
}

pub(crate) fn is_key_family(prefix: &str) -> bool {
    KEY_FAMILIES.iter().any(|(p, _)| *p == prefix)
}

/// The compiled extractors and their reason index. Immutable; share it.
#[derive(Debug)]
pub struct MetadataExtractor {
    id: u64,
    extractors: Vec<Extractor>,
    index: ReasonIndex,
}

/// Identity of an extractor, so a [`MetadataCache`] never mixes two.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl MetadataExtractor {
    /// The built-in extractors only.
    ///
    /// # Panics
    /// Never in a released build: the embedded file is checked by a test.
    pub fn builtin() -> Self {
        Self::build(Vec::new()).expect("built-in metadata extractors are valid")
    }

    /// Built-in extractors plus users' files: user extractors run first, and
    /// one named like a built-in extractor replaces it.
    pub fn with_user_files(paths: &[PathBuf]) -> Result<Self, RuleError> {
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| RuleError::Read {
                path: path.clone(),
                source,
            })?;
            files.push(parse_extractor_file(&path.display().to_string(), &text)?);
        }
        Self::build(files)
    }

    /// Built-in extractors plus one user file given as text.
    pub fn from_yaml_str(name: &str, text: &str) -> Result<Self, RuleError> {
        Self::build(vec![parse_extractor_file(name, text)?])
    }

    fn build(user: Vec<Vec<(Box<str>, Extractor)>>) -> Result<Self, RuleError> {
        let builtin = parse_extractor_file(patterns::BUILTIN_NAME, patterns::BUILTIN_YAML)?;
        let user_names: HashSet<Box<str>> = user.iter().flatten().map(|(n, _)| n.clone()).collect();
        let extractors: Vec<Extractor> = user
            .into_iter()
            .flatten()
            .map(|(_, x)| x)
            .chain(
                builtin
                    .into_iter()
                    .filter(|(n, _)| !user_names.contains(n))
                    .map(|(_, x)| x),
            )
            .collect();
        let index = ReasonIndex::build(extractors.iter().map(|x| &x.selector));
        Ok(MetadataExtractor {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            extractors,
            index,
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of extractors in use.
    pub fn extractor_count(&self) -> usize {
        self.extractors.len()
    }

    /// Adds the event's metadata to `out`. Keys already in `out` are kept.
    pub fn extract(&self, ev: &NormalizedEvent, out: &mut BTreeMap<String, String>) {
        let mut message = BTreeMap::new();
        self.message_keys(ev, &mut message);
        let mut pairs = Vec::new();
        ObjectKeys::of(ev).pairs(&message, &mut pairs);
        for (k, v) in pairs {
            if !out.contains_key(k) {
                out.insert(k.to_string(), v.to_string());
            }
        }
        // An exit code the caller already had counts too.
        if !out.contains_key("signal") {
            if let Some(s) = out.get("exit_code").and_then(|c| signal_of(c)) {
                out.insert("signal".into(), s.into());
            }
        }
    }

    /// Source 2: the extractors. Reads only what rules can look at (reason,
    /// type, component, involved kind, namespace, message), so pods sharing a
    /// message ("Started container app") can share the result
    /// ([`MetadataCache`]). Every key is set independently and only when
    /// absent, so running this on an empty map and adding its keys where
    /// absent equals running it after the structural keys ([`ObjectKeys::pairs`]).
    pub(crate) fn message_keys(&self, ev: &NormalizedEvent, out: &mut BTreeMap<String, String>) {
        let mut key_buf = String::new();
        for pos in self.index.candidates(&ev.reason) {
            let x = &self.extractors[pos];
            if !x.selector.matches(ev) {
                continue;
            }
            if x.all {
                for caps in x.regex.captures_iter(&ev.note) {
                    apply(x, &caps, out, &mut key_buf);
                }
            } else if let Some(caps) = x.regex.captures(&ev.note) {
                apply(x, &caps, out, &mut key_buf);
            }
        }
    }
}

/// What the involved object (not the message) gives: sources 1 and 3.
/// Borrowed and allocation-free, so [`MetadataCache`] can key on these values
/// rather than on the object's name: pods of one Deployment on one node with
/// one message get one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ObjectKeys<'a> {
    container: Option<&'a str>,
    node: Option<&'a str>,
    owner: Option<(&'static str, &'a str)>,
}

impl<'a> ObjectKeys<'a> {
    pub(crate) fn of(ev: &'a NormalizedEvent) -> Self {
        let node = if ev.regarding.kind == "Node" && !ev.regarding.name.is_empty() {
            Some(ev.regarding.name.as_str())
        } else if ev.reporting_controller == "kubelet" && !ev.reporting_instance.is_empty() {
            Some(ev.reporting_instance.as_str())
        } else {
            None
        };
        ObjectKeys {
            container: container_from_field_path(&ev.regarding.field_path),
            node,
            owner: owner::guess_owner(&ev.regarding.kind, &ev.regarding.name),
        }
    }

    /// The event's metadata as `(key, value)` pairs, sorted by key, each key
    /// once. The sources in order, the first to give a key wins: structure
    /// (container, node); `message` (what [`MetadataExtractor::message_keys`]
    /// gave); the owner; `signal` from the exit code. Borrowed, so the caller
    /// allocates the strings once, and a sorted list builds a `BTreeMap`
    /// without searching it.
    pub(crate) fn pairs<'s>(&self, message: &'s BTreeMap<String, String>, out: &mut Vec<(&'s str, &'s str)>)
    where
        'a: 's,
    {
        out.clear();
        let add = |out: &mut Vec<(&'s str, &'s str)>, k: &'s str, v: &'s str| {
            if !v.is_empty() && !out.iter().any(|(have, _)| *have == k) {
                out.push((k, v));
            }
        };
        if let Some(c) = self.container {
            add(out, "container", c);
        }
        if let Some(n) = self.node {
            add(out, "node", n);
        }
        for (k, v) in message {
            add(out, k, v);
        }
        if let Some((kind, name)) = self.owner {
            add(out, "owner_kind", kind);
            add(out, "owner_name", name);
        }
        let signal = out.iter().find(|(k, _)| *k == "exit_code").and_then(|(_, c)| signal_of(c));
        if let Some(s) = signal {
            add(out, "signal", s);
        }
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
}

/// Inserts unless present or empty (first source wins).
#[inline]
fn put(out: &mut BTreeMap<String, String>, key: &str, value: &str) {
    if !value.is_empty() && !out.contains_key(key) {
        out.insert(key.to_string(), value.to_string());
    }
}

fn apply(
    x: &Extractor,
    caps: &regex::Captures<'_>,
    out: &mut BTreeMap<String, String>,
    key_buf: &mut String,
) {
    match &x.output {
        Output::Named(groups) => {
            for (idx, key) in groups.iter() {
                let Some(m) = caps.get(*idx) else { continue };
                let v = m.as_str().trim();
                if v.is_empty() || out.contains_key(&**key) {
                    continue;
                }
                let v = if x.lowercase {
                    v.to_ascii_lowercase()
                } else {
                    v.to_string()
                };
                // `String::from(&str)`, not `Box<str>::to_string` (the formatter).
                out.insert(String::from(&**key), v);
            }
        }
        Output::Template { key, value } => {
            expand(key, caps, key_buf);
            normalize_key(key_buf);
            if !out.contains_key(key_buf.as_str()) {
                let mut v = String::new();
                expand(value, caps, &mut v);
                if x.lowercase {
                    v.make_ascii_lowercase();
                }
                if !v.is_empty() {
                    out.insert(key_buf.clone(), v);
                }
            }
        }
    }
    for (k, v) in x.set.iter() {
        put(out, k, v);
    }
}

/// `spec.containers{app}` / `spec.initContainers{init}` /
/// `spec.ephemeralContainers{debug}` → the container name.
fn container_from_field_path(fp: &str) -> Option<&str> {
    let rest = fp
        .strip_prefix("spec.containers{")
        .or_else(|| fp.strip_prefix("spec.initContainers{"))
        .or_else(|| fp.strip_prefix("spec.ephemeralContainers{"))?;
    let name = rest.strip_suffix('}')?;
    (!name.is_empty()).then_some(name)
}

/// The signal an exit code above 128 stands for.
fn signal_of(exit_code: &str) -> Option<&'static str> {
    exit_code.parse::<i64>().ok().and_then(|c| signal_name(c - 128))
}

/// Linux signal names for the numbers a container exit code can carry.
fn signal_name(n: i64) -> Option<&'static str> {
    Some(match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_from_field_paths() {
        assert_eq!(
            container_from_field_path("spec.containers{app}"),
            Some("app")
        );
        assert_eq!(
            container_from_field_path("spec.initContainers{init-db}"),
            Some("init-db")
        );
        assert_eq!(
            container_from_field_path("spec.ephemeralContainers{debugger}"),
            Some("debugger")
        );
        assert_eq!(container_from_field_path("spec.containers{}"), None);
        assert_eq!(container_from_field_path(""), None);
        assert_eq!(container_from_field_path("metadata.name"), None);
    }

    #[test]
    fn every_key_is_documented_in_docs_categories_md() {
        let doc = include_str!("../../../docs/categories.md");
        for (k, _) in KEYS.iter().chain(KEY_FAMILIES) {
            assert!(
                doc.contains(&format!("`{k}")),
                "docs/categories.md lacks metadata key `{k}`"
            );
        }
    }

    #[test]
    fn user_extractors_run_first_and_replace_builtin_ones_by_name() {
        let x = MetadataExtractor::from_yaml_str(
            "m.yaml",
            concat!(
                "extractors:\n",
                "- name: my-ticket\n  reason: Failed\n  regex: 'image \"(?P<image>[^\"]+)\"'\n  set: {reason_detail: custom}\n",
                "- name: scheduled-node\n  reason: Scheduled\n  regex: 'to (?P<volume>\\S+)$'\n",
            ),
        )
        .unwrap();
        assert_eq!(
            x.extractor_count(),
            MetadataExtractor::builtin().extractor_count() + 1
        );
        let ev = NormalizedEvent {
            reason: "Scheduled".into(),
            note: "Successfully assigned default/web to node-1".into(),
            ..Default::default()
        };
        let mut out = BTreeMap::new();
        x.extract(&ev, &mut out);
        assert_eq!(
            out.get("volume").map(String::as_str),
            Some("node-1"),
            "override used"
        );
        assert!(
            !out.contains_key("node"),
            "built-in extractor of that name replaced"
        );
    }

    #[test]
    fn existing_keys_are_kept_and_signal_is_derived() {
        let x = MetadataExtractor::builtin();
        let mut ev = NormalizedEvent {
            reason: "Started".into(),
            reporting_controller: "kubelet".into(),
            reporting_instance: "node-7".into(),
            note: "Started container app".into(),
            ..Default::default()
        };
        ev.regarding.kind = "Pod".into();
        ev.regarding.name = "web-6f9c8d7b5-x2kqp".into();
        ev.regarding.field_path = "spec.containers{app}".into();
        let mut out = BTreeMap::from([
            ("node".to_string(), "preset".to_string()),
            ("exit_code".to_string(), "137".to_string()),
        ]);
        x.extract(&ev, &mut out);
        assert_eq!(out["node"], "preset");
        assert_eq!(out["container"], "app");
        assert_eq!(out["owner_kind"], "Deployment");
        assert_eq!(out["owner_name"], "web");
        assert_eq!(out["signal"], "SIGKILL");
    }
}
