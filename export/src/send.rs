//! Requests to the OTLP/HTTP endpoint: one POST with retries, and a batch split
//! until the endpoint takes it or a single record is left that it refuses.
//!
//! What an answer means (OTLP/HTTP spec, "Failures"), and what is done:
//! - 2xx: accepted. A `partial_success` in the body (records the receiver
//!   dropped itself) is counted and logged, not retried: the receiver decided.
//! - **Retryable** — connection errors, timeouts, 408, 429, 502, 503, 504 and
//!   other 5xx: retried with the runtime's backoff, honouring `Retry-After`
//!   (seconds or an HTTP date, up to `backoff_max_secs`), without limit: an
//!   endpoint that is down delays the export, it never drops a record.
//! - **Refused** — 401, 403, 404, 405, 415: the endpoint refuses *us* (the
//!   credentials, the path, the content type), whatever the records say; retried
//!   like the above, logged as errors and shown on `/readyz`, so that fixing the
//!   configuration (a rotated token file is read again on every request) resumes
//!   the export with nothing lost. Dead-lettering here would empty the topics
//!   into the dead-letter topic because of one wrong header.
//! - **Permanent** — every other 4xx (400, 413, 422…): the endpoint rejects the
//!   data. The batch is split in halves and each half sent again, down to the one
//!   record it rejects, which goes to the dead-letter topic with the answer as
//!   reason (see [`crate::dlq`]). Splitting costs at most about
//!   2·log2(batch) extra requests per bad record, and no good record is lost
//!   with a bad one.
//!
//! Errors never print the URL (it may carry a token) nor header values.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use runtime::backoff::Backoff;
use runtime::kafka::FieldError;
use runtime::ops::Health;
use runtime::secret::Secret;
use runtime::shutdown::CancellationToken;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::ExportConfig;
use crate::metrics::Metrics;

/// The two OTLP signals kevents sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Logs,
    Traces,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }
}

/// What one attempt says about the next.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx; how many records the receiver said it dropped itself, and why.
    Accepted { dropped: i64, message: String },
    Retry { reason: String, after: Option<Duration> },
    Refused(String),
    Permanent(String),
}

/// How an answer's status is handled (see the module doc).
pub fn classify(status: u16, retry_after: Option<Duration>) -> Attempt {
    match status {
        200..=299 => Attempt::Accepted { dropped: 0, message: String::new() },
        408 | 429 | 500..=599 => Attempt::Retry { reason: format!("HTTP {status}"), after: retry_after },
        401 | 403 | 404 | 405 | 407 | 415 => Attempt::Refused(format!("HTTP {status}")),
        _ => Attempt::Permanent(format!("HTTP {status}")),
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// How one request ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    Accepted,
    /// A permanent answer, with the reason (status and the start of the body).
    Rejected(String),
    /// The stop signal fired while retrying.
    Stopped,
}

/// The stop signal fired before the batch was delivered: nothing of it is
/// committed, the next run sends it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// The configured endpoint, ready to send.
pub struct Endpoint {
    client: reqwest::Client,
    logs_url: Secret,
    traces_url: Secret,
    headers: Vec<(String, Secret)>,
    header_files: Vec<(String, PathBuf)>,
    backoff_initial: Duration,
    backoff_max: Duration,
    metrics: Metrics,
    health: Health,
}

impl Endpoint {
    pub fn new(cfg: &ExportConfig, metrics: Metrics, health: Health) -> Result<Endpoint, FieldError> {
        let e = &cfg.endpoint;
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(e.timeout_secs))
            .user_agent(concat!("kevents-export/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &e.ca_file {
            let pem = std::fs::read(ca).map_err(|err| FieldError::new("endpoint.ca_file", format!("{}: {err}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| FieldError::new("endpoint.ca_file", err.to_string()))?;
            b = b.tls_certs_merge(certs);
        }
        let client = b.build().map_err(|err| FieldError::new("endpoint", format!("cannot build an HTTP client: {}", err.without_url())))?;
        let base = e.url.trim_end_matches('/');
        Ok(Endpoint {
            client,
            logs_url: Secret::new(format!("{base}{}", e.logs_path)),
            traces_url: Secret::new(format!("{base}{}", e.traces_path)),
            headers: e.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            header_files: e.header_files.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            backoff_initial: cfg.backoff_initial(),
            backoff_max: cfg.backoff_max(),
            metrics,
            health,
        })
    }

    async fn attempt(&self, signal: Signal, body: &[u8]) -> Attempt {
        let url = match signal {
            Signal::Logs => &self.logs_url,
            Signal::Traces => &self.traces_url,
        };
        let mut req = self.client.post(url.expose()).header("content-type", "application/x-protobuf").body(body.to_vec());
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.expose());
        }
        for (k, path) in &self.header_files {
            match std::fs::read_to_string(path) {
                Ok(v) => req = req.header(k.as_str(), v.trim_end_matches(['\n', '\r'])),
                Err(e) => return Attempt::Refused(format!("cannot read the header file of {k}: {e}")),
            }
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                return Attempt::Retry { reason: if e.is_timeout() { "timeout".into() } else { format!("request failed: {e}") }, after: None };
            }
        };
        let status = resp.status().as_u16();
        let after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let bytes = resp.bytes().await.unwrap_or_default();
        match classify(status, after) {
            Attempt::Accepted { .. } => {
                let (dropped, message) = match signal {
                    Signal::Logs => ExportLogsServiceResponse::decode(bytes.as_ref()).ok().and_then(|r| r.partial_success).map(|p| (p.rejected_log_records, p.error_message)),
                    Signal::Traces => ExportTraceServiceResponse::decode(bytes.as_ref()).ok().and_then(|r| r.partial_success).map(|p| (p.rejected_spans, p.error_message)),
                }
                .unwrap_or_default();
                Attempt::Accepted { dropped, message }
            }
            Attempt::Permanent(reason) => Attempt::Permanent(with_body(reason, &bytes)),
            Attempt::Refused(reason) => Attempt::Refused(with_body(reason, &bytes)),
            other => other,
        }
    }

    /// POST `body` until the endpoint answers 2xx or a permanent 4xx, or `stop`.
    pub async fn post(&self, signal: Signal, body: &[u8], stop: &CancellationToken) -> Posted {
        let mut backoff = Backoff::new(self.backoff_initial, self.backoff_max, self.backoff_max * 4);
        loop {
            let r = tokio::select! {
                biased;
                _ = stop.cancelled() => return Posted::Stopped,
                r = self.attempt(signal, body) => r,
            };
            self.health.touch(crate::LOOP_PROBE);
            let (reason, after, refused) = match r {
                Attempt::Accepted { dropped, message } => {
                    self.metrics.request(signal, "ok");
                    self.health.set_ready("endpoint", true, format!("last {} request accepted", signal.as_str()));
                    if dropped > 0 {
                        self.metrics.receiver_dropped(signal, dropped as u64);
                        tracing::warn!(signal = signal.as_str(), dropped, message = %message, "the endpoint accepted the request but dropped some records itself (partial success)");
                    }
                    return Posted::Accepted;
                }
                Attempt::Permanent(reason) => {
                    self.metrics.request(signal, "rejected");
                    self.health.set_ready("endpoint", true, format!("last {} request rejected: {reason}", signal.as_str()));
                    return Posted::Rejected(reason);
                }
                Attempt::Retry { reason, after } => (reason, after, false),
                Attempt::Refused(reason) => (reason, None, true),
            };
            self.metrics.request(signal, if refused { "refused" } else { "retried" });
            self.health.set_ready("endpoint", false, format!("{} requests failing: {reason}", signal.as_str()));
            let wait = backoff.next_delay(after.map(|a| a.min(self.backoff_max)));
            if refused {
                tracing::error!(signal = signal.as_str(), %reason, retry_in_ms = wait.as_millis() as u64, "the endpoint refuses the exporter (credentials, path or content type?); retrying");
            } else {
                tracing::warn!(signal = signal.as_str(), %reason, retry_in_ms = wait.as_millis() as u64, "export request failed; retrying");
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Posted::Stopped,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Deliver `units` (each tagged with the index of the record it came from),
    /// `encode`d into requests, splitting on permanent answers. Returns the
    /// records the endpoint rejected for good, with the reason.
    pub async fn deliver<U>(&self, signal: Signal, units: &[(usize, U)], encode: impl Fn(&[(usize, U)]) -> Vec<u8>, stop: &CancellationToken) -> Result<Vec<(usize, String)>, Stopped> {
        let mut rejected = Vec::new();
        let mut todo = vec![(0, units.len())];
        while let Some((lo, hi)) = todo.pop() {
            if lo >= hi {
                continue;
            }
            match self.post(signal, &encode(&units[lo..hi]), stop).await {
                Posted::Accepted => {}
                Posted::Stopped => return Err(Stopped),
                Posted::Rejected(reason) if hi - lo == 1 => rejected.push((units[lo].0, reason)),
                Posted::Rejected(reason) => {
                    tracing::info!(signal = signal.as_str(), records = hi - lo, %reason, "request rejected: splitting it to find the record");
                    let mid = lo + (hi - lo) / 2;
                    // Second half first on the stack: the first half is sent first.
                    todo.push((mid, hi));
                    todo.push((lo, mid));
                }
            }
        }
        Ok(rejected)
    }
}

/// The reason with the start of the answer's body (the receiver's own words).
fn with_body(reason: String, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.trim().is_empty() {
        reason
    } else {
        format!("{reason}: {}", text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_and_retry_after_parsed() {
        assert_eq!(classify(200, None), Attempt::Accepted { dropped: 0, message: String::new() });
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(classify(s, None), Attempt::Retry { .. }), "{s}");
        }
        for s in [401, 403, 404, 415] {
            assert!(matches!(classify(s, None), Attempt::Refused(_)), "{s}");
        }
        for s in [400, 413, 422] {
            assert!(matches!(classify(s, None), Attempt::Permanent(_)), "{s}");
        }
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date: now");
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&soon).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(with_body("HTTP 400".into(), b"bad\n log"), "HTTP 400: bad log");
    }
}
