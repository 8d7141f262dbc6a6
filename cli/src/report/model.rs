//! The report's data, independent of where it came from (a dump through the
//! analyze engine, or ClickHouse), and its compact JSON form embedded in the page.
//!
//! The page has to open 100,000 events in under 2 s, so the JSON is columnar
//! (one array per field, numbers not objects), every repeated string (reason,
//! category, namespace, message, …) is stored once in a string table and
//! referred to by index, and times are milliseconds from the earliest event.
//! The JavaScript renderer (assets/report.js) reads exactly these names; the
//! field list in [`Doc`] is the contract between the two halves.

use super::lanes;
use schemas::model::Severity;
use serde::Serialize;
use std::collections::HashMap;

/// One Kubernetes Event as the report shows it (its last version; occurrences
/// are its total).
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub uid: String,
    pub cluster: String,
    pub namespace: String,
    /// The involved object.
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub event_type: String,
    pub category: String,
    pub severity: Severity,
    pub component: String,
    pub message: String,
    pub occurrences: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The incident it belongs to; empty when it stands alone.
    pub incident: String,
    /// Facts the processor pulled out (node, owner_kind, owner_name, child, container, …).
    pub metadata: Vec<(String, String)>,
}

impl Event {
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

/// One incident (its latest version).
#[derive(Debug, Clone, Default)]
pub struct Incident {
    pub id: String,
    pub cluster: String,
    pub status: String,
    pub severity: Severity,
    pub rule: String,
    /// The root cause event's uid.
    pub root_uid: String,
    pub summary: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub event_count: i64,
    pub occurrences: i64,
}

/// One pattern episode and the starts of the earlier episodes of its key: the
/// query crate's row, which the report from the store reads as is.
pub use kevents_query::ReportPattern as Pattern;

/// Everything a report shows.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub title: String,
    /// Where the data came from, said in the page ("events.json", "ClickHouse kevents, last 1d").
    pub source: String,
    pub events: Vec<Event>,
    pub incidents: Vec<Incident>,
    pub patterns: Vec<Pattern>,
}

/// Strings stored once, referred to by index (0 is always "").
#[derive(Default)]
struct Strings {
    index: HashMap<String, u32>,
    list: Vec<String>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings::default();
        s.id("");
        s
    }
    fn id(&mut self, v: &str) -> u32 {
        if let Some(i) = self.index.get(v) {
            return *i;
        }
        let i = self.list.len() as u32;
        self.list.push(v.to_string());
        self.index.insert(v.to_string(), i);
        i
    }
}

/// The events, one array per field, in time order (index = event number).
#[derive(Serialize, Default)]
pub struct EventColumns {
    /// First seen, ms after `t0`.
    pub t: Vec<i64>,
    /// Last seen minus first seen, ms.
    pub d: Vec<i64>,
    /// Severity 0 info, 1 warning, 2 error, 3 critical.
    pub sev: Vec<u8>,
    /// String ids: category, reason, type, component, message, metadata ("k=v" joined by "; ").
    pub cat: Vec<u32>,
    pub rsn: Vec<u32>,
    pub typ: Vec<u32>,
    pub cmp: Vec<u32>,
    pub msg: Vec<u32>,
    pub meta: Vec<u32>,
    /// Object id (index into `Doc::obj` / 4).
    pub obj: Vec<u32>,
    pub occ: Vec<i64>,
    /// Incident number (index into `Doc::inc`), -1 when it stands alone.
    pub inc: Vec<i32>,
}

/// One incident of the page.
#[derive(Serialize)]
pub struct DocIncident {
    pub id: String,
    pub cluster: String,
    pub sev: u8,
    pub status: String,
    pub rule: String,
    pub summary: String,
    /// Event number of the root cause, -1 when it is not among the events read.
    pub root: i64,
    pub t0: i64,
    pub t1: i64,
    pub events: i64,
    pub occ: i64,
    /// Its events' numbers, in time order.
    pub ev: Vec<u32>,
    /// Lanes, flattened triples: object id, depth in the owner tree, 1 when the
    /// object has events of this incident (0: an owner shown only to group).
    pub lanes: Vec<u32>,
}

/// One pattern episode of the page.
#[derive(Serialize)]
pub struct DocPattern {
    pub cluster: String,
    pub reason: String,
    pub kind: String,
    pub ns: String,
    pub template: String,
    pub status: String,
    pub count: i64,
    pub t0: i64,
    pub t1: i64,
    pub per_min: f64,
    pub anomaly: f64,
    /// Starts of the earlier episodes, ms after `Doc::t0` (may be negative).
    pub prev: Vec<i64>,
}

/// The JSON embedded in the page.
#[derive(Serialize)]
pub struct Doc {
    pub version: u32,
    pub title: String,
    pub source: String,
    /// Unix ms every other time is relative to.
    pub t0: i64,
    pub strings: Vec<String>,
    /// Objects, flattened quadruples of string ids: cluster, kind, namespace, name.
    pub obj: Vec<u32>,
    pub ev: EventColumns,
    /// Worst first: severity, then occurrences, then events.
    pub inc: Vec<DocIncident>,
    pub pat: Vec<DocPattern>,
}

/// How bad an incident is, for "worst first".
fn worst_first(a: &Incident, b: &Incident) -> std::cmp::Ordering {
    (b.severity, b.occurrences, b.event_count, a.first_ms, &a.id).cmp(&(a.severity, a.occurrences, a.event_count, b.first_ms, &b.id))
}

fn sev(s: Severity) -> u8 {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0) as u8
}

/// Builds the page's data: events in time order, incidents worst first with their lanes.
pub fn build(mut input: Input) -> Doc {
    input.events.sort_by(|a, b| (a.first_ms, &a.uid).cmp(&(b.first_ms, &b.uid)));
    input.incidents.sort_by(worst_first);
    let t0 = input.events.iter().map(|e| e.first_ms).chain(input.incidents.iter().map(|i| i.first_ms)).min().unwrap_or(0);
    let mut s = Strings::new();
    let mut objects: HashMap<lanes::ObjKey, u32> = HashMap::new();
    let mut obj = Vec::new();
    let mut obj_id = |s: &mut Strings, k: &lanes::ObjKey| -> u32 {
        if let Some(i) = objects.get(k) {
            return *i;
        }
        let i = (obj.len() / 4) as u32;
        obj.extend([s.id(&k.cluster), s.id(&k.kind), s.id(&k.namespace), s.id(&k.name)]);
        objects.insert(k.clone(), i);
        i
    };
    let inc_index: HashMap<&str, usize> = input.incidents.iter().enumerate().map(|(i, x)| (x.id.as_str(), i)).collect();
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); input.incidents.len()];
    let mut by_uid: HashMap<&str, usize> = HashMap::new();
    let mut ev = EventColumns::default();
    for (n, e) in input.events.iter().enumerate() {
        by_uid.insert(e.uid.as_str(), n);
        ev.t.push(e.first_ms - t0);
        ev.d.push((e.last_ms - e.first_ms).max(0));
        ev.sev.push(sev(e.severity));
        ev.cat.push(s.id(&e.category));
        ev.rsn.push(s.id(&e.reason));
        ev.typ.push(s.id(&e.event_type));
        ev.cmp.push(s.id(&e.component));
        ev.msg.push(s.id(&e.message));
        let meta: Vec<String> = e.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ev.meta.push(s.id(&meta.join("; ")));
        ev.obj.push(obj_id(&mut s, &lanes::ObjKey::of(e)));
        ev.occ.push(e.occurrences.max(1));
        let inc = inc_index.get(e.incident.as_str()).copied();
        ev.inc.push(inc.map(|i| i as i32).unwrap_or(-1));
        if let Some(i) = inc {
            members[i].push(n as u32);
        }
    }
    let owners = lanes::Owners::of(&input.events);
    let inc = input
        .incidents
        .iter()
        .zip(members)
        .map(|(i, ev_ids)| {
            let member_events: Vec<&Event> = ev_ids.iter().map(|n| &input.events[*n as usize]).collect();
            let mut flat = Vec::new();
            for lane in lanes::lanes(&member_events, &owners) {
                flat.extend([obj_id(&mut s, &lane.object), lane.depth, lane.has_events as u32]);
            }
            DocIncident {
                id: i.id.clone(),
                cluster: i.cluster.clone(),
                sev: sev(i.severity),
                status: i.status.clone(),
                rule: i.rule.clone(),
                summary: i.summary.clone(),
                root: by_uid.get(i.root_uid.as_str()).map(|n| *n as i64).unwrap_or(-1),
                t0: i.first_ms - t0,
                t1: i.last_ms - t0,
                events: i.event_count,
                occ: i.occurrences,
                ev: ev_ids,
                lanes: flat,
            }
        })
        .collect();
    let pat = input
        .patterns
        .iter()
        .map(|p| DocPattern {
            cluster: p.cluster.clone(),
            reason: p.reason.clone(),
            kind: p.kind.clone(),
            ns: p.namespace.clone(),
            template: p.template.clone(),
            status: p.status.clone(),
            count: p.count,
            t0: p.first_ms - t0,
            t1: p.last_ms - t0,
            per_min: (p.per_minute * 100.0).round() / 100.0,
            anomaly: (p.anomaly_score * 100.0).round() / 100.0,
            prev: p.previous_ms.iter().map(|t| t - t0).collect(),
        })
        .collect();
    Doc { version: 1, title: input.title, source: input.source, t0, strings: s.list, obj, ev, inc, pat }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(uid: &str, kind: &str, name: &str, t: i64, inc: &str, sev: Severity) -> Event {
        Event {
            uid: uid.into(),
            cluster: "c".into(),
            namespace: "ns".into(),
            kind: kind.into(),
            name: name.into(),
            reason: "BackOff".into(),
            severity: sev,
            message: format!("message of {uid}"),
            occurrences: 3,
            first_ms: t,
            last_ms: t + 10,
            incident: inc.into(),
            ..Default::default()
        }
    }

    #[test]
    fn columns_strings_and_worst_first() {
        let input = Input {
            events: vec![
                ev("b", "Pod", "web-6f9c8d7b5-x2kqp", 2_000, "i1", Severity::Error),
                ev("a", "Pod", "db-0", 1_000, "i2", Severity::Critical),
                ev("c", "Pod", "web-6f9c8d7b5-x2kqp", 3_000, "", Severity::Info),
            ],
            incidents: vec![
                Incident { id: "i1".into(), severity: Severity::Error, root_uid: "b".into(), first_ms: 2_000, ..Default::default() },
                Incident { id: "i2".into(), severity: Severity::Critical, root_uid: "a".into(), first_ms: 1_000, ..Default::default() },
            ],
            ..Default::default()
        };
        let d = build(input);
        assert_eq!(d.t0, 1_000);
        assert_eq!(d.ev.t, vec![0, 1_000, 2_000]);
        assert_eq!(d.ev.sev, vec![3, 2, 0]);
        // Critical first; the standalone event belongs to none.
        assert_eq!(d.inc[0].id, "i2");
        assert_eq!(d.ev.inc, vec![0, 1, -1]);
        assert_eq!(d.inc[1].root, 1);
        assert_eq!(d.inc[1].ev, vec![1]);
        // The same object is stored once; "" is string 0.
        assert_eq!(d.ev.obj[1], d.ev.obj[2]);
        assert_eq!(d.strings[0], "");
        assert_eq!(d.strings[d.ev.msg[0] as usize], "message of a");
    }
}
