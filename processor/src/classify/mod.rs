//! Where category and severity are decided: the ordered rule table of
//! `rules/classify*.yaml` (plus users' rule files) applied to each event.
//!
//! Why rules look at more than the reason: the same reason means different
//! things by emitter, type and message (kubelet `BackOff` Warning is a crash
//! loop, `BackOff` Normal an image pull back-off; `Failed` covers image, config
//! and start failures; `NodeNotReady` is a node going down on the Node and a
//! victim on each Pod). Rules therefore match on any of reason, type,
//! reporting component, involved kind, namespace and a message regex.
//!
//! Hot path: [`Classifier::classify`] looks only at the rules indexed under the
//! event's reason (plus the few reason-less rules), checks cheap string
//! equalities before any regex, and returns borrowed names: no allocation.
//! [`ClassifyCache`] additionally skips matching for content seen before (a
//! replay or a repeating event). Unknown events get category `unknown`, a
//! severity from their type, and `unknown: true` so the caller can count them.

mod cache;
#[cfg(test)]
mod emitter_tests;
mod rules;
pub(crate) mod select;
pub(crate) mod spec;

pub use cache::{Classified, ClassifyCache};
pub use rules::{CategorySpec, UNKNOWN_CATEGORY};
pub use spec::RuleError;

use schemas::model::{NormalizedEvent, Severity};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rules::{merge, parse_builtin, parse_rule_file, CompiledRule};
use select::ReasonIndex;

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();
/// Gives each classifier an identity, so a [`ClassifyCache`] filled by one
/// classifier is never read with another (positions would mean other rules).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The decision for one event. Borrowed from the [`Classifier`]: copying it
/// into an output record is the caller's choice (and its only allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification<'a> {
    pub category: &'a str,
    pub severity: Severity,
    /// Name of the rule that matched; empty when no rule matched.
    pub rule: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// No rule matched: category is `unknown`, severity follows the event type.
    pub unknown: bool,
}

/// The compiled rule table and its reason index. Immutable once built; share it
/// (`Arc`) between workers.
#[derive(Debug)]
pub struct Classifier {
    id: u64,
    rules: Vec<CompiledRule>,
    categories: Vec<CategorySpec>,
    index: ReasonIndex,
}

impl Classifier {
    /// The built-in rules only.
    ///
    /// # Panics
    /// Never in a released build: the embedded file is validated by the
    /// `builtin_rule_file_parses…` test.
    pub fn builtin() -> Self {
        Self::build(Vec::new()).expect("built-in classification rules are valid")
    }

    /// Built-in rules plus users' rule files (earlier files have priority).
    pub fn with_user_files(paths: &[PathBuf]) -> Result<Self, RuleError> {
        let mut parsed = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| RuleError::Read {
                path: path.clone(),
                source,
            })?;
            parsed.push(parse_rule_file(&path.display().to_string(), &text)?);
        }
        Self::build(parsed)
    }

    /// Alias of [`Classifier::with_user_files`], the name the loader uses.
    pub fn from_files(paths: &[PathBuf]) -> Result<Self, RuleError> {
        Self::with_user_files(paths)
    }

    /// Built-in rules plus one user rule file given as text; `name` is used in
    /// error messages (tests, `kevents rules check`).
    pub fn from_yaml_str(name: &str, text: &str) -> Result<Self, RuleError> {
        Self::build(vec![parse_rule_file(name, text)?])
    }

    fn build(user: Vec<rules::ParsedFile>) -> Result<Self, RuleError> {
        let builtin = parse_builtin()?;
        let (rules, categories) = merge(user, builtin)?;
        let index = ReasonIndex::build(rules.iter().map(|r| &r.selector));
        Ok(Classifier {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rules,
            categories,
            index,
        })
    }

    /// Classifies one event: the first rule, in priority order, that matches.
    #[inline]
    pub fn classify(&self, ev: &NormalizedEvent) -> Classification<'_> {
        self.classification_at(self.match_position(ev), ev)
    }

    /// Position of the first matching rule, if any.
    pub(crate) fn match_position(&self, ev: &NormalizedEvent) -> Option<u32> {
        for pos in self.index.candidates(&ev.reason) {
            let rule = &self.rules[pos];
            if !rule.selector.matches(ev) {
                continue;
            }
            if let Some(re) = &rule.message {
                if !re.is_match(&ev.note) {
                    continue;
                }
            }
            return Some(pos as u32);
        }
        None
    }

    /// The classification a rule position (or no match) stands for.
    #[inline]
    pub(crate) fn classification_at(
        &self,
        pos: Option<u32>,
        ev: &NormalizedEvent,
    ) -> Classification<'_> {
        match pos {
            Some(p) => {
                let r = &self.rules[p as usize];
                Classification {
                    category: &r.category,
                    severity: r.severity,
                    rule: &r.name,
                    labels: &r.labels,
                    unknown: false,
                }
            }
            None => Classification {
                category: UNKNOWN_CATEGORY,
                severity: if ev.is_warning() {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                rule: "",
                labels: &EMPTY_LABELS,
                unknown: true,
            },
        }
    }

    /// Number of rules in the merged table.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The known categories (built-in, then user-declared), with descriptions.
    pub fn categories(&self) -> &[CategorySpec] {
        &self.categories
    }

    /// `(name, source file)` of every rule in priority order, for `kevents`
    /// to show which file a rule came from.
    pub fn rule_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules.iter().map(|r| (&*r.name, &*r.source))
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::emitter_tests::ev;

    #[test]
    fn unknown_events_get_unknown_category_and_severity_from_type() {
        let c = Classifier::builtin();
        let w = c.classify(&ev("SomethingNew", "Warning", "my-operator", "Foo", "x"));
        assert!(w.unknown);
        assert_eq!(
            (w.category, w.severity, w.rule),
            ("unknown", Severity::Warning, "")
        );
        let n = c.classify(&ev("SomethingNew", "Normal", "my-operator", "Foo", "x"));
        assert_eq!((n.category, n.severity), ("unknown", Severity::Info));
        assert!(n.labels.is_empty());
    }

    #[test]
    fn user_yaml_overrides_a_builtin_rule_and_adds_rules_before_builtins() {
        let c = Classifier::from_yaml_str(
            "team.yaml",
            concat!(
                "rules:\n",
                "- name: kubelet-crashloop-backoff\n  reason: BackOff\n  type: Warning\n",
                "  category: container-crash\n  severity: critical\n  labels: {team: core}\n",
                "- name: batch-failures-are-info\n  reason: Failed\n  namespace: batch\n",
                "  category: container-crash\n  severity: info\n",
            ),
        )
        .unwrap();
        assert_eq!(c.rule_count(), Classifier::builtin().rule_count() + 1);
        let crash = c.classify(&ev(
            "BackOff",
            "Warning",
            "kubelet",
            "Pod",
            "Back-off restarting failed container app in pod web-1_default(uid)",
        ));
        assert_eq!(crash.severity, Severity::Critical);
        assert_eq!(crash.labels.get("team").map(String::as_str), Some("core"));
        let mut failed = ev("Failed", "Warning", "kubelet", "Pod", "Error: ErrImagePull");
        failed.namespace = "batch".into();
        assert_eq!(c.classify(&failed).rule, "batch-failures-are-info");
        failed.namespace = "web".into();
        assert_eq!(c.classify(&failed).category, "image");
    }

    #[test]
    fn user_files_load_from_disk_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yaml");
        std::fs::write(
            &good,
            "rules:\n- name: x\n  reason: MyReason\n  category: job\n  severity: error\n",
        )
        .unwrap();
        let c = Classifier::with_user_files(std::slice::from_ref(&good)).unwrap();
        assert_eq!(
            c.classify(&ev("MyReason", "Normal", "", "", "")).severity,
            Severity::Error
        );
        assert_eq!(
            c.rule_names().next(),
            Some(("x", good.display().to_string().as_str()))
        );

        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "rules:\n- name: y\n  reason: A\n  category: job\n  severity: huge\n",
        )
        .unwrap();
        let e = Classifier::from_files(&[good.clone(), bad.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "{}: rule \"y\" (rules[0]): field `severity`",
                bad.display()
            )),
            "{e}"
        );

        // The same rule name in two user files is ambiguous, not an override.
        let e = Classifier::from_files(&[good.clone(), good.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field `name`: duplicate rule name, already defined in"),
            "{e}"
        );

        let missing = dir.path().join("missing.yaml");
        let e = Classifier::from_files(&[missing]).unwrap_err();
        assert!(matches!(e, RuleError::Read { .. }));
    }
}
