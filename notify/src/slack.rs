//! Slack incoming webhook: `{"text": …}` in Slack's mrkdwn, one message per
//! group, written for a person on call: state and severity first, the summary,
//! where (cluster / namespace), and the link.
//!
//! ```text
//! :rotating_light: *FIRING* · *error* · incident-error · `prod` / `shop`
//! FailedMount on pod shop/cart-7d9 (volume data) caused 14 back-offs over 6 min <https://…|details>
//! ```
//!
//! A group of several alerts gets a header line and one line per alert (at most
//! [`MAX_LINES`], then "…and N more"), so a storm stays one readable message.

use serde_json::{json, Value};

use crate::{Group, Target};

/// Alerts listed in one message; the rest are counted.
pub const MAX_LINES: usize = 20;

/// Slack's three control characters in text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn icon(firing: bool, severity: &str) -> &'static str {
    match (firing, severity) {
        (false, _) => ":white_check_mark:",
        (true, "critical") => ":rotating_light:",
        (true, "error") => ":red_circle:",
        (true, "warning") => ":warning:",
        (true, _) => ":information_source:",
    }
}

fn place(cluster: &str, namespace: &str) -> String {
    match (cluster.is_empty(), namespace.is_empty()) {
        (false, false) => format!("`{}` / `{}`", escape(cluster), escape(namespace)),
        (false, true) => format!("`{}`", escape(cluster)),
        (true, false) => format!("fleet / `{}`", escape(namespace)),
        (true, true) => "fleet".into(),
    }
}

/// The text for one group.
pub fn text(target: &Target, group: &Group) -> String {
    let mut lines = Vec::new();
    let many = group.items.len() > 1;
    if many {
        let firing = group.items.iter().filter(|i| i.alert.firing).count();
        let labels: Vec<String> = group.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}=`{}`", escape(v))).collect();
        lines.push(format!("*{} alerts* ({} firing, {} resolved) · {}", group.items.len(), firing, group.items.len() - firing, labels.join(" · ")));
    }
    for it in group.items.iter().take(MAX_LINES) {
        let a = &it.alert;
        let sev = a.severity.as_str();
        let state = match (a.firing, it.repeat) {
            (true, true) => "STILL FIRING",
            (true, false) => "FIRING",
            (false, _) => "RESOLVED",
        };
        let link = target.link(a).map(|l| format!(" <{}|details>", escape(&l))).unwrap_or_default();
        let head = format!("{} *{state}* · *{sev}* · {} · {}", icon(a.firing, sev), escape(&a.rule), place(&a.cluster.name, &a.namespace));
        let summary = format!("{}{link}", escape(&a.summary));
        if many {
            lines.push(format!("• {head}\n    {summary}"));
        } else {
            lines.push(head);
            lines.push(summary);
        }
    }
    if group.items.len() > MAX_LINES {
        lines.push(format!("…and {} more", group.items.len() - MAX_LINES));
    }
    lines.join("\n")
}

pub fn body(target: &Target, group: &Group) -> Value {
    json!({ "text": text(target, group) })
}

#[cfg(test)]
mod tests {
    use crate::target::tests::{alert, group, target};
    use super::*;
    use crate::config::NotifierKind;

    #[test]
    fn one_alert_reads_like_a_page() {
        let t = target(NotifierKind::Slack, Some("https://grafana.example/d/incidents?var-id={{origin_id}}"));
        let mut a = alert("a1", true);
        a.summary = "FailedMount on pod shop/cart-7d9 <volume data> & more".into();
        let b = body(&t, &group(vec![a]));
        assert_eq!(
            b["text"],
            ":red_circle: *FIRING* · *error* · incident-error · `prod eu` / `shop`\n\
             FailedMount on pod shop/cart-7d9 &lt;volume data&gt; &amp; more <https://grafana.example/d/incidents?var-id=inc-a1|details>"
        );
        assert_eq!(b.as_object().unwrap().len(), 1, "only `text`: {b}");
    }

    #[test]
    fn a_group_is_one_message_with_a_header_and_a_cap() {
        let t = target(NotifierKind::Slack, None);
        let mut items: Vec<_> = (0..25).map(|i| alert(&format!("a{i}"), i % 5 != 0)).collect();
        items[0].namespace.clear();
        let txt = text(&t, &group(items));
        let lines: Vec<&str> = txt.lines().collect();
        assert_eq!(lines[0], "*25 alerts* (20 firing, 5 resolved) · cluster=`prod eu` · rule=`incident-error`");
        assert!(lines[1].starts_with("• :white_check_mark: *RESOLVED* · *error* · incident-error · `prod eu`"), "{}", lines[1]);
        assert!(lines[3].starts_with("• :red_circle: *FIRING*"), "{}", lines[3]);
        assert_eq!(*lines.last().unwrap(), "…and 5 more");
        assert_eq!(lines.len(), 1 + 2 * MAX_LINES + 1);
    }
}
