//! The `clickhouse` liveness probe: `/healthz` fails when work against ClickHouse
//! (an INSERT, loading the marks, the migrations) has been failing and retried without
//! success for `clickhouse.unhealthy_after_secs`.
//!
//! Why: retrying a retryable error is right, but a sink that retries for an hour is
//! broken in a way a restart (new connections, new DNS, another node) may fix and an
//! operator must see; the consume probe cannot say it, since a retrying loop is alive.
//!
//! How: every retry loop holds a [`Streak`] from its first failure until it succeeds or
//! gives up; a ticker touches the probe every 200 ms while no streak is open. The
//! probe's age is therefore the age of the oldest open streak, and it is fresh again
//! within 200 ms of the last success. The ticker runs on its own thread, so it keeps
//! ticking while the consume task waits inside a rebalance callback.

use runtime::ops::Health;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The probe's name in `/healthz`.
pub const PROBE: &str = "clickhouse";

const TICK: Duration = Duration::from_millis(200);

/// Counts the open failure streaks and keeps the probe fresh while there are none.
#[derive(Clone)]
pub struct Failing {
    open: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
}

/// One retry loop's failure streak; closed when dropped.
pub struct Streak {
    open: Arc<AtomicUsize>,
}

impl Drop for Streak {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Failing {
    /// Register the probe with `limit` and start the ticker (it ends with the last clone).
    pub fn start(health: &Health, limit: Duration) -> Failing {
        health.probe(PROBE, limit);
        let f = Failing { open: Arc::new(AtomicUsize::new(0)), stopped: Arc::new(AtomicBool::new(false)) };
        let (open, stopped, health) = (Arc::downgrade(&f.open), f.stopped.clone(), health.clone());
        std::thread::Builder::new()
            .name("sink-ch-probe".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    match open.upgrade() {
                        Some(o) if o.load(Ordering::SeqCst) == 0 => health.touch(PROBE),
                        Some(_) => {}
                        None => return,
                    }
                    std::thread::sleep(TICK);
                }
            })
            .expect("spawn the clickhouse probe thread");
        f
    }

    /// A tracker that touches nothing (tests of the insert path alone).
    pub fn detached() -> Failing {
        Failing { open: Arc::new(AtomicUsize::new(0)), stopped: Arc::new(AtomicBool::new(true)) }
    }

    /// Open a streak at a first failure; keep it until success.
    pub fn streak(&self) -> Streak {
        self.open.fetch_add(1, Ordering::SeqCst);
        Streak { open: self.open.clone() }
    }

    /// Stop the ticker (at shutdown).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_ages_only_while_a_streak_is_open() {
        let health = Health::default();
        let f = Failing::start(&health, Duration::from_millis(600));
        std::thread::sleep(Duration::from_millis(300));
        assert!(health.liveness().is_ok());
        let s = f.streak();
        let t = std::time::Instant::now();
        while health.liveness().is_ok() {
            assert!(t.elapsed() < Duration::from_secs(5), "the probe must fail while failing");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(t.elapsed() >= Duration::from_millis(300), "not before the limit: {:?}", t.elapsed());
        drop(s);
        std::thread::sleep(Duration::from_millis(450));
        assert!(health.liveness().is_ok(), "fresh again after the streak closed");
        f.stop();
    }
}
