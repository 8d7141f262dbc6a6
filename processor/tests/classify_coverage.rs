//! Classification coverage of the reasons the standard emitters really record
//! (issue 17): every line of `processor/testdata/reasons/*.txt` (reasons read
//! from the kubelet, scheduler, kube-controller-manager, cloud-provider,
//! cluster-autoscaler and node-problem-detector sources; each file names its
//! origin) is classified as the built-in rules would classify it.
//!
//! The policy, checked here:
//! - a **Warning** reason of a listed emitter must hit an *explicit* rule: not
//!   `unknown`, and not a `fallback:` rule either. Fallbacks exist for reasons
//!   nobody has seen yet (a newer release, a cloud provider's own reasons); a
//!   standard reason that only reaches one is a gap in the rules;
//! - a **Normal** reason must not be `unknown`; a fallback hit is accepted and
//!   listed (they are the routine events of an emitter, and the fallback for
//!   the emitter gives them its category at `info`);
//! - fallback rules come after every explicit rule, so they never shadow one,
//!   and unseen reasons of each shape get the category and severity the
//!   fallback promises.
//!
//! Run with `--nocapture` to see the coverage table: per reason file (emitter),
//! the distinct (reason, component, kind) entries of each type and how they
//! were classified.

use kevents_processor::classify::{Classification, Classifier};
use schemas::model::{NormalizedEvent, Severity};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Warning reasons the rules file at `info`, and why: `ProbeWarning` is a probe
/// that succeeded with a remark (a redirect it did not follow, a body cut short).
const WARNINGS_THAT_ARE_INFO: &[&str] = &["ProbeWarning"];

/// One line of a reason file.
#[derive(Debug, Clone)]
struct Reason {
    file: String,
    line: usize,
    ty: String,
    reason: String,
    component: String,
    kind: String,
}

fn reasons_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/reasons")
}

/// Reads every `*.txt` reason file: `TYPE REASON COMPONENT KIND  # where`.
fn read_reason_files() -> Vec<Reason> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(reasons_dir())
        .expect("processor/testdata/reasons exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("# origin:")),
            "{file}.txt does not name its origin"
        );
        for (i, raw) in text.lines().enumerate() {
            let data = raw.split('#').next().unwrap().trim();
            if data.is_empty() {
                continue;
            }
            let cols: Vec<&str> = data.split_whitespace().collect();
            assert!(
                cols.len() == 4 && matches!(cols[0], "Normal" | "Warning"),
                "{file}.txt:{}: expected `TYPE REASON COMPONENT KIND`, got {raw:?}",
                i + 1
            );
            out.push(Reason {
                file: file.clone(),
                line: i + 1,
                ty: cols[0].into(),
                reason: cols[1].into(),
                component: cols[2].into(),
                kind: if cols[3] == "-" {
                    String::new()
                } else {
                    cols[3].into()
                },
            });
        }
    }
    out
}

fn event(r: &Reason) -> NormalizedEvent {
    let mut e = NormalizedEvent {
        reason: r.reason.as_str().into(),
        event_type: r.ty.as_str().into(),
        reporting_controller: r.component.as_str().into(),
        namespace: if r.kind == "ConfigMap" {
            "kube-system"
        } else {
            "default"
        }
        .into(),
        ..Default::default()
    };
    e.regarding.kind = r.kind.as_str().into();
    e
}

#[derive(Default)]
struct Tally {
    warning: BTreeMap<String, Outcome>,
    normal: BTreeMap<String, Outcome>,
}

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Explicit,
    Fallback,
    Unknown,
}

fn outcome(c: &Classification<'_>) -> Outcome {
    if c.unknown {
        Outcome::Unknown
    } else if c.rule.starts_with("fallback:") {
        Outcome::Fallback
    } else {
        Outcome::Explicit
    }
}

#[test]
fn every_standard_reason_is_classified_and_every_warning_by_an_explicit_rule() {
    let c = Classifier::builtin();
    let reasons = read_reason_files();
    assert!(reasons.len() > 250, "only {} reason lines", reasons.len());

    let mut by_file: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut fallbacks = Vec::new();
    for r in &reasons {
        let got = c.classify(&event(r));
        let o = outcome(&got);
        let key = format!("{} {} {}", r.reason, r.component, r.kind);
        let tally = by_file.entry(r.file.clone()).or_default();
        let map = if r.ty == "Warning" {
            &mut tally.warning
        } else {
            &mut tally.normal
        };
        // A reason listed twice (two places) counts once, at its worst outcome.
        let slot = map.entry(key).or_insert(o);
        if o != Outcome::Explicit {
            *slot = o;
        }
        let at = format!("{}.txt:{}", r.file, r.line);
        match (o, r.ty.as_str()) {
            (Outcome::Unknown, _) => failures.push(format!(
                "{at}: {} {} from {} on {:?} is unknown",
                r.ty, r.reason, r.component, r.kind
            )),
            (Outcome::Fallback, "Warning") => failures.push(format!(
                "{at}: Warning {} from {} on {:?} reaches only {} ({}/{:?}): add an explicit rule",
                r.reason, r.component, r.kind, got.rule, got.category, got.severity
            )),
            (Outcome::Fallback, _) => fallbacks.push(format!(
                "{} {} ({}) -> {} {}/{:?}",
                r.ty, r.reason, r.component, got.rule, got.category, got.severity
            )),
            _ => {}
        }
        // A Warning reason is filed at `warning` or above, except the few the
        // rules deliberately call informational.
        if r.ty == "Warning"
            && got.severity == Severity::Info
            && !got.unknown
            && !WARNINGS_THAT_ARE_INFO.contains(&r.reason.as_str())
        {
            failures.push(format!(
                "{at}: Warning {} classified info by {}",
                r.reason, got.rule
            ));
        }
    }

    println!(
        "\nclassification coverage of the standard emitters' reasons (processor/testdata/reasons):"
    );
    println!(
        "{:<31} {:>8} {:>9} {:>8} {:>8} {:>9} {:>8}",
        "emitter", "Warning", "explicit", "unknown", "Normal", "fallback", "unknown"
    );
    let (mut tw, mut te, mut tn, mut tf) = (0, 0, 0, 0);
    for (file, t) in &by_file {
        let count =
            |m: &BTreeMap<String, Outcome>, o: Outcome| m.values().filter(|v| **v == o).count();
        println!(
            "{:<31} {:>8} {:>9} {:>8} {:>8} {:>9} {:>8}",
            file,
            t.warning.len(),
            count(&t.warning, Outcome::Explicit),
            count(&t.warning, Outcome::Unknown),
            t.normal.len(),
            count(&t.normal, Outcome::Fallback),
            count(&t.normal, Outcome::Unknown),
        );
        tw += t.warning.len();
        te += count(&t.warning, Outcome::Explicit);
        tn += t.normal.len();
        tf += count(&t.normal, Outcome::Fallback);
    }
    println!(
        "{:<31} {:>8} {:>9} {:>8} {:>8} {:>9}",
        "total", tw, te, "", tn, tf
    );
    fallbacks.sort();
    fallbacks.dedup();
    println!(
        "reasons that only hit a fallback rule ({}):",
        fallbacks.len()
    );
    for f in &fallbacks {
        println!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} gaps:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn fallback_rules_come_after_every_explicit_rule() {
    let c = Classifier::builtin();
    let names: Vec<&str> = c.rule_names().map(|(n, _)| n).collect();
    let first = names
        .iter()
        .position(|n| n.starts_with("fallback:"))
        .expect("the built-in rules have fallbacks");
    assert!(
        names[first..].iter().all(|n| n.starts_with("fallback:")),
        "an explicit rule after the first fallback: {:?}",
        &names[first..]
    );
    assert!(
        names.len() - first >= 10,
        "only {} fallback rules",
        names.len() - first
    );
}

/// Reasons no source lists (made up, in the shapes of real ones) still get the
/// category and severity their emitter and shape suggest, from a fallback rule.
#[test]
fn unseen_reasons_get_a_category_and_severity_from_the_fallbacks() {
    use Severity::{Critical, Error, Info, Warning};
    let c = Classifier::builtin();
    let cases: &[(&str, &str, &str, &str, &str, Severity)] = &[
        // node-problem-detector, by shape and by monitor name
        (
            "FrequentCrioRestart",
            "Warning",
            "systemd-monitor",
            "Node",
            "node-problem",
            Error,
        ),
        (
            "FrequentKubeProxyRestart",
            "Warning",
            "kubelet-custom-plugin-monitor",
            "Node",
            "node-problem",
            Error,
        ),
        (
            "CorruptContainerdSnapshot",
            "Warning",
            "containerd-monitor",
            "Node",
            "node-problem",
            Critical,
        ),
        (
            "GPUXidError",
            "Warning",
            "gpu-custom-plugin-monitor",
            "Node",
            "node-problem",
            Error,
        ),
        (
            "GPUIsUp",
            "Normal",
            "gpu-custom-plugin-monitor",
            "Node",
            "node-problem",
            Info,
        ),
        (
            "NetworkIsFlaky",
            "Warning",
            "network-custom-plugin-monitor",
            "Node",
            "node-problem",
            Warning,
        ),
        // the kubelet
        (
            "FailedPrepareFoo",
            "Warning",
            "kubelet",
            "Pod",
            "container-crash",
            Error,
        ),
        (
            "FooFailed",
            "Warning",
            "kubelet",
            "Node",
            "node-health",
            Error,
        ),
        (
            "SomethingOdd",
            "Warning",
            "kubelet",
            "Node",
            "node-health",
            Warning,
        ),
        (
            "SomethingOdd",
            "Warning",
            "kubelet",
            "Pod",
            "container-lifecycle",
            Warning,
        ),
        // the scheduler
        (
            "FailedBinding2",
            "Warning",
            "default-scheduler",
            "Pod",
            "scheduling",
            Error,
        ),
        // controllers, by component
        (
            "NewJobTrouble",
            "Warning",
            "job-controller",
            "Job",
            "job",
            Warning,
        ),
        (
            "ScheduleTooFarError",
            "Warning",
            "cronjob-controller",
            "CronJob",
            "job",
            Error,
        ),
        (
            "RollingUpdateExceeded",
            "Warning",
            "deployment-controller",
            "Deployment",
            "rollout",
            Error,
        ),
        (
            "PodBudgetLost",
            "Warning",
            "statefulset-controller",
            "StatefulSet",
            "workload",
            Error,
        ),
        (
            "FailedGetMetricFoo",
            "Warning",
            "horizontal-pod-autoscaler",
            "HorizontalPodAutoscaler",
            "autoscaling",
            Warning,
        ),
        (
            "ClaimVanished",
            "Warning",
            "persistentvolume-controller",
            "PersistentVolumeClaim",
            "storage-provisioning",
            Warning,
        ),
        (
            "VolumeLost",
            "Warning",
            "persistentvolume-controller",
            "PersistentVolume",
            "storage-provisioning",
            Critical,
        ),
        (
            "ScaleUpQuotaExceeded",
            "Warning",
            "cluster-autoscaler",
            "ConfigMap",
            "node-autoscaling",
            Error,
        ),
        (
            "ScaleUpFailed",
            "Warning",
            "cluster-autoscaler",
            "Pod",
            "node-autoscaling",
            Error,
        ),
        (
            "ScaleDownDisabled",
            "Normal",
            "cluster-autoscaler",
            "Node",
            "node-autoscaling",
            Info,
        ),
        (
            "FailedToSyncLoadBalancerV2",
            "Warning",
            "service-controller",
            "Service",
            "network",
            Error,
        ),
        (
            "EndpointSliceTrouble",
            "Warning",
            "endpoint-slice-controller",
            "Service",
            "network",
            Warning,
        ),
        (
            "NodeGone",
            "Warning",
            "node-controller",
            "Node",
            "node-health",
            Warning,
        ),
        // shapes, from an emitter we know nothing about
        (
            "SyncError",
            "Warning",
            "my-operator",
            "Foo",
            "unknown",
            Warning,
        ),
    ];
    for &(reason, ty, component, kind, category, severity) in cases {
        let r = Reason {
            file: "unseen".into(),
            line: 0,
            ty: ty.into(),
            reason: reason.into(),
            component: component.into(),
            kind: kind.into(),
        };
        let got = c.classify(&event(&r));
        let what = format!(
            "{ty} {reason} from {component} on {kind} (rule {:?})",
            got.rule
        );
        if category == "unknown" {
            assert!(
                got.unknown,
                "{what}: an unknown emitter's reason stays unknown"
            );
            continue;
        }
        assert!(got.rule.starts_with("fallback:"), "{what}: not a fallback");
        assert_eq!((got.category, got.severity), (category, severity), "{what}");
    }
}
