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
//! Screenshots go to `$CARGO_TARGET_TMPDIR/report_browser/`.

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kevents(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kevents")).args(args).output().unwrap();
    assert!(out.status.success(), "kevents {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The browser test's node packages, installed from the lock file.
fn npm_ci(dir: &Path) {
    let st = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .expect("npm (Node.js) is needed for the browser tests");
    assert!(st.success(), "npm ci in {}", dir.display());
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
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
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
    let spec = out.join("spec.json");
    std::fs::write(&spec, serde_json::to_vec_pretty(&json!({"screenshots": out.join("screenshots"), "reports": reports})).unwrap()).unwrap();

    npm_ci(&browser_dir);
    let run = Command::new("node").arg(browser_dir.join("check.js")).arg(&spec).output().expect("node");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "browser checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let results: Value = serde_json::from_str(&stdout).unwrap();
    for (r, expected) in results.as_array().unwrap().iter().zip(&reports) {
        assert_eq!(r["checked"], expected["incidents"], "every incident of {} was checked", r["name"]);
        assert!(Path::new(r["screenshot"].as_str().unwrap()).exists());
    }
    eprintln!("screenshots in {}", out.join("screenshots").display());
}
