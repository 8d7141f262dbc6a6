//! One notification request, with retries: the runtime's backoff (doubling, jitter,
//! `Retry-After`), bounded by `max_retries`, per notifier (each notifier runs its own loop, so
//! one receiver's retries never delay another's).
//!
//! Retryable: connection errors, timeouts, 408, 429 and 5xx (a `Retry-After` in
//! seconds is honoured up to `backoff_max_secs`). Permanent: every other non-2xx
//! (the receiver rejected the payload or the credentials; retrying cannot help).
//! Errors never print the URL (a Slack webhook URL is a credential).

use prometheus_client::metrics::counter::Counter;
use serde_json::Value;
use runtime::backoff::Backoff;
use std::time::Duration;

use crate::Target;
use crate::config::NotifyConfig;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &NotifyConfig) -> Self {
        RetryPolicy { max_retries: c.max_retries, initial: Duration::from_millis(c.backoff_initial_ms), max: Duration::from_secs(c.backoff_max_secs) }
    }

    /// A fresh backoff for one request's retries: `initial` doubling up to `max`,
    /// jittered, so members retrying against one recovering receiver spread out.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial, self.max, self.max * 4)
    }

    /// The longest a request can take with every retry (for the consumer's
    /// poll interval): attempts × timeout + the longest delays.
    pub fn budget(&self, timeout: Duration) -> Duration {
        timeout * (self.max_retries + 1) + self.backoff().longest_total(self.max_retries)
    }
}

/// What happened to one request in the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered { attempts: u32 },
    /// Given up: a permanent answer, or retries exhausted. The reason names no URL.
    Failed { attempts: u32, reason: String },
}

/// What one attempt says about the next.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Ok,
    Retry { reason: String, after: Option<Duration> },
    Permanent(String),
}

fn classify_status(status: u16, retry_after: Option<Duration>) -> Attempt {
    match status {
        200..=299 => Attempt::Ok,
        408 | 429 | 500..=599 => Attempt::Retry { reason: format!("HTTP {status}"), after: retry_after },
        _ => Attempt::Permanent(format!("HTTP {status}")),
    }
}

/// Counters a request updates.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub requests: Counter,
    pub retried: Counter,
}

async fn attempt(target: &Target, body: &[u8]) -> Attempt {
    let mut req = target.client.post(target.endpoint()).header("content-type", "application/json").body(body.to_vec());
    for (k, v) in &target.headers {
        req = req.header(k.as_str(), v.expose());
    }
    match req.send().await {
        Ok(resp) => {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            classify_status(resp.status().as_u16(), retry_after)
        }
        Err(e) => {
            let e = e.without_url();
            Attempt::Retry { reason: if e.is_timeout() { "timeout".into() } else { format!("request failed: {e}") }, after: None }
        }
    }
}

/// POST `body` to the target, retrying per `policy`.
pub async fn post(target: &Target, body: &Value, policy: &RetryPolicy, counters: &Counters) -> Delivery {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut attempts = 0;
    let mut backoff = policy.backoff();
    loop {
        attempts += 1;
        counters.requests.inc();
        match attempt(target, &bytes).await {
            Attempt::Ok => return Delivery::Delivered { attempts },
            Attempt::Permanent(reason) => return Delivery::Failed { attempts, reason },
            Attempt::Retry { reason, after } => {
                if attempts > policy.max_retries {
                    return Delivery::Failed { attempts, reason: format!("{reason} (gave up after {attempts} attempts)") };
                }
                let wait = backoff.next_delay(after.map(|a| a.min(policy.max)));
                tracing::warn!(notifier = %target.name, %reason, attempt = attempts, retry_in_ms = wait.as_millis() as u64, "notification failed; retrying");
                counters.retried.inc();
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::target::tests::target_at;
    use super::*;
    use crate::config::NotifierKind;
    use testkit::receiver::{Receiver, Reply};

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy { max_retries, initial: Duration::from_millis(10), max: Duration::from_millis(40) }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = RetryPolicy { max_retries: 6, initial: Duration::from_millis(500), max: Duration::from_secs(30) };
        let mut b = p.backoff();
        let first = b.next_delay(None);
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(750), "{first:?}");
        assert_eq!(b.next_delay(Some(Duration::from_secs(20))), Duration::from_secs(20), "Retry-After raises the floor");
        // Seven attempts of 10 s, and the six longest delays: 750 + 1500 + 3000 + 6000 + 12000 + 24000 ms.
        assert_eq!(p.budget(Duration::from_secs(10)), Duration::from_millis(70_000 + 47_250));
        assert_eq!(classify_status(204, None), Attempt::Ok);
        assert_eq!(classify_status(404, None), Attempt::Permanent("HTTP 404".into()));
        assert!(matches!(classify_status(429, Some(Duration::from_secs(2))), Attempt::Retry { after: Some(_), .. }));
        assert!(matches!(classify_status(503, None), Attempt::Retry { .. }));
    }

    #[tokio::test]
    async fn retries_500_then_delivers_and_gives_up_on_4xx() {
        let r = Receiver::start().await.unwrap();
        let t = target_at(NotifierKind::Webhook, &format!("{}/hook", r.url()));
        let c = Counters::default();
        r.script([Reply::status(500), Reply::status(503)]);
        let d = post(&t, &serde_json::json!({"x": 1}), &policy(3), &c).await;
        assert_eq!(d, Delivery::Delivered { attempts: 3 });
        assert_eq!((c.requests.get(), c.retried.get()), (3, 2));
        let reqs = r.requests();
        assert_eq!(reqs.iter().map(|q| q.status).collect::<Vec<_>>(), [500, 503, 200]);
        assert!(reqs.iter().all(|q| q.path == "/hook" && q.json["x"] == 1 && q.header("x-token") == Some("t0k")));

        r.script([Reply::status(400)]);
        let d = post(&t, &serde_json::json!({}), &policy(3), &c).await;
        assert_eq!(d, Delivery::Failed { attempts: 1, reason: "HTTP 400".into() });

        r.set_default(Reply::status(502));
        let d = post(&t, &serde_json::json!({}), &policy(2), &c).await;
        assert!(matches!(&d, Delivery::Failed { attempts: 3, reason } if reason.contains("HTTP 502") && reason.contains("gave up")), "{d:?}");
    }

    #[tokio::test]
    async fn connection_errors_and_timeouts_are_retried_without_printing_the_url() {
        let r = Receiver::start().await.unwrap();
        let mut t = target_at(NotifierKind::Webhook, &format!("{}/secret-token-path", r.url()));
        t.client = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
        r.script([Reply::slow(200, Duration::from_millis(500))]);
        let c = Counters::default();
        let d = post(&t, &serde_json::json!({}), &policy(1), &c).await;
        assert_eq!(d, Delivery::Delivered { attempts: 2 }, "the slow answer timed out, the retry went through");
        drop(r);
        let d = post(&t, &serde_json::json!({}), &policy(1), &c).await;
        let Delivery::Failed { reason, .. } = d else { panic!("{d:?}") };
        assert!(!reason.contains("secret-token-path") && !reason.contains("127.0.0.1"), "{reason}");
    }
}
