//! [`Metadata`]: a small immutable map from key to value. It holds the facts
//! the processor extracts from an event (container, image, exit code, node,
//! ...), and an event's own labels and annotations (almost always empty, and
//! then free: no allocation to make or drop).
//!
//! Why not a `BTreeMap<String, String>`: the processor builds one of these for
//! every new event object (most records of a busy cluster's rollouts), and a
//! map of six pairs is thirteen allocations and a node walk to build and as
//! many to drop. Here the pairs live back to back in one text buffer with an
//! index of where each ends, shared by reference count: three allocations to
//! build, one reference count per output that repeats it. Pairs are sorted by
//! key and keys are unique, so equality, hashing, iteration and the Avro
//! encoding (written in key order) are those of the map it stands for.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Keys and values, sorted by key, each key once. Cheap to clone.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata(Option<Arc<Pairs>>);

#[derive(PartialEq, Eq, Hash)]
struct Pairs {
    /// key₀ value₀ key₁ value₁ … concatenated.
    text: Box<str>,
    /// For each pair: where its key ends and where its value ends in `text`.
    ends: Box<[(u32, u32)]>,
}

impl Metadata {
    /// The empty map (no allocation).
    pub fn new() -> Self {
        Metadata(None)
    }

    /// From pairs already sorted by key with unique keys (what the processor's
    /// extraction produces). Out-of-order or repeated keys are a bug in the
    /// caller: checked in debug builds.
    pub fn from_sorted<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let (mut len, mut n) = (0usize, 0usize);
        for (k, v) in pairs.clone() {
            len += k.len() + v.len();
            n += 1;
        }
        if n == 0 {
            return Metadata(None);
        }
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(n);
        let mut prev: Option<&str> = None;
        for (k, v) in pairs {
            debug_assert!(prev.is_none_or(|p| p < k), "metadata keys out of order or repeated: {prev:?} then {k:?}");
            prev = Some(k);
            text.push_str(k);
            let key_end = text.len() as u32;
            text.push_str(v);
            ends.push((key_end, text.len() as u32));
        }
        Metadata(Some(Arc::new(Pairs { text: text.into_boxed_str(), ends: ends.into_boxed_slice() })))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.ends.len())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        let (text, ends): (&str, &[(u32, u32)]) = match &self.0 {
            Some(p) => (&p.text, &p.ends),
            None => ("", &[]),
        };
        let mut start = 0usize;
        ends.iter().map(move |&(k, v)| {
            let (k, v) = (k as usize, v as usize);
            let pair = (&text[start..k], &text[k..v]);
            start = v;
            pair
        })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A copy as an ordinary map (for callers that take keys out of it).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Metadata {
    /// Any pairs: sorted, and the last value of a repeated key kept (as a map
    /// would). Pairs already in key order with unique keys (what kevents
    /// writes, so what the sink decodes) go straight into the buffer.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let pairs: Vec<(K, V)> = iter.into_iter().collect();
        if pairs.windows(2).all(|w| w[0].0.as_ref() < w[1].0.as_ref()) {
            return Metadata::from_sorted(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        }
        let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect();
        m.into()
    }
}

impl From<BTreeMap<String, String>> for Metadata {
    fn from(m: BTreeMap<String, String>) -> Self {
        Metadata::from_sorted(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl std::ops::Index<&str> for Metadata {
    type Output = str;

    /// # Panics
    /// When `key` is absent, as a map's index does.
    fn index(&self, key: &str) -> &str {
        self.get(key).unwrap_or_else(|| panic!("no metadata key {key:?}"))
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(d).map(Metadata::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_the_map_it_stands_for() {
        let map = BTreeMap::from([("node".to_string(), "n1".to_string()), ("container".into(), "app".into()), ("exit_code".into(), "".into())]);
        let m = Metadata::from(map.clone());
        assert_eq!(m.len(), 3);
        assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["container", "exit_code", "node"]);
        assert_eq!((m.get("node"), m.get("exit_code"), m.get("image")), (Some("n1"), Some(""), None));
        assert_eq!(&m["container"], "app");
        assert_eq!(m.to_map(), map);
        assert_eq!(m, map.iter().collect::<Metadata>());
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"container":"app","exit_code":"","node":"n1"}"#);
        assert_eq!(serde_json::from_str::<Metadata>(r#"{"node":"n1","container":"app","exit_code":""}"#).unwrap(), m);
        assert_eq!(format!("{m:?}"), format!("{map:?}"));
        assert!(Metadata::new().is_empty() && Metadata::from(BTreeMap::new()) == Metadata::new());
        assert_eq!(Metadata::from_sorted([("a", "1"), ("b", "2")]), [("b", "2"), ("a", "1")].into_iter().collect());
        assert_eq!([("a", "1"), ("a", "2")].into_iter().collect::<Metadata>().to_map(), BTreeMap::from([("a".into(), "2".into())]), "the last value of a repeated key, as a map");
    }
}
