//! One scope's watch task: runs the [`Machine`] step after step and does what the
//! step leaves out — drop rules, metrics, logs, and sending into the bounded channel
//! the publisher reads ([`crate::pipeline`]). A full channel makes the task wait,
//! which is how Kafka backpressure pauses the watch; a closed channel (shutdown,
//! leadership lost) ends it.

use schemas::model::NormalizedEvent;
use schemas::records::WatchKind;
use tokio::sync::mpsc;

use super::{Machine, Note, Output, Progress, Request, State};
use crate::config::DropRule;
use crate::metrics::{Metrics, RuleLabel};
use crate::source::Source;

/// What the watch hands to the publisher, in order (the event boxed since its
/// decode: see `source::Change`).
#[derive(Debug)]
pub enum Item {
    /// An event to publish; `cursor_rv` as in [`Output::Event`].
    Event {
        scope: String,
        kind: WatchKind,
        event: Box<NormalizedEvent>,
        cursor_rv: String,
    },
    /// The scope reached `rv` without a record (bookmark, end of a relist, a watch
    /// just opened, an event a drop rule took): the next heartbeat carries it.
    Progress { scope: String, rv: String, bookmark: bool },
}

/// Why the task stopped.
#[derive(Debug, PartialEq)]
pub enum Stop {
    /// The publisher side went away (shutdown or leadership loss).
    ChannelClosed,
}

/// The watch of one scope with everything around its state machine.
pub struct ScopeWatch<S> {
    scope: String,
    machine: Machine<S>,
    drop_rules: Vec<DropRule>,
    metrics: Metrics,
    tx: mpsc::Sender<Item>,
}

impl<S: Source> ScopeWatch<S> {
    pub fn new(scope: String, machine: Machine<S>, drop_rules: Vec<DropRule>, metrics: Metrics, tx: mpsc::Sender<Item>) -> Self {
        ScopeWatch { scope, machine, drop_rules, metrics, tx }
    }

    /// Run from `cursor` (None: never published) until the channel closes.
    pub async fn run(mut self, cursor: Option<String>) -> Stop {
        self.metrics.restart("start");
        let mut state = State::start(cursor);
        loop {
            let (out, next) = tokio::select! {
                step = self.machine.step(state) => step,
                _ = self.tx.closed() => return Stop::ChannelClosed,
            };
            state = next;
            if let Some(out) = out {
                if let Err(stop) = self.hand_on(out).await {
                    return stop;
                }
            }
        }
    }

    async fn send(&self, item: Item) -> Result<(), Stop> {
        self.tx.send(item).await.map_err(|_| Stop::ChannelClosed)
    }

    async fn hand_on(&self, out: Output) -> Result<(), Stop> {
        let scope = self.scope.clone();
        match out {
            Output::Event { kind, event, cursor_rv } => {
                self.metrics.received(kind.as_str());
                // A dropped event still moves the cursor, or a restart would fetch it again.
                if let Some(rule) = dropped_by(&self.drop_rules, &event) {
                    self.metrics.dropped.get_or_create(&RuleLabel { rule: rule.to_string() }).inc();
                    return self.send(Item::Progress { scope, rv: cursor_rv, bookmark: false }).await;
                }
                self.send(Item::Event { scope, kind, event, cursor_rv }).await
            }
            Output::Progress { rv, why } => {
                match why {
                    Progress::Opened => {}
                    Progress::Bookmark => {
                        self.metrics.received("BOOKMARK");
                        self.metrics.last_bookmark.set(crate::publish::now_us() as f64 / 1e6);
                    }
                    Progress::Listed { published } => {
                        tracing::info!(scope = %self.scope, list_rv = %rv, published, "relist done");
                    }
                }
                self.send(Item::Progress { scope, rv, bookmark: why == Progress::Bookmark }).await
            }
            Output::Note(note) => {
                self.note(note);
                Ok(())
            }
        }
    }

    fn note(&self, note: Note) {
        let (m, scope) = (&self.metrics, &self.scope);
        match note {
            Note::Relisting { cursor } => {
                m.relists.inc();
                if cursor.is_some() {
                    // Changes were compacted away while we were not watching; objects
                    // deleted meanwhile cannot be recovered.
                    m.possible_gaps.inc();
                }
                tracing::info!(%scope, ?cursor, "relisting");
            }
            Note::RvReset { cursor, list_rv } => {
                m.rv_resets.inc();
                tracing::warn!(%scope, %cursor, %list_rv, "resourceVersion reset detected (etcd restore?): republishing the list");
            }
            Note::Gone { rv, message } => {
                m.gone_410.inc();
                m.restart("gone");
                tracing::warn!(%scope, %rv, %message, "410 Gone: relisting");
            }
            Note::Empty { rv, relist } => {
                m.empty_watches.inc();
                m.restart("empty");
                if relist {
                    tracing::warn!(%scope, %rv, "watch keeps returning nothing at once (stale resourceVersion, kubernetes #104171): relisting");
                }
            }
            Note::Idle { rv } => {
                m.restart("idle");
                tracing::warn!(%scope, %rv, "the watch delivered nothing within the idle timeout (silent connection): re-watching");
            }
            Note::Ended { .. } => m.restart("timeout"),
            Note::Failed { request, error, retry_in } => {
                if request != Request::List {
                    m.restart("error");
                }
                tracing::warn!(%scope, ?request, %error, ?retry_in, "request to the API server failed");
            }
        }
    }
}

/// The name of the first drop rule that takes `ev` (every set field must match).
pub fn dropped_by<'r>(rules: &'r [DropRule], ev: &NormalizedEvent) -> Option<&'r str> {
    rules
        .iter()
        .find(|r| {
            r.reason.as_ref().is_none_or(|v| *v == ev.reason)
                && r.event_type.as_ref().is_none_or(|v| *v == ev.event_type)
                && r.namespace.as_ref().is_none_or(|v| *v == ev.namespace)
                && r.component.as_ref().is_none_or(|v| *v == ev.reporting_controller)
                && r.kind.as_ref().is_none_or(|v| *v == ev.regarding.kind)
        })
        .map(|r| r.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CauseLabel, TypeLabel};
    use crate::source::Change;
    use crate::watch::script::{added, bookmark, ev, gone, page, Line, Script};
    use std::time::Duration;

    fn pulled(rv: u64) -> Line {
        let event = NormalizedEvent { reason: "Pulled".into(), ..ev(rv) };
        Line::Send(Ok(Change::Object(WatchKind::Modified, Box::new(event))))
    }

    fn progress(rv: &str, bookmark: bool) -> String {
        format!("progress {rv} {bookmark}")
    }

    fn show(item: &Item) -> String {
        match item {
            Item::Event { kind, event, cursor_rv, .. } => format!("{} {} {cursor_rv}", kind.as_str(), event.resource_version),
            Item::Progress { rv, bookmark, .. } => progress(rv, *bookmark),
        }
    }

    /// What reaches the publisher, in order, with drop rules applied (a dropped event
    /// still moves the cursor), and what the notes count; closing the channel ends
    /// the task even while the watch waits.
    #[tokio::test(start_paused = true)]
    async fn hands_on_in_order_applies_drop_rules_counts_and_stops_on_close() {
        let script = Script::default();
        script.watch(Ok(vec![added(6), pulled(7), bookmark(8), Line::Send(Err(gone()))]));
        script.list(page(&[7, 9], 10, None));
        script.watch(Ok(vec![Line::Hang]));
        let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
        let rules = vec![DropRule { name: "no-pulls".into(), reason: Some("Pulled".into()), ..Default::default() }];
        let (tx, mut rx) = mpsc::channel(4);
        let machine = Machine::new(script.clone(), 290, Duration::from_secs(320));
        let task = tokio::spawn(ScopeWatch::new("".into(), machine, rules, metrics.clone(), tx).run(Some("5".into())));
        let mut got = Vec::new();
        while got.len() < 7 {
            got.push(show(&rx.recv().await.expect("the task runs")));
        }
        assert_eq!(
            got,
            [
                progress("5", false),
                "ADDED 6 6".into(),
                progress("7", false),
                progress("8", true),
                "RELISTED 9 8".into(),
                progress("10", false),
                progress("10", false),
            ]
        );
        drop(rx);
        assert_eq!(task.await.unwrap(), Stop::ChannelClosed);
        let restarts = |c: &str| metrics.watch_restarts.get_or_create(&CauseLabel { cause: c.into() }).get();
        let received = |t: &str| metrics.received.get_or_create(&TypeLabel { r#type: t.into() }).get();
        assert_eq!((restarts("start"), restarts("gone"), restarts("error")), (1, 1, 0));
        assert_eq!((metrics.gone_410.get(), metrics.relists.get(), metrics.possible_gaps.get()), (1, 1, 1));
        assert_eq!(metrics.dropped.get_or_create(&RuleLabel { rule: "no-pulls".into() }).get(), 1);
        assert_eq!((received("ADDED"), received("MODIFIED"), received("BOOKMARK"), received("RELISTED")), (1, 1, 1, 1));
        assert!(metrics.last_bookmark.get() > 0.0);
    }

    #[test]
    fn every_set_field_of_a_drop_rule_must_match() {
        let rule = |reason: &str, ns: Option<&str>| DropRule {
            name: format!("{reason}-{ns:?}"),
            reason: Some(reason.into()),
            namespace: ns.map(Into::into),
            ..Default::default()
        };
        let e = ev(1); // BackOff in "default"
        assert_eq!(dropped_by(&[rule("Pulled", None)], &e), None);
        assert_eq!(dropped_by(&[rule("BackOff", Some("kube-system"))], &e), None);
        let rules = [rule("Pulled", None), rule("BackOff", Some("default")), rule("BackOff", None)];
        assert_eq!(dropped_by(&rules, &e), Some("BackOff-Some(\"default\")"), "the first match names the drop");
    }
}
