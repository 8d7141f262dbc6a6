//! Alertmanager API v2: `POST {url}/api/v2/alerts` with an array of
//! `postableAlert` objects (Alertmanager's OpenAPI: `labels` required,
//! `annotations`, `startsAt`, `endsAt`, `generatorURL`). All due alerts go in one
//! request; Alertmanager does its own grouping, routing, silencing and dedup
//! (alerts with identical label sets are one alert), so `kevents_id` is a label.
//!
//! Firing alerts carry `endsAt = now + 2 × repeat_interval`: Alertmanager
//! resolves an alert whose `endsAt` passed (or, without one, after its
//! `resolve_timeout`, 5 min by default), and kevents re-posts firing alerts only
//! every `repeat_interval`, so the alert must stay valid in between. With
//! `repeat_interval_secs: 0` no `endsAt` is sent and Alertmanager's
//! `resolve_timeout` applies. A resolve carries the real `endsAt`.

use serde_json::{json, Map, Value};

use crate::{origin_str, rfc3339, Group, Target};

/// Alertmanager's (Prometheus') label name syntax: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn label_name(k: &str) -> String {
    let mut s: String = k.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// The body for all alerts of these groups; `now_us` is the wall clock.
pub fn body(target: &Target, groups: &[&Group], now_us: i64) -> Value {
    let mut out = Vec::new();
    for it in groups.iter().flat_map(|g| g.items.iter()) {
        let a = &it.alert;
        let mut labels = Map::new();
        for (k, v) in &a.labels {
            if !v.is_empty() {
                labels.insert(label_name(k), json!(v));
            }
        }
        labels.insert("alertname".into(), json!(a.rule));
        labels.insert("severity".into(), json!(a.severity));
        labels.insert("kevents_id".into(), json!(a.id));
        labels.insert("kevents_origin".into(), json!(origin_str(a.origin)));
        let description = format!("kevents {} alert on {} {} (alert {} version {})", a.rule, origin_str(a.origin), a.origin_id, a.id, a.version);
        let mut alert = Map::new();
        alert.insert("labels".into(), Value::Object(labels));
        // `kevents_version` lets a receiver tell a re-sent version from a new one.
        alert.insert("annotations".into(), json!({"summary": a.summary, "description": description, "kevents_version": a.version.to_string()}));
        alert.insert("startsAt".into(), json!(rfc3339(a.starts_us)));
        if !a.firing {
            alert.insert("endsAt".into(), json!(rfc3339(a.ends_us.max(a.starts_us))));
        } else if let Some(keep) = target.keep_firing {
            alert.insert("endsAt".into(), json!(rfc3339(now_us.saturating_add(keep.as_micros() as i64))));
        }
        if let Some(link) = target.link(a) {
            alert.insert("generatorURL".into(), json!(link));
        }
        out.push(Value::Object(alert));
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use crate::target::tests::{alert, group, target};
    use super::*;
    use crate::config::NotifierKind;

    #[test]
    fn postable_alerts_per_the_openapi() {
        let mut t = target(NotifierKind::Alertmanager, Some("https://g.example/d?var-id={{id}}"));
        t.keep_firing = Some(std::time::Duration::from_secs(3600));
        assert_eq!(t.endpoint(), "http://127.0.0.1:9/base/api/v2/alerts");
        let mut a = alert("a1", true);
        a.labels.insert("kevents.io/team".into(), "storage".into());
        a.labels.insert("empty".into(), String::new());
        let g1 = group(vec![a]);
        let g2 = group(vec![alert("a2", false)]);
        let now = 1_767_323_045_000_000; // 2026-01-02T03:04:05Z
        let b = body(&t, &[&g1, &g2], now);
        let arr = b.as_array().unwrap();
        assert_eq!(arr.len(), 2, "all groups in one POST");
        let f = &arr[0];
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["annotations", "endsAt", "generatorURL", "labels", "startsAt"]);
        assert_eq!(f["labels"]["alertname"], "incident-error");
        assert_eq!(f["labels"]["severity"], "error");
        assert_eq!(f["labels"]["kevents_id"], "a1");
        assert_eq!(f["labels"]["cluster"], "prod eu");
        assert_eq!(f["labels"]["namespace"], "shop");
        assert_eq!(f["labels"]["kevents_io_team"], "storage");
        assert!(f["labels"].get("empty").is_none(), "empty label values are absent labels in Alertmanager");
        for (k, v) in f["labels"].as_object().unwrap() {
            assert!(k.chars().next().unwrap().is_ascii_alphabetic() || k.starts_with('_'), "{k}");
            assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{k}");
            assert!(v.is_string());
        }
        assert_eq!(f["annotations"]["summary"], "summary of a1");
        assert!(f["annotations"]["description"].as_str().unwrap().contains("incident inc-a1"));
        assert_eq!(f["annotations"]["kevents_version"], "3");
        assert_eq!(f["startsAt"], "2026-01-02T03:04:05.000Z");
        assert_eq!(f["endsAt"], "2026-01-02T04:04:05.000Z", "now + keep_firing");
        assert_eq!(f["generatorURL"], "https://g.example/d?var-id=a1");
        assert_eq!(arr[1]["endsAt"], "2026-01-02T03:14:05.000Z", "a resolve carries its end");
        t.keep_firing = None;
        t.link = None;
        let b = body(&t, &[&g1], now);
        assert!(b[0].get("endsAt").is_none() && b[0].get("generatorURL").is_none(), "{b}");
        assert_eq!(label_name("9lives"), "_9lives");
    }
}
