//! The generic webhook: one JSON object per group, carrying every field of each
//! alert plus its stable `id`, `version` and `status` — enough for a receiver to
//! deduplicate on (id, version) by itself.
//!
//! ```json
//! {"receiver": "ops", "status": "firing", "group": {"rule": "incident-error", "cluster": "prod"},
//!  "alerts": [{"id": "…", "version": 3, "status": "firing", "repeat": false, "rule": "incident-error",
//!              "origin": "incident", "origin_id": "…", "severity": "error", "cluster": "prod",
//!              "cluster_uid": "…", "namespace": "shop", "summary": "…", "labels": {…},
//!              "starts_at": "2026-…Z", "ends_at": null, "starts_us": …, "ends_us": 0, "link": "…"}]}
//! ```

use serde_json::{json, Value};

use crate::{rfc3339, status, Group, Target};

/// The body for one group.
pub fn body(target: &Target, group: &Group) -> Value {
    let alerts: Vec<Value> = group
        .items
        .iter()
        .map(|it| {
            let a = &it.alert;
            json!({
                "id": a.id,
                "version": a.version,
                "status": status(a),
                "repeat": it.repeat,
                "rule": a.rule,
                "origin": a.origin,
                "origin_id": a.origin_id,
                "severity": a.severity,
                "cluster": a.cluster.name,
                "cluster_uid": a.cluster.uid,
                "namespace": a.namespace,
                "summary": a.summary,
                "labels": a.labels,
                "starts_at": rfc3339(a.starts_us),
                "ends_at": if a.firing { None } else { Some(rfc3339(a.ends_us)) },
                "starts_us": a.starts_us,
                "ends_us": a.ends_us,
                "link": target.link(a),
            })
        })
        .collect();
    let firing = group.items.iter().any(|it| it.alert.firing);
    json!({
        "receiver": target.name,
        "status": if firing { "firing" } else { "resolved" },
        "group": group.labels,
        "alerts": alerts,
    })
}

#[cfg(test)]
mod tests {
    use crate::target::tests::{alert, group, target};
    use super::*;
    use crate::config::NotifierKind;

    #[test]
    fn carries_every_field_the_stable_id_and_status() {
        let t = target(NotifierKind::Webhook, Some("https://g.example/d?var-id={{id}}&c={{cluster}}"));
        let mut resolved = alert("a2", false);
        resolved.version = 4;
        let g = group(vec![alert("a1", true), resolved]);
        let b = body(&t, &g);
        assert_eq!(b["receiver"], "hook");
        assert_eq!(b["status"], "firing");
        assert_eq!(b["group"], json!({"rule": "incident-error", "cluster": "prod eu"}));
        let a = &b["alerts"][0];
        assert_eq!(a["id"], "a1");
        assert_eq!(a["version"], 3);
        assert_eq!(a["status"], "firing");
        assert_eq!(a["severity"], "error");
        assert_eq!(a["origin"], "incident");
        assert_eq!(a["cluster"], "prod eu");
        assert_eq!(a["labels"]["team"], "storage");
        assert_eq!(a["starts_at"], "2026-01-02T03:04:05.000Z");
        assert_eq!(a["ends_at"], Value::Null);
        assert_eq!(a["link"], "https://g.example/d?var-id=a1&c=prod%20eu");
        let r = &b["alerts"][1];
        assert_eq!((r["status"].as_str(), r["version"].as_i64()), (Some("resolved"), Some(4)));
        assert_eq!(r["ends_at"], "2026-01-02T03:14:05.000Z");
        let only_resolved = group(vec![alert("a3", false)]);
        assert_eq!(body(&t, &only_resolved)["status"], "resolved");
    }
}
