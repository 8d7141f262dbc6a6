//! Tests of alert rules: matching, overrides, errors naming file/rule/field, globs.

use super::*;
use schemas::model::{ClusterId, ObjectRef};
use schemas::records::RootCause;

fn user(text: &str) -> Result<AlertRules, RuleError> {
    AlertRules::from_texts(&[("u.yaml".into(), text.into())])
}

fn err(text: &str) -> String {
    user(text).unwrap_err().to_string()
}

pub(crate) fn incident(category: &str, sev: Severity, kind: &str, ns: &str) -> Incident {
    Incident {
        id: "inc-1".into(),
        version: 1,
        cluster: ClusterId { name: "prod-eu-1".into(), uid: "u1".into() },
        severity: sev,
        root_cause: RootCause {
            reason: "FailedMount".into(),
            category: category.into(),
            object: ObjectRef { kind: kind.into(), namespace: ns.into(), name: "cart-7d9".into(), ..Default::default() },
            ..Default::default()
        },
        event_count: 5,
        occurrences: 20,
        affected_objects: vec![ObjectRef::default(); 3],
        summary: "FailedMount on pod shop/cart-7d9".into(),
        ..Default::default()
    }
}

#[test]
fn builtin_rules_parse_and_cover_each_origin() {
    let r = AlertRules::builtin();
    assert!(r.rules().len() >= 4);
    for on in [AlertSource::Incident, AlertSource::Pattern, AlertSource::Anomaly] {
        assert!(r.rules().iter().any(|x| x.on == on), "no built-in rule on {on:?}");
    }
}

#[test]
fn matching_conditions() {
    let r = user(
        "rules:\n- name: x\n  on: incident\n  category: [volume, image]\n  min_severity: error\n  cluster: 'prod-*'\n  namespace: [shop, 'kube-?ystem']\n  kind: Pod\n  min_events: 5\n  min_objects: 3\n",
    )
    .unwrap();
    let rule = r.rules().iter().find(|x| &*x.name == "x").unwrap();
    let inc = incident("volume", Severity::Error, "Pod", "shop");
    assert!(rule.matches_incident(&inc));
    assert!(rule.matches_incident(&incident("image", Severity::Critical, "Pod", "kube-system")));
    assert!(!rule.matches_incident(&incident("volume", Severity::Warning, "Pod", "shop")));
    assert!(!rule.matches_incident(&incident("probe", Severity::Error, "Pod", "shop")));
    assert!(!rule.matches_incident(&incident("volume", Severity::Error, "Node", "shop")));
    assert!(!rule.matches_incident(&incident("volume", Severity::Error, "Pod", "kube-systemx")));
    let mut other = inc.clone();
    other.cluster.name = "staging-1".into();
    assert!(!rule.matches_incident(&other));
    let mut few = inc.clone();
    few.event_count = 4;
    assert!(!rule.matches_incident(&few));
    few.event_count = 5;
    few.affected_objects.pop();
    assert!(!rule.matches_incident(&few));
    assert!(!rule.matches_pattern(&Pattern::default()));
}

#[test]
fn pattern_and_anomaly_rules() {
    let r = user(
        "rules:\n- name: p\n  on: pattern\n  scope: fleet\n  min_clusters: 2\n  cluster: 'eu-*'\n- name: a\n  on: anomaly\n  min_score: 3\n  reason: BackOff\n",
    )
    .unwrap();
    let p = r.rules().iter().find(|x| &*x.name == "p").unwrap();
    let a = r.rules().iter().find(|x| &*x.name == "a").unwrap();
    let mut fleet = Pattern { scope: PatternScope::Fleet, clusters: vec!["us-1".into(), "eu-2".into()], reason: "BackOff".into(), ..Default::default() };
    assert!(p.matches_pattern(&fleet));
    fleet.clusters = vec!["us-1".into(), "us-2".into()];
    assert!(!p.matches_pattern(&fleet));
    let mut burst = Pattern { reason: "BackOff".into(), anomaly_score: 2.5, ..Default::default() };
    assert!(!a.matches_pattern(&burst));
    burst.anomaly_score = 3.0;
    assert!(a.matches_pattern(&burst));
    burst.reason = "Unhealthy".into();
    assert!(!a.matches_pattern(&burst));
    assert!(!a.matches_incident(&incident("volume", Severity::Error, "Pod", "shop")));
}

#[test]
fn user_rules_override_and_disable_builtin_ones() {
    let builtin = AlertRules::builtin();
    let first = builtin.rules()[0].name.to_string();
    let second = builtin.rules()[1].name.to_string();
    let text = format!("rules:\n- name: {first}\n  on: incident\n  min_severity: critical\n  labels: {{team: sre}}\n- name: {second}\n  enabled: false\n");
    let r = user(&text).unwrap();
    let over = r.rules().iter().find(|x| *x.name == *first).unwrap();
    assert_eq!(&*over.source, "u.yaml");
    assert_eq!(over.labels["team"], "sre");
    assert!(!r.rules().iter().any(|x| *x.name == *second));
    assert_eq!(r.rules().len(), builtin.rules().len() - 1);
}

#[test]
fn errors_name_file_rule_and_field() {
    assert_eq!(
        err("rules:\n- name: x\n  on: incident\n  min_sevrity: error\n").split(" (expected").next().unwrap(),
        "u.yaml: rule \"x\" (rules[0]): field `min_sevrity`: unknown field"
    );
    assert!(err("rules:\n- name: x\n  on: incidents\n").contains("rule \"x\" (rules[0]): field `on`: unknown origin"));
    assert!(err("rules:\n- name: x\n").contains("field `on`: missing required field"));
    assert!(err("rules:\n- on: incident\n").contains("rule rules[0]: field `name`: missing required field"));
    assert!(err("rules:\n- name: x\n  on: pattern\n  min_severity: error\n").contains("field `min_severity`: does not apply to `on: pattern`"));
    assert!(err("rules:\n- name: x\n  on: incident\n  min_score: 2\n").contains("field `min_score`: does not apply"));
    assert!(err("rules:\n- name: x\n  on: incident\n  min_events: many\n").contains("field `min_events`: expected a whole number"));
    assert!(err("rules:\n- name: x\n  on: incident\n  min_events: -1\n").contains("field `min_events`: must be 0 or more"));
    assert!(err("rules:\n- name: x\n  on: incident\n  severity: urgent\n").contains("field `severity`: unknown severity"));
    assert!(err("rules:\n- name: x\n  on: incident\n  category: []\n").contains("field `category`: an empty list"));
    assert!(err("rules:\n- name: x\n  on: incident\n  summary: '{{nope}}'\n").contains("field `summary`: unknown placeholder {{nope}}"));
    assert!(err("rules:\n- name: x\n  on: pattern\n  scope: galaxy\n").contains("field `scope`"));
    assert!(err("rules:\n- name: x\n  on: incident\n- name: x\n  on: pattern\n").contains("(rules[1]): field `name`: duplicate"));
    assert!(err("rules: [").starts_with("u.yaml: not valid YAML"));
    let e = AlertRules::with_user_files(&[PathBuf::from("/nonexistent/a.yaml")]).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/a.yaml"), "{e}");
}

#[test]
fn globs() {
    let g = |p: &str, s: &str| Glob(p.into()).matches(s);
    assert!(g("prod-*", "prod-eu-1"));
    assert!(g("*-eu-*", "prod-eu-1"));
    assert!(g("p?od", "prod"));
    assert!(g("*", ""));
    assert!(!g("prod", "prod-1"));
    assert!(!g("prod-*-2", "prod-eu-1"));
    assert!(g("a*b*c", "axxbyyc"));
}
