//! Fault injection for tests: a documented setting (`debug.panic_on_text`, off by
//! default) that makes one part of a member panic on a chosen record — or, with
//! `debug.action: hang`, block there for good, as a librdkafka call that ignores its
//! timeout does — so a test can prove that either fails the member loudly (non-zero
//! exit, the cause in the log, the group rebalances and the next owner takes over;
//! see [`crate::shutdown`]) instead of stalling a partition behind a green health
//! check.
//!
//! Never set in production: a member with it set panics as soon as a matching
//! record reaches the chosen site, on every restart.

use serde::{Deserialize, Serialize};

/// Where the injected panic is raised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultSite {
    /// The partition worker that processes the record (a tokio task).
    #[default]
    Worker,
    /// The consume loop's thread, as it hands the record over.
    ConsumeLoop,
    /// Each notifier's thread, as it reads an alert record (`alerts.notifiers`;
    /// the notifiers call it through the `notify::RecordHook` `crate::start`
    /// gives them).
    Notifier,
}

/// What the injected fault does at its site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Panic (the default).
    #[default]
    Panic,
    /// Block the site's thread forever: no panic, no error, no progress.
    Hang,
}

/// `debug:` in the processor's config. Off by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    /// Panic at `panic_in` on the first record whose encoded bytes contain this
    /// text (Avro writes strings verbatim, so an event's reason, message or object
    /// name matches). For fault tests only. Default: none (off).
    #[serde(default)]
    pub panic_on_text: Option<String>,
    /// Where the panic is raised: `worker` (default), `consume_loop` or `notifier`.
    #[serde(default)]
    pub panic_in: FaultSite,
    /// `panic` (default) or `hang`.
    #[serde(default)]
    pub action: FaultAction,
}

impl DebugConfig {
    /// Nothing is injected (the default).
    pub fn is_off(&self) -> bool {
        self.panic_on_text.is_none()
    }
}

/// The compiled setting, checked per record where it applies (one `None` test
/// per record when off).
#[derive(Debug, Clone, Default)]
pub struct Fault {
    armed: Option<(FaultSite, Vec<u8>)>,
    action: FaultAction,
}

impl Fault {
    pub fn from_config(c: &DebugConfig) -> Fault {
        let armed = c.panic_on_text.as_ref().filter(|t| !t.is_empty()).map(|t| (c.panic_in, t.as_bytes().to_vec()));
        if let Some((site, text)) = &armed {
            tracing::warn!(?site, text = %String::from_utf8_lossy(text), "fault injection armed (debug.panic_on_text): this member will panic on a matching record");
        }
        Fault { armed, action: c.action }
    }

    /// Armed for `site`: `crate::start` hooks the notifiers only then.
    pub fn armed_at(&self, site: FaultSite) -> bool {
        matches!(&self.armed, Some((at, _)) if *at == site)
    }

    /// Panics when armed for `site` and `payload` contains the text; `what` says
    /// where (partition, offset) in the panic message.
    pub fn check(&self, site: FaultSite, payload: &[u8], what: impl FnOnce() -> String) {
        let Some((at, text)) = &self.armed else { return };
        if *at == site && payload.windows(text.len()).any(|w| w == text.as_slice()) {
            if self.action == FaultAction::Hang {
                tracing::error!(?site, where_ = %what(), "fault injection (debug.action: hang): this thread blocks for good");
                loop {
                    std::thread::park();
                }
            }
            panic!("fault injection (debug.panic_on_text {:?}) in the {site:?}: {}", String::from_utf8_lossy(text), what());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_fires_only_at_its_site_on_a_match() {
        let off = Fault::from_config(&DebugConfig::default());
        off.check(FaultSite::Worker, b"anything", String::new);
        let cfg: DebugConfig = serde_norway::from_str("{panic_on_text: poison, panic_in: consume_loop}").unwrap();
        let f = Fault::from_config(&cfg);
        assert!(f.armed_at(FaultSite::ConsumeLoop) && !f.armed_at(FaultSite::Notifier) && !off.armed_at(FaultSite::Worker));
        f.check(FaultSite::Worker, b"a poison record", String::new);
        f.check(FaultSite::ConsumeLoop, b"a clean record", String::new);
        let r = std::panic::catch_unwind(|| f.check(FaultSite::ConsumeLoop, b"a poison record", || "partition 3 offset 7".into()));
        let msg = crate::shutdown::panic_message(r.unwrap_err().as_ref());
        assert!(msg.contains("fault injection") && msg.contains("partition 3 offset 7"), "{msg}");
    }
}
