//! Reading what `kubectl` prints: `get events -A -o json|yaml` (a `List` or
//! `EventList` of core/v1 or events.k8s.io/v1 Events), and watch streams
//! (`get events -w -o json`, with or without `--output-watch-events`: one JSON
//! object after another, pretty-printed or one per line).
//!
//! Every error names the item (its position, and its name when it has one)
//! and the field; nothing here panics on bad input.

use schemas::convert::{from_json, ConvertError};
use schemas::model::NormalizedEvent;
use serde_json::Value;

/// How the events were given: a snapshot (each object once, with its total
/// count) or a watch stream (versions in the order they happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Snapshot,
    Stream,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("the input is empty")]
    Empty,
    #[error("not valid JSON or YAML: {0}")]
    Syntax(String),
    #[error("{0}")]
    Item(#[from] ConvertError),
    #[error("item {index}: {message}")]
    Shape { index: usize, message: String },
    #[error("top level: {0}")]
    TopLevel(String),
}

/// Parses the whole input into events, in input order.
pub fn parse(text: &str) -> Result<(Shape, Vec<NormalizedEvent>), InputError> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(InputError::Empty);
    }
    let values: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut out = Vec::new();
        for (i, v) in serde_json::Deserializer::from_str(text).into_iter::<Value>().enumerate() {
            out.push(v.map_err(|e| InputError::Syntax(format!("JSON value {i}: {e}")))?);
        }
        out
    } else {
        let mut out = Vec::new();
        for doc in serde_norway::Deserializer::from_str(text) {
            let v = <Value as serde::Deserialize>::deserialize(doc).map_err(|e| InputError::Syntax(format!("YAML: {e}")))?;
            if !v.is_null() {
                out.push(v);
            }
        }
        out
    };
    match values.as_slice() {
        [] => Err(InputError::Empty),
        [one] if is_list(one) => {
            let items = one.get("items").and_then(Value::as_array).ok_or_else(|| InputError::TopLevel("a List must have an `items` array".into()))?;
            let events = items.iter().enumerate().map(|(i, v)| event(i, v.clone())).collect::<Result<_, _>>()?;
            Ok((Shape::Snapshot, events))
        }
        [Value::Array(items)] => {
            let events = items.iter().enumerate().map(|(i, v)| event(i, v.clone())).collect::<Result<_, _>>()?;
            Ok((Shape::Snapshot, events))
        }
        many => {
            let mut events = Vec::with_capacity(many.len());
            for (i, v) in many.iter().enumerate() {
                // `--output-watch-events`: {"type": "ADDED", "object": {...}}.
                let obj = match (v.get("type").and_then(Value::as_str), v.get("object")) {
                    (Some("DELETED"), Some(_)) => continue,
                    (Some("ERROR"), Some(o)) => {
                        return Err(InputError::Shape { index: i, message: format!("the watch reported an error: {}", o.get("message").and_then(Value::as_str).unwrap_or("?")) })
                    }
                    (Some(_), Some(o)) if o.is_object() => o.clone(),
                    _ => v.clone(),
                };
                events.push(event(i, obj)?);
            }
            Ok((Shape::Stream, events))
        }
    }
}

fn is_list(v: &Value) -> bool {
    v.get("items").is_some() || v.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
}

fn event(index: usize, v: Value) -> Result<NormalizedEvent, InputError> {
    if !v.is_object() {
        return Err(InputError::Shape { index, message: format!("expected an Event object, found {}", kind_of(&v)) });
    }
    let ev = from_json(index, v)?;
    if ev.reason.is_empty() && ev.note.is_empty() {
        return Err(InputError::Shape { index, message: format!("event {:?} has neither `reason` nor a message", ev.name) });
    }
    Ok(ev)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE: &str = r#"{"apiVersion":"v1","kind":"Event","metadata":{"name":"web-1.17a","namespace":"shop","uid":"u1","resourceVersion":"10","creationTimestamp":"2026-11-20T10:00:00Z"},
        "involvedObject":{"kind":"Pod","namespace":"shop","name":"web-1"},"reason":"BackOff","message":"Back-off restarting failed container app in pod web-1_shop(x)",
        "type":"Warning","count":3,"firstTimestamp":"2026-11-20T10:00:00Z","lastTimestamp":"2026-11-20T10:05:00Z","source":{"component":"kubelet","host":"n1"}}"#;

    #[test]
    fn lists_streams_and_yaml() {
        let list = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{CORE}]}}"#);
        let (shape, evs) = parse(&list).unwrap();
        assert_eq!((shape, evs.len(), evs[0].count), (Shape::Snapshot, 1, 3));
        let stream = format!("{CORE}\n{CORE}\n");
        assert_eq!(parse(&stream).unwrap().0, Shape::Stream);
        let watch = format!(r#"{{"type":"ADDED","object":{CORE}}}{{"type":"MODIFIED","object":{CORE}}}"#);
        assert_eq!(parse(&watch).unwrap().1.len(), 2);
        let v: Value = serde_json::from_str(&list).unwrap();
        let yaml = serde_norway::to_string(&v).unwrap();
        let (shape, evs) = parse(&yaml).unwrap();
        assert_eq!((shape, evs[0].reason.as_str()), (Shape::Snapshot, "BackOff"));
    }

    #[test]
    fn errors_name_the_item_and_field() {
        assert!(matches!(parse("  \n"), Err(InputError::Empty)));
        let e = parse(r#"{"kind":"List","items":[1]}"#).unwrap_err().to_string();
        assert_eq!(e, "item 0: expected an Event object, found a number");
        let bad = CORE.replace(r#""count":3"#, r#""count":"three""#);
        let e = parse(&format!(r#"{{"kind":"List","items":[{bad}]}}"#)).unwrap_err().to_string();
        assert!(e.starts_with("item 0 (web-1.17a)") && e.contains("count") || e.contains("invalid type"), "{e}");
        let e = parse(r#"{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}"#).unwrap_err().to_string();
        assert!(e.contains("not an Event"), "{e}");
        let e = parse("{\"kind\": \"List\", \"items\": [").unwrap_err().to_string();
        assert!(e.starts_with("not valid JSON or YAML"), "{e}");
        let e = parse("items: [a, b\n").unwrap_err().to_string();
        assert!(e.starts_with("not valid JSON or YAML: YAML"), "{e}");
    }
}
