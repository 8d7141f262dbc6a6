//! Field and label selectors, parsed and matched like the real apiserver.
//!
//! Field selectors follow `k8s.io/apimachinery/pkg/fields` (`a=b`, `a==b`, `a!=b`, terms
//! joined by `,`, `\` escapes) over the selectable fields of an Event
//! (`pkg/registry/core/event/strategy.go`): the core shape names them `involvedObject.*`,
//! `reportingComponent`, the events.k8s.io shape `regarding.*`, `reportingController`. A
//! field that the shape does not know is refused with the real server's
//! `field label not supported: X` (400 BadRequest). Label selectors follow
//! `k8s.io/apimachinery/pkg/labels`: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//! `k notin (a,b)`, `k>n`, `k<n`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Event;

use super::shapes::Shape;

/// A selector that could not be used; the text is the message of the 400 Status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

/// An Event field that can be selected on, whatever name the shape gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
    ObjKind,
    ObjNamespace,
    ObjName,
    ObjUid,
    ObjApiVersion,
    ObjResourceVersion,
    ObjFieldPath,
    Reason,
    ReportingController,
    Source,
    Type,
}

impl Field {
    fn parse(label: &str, shape: Shape) -> Option<Field> {
        let common = match label {
            "metadata.name" => Some(Field::Name),
            "metadata.namespace" => Some(Field::Namespace),
            "reason" => Some(Field::Reason),
            "type" => Some(Field::Type),
            "source" => Some(Field::Source),
            _ => None,
        };
        if common.is_some() {
            return common;
        }
        let (prefix, controller) = match shape {
            Shape::Core => ("involvedObject.", "reportingComponent"),
            Shape::EventsV1 => ("regarding.", "reportingController"),
        };
        if label == controller {
            return Some(Field::ReportingController);
        }
        match label.strip_prefix(prefix)? {
            "kind" => Some(Field::ObjKind),
            "namespace" => Some(Field::ObjNamespace),
            "name" => Some(Field::ObjName),
            "uid" => Some(Field::ObjUid),
            "apiVersion" => Some(Field::ObjApiVersion),
            "resourceVersion" => Some(Field::ObjResourceVersion),
            "fieldPath" => Some(Field::ObjFieldPath),
            _ => None,
        }
    }

    fn value(self, ev: &Event) -> &str {
        fn s(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("")
        }
        let io = &ev.involved_object;
        match self {
            Field::Name => s(&ev.metadata.name),
            Field::Namespace => s(&ev.metadata.namespace),
            Field::ObjKind => s(&io.kind),
            Field::ObjNamespace => s(&io.namespace),
            Field::ObjName => s(&io.name),
            Field::ObjUid => s(&io.uid),
            Field::ObjApiVersion => s(&io.api_version),
            Field::ObjResourceVersion => s(&io.resource_version),
            Field::ObjFieldPath => s(&io.field_path),
            Field::Reason => s(&ev.reason),
            Field::ReportingController => s(&ev.reporting_component),
            Field::Type => s(&ev.type_),
            // As in the real strategy: the legacy source component, else the reporting one.
            Field::Source => match ev.source.as_ref().and_then(|x| x.component.as_deref()) {
                Some(c) if !c.is_empty() => c,
                _ => s(&ev.reporting_component),
            },
        }
    }
}

#[derive(Debug, Clone)]
struct FieldTerm {
    field: Field,
    value: String,
    equal: bool,
}

/// A parsed `fieldSelector`: all terms must hold.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// Splits on `sep` where not escaped by `\`, keeping escapes for the caller.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            parts.last_mut().unwrap().push('\\');
            parts.last_mut().unwrap().push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    parts
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(e @ ('\\' | ',' | '=' | '!')) => out.push(e),
                other => {
                    return Err(SelectorError(format!(
                        "invalid field selector: invalid escape sequence: \\{}",
                        other.map(String::from).unwrap_or_default()
                    )))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses a selector for the given shape. An empty string selects everything.
    pub fn parse(s: &str, shape: Shape) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { terms });
        }
        for raw in split_unescaped(s, ',') {
            // Find the first unescaped operator: `!=`, `==` or `=`.
            let bytes = raw.as_bytes();
            let mut i = 0;
            let mut found = None;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 1,
                    b'!' if bytes.get(i + 1) == Some(&b'=') => {
                        found = Some((i, 2, false));
                        break;
                    }
                    b'=' if bytes.get(i + 1) == Some(&b'=') => {
                        found = Some((i, 2, true));
                        break;
                    }
                    b'=' => {
                        found = Some((i, 1, true));
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let Some((at, len, equal)) = found else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{raw}'"
                )));
            };
            let label = raw[..at].trim();
            let value = unescape(&raw[at + len..])?;
            let field = Field::parse(label, shape)
                .ok_or_else(|| SelectorError(format!("field label not supported: {label}")))?;
            terms.push(FieldTerm {
                field,
                value,
                equal,
            });
        }
        Ok(Self { terms })
    }

    /// Whether the Event satisfies every term.
    pub fn matches(&self, ev: &Event) -> bool {
        self.terms
            .iter()
            .all(|t| (t.field.value(ev) == t.value) == t.equal)
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

#[derive(Debug, Clone)]
enum LabelOp {
    Exists,
    NotExists,
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed `labelSelector`: all requirements must hold.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { reqs });
        }
        let bad =
            |term: &str| SelectorError(format!("unable to parse requirement: found '{term}'"));
        for term in split_top_level(s) {
            let t = term.trim();
            let set_op = |kw: &str| -> Option<(String, Vec<String>)> {
                let idx = t.find(&format!(" {kw} "))?;
                let key = t[..idx].trim().to_string();
                let rest = t[idx + kw.len() + 2..].trim();
                let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
                let vals = inner
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty());
                Some((key, vals.collect()))
            };
            let (key, op) = if let Some((k, v)) = set_op("notin") {
                (k, LabelOp::NotIn(v))
            } else if let Some((k, v)) = set_op("in") {
                (k, LabelOp::In(v))
            } else if let Some(k) = t.strip_prefix('!') {
                (k.trim().to_string(), LabelOp::NotExists)
            } else if let Some((k, v)) = t.split_once("!=") {
                (
                    k.trim().to_string(),
                    LabelOp::NotIn(vec![v.trim().to_string()]),
                )
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                (
                    k.trim().to_string(),
                    LabelOp::In(vec![v.trim().to_string()]),
                )
            } else if let Some((k, v)) = t.split_once('>') {
                (
                    k.trim().to_string(),
                    LabelOp::Gt(v.trim().parse().map_err(|_| bad(t))?),
                )
            } else if let Some((k, v)) = t.split_once('<') {
                (
                    k.trim().to_string(),
                    LabelOp::Lt(v.trim().parse().map_err(|_| bad(t))?),
                )
            } else {
                (t.to_string(), LabelOp::Exists)
            };
            if !valid_key(&key) {
                return Err(bad(t));
            }
            reqs.push((key, op));
        }
        Ok(Self { reqs })
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = labels.and_then(|l| l.get(k));
            match op {
                LabelOp::Exists => v.is_some(),
                LabelOp::NotExists => v.is_none(),
                LabelOp::In(vals) => v.is_some_and(|v| vals.contains(v)),
                LabelOp::NotIn(vals) => v.is_none_or(|v| !vals.contains(v)),
                LabelOp::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                LabelOp::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }
}

/// Everything that restricts which Events a list or watch sees.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub fields: FieldSelector,
    pub labels: LabelSelector,
}

impl Filter {
    pub fn matches(&self, ev: &Event) -> bool {
        if let Some(ns) = &self.namespace {
            if ev.metadata.namespace.as_deref().unwrap_or("") != ns {
                return false;
            }
        }
        self.fields.matches(ev) && self.labels.matches(ev.metadata.labels.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn ev() -> Event {
        Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("a,b".into()),
                namespace: Some("ns1".into()),
                labels: Some(
                    [
                        ("app".to_string(), "web".to_string()),
                        ("tier".into(), "3".into()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                name: Some("p".into()),
                ..Default::default()
            },
            reason: Some("BackOff".into()),
            type_: Some("Warning".into()),
            reporting_component: Some("kubelet".into()),
            ..Default::default()
        }
    }

    #[test]
    fn field_selectors_per_shape() {
        let e = ev();
        let f = |s, sh| FieldSelector::parse(s, sh).unwrap().matches(&e);
        assert!(f("type=Warning,reason==BackOff", Shape::Core));
        assert!(!f("type!=Warning", Shape::Core));
        assert!(f("involvedObject.kind=Pod", Shape::Core));
        assert!(f(
            "regarding.name=p,reportingController=kubelet",
            Shape::EventsV1
        ));
        assert!(f(r"metadata.name=a\,b", Shape::Core));
        assert!(f("source=kubelet", Shape::Core));
        let err = FieldSelector::parse("regarding.kind=Pod", Shape::Core).unwrap_err();
        assert_eq!(err.0, "field label not supported: regarding.kind");
        assert!(FieldSelector::parse("involvedObject.kind=Pod", Shape::EventsV1).is_err());
        assert!(FieldSelector::parse("spec.x=1", Shape::Core).is_err());
    }

    #[test]
    fn label_selectors() {
        let e = ev();
        let l = |s| {
            LabelSelector::parse(s)
                .unwrap()
                .matches(e.metadata.labels.as_ref())
        };
        assert!(l("app=web"));
        assert!(l("app==web,tier"));
        assert!(!l("app!=web"));
        assert!(l("missing!=x"));
        assert!(l("app in (db, web),tier notin (1,2)"));
        assert!(!l("app notin (web)"));
        assert!(l("!missing"));
        assert!(!l("!app"));
        assert!(l("tier>2") && !l("tier<3"));
        assert!(LabelSelector::parse("a b c").is_err());
    }
}
