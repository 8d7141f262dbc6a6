//! `kevents report` in a real browser: headless Debian Chromium, driven by
//! playwright-core (cli/tests/browser/, installed here with `npm ci`; it never
//! downloads a browser of its own).
//!
//! Two reports are written: a simulator run (`kevents simulate
//! --write-eventlist`, every scenario) and a real public dump
//! (cli/testdata/dumps/katas-10-init-container.json, origin in its README).
//! What the page must show is computed here, independently of the report
//! code, from `kevents analyze -o json` and the dump itself: the number of
//! incidents, per incident the number of distinct objects among its events
//! (one lane each), the root cause's message (shown when its mark is clicked)
//! and the messages of its events (one shown when another mark is clicked).
//! The node script (check.js) also fails on any console error, page error or
//! network request, and checks that the arrow keys move between events.
//! A third report comes from ClickHouse (`--incident ID`): event versions and
//! an incident loaded with the sink's row types into a fresh database, a Node
//! whose failure took down a Deployment's pod; the page must show one incident
//! with the Node and the pod as lanes (the pod under its Node), the root cause
//! marked and its message on click.
//! Screenshots go to `$CARGO_TARGET_TMPDIR/report_browser*/`.

use schemas::clickhouse::RenderOptions;
use schemas::metadata::Metadata;
use schemas::records::{Incident, ProcessedEvent, RootCause, SourcePos, WatchKind};
use schemas::{ClusterId, NormalizedEvent, ObjectRef, Severity};
use serde_json::{json, Value};
use sink::rows::{EventRow, IncidentRow};
use std::sync::Arc;
use testkit::services::Services;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kevents(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kevents")).args(args).output().unwrap();
    assert!(out.status.success(), "kevents {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The browser test's node packages, installed from the lock file once per test run:
/// `npm ci` deletes `node_modules` first, so a second install while another test's
/// node process reads it made that test fail (`Cannot find module …`).
fn npm_ci(dir: &Path) {
    static NPM: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let done = NPM.get_or_init(|| {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .status()
            .map_err(|e| format!("npm (Node.js) is needed for the browser tests: {e}"))?;
        if st.success() { Ok(()) } else { Err(format!("npm ci in {} failed: {st}", dir.display())) }
    });
    if let Err(e) = done {
        panic!("{e}");
    }
}

/// What the page of `dump` must show, from `kevents analyze -o json`.
fn expectations(name: &str, dump: &Path, html: &Path) -> Value {
    let analysis: Value = serde_json::from_str(&kevents(&["analyze", "-o", "json", dump.to_str().unwrap()])).unwrap();
    let items: Value = serde_json::from_slice(&std::fs::read(dump).unwrap()).unwrap();
    let message: HashMap<&str, &str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["metadata"]["uid"].as_str().unwrap(), i["message"].as_str().or(i["note"].as_str()).unwrap_or("")))
        .collect();
    let object: HashMap<&str, &str> =
        analysis["events"].as_array().unwrap().iter().map(|e| (e["uid"].as_str().unwrap(), e["object"].as_str().unwrap())).collect();
    let incidents = analysis["incidents"].as_array().unwrap();
    let checks: Vec<Value> = incidents
        .iter()
        .map(|i| {
            let uids: Vec<&str> = i["event_uids"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
            let lanes: BTreeSet<&str> = uids.iter().map(|u| object[u]).collect();
            let messages: BTreeSet<&str> = uids.iter().map(|u| message[u]).collect();
            json!({"id": i["id"], "lanes": lanes.len(), "root_message": i["root_cause"]["message"], "messages": messages})
        })
        .collect();
    json!({"name": name, "path": html, "incidents": incidents.len(), "checks": checks})
}

#[test]
fn simulator_run_and_real_dump_reports_open_in_chromium() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_browser");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();

    let sim = out.join("sim/events.json");
    kevents(&["simulate", "--seed", "7", "--write-eventlist", sim.to_str().unwrap()]);
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/dumps/katas-10-init-container.json");
    let mut reports = vec![];
    for (name, dump) in [("simulator", &sim), ("katas-10-init-container", &real)] {
        let html = out.join(format!("{name}.html"));
        let said = kevents(&["report", dump.to_str().unwrap(), "-o", html.to_str().unwrap()]);
        assert!(said.contains(" incidents"), "{said}");
        // Outside the data block (messages may quote URLs), nothing refers to anything to load.
        let page = std::fs::read_to_string(&html).unwrap();
        let (head, rest) = page.split_once(r#"<script type="application/json" id="kevents-data">"#).unwrap();
        let code = format!("{head}{}", rest.split_once("</script>").unwrap().1);
        for needle in ["https://", "http://", " src=", "url(", "@import"] {
            assert!(!code.contains(needle), "{name}: the page refers to {needle}");
        }
        reports.push(expectations(name, dump, &html));
    }
    // The simulator plays several incidents; the real dump has one at least.
    assert!(reports[0]["incidents"].as_u64().unwrap() >= 5, "{}", reports[0]["incidents"]);
    assert!(reports[1]["incidents"].as_u64().unwrap() >= 1);
    check_in_chromium(&out, &reports);
}

/// Runs check.js over `reports`; every incident of each must have been checked.
fn check_in_chromium(out: &Path, reports: &[Value]) {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let spec = out.join("spec.json");
    std::fs::write(&spec, serde_json::to_vec_pretty(&json!({"screenshots": out.join("screenshots"), "reports": reports})).unwrap()).unwrap();
    npm_ci(&browser_dir);
    let run = Command::new("node").arg(browser_dir.join("check.js")).arg(&spec).output().expect("node");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "browser checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let results: Value = serde_json::from_str(&stdout).unwrap();
    for (r, expected) in results.as_array().unwrap().iter().zip(reports) {
        assert_eq!(r["checked"], expected["incidents"], "every incident of {} was checked", r["name"]);
        assert!(Path::new(r["screenshot"].as_str().unwrap()).exists());
    }
    eprintln!("screenshots in {}", out.join("screenshots").display());
}

/// One version of an event as the processor writes it.
#[allow(clippy::too_many_arguments)]
fn version(uid: &str, kind: &str, name: &str, reason: &str, count: i64, t_us: i64, first_us: i64, incident: &str, meta: &[(&str, &str)]) -> ProcessedEvent {
    ProcessedEvent {
        source: SourcePos { partition: 0, offset: count, seq: 0 },
        id: format!("{uid}-{count}"),
        cluster: ClusterId { name: "prod".into(), uid: "prod-uid".into() },
        watch_kind: WatchKind::Modified,
        observed_us: t_us,
        leader_epoch: 1,
        event: Box::new(NormalizedEvent {
            uid: uid.into(),
            namespace: "shop".into(),
            name: format!("{name}.{count:x}").into(),
            resource_version: count.to_string().into(),
            event_type: "Warning".into(),
            reason: reason.into(),
            note: format!("{reason} on {name}").into(),
            regarding: ObjectRef { kind: kind.into(), namespace: if kind == "Node" { "".into() } else { "shop".into() }, name: name.into(), ..Default::default() },
            count,
            first_seen_us: first_us,
            last_seen_us: t_us,
            created_us: first_us,
            ..Default::default()
        }),
        category: Arc::from("node"),
        severity: Severity::Error,
        rule: Arc::from("test"),
        correlation_id: incident.into(),
        occurrences: 1,
        metadata: Metadata::from_sorted(meta.iter().copied()),
        labels: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_incident_report_opens_in_chromium() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_browser_clickhouse");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let db = Services::get().fresh_database("report_browser").await;
    sink::migrate::apply(&db.client, &RenderOptions::single(&db.name)).await.unwrap();
    let t0 = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64) - 3_600_000_000;
    let pod = "web-6f9c8d7b5-x2kqp";
    let pod_meta = [("node", "n1"), ("owner_kind", "Deployment"), ("owner_name", "web")];
    // The pod's BackOff repeats three times; its first version stood alone.
    let versions = [
        version("node-ev", "Node", "n1", "NodeNotReady", 1, t0, t0, "inc-1", &[]),
        version("pod-ev", "Pod", pod, "BackOff", 1, t0 + 60_000_000, t0 + 60_000_000, "pod-ev", &pod_meta),
        version("pod-ev", "Pod", pod, "BackOff", 2, t0 + 120_000_000, t0 + 60_000_000, "inc-1", &pod_meta),
        version("pod-ev", "Pod", pod, "BackOff", 3, t0 + 180_000_000, t0 + 60_000_000, "inc-1", &pod_meta),
        version("other", "Pod", "db-0", "Unhealthy", 1, t0 + 90_000_000, t0 + 90_000_000, "other", &[]),
    ];
    let mut ins = db.client.insert::<EventRow>("events").await.unwrap();
    for v in &versions {
        ins.write(&EventRow::new(v.clone(), 0)).await.unwrap();
    }
    ins.end().await.unwrap();
    let incident = Incident {
        id: "inc-1".into(),
        version: 3,
        cluster: ClusterId { name: "prod".into(), uid: "prod-uid".into() },
        severity: Severity::Critical,
        root_cause: RootCause { event_id: "node-ev-1".into(), event_uid: "node-ev".into(), reason: "NodeNotReady".into(), ..Default::default() },
        rule: "node-not-ready".into(),
        event_count: 2,
        occurrences: 4,
        first_seen_us: t0,
        last_seen_us: t0 + 180_000_000,
        summary: "NodeNotReady on Node n1 caused 3 BackOff".into(),
        ..Default::default()
    };
    let mut ins = db.client.insert::<IncidentRow>("incidents").await.unwrap();
    ins.write(&IncidentRow::new(incident, 0)).await.unwrap();
    ins.end().await.unwrap();

    let html = out.join("clickhouse-incident.html");
    let url = Services::get().clickhouse_url();
    let said = kevents(&["report", "--url", &url, "--database", &db.name, "--incident", "inc-1", "-o", html.to_str().unwrap()]);
    assert!(said.contains(": 2 events, 1 incidents"), "{said}");
    let report = json!({"name": "clickhouse-incident", "path": html, "incidents": 1, "checks": [
        {"id": "inc-1", "lanes": 2, "root_message": "NodeNotReady on n1", "messages": ["NodeNotReady on n1", format!("BackOff on {pod}")],
         // The pod under its Node: the Node's events are filed under the Event's
         // namespace in the events table, and the report knows a Node has none.
         "lane_order": ["Node n1", format!("Pod shop/{pod}")]}
    ]});
    check_in_chromium(&out, &[report]);
}
