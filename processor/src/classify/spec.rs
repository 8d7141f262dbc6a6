//! Reading rule files: YAML → typed specs, with errors that name the file, the
//! rule and the field.
//!
//! serde with `deny_unknown_fields` gives the typed structs, but its error for
//! one entry of a list says neither which entry nor (for a type mismatch) which
//! field. So each entry is first read as a YAML value, deserialized on its own,
//! and when that fails [`diagnose`] re-checks the entry field by field to name
//! the culprit. Classification rules ([`super::rules`]) and metadata
//! extractors ([`crate::metadata::patterns`]) both read their files this way.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::select::{EventType, Selector};

/// A rule or extractor file that cannot be used. Every variant is permanent:
/// the file must be fixed, retrying cannot help, so start-up fails with it.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cannot read rule file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file as a whole is malformed (not YAML, or wrong top-level keys).
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// One rule is invalid. `rule` is `"name" (rules[i])`, or `rules[i]` when
    /// the rule has no usable name.
    #[error("{file}: rule {rule}: field `{field}`: {message}")]
    Rule {
        file: String,
        rule: String,
        field: String,
        message: String,
    },
}

/// The YAML shape a field must have, for field-by-field diagnosis.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldKind {
    Str,
    StrOrList,
    StrMap,
    Bool,
    /// A nested mapping or list, checked by the caller's own parse.
    Nested,
}

/// One string or a list of strings: `reason: BackOff` or `reason: [A, B]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Where an error happened: file name and rule label, carried while compiling.
pub(crate) struct At<'a> {
    pub file: &'a str,
    pub rule: &'a str,
}

impl At<'_> {
    pub(crate) fn err(&self, field: &str, message: impl Into<String>) -> RuleError {
        RuleError::Rule {
            file: self.file.to_string(),
            rule: self.rule.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The selector fields as written in YAML, borrowed from a rule or extractor spec.
pub(crate) struct SelectorFields<'a> {
    pub reason: &'a Option<OneOrMany>,
    pub reason_prefix: &'a Option<OneOrMany>,
    pub event_type: &'a Option<String>,
    pub component: &'a Option<OneOrMany>,
    pub kind: &'a Option<OneOrMany>,
    pub namespace: &'a Option<OneOrMany>,
}

/// Validates an optional list field (no empty list, no blank or padded item).
pub(crate) fn list(
    at: &At<'_>,
    field: &str,
    v: &Option<OneOrMany>,
) -> Result<Option<Box<[Box<str>]>>, RuleError> {
    let Some(v) = v else { return Ok(None) };
    let items = v.clone().into_vec();
    if items.is_empty() {
        return Err(at.err(
            field,
            "an empty list matches nothing; remove the field instead",
        ));
    }
    if let Some(bad) = items
        .iter()
        .find(|s| s.trim().is_empty() || s.trim() != s.as_str())
    {
        return Err(at.err(field, format!("{bad:?} is empty or has surrounding spaces")));
    }
    Ok(Some(items.into_iter().map(Box::from).collect()))
}

/// Validates and compiles the selector part of a rule.
pub(crate) fn compile_selector(at: &At<'_>, f: SelectorFields<'_>) -> Result<Selector, RuleError> {
    if f.reason.is_some() && f.reason_prefix.is_some() {
        return Err(at.err(
            "reason_prefix",
            "use either `reason` or `reason_prefix`, not both",
        ));
    }
    let event_type = match f.event_type {
        None => None,
        Some(t) => Some(EventType::parse(t).ok_or_else(|| {
            at.err(
                "type",
                format!("unknown event type {t:?} (expected Normal or Warning)"),
            )
        })?),
    };
    Ok(Selector {
        reasons: list(at, "reason", f.reason)?,
        reason_prefixes: list(at, "reason_prefix", f.reason_prefix)?,
        event_type,
        components: list(at, "component", f.component)?,
        kinds: list(at, "kind", f.kind)?,
        namespaces: list(at, "namespace", f.namespace)?,
        ..Selector::default()
    })
}

/// Compiles a regex, naming the field on error. Patterns are unanchored
/// searches unless they anchor themselves with `^`/`$`.
pub(crate) fn compile_regex(
    at: &At<'_>,
    field: &str,
    pattern: &str,
) -> Result<regex::Regex, RuleError> {
    regex::Regex::new(pattern).map_err(|e| at.err(field, format!("invalid regex: {e}")))
}

/// A rule file that is only a `rules:` list (correlation, alerts); each entry
/// is parsed with [`parse_entry`] so errors name its field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleList {
    #[serde(default)]
    pub rules: Vec<Value>,
}

/// Reads a whole file as a YAML value; an empty file (or only comments) is Null.
pub(crate) fn parse_file<T: DeserializeOwned + Default>(
    file: &str,
    text: &str,
) -> Result<T, RuleError> {
    let value: Value = serde_norway::from_str(text).map_err(|e| RuleError::File {
        file: file.to_string(),
        message: format!("not valid YAML: {e}"),
    })?;
    if value.is_null() {
        return Ok(T::default());
    }
    serde_norway::from_value(value).map_err(|e| RuleError::File {
        file: file.to_string(),
        message: e.to_string(),
    })
}

/// The label used in errors: `"name" (rules[i])` or `rules[i]`.
pub(crate) fn entry_label(list_key: &str, index: usize, value: &Value) -> String {
    match value.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => format!("{name:?} ({list_key}[{index}])"),
        _ => format!("{list_key}[{index}]"),
    }
}

/// Deserializes one entry of a rule list, with a field-naming error on failure.
pub(crate) fn parse_entry<T: DeserializeOwned>(
    file: &str,
    label: &str,
    value: Value,
    fields: &[(&str, FieldKind)],
    required: &[&str],
) -> Result<T, RuleError> {
    let at = At { file, rule: label };
    // Diagnose first: it names the field, where serde would only describe it.
    diagnose(&at, &value, fields, required)?;
    serde_norway::from_value(value).map_err(|e| at.err("?", e.to_string()))
}

/// Checks an entry field by field so the error can name the field.
fn diagnose(
    at: &At<'_>,
    value: &Value,
    fields: &[(&str, FieldKind)],
    required: &[&str],
) -> Result<(), RuleError> {
    let Some(map) = value.as_mapping() else {
        return Err(at.err("-", "each entry must be a mapping of field: value"));
    };
    for (key, v) in map {
        let Some(key) = key.as_str() else {
            return Err(at.err(&format!("{key:?}"), "field names must be strings"));
        };
        let Some((_, kind)) = fields.iter().find(|(name, _)| *name == key) else {
            let known: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
            return Err(at.err(
                key,
                format!("unknown field (expected one of: {})", known.join(", ")),
            ));
        };
        let ok = match kind {
            FieldKind::Str => serde_norway::from_value::<String>(v.clone()).is_ok(),
            FieldKind::StrOrList => serde_norway::from_value::<OneOrMany>(v.clone()).is_ok(),
            FieldKind::StrMap => {
                serde_norway::from_value::<BTreeMap<String, String>>(v.clone()).is_ok()
            }
            FieldKind::Bool => serde_norway::from_value::<bool>(v.clone()).is_ok(),
            FieldKind::Nested => v.is_mapping() || v.is_sequence(),
        };
        if !ok {
            let expected = match kind {
                FieldKind::Str => "a string",
                FieldKind::StrOrList => "a string or a list of strings",
                FieldKind::StrMap => "a mapping of string to string",
                FieldKind::Bool => "true or false",
                FieldKind::Nested => "a mapping or a list",
            };
            return Err(at.err(key, format!("expected {expected}")));
        }
    }
    for req in required {
        if !map.contains_key(*req) {
            return Err(at.err(req, "missing required field"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[(&str, FieldKind)] = &[
        ("name", FieldKind::Str),
        ("reason", FieldKind::StrOrList),
        ("labels", FieldKind::StrMap),
    ];

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Entry {
        name: String,
        reason: Option<OneOrMany>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    }

    fn check(yaml: &str) -> Result<Entry, RuleError> {
        let v: Value = serde_norway::from_str(yaml).unwrap();
        let label = entry_label("rules", 2, &v);
        parse_entry::<Entry>("f.yaml", &label, v, FIELDS, &["name"])
    }

    #[test]
    fn errors_name_the_file_rule_and_field() {
        let e = check("name: x\nreasn: A").unwrap_err().to_string();
        assert_eq!(
            e,
            "f.yaml: rule \"x\" (rules[2]): field `reasn`: unknown field (expected one of: name, reason, labels)"
        );
        let e = check("name: x\nreason: {a: 1}").unwrap_err().to_string();
        assert!(
            e.contains("field `reason`: expected a string or a list"),
            "{e}"
        );
        let e = check("reason: A").unwrap_err().to_string();
        assert_eq!(
            e,
            "f.yaml: rule rules[2]: field `name`: missing required field"
        );
        let e = check("name: x\nlabels: [a]").unwrap_err().to_string();
        assert!(e.contains("field `labels`: expected a mapping"), "{e}");
        assert!(check("name: x\nreason: [A, B]").is_ok());
    }

    #[test]
    fn selector_rejects_bad_type_empty_lists_and_reason_with_prefix() {
        let at = At {
            file: "f",
            rule: "r",
        };
        let none = None;
        let t = Some("Warn".to_string());
        let e = compile_selector(
            &at,
            SelectorFields {
                reason: &none,
                reason_prefix: &none,
                event_type: &t,
                component: &none,
                kind: &none,
                namespace: &none,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("field `type`: unknown event type \"Warn\""),
            "{e}"
        );
        let empty = Some(OneOrMany::Many(vec![]));
        let e = compile_selector(
            &at,
            SelectorFields {
                reason: &empty,
                reason_prefix: &none,
                event_type: &None,
                component: &none,
                kind: &none,
                namespace: &none,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("field `reason`: an empty list"), "{e}");
        let r = Some(OneOrMany::One("A".into()));
        let e = compile_selector(
            &at,
            SelectorFields {
                reason: &r,
                reason_prefix: &r,
                event_type: &None,
                component: &none,
                kind: &none,
                namespace: &none,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("field `reason_prefix`"), "{e}");
    }

    #[test]
    fn empty_file_is_empty_and_bad_yaml_names_the_file() {
        #[derive(Default, serde::Deserialize)]
        struct F {
            #[allow(dead_code)]
            rules: Vec<Value>,
        }
        assert!(parse_file::<F>("e.yaml", "# only a comment\n").is_ok());
        let e = parse_file::<F>("b.yaml", "rules: [")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("b.yaml: not valid YAML"), "{e}");
    }
}
