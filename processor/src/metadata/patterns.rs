//! Metadata extractors as data: the YAML shape of `rules/metadata.yaml`, its
//! validation against the documented key set, and the compiled extractor.
//!
//! An extractor selects events like a classification rule (reason, type,
//! component, kind, namespace) and applies a regex to the message:
//! - by default every named capture group becomes the key of the same name;
//! - with `all: true` the regex is applied to every match, and `key`/`value`
//!   templates (`insufficient_${resource}` / `${count}`) build one entry per
//!   match: how the scheduler's "2 Insufficient cpu, 3 Insufficient memory"
//!   breakdown becomes `insufficient_cpu: "2"`, `insufficient_memory: "3"`;
//! - `set` adds static keys when the regex matched (`oom: "true"`);
//! - `lowercase: true` lowercases captured values ("Liveness" → "liveness").
//!
//! Keys must belong to [`super::KEYS`] or start with a family prefix of
//! [`super::KEY_FAMILIES`]: a typo in a pattern file is a start-up error, not a
//! column that silently never fills.

use serde::Deserialize;
use serde_norway::Value;
use std::collections::{BTreeMap, HashSet};

use crate::classify::select::Selector;
use crate::classify::spec::{
    compile_regex, compile_selector, entry_label, parse_entry, parse_file, At, FieldKind,
    OneOrMany, RuleError, SelectorFields,
};

/// Name under which the embedded extractors are reported in errors.
pub(crate) const BUILTIN_NAME: &str = "builtin:rules/metadata.yaml";
/// The default extractors, compiled into the binary.
pub(crate) const BUILTIN_YAML: &str = include_str!("../../rules/metadata.yaml");

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtractorFileSpec {
    #[serde(default)]
    extractors: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtractorSpec {
    name: String,
    #[serde(default)]
    reason: Option<OneOrMany>,
    #[serde(default)]
    reason_prefix: Option<OneOrMany>,
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    component: Option<OneOrMany>,
    #[serde(default)]
    kind: Option<OneOrMany>,
    #[serde(default)]
    namespace: Option<OneOrMany>,
    regex: String,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    lowercase: bool,
}

const FIELDS: &[(&str, FieldKind)] = &[
    ("name", FieldKind::Str),
    ("reason", FieldKind::StrOrList),
    ("reason_prefix", FieldKind::StrOrList),
    ("type", FieldKind::Str),
    ("component", FieldKind::StrOrList),
    ("kind", FieldKind::StrOrList),
    ("namespace", FieldKind::StrOrList),
    ("regex", FieldKind::Str),
    ("all", FieldKind::Bool),
    ("key", FieldKind::Str),
    ("value", FieldKind::Str),
    ("set", FieldKind::StrMap),
    ("lowercase", FieldKind::Bool),
];
const REQUIRED: &[&str] = &["name", "regex"];

/// A piece of a `key`/`value` template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Lit(Box<str>),
    /// Index of a capture group.
    Var(usize),
}

/// How matches become entries.
#[derive(Debug)]
pub(crate) enum Output {
    /// Each named group (index, key) becomes a key.
    Named(Box<[(usize, Box<str>)]>),
    /// One entry per match from templates (used with `all: true`).
    Template {
        key: Box<[Part]>,
        value: Box<[Part]>,
    },
}

/// A validated extractor.
#[derive(Debug)]
pub(crate) struct Extractor {
    #[allow(dead_code)] // kept for diagnostics and debugging output
    pub name: Box<str>,
    pub selector: Selector,
    pub regex: regex::Regex,
    pub all: bool,
    pub output: Output,
    pub set: Box<[(Box<str>, Box<str>)]>,
    pub lowercase: bool,
}

fn parse_template(
    at: &At<'_>,
    field: &str,
    text: &str,
    re: &regex::Regex,
) -> Result<Vec<Part>, RuleError> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Lit(rest[..start].into()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| at.err(field, format!("unclosed `${{` in template {text:?}")))?;
        let name = &after[..end];
        let idx = re
            .capture_names()
            .position(|n| n == Some(name))
            .ok_or_else(|| {
                at.err(
                    field,
                    format!("template uses ${{{name}}} but the regex has no group named {name:?}"),
                )
            })?;
        parts.push(Part::Var(idx));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.into()));
    }
    if parts.is_empty() {
        return Err(at.err(field, "empty template"));
    }
    Ok(parts)
}

/// Parses and validates one extractor file.
pub(crate) fn parse_extractor_file(
    file: &str,
    text: &str,
) -> Result<Vec<(Box<str>, Extractor)>, RuleError> {
    let spec: ExtractorFileSpec = parse_file(file, text)?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(spec.extractors.len());
    for (i, value) in spec.extractors.into_iter().enumerate() {
        let label = entry_label("extractors", i, &value);
        let es: ExtractorSpec = parse_entry(file, &label, value, FIELDS, REQUIRED)?;
        let at = At { file, rule: &label };
        if !seen.insert(es.name.clone()) {
            return Err(at.err("name", "duplicate extractor name in this file"));
        }
        let selector = compile_selector(
            &at,
            SelectorFields {
                reason: &es.reason,
                reason_prefix: &es.reason_prefix,
                event_type: &es.event_type,
                component: &es.component,
                kind: &es.kind,
                namespace: &es.namespace,
            },
        )?;
        let regex = compile_regex(&at, "regex", &es.regex)?;
        let output = match (&es.key, &es.value) {
            (None, None) => {
                let mut named = Vec::new();
                for (idx, name) in regex.capture_names().enumerate() {
                    if let Some(name) = name {
                        if !super::is_known_key(name) {
                            return Err(at.err(
                                "regex",
                                format!("group {name:?} is not a documented metadata key"),
                            ));
                        }
                        named.push((idx, Box::from(name)));
                    }
                }
                if named.is_empty() && es.set.is_empty() {
                    return Err(at.err(
                        "regex",
                        "no named groups and no `set`: the extractor would produce nothing",
                    ));
                }
                Output::Named(named.into_boxed_slice())
            }
            (Some(k), Some(v)) => {
                let key = parse_template(&at, "key", k, &regex)?;
                let value = parse_template(&at, "value", v, &regex)?;
                match key.first() {
                    Some(Part::Lit(lit)) if key.len() == 1 && super::is_known_key(lit) => {}
                    Some(Part::Lit(lit)) if key.len() > 1 && super::is_key_family(lit) => {}
                    _ => {
                        return Err(at.err(
                            "key",
                            format!(
                                "{k:?} is neither a documented key nor `<family prefix>${{group}}`"
                            ),
                        ))
                    }
                }
                Output::Template {
                    key: key.into_boxed_slice(),
                    value: value.into_boxed_slice(),
                }
            }
            (Some(_), None) => return Err(at.err("value", "`key` needs a `value` template")),
            (None, Some(_)) => return Err(at.err("key", "`value` needs a `key` template")),
        };
        if let Some(k) = es.set.keys().find(|k| !super::is_known_key(k)) {
            return Err(at.err("set", format!("{k:?} is not a documented metadata key")));
        }
        out.push((
            es.name.clone().into(),
            Extractor {
                name: es.name.into(),
                selector,
                regex,
                all: es.all,
                output,
                set: es
                    .set
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                lowercase: es.lowercase,
            },
        ));
    }
    Ok(out)
}

/// Expands a template against one match.
pub(crate) fn expand(parts: &[Part], caps: &regex::Captures<'_>, buf: &mut String) {
    buf.clear();
    for p in parts {
        match p {
            Part::Lit(l) => buf.push_str(l),
            Part::Var(i) => buf.push_str(caps.get(*i).map_or("", |m| m.as_str().trim())),
        }
    }
}

/// Turns an expanded key into the documented form: lowercase, `[a-z0-9_]` only
/// (`insufficient_nvidia.com/gpu` → `insufficient_nvidia_com_gpu`).
pub(crate) fn normalize_key(key: &mut String) {
    let normalized: String = key
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    *key = normalized;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_extractor_file("m.yaml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn builtin_extractor_file_parses() {
        let x = parse_extractor_file(BUILTIN_NAME, BUILTIN_YAML)
            .expect("built-in extractors are valid");
        assert!(x.len() > 40, "only {} extractors", x.len());
    }

    #[test]
    fn invalid_extractors_name_file_extractor_and_field() {
        let e = err("extractors:\n- name: a\n  reason: X\n  regex: '(?P<colour>\\w+)'\n");
        assert!(e.starts_with("m.yaml: rule \"a\" (extractors[0]): field `regex`: group \"colour\" is not a documented"), "{e}");
        let e = err("extractors:\n- name: a\n  reason: X\n  regex: '(?P<image>'\n");
        assert!(e.contains("field `regex`: invalid regex"), "{e}");
        let e = err("extractors:\n- name: a\n  reason: X\n  regex: '(?P<n>\\d+) (?P<r>\\w+)'\n  all: true\n  key: 'bogus_${r}'\n  value: '${n}'\n");
        assert!(e.contains("field `key`"), "{e}");
        let e = err("extractors:\n- name: a\n  reason: X\n  regex: '(?P<n>\\d+)'\n  all: true\n  key: 'insufficient_${r}'\n  value: '${n}'\n");
        assert!(e.contains("field `key`: template uses ${r}"), "{e}");
        let e = err("extractors:\n- name: a\n  reason: X\n  regex: 'x'\n  set: {flavour: x}\n");
        assert!(e.contains("field `set`: \"flavour\""), "{e}");
        let e = err("extractors:\n- name: a\n  reason: X\n");
        assert!(e.contains("field `regex`: missing required field"), "{e}");
        let e = err("extractors:\n- name: a\n  reason: X\n  regex: x\n  lowercase: maybe\n");
        assert!(
            e.contains("field `lowercase`: expected true or false"),
            "{e}"
        );
    }

    #[test]
    fn keys_are_normalized() {
        let mut k = "insufficient_nvidia.com/GPU".to_string();
        normalize_key(&mut k);
        assert_eq!(k, "insufficient_nvidia_com_gpu");
    }
}
