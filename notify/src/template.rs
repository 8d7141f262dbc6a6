//! `{{name}}` templates: notifier links (`link_template`) here, and the alert
//! rules' summaries in the processor, which uses this module rather than a copy
//! (the processor depends on this crate, never the reverse). Compiled once at
//! start-up against the names the caller allows, so a typo in a placeholder stops
//! start-up with the field named instead of rendering an empty string at 3 a.m.

/// A parsed template: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(&'static str),
}

impl Template {
    /// Parse `text`; every `{{name}}` must be one of `allowed`. The error is a
    /// sentence for a `FieldError`/`RuleError` message.
    pub fn parse(text: &str, allowed: &[&'static str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(format!("unclosed `{{{{` at byte {}", text.len() - rest.len() + start));
            };
            let name = after[..end].trim();
            let Some(known) = allowed.iter().find(|a| **a == name) else {
                return Err(format!("unknown placeholder {{{{{name}}}}} (known: {})", allowed.join(", ")));
            };
            parts.push(Part::Var(known));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Render with `value(name)` for each placeholder, passed through `escape`.
    pub fn render_with(&self, value: impl Fn(&str) -> String, escape: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&escape(&value(v))),
            }
        }
        out
    }

    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        self.render_with(value, str::to_string)
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters: placeholder
/// values inside a link must not break its query string.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_rejects_unknown_or_unclosed_placeholders() {
        let t = Template::parse("see {{ id }} in {{cluster}}!", &["id", "cluster"]).unwrap();
        assert_eq!(t.render(|n| format!("<{n}>")), "see <id> in <cluster>!");
        assert_eq!(t.render_with(|_| "a b&c".into(), url_encode), "see a%20b%26c in a%20b%26c!");
        let e = Template::parse("x {{idd}}", &["id"]).unwrap_err();
        assert!(e.contains("unknown placeholder {{idd}} (known: id)"), "{e}");
        assert!(Template::parse("x {{id", &["id"]).unwrap_err().contains("unclosed"));
        assert_eq!(Template::parse("plain", &[]).unwrap().render(|_| unreachable!()), "plain");
    }
}
