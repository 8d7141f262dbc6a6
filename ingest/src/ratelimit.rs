//! The per-token rate limit: a token bucket of events (a batch of 100 costs 100),
//! refilled at `events_per_sec` up to `burst`. A request that does not fit gets 429
//! with `Retry-After`: the whole seconds until the bucket holds its events.
//!
//! Per process: with several ingest replicas behind a load balancer, a token's
//! limit is per replica.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.rate).min(self.burst);
        self.at = now;
    }
}

/// Why a request may not go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Try again after this long.
    RetryAfter(Duration),
    /// More events than the token's burst: never fits.
    TooLarge { burst: u32 },
}

/// One bucket per token (index as in [`crate::auth::Tokens`]).
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Vec<Mutex<Bucket>>,
}

impl RateLimiter {
    /// `limits`: (events per second, burst) per token. Buckets start full.
    pub fn new(limits: impl IntoIterator<Item = (f64, u32)>) -> Self {
        let now = Instant::now();
        RateLimiter {
            buckets: limits
                .into_iter()
                .map(|(rate, burst)| Mutex::new(Bucket { rate, burst: burst as f64, level: burst as f64, at: now }))
                .collect(),
        }
    }

    /// Take `events` from token `index`'s bucket, or say when they would fit.
    pub fn take(&self, index: usize, events: usize) -> Result<(), Refusal> {
        let mut b = self.buckets[index].lock().expect("a bucket's lock is never poisoned: no panics under it");
        b.refill(Instant::now());
        let want = events as f64;
        if want > b.burst {
            return Err(Refusal::TooLarge { burst: b.burst as u32 });
        }
        if b.level >= want {
            b.level -= want;
            return Ok(());
        }
        let wait = (want - b.level) / b.rate;
        Err(Refusal::RetryAfter(Duration::from_secs_f64(wait)))
    }

    /// Whether token `index` could send one event now (checked before a body is
    /// parsed, so a flood is refused cheaply).
    pub fn has_room(&self, index: usize) -> Result<(), Refusal> {
        let mut b = self.buckets[index].lock().expect("a bucket's lock is never poisoned: no panics under it");
        b.refill(Instant::now());
        if b.level >= 1.0 {
            Ok(())
        } else {
            Err(Refusal::RetryAfter(Duration::from_secs_f64((1.0 - b.level) / b.rate)))
        }
    }
}

/// `Retry-After` in whole seconds, at least 1 (HTTP has no finer unit).
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_at_the_rate_up_to_the_burst() {
        let r = RateLimiter::new([(10.0, 20), (1.0, 5)]);
        r.take(0, 20).unwrap();
        let Err(Refusal::RetryAfter(d)) = r.take(0, 5) else { panic!("empty bucket") };
        assert_eq!(retry_after_secs(d), 1, "5 events at 10/s: half a second, rounded up");
        assert!(r.has_room(0).is_err());
        tokio::time::advance(Duration::from_millis(500)).await;
        r.take(0, 5).unwrap();
        assert_eq!(r.take(0, 21), Err(Refusal::TooLarge { burst: 20 }));
        tokio::time::advance(Duration::from_secs(3600)).await;
        r.take(0, 20).unwrap();
        assert!(r.take(0, 1).is_err(), "the level is capped at the burst");
        // Tokens do not share buckets.
        r.take(1, 5).unwrap();
        let Err(Refusal::RetryAfter(d)) = r.take(1, 3) else { panic!() };
        assert_eq!(retry_after_secs(d), 3);
    }
}
