//! Alert rules: which incidents, patterns and anomalies become alerts. The YAML
//! shape of `rules/alerts.yaml` (and of users' files), its validation, and the
//! compiled rules the [`super::engine::AlertEngine`] evaluates.
//!
//! Every rule is evaluated on every origin of its kind (not first-match: two
//! rules may both alert on one incident, each with its own alert id). User files
//! are loaded before the built-in one; a user rule whose name equals a built-in
//! rule's replaces it, and `enabled: false` under a built-in name switches that
//! rule off. Errors name the file, the rule and the field, like the
//! classification rules' (`crate::classify::spec`, whose helpers this reuses).

use schemas::model::Severity;
use schemas::records::{AlertSource, Incident, Pattern, PatternScope};
use serde::Deserialize;
use serde_norway::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use notify::template::Template;
use crate::classify::spec::{entry_label, parse_file, At, OneOrMany, RuleError, RuleList};

/// Name under which the embedded default rules are reported in errors.
pub const BUILTIN_NAME: &str = "builtin:rules/alerts.yaml";
/// The default alert rules, compiled into the binary.
pub const BUILTIN_YAML: &str = include_str!("../../rules/alerts.yaml");

/// Placeholders a rule's `summary` may use. Values an origin does not have
/// (e.g. `category` of a pattern) render empty.
pub const SUMMARY_VARS: &[&str] = &[
    "summary", "rule", "severity", "cluster", "clusters", "namespace", "reason", "kind", "object", "category",
    "events", "occurrences", "objects", "count", "per_minute", "score", "template",
];

/// One rule as written in YAML. Every condition present must hold; a list
/// matches when any element does; globs (`*`, `?`) for cluster and namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    /// `incident`, `pattern` or `anomaly` (a pattern with `anomaly_score > 0`).
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    description: String,
    /// `false` switches off a built-in rule of the same name.
    #[serde(default = "yes")]
    enabled: bool,
    /// Incident root-cause category(ies).
    #[serde(default)]
    category: Option<OneOrMany>,
    /// Incidents of at least this severity.
    #[serde(default)]
    min_severity: Option<String>,
    /// Cluster name glob(s); a fleet pattern matches when any of its clusters does.
    #[serde(default)]
    cluster: Option<OneOrMany>,
    /// Namespace glob(s): the root-cause object's (incidents) or the pattern's.
    #[serde(default)]
    namespace: Option<OneOrMany>,
    /// Root-cause reason(s) (incidents) or the pattern's reason.
    #[serde(default)]
    reason: Option<OneOrMany>,
    /// Root-cause object kind(s) (incidents) or the pattern's involved kind.
    #[serde(default)]
    kind: Option<OneOrMany>,
    /// Patterns/anomalies: `cluster` or `fleet`.
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    min_events: Option<i64>,
    #[serde(default)]
    min_occurrences: Option<i64>,
    /// Incidents affecting at least this many objects (a node fan-out).
    #[serde(default)]
    min_objects: Option<i64>,
    /// Patterns/anomalies: at least this many occurrences.
    #[serde(default)]
    min_count: Option<i64>,
    /// Patterns/anomalies: seen in at least this many clusters.
    #[serde(default)]
    min_clusters: Option<i64>,
    /// Anomalies: at least this many deviations above baseline.
    #[serde(default)]
    min_score: Option<f64>,
    /// The alert's severity; default the incident's, `warning` for patterns.
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// `{{placeholder}}` template; default the origin's own summary.
    #[serde(default)]
    summary: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    StrOrList,
    StrMap,
    Bool,
    Int,
    Float,
}

const FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("on", Kind::Str),
    ("description", Kind::Str),
    ("enabled", Kind::Bool),
    ("category", Kind::StrOrList),
    ("min_severity", Kind::Str),
    ("cluster", Kind::StrOrList),
    ("namespace", Kind::StrOrList),
    ("reason", Kind::StrOrList),
    ("kind", Kind::StrOrList),
    ("scope", Kind::Str),
    ("min_events", Kind::Int),
    ("min_occurrences", Kind::Int),
    ("min_objects", Kind::Int),
    ("min_count", Kind::Int),
    ("min_clusters", Kind::Int),
    ("min_score", Kind::Float),
    ("severity", Kind::Str),
    ("labels", Kind::StrMap),
    ("summary", Kind::Str),
];

/// Which origins each field applies to (fields not listed apply to all).
const INCIDENT_ONLY: &[&str] = &["category", "min_severity", "min_events", "min_occurrences", "min_objects"];
const PATTERN_ONLY: &[&str] = &["scope", "min_count", "min_clusters"];
const ANOMALY_ONLY: &[&str] = &["min_score"];

/// Check an entry field by field, so the error names the field (serde's would not).
fn diagnose(at: &At<'_>, value: &Value) -> Result<(), RuleError> {
    let Some(map) = value.as_mapping() else {
        return Err(at.err("-", "each rule must be a mapping of field: value"));
    };
    for (key, v) in map {
        let Some(key) = key.as_str() else {
            return Err(at.err(&format!("{key:?}"), "field names must be strings"));
        };
        let Some((_, kind)) = FIELDS.iter().find(|(n, _)| *n == key) else {
            let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
            return Err(at.err(key, format!("unknown field (expected one of: {})", known.join(", "))));
        };
        let v = v.clone();
        let (ok, expected) = match kind {
            Kind::Str => (serde_norway::from_value::<String>(v).is_ok(), "a string"),
            Kind::StrOrList => (serde_norway::from_value::<OneOrMany>(v).is_ok(), "a string or a list of strings"),
            Kind::StrMap => (serde_norway::from_value::<BTreeMap<String, String>>(v).is_ok(), "a mapping of string to string"),
            Kind::Bool => (serde_norway::from_value::<bool>(v).is_ok(), "true or false"),
            Kind::Int => (serde_norway::from_value::<i64>(v).is_ok(), "a whole number"),
            Kind::Float => (serde_norway::from_value::<f64>(v).is_ok(), "a number"),
        };
        if !ok {
            return Err(at.err(key, format!("expected {expected}")));
        }
    }
    if !map.contains_key("name") {
        return Err(at.err("name", "missing required field"));
    }
    Ok(())
}

/// A `*`/`?` glob, or an exact string when it has neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(Box<str>);

impl Glob {
    pub fn matches(&self, s: &str) -> bool {
        glob_match(self.0.as_bytes(), s.as_bytes())
    }
}

/// Iterative wildcard match with single-star backtracking: linear for the
/// patterns people write here.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// A validated rule, ready to match.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: Box<str>,
    /// File the rule came from.
    pub source: Box<str>,
    pub on: AlertSource,
    pub description: String,
    categories: Option<Vec<Box<str>>>,
    min_severity: Option<Severity>,
    clusters: Option<Vec<Glob>>,
    namespaces: Option<Vec<Glob>>,
    reasons: Option<Vec<Box<str>>>,
    kinds: Option<Vec<Box<str>>>,
    scope: Option<PatternScope>,
    min_events: i64,
    min_occurrences: i64,
    min_objects: i64,
    min_count: i64,
    min_clusters: i64,
    min_score: f64,
    /// Overrides the origin's severity.
    pub severity: Option<Severity>,
    pub labels: BTreeMap<String, String>,
    pub summary: Option<Template>,
}

fn any_eq(list: &Option<Vec<Box<str>>>, v: &str) -> bool {
    list.as_ref().is_none_or(|l| l.iter().any(|x| &**x == v))
}

fn any_glob<'a>(list: &Option<Vec<Glob>>, mut values: impl Iterator<Item = &'a str>) -> bool {
    match list {
        None => true,
        Some(globs) => values.any(|v| globs.iter().any(|g| g.matches(v))),
    }
}

impl AlertRule {
    /// Whether the incident satisfies the rule's conditions (status is not a
    /// condition: the engine fires while the incident is open).
    pub fn matches_incident(&self, inc: &Incident) -> bool {
        let rc = &inc.root_cause;
        self.on == AlertSource::Incident
            && any_eq(&self.categories, &rc.category)
            && self.min_severity.is_none_or(|s| inc.severity >= s)
            && any_glob(&self.clusters, std::iter::once(inc.cluster.name.as_str()))
            && any_glob(&self.namespaces, std::iter::once(rc.object.namespace.as_str()))
            && any_eq(&self.reasons, &rc.reason)
            && any_eq(&self.kinds, &rc.object.kind)
            && inc.event_count >= self.min_events
            && inc.occurrences >= self.min_occurrences
            && inc.affected_objects.len() as i64 >= self.min_objects
    }

    /// Whether the pattern satisfies a `pattern` or `anomaly` rule.
    pub fn matches_pattern(&self, p: &Pattern) -> bool {
        let kind_ok = match self.on {
            AlertSource::Incident => false,
            AlertSource::Pattern => true,
            AlertSource::Anomaly => p.anomaly_score > 0.0 && p.anomaly_score >= self.min_score,
        };
        let clusters = std::iter::once(p.cluster.name.as_str()).chain(p.clusters.iter().map(String::as_str));
        kind_ok
            && self.scope.is_none_or(|s| p.scope == s)
            && any_glob(&self.clusters, clusters.filter(|c| !c.is_empty()))
            && any_glob(&self.namespaces, std::iter::once(p.namespace.as_str()))
            && any_eq(&self.reasons, &p.reason)
            && any_eq(&self.kinds, &p.kind)
            && p.count >= self.min_count
            && (p.clusters.len() as i64).max(1) >= self.min_clusters
    }
}

fn strings(at: &At<'_>, field: &str, v: Option<OneOrMany>) -> Result<Option<Vec<String>>, RuleError> {
    let Some(v) = v else { return Ok(None) };
    let items = match v {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    if items.is_empty() {
        return Err(at.err(field, "an empty list matches nothing; remove the field instead"));
    }
    if let Some(bad) = items.iter().find(|s| s.trim().is_empty() || s.trim() != s.as_str()) {
        return Err(at.err(field, format!("{bad:?} is empty or has surrounding spaces")));
    }
    Ok(Some(items))
}

fn boxed(v: Option<Vec<String>>) -> Option<Vec<Box<str>>> {
    v.map(|v| v.into_iter().map(Box::from).collect())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// What a file says about one name: a rule, or "switch it off".
enum Entry {
    Rule(Box<AlertRule>),
    Disabled,
}

fn compile(file: &str, label: &str, rs: RuleSpec, present: &[String]) -> Result<Entry, RuleError> {
    let at = At { file, rule: label };
    if !valid_name(&rs.name) {
        return Err(at.err("name", "names use letters, digits, '-', '_', '.' or ':' (at most 128)"));
    }
    if !rs.enabled {
        return Ok(Entry::Disabled);
    }
    let on = match rs.on.as_deref() {
        None => return Err(at.err("on", "missing required field (incident, pattern or anomaly)")),
        Some("incident") => AlertSource::Incident,
        Some("pattern") => AlertSource::Pattern,
        Some("anomaly") => AlertSource::Anomaly,
        Some(o) => return Err(at.err("on", format!("unknown origin {o:?} (expected incident, pattern or anomaly)"))),
    };
    for field in present {
        let wrong = match on {
            AlertSource::Incident => PATTERN_ONLY.contains(&field.as_str()) || ANOMALY_ONLY.contains(&field.as_str()),
            AlertSource::Pattern => INCIDENT_ONLY.contains(&field.as_str()) || ANOMALY_ONLY.contains(&field.as_str()),
            AlertSource::Anomaly => INCIDENT_ONLY.contains(&field.as_str()),
        };
        if wrong {
            let on_name = rs.on.as_deref().unwrap_or_default();
            return Err(at.err(field, format!("does not apply to `on: {on_name}` rules")));
        }
    }
    let severity = |field: &str, v: &Option<String>| -> Result<Option<Severity>, RuleError> {
        v.as_deref().map(|s| s.parse::<Severity>().map_err(|e| at.err(field, e))).transpose()
    };
    let scope = match rs.scope.as_deref() {
        None => None,
        Some("cluster") => Some(PatternScope::Cluster),
        Some("fleet") => Some(PatternScope::Fleet),
        Some(s) => return Err(at.err("scope", format!("unknown scope {s:?} (expected cluster or fleet)"))),
    };
    let globs = |field: &str, v: Option<OneOrMany>| -> Result<Option<Vec<Glob>>, RuleError> {
        Ok(strings(&at, field, v)?.map(|v| v.into_iter().map(|s| Glob(s.into())).collect()))
    };
    for (field, v) in [
        ("min_events", rs.min_events),
        ("min_occurrences", rs.min_occurrences),
        ("min_objects", rs.min_objects),
        ("min_count", rs.min_count),
        ("min_clusters", rs.min_clusters),
    ] {
        if v.is_some_and(|n| n < 0) {
            return Err(at.err(field, "must be 0 or more"));
        }
    }
    if rs.min_score.is_some_and(|s| !s.is_finite() || s < 0.0) {
        return Err(at.err("min_score", "must be a finite number, 0 or more"));
    }
    if let Some(k) = rs.labels.keys().find(|k| !valid_name(k)) {
        return Err(at.err("labels", format!("invalid label key {k:?}")));
    }
    let summary = match &rs.summary {
        Some(s) => Some(Template::parse(s, SUMMARY_VARS).map_err(|e| at.err("summary", e))?),
        None => None,
    };
    Ok(Entry::Rule(Box::new(AlertRule {
        name: rs.name.as_str().into(),
        source: file.into(),
        on,
        description: rs.description,
        categories: boxed(strings(&at, "category", rs.category)?),
        min_severity: severity("min_severity", &rs.min_severity)?,
        clusters: globs("cluster", rs.cluster)?,
        namespaces: globs("namespace", rs.namespace)?,
        reasons: boxed(strings(&at, "reason", rs.reason)?),
        kinds: boxed(strings(&at, "kind", rs.kind)?),
        scope,
        min_events: rs.min_events.unwrap_or(0),
        min_occurrences: rs.min_occurrences.unwrap_or(0),
        min_objects: rs.min_objects.unwrap_or(0),
        min_count: rs.min_count.unwrap_or(0),
        min_clusters: rs.min_clusters.unwrap_or(0),
        min_score: rs.min_score.unwrap_or(0.0),
        severity: severity("severity", &rs.severity)?,
        labels: rs.labels,
        summary,
    })))
}

/// Parse one file into (name, entry) in file order.
fn parse(file: &str, text: &str) -> Result<Vec<(String, Entry)>, RuleError> {
    let spec: RuleList = parse_file(file, text)?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(spec.rules.len());
    for (i, value) in spec.rules.into_iter().enumerate() {
        let label = entry_label("rules", i, &value);
        let at = At { file, rule: &label };
        diagnose(&at, &value)?;
        let present: Vec<String> = value.as_mapping().into_iter().flat_map(|m| m.keys()).filter_map(|k| k.as_str().map(String::from)).collect();
        let rs: RuleSpec = serde_norway::from_value(value).map_err(|e| at.err("?", e.to_string()))?;
        if !seen.insert(rs.name.clone()) {
            return Err(at.err("name", "duplicate rule name in this file"));
        }
        let name = rs.name.clone();
        out.push((name, compile(file, &label, rs, &present)?));
    }
    Ok(out)
}

/// The compiled rule set: immutable once built; share it (`Arc`) between the
/// per-partition engines.
#[derive(Debug, Clone)]
pub struct AlertRules {
    rules: Vec<AlertRule>,
}

impl AlertRules {
    /// The built-in rules only.
    ///
    /// # Panics
    /// Never in a released build: the `builtin_rules_parse` test parses the file.
    pub fn builtin() -> Self {
        Self::from_texts(&[]).expect("built-in alert rules are valid")
    }

    /// Built-in rules plus users' files (earlier files win).
    pub fn with_user_files(paths: &[PathBuf]) -> Result<Self, RuleError> {
        let mut texts = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| RuleError::Read { path: path.clone(), source })?;
            texts.push((path.display().to_string(), text));
        }
        Self::from_texts(&texts)
    }

    /// Built-in rules plus users' files given as (file name, text).
    pub fn from_texts(user: &[(String, String)]) -> Result<Self, RuleError> {
        let mut decided: HashSet<String> = HashSet::new();
        let mut rules = Vec::new();
        let builtin = (BUILTIN_NAME.to_string(), BUILTIN_YAML.to_string());
        for (file, text) in user.iter().chain(std::iter::once(&builtin)) {
            for (name, entry) in parse(file, text)? {
                // The first file that names a rule decides it (user files come first).
                if !decided.insert(name) {
                    continue;
                }
                if let Entry::Rule(r) = entry {
                    rules.push(*r);
                }
            }
        }
        Ok(AlertRules { rules })
    }

    /// One file's rules, without the built-in ones (tests, `kevents analyze --rules`).
    pub fn without_builtin(file: &str, text: &str) -> Result<Self, RuleError> {
        let rules = parse(file, text)?
            .into_iter()
            .filter_map(|(_, e)| match e {
                Entry::Rule(r) => Some(*r),
                Entry::Disabled => None,
            })
            .collect();
        Ok(AlertRules { rules })
    }

    /// No rules at all (alerts switched off).
    pub fn empty() -> Self {
        AlertRules { rules: Vec::new() }
    }

    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
