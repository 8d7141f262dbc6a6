//! The filters every events question shares (`kevents query` and `kevents aggregate`)
//! and their translation into a parameterized WHERE clause for a given table.
//!
//! Which filters the rollups can answer: `events_per_minute` / `events_per_hour` keep
//! only cluster, namespace, category, severity and reason (see
//! schemas/clickhouse/0002_rollups.sql). Kinds, the object, the correlation id and the
//! message text exist only in `events`; [`Filter::rollup_blocker`] names the first of
//! them that is set, and the aggregate planner then reads the raw table.

use crate::sql::{Conditions, Param, Params};
use crate::QueryError;

/// A half-open time range `[from, to)` in Unix milliseconds; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// One Kubernetes object: `name`, `kind/name` or `kind/namespace/name`. Kinds compare
/// case-insensitively (people type `pod` for `Pod`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::str::FromStr for ObjectRef {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, QueryError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || QueryError::Invalid(format!("object {s:?}: expected name, kind/name or kind/namespace/name"));
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [name] => Ok(ObjectRef { kind: None, namespace: None, name: name.to_string() }),
            [kind, name] => Ok(ObjectRef { kind: Some(kind.to_string()), namespace: None, name: name.to_string() }),
            [kind, ns, name] => {
                Ok(ObjectRef { kind: Some(kind.to_string()), namespace: Some(ns.to_string()), name: name.to_string() })
            }
            _ => Err(bad()),
        }
    }
}

/// What to select events by. Empty lists and `None` mean "any". Values within one
/// list are alternatives (OR); different fields must all hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub time: TimeRange,
    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    pub categories: Vec<String>,
    pub severities: Vec<String>,
    pub reasons: Vec<String>,
    /// Object kinds, case-insensitive.
    pub kinds: Vec<String>,
    pub correlation_id: Option<String>,
    pub object: Option<ObjectRef>,
    /// Case-insensitive (ASCII) substring of the message.
    pub text: Option<String>,
}

impl Filter {
    /// The first filter the rollups cannot answer, if any (for `--explain`).
    pub fn rollup_blocker(&self) -> Option<&'static str> {
        if !self.kinds.is_empty() {
            Some("kind filter")
        } else if self.object.is_some() {
            Some("object filter")
        } else if self.correlation_id.is_some() {
            Some("correlation id filter")
        } else if self.text.is_some() {
            Some("message text filter")
        } else {
            None
        }
    }

    /// The WHERE conditions (joined with AND, "1" when none) for a table whose
    /// time column is `time_col` (`event_time`, `minute` or `hour`), registering the
    /// values in `params`. `raw` says whether the event-only columns exist; the caller
    /// must not pass `raw = false` when [`Filter::rollup_blocker`] is set.
    pub fn conditions(&self, time_col: &str, raw: bool, params: &mut Params) -> String {
        let mut c = Conditions::new(params);
        c.at_or_after("from_ms", time_col, self.time.from_ms);
        c.before("to_ms", time_col, self.time.to_ms);
        c.one_of("clusters", "cluster", &self.clusters);
        c.one_of("namespaces", "namespace", &self.namespaces);
        c.one_of("categories", "category", &self.categories);
        c.one_of("severities", "severity", &self.severities);
        c.one_of("reasons", "reason", &self.reasons);
        if raw {
            if !self.kinds.is_empty() {
                let p = c.params().add("kinds", Param::Strs(self.kinds.iter().map(|k| k.to_lowercase()).collect()));
                c.push(format!("has({p}, lower(kind))"));
            }
            if let Some(o) = &self.object {
                if let Some(k) = &o.kind {
                    let p = c.params().add("object_kind", Param::Str(k.to_lowercase()));
                    c.push(format!("lower(kind) = {p}"));
                }
                if let Some(ns) = &o.namespace {
                    let p = c.params().add("object_namespace", Param::Str(ns.clone()));
                    c.push(format!("namespace = {p}"));
                }
                let p = c.params().add("object_name", Param::Str(o.name.clone()));
                c.push(format!("name = {p}"));
            }
            if let Some(id) = &self.correlation_id {
                let p = c.params().add("correlation_id", Param::Str(id.clone()));
                c.push(crate::sql::in_incident(&p));
            }
            if let Some(t) = &self.text {
                let p = c.params().add("text", Param::Str(t.clone()));
                c.push(format!("positionCaseInsensitive(message, {p}) > 0"));
            }
        }
        c.sql()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_refs_parse_in_three_shapes() {
        let o: ObjectRef = "web-1".parse().unwrap();
        assert_eq!((o.kind, o.namespace, o.name.as_str()), (None, None, "web-1"));
        let o: ObjectRef = "Node/n1".parse().unwrap();
        assert_eq!((o.kind.as_deref(), o.namespace, o.name.as_str()), (Some("Node"), None, "n1"));
        let o: ObjectRef = "pod/prod/web-1".parse().unwrap();
        assert_eq!((o.kind.as_deref(), o.namespace.as_deref()), (Some("pod"), Some("prod")));
        assert!("a//b".parse::<ObjectRef>().is_err());
        assert!("a/b/c/d".parse::<ObjectRef>().is_err());
    }

    #[test]
    fn values_become_parameters_never_sql() {
        let f = Filter {
            clusters: vec!["x' OR 1=1 --".into()],
            kinds: vec!["Pod".into()],
            text: Some("oom".into()),
            ..Default::default()
        };
        let mut p = Params::default();
        let sql = f.conditions("event_time", true, &mut p);
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert!(sql.contains("has({clusters:Array(String)}, cluster)"), "{sql}");
        assert_eq!(p.get("kinds"), Some(&Param::Strs(vec!["pod".into()])));
        assert_eq!(f.rollup_blocker(), Some("kind filter"));
        // Rollup form: the raw-only filters are not rendered.
        let mut p = Params::default();
        let sql = f.conditions("minute", false, &mut p);
        assert!(!sql.contains("kind") && !sql.contains("message"), "{sql}");
        assert_eq!(Filter::default().conditions("minute", false, &mut Params::default()), "1");
    }
}
