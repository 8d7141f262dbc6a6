//! Classification rules: the YAML shape of `rules/classify*.yaml` (and of
//! users' rule files), its validation, and the compiled rule table.
//!
//! A rule file has two lists: `categories` (names a rule may set, each with a
//! one-line meaning) and `rules` (ordered; first match wins). User files are
//! loaded before the built-in one: their rules come first, a user rule whose
//! name equals a built-in rule's replaces it, and user categories extend the
//! taxonomy. `docs/categories.md` explains the taxonomy and the severity policy.

use schemas::model::Severity;
use serde::Deserialize;
use serde_norway::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::select::{Glob, Selector};
use super::spec::{
    compile_regex, compile_selector, entry_label, list, parse_entry, parse_file, At, FieldKind,
    OneOrMany, RuleError, SelectorFields,
};

/// Name under which the embedded default rules, taken together, are merged.
pub(crate) const BUILTIN_NAME: &str = "builtin:rules/classify.yaml";
/// The default rules, compiled into the binary so a deployment needs no files:
/// one table split by emitter into files of a readable size, in priority
/// order (the fallbacks last). Each rule keeps its own file as `source`.
pub(crate) const BUILTIN_FILES: &[(&str, &str)] = &[
    (BUILTIN_NAME, include_str!("../../rules/classify.yaml")),
    (
        "builtin:rules/classify-controllers.yaml",
        include_str!("../../rules/classify-controllers.yaml"),
    ),
    (
        "builtin:rules/classify-node-problem-detector.yaml",
        include_str!("../../rules/classify-node-problem-detector.yaml"),
    ),
    (
        "builtin:rules/classify-fallbacks.yaml",
        include_str!("../../rules/classify-fallbacks.yaml"),
    ),
];

/// Category given to events no rule matches.
pub const UNKNOWN_CATEGORY: &str = "unknown";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileSpec {
    #[serde(default)]
    categories: Vec<CategorySpec>,
    #[serde(default)]
    rules: Vec<Value>,
}

/// A category a rule may assign.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    pub name: String,
    /// One line: what the category means (the long form is in docs/categories.md).
    #[serde(default)]
    pub description: String,
}

/// One classification rule as written in YAML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    /// Unique; user rules replace built-in rules of the same name.
    name: String,
    /// Exact event reason(s).
    #[serde(default)]
    reason: Option<OneOrMany>,
    /// Reason prefix(es), for families like the kubelet's `OutOf<resource>`.
    #[serde(default)]
    reason_prefix: Option<OneOrMany>,
    /// Reason shape(s) with one `*` (`Failed*`, `*Exceeded`, `Frequent*Restart`).
    #[serde(default)]
    reason_glob: Option<OneOrMany>,
    /// `Normal` or `Warning`.
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    /// Reporting controller(s) (`reportingController` / `source.component`).
    #[serde(default)]
    component: Option<OneOrMany>,
    /// Reporting-component shape(s) with one `*`, e.g. `*-monitor`.
    #[serde(default)]
    component_glob: Option<OneOrMany>,
    /// Kind(s) of the involved object.
    #[serde(default)]
    kind: Option<OneOrMany>,
    /// Namespace(s) of the event.
    #[serde(default)]
    namespace: Option<OneOrMany>,
    /// Regex searched in the message (`note`).
    #[serde(default)]
    message: Option<String>,
    category: String,
    severity: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

const RULE_FIELDS: &[(&str, FieldKind)] = &[
    ("name", FieldKind::Str),
    ("reason", FieldKind::StrOrList),
    ("reason_prefix", FieldKind::StrOrList),
    ("reason_glob", FieldKind::StrOrList),
    ("type", FieldKind::Str),
    ("component", FieldKind::StrOrList),
    ("component_glob", FieldKind::StrOrList),
    ("kind", FieldKind::StrOrList),
    ("namespace", FieldKind::StrOrList),
    ("message", FieldKind::Str),
    ("category", FieldKind::Str),
    ("severity", FieldKind::Str),
    ("labels", FieldKind::StrMap),
];
const RULE_REQUIRED: &[&str] = &["name", "category", "severity"];

/// A validated rule, ready to match.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub name: Box<str>,
    /// File the rule came from, for `kevents` diagnostics.
    pub source: Box<str>,
    pub selector: Selector,
    pub message: Option<regex::Regex>,
    pub category: Box<str>,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
}

/// A parsed but not yet merged rule file.
pub(crate) struct ParsedFile {
    pub categories: Vec<CategorySpec>,
    /// Rules with the label used in errors. Each is valid on its own; the
    /// category is checked at merge time because a user file may use a
    /// category declared in another file.
    pub rules: Vec<(String, CompiledRule)>,
    pub file: String,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b':')
}

fn valid_category(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Validates and compiles a list of one-`*` shapes.
fn globs(
    at: &At<'_>,
    field: &str,
    v: &Option<OneOrMany>,
) -> Result<Option<Box<[Glob]>>, RuleError> {
    let Some(items) = list(at, field, v)? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|p| {
            Glob::parse(p).ok_or_else(|| {
                at.err(
                    field,
                    format!("{p:?} must contain exactly one `*` (an exact name goes in `reason`/`component`)"),
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Parses one rule file and validates every rule in it on its own.
pub(crate) fn parse_rule_file(file: &str, text: &str) -> Result<ParsedFile, RuleError> {
    let spec: RuleFileSpec = parse_file(file, text)?;
    for (i, c) in spec.categories.iter().enumerate() {
        if !valid_category(&c.name) {
            return Err(RuleError::File {
                file: file.to_string(),
                message: format!(
                    "categories[{i}]: invalid category name {:?} (lowercase letters, digits, '-' and '.')",
                    c.name
                ),
            });
        }
    }
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(spec.rules.len());
    for (i, value) in spec.rules.into_iter().enumerate() {
        let label = entry_label("rules", i, &value);
        let rs: RuleSpec = parse_entry(file, &label, value, RULE_FIELDS, RULE_REQUIRED)?;
        let at = At { file, rule: &label };
        if !valid_name(&rs.name) {
            return Err(at.err(
                "name",
                "names use letters, digits, '-', '_', '.' or ':' (at most 128)",
            ));
        }
        if !seen.insert(rs.name.clone()) {
            return Err(at.err("name", "duplicate rule name in this file"));
        }
        let mut selector = compile_selector(
            &at,
            SelectorFields {
                reason: &rs.reason,
                reason_prefix: &rs.reason_prefix,
                event_type: &rs.event_type,
                component: &rs.component,
                kind: &rs.kind,
                namespace: &rs.namespace,
            },
        )?;
        // The shapes fallback rules use (classification only; correlation and
        // metadata selectors name reasons exactly or by prefix).
        if rs.reason_glob.is_some() && (rs.reason.is_some() || rs.reason_prefix.is_some()) {
            return Err(at.err(
                "reason_glob",
                "use one of `reason`, `reason_prefix` or `reason_glob`",
            ));
        }
        if rs.component.is_some() && rs.component_glob.is_some() {
            return Err(at.err(
                "component_glob",
                "use either `component` or `component_glob`, not both",
            ));
        }
        selector.reason_globs = globs(&at, "reason_glob", &rs.reason_glob)?;
        selector.component_globs = globs(&at, "component_glob", &rs.component_glob)?;
        let message = match &rs.message {
            Some(m) => Some(compile_regex(&at, "message", m)?),
            None => None,
        };
        if selector.is_empty() && message.is_none() {
            return Err(at.err(
                "reason",
                "rule has no match condition (set at least one of reason, reason_prefix, reason_glob, type, component, component_glob, kind, namespace, message)",
            ));
        }
        let severity: Severity = rs
            .severity
            .parse()
            .map_err(|e: String| at.err("severity", e))?;
        if !valid_category(&rs.category) {
            return Err(at.err(
                "category",
                format!("invalid category name {:?}", rs.category),
            ));
        }
        if let Some(k) = rs.labels.keys().find(|k| !valid_name(k)) {
            return Err(at.err("labels", format!("invalid label key {k:?}")));
        }
        rules.push((
            label,
            CompiledRule {
                name: rs.name.into(),
                source: file.into(),
                selector,
                message,
                category: rs.category.into(),
                severity,
                labels: rs.labels,
            },
        ));
    }
    Ok(ParsedFile {
        categories: spec.categories,
        rules,
        file: file.to_string(),
    })
}

/// The built-in files parsed and joined into one (named [`BUILTIN_NAME`]),
/// in order; a rule name may appear in only one of them.
pub(crate) fn parse_builtin() -> Result<ParsedFile, RuleError> {
    let mut joined = ParsedFile {
        categories: Vec::new(),
        rules: Vec::new(),
        file: BUILTIN_NAME.to_string(),
    };
    let mut names: HashMap<String, &str> = HashMap::new();
    for (file, text) in BUILTIN_FILES {
        let parsed = parse_rule_file(file, text)?;
        for (label, rule) in &parsed.rules {
            if let Some(other) = names.insert(rule.name.to_string(), file) {
                return Err(At { file, rule: label }.err(
                    "name",
                    format!("duplicate rule name, already defined in {other}"),
                ));
            }
        }
        joined.categories.extend(parsed.categories);
        joined.rules.extend(parsed.rules);
    }
    Ok(joined)
}

/// The merged rule table: user rules first (file order), then built-in rules
/// not overridden by name. Also returns the known categories, in order.
pub(crate) fn merge(
    user: Vec<ParsedFile>,
    builtin: ParsedFile,
) -> Result<(Vec<CompiledRule>, Vec<CategorySpec>), RuleError> {
    let mut categories: Vec<CategorySpec> = builtin.categories.clone();
    for f in &user {
        for c in &f.categories {
            if !categories.iter().any(|k| k.name == c.name) {
                categories.push(c.clone());
            }
        }
    }
    if !categories.iter().any(|c| c.name == UNKNOWN_CATEGORY) {
        categories.push(CategorySpec {
            name: UNKNOWN_CATEGORY.into(),
            description: "No rule matched.".into(),
        });
    }
    let known: HashSet<&str> = categories.iter().map(|c| c.name.as_str()).collect();

    let mut user_names: HashMap<String, String> = HashMap::new();
    let mut table = Vec::new();
    for f in user.into_iter().chain(std::iter::once(builtin)) {
        let is_builtin = f.file == BUILTIN_NAME;
        for (label, rule) in f.rules {
            let at = At {
                file: &f.file,
                rule: &label,
            };
            if !known.contains(&*rule.category) {
                return Err(at.err(
                    "category",
                    format!(
                        "unknown category {:?}; declare it under `categories:` or use one of: {}",
                        rule.category,
                        categories
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if is_builtin {
                if user_names.contains_key(&*rule.name) {
                    continue; // overridden by a user rule of the same name
                }
            } else if let Some(other) = user_names.get(&*rule.name) {
                return Err(at.err(
                    "name",
                    format!("duplicate rule name, already defined in {other}"),
                ));
            } else {
                user_names.insert(rule.name.to_string(), f.file.clone());
            }
            table.push(rule);
        }
    }
    Ok((table, categories))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rule_file_parses_and_every_rule_has_a_source_comment_group() {
        let parsed = parse_builtin().expect("built-in rules are valid");
        assert!(
            parsed.rules.len() > 100,
            "only {} rules",
            parsed.rules.len()
        );
        let (table, cats) = merge(vec![], parsed).unwrap();
        // Every declared category is used by at least one rule, except `unknown`.
        for c in &cats {
            if c.name != UNKNOWN_CATEGORY {
                assert!(
                    table.iter().any(|r| *r.category == c.name),
                    "category {} unused",
                    c.name
                );
            }
            assert!(
                !c.description.is_empty(),
                "category {} has no description",
                c.name
            );
        }
        // Every group of rules cites the source file it was learned from.
        let cites = BUILTIN_FILES
            .iter()
            .flat_map(|(_, text)| text.lines())
            .filter(|l| l.trim_start().starts_with("# source:"))
            .count();
        assert!(cites >= 20, "only {cites} source citations");
    }

    #[test]
    fn every_category_is_documented_in_docs_categories_md() {
        let doc = include_str!("../../../docs/categories.md");
        let parsed = parse_builtin().unwrap();
        let (_, cats) = merge(vec![], parsed).unwrap();
        for c in cats {
            assert!(
                doc.contains(&format!("`{}`", c.name)),
                "docs/categories.md lacks `{}`",
                c.name
            );
        }
    }

    fn err(text: &str) -> String {
        match parse_rule_file("user.yaml", text) {
            Ok(p) => merge(vec![p], parse_builtin().unwrap())
                .unwrap_err()
                .to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn invalid_rules_name_file_rule_and_field() {
        let e = err("rules:\n- name: a\n  reason: X\n  category: image\n  severity: fatal\n");
        assert!(
            e.starts_with(
                "user.yaml: rule \"a\" (rules[0]): field `severity`: unknown severity \"fatal\""
            ),
            "{e}"
        );
        let e = err(
            "rules:\n- name: a\n  reason: X\n  message: '('\n  category: image\n  severity: info\n",
        );
        assert!(
            e.starts_with("user.yaml: rule \"a\" (rules[0]): field `message`: invalid regex"),
            "{e}"
        );
        let e = err("rules:\n- name: a\n  category: image\n  severity: info\n");
        assert!(
            e.starts_with(
                "user.yaml: rule \"a\" (rules[0]): field `reason`: rule has no match condition"
            ),
            "{e}"
        );
        let e = err(
            "rules:\n- name: a\n  reason: X\n  category: image\n  severity: info\n  colour: red\n",
        );
        assert!(
            e.starts_with("user.yaml: rule \"a\" (rules[0]): field `colour`: unknown field"),
            "{e}"
        );
        let e = err(concat!(
            "rules:\n- name: a\n  reason: X\n  category: image\n  severity: info\n",
            "- name: a\n  reason: Y\n  category: image\n  severity: info\n"
        ));
        assert!(
            e.starts_with("user.yaml: rule \"a\" (rules[1]): field `name`: duplicate rule name"),
            "{e}"
        );
        let e = err("rules:\n- name: a\n  reason: X\n  category: imagez\n  severity: info\n");
        assert!(
            e.starts_with(
                "user.yaml: rule \"a\" (rules[0]): field `category`: unknown category \"imagez\""
            ),
            "{e}"
        );
        let e = err("rules:\n- name: a\n  reason: X\n  type: warning\n  category: image\n  severity: info\n");
        assert!(
            e.contains("field `type`: unknown event type \"warning\""),
            "{e}"
        );
        let e = err("rules:\n- name: a\n  reason: X\n  reason_glob: '*Failed'\n  category: image\n  severity: info\n");
        assert!(
            e.contains(
                "field `reason_glob`: use one of `reason`, `reason_prefix` or `reason_glob`"
            ),
            "{e}"
        );
        let e = err("rules:\n- name: a\n  component: k\n  component_glob: ['*-monitor']\n  category: image\n  severity: info\n");
        assert!(
            e.contains("field `component_glob`: use either `component` or `component_glob`"),
            "{e}"
        );
        let e =
            err("rules:\n- name: a\n  reason_glob: Failed\n  category: image\n  severity: info\n");
        assert!(
            e.contains("field `reason_glob`: \"Failed\" must contain exactly one `*`"),
            "{e}"
        );
        let e = err("rules:\n- name: a\n  reason_glob: []\n  category: image\n  severity: info\n");
        assert!(e.contains("field `reason_glob`: an empty list"), "{e}");
        let e = err("rulez: []\n");
        assert!(e.starts_with("user.yaml: unknown field `rulez`"), "{e}");
    }

    #[test]
    fn user_rules_come_first_and_replace_builtin_rules_by_name() {
        let user = parse_rule_file(
            "user.yaml",
            concat!(
                "categories:\n- name: payments\n  description: our payment stack\n",
                "rules:\n",
                "- name: kubelet-crashloop-backoff\n  reason: BackOff\n  type: Warning\n",
                "  category: container-crash\n  severity: critical\n",
                "- name: payments-any\n  namespace: payments\n  category: payments\n  severity: warning\n",
            ),
        )
        .unwrap();
        let builtin = parse_builtin().unwrap();
        let builtin_len = builtin.rules.len();
        let (table, cats) = merge(vec![user], builtin).unwrap();
        assert_eq!(&*table[0].name, "kubelet-crashloop-backoff");
        assert_eq!(table[0].severity, Severity::Critical);
        assert_eq!(&*table[1].name, "payments-any");
        assert_eq!(
            table.len(),
            builtin_len + 1,
            "the override replaced, not added"
        );
        assert_eq!(
            table
                .iter()
                .filter(|r| &*r.name == "kubelet-crashloop-backoff")
                .count(),
            1
        );
        assert!(cats.iter().any(|c| c.name == "payments"));
    }
}
