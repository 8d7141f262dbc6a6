//! `patterns:` in the processor's configuration: when a similarity key is a
//! pattern, when it stops being one, what may feed it, how much it may remember,
//! and the anomaly baseline. The processor embeds [`PatternConfig`] and calls
//! [`PatternConfig::validate`] with the rest of its configuration.

use runtime::kafka::FieldError;
use schemas::model::Severity;
use serde::{Deserialize, Serialize};

/// Pattern detection (see `processor::patterns`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// Detect patterns at all. Default true; false leaves the processor to
    /// classification, occurrences, metadata, correlation and the alerts of
    /// incidents, and writes no pattern records.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Occurrences within the rate window before a key is a pattern. Default 3
    /// (the design's threshold: two repeats are a coincidence, three a pattern).
    #[serde(default = "default_min_count")]
    pub min_count: i64,
    /// A key opens only when its rate is above this, occurrences per minute in
    /// the rate window (measured from its first occurrence there, at least one
    /// minute: three in two minutes is 1.5). It resolves only once its rate over
    /// the whole window stayed below half of it, or no occurrence came, for
    /// `close_after_secs`: the gap between the two is the hysteresis that keeps a
    /// key hovering around the threshold one episode. Default 0.5.
    #[serde(default = "default_min_per_minute")]
    pub min_per_minute: f64,
    /// Length of the rate window, minutes. Default 10 (client-go's own event
    /// aggregation window).
    #[serde(default = "default_window_minutes")]
    pub window_minutes: u32,
    /// How long the rate must stay low (or the key silent) before an open pattern
    /// is resolved, seconds of record time. Default 600.
    #[serde(default = "default_close_after_secs")]
    pub close_after_secs: u64,
    /// While a pattern is open, a new version is written when its count doubled, on
    /// an anomaly, or when this much record time passed since the last version and
    /// new occurrences came. Bounds the records a storm produces. Default 60.
    #[serde(default = "default_update_every_secs")]
    pub update_every_secs: u64,
    /// Events below this severity do not feed patterns: healthy chatter
    /// (`Scheduled`, `Pulled`, `Created`) repeats by design. Default `warning`.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Similarity keys remembered per raw partition (memory bound, about 1 KB
    /// each). Beyond it the least recently seen are forgotten, closed keys first;
    /// an open pattern forgotten this way is resolved. Default 20,000.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Start times of earlier episodes remembered per key (`previous_episodes`).
    /// Older recurrence stays queryable in ClickHouse (`pattern_episodes`).
    /// Default 10.
    #[serde(default = "default_max_history")]
    pub max_history: usize,
    /// Clusters a key must be a pattern in to be a fleet pattern
    /// (`kevents analyze`; the running pipeline uses the `fleet_patterns` view).
    /// Default 2.
    #[serde(default = "default_fleet_min_clusters")]
    pub fleet_min_clusters: usize,
    #[serde(default)]
    pub anomaly: AnomalyConfig,
}

/// Bursts far above a key's own baseline, reported even under the fixed thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Weight of the newest minute in the per-minute EWMA baseline (mean and
    /// variance), 0.001–1. Default 0.02: a memory of roughly an hour (half-life
    /// 35 minutes).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// A minute is anomalous when (count − mean) / deviation reaches this, where
    /// deviation is the largest of the EW standard deviation, √mean (the Poisson
    /// spread of a steady rate) and `min_deviation`. Default 4.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Floor of the deviation, so a key that was silent for hours is not
    /// anomalous at its first occurrence. Default 1.
    #[serde(default = "default_min_deviation")]
    pub min_deviation: f64,
    /// Minutes a key must have been tracked before it can be anomalous (a baseline
    /// needs history). Default 60.
    #[serde(default = "default_warmup_minutes")]
    pub warmup_minutes: u32,
    /// Occurrences in one minute below which nothing is an anomaly. Default 5;
    /// set it under `min_count` to flag small bursts of rare keys.
    #[serde(default = "default_min_burst")]
    pub min_burst: i64,
}

fn default_min_count() -> i64 {
    3
}
fn default_min_per_minute() -> f64 {
    0.5
}
fn default_window_minutes() -> u32 {
    10
}
fn default_close_after_secs() -> u64 {
    600
}
fn default_update_every_secs() -> u64 {
    60
}
fn default_min_severity() -> Severity {
    Severity::Warning
}
fn default_max_keys() -> usize {
    20_000
}
fn default_max_history() -> usize {
    10
}
fn default_fleet_min_clusters() -> usize {
    2
}
fn default_true() -> bool {
    true
}
fn default_alpha() -> f64 {
    0.02
}
fn default_threshold() -> f64 {
    4.0
}
fn default_min_deviation() -> f64 {
    1.0
}
fn default_warmup_minutes() -> u32 {
    60
}
fn default_min_burst() -> i64 {
    5
}

impl Default for PatternConfig {
    fn default() -> Self {
        PatternConfig {
            enabled: true,
            min_count: default_min_count(),
            min_per_minute: default_min_per_minute(),
            window_minutes: default_window_minutes(),
            close_after_secs: default_close_after_secs(),
            update_every_secs: default_update_every_secs(),
            min_severity: default_min_severity(),
            max_keys: default_max_keys(),
            max_history: default_max_history(),
            fleet_min_clusters: default_fleet_min_clusters(),
            anomaly: AnomalyConfig::default(),
        }
    }
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            enabled: true,
            alpha: default_alpha(),
            threshold: default_threshold(),
            min_deviation: default_min_deviation(),
            warmup_minutes: default_warmup_minutes(),
            min_burst: default_min_burst(),
        }
    }
}

impl PatternConfig {
    /// Check the settings; errors name the field under `patterns.`.
    pub fn validate(&self) -> Result<(), FieldError> {
        let err = |f: &str, m: &str| Err(FieldError::new(format!("patterns.{f}"), m));
        if self.min_count < 1 {
            return err("min_count", "must be at least 1");
        }
        if !(self.min_per_minute.is_finite() && self.min_per_minute > 0.0) {
            return err("min_per_minute", "must be a number above 0");
        }
        if !(1..=1440).contains(&self.window_minutes) {
            return err("window_minutes", "must be 1–1440");
        }
        if !(60..=7 * 86_400).contains(&self.close_after_secs) {
            return err("close_after_secs", "must be 60–604800");
        }
        if self.update_every_secs < 1 {
            return err("update_every_secs", "must be at least 1");
        }
        if self.max_keys < 1 {
            return err("max_keys", "must be at least 1");
        }
        if self.max_history > 1000 {
            return err("max_history", "must be at most 1000");
        }
        if self.fleet_min_clusters < 2 {
            return err("fleet_min_clusters", "must be at least 2");
        }
        let a = &self.anomaly;
        if !(a.alpha.is_finite() && (0.001..=1.0).contains(&a.alpha)) {
            return err("anomaly.alpha", "must be 0.001–1");
        }
        if !(a.threshold.is_finite() && a.threshold > 0.0) {
            return err("anomaly.threshold", "must be a number above 0");
        }
        if !(a.min_deviation.is_finite() && a.min_deviation > 0.0) {
            return err("anomaly.min_deviation", "must be a number above 0");
        }
        if a.min_burst < 1 {
            return err("anomaly.min_burst", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_yaml_overrides_fields() {
        PatternConfig::default().validate().unwrap();
        let c: PatternConfig =
            serde_norway::from_str("min_count: 5\nmin_severity: error\nanomaly: {min_burst: 2, alpha: 0.1}\n").unwrap();
        assert_eq!((c.min_count, c.min_severity, c.anomaly.min_burst, c.anomaly.alpha), (5, Severity::Error, 2, 0.1));
        assert_eq!(c.anomaly.threshold, 4.0);
        c.validate().unwrap();
        assert!(serde_norway::from_str::<PatternConfig>("min_cont: 5\n").is_err(), "unknown fields are errors");
        assert!(serde_norway::from_str::<PatternConfig>("anomaly: {alhpa: 1}\n").is_err());
    }

    #[test]
    fn bad_values_name_the_field() {
        type Change = fn(&mut PatternConfig);
        let cases: [(Change, &str); 8] = [
            (|c| c.min_count = 0, "patterns.min_count"),
            (|c| c.min_per_minute = f64::NAN, "patterns.min_per_minute"),
            (|c| c.window_minutes = 0, "patterns.window_minutes"),
            (|c| c.close_after_secs = 5, "patterns.close_after_secs"),
            (|c| c.max_keys = 0, "patterns.max_keys"),
            (|c| c.fleet_min_clusters = 1, "patterns.fleet_min_clusters"),
            (|c| c.anomaly.alpha = 0.0, "patterns.anomaly.alpha"),
            (|c| c.anomaly.min_burst = 0, "patterns.anomaly.min_burst"),
        ];
        for (change, field) in cases {
            let mut c = PatternConfig::default();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().field, field);
        }
    }
}
