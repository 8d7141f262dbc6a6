//! Writes the one self-contained HTML file: the page skeleton
//! (assets/report.html) with the styles, the renderer and the data inlined,
//! so the file opens anywhere with no network (attached to a ticket, on a
//! laptop). Nothing is fetched: no CDN, no fonts, no images.
//!
//! The data goes in a `<script type="application/json">` block; every `<` in
//! it is written `\u003c` (still the same JSON string), so no message text can
//! end the block or open a comment.

use super::model::Doc;

const TEMPLATE: &str = include_str!("assets/report.html");
const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// Text for an HTML text node or attribute.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page for `doc`.
pub fn render(doc: &Doc) -> Result<String, serde_json::Error> {
    let data = serde_json::to_string(doc)?.replace('<', "\\u003c");
    let title = escape(&doc.title);
    let mut out = String::with_capacity(TEMPLATE.len() + CSS.len() + JS.len() + data.len());
    let mut rest = TEMPLATE;
    // One pass over the template: what is inserted is never scanned for markers.
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}").map(|e| start + e + 2).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        match &rest[start..end] {
            "{{title}}" => out.push_str(&title),
            "{{css}}" => out.push_str(CSS),
            "{{js}}" => out.push_str(JS),
            "{{data}}" => out.push_str(&data),
            other => out.push_str(other),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::model::{build, Event, Input};
    use super::*;

    #[test]
    fn self_contained_and_script_safe() {
        let input = Input {
            title: "a <b> & c".into(),
            events: vec![Event { uid: "u".into(), message: "</script><!-- x".into(), ..Default::default() }],
            ..Default::default()
        };
        let page = render(&build(input)).unwrap();
        assert!(page.contains("<title>a &lt;b&gt; &amp; c</title>"));
        assert!(!page.contains("{{"), "every marker is filled");
        // The message cannot close the data block: the only </script> are the page's own two.
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(page.contains("\\u003c/script>\\u003c!-- x"));
        // No network: nothing is loaded from anywhere.
        for needle in ["http://", "https://", "src=", "@import", "url("] {
            assert!(!page.contains(needle), "the page references {needle}");
        }
    }
}
