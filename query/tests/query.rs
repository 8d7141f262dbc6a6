//! The query API against the real ClickHouse: a known data set of events and incident
//! versions is loaded, and every answer of `Store::events`, `Store::aggregate` and
//! `Store::incidents` must equal the same question answered in plain Rust over the
//! generated data (not over ClickHouse). Also: which table an aggregate reads (via the
//! compiled statement that `--explain` prints), that a filter value shaped like SQL
//! is only a value, and that the JSON / CSV outputs parse.


use schemas::clickhouse::RenderOptions;
use schemas::records::{Incident, ProcessedEvent, RootCause, SourcePos, Status};
use schemas::{ClusterId, Severity};
use kevents_query::{
    aggregate, events, incidents, AggregateQuery, AggregateRow, EventQuery, Filter, Format, GroupBy, IncidentFilter,
    Interval, Metric, ObjectRef, Source, Store, TimeRange,
};
use sink::rows::{EventRow, IncidentRow};
use std::collections::BTreeMap;
use testkit::services::{Services, TestDb};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const N_EVENTS: usize = 420;

/// One generated event, as the test's model sees it.
#[derive(Debug, Clone)]
struct Ev {
    id: String,
    cluster: &'static str,
    namespace: String,
    kind: &'static str,
    name: String,
    reason: &'static str,
    category: &'static str,
    severity: Severity,
    message: String,
    correlation_id: String,
    occurrences: i64,
    time_ms: i64,
}

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Events over the 48 hours before `base` + 48h (times at random milliseconds, so
/// window edges and bucket alignment matter). Recent enough for the 30-day TTL.
fn generate(base: i64) -> Vec<Ev> {
    let mut r = Lcg(42);
    let clusters = ["prod-eu", "prod-us", "staging"];
    let namespaces = ["default", "payments", "o'brien", "kube-system"];
    let reasons = [
        ("BackOff", "workload"),
        ("FailedScheduling", "scheduling"),
        ("Pulled", "image"),
        ("OOMKilling", "node"),
        ("Unhealthy", "probe"),
    ];
    let sev = [Severity::Info, Severity::Warning, Severity::Error, Severity::Critical];
    (0..N_EVENTS)
        .map(|i| {
            let (reason, category) = reasons[r.next(reasons.len() as u64) as usize];
            let kind = ["Pod", "Pod", "Pod", "Node", "Deployment"][r.next(5) as usize];
            let namespace = if kind == "Node" { String::new() } else { namespaces[r.next(4) as usize].to_string() };
            let message = if reason == "OOMKilling" {
                format!("Memory cgroup out of memory: Killed process {i} (oom victim)")
            } else {
                format!("{reason} happened to object {i}")
            };
            Ev {
                id: format!("ev-{i:04}"),
                cluster: clusters[r.next(3) as usize],
                namespace,
                kind,
                name: format!("{}-{}", kind.to_lowercase(), r.next(8)),
                reason,
                category,
                severity: sev[r.next(4) as usize],
                message,
                correlation_id: format!("corr-{}", r.next(9)),
                occurrences: 1 + r.next(5) as i64,
                time_ms: base + r.next(48 * HOUR as u64) as i64,
            }
        })
        .collect()
}

fn row(e: &Ev, i: usize) -> EventRow {
    let mut p = ProcessedEvent {
        // Loaded from outside the pipeline (no Kafka position tracked).
        source: SourcePos { partition: -1, offset: i as i64, seq: 0 },
        id: e.id.clone(),
        cluster: ClusterId { name: e.cluster.into(), uid: format!("uid-{}", e.cluster).into() },
        observed_us: e.time_ms * 1000,
        category: e.category.into(),
        severity: e.severity,
        rule: "test".into(),
        correlation_id: e.correlation_id.clone(),
        occurrences: e.occurrences,
        ..Default::default()
    };
    p.event.uid = format!("uid-{}", e.id).into();
    p.event.namespace = e.namespace.clone().into();
    p.event.regarding.namespace = e.namespace.clone().into();
    p.event.regarding.kind = e.kind.into();
    p.event.regarding.name = e.name.clone().into();
    p.event.reason = e.reason.into();
    p.event.event_type = "Warning".into();
    p.event.note = e.message.clone().into();
    p.event.count = e.occurrences;
    p.event.created_us = e.time_ms * 1000;
    p.event.last_seen_us = e.time_ms * 1000;
    EventRow::new(p, 0)
}

/// An incident version, as the model sees it.
#[derive(Debug, Clone)]
struct Inc {
    id: &'static str,
    version: i64,
    cluster: &'static str,
    status: Status,
    severity: Severity,
    root_namespace: &'static str,
    event_count: i64,
    last_seen_ms: i64,
}

fn incident_versions(base: i64) -> Vec<Inc> {
    let v = |id, version, cluster, status, severity, root_namespace, event_count, last_h: i64| Inc {
        id,
        version,
        cluster,
        status,
        severity,
        root_namespace,
        event_count,
        last_seen_ms: base + last_h * HOUR + 17,
    };
    vec![
        v("inc-a", 1, "prod-eu", Status::Open, Severity::Warning, "payments", 3, 1),
        v("inc-a", 2, "prod-eu", Status::Open, Severity::Error, "payments", 9, 5),
        v("inc-a", 3, "prod-eu", Status::Resolved, Severity::Error, "payments", 12, 6),
        v("inc-b", 1, "prod-us", Status::Open, Severity::Critical, "default", 4, 40),
        v("inc-c", 1, "prod-eu", Status::Open, Severity::Warning, "o'brien", 2, 30),
        v("inc-c", 2, "prod-eu", Status::Open, Severity::Warning, "o'brien", 5, 44),
        v("inc-d", 1, "staging", Status::Resolved, Severity::Info, "kube-system", 1, 10),
    ]
}

fn incident_row(x: &Inc, i: usize) -> IncidentRow {
    let rec = Incident {
        source: SourcePos { partition: -1, offset: i as i64, seq: 0 },
        id: x.id.into(),
        version: x.version,
        cluster: ClusterId { name: x.cluster.into(), uid: format!("uid-{}", x.cluster).into() },
        status: x.status,
        severity: x.severity,
        root_cause: RootCause {
            reason: "NodeNotReady".into(),
            category: "node".into(),
            object: schemas::ObjectRef {
                kind: "Node".into(),
                name: "node-1".into(),
                namespace: x.root_namespace.into(),
                ..Default::default()
            },
            ..Default::default()
        },
        rule: "node-down".into(),
        event_count: x.event_count,
        occurrences: x.event_count * 2,
        first_seen_us: (x.last_seen_ms - HOUR) * 1000,
        last_seen_us: x.last_seen_ms * 1000,
        summary: format!("{} v{}", x.id, x.version),
        ..Default::default()
    };
    IncidentRow::new(rec, 0)
}

struct Fixture {
    _db: TestDb,
    store: Store,
    events: Vec<Ev>,
    incidents: Vec<Inc>,
    base: i64,
}

async fn fixture(prefix: &str) -> Fixture {
    let db = Services::get().fresh_database(prefix).await;
    let server = clickhouse::Client::default().with_url(Services::get().clickhouse_url());
    sink::migrate::apply(&server, &RenderOptions { database: db.name.clone(), cluster: None, ttl_days: 30 })
        .await
        .unwrap();
    let now = kevents_query::now_ms();
    let base = now.div_euclid(HOUR) * HOUR - 48 * HOUR;
    let events = generate(base);
    let mut ins = db.client.insert::<EventRow>("events").await.unwrap();
    for (i, e) in events.iter().enumerate() {
        ins.write(&row(e, i)).await.unwrap();
    }
    ins.end().await.unwrap();
    let incidents = incident_versions(base);
    let mut ins = db.client.insert::<IncidentRow>("incidents").await.unwrap();
    for (i, x) in incidents.iter().enumerate() {
        ins.write(&incident_row(x, i)).await.unwrap();
    }
    ins.end().await.unwrap();
    let n: u64 = db.client.query("SELECT count() FROM events").fetch_one().await.unwrap();
    assert_eq!(n, N_EVENTS as u64);
    Fixture { store: Store::new(server, &db.name), _db: db, events, incidents, base }
}

/// The model's answer to a filter.
fn matches(f: &Filter, e: &Ev) -> bool {
    let inl = |list: &Vec<String>, v: &str| list.is_empty() || list.iter().any(|x| x == v);
    f.time.from_ms.is_none_or(|t| e.time_ms >= t)
        && f.time.to_ms.is_none_or(|t| e.time_ms < t)
        && inl(&f.clusters, e.cluster)
        && inl(&f.namespaces, &e.namespace)
        && inl(&f.categories, e.category)
        && inl(&f.severities, e.severity.as_str())
        && inl(&f.reasons, e.reason)
        && (f.kinds.is_empty() || f.kinds.iter().any(|k| k.eq_ignore_ascii_case(e.kind)))
        && f.correlation_id.as_ref().is_none_or(|c| *c == e.correlation_id)
        && f.object.as_ref().is_none_or(|o| {
            o.name == e.name
                && o.kind.as_ref().is_none_or(|k| k.eq_ignore_ascii_case(e.kind))
                && o.namespace.as_ref().is_none_or(|n| *n == e.namespace)
        })
        && f.text.as_ref().is_none_or(|t| e.message.to_ascii_lowercase().contains(&t.to_ascii_lowercase()))
}

fn model_events(evs: &[Ev], q: &EventQuery) -> Vec<(String, i64)> {
    let mut m: Vec<&Ev> = evs.iter().filter(|e| matches(&q.filter, e)).collect();
    m.sort_by(|a, b| (b.time_ms, &b.id).cmp(&(a.time_ms, &a.id)));
    m.into_iter().take(q.limit as usize).map(|e| (e.id.clone(), e.time_ms)).collect()
}

fn model_aggregate(evs: &[Ev], q: &AggregateQuery, resolution: i64) -> Vec<AggregateRow> {
    let from = q.filter.time.from_ms.unwrap().div_euclid(resolution) * resolution;
    let to = (q.filter.time.to_ms.unwrap() + resolution - 1).div_euclid(resolution) * resolution;
    let mut f = q.filter.clone();
    f.time = TimeRange { from_ms: Some(from), to_ms: Some(to) };
    let mut groups: BTreeMap<(i64, Vec<String>), Vec<&Ev>> = BTreeMap::new();
    for e in evs.iter().filter(|e| matches(&f, e)) {
        let bucket = q.interval.map(|i| e.time_ms.div_euclid(i.ms()) * i.ms()).unwrap_or(from);
        let keys = q
            .group_by
            .iter()
            .map(|g| match g {
                GroupBy::Cluster => e.cluster.to_string(),
                GroupBy::Namespace => e.namespace.clone(),
                GroupBy::Kind => e.kind.to_string(),
                GroupBy::Reason => e.reason.to_string(),
                GroupBy::Category => e.category.to_string(),
                GroupBy::Severity => e.severity.as_str().to_string(),
            })
            .collect();
        groups.entry((bucket, keys)).or_default().push(e);
    }
    let mut rows: Vec<AggregateRow> = groups
        .into_iter()
        .map(|((bucket_ms, group_keys), es)| AggregateRow {
            bucket_ms,
            group_keys,
            metric_values: q
                .metrics
                .iter()
                .map(|m| match m {
                    Metric::Count => es.len() as i64,
                    Metric::Occurrences => es.iter().map(|e| e.occurrences).sum(),
                    Metric::DistinctObjects => {
                        let objs: std::collections::BTreeSet<_> =
                            es.iter().map(|e| (e.cluster, &e.namespace, e.kind, &e.name)).collect();
                        objs.len() as i64
                    }
                })
                .collect(),
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.bucket_ms, -a.metric_values[0], &a.group_keys).cmp(&(b.bucket_ms, -b.metric_values[0], &b.group_keys))
    });
    if let Some(l) = q.limit {
        rows.truncate(l as usize);
    }
    rows
}

fn window(f: &Fixture, from_h: i64, from_extra_ms: i64, to_h: i64, to_extra_ms: i64) -> TimeRange {
    TimeRange { from_ms: Some(f.base + from_h * HOUR + from_extra_ms), to_ms: Some(f.base + to_h * HOUR + to_extra_ms) }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test]
async fn query_answers_equal_the_model() {
    let f = fixture("query_events").await;
    let cases: Vec<EventQuery> = vec![
        EventQuery { filter: Filter::default(), limit: 100 },
        EventQuery { filter: Filter::default(), limit: 10_000 },
        EventQuery {
            filter: Filter {
                time: window(&f, 3, 12_345, 20, 999),
                clusters: s(&["prod-eu", "staging"]),
                ..Default::default()
            },
            limit: 50,
        },
        EventQuery {
            filter: Filter { namespaces: s(&["o'brien"]), severities: s(&["error", "critical"]), ..Default::default() },
            limit: 1000,
        },
        EventQuery {
            filter: Filter { kinds: s(&["node"]), categories: s(&["node", "probe"]), ..Default::default() },
            limit: 1000,
        },
        EventQuery {
            filter: Filter { text: Some("OOM VICTIM".into()), reasons: s(&["OOMKilling"]), ..Default::default() },
            limit: 1000,
        },
        EventQuery { filter: Filter { correlation_id: Some("corr-3".into()), ..Default::default() }, limit: 1000 },
        EventQuery {
            filter: Filter { object: Some("pod/payments/pod-3".parse().unwrap()), ..Default::default() },
            limit: 1000,
        },
        EventQuery { filter: Filter { object: Some("node-2".parse().unwrap()), ..Default::default() }, limit: 1000 },
        EventQuery {
            filter: Filter {
                object: Some(ObjectRef {
                    kind: Some("Deployment".into()),
                    namespace: None,
                    name: "deployment-1".into(),
                }),
                ..Default::default()
            },
            limit: 1000,
        },
    ];
    for q in &cases {
        let want = model_events(&f.events, q);
        assert!(!want.is_empty(), "case selects nothing, so it proves nothing: {q:?}");
        let got: Vec<(String, i64)> = f.store.events(q).await.unwrap().into_iter().map(|r| (r.id, r.time_ms)).collect();
        assert_eq!(got, want, "{q:?}");
    }
    // Every field comes back as stored.
    let all = f.store.events(&EventQuery { filter: Filter::default(), limit: 10_000 }).await.unwrap();
    assert_eq!(all.len(), N_EVENTS);
    for r in &all {
        let e = f.events.iter().find(|e| e.id == r.id).unwrap();
        assert_eq!(
            (r.cluster.as_str(), r.namespace.as_str(), r.kind.as_str(), r.name.as_str(), r.reason.as_str()),
            (e.cluster, e.namespace.as_str(), e.kind, e.name.as_str(), e.reason)
        );
        assert_eq!(
            (r.category.as_str(), r.severity.as_str(), r.occurrences),
            (e.category, e.severity.as_str(), e.occurrences)
        );
        assert_eq!((&r.message, &r.correlation_id), (&e.message, &e.correlation_id));
    }
}

#[tokio::test]
async fn aggregate_answers_equal_the_model_and_pick_the_table() {
    let f = fixture("query_agg").await;
    let q = |time, group_by: Vec<GroupBy>, metrics: Vec<Metric>, interval, filter: Filter| AggregateQuery {
        filter: Filter { time, ..filter },
        group_by,
        metrics,
        interval,
        limit: None,
    };
    use GroupBy::*;
    use Metric::*;
    let cases: Vec<(AggregateQuery, Source, i64)> = vec![
        // A whole 48 h window: the hourly rollup.
        (
            q(window(&f, 0, 0, 48, 0), vec![Cluster], vec![Count, Occurrences], None, Filter::default()),
            Source::EventsPerHour,
            HOUR,
        ),
        // Under a day, unaligned edges: the per-minute rollup, window widened to whole minutes.
        (
            q(
                window(&f, 5, 31_500, 11, 7_250),
                vec![Namespace, Severity],
                vec![Occurrences, Count],
                None,
                Filter::default(),
            ),
            Source::EventsPerMinute,
            MINUTE,
        ),
        // Per-minute buckets over 3 h, with rollup-friendly filters.
        (
            q(
                window(&f, 10, 0, 13, 0),
                vec![Category],
                vec![Count],
                Some(Interval::Minute),
                Filter { clusters: s(&["prod-eu", "prod-us"]), ..Default::default() },
            ),
            Source::EventsPerMinute,
            MINUTE,
        ),
        // Hourly and daily buckets: the hourly rollup even for a short window.
        (
            q(window(&f, 2, 1, 9, 0), vec![Reason], vec![Count], Some(Interval::Hour), Filter::default()),
            Source::EventsPerHour,
            HOUR,
        ),
        (
            q(
                window(&f, 0, 0, 48, 0),
                vec![],
                vec![Count, Occurrences],
                Some(Interval::Day),
                Filter { severities: s(&["warning"]), ..Default::default() },
            ),
            Source::EventsPerHour,
            HOUR,
        ),
        // Things only the raw table has.
        (q(window(&f, 0, 0, 48, 0), vec![Kind], vec![Count], None, Filter::default()), Source::Events, HOUR),
        (
            q(window(&f, 1, 0, 7, 0), vec![Cluster], vec![DistinctObjects, Count], None, Filter::default()),
            Source::Events,
            MINUTE,
        ),
        (
            q(
                window(&f, 0, 0, 30, 0),
                vec![Reason, Cluster],
                vec![Count],
                Some(Interval::Hour),
                Filter { text: Some("oom".into()), ..Default::default() },
            ),
            Source::Events,
            HOUR,
        ),
        (
            q(
                window(&f, 0, 0, 48, 0),
                vec![Namespace],
                vec![Occurrences],
                None,
                Filter { object: Some("pod-4".parse().unwrap()), ..Default::default() },
            ),
            Source::Events,
            HOUR,
        ),
    ];
    for (q, source, resolution) in &cases {
        let st = aggregate::build(q).unwrap();
        assert_eq!(st.source, *source, "{q:?}");
        assert!(st.to_string().contains(&format!("-- table: {} (", source.table())), "{st}");
        let want = model_aggregate(&f.events, q, *resolution);
        assert!(!want.is_empty(), "case selects nothing: {q:?}");
        assert_eq!(f.store.aggregate(q).await.unwrap(), want, "{st}");
    }
    // A limit keeps the top groups of the first metric.
    let mut top = cases[0].0.clone();
    top.group_by = vec![Reason, Cluster];
    top.limit = Some(4);
    let got = f.store.aggregate(&top).await.unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(got, model_aggregate(&f.events, &top, HOUR));
    // The rollups and the raw table agree for the same question (adding a kind
    // filter that matches everything forces the raw table).
    let mut raw = cases[2].0.clone();
    raw.filter.kinds = s(&["pod", "node", "deployment"]);
    assert_eq!(aggregate::build(&raw).unwrap().source, Source::Events);
    assert_eq!(f.store.aggregate(&raw).await.unwrap(), f.store.aggregate(&cases[2].0).await.unwrap());
}

#[tokio::test]
async fn incidents_answers_equal_the_model() {
    let f = fixture("query_inc").await;
    let latest: Vec<&Inc> = {
        let mut m: BTreeMap<(&str, &str), &Inc> = BTreeMap::new();
        for x in &f.incidents {
            let e = m.entry((x.cluster, x.id)).or_insert(x);
            if x.version > e.version {
                *e = x;
            }
        }
        m.into_values().collect()
    };
    let status = |s: Status| match s {
        Status::Open => "open",
        Status::Resolved => "resolved",
    };
    let cases = vec![
        IncidentFilter::default(),
        IncidentFilter { statuses: s(&["open"]), ..Default::default() },
        IncidentFilter { clusters: s(&["prod-eu"]), severities: s(&["error", "warning"]), ..Default::default() },
        IncidentFilter { namespaces: s(&["o'brien", "kube-system"]), ..Default::default() },
        IncidentFilter { since_ms: Some(f.base + 10 * HOUR), ..Default::default() },
        IncidentFilter { limit: 2, ..Default::default() },
    ];
    for c in &cases {
        let inl = |list: &Vec<String>, v: &str| list.is_empty() || list.iter().any(|x| x == v);
        let mut want: Vec<&&Inc> = latest
            .iter()
            .filter(|x| {
                inl(&c.clusters, x.cluster)
                    && inl(&c.namespaces, x.root_namespace)
                    && inl(&c.statuses, status(x.status))
                    && inl(&c.severities, x.severity.as_str())
                    && c.since_ms.is_none_or(|t| x.last_seen_ms >= t)
            })
            .collect();
        want.sort_by(|a, b| (b.last_seen_ms, a.id).cmp(&(a.last_seen_ms, b.id)));
        let want: Vec<(String, i64, i64, String)> = want
            .into_iter()
            .take(c.limit as usize)
            .map(|x| (x.id.to_string(), x.version, x.event_count, status(x.status).to_string()))
            .collect();
        assert!(!want.is_empty(), "{c:?}");
        let got: Vec<_> = f
            .store
            .incidents(c)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.version, r.event_count, r.status))
            .collect();
        assert_eq!(got, want, "{c:?}");
    }
    let all = f.store.incidents(&IncidentFilter::default()).await.unwrap();
    let a = all.iter().find(|r| r.id == "inc-a").unwrap();
    assert_eq!(
        (a.root_reason.as_str(), a.root_kind.as_str(), a.root_name.as_str()),
        ("NodeNotReady", "Node", "node-1")
    );
    assert_eq!((a.severity.as_str(), a.occurrences, a.summary.as_str()), ("error", 24, "inc-a v3"));
    assert_eq!(a.last_seen_ms - a.first_seen_ms, HOUR);
}

/// A value shaped like SQL is only a value: no error, no rows — while a real value
/// with a quote in it (the namespace `o'brien`) matches exactly its rows.
#[tokio::test]
async fn injection_attempts_are_plain_values() {
    let f = fixture("query_inj").await;
    let evil = "x' OR 1=1 --";
    let win = window(&f, 0, 0, 48, 0);
    for filter in [
        Filter { clusters: s(&[evil]), ..Default::default() },
        Filter { namespaces: s(&[evil, "x') OR has(['a'],'a"]), ..Default::default() },
        Filter { text: Some(evil.into()), ..Default::default() },
        Filter { correlation_id: Some(evil.into()), ..Default::default() },
        Filter {
            object: Some(ObjectRef { kind: Some(evil.into()), namespace: Some(evil.into()), name: evil.into() }),
            ..Default::default()
        },
    ] {
        assert!(
            f.store.events(&EventQuery { filter: filter.clone(), limit: 100 }).await.unwrap().is_empty(),
            "{filter:?}"
        );
        let agg = AggregateQuery {
            filter: Filter { time: win, ..filter },
            group_by: vec![GroupBy::Cluster],
            metrics: vec![Metric::Count],
            interval: None,
            limit: None,
        };
        assert!(f.store.aggregate(&agg).await.unwrap().is_empty());
    }
    let inc = IncidentFilter { statuses: s(&[evil]), clusters: s(&["prod-eu"]), ..Default::default() };
    assert!(f.store.incidents(&inc).await.unwrap().is_empty());
    let quoted = EventQuery { filter: Filter { namespaces: s(&["o'brien"]), ..Default::default() }, limit: 10_000 };
    let n = f.events.iter().filter(|e| e.namespace == "o'brien").count();
    assert!(n > 0);
    assert_eq!(f.store.events(&quoted).await.unwrap().len(), n);
}

#[tokio::test]
async fn outputs_parse() {
    let f = fixture("query_out").await;
    let q = EventQuery { filter: Filter { namespaces: s(&["payments"]), ..Default::default() }, limit: 20 };
    let rows = f.store.events(&q).await.unwrap();
    assert_eq!(rows.len(), 20);
    let t = events::table(&rows);
    let json: serde_json::Value = serde_json::from_str(&t.render(Format::Json)).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 20);
    assert_eq!(arr[0]["id"], rows[0].id.as_str());
    assert_eq!(arr[0]["occurrences"], rows[0].occurrences);
    assert_eq!(arr[0]["time"], kevents_query::format_ms(rows[0].time_ms).as_str());
    let csv = t.render(Format::Csv);
    assert!(csv.starts_with("time,cluster,namespace,kind,name,type,reason,category,severity,component,count,occurrences,correlation_id,message,id\r\n"));
    assert_eq!(csv.split("\r\n").filter(|l| !l.is_empty()).count(), 21);
    let text = t.render(Format::Table);
    assert!(text.ends_with("(20 rows)\n"));

    let agg = AggregateQuery {
        filter: Filter { time: window(&f, 0, 0, 48, 0), ..Default::default() },
        group_by: vec![GroupBy::Severity],
        metrics: vec![Metric::Count, Metric::Occurrences],
        interval: Some(Interval::Day),
        limit: None,
    };
    let rows = f.store.aggregate(&agg).await.unwrap();
    let csv = aggregate::table(&agg, &rows).render(Format::Csv);
    assert!(csv.starts_with("bucket,severity,count,occurrences\r\n"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&aggregate::table(&agg, &rows).render(Format::Json)).unwrap();
    let total: i64 = json.as_array().unwrap().iter().map(|r| r["count"].as_i64().unwrap()).sum();
    assert_eq!(total, N_EVENTS as i64);
    let inc = f.store.incidents(&IncidentFilter::default()).await.unwrap();
    let csv = incidents::table(&inc).render(Format::Csv);
    assert!(
        csv.starts_with("last_seen,first_seen,cluster,status,severity,root_reason,root_category,root_object,"),
        "{csv}"
    );
    assert!(csv.contains("Node/o'brien/node-1"), "{csv}");
}
