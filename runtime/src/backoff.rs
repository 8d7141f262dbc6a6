//! The one backoff every retry path of every stage uses: doubling, with ±50 % jitter
//! (so a fleet of collectors or sinks does not retry in lock-step against a
//! recovering server), capped, honouring a server's `Retry-After`, and reset after a
//! quiet period. The default (800 ms → 30 s, reset after 2 minutes) is client-go's
//! and kube-runtime's: the collector's watch, leader election and start-up retries
//! use it; the sink's INSERTs and dead-letter writes start at 200 ms ([`Backoff::up_to`]).
//!
//! Time is tokio's clock, so the quiet-period reset runs under a paused test clock.

use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// After this long without a failure, the next failure starts from `initial`.
    reset_after: Duration,
    current: Duration,
    last_failure: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(800), Duration::from_secs(30), Duration::from_secs(120))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, reset_after: Duration) -> Self {
        Backoff {
            initial,
            max,
            reset_after,
            current: initial,
            last_failure: None,
        }
    }

    /// From 200 ms up to `max`, reset after a quiet period of four times `max`
    /// (at least a minute): the sink's retries (ClickHouse, the dead-letter topic).
    pub fn up_to(max: Duration) -> Self {
        Backoff::new(Duration::from_millis(200), max, (max * 4).max(Duration::from_secs(60)))
    }

    /// The delay before the next attempt after a failure: the current step with
    /// ±50 % jitter (so a fleet of collectors does not retry in lock-step), then
    /// the step doubles up to the max. A server's `Retry-After` raises the floor.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let now = Instant::now();
        if self.last_failure.is_some_and(|t| now.duration_since(t) > self.reset_after) {
            self.current = self.initial;
        }
        self.last_failure = Some(now);
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let jitter = rand::rng().random_range(0.5..1.5);
        // Whole milliseconds: tokio's timer resolution, so a sleep lasts exactly this.
        let d = Duration::from_millis(base.mul_f64(jitter).min(self.max).as_millis() as u64);
        match retry_after {
            Some(r) if r > d => r,
            _ => d,
        }
    }

    /// The longest the first `retries` delays of a fresh backoff can add up to (each
    /// step at its full +50 % jitter, capped): for a caller that must bound how long
    /// all its retries may take.
    pub fn longest_total(&self, retries: u32) -> Duration {
        let mut step = self.initial;
        let mut total = Duration::ZERO;
        for _ in 0..retries {
            total += Duration::from_millis(step.mul_f64(1.5).min(self.max).as_millis() as u64);
            step = (step * 2).min(self.max);
        }
        total
    }

    /// Forget past failures (call after real progress).
    pub fn reset(&mut self) {
        self.current = self.initial;
        self.last_failure = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default steps, each jittered ±50 %: 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, then 30 s.
    #[tokio::test(start_paused = true)]
    async fn default_doubles_from_800ms_to_30s_and_resets_after_a_quiet_period() {
        let mut b = Backoff::default();
        let steps = [800u64, 1600, 3200, 6400, 12800, 25600, 30000, 30000];
        for base in steps {
            let d = b.next_delay(None).as_millis() as u64;
            assert!(d >= base / 2 && d <= (base * 3 / 2).min(30000), "step {base} ms gave {d} ms");
        }
        // Failures closer together than the quiet period keep the step at the max...
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(b.next_delay(None) >= Duration::from_secs(15));
        // ...a longer quiet period starts again from 800 ms.
        tokio::time::advance(Duration::from_secs(121)).await;
        assert!(b.next_delay(None) <= Duration::from_millis(1200));
    }

    #[test]
    fn longest_total_bounds_every_sequence() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30), Duration::from_secs(120));
        // 750 + 1500 + 3000 + 6000 + 12000 + 24000 ms
        assert_eq!(b.longest_total(6), Duration::from_millis(47_250));
        for _ in 0..50 {
            let mut run = b.clone();
            let total: Duration = (0..6).map(|_| run.next_delay(None)).sum();
            assert!(total <= b.longest_total(6), "{total:?}");
        }
    }

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), Duration::from_secs(60));
        let d1 = b.next_delay(None);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(150), "{d1:?}");
        for _ in 0..10 {
            assert!(b.next_delay(None) <= Duration::from_secs(1));
        }
        assert_eq!(b.next_delay(Some(Duration::from_secs(7))), Duration::from_secs(7));
        b.reset();
        assert!(b.next_delay(None) <= Duration::from_millis(150));
    }
}
