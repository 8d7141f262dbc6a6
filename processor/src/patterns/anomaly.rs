//! A similarity key's rate baseline: an exponentially weighted mean and variance of
//! its occurrences per minute, and the deviation score of the current minute.
//!
//! Why a baseline on top of the fixed thresholds: a key that always runs at 2 per
//! minute is an open pattern all day, and a jump to 40 per minute changes nothing
//! there; a key that is silent for days and then fires twice never reaches them.
//! Both are what an on-call engineer wants to hear about.
//!
//! Minutes are folded lazily: when a key's next occurrence falls in a later minute,
//! the finished minute and the silent ones after it are folded in then — only
//! then, never on a heartbeat, so the baseline depends on the occurrences alone
//! and not on how often time was advanced. This only sees minute numbers.

use super::config::AnomalyConfig;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Baseline {
    /// The minute (record time / 60 s) `count` belongs to.
    minute: i64,
    /// Occurrences in `minute` so far.
    count: i64,
    mean: f64,
    var: f64,
    /// Minutes folded so far (saturating): the warm-up counter.
    age: u32,
    /// An anomaly was already reported for `minute`.
    reported: bool,
}

impl Baseline {
    pub fn new(minute: i64) -> Self {
        Baseline { minute, count: 0, mean: 0.0, var: 0.0, age: 0, reported: false }
    }

    /// Move to `minute`: fold the current minute, then the silent ones after it.
    pub fn roll(&mut self, minute: i64, alpha: f64) {
        if minute <= self.minute {
            return;
        }
        self.fold(self.count as f64, alpha);
        let silent = minute - self.minute - 1;
        self.age = self.age.saturating_add(u32::try_from(silent + 1).unwrap_or(u32::MAX));
        if silent > 0 {
            // `silent` zeros at once: `fold(0)` iterated k times is mean·rᵏ and
            // rᵏ·(var + mean²·(1 − rᵏ)) with r = 1 − alpha, so a key back after a
            // week of silence costs no more than one back after a minute.
            let rk = (1.0 - alpha).powi(silent.min(i64::from(i32::MAX)) as i32);
            self.var = rk * (self.var + self.mean * self.mean * (1.0 - rk));
            self.mean *= rk;
        }
        self.minute = minute;
        self.count = 0;
        self.reported = false;
    }

    /// Exponentially weighted mean and variance (West/Finch incremental form).
    fn fold(&mut self, x: f64, alpha: f64) {
        let diff = x - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
    }

    /// Count `n` occurrences in the current minute. Returns the score when this
    /// minute has just become anomalous (once per minute).
    pub fn add(&mut self, n: i64, cfg: &AnomalyConfig) -> Option<f64> {
        self.count += n;
        if !cfg.enabled || self.reported || self.age < cfg.warmup_minutes || self.count < cfg.min_burst {
            return None;
        }
        let score = self.score(cfg);
        if score >= cfg.threshold {
            self.reported = true;
            return Some(score);
        }
        None
    }

    /// How many deviations the current minute is above the baseline.
    pub fn score(&self, cfg: &AnomalyConfig) -> f64 {
        let dev = self.var.sqrt().max(self.mean.sqrt()).max(cfg.min_deviation);
        (self.count as f64 - self.mean) / dev
    }

    /// The score of the current minute if it was reported as an anomaly, else 0.
    pub fn reported_score(&self, cfg: &AnomalyConfig) -> f64 {
        if self.reported {
            self.score(cfg)
        } else {
            0.0
        }
    }

    #[cfg(test)]
    pub fn mean(&self) -> f64 {
        self.mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AnomalyConfig {
        AnomalyConfig { warmup_minutes: 30, ..Default::default() }
    }

    #[test]
    fn a_steady_rate_is_its_own_baseline_and_a_burst_is_not() {
        let c = cfg();
        let mut b = Baseline::new(0);
        for m in 0..300 {
            b.roll(m, c.alpha);
            for _ in 0..(1 + m % 2) {
                assert_eq!(b.add(1, &c), None, "steady 1–2 per minute is never anomalous (minute {m})");
            }
        }
        assert!((b.mean() - 1.5).abs() < 0.1, "mean {}", b.mean());
        b.roll(300, c.alpha);
        let scores: Vec<_> = (0..20).filter_map(|_| b.add(1, &c)).collect();
        assert_eq!(scores.len(), 1, "reported once per minute");
        assert!(scores[0] >= c.threshold);
        assert!(b.reported_score(&c) > scores[0], "the score grows with the minute");
        b.roll(301, c.alpha);
        assert_eq!(b.reported_score(&c), 0.0);
    }

    #[test]
    fn warm_up_and_minimum_burst_hold_it_back() {
        let c = cfg();
        let mut b = Baseline::new(0);
        assert_eq!((0..50).find_map(|_| b.add(1, &c)), None, "no history, no anomaly");
        let mut b = Baseline::new(0);
        b.roll(600, c.alpha);
        assert_eq!((0..4).find_map(|_| b.add(1, &c)), None, "under min_burst");
        assert!(b.add(1, &c).is_some(), "5 after hours of silence");
    }

    #[test]
    fn silences_fold_in_closed_form() {
        let c = cfg();
        let mut b = Baseline::new(0);
        b.add(100, &c);
        b.roll(i64::MAX / 2, c.alpha);
        assert_eq!((b.mean, b.var, b.age), (0.0, 0.0, u32::MAX));
        // The closed form is the incremental form iterated.
        let (mut x, mut y) = (Baseline::new(0), Baseline::new(0));
        for m in 0..50 {
            x.roll(m, c.alpha);
            y.roll(m, c.alpha);
            x.add(m % 7, &c);
            y.add(m % 7, &c);
        }
        x.roll(50, c.alpha);
        y.roll(50, c.alpha);
        x.roll(250, c.alpha);
        for _ in 0..200 {
            y.fold(0.0, c.alpha);
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        assert!(close(x.mean, y.mean) && close(x.var, y.var), "{x:?} {y:?}");
        assert!(x.mean > 0.0 && x.var > 0.0);
    }
}
