//! `kevents analyze` as a user runs it: on `kubectl get events` dumps written by
//! the simulator (`kevents simulate --write-eventlist`, both API shapes, with
//! ground truth), as JSON, YAML and on stdin; with rule files; on bad input.
//!
//! The ground-truth check uses the same definitions as the processor's
//! `correlation_truth` test: an event's predicted incident is its
//! `correlation_id` when that is an incident id; it is right when it is the
//! incident predicted for its truth incident's root event.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn kevents(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kevents")).args(args).output().unwrap()
}

fn write_list(dir: &Path, seed: u64, scenarios: Option<&str>) -> PathBuf {
    let path = dir.join(format!("events-{seed}.json"));
    let mut args = vec!["simulate".to_string(), "--seed".into(), seed.to_string()];
    if let Some(s) = scenarios {
        args.extend(["--scenarios".into(), s.into()]);
    }
    args.extend(["--write-eventlist".into(), path.display().to_string()]);
    let out = Command::new(env!("CARGO_BIN_EXE_kevents")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

fn analyze_json(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["analyze", "--output", "json"];
    args.extend(extra);
    let p = path.display().to_string();
    args.push(&p);
    let out = kevents(&args);
    assert!(out.status.success(), "analyze failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[derive(Default)]
struct Score {
    truth: usize,
    roots: usize,
    assigned: usize,
    correct: usize,
    members: usize,
}

fn score(report: &Value, truth_path: &Path) -> Score {
    let truth: Value = serde_json::from_slice(&std::fs::read(truth_path).unwrap()).unwrap();
    let corr: HashMap<&str, &str> = report["events"].as_array().unwrap().iter().map(|e| (e["uid"].as_str().unwrap(), e["correlation_id"].as_str().unwrap())).collect();
    let incidents: BTreeMap<&str, &Value> = report["incidents"].as_array().unwrap().iter().map(|i| (i["id"].as_str().unwrap(), i)).collect();
    let predicted = |uid: &str| corr.get(uid).copied().filter(|c| incidents.contains_key(c));
    let mut s = Score::default();
    let mut truth_of: HashMap<&str, Option<&str>> = HashMap::new();
    for t in truth["incidents"].as_array().unwrap() {
        s.truth += 1;
        let root = t["root_cause_uid"].as_str().unwrap();
        let p = predicted(root);
        if p.is_some_and(|id| incidents[id]["root_cause"]["uid"] == root) {
            s.roots += 1;
        }
        for m in t["member_uids"].as_array().unwrap() {
            truth_of.insert(m.as_str().unwrap(), p);
        }
    }
    for uid in corr.keys() {
        let Some(p) = predicted(uid) else { continue };
        s.assigned += 1;
        if truth_of.get(uid).copied().flatten() == Some(p) {
            s.correct += 1;
        }
    }
    s.members = truth_of.len();
    s
}

#[test]
fn dumps_in_both_shapes_match_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = Score::default();
    for seed in 1..=4u64 {
        let core = write_list(dir.path(), seed, None);
        let truth = core.with_file_name(format!("events-{seed}.truth.json"));
        let events_v1 = core.with_file_name(format!("events-{seed}.events-v1.json"));
        let a = analyze_json(&core, &[]);
        let b = analyze_json(&events_v1, &[]);
        // The two shapes of the same objects give the same conclusions.
        assert_eq!(a["incidents"], b["incidents"], "seed {seed}: core/v1 and events.k8s.io/v1 disagree");
        let s = score(&a, &truth);
        total.truth += s.truth;
        total.roots += s.roots;
        total.assigned += s.assigned;
        total.correct += s.correct;
        total.members += s.members;
    }
    let precision = total.correct as f64 / total.assigned.max(1) as f64;
    let recall = total.correct as f64 / total.members.max(1) as f64;
    println!("analyze: {} truth incidents, {} roots right, precision {precision:.3}, recall {recall:.3}", total.truth, total.roots);
    assert!(total.truth >= 40);
    assert!(total.roots as f64 >= 0.95 * total.truth as f64, "roots {}/{}", total.roots, total.truth);
    assert!(precision >= 0.95 && recall >= 0.95, "precision {precision:.3} recall {recall:.3}");
}

#[test]
fn healthy_rollouts_make_no_incident_and_text_reads_well() {
    let dir = tempfile::tempdir().unwrap();
    let list = write_list(dir.path(), 3, Some("healthy-rollout,healthy-rollout,noise"));
    let r = analyze_json(&list, &[]);
    assert_eq!(r["incidents"].as_array().unwrap().len(), 0, "{:#}", r["incidents"]);
    assert!(r["counts"]["events"].as_u64().unwrap() > 10);

    let list = write_list(dir.path(), 5, Some("failed-mount"));
    let out = kevents(&["analyze", list.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("INCIDENTS: 1 "), "{text}");
    assert!(text.contains("FailedMount on Pod ") && text.contains("(volume data) caused "), "{text}");
    assert!(text.contains("root cause: FailedMount"), "{text}");
    let (i, p, c) = (text.find("INCIDENTS").unwrap(), text.find("PATTERNS").unwrap(), text.find("BY CATEGORY").unwrap());
    assert!(i < p && p < c, "incidents, then patterns, then counts");
}

#[test]
fn yaml_and_stdin_give_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let list = write_list(dir.path(), 9, Some("crash-loop,oom-kill"));
    let json = analyze_json(&list, &[]);
    let v: Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    let yaml = dir.path().join("events.yaml");
    std::fs::write(&yaml, serde_norway::to_string(&v).unwrap()).unwrap();
    let from_yaml = analyze_json(&yaml, &[]);
    assert_eq!(json["incidents"], from_yaml["incidents"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_kevents"))
        .args(["analyze", "-o", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&std::fs::read(&list).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["incidents"], from_stdin["incidents"]);
    assert_eq!(json["events"], from_stdin["events"]);
}

#[test]
fn rule_files_change_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let list = write_list(dir.path(), 11, Some("image-pull-failure,failed-mount"));
    let base = analyze_json(&list, &[]);
    let rules: BTreeSet<&str> = base["incidents"].as_array().unwrap().iter().map(|i| i["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["image-pull-failure", "volume-failure"].into());

    // A correlation rule replacing a built-in one by name, and a classification rule.
    let corr = dir.path().join("corr.yaml");
    std::fs::write(&corr, "rules:\n  - name: image-pull-failure\n    cause: {reason: NeverHappens}\n").unwrap();
    let class = dir.path().join("class.yaml");
    std::fs::write(&class, "categories:\n  - name: secrets\n    description: Missing secrets.\nrules:\n  - name: missing-secret\n    reason: FailedMount\n    message: 'secret .* not found'\n    category: secrets\n    severity: critical\n").unwrap();
    let r = analyze_json(&list, &["--rules", corr.to_str().unwrap(), "--rules", class.to_str().unwrap()]);
    let rules: BTreeSet<&str> = r["incidents"].as_array().unwrap().iter().map(|i| i["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["volume-failure"].into());
    let mount = r["incidents"].as_array().unwrap().iter().find(|i| i["rule"] == "volume-failure").unwrap();
    assert_eq!(mount["severity"], "critical");
    assert_eq!(mount["root_cause"]["category"], "secrets");

    // A broken rule file stops with its name, rule and field.
    std::fs::write(&corr, "rules:\n  - name: x\n    cause: {reason: A}\n    effects:\n      - {reason: B, via: [sideways]}\n").unwrap();
    let out = kevents(&["analyze", "--rules", corr.to_str().unwrap(), list.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corr.yaml") && err.contains("effects[0]") && err.contains("`via`"), "{err}");
}

#[test]
fn malformed_input_is_a_clear_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 5] = [
        ("", "the input is empty"),
        ("{\"kind\": \"List\", \"items\": [", "not valid JSON or YAML"),
        (r#"{"kind":"List","items":[{"apiVersion":"v1","kind":"Event","metadata":{"name":"e1","uid":"u"},"involvedObject":{"kind":"Pod","name":"p"},"reason":"BackOff","count":"many"}]}"#, "item 0 (e1)"),
        (r#"{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}"#, "not an Event"),
        (r#"{"kind":"List","items":["x"]}"#, "item 0: expected an Event object"),
    ];
    for (i, (input, expected)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("bad-{i}.json"));
        std::fs::write(&p, input).unwrap();
        let out = kevents(&["analyze", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i}: {err}");
        assert!(err.contains(expected), "case {i}: expected {expected:?} in {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
    }
    let out = kevents(&["analyze", dir.path().join("missing.json").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}

/// The real dumps under `testdata/dumps` (origins in its README) and what
/// `analyze` concludes from them, checked in under `testdata/dumps/expected`:
/// every incident (id, rule, root, member events, objects, counts, times,
/// summary) and each event's incident (not categories or severities: those are
/// classification's). `KEVENTS_BLESS=1` rewrites the expected
/// files after a deliberate change (review the diff).
#[test]
fn golden_real_dumps() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dumps");
    let bless = std::env::var_os("KEVENTS_BLESS").is_some();
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    dumps.sort();
    let (mut events, mut incidents) = (0usize, 0usize);
    for dump in &dumps {
        let report = analyze_json(dump, &[]);
        // Correlation's conclusions; categories and severities are classification's
        // (tested by its own rules' tests) and left out.
        let mut found = report["incidents"].clone();
        for i in found.as_array_mut().unwrap() {
            let i = i.as_object_mut().unwrap();
            i.remove("severity");
            i["root_cause"].as_object_mut().unwrap().remove("category");
        }
        let got = serde_json::json!({
            "incidents": found,
            "events": report["events"].as_array().unwrap().iter().map(|e| serde_json::json!({"uid": e["uid"], "reason": e["reason"], "correlation_id": e["correlation_id"]})).collect::<Vec<_>>(),
        });
        let expected_path = dir.join("expected").join(dump.file_name().unwrap());
        if bless {
            std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
            std::fs::write(&expected_path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        }
        let expected: Value = serde_json::from_slice(&std::fs::read(&expected_path).unwrap_or_else(|e| panic!("{}: {e} (run with KEVENTS_BLESS=1 to create it)", expected_path.display()))).unwrap();
        assert_eq!(got, expected, "{}: analyze's conclusions changed", dump.display());
        // No incident without member events; no two incidents with the same root.
        let mut roots = BTreeSet::new();
        for i in got["incidents"].as_array().unwrap() {
            assert!(!i["event_uids"].as_array().unwrap().is_empty(), "{}: incident {} has no events", dump.display(), i["id"]);
            assert!(roots.insert((i["root_cause"]["uid"].to_string(), i["first_seen"].to_string())), "{}: two incidents rooted at one episode", dump.display());
        }
        events += got["events"].as_array().unwrap().len();
        incidents += got["incidents"].as_array().unwrap().len();
    }
    println!("golden: {} dumps, {events} events, {incidents} incidents", dumps.len());
    assert!(dumps.len() >= 8 && events >= 60, "{} dumps, {events} events", dumps.len());
}
