//! Which events a rule applies to: the compiled selector shared by classification
//! rules and metadata extractors, and the reason index that keeps matching cheap.
//!
//! Both rule tables are ordered (first match wins), and most rules name the
//! event `reason` they are about. [`ReasonIndex`] maps each exact reason to the
//! positions of the rules that name it, and keeps the remaining rules (those
//! with a reason prefix or no reason at all) in a short "general" list. Matching
//! an event walks the two sorted position lists in merged order, so priority is
//! kept without looking at rules that cannot apply and without allocating.

use rustc_hash::FxHashMap;
use schemas::model::NormalizedEvent;

/// `Normal` or `Warning`: the only two event types Kubernetes accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "Normal" => Some(EventType::Normal),
            "Warning" => Some(EventType::Warning),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The structural part of a rule's match: everything except the message regex
/// (rules and extractors use their regex differently: a test versus captures).
///
/// Every present condition must hold; within a list any element may match.
/// `reasons` is not checked by [`Selector::matches`] because the index already
/// guarantees it for the rules it returns from a reason bucket.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    pub reasons: Option<Box<[Box<str>]>>,
    pub reason_prefixes: Option<Box<[Box<str>]>>,
    /// Reason shapes (`Failed*`, `*Exceeded`, `Frequent*Restart`): any may
    /// match. Classification rules only (their fallbacks).
    pub reason_globs: Option<Box<[Glob]>>,
    pub event_type: Option<EventType>,
    pub components: Option<Box<[Box<str>]>>,
    /// Reporting-component shapes (`*-monitor`: node-problem-detector's
    /// monitors are named so). Classification rules only.
    pub component_globs: Option<Box<[Glob]>>,
    pub kinds: Option<Box<[Box<str>]>>,
    pub namespaces: Option<Box<[Box<str>]>>,
}

/// A shape with one `*`: `Failed*`, `*Error`, `Frequent*Restart`. Matching is
/// a prefix and a suffix test (no regex, no allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    prefix: Box<str>,
    suffix: Box<str>,
}

impl Glob {
    /// `None` unless the pattern has exactly one `*` (without one it is an
    /// exact name: use `reason`/`component`).
    pub(crate) fn parse(pattern: &str) -> Option<Self> {
        let (prefix, suffix) = pattern.split_once('*')?;
        if suffix.contains('*') {
            return None;
        }
        Some(Glob {
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    }

    #[inline]
    pub(crate) fn matches(&self, s: &str) -> bool {
        s.len() >= self.prefix.len() + self.suffix.len()
            && s.starts_with(&*self.prefix)
            && s.ends_with(&*self.suffix)
    }
}

fn any_glob(list: &Option<Box<[Glob]>>, value: &str) -> bool {
    match list {
        None => true,
        Some(globs) => globs.iter().any(|g| g.matches(value)),
    }
}

fn any_eq(list: &Option<Box<[Box<str>]>>, value: &str) -> bool {
    match list {
        None => true,
        Some(items) => items.iter().any(|i| &**i == value),
    }
}

impl Selector {
    /// Whether the event satisfies every condition other than an exact reason.
    /// Cheapest checks first: a type mismatch rejects most candidates at once.
    #[inline]
    pub(crate) fn matches(&self, ev: &NormalizedEvent) -> bool {
        if let Some(t) = self.event_type {
            if ev.event_type != t.as_str() {
                return false;
            }
        }
        if let Some(prefixes) = &self.reason_prefixes {
            if !prefixes.iter().any(|p| ev.reason.starts_with(&**p)) {
                return false;
            }
        }
        any_glob(&self.reason_globs, &ev.reason)
            && any_glob(&self.component_globs, &ev.reporting_controller)
            && any_eq(&self.components, &ev.reporting_controller)
            && any_eq(&self.kinds, &ev.regarding.kind)
            && any_eq(&self.namespaces, &ev.namespace)
    }

    /// Whether the selector has any condition at all (a rule without one would
    /// match every event, which is never what its author meant).
    pub(crate) fn is_empty(&self) -> bool {
        self.reasons.is_none()
            && self.reason_prefixes.is_none()
            && self.reason_globs.is_none()
            && self.event_type.is_none()
            && self.components.is_none()
            && self.component_globs.is_none()
            && self.kinds.is_none()
            && self.namespaces.is_none()
    }
}

/// Positions of rules by exact reason, plus the positions of rules that must be
/// checked for every reason. Both lists are ascending (priority order).
#[derive(Debug, Default)]
pub(crate) struct ReasonIndex {
    by_reason: FxHashMap<Box<str>, Box<[u32]>>,
    general: Box<[u32]>,
}

impl ReasonIndex {
    /// Builds the index from the selectors of an ordered rule table.
    pub(crate) fn build<'a>(selectors: impl Iterator<Item = &'a Selector>) -> Self {
        let mut by_reason: FxHashMap<Box<str>, Vec<u32>> = FxHashMap::default();
        let mut general = Vec::new();
        for (i, sel) in selectors.enumerate() {
            let pos = u32::try_from(i).expect("fewer than 2^32 rules");
            match &sel.reasons {
                Some(reasons) => {
                    for r in reasons.iter() {
                        let bucket = by_reason.entry(r.clone()).or_default();
                        // A rule may list the same reason twice; keep one entry.
                        if bucket.last() != Some(&pos) {
                            bucket.push(pos);
                        }
                    }
                }
                None => general.push(pos),
            }
        }
        ReasonIndex {
            by_reason: by_reason
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
            general: general.into_boxed_slice(),
        }
    }

    /// The candidate rule positions for a reason, in priority order.
    #[inline]
    pub(crate) fn candidates(&self, reason: &str) -> Candidates<'_> {
        let bucket: &[u32] = self.by_reason.get(reason).map_or(&[], |b| &**b);
        Candidates {
            a: bucket,
            b: &self.general,
        }
    }
}

/// Merges two ascending position lists without allocating.
pub(crate) struct Candidates<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        let take_a = match (self.a.first(), self.b.first()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(x), Some(y)) => x < y,
        };
        let side = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = side.split_first()?;
        *side = rest;
        Some(*first as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(reasons: Option<&[&str]>) -> Selector {
        Selector {
            reasons: reasons.map(|r| r.iter().map(|s| Box::from(*s)).collect()),
            ..Selector::default()
        }
    }

    #[test]
    fn candidates_merge_reason_bucket_and_general_rules_in_priority_order() {
        let table = [
            sel(Some(&["BackOff"])),
            sel(None),
            sel(Some(&["Failed", "BackOff"])),
            sel(Some(&["Failed"])),
            sel(None),
        ];
        let index = ReasonIndex::build(table.iter());
        assert_eq!(
            index.candidates("BackOff").collect::<Vec<_>>(),
            [0, 1, 2, 4]
        );
        assert_eq!(index.candidates("Failed").collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(index.candidates("Other").collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    fn selector_checks_type_component_kind_namespace_and_prefix() {
        let s = Selector {
            reason_prefixes: Some(vec![Box::from("OutOf")].into_boxed_slice()),
            event_type: Some(EventType::Warning),
            components: Some(vec![Box::from("kubelet")].into_boxed_slice()),
            kinds: Some(vec![Box::from("Pod")].into_boxed_slice()),
            ..Selector::default()
        };
        let mut ev = NormalizedEvent {
            reason: "OutOfcpu".into(),
            event_type: "Warning".into(),
            reporting_controller: "kubelet".into(),
            ..Default::default()
        };
        ev.regarding.kind = "Pod".into();
        assert!(s.matches(&ev));
        ev.event_type = "Normal".into();
        assert!(!s.matches(&ev));
        ev.event_type = "Warning".into();
        ev.reason = "NodeAffinity".into();
        assert!(!s.matches(&ev));
        ev.reason = "OutOfpods".into();
        ev.reporting_controller = "default-scheduler".into();
        assert!(!s.matches(&ev));
        assert!(Selector::default().is_empty());
        assert!(!s.is_empty());
    }

    #[test]
    fn selector_checks_reason_and_component_globs() {
        let globs = |v: &[&str]| {
            Some(
                v.iter()
                    .map(|s| Glob::parse(s).unwrap())
                    .collect::<Box<[_]>>(),
            )
        };
        assert_eq!(Glob::parse("Failed"), None, "no star: an exact name");
        assert_eq!(Glob::parse("*Failed*"), None, "two stars");
        let npd = Selector {
            reason_globs: globs(&["Frequent*Restart", "Corrupt*"]),
            component_globs: globs(&["*-monitor"]),
            ..Selector::default()
        };
        assert!(!npd.is_empty());
        let mut ev = NormalizedEvent {
            reason: "FrequentKubeletRestart".into(),
            reporting_controller: "systemd-monitor".into(),
            ..Default::default()
        };
        assert!(npd.matches(&ev));
        ev.reason = "CorruptDockerOverlay2".into();
        assert!(npd.matches(&ev));
        ev.reason = "FrequentUnregisterNetDevice".into();
        assert!(!npd.matches(&ev), "prefix and suffix must both hold");
        ev.reason = "FrequentRestart".into();
        assert!(npd.matches(&ev), "the star may match nothing");
        ev.reason = "FrequentRestar".into();
        assert!(!npd.matches(&ev));
        ev.reason = "FrequentContainerdRestart".into();
        ev.reporting_controller = "kubelet".into();
        assert!(!npd.matches(&ev), "component shape");
        let errors = Selector {
            reason_globs: globs(&["*Failed", "*Error"]),
            ..Selector::default()
        };
        ev.reason = "VolumeResizeFailed".into();
        assert!(errors.matches(&ev));
        ev.reason = "ResizeError".into();
        assert!(errors.matches(&ev));
        ev.reason = "FailedMount".into();
        assert!(!errors.matches(&ev));
    }
}
