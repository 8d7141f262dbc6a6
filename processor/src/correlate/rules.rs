//! Correlation rules: YAML → validated, compiled rules, with errors that name
//! the file, the rule and the field (`effects[2].via`).
//!
//! Built-in rules are `rules/correlate.yaml` (embedded); users' files come
//! first, and a user rule with a built-in rule's name replaces it. The file
//! format is documented at the top of `rules/correlate.yaml` and in
//! `docs/correlation.md`.

use regex::Regex;
use schemas::model::{NormalizedEvent, Severity};
use serde::Deserialize;
use serde_norway::Value;
use std::path::PathBuf;

use super::links::{Via, ViaSet};
use crate::classify::select::Selector;
use crate::classify::spec::{
    compile_regex, compile_selector, entry_label, parse_entry, parse_file, At, FieldKind, OneOrMany, RuleList, SelectorFields,
};
use crate::classify::RuleError;

/// The built-in rules.
pub const BUILTIN: &str = include_str!("../../rules/correlate.yaml");
const BUILTIN_NAME: &str = "built-in rules/correlate.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherSpec {
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
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    category: Option<OneOrMany>,
    #[serde(default)]
    min_severity: Option<String>,
    #[serde(default)]
    owner_kind: Option<OneOrMany>,
    #[serde(default)]
    via: Option<OneOrMany>,
    #[serde(default)]
    within: Option<String>,
    #[serde(default)]
    member: Option<bool>,
}

const MATCHER_FIELDS: &[(&str, FieldKind)] = &[
    ("reason", FieldKind::StrOrList),
    ("reason_prefix", FieldKind::StrOrList),
    ("type", FieldKind::Str),
    ("component", FieldKind::StrOrList),
    ("kind", FieldKind::StrOrList),
    ("namespace", FieldKind::StrOrList),
    ("message", FieldKind::Str),
    ("category", FieldKind::StrOrList),
    ("min_severity", FieldKind::Str),
    ("owner_kind", FieldKind::StrOrList),
    ("via", FieldKind::StrOrList),
    ("within", FieldKind::Str),
    ("member", FieldKind::Bool),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    #[serde(default)]
    description: String,
    cause: Value,
    #[serde(default)]
    effects: Vec<Value>,
    #[serde(default)]
    recovery: Vec<Value>,
    #[serde(default)]
    link: Option<OneOrMany>,
    #[serde(default)]
    quiet: Option<String>,
    #[serde(default)]
    stable: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    detail: Option<OneOrMany>,
    #[serde(default)]
    lookback: Option<String>,
}

const RULE_FIELDS: &[(&str, FieldKind)] = &[
    ("name", FieldKind::Str),
    ("description", FieldKind::Str),
    ("cause", FieldKind::Nested),
    ("effects", FieldKind::Nested),
    ("recovery", FieldKind::Nested),
    ("link", FieldKind::StrOrList),
    ("quiet", FieldKind::Str),
    ("stable", FieldKind::Str),
    ("severity", FieldKind::Str),
    ("detail", FieldKind::StrOrList),
    ("lookback", FieldKind::Str),
];

/// What an event must be (and how it must be linked) to play a part in a rule.
#[derive(Debug)]
pub struct Matcher {
    selector: Selector,
    message: Option<Regex>,
    categories: Option<Box<[Box<str>]>>,
    min_severity: Option<Severity>,
    owner_kinds: Option<Box<[Box<str>]>>,
    /// Ways an event may be linked to the incident for this matcher.
    pub via: ViaSet,
    /// Max record time since the incident's last event, µs.
    pub within_us: Option<i64>,
    /// Whether a matching event joins the incident (recovery events may not).
    pub member: bool,
}

/// The classified event a matcher looks at.
pub struct EventView<'a> {
    pub ev: &'a NormalizedEvent,
    pub category: &'a str,
    pub severity: Severity,
    pub ancestor_kinds: &'a [&'static str],
}

impl Matcher {
    pub fn matches(&self, v: &EventView<'_>) -> bool {
        if let Some(reasons) = &self.selector.reasons {
            if !reasons.iter().any(|r| **r == *v.ev.reason) {
                return false;
            }
        }
        self.selector.matches(v.ev)
            && self.min_severity.is_none_or(|m| v.severity >= m)
            && self.categories.as_ref().is_none_or(|c| c.iter().any(|c| **c == *v.category))
            && self.owner_kinds.as_ref().is_none_or(|k| k.iter().any(|k| v.ancestor_kinds.contains(&&**k)))
            && self.message.as_ref().is_none_or(|re| re.is_match(&v.ev.note))
    }

    fn reasons(&self) -> Option<&[Box<str>]> {
        self.selector.reasons.as_deref()
    }
}

/// One compiled correlation rule.
#[derive(Debug)]
pub struct Rule {
    pub name: Box<str>,
    pub description: String,
    /// File the rule came from.
    pub source: Box<str>,
    pub cause: Matcher,
    pub effects: Vec<Matcher>,
    pub recovery: Vec<Matcher>,
    /// Every way any of its matchers links (decides which keys to register).
    pub uses: ViaSet,
    pub quiet_us: i64,
    pub stable_us: i64,
    pub severity: Option<Severity>,
    pub detail: Vec<String>,
    /// How late (record time) this rule's cause may arrive after its effects
    /// and still become their root: effects that stood alone up to this long
    /// before it are taken in, and an incident opened up to this long before
    /// it whose root it causes is re-rooted at it.
    pub lookback_us: i64,
}

/// `lookback` when a rule does not say: a cause and its effects are often
/// written in the same second (core/v1 times have one-second resolution) and
/// reach the processor in any order within a few seconds.
pub const DEFAULT_LOOKBACK_US: i64 = 5_000_000;

/// All rules, in priority order, plus a reason filter that lets the hot path
/// skip events no rule can be about.
#[derive(Debug)]
pub struct Rules {
    pub rules: Vec<Rule>,
    /// The longest `lookback` of any rule: how long stand-alone events are kept
    /// for a late cause.
    pub max_lookback_us: i64,
    reasons: rustc_hash::FxHashSet<Box<str>>,
    /// The reasons some effect matcher names, and whether one names none.
    effect_reasons: (rustc_hash::FxHashSet<Box<str>>, bool),
    /// Some matcher has no exact reason: every event must be looked at.
    general: bool,
    /// Per way of linking (index = bit position): the reasons some matcher
    /// linking that way names, and whether one names none. Lets the hot path
    /// skip index lookups no matcher could use.
    by_via: [(rustc_hash::FxHashSet<Box<str>>, bool); 4],
}

impl Rules {
    pub fn builtin() -> Self {
        Self::load(&[]).expect("built-in correlation rules are valid (tested)")
    }

    /// Users' files (earlier files win) before the built-in rules.
    pub fn load(paths: &[PathBuf]) -> Result<Self, RuleError> {
        let mut files = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(p).map_err(|source| RuleError::Read { path: p.clone(), source })?;
            files.push((p.display().to_string(), text));
        }
        files.push((BUILTIN_NAME.to_string(), BUILTIN.to_string()));
        let mut rules: Vec<Rule> = Vec::new();
        for (file, text) in &files {
            for rule in parse_rules(file, text)? {
                if !rules.iter().any(|r| r.name == rule.name) {
                    rules.push(rule);
                }
            }
        }
        Ok(Self::from_rules(rules))
    }

    /// Rules of one YAML text only (tests, `kevents analyze --rules`).
    pub fn from_yaml_str(file: &str, text: &str) -> Result<Self, RuleError> {
        Ok(Self::from_rules(parse_rules(file, text)?))
    }

    fn from_rules(rules: Vec<Rule>) -> Self {
        let mut reasons = rustc_hash::FxHashSet::default();
        let mut general = false;
        let mut by_via: [(rustc_hash::FxHashSet<Box<str>>, bool); 4] = Default::default();
        for r in &rules {
            for m in std::iter::once(&r.cause).chain(&r.effects).chain(&r.recovery) {
                match m.reasons() {
                    Some(list) => reasons.extend(list.iter().cloned()),
                    None => general = true,
                }
                for (i, via) in Via::ALL.iter().enumerate() {
                    if m.via & via.bit() != 0 {
                        match m.reasons() {
                            Some(list) => by_via[i].0.extend(list.iter().cloned()),
                            None => by_via[i].1 = true,
                        }
                    }
                }
            }
        }
        let max_lookback_us = rules.iter().map(|r| r.lookback_us).max().unwrap_or(0);
        let mut effect_reasons: (rustc_hash::FxHashSet<Box<str>>, bool) = Default::default();
        for m in rules.iter().flat_map(|r| &r.effects) {
            match m.reasons() {
                Some(list) => effect_reasons.0.extend(list.iter().cloned()),
                None => effect_reasons.1 = true,
            }
        }
        Rules { rules, max_lookback_us, reasons, effect_reasons, general, by_via }
    }

    /// Whether any matcher linking `via` can be about an event with this reason.
    #[inline]
    pub fn may_link(&self, via: Via, reason: &str) -> bool {
        let (reasons, general) = &self.by_via[via.bit().trailing_zeros() as usize];
        *general || reasons.contains(reason)
    }

    /// Whether the event is an effect in some rule (a stand-alone one is kept
    /// for a late cause).
    pub fn is_effect(&self, v: &EventView<'_>) -> bool {
        let (reasons, general) = &self.effect_reasons;
        (*general || reasons.contains(v.ev.reason.as_str())) && self.rules.iter().any(|r| r.effects.iter().any(|m| m.matches(v)))
    }

    /// The first rule whose cause the event matches: the rule it would open an
    /// incident with.
    pub fn cause_rule(&self, v: &EventView<'_>) -> Option<usize> {
        self.rules.iter().position(|r| r.cause.matches(v))
    }

    /// Whether any rule can be about an event with this reason.
    #[inline]
    pub fn may_concern(&self, reason: &str) -> bool {
        self.general || self.reasons.contains(reason)
    }
}

fn parse_rules(file: &str, text: &str) -> Result<Vec<Rule>, RuleError> {
    let spec: RuleList = parse_file(file, text)?;
    let mut out: Vec<Rule> = Vec::new();
    for (i, value) in spec.rules.into_iter().enumerate() {
        let label = entry_label("rules", i, &value);
        let s: RuleSpec = parse_entry(file, &label, value, RULE_FIELDS, &["name", "cause"])?;
        let at = At { file, rule: &label };
        if out.iter().any(|r| *r.name == *s.name) {
            return Err(at.err("name", "another rule in this file has the same name"));
        }
        out.push(compile_rule(&at, s)?);
    }
    Ok(out)
}

fn compile_rule(at: &At<'_>, s: RuleSpec) -> Result<Rule, RuleError> {
    if s.name.trim().is_empty() {
        return Err(at.err("name", "must not be empty"));
    }
    let link = match &s.link {
        None => Via::Object.bit() | Via::Owner.bit(),
        Some(l) => parse_via(at, "link", l)?,
    };
    let cause = compile_matcher(at, "cause", s.cause, link, true)?;
    if cause.selector.is_empty() && cause.message.is_none() && cause.categories.is_none() {
        return Err(at.err("cause", "matches every event; name at least a reason, kind, category or message"));
    }
    let mut effects = Vec::new();
    for (j, v) in s.effects.into_iter().enumerate() {
        effects.push(compile_matcher(at, &format!("effects[{j}]"), v, link, true)?);
    }
    let mut recovery = Vec::new();
    for (j, v) in s.recovery.into_iter().enumerate() {
        recovery.push(compile_matcher(at, &format!("recovery[{j}]"), v, link, false)?);
    }
    let uses = std::iter::once(&cause).chain(&effects).chain(&recovery).fold(0, |a, m| a | m.via);
    let severity = match &s.severity {
        None => None,
        Some(v) => Some(v.parse::<Severity>().map_err(|e| at.err("severity", e))?),
    };
    Ok(Rule {
        name: s.name.into(),
        description: s.description,
        source: at.file.into(),
        cause,
        effects,
        recovery,
        uses,
        quiet_us: duration(at, "quiet", s.quiet.as_deref())?.unwrap_or(15 * 60 * 1_000_000),
        stable_us: duration(at, "stable", s.stable.as_deref())?.unwrap_or(2 * 60 * 1_000_000),
        severity,
        detail: s.detail.map(OneOrMany::into_vec).unwrap_or_default(),
        lookback_us: duration(at, "lookback", s.lookback.as_deref())?.unwrap_or(DEFAULT_LOOKBACK_US),
    })
}

fn parse_via(at: &At<'_>, field: &str, l: &OneOrMany) -> Result<ViaSet, RuleError> {
    let mut set = 0;
    for v in l.clone().into_vec() {
        let via = Via::parse(&v).ok_or_else(|| at.err(field, format!("unknown link {v:?} (expected object, owner, node or cluster)")))?;
        set |= via.bit();
    }
    if set == 0 {
        return Err(at.err(field, "an empty list links nothing; remove the field instead"));
    }
    Ok(set)
}

fn compile_matcher(at: &At<'_>, field: &str, value: Value, link: ViaSet, member: bool) -> Result<Matcher, RuleError> {
    let label = format!("{} {field}", at.rule);
    let s: MatcherSpec = parse_entry(at.file, &label, value, MATCHER_FIELDS, &[])?;
    let sub = At { file: at.file, rule: &label };
    let selector = compile_selector(
        &sub,
        SelectorFields {
            reason: &s.reason,
            reason_prefix: &s.reason_prefix,
            event_type: &s.event_type,
            component: &s.component,
            kind: &s.kind,
            namespace: &s.namespace,
        },
    )?;
    let message = s.message.as_deref().map(|m| compile_regex(&sub, "message", m)).transpose()?;
    let min_severity = s.min_severity.as_deref().map(|v| v.parse::<Severity>().map_err(|e| sub.err("min_severity", e))).transpose()?;
    let via = match &s.via {
        None => link,
        Some(v) => parse_via(&sub, "via", v)?,
    };
    let within_us = duration(&sub, "within", s.within.as_deref())?;
    if via & Via::Cluster.bit() != 0 && within_us.is_none() {
        return Err(sub.err("within", "a `cluster` link needs `within`: without a time window every event in the cluster would match"));
    }
    let list = |v: Option<OneOrMany>| v.map(|v| v.into_vec().into_iter().map(Box::from).collect::<Box<[Box<str>]>>());
    Ok(Matcher {
        selector,
        message,
        categories: list(s.category),
        min_severity,
        owner_kinds: list(s.owner_kind),
        via,
        within_us,
        member: s.member.unwrap_or(member),
    })
}

/// `90s`, `2m`, `1h30m`, `500ms` → µs.
fn duration(at: &At<'_>, field: &str, v: Option<&str>) -> Result<Option<i64>, RuleError> {
    let Some(v) = v else { return Ok(None) };
    let bad = || at.err(field, format!("{v:?} is not a duration (e.g. 90s, 2m, 1h30m)"));
    let mut total: i64 = 0;
    let mut rest = v.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1_000, 2)
        } else if rest.starts_with('s') {
            (1_000_000, 1)
        } else if rest.starts_with('m') {
            (60_000_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000_000, 1)
        } else {
            return Err(bad());
        };
        total = total.saturating_add(n.saturating_mul(unit));
        rest = &rest[len..];
    }
    if total <= 0 {
        return Err(at.err(field, "must be more than zero"));
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_load() {
        let r = Rules::builtin();
        assert!(r.rules.len() >= 10);
        assert!(r.may_concern("FailedMount") && r.may_concern("BackOff"));
        assert!(!r.may_concern("Pulling"));
        let node = r.rules.iter().find(|r| &*r.name == "node-not-ready").unwrap();
        assert_ne!(node.uses & Via::Cluster.bit(), 0);
        assert_eq!(node.effects[1].within_us, Some(120_000_000));
    }

    #[test]
    fn errors_name_file_rule_and_field() {
        let e = Rules::from_yaml_str("u.yaml", "rules:\n  - name: x\n    cause: {reason: A}\n    effects:\n      - {reason: B, via: [nearby]}\n").unwrap_err().to_string();
        assert!(e.starts_with("u.yaml: rule \"x\" (rules[0]) effects[0]: field `via`: unknown link \"nearby\""), "{e}");
        let e = Rules::from_yaml_str("u.yaml", "rules:\n  - name: x\n    cause: {reason: A}\n    quiet: 5 minutes\n").unwrap_err().to_string();
        assert!(e.contains("field `quiet`: \"5 minutes\" is not a duration"), "{e}");
        let e = Rules::from_yaml_str("u.yaml", "rules:\n  - name: x\n    cause: {reason: A, mesage: b}\n").unwrap_err().to_string();
        assert!(e.contains("cause: field `mesage`: unknown field"), "{e}");
        let e = Rules::from_yaml_str("u.yaml", "rules:\n  - name: x\n    cause: {type: Warning, message: '('}\n").unwrap_err().to_string();
        assert!(e.contains("field `message`: invalid regex"), "{e}");
        let e = Rules::from_yaml_str("u.yaml", "rules:\n  - name: x\n    effects: []\n").unwrap_err().to_string();
        assert!(e.contains("field `cause`: missing required field"), "{e}");
        let e = Rules::from_yaml_str("u.yaml", "rules:\n  - name: x\n    cause: {reason: A}\n    effects:\n      - {reason: B, via: cluster}\n").unwrap_err().to_string();
        assert!(e.contains("field `within`"), "{e}");
    }

    #[test]
    fn user_rules_replace_builtin_ones_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mine.yaml");
        std::fs::write(&p, "rules:\n  - name: crash-loop\n    cause: {reason: BackOff}\n    quiet: 1h\n  - name: mine\n    cause: {reason: Custom}\n").unwrap();
        let r = Rules::load(&[p]).unwrap();
        let crash: Vec<_> = r.rules.iter().filter(|r| &*r.name == "crash-loop").collect();
        assert_eq!(crash.len(), 1);
        assert_eq!(crash[0].quiet_us, 3_600_000_000);
        assert_eq!(&*r.rules[1].name, "mine");
        assert!(r.may_concern("Custom"));
    }

    #[test]
    fn durations() {
        let at = At { file: "f", rule: "r" };
        assert_eq!(duration(&at, "d", Some("1h30m")).unwrap(), Some(5_400_000_000));
        assert_eq!(duration(&at, "d", Some("500ms")).unwrap(), Some(500_000));
        assert!(duration(&at, "d", Some("0s")).is_err());
        assert!(duration(&at, "d", Some("m")).is_err());
    }
}
