//! Every panel of every dashboard in `grafana/dashboards/` runs against the real ClickHouse
//! loaded with a simulated fleet, with its Grafana macros and variables expanded the way
//! the official ClickHouse data source plugin (grafana-clickhouse-datasource 4.x) and
//! Grafana expand them, and must return the shape the panel draws.
//!
//! The data: three clusters playing every simulator scenario plus background noise
//! (one cluster's collector stops 30 minutes early, so it is silent), turned into raw
//! records as a collector would publish them, run through the processor's own step
//! (`PartitionState::process`), and every output inserted with the sink's row types and
//! insert path into a fresh database migrated by the sink. While the processor emits no
//! patterns or alerts, stand-ins built from its events and incidents are loaded instead
//! (said on stderr), so those panels run over rows too; once it emits them, only its own
//! are used.
//!
//! Each panel's SQL is expanded as the plugin and Grafana do it (`grafana_expand`), with
//! every variable at All over the data's range at 1-minute and 1-hour intervals, over the
//! last 40 days (hourly rollups), and with every variable at a concrete value (a quote in
//! the text box checks the escaping end to end). Panels over events, rollups and
//! heartbeats, incidents, patterns and alerts must return rows at All.

mod grafana_expand;

use grafana_expand::{expand, Frame, Sel};
use prometheus_client::registry::Registry;
use schemas::clickhouse::RenderOptions;
use runtime::ops::Health;
use schemas::model::NormalizedEvent;
use schemas::ids::stable_id;
use schemas::records::{
    Alert, AlertSource, CollectorMeta, Heartbeat, Incident, Pattern, PatternScope, ProcessedEvent, RawRecord, Status, WatchEvent,
    WatchKind,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::services::{Services, TestDb};
use testkit::sim::{generate_run, ClusterCtx, Emission, ScenarioKind};

use processor::output::Output;
use processor::step::{Engine, PartitionState};
use sink::insert::{insert_batch, InsertCtx};
use sink::rows::{AlertRow, EventRow, HeartbeatRow, IncidentRow, PatternRow};

const MINUTE_MS: i64 = 60_000;

// ---------------------------------------------------------------- the simulated fleet

struct Loaded {
    db: TestDb,
    counts: BTreeMap<&'static str, usize>,
    from_ms: i64,
    to_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Raw records of one cluster as its collector would publish them: every emission a
/// watch event (ADDED first, MODIFIED after, DELETED with the last body), a heartbeat
/// every 15 s, in order. The run ends `silence_min` minutes before now.
fn raw_records(name: &str, seed: u64, silence_min: i64) -> Vec<RawRecord> {
    let ctx = ClusterCtx::new(name, 5);
    let stagger = Duration::from_secs(90);
    let probe = generate_run(&ScenarioKind::ALL, seed, UNIX_EPOCH, &ctx, stagger);
    let span = probe.emissions.last().map(|e| e.offset).unwrap_or_default();
    let end = SystemTime::now() - Duration::from_secs(60 * silence_min as u64 + 60);
    let start = end - span;
    let run = generate_run(&ScenarioKind::ALL, seed, start, &ctx, stagger);
    let start_us = start.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
    let cluster = schemas::ClusterId { name: name.into(), uid: format!("uid-{name}").into() };
    let collector = CollectorMeta { instance: format!("{name}-collector-0"), leader_epoch: 1 };
    let (mut out, mut rv, mut seen, mut last_body) = (Vec::new(), 1000u64, HashMap::new(), HashMap::<(String, String), NormalizedEvent>::new());
    let mut next_hb = start_us;
    let heartbeat = |t: i64, rv: u64| RawRecord {
        cluster: cluster.clone(),
        collector: collector.clone(),
        observed_us: t,
        resource_version: rv.to_string(),
        event: None,
        heartbeat: Some(Heartbeat { scope: String::new(), resource_version: rv.to_string(), last_bookmark_us: t, published_since_last: 0 }),
    };
    for e in &run.emissions {
        let t = start_us + e.offset.as_micros() as i64;
        while next_hb <= t {
            out.push(heartbeat(next_hb, rv));
            next_hb += 15_000_000;
        }
        rv += 1;
        let (kind, mut ev) = match &e.emission {
            Emission::Apply(k) => {
                let ev = schemas::convert::from_core_v1(k);
                let first = seen.insert(ev.uid.clone(), ()).is_none();
                (if first { WatchKind::Added } else { WatchKind::Modified }, ev)
            }
            Emission::Delete { namespace, name } => match last_body.get(&(namespace.clone(), name.clone())) {
                Some(ev) => (WatchKind::Deleted, ev.clone()),
                None => continue,
            },
        };
        ev.resource_version = rv.to_string().into();
        last_body.insert((ev.namespace.to_string(), ev.name.to_string()), ev.clone());
        out.push(RawRecord {
            cluster: cluster.clone(),
            collector: collector.clone(),
            observed_us: t,
            resource_version: rv.to_string(),
            event: Some(WatchEvent { kind, event: Box::new(ev) }),
            heartbeat: None,
        });
    }
    out.push(heartbeat(next_hb, rv));
    out
}

/// One batch through the sink's insert path (`insert_batch`: RowBinary, dedup token,
/// retried until acknowledged — here given up, and failed, after two minutes). A macro
/// so each row type meets the insert bounds without this crate naming them.
macro_rules! insert {
    ($db:expr, $table:expr, $rows:expr) => {{
        let (db, table, rows): (&TestDb, &str, &[_]) = ($db, $table, $rows);
        if !rows.is_empty() {
            let metrics = sink::metrics::Metrics::register(&mut Registry::default());
            let health = Health::default();
            let stop = runtime::shutdown::CancellationToken::new();
            let cancel = stop.clone();
            let guard = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(120)).await;
                cancel.cancel();
            });
            let mut ctx = InsertCtx {
                client: db.client.clone(),
                metrics,
                health,
                failing: sink::retrying::Failing::detached(),
                max_backoff: Duration::from_secs(2),
                timeout: Duration::from_secs(60),
                stop,
            };
            let token = sink::insert::token(table, "dashboards-test", &[], rows.len());
            insert_batch(&mut ctx, table, rows, &token).await.unwrap_or_else(|e| panic!("inserting into {table}: {e}"));
            guard.abort();
        }
    }};
}

async fn load() -> Loaded {
    let db = Services::get().fresh_database("dashboards").await;
    sink::migrate::apply(&db.client, &RenderOptions { database: db.name.clone(), cluster: None, ttl_days: 30 })
        .await
        .expect("the sink's migrations");
    let engine = Engine::builtin();
    let (mut events, mut beats, mut incidents, mut patterns, mut alerts) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut from_ms, mut to_ms) = (i64::MAX, i64::MIN);
    // The third cluster's collector stopped 30 minutes ago: it shows as silent.
    for (p, (name, silence)) in [("prod-eu-1", 0), ("prod-us-1", 0), ("staging-1", 30)].into_iter().enumerate() {
        let p = p as i32;
        let mut state = PartitionState::new(p, 7_200_000_000, 1_000_000);
        let mut out = Vec::new();
        for (offset, raw) in raw_records(name, 7 + p as u64, silence).into_iter().enumerate() {
            from_ms = from_ms.min(raw.observed_us / 1000);
            to_ms = to_ms.max(raw.observed_us / 1000);
            state.process(&engine, raw, offset as i64, &mut out).expect("simulated records are well-formed");
        }
        for o in out {
            match o {
                Output::Processed(r) => events.push((p, r)),
                Output::Heartbeat(r) => beats.push(HeartbeatRow::new(r, p)),
                Output::Incident(r) => incidents.push((p, r)),
                Output::Pattern(r) => patterns.push((p, r)),
                Output::Alert(r) => alerts.push((p, r)),
            }
        }
    }
    let produced = (patterns.len(), alerts.len());
    if patterns.is_empty() {
        patterns = stand_in_patterns(&events);
    }
    if alerts.is_empty() {
        alerts = stand_in_alerts(&incidents);
    }
    if produced != (patterns.len(), alerts.len()) {
        eprintln!(
            "the processor produced {} patterns and {} alerts: loading stand-ins built from its events and incidents ({} patterns, {} alerts) so those panels run over rows too",
            produced.0, produced.1, patterns.len(), alerts.len()
        );
    }
    let (n_events, n_incidents, n_patterns, n_alerts) = (events.len(), incidents.len(), patterns.len(), alerts.len());
    insert!(&db, "events", &rows(events, EventRow::new));
    insert!(&db, "cluster_heartbeats", &beats);
    insert!(&db, "incidents", &rows(incidents, IncidentRow::new));
    insert!(&db, "patterns", &rows(patterns, PatternRow::new));
    insert!(&db, "alerts", &rows(alerts, AlertRow::new));
    let counts = BTreeMap::from([
        ("events", n_events),
        ("heartbeats", beats.len()),
        ("incidents", n_incidents),
        ("patterns", n_patterns),
        ("alerts", n_alerts),
    ]);
    eprintln!("loaded from the simulated fleet: {counts:?}");
    assert!(n_events > 1000 && beats.len() > 100 && n_incidents > 0, "{counts:?}");
    Loaded { db, counts, from_ms, to_ms }
}

/// Records (with the raw partition they came from) into the sink's rows.
fn rows<R, T>(v: Vec<(i32, R)>, f: fn(R, i32) -> T) -> Vec<T> {
    v.into_iter().map(|(p, r)| f(r, p)).collect()
}

/// Until the processor emits patterns: episodes of each (reason, kind, namespace) that
/// repeated in a cluster, each with an earlier episode a day before (a recurrence), the
/// same key in several clusters (fleet-wide), and one fleet-scope summary.
fn stand_in_patterns(events: &[(i32, ProcessedEvent)]) -> Vec<(i32, Pattern)> {
    let mut groups: BTreeMap<(schemas::model::Text, schemas::model::Text, schemas::model::Text, schemas::model::Text), Vec<&ProcessedEvent>> = BTreeMap::new();
    for (_, e) in events {
        let k = (e.cluster.name.clone(), e.event.reason.clone(), e.event.regarding.kind.clone(), e.event.regarding.namespace.clone());
        groups.entry(k).or_default().push(e);
    }
    let mut out = Vec::new();
    for ((cluster, reason, kind, ns), evs) in groups.into_iter().filter(|(_, v)| v.len() >= 3) {
        let first = evs.iter().map(|e| e.observed_us).min().unwrap();
        let last = evs.iter().map(|e| e.observed_us).max().unwrap();
        let key = format!("{reason}|{kind}|{ns}|{reason} on {kind} <name>");
        let p = |id: String, first_us: i64, last_us: i64, previous: Vec<i64>, status| Pattern {
            id,
            version: 1,
            scope: PatternScope::Cluster,
            cluster: evs[0].cluster.clone(),
            clusters: vec![cluster.to_string()],
            key: key.clone(),
            reason: reason.to_string(),
            kind: kind.to_string(),
            namespace: ns.to_string(),
            template: format!("{reason} on {kind} <name>"),
            status,
            count: evs.len() as i64,
            first_seen_us: first_us,
            last_seen_us: last_us,
            per_minute: evs.len() as f64 / ((last_us - first_us).max(60_000_000) as f64 / 60e6),
            samples: evs.iter().take(3).map(|e| e.id.clone()).collect(),
            previous_episodes: previous,
            anomaly_score: if evs.len() > 20 { 3.5 } else { 0.0 },
            ..Default::default()
        };
        let day = 86_400_000_000;
        out.push((0, p(stable_id(&[&cluster, &key, "earlier"]), first - day, last - day, vec![], Status::Resolved)));
        out.push((0, p(stable_id(&[&cluster, &key]), first, last, vec![first - day], Status::Open)));
    }
    let mut by_key: BTreeMap<String, Vec<Pattern>> = BTreeMap::new();
    for (_, p) in &out {
        by_key.entry(p.key.clone()).or_default().push(p.clone());
    }
    if let Some(fleet) = by_key.values().filter(|v| v.len() >= 4).max_by_key(|v| v.len()) {
        let mut f = fleet.last().unwrap().clone();
        f.id = stable_id(&["fleet", &f.key]);
        f.scope = PatternScope::Fleet;
        f.cluster = schemas::ClusterId::default();
        f.clusters = fleet.iter().map(|p| p.cluster.name.to_string()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        out.push((0, f));
    }
    out
}

/// Until the processor emits alerts: one per incident of severity error or above,
/// firing while the incident is open, resolved when it was.
fn stand_in_alerts(incidents: &[(i32, Incident)]) -> Vec<(i32, Alert)> {
    incidents
        .iter()
        .filter(|(_, i)| i.severity >= schemas::Severity::Error)
        .map(|(p, i)| {
            let firing = i.status == Status::Open;
            let a = Alert {
                id: stable_id(&["incident-severity", &i.id]),
                version: 1,
                rule: "incident-severity".into(),
                origin: AlertSource::Incident,
                origin_id: i.id.clone(),
                firing,
                severity: i.severity,
                cluster: i.cluster.clone(),
                namespace: i.root_cause.object.namespace.to_string(),
                summary: i.summary.clone(),
                starts_us: i.first_seen_us,
                ends_us: if firing { 0 } else { i.last_seen_us },
                ..Default::default()
            };
            (*p, a)
        })
        .collect()
}

// ---------------------------------------------------------------- running panels

struct Answer {
    columns: Vec<(String, String)>,
    rows: Vec<Value>,
}

async fn run(db: &TestDb, sql: &str) -> Result<Answer, String> {
    let bytes = db.client.query(sql).fetch_bytes("JSON").map_err(|e| e.to_string())?.collect().await.map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&bytes[..]).map_err(|e| e.to_string())?;
    let columns = v["meta"].as_array().unwrap().iter().map(|m| (m["name"].as_str().unwrap().to_string(), m["type"].as_str().unwrap().to_string())).collect();
    Ok(Answer { columns, rows: v["data"].as_array().cloned().unwrap_or_default() })
}

fn base_type(t: &str) -> &str {
    let mut t = t;
    for w in ["Nullable(", "LowCardinality("] {
        if let Some(inner) = t.strip_prefix(w) {
            t = &inner[..inner.len() - 1];
        }
    }
    t
}

fn numeric(t: &str) -> bool {
    let t = base_type(t);
    ["Int", "UInt", "Float", "Decimal"].iter().any(|p| t.starts_with(p))
}

/// Which loaded data a query reads beyond events, rollups and heartbeats.
fn data_class(sql: &str) -> &'static str {
    if sql.contains("incidents_latest") || sql.contains("${incident") {
        "incidents"
    } else if ["patterns_latest", "fleet_patterns", "pattern_episodes"].iter().any(|t| sql.contains(t)) {
        "patterns"
    } else if sql.contains("alerts_latest") {
        "alerts"
    } else {
        "events"
    }
}

/// Every panel of a dashboard, rows' nested panels included.
fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten().cloned());
        } else {
            out.push(p.clone());
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    All,
    Concrete,
}

/// Resolve the dashboard's variables in order (later queries see earlier selections).
async fn variables(db: &TestDb, dash: &Value, f: Frame, mode: Mode, loaded: &Loaded) -> HashMap<String, Sel> {
    let mut vars = HashMap::new();
    for v in dash["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap().to_string();
        let options: Vec<String> = match v["type"].as_str().unwrap() {
            "datasource" => continue,
            "constant" => {
                vars.insert(name, Sel::One(v["query"].as_str().unwrap().to_string()));
                continue;
            }
            "textbox" => {
                // A quote in the value checks the escaping end to end.
                vars.insert(name, Sel::One(if mode == Mode::All { String::new() } else { "o'brien".into() }));
                continue;
            }
            "custom" => v["query"].as_str().unwrap().split(',').map(|s| s.trim().to_string()).collect(),
            "query" => {
                let sql = v["query"]["rawSql"].as_str().expect("query variables hold {editorType, rawSql}");
                let ans = run(db, &expand(sql, &vars, f)).await.unwrap_or_else(|e| panic!("variable {name}: {e}\n{sql}"));
                let opts: Vec<String> = ans.rows.iter().map(|r| r.as_object().unwrap().values().next().unwrap().as_str().map(str::to_string).unwrap_or_else(|| r.to_string())).collect();
                if data_class(sql) == "events" || loaded.counts[data_class(sql)] > 0 {
                    assert!(!opts.is_empty(), "variable {name} has no options over the loaded data");
                }
                opts
            }
            other => panic!("variable {name}: type {other} not handled by this test"),
        };
        let sel = if v["includeAll"] == true && mode == Mode::All {
            Sel::All(options)
        } else if v["multi"] == true {
            Sel::Multi(options.into_iter().take(1).collect())
        } else {
            let cur = v["current"]["value"].as_str().filter(|c| options.iter().any(|o| o == c));
            Sel::One(cur.map(str::to_string).or_else(|| options.first().cloned()).unwrap_or_default())
        };
        vars.insert(name, sel);
    }
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_runs_against_a_simulated_fleet() {
    let loaded = load().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../grafana/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    let (mut titles, mut uids, mut n_panels, mut n_queries) = (vec![], vec![], 0, 0);
    let data = Frame { from_ms: loaded.from_ms.div_euclid(MINUTE_MS) * MINUTE_MS - 10 * MINUTE_MS, to_ms: loaded.to_ms + MINUTE_MS, interval_ms: 60_000 };
    let long = Frame { from_ms: now_ms() - 40 * 24 * 60 * MINUTE_MS, to_ms: now_ms(), interval_ms: 3_600_000 };
    let frames = [(data, Mode::All), (Frame { interval_ms: 3_600_000, ..data }, Mode::All), (long, Mode::All), (data, Mode::Concrete)];
    for file in &files {
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let title = dash["title"].as_str().unwrap().to_string();
        titles.push(title.clone());
        uids.push(dash["uid"].as_str().unwrap().to_string());
        let tvars = dash["templating"]["list"].as_array().unwrap();
        assert!(tvars.iter().any(|v| v["name"] == "datasource" && v["query"] == "grafana-clickhouse-datasource"), "{title}: datasource variable");
        for (frame, mode) in frames {
            let vars = variables(&loaded.db, &dash, frame, mode, &loaded).await;
            for p in panels(&dash) {
                let ptitle = format!("{title} / {}", p["title"].as_str().unwrap());
                let ptype = p["type"].as_str().unwrap();
                let targets = p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{ptitle}: no query"));
                assert_eq!(p["datasource"]["type"], "grafana-clickhouse-datasource", "{ptitle}");
                for t in targets {
                    assert_eq!(t["datasource"]["type"], "grafana-clickhouse-datasource", "{ptitle}");
                    assert_eq!(t["datasource"]["uid"], "${datasource}", "{ptitle}");
                    assert_eq!(t["editorType"], "sql", "{ptitle}");
                    assert!(t["pluginVersion"].as_str().is_some_and(|v| v.starts_with('4')), "{ptitle}: a v4 query (else the plugin migrates it)");
                    let ts = ptype == "timeseries";
                    assert_eq!(t["format"], if ts { 0 } else { 1 }, "{ptitle}: format");
                    assert_eq!(t["queryType"], if ts { "timeseries" } else { "table" }, "{ptitle}: queryType");
                    let raw = t["rawSql"].as_str().unwrap();
                    // Grafana never goes below the panel's minimum interval.
                    let min = p["interval"].as_str().map(duration_ms).unwrap_or(0);
                    let frame = Frame { interval_ms: frame.interval_ms.max(min), ..frame };
                    let sql = expand(raw, &vars, frame);
                    let ans = run(&loaded.db, &sql).await.unwrap_or_else(|e| panic!("{ptitle} ({mode:?}, {frame:?}) failed: {e}\n{sql}"));
                    n_queries += 1;
                    check_shape(&p, &ans, &ptitle, &sql);
                    let class = data_class(raw);
                    let must_have_rows = mode == Mode::All && (class == "events" || loaded.counts[class] > 0);
                    if must_have_rows {
                        assert!(!ans.rows.is_empty(), "{ptitle}: no rows over the loaded {class} ({frame:?})\n{sql}");
                    }
                }
                if mode == Mode::All && frame.interval_ms == 60_000 {
                    n_panels += 1;
                }
            }
        }
    }
    for want in ["Fleet overview", "Incidents", "Patterns", "Alerts", "Event explorer"] {
        assert!(titles.iter().any(|t| t.contains(want)), "no {want} dashboard in {titles:?}");
    }
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), files.len(), "dashboard uids are unique");
    eprintln!("{} dashboards, {n_panels} panels, {n_queries} panel queries run; data {:?}", files.len(), loaded.counts);
}

/// A Grafana interval such as `30s`, `1m`, `1h`, in milliseconds.
fn duration_ms(s: &str) -> i64 {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().unwrap_or_else(|_| panic!("interval {s:?}"));
    n * match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => panic!("interval unit {other:?}"),
    }
}

/// The shape the panel draws: a time series needs a time column, numbers and (for
/// the plugin's long-to-wide step) rows in time order; a stat a number; a table exactly
/// the columns its organize transformation lays out.
fn check_shape(p: &Value, ans: &Answer, what: &str, sql: &str) {
    let cols: Vec<&str> = ans.columns.iter().map(|(n, _)| n.as_str()).collect();
    match p["type"].as_str().unwrap() {
        "timeseries" => {
            let time = ans.columns.iter().find(|(n, _)| n == "time").unwrap_or_else(|| panic!("{what}: no time column in {cols:?}"));
            assert!(base_type(&time.1).starts_with("DateTime"), "{what}: time is {}", time.1);
            assert!(ans.columns.iter().any(|(_, t)| numeric(t)), "{what}: no numeric column in {:?}", ans.columns);
            for (n, t) in &ans.columns {
                assert!(n == "time" || numeric(t) || base_type(t) == "String", "{what}: column {n} {t} is neither a value nor a label");
            }
            let times: Vec<&str> = ans.rows.iter().map(|r| r["time"].as_str().unwrap()).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{what}: rows not in time order\n{sql}");
        }
        "stat" => {
            assert!(ans.columns.iter().any(|(_, t)| numeric(t)), "{what}: no number in {:?}", ans.columns);
            assert_eq!(ans.rows.len(), 1, "{what}: a stat reads one row");
        }
        "table" => {
            let org = p["transformations"].as_array().and_then(|t| t.iter().find(|t| t["id"] == "organize"));
            let index = org.and_then(|o| o["options"]["indexByName"].as_object()).unwrap_or_else(|| panic!("{what}: tables list their columns in an organize transformation"));
            let mut want: Vec<(&str, i64)> = index.iter().map(|(k, v)| (k.as_str(), v.as_i64().unwrap())).collect();
            want.sort_by_key(|(_, i)| *i);
            let want: Vec<&str> = want.into_iter().map(|(k, _)| k).collect();
            assert_eq!(cols, want, "{what}: columns");
        }
        other => panic!("{what}: panel type {other} not checked by this test"),
    }
}
