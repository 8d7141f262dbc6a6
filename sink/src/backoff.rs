//! Exponential backoff with jitter for every retry path of the sink (INSERTs,
//! loading marks, the dead-letter topic): 200 ms doubling up to the configured
//! maximum, each delay jittered ±50 % so a fleet of sinks does not hammer a
//! recovering ClickHouse in lock-step. (Same shape as the collector's; stages do not
//! share code except through `schemas`.)

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, current: initial }
    }

    /// From 200 ms up to `max`.
    pub fn up_to(max: Duration) -> Self {
        Backoff::new(Duration::from_millis(200), max)
    }

    /// The delay before the next attempt; then the step doubles (capped).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.5..1.5)).min(self.max)
    }

    /// Forget past failures (after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d1 = b.next_delay();
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(150), "{d1:?}");
        let d2 = b.next_delay();
        assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(300), "{d2:?}");
        for _ in 0..10 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(150));
    }
}
