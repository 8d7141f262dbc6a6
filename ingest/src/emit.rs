//! The client side, for scripts: `kevents emit` builds one `events.k8s.io/v1`
//! Event and posts it to an ingest endpoint, retrying what may be retried (503,
//! 429 after its `Retry-After`, a connection that failed) with the same body, so a
//! retry is the same event and is stored once.

use serde_json::json;
use std::time::Duration;

/// One event to send, and where.
#[derive(Debug, Clone)]
pub struct Emit {
    /// Base URL of the ingest stage, e.g. `http://127.0.0.1:9480`.
    pub url: String,
    pub token: runtime::secret::Secret,
    pub cluster: Option<String>,
    pub namespace: String,
    /// `Kind/name` of the object the event is about, e.g. `Deployment/payment-gateway`.
    pub object: String,
    pub reason: String,
    pub note: String,
    /// `Normal` or `Warning`.
    pub event_type: String,
    pub action: Option<String>,
    pub reporting_controller: Option<String>,
    /// Your own id for the event (`metadata.uid`); default: derived from the content.
    pub uid: Option<String>,
    /// RFC 3339; default now.
    pub event_time: Option<String>,
    /// Attempts in all, at least 1.
    pub attempts: u32,
}

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("--object must be Kind/name, e.g. Deployment/payment-gateway")]
    Object,
    #[error("{status}: {body}")]
    Refused { status: u16, body: String },
    #[error("{0}")]
    Http(#[from] reqwest::Error),
}

impl Emit {
    /// The Event JSON this sends.
    pub fn body(&self) -> Result<serde_json::Value, EmitError> {
        let (kind, name) = self.object.split_once('/').filter(|(k, n)| !k.is_empty() && !n.is_empty()).ok_or(EmitError::Object)?;
        let time = self.event_time.clone().unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        let mut metadata = json!({"namespace": self.namespace});
        if let Some(uid) = &self.uid {
            metadata["uid"] = uid.clone().into();
        }
        let mut ev = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": metadata,
            "eventTime": time,
            "type": self.event_type,
            "reason": self.reason,
            "note": self.note,
            "regarding": {"kind": kind, "name": name, "namespace": self.namespace},
            "reportingController": self.reporting_controller.clone().unwrap_or_else(|| "kevents-emit".into()),
            "reportingInstance": std::env::var("HOSTNAME").unwrap_or_default(),
        });
        if let Some(a) = &self.action {
            ev["action"] = a.clone().into();
        }
        Ok(ev)
    }

    /// Post the event; the server's JSON answer on success.
    pub async fn send(&self) -> Result<serde_json::Value, EmitError> {
        let body = self.body()?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let mut url = format!("{}/v1/events", self.url.trim_end_matches('/'));
        if let Some(c) = &self.cluster {
            url.push_str("?cluster=");
            url.push_str(&encode(c));
        }
        let mut delay = Duration::from_millis(500);
        let attempts = self.attempts.max(1);
        for attempt in 1..=attempts {
            let last = attempt == attempts;
            let resp = client.post(&url).bearer_auth(self.token.expose()).json(&body).send().await;
            match resp {
                Ok(r) if r.status().is_success() => return Ok(r.json().await?),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    let text = r.text().await.unwrap_or_default();
                    if last || !matches!(status, 429 | 502 | 503 | 504) {
                        return Err(EmitError::Refused { status, body: text });
                    }
                    tokio::time::sleep(retry_after.map(Duration::from_secs).unwrap_or(delay)).await;
                }
                Err(e) if last || !(e.is_connect() || e.is_timeout()) => return Err(e.into()),
                Err(_) => tokio::time::sleep(delay).await,
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        unreachable!("the last attempt returns")
    }
}

/// Percent-encoding of a query value (cluster names are DNS-like; this covers the rest).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_an_event_the_api_reads() {
        let e = Emit {
            url: "http://x".into(),
            token: runtime::secret::Secret::new("t"),
            cluster: Some("prod eu".into()),
            namespace: "pay".into(),
            object: "Deployment/payment-gateway".into(),
            reason: "FailoverStarted".into(),
            note: "failover".into(),
            event_type: "Normal".into(),
            action: Some("Failover".into()),
            reporting_controller: None,
            uid: None,
            event_time: None,
            attempts: 1,
        };
        let body = e.body().unwrap().to_string();
        let parsed = crate::events::parse(body.as_bytes(), &Default::default()).unwrap();
        assert_eq!(parsed[0].event.regarding.name, "payment-gateway");
        assert_eq!(encode("prod eu"), "prod%20eu");
        assert!(matches!(Emit { object: "nope".into(), ..e }.body(), Err(EmitError::Object)));
    }
}
