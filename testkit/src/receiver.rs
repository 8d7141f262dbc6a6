//! A local HTTP receiver standing in for the outside world alerts go to: a generic
//! webhook, a Slack incoming webhook, or Alertmanager's `POST /api/v2/alerts`. It
//! records every request (method, path, headers, body — parsed as JSON when it is
//! JSON) and answers what the test asks for: 200 by default, a scripted sequence of
//! answers (e.g. 500 twice, then 200) to test retries, a default answer for "down"
//! (e.g. 503 to every request), and an optional delay to test slow receivers.
//!
//! Requests are recorded when they arrive, together with the status they were (or
//! will be) answered with, so a test can count deliveries (2xx answers) apart from
//! attempts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to answer one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, delay: Duration::ZERO }
    }

    pub fn slow(status: u16, delay: Duration) -> Reply {
        Reply { status, delay }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, e.g. `/api/v2/alerts`.
    pub path: String,
    /// Header names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub json: Value,
    pub body: Vec<u8>,
    /// What the receiver answered (or is about to answer).
    pub status: u16,
    pub at: Instant,
}

impl Received {
    /// Answered 2xx: a delivery, not just an attempt.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Inner {
    requests: Vec<Received>,
    /// Answers for the next requests, in order; then `default`.
    script: VecDeque<Reply>,
    default: Reply,
}

type Shared = Arc<Mutex<Inner>>;

/// A running receiver on a loopback port. Dropping it stops the server.
pub struct Receiver {
    addr: SocketAddr,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

async fn handle(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let reply = {
        let mut st = s.lock().unwrap();
        let reply = st.script.pop_front().unwrap_or(st.default);
        st.requests.push(Received {
            method: method.to_string(),
            path: uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| uri.path().to_string()),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            body: body.to_vec(),
            status: reply.status,
            at: Instant::now(),
        });
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Slack answers `ok`; Alertmanager and most webhooks ignore the body.
    (status, if status.is_success() { "ok" } else { "error" })
}

impl Receiver {
    /// Start on a free loopback port, answering 200 to everything.
    pub async fn start() -> std::io::Result<Receiver> {
        let inner: Shared = Arc::new(Mutex::new(Inner { requests: Vec::new(), script: VecDeque::new(), default: Reply::status(200) }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, inner, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer the next requests with these replies, in order (after any already
    /// scripted), then with the default again.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// The answer to every request without a scripted reply (e.g. 503: "down").
    pub fn set_default(&self, reply: Reply) {
        self.inner.lock().unwrap().default = reply;
    }

    /// Every request so far, attempts included, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.inner.lock().unwrap().requests.iter().filter(|r| r.accepted()).cloned().collect()
    }

    /// Wait until `done(requests)` holds, polling every 20 ms; false on timeout.
    pub async fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.inner.lock().unwrap().requests) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(url: &str, body: &str) -> u16 {
        let (_, addr) = url.split_once("//").unwrap();
        let (host, path) = addr.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((addr, "/".into()));
        let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\nx-test: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out[9..12].parse().unwrap()
    }

    #[tokio::test]
    async fn records_requests_and_follows_the_script() {
        let r = Receiver::start().await.unwrap();
        r.script([Reply::status(500), Reply::status(429)]);
        assert_eq!(post(&format!("{}/api/v2/alerts", r.url()), r#"[{"labels":{"a":"b"}}]"#).await, 500);
        assert_eq!(post(&format!("{}/hook", r.url()), "not json").await, 429);
        assert_eq!(post(&format!("{}/hook", r.url()), r#"{"x":1}"#).await, 200);
        r.set_default(Reply::status(503));
        assert_eq!(post(&format!("{}/hook", r.url()), "{}").await, 503);
        let reqs = r.requests();
        assert_eq!(reqs.len(), 4);
        assert_eq!(reqs[0].path, "/api/v2/alerts");
        assert_eq!(reqs[0].json[0]["labels"]["a"], "b");
        assert_eq!(reqs[0].header("X-Test"), Some("1"));
        assert_eq!(reqs[1].json, Value::Null);
        assert_eq!(reqs[1].body, b"not json");
        assert_eq!(r.accepted().len(), 1);
        assert_eq!(r.accepted()[0].json["x"], 1);
        assert!(r.wait_until(Duration::from_secs(1), |q| q.len() == 4).await);
        assert!(!r.wait_until(Duration::from_millis(50), |q| q.len() == 5).await);
    }
}
