//! Processor members as child processes (the `processor-member` binary): start
//! one on a config file, read the ops address it prints, read its metrics, wait
//! for or stop it; and a guard that kills what is left when a test ends.

use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A member process, the ops address it printed, and where its log goes.
pub struct Member {
    pub child: Child,
    /// `host:port` of its ops endpoint.
    pub ops: String,
    _stdout: ChildStdout,
}

impl Member {
    /// Start a member; its log (stderr) goes to `log` when given, else to the test's stderr.
    pub fn spawn(config: &Path, log: Option<&Path>) -> Member {
        use std::io::BufRead;
        let stderr = match log {
            Some(p) => Stdio::from(std::fs::File::create(p).expect("member log file")),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_processor-member"))
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn processor-member");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let ops = line.trim().strip_prefix("ops ").map(str::to_string).unwrap_or_else(|| {
            let _ = child.wait();
            let log = log.map(|p| std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default();
            panic!("the member did not start (first line {line:?}); its log:\n{log}")
        });
        Member { child, ops, _stdout: out.into_inner() }
    }

    /// The sum of a metric's samples from its /metrics (0 when absent or unreachable).
    pub fn metric(&self, name: &str) -> f64 {
        metric(&self.ops, name)
    }

    /// Whether its /readyz answers 200.
    pub fn ready(&self) -> bool {
        testkit::services::http_request(&format!("http://{}", self.ops), "GET", "/readyz", "", Duration::from_secs(2)).is_ok_and(|(status, _)| status == 200)
    }

    /// Its exit status once it exited by itself within `within` (`None`: still running).
    pub fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -TERM");
        self.child.wait().unwrap()
    }
}

/// A metric's samples summed, from the /metrics of the ops endpoint at `addr`
/// (0 when absent or unreachable).
pub fn metric(addr: &str, name: &str) -> f64 {
    let body = testkit::services::http_request(&format!("http://{addr}"), "GET", "/metrics", "", Duration::from_secs(2))
        .map(|(_, b)| b)
        .unwrap_or_default();
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Kills every member still running when the test ends, pass or fail, so a
/// failed assertion leaves no orphan processes behind.
pub struct Members(pub Vec<Member>);

impl Drop for Members {
    fn drop(&mut self) {
        for m in &mut self.0 {
            if matches!(m.child.try_wait(), Ok(None)) {
                let _ = m.child.kill();
                let _ = m.child.wait();
            }
        }
    }
}
