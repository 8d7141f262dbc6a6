//! Child processes for the private services (start, SIGTERM, SIGKILL, reap), ports, log
//! tails, and a minimal blocking HTTP client (for /ping and best-effort clean-up in
//! `Drop`, where no async runtime can be assumed).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::ServicesError;

/// Is `pid` a live process (not a zombie)?
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => true,
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Does something accept TCP connections at `addr` (`host:port`)?
pub(crate) fn tcp_open(addr: &str) -> bool {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return false;
    };
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// The last `lines` lines of a log file, framed for an error message ("" if unreadable).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!(
        "\n---- last lines of {} ----\n{}\n----",
        path.display(),
        all[start..].join("\n")
    )
}

/// A service process we started, with its log file.
#[derive(Debug)]
pub(crate) struct ServiceProcess {
    what: String,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Spawn `command` with stdin closed and stdout/stderr appended to `log`. The child
    /// gets SIGKILL when the test process dies (even by SIGKILL, when `Drop` cannot run),
    /// so an aborted test run leaves no private brokers or servers behind.
    pub fn spawn(what: &str, mut command: Command, log: &Path) -> Result<Self, ServicesError> {
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child =
            spawn_from_long_lived_thread(command).map_err(|source| ServicesError::Spawn {
                what: what.to_owned(),
                source,
            })?;
        Ok(ServiceProcess {
            what: what.to_owned(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has ended (reaping it), `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// SIGKILL and reap: a crash, nothing flushed.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Send SIGTERM and return at once (`stop` then waits): to stop several
    /// processes together, such as a cluster's nodes, each of which waits for the others.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            // SAFETY: signalling our own child, not reaped yet (its pid is not reused).
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns how it ended.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: sending a signal to our own child, which we have not reaped yet, so
        // its pid cannot have been reused.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "testkit::services: {} ignored SIGTERM for {grace:?}; killing it",
            self.what
        );
        let _ = child.kill();
        child.wait().ok()
    }

    /// Poll `ready` until it is true; fail early if the process exits, or after `timeout`.
    pub fn wait_ready(
        &mut self,
        addr: &str,
        log: &Path,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<Duration, ServicesError> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(start.elapsed());
            }
            if let Some(status) = self.exited() {
                return Err(ServicesError::Exited {
                    what: self.what.clone(),
                    status,
                    log_tail: log_tail(log, 30),
                });
            }
            if start.elapsed() > timeout {
                self.kill9();
                return Err(ServicesError::NotReady {
                    what: self.what.clone(),
                    addr: addr.to_owned(),
                    waited: timeout,
                    log_tail: log_tail(log, 30),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the
/// process. Tests spawn from tokio workers or `spawn_blocking` threads that may end long
/// before the test does, so every child is forked by one thread that lives as long as
/// the process.
fn spawn_from_long_lived_thread(command: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawning the testkit-spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply_tx))
        .map_err(|_| std::io::Error::other("testkit-spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("testkit-spawner thread is gone"))?
}

/// Append a marker line to a service log, so restarts are visible in it.
pub(crate) fn log_marker(log: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "---- testkit: {line}");
    }
}

/// A blocking HTTP/1.0 request to `http://host:port/path`; returns (status, body).
/// Only for tiny control requests (ping, drop database, a stage's /readyz or /metrics):
/// no chunked encoding, no TLS.
pub fn http_request(
    base_url: &str,
    method: &str,
    path_and_query: &str,
    body: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let host = base_url
        .strip_prefix("http://")
        .unwrap_or(base_url)
        .trim_end_matches('/');
    let addr: SocketAddr = host.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path_and_query} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line")
        })?;
    Ok((status, body.to_owned()))
}

/// Create (truncate) a file, for fresh logs.
pub(crate) fn touch(path: &Path) -> std::io::Result<()> {
    File::create(path).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_is_alive_and_bogus_pid_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(i32::MAX as u32));
    }

    #[test]
    fn free_port_is_not_listening() {
        let port = free_port().unwrap();
        assert!(!tcp_open(&format!("127.0.0.1:{port}")));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(tcp_open(&format!("127.0.0.1:{port}")));
        drop(listener);
    }

    #[test]
    fn process_that_exits_early_reports_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom-from-child; exit 3"]);
        let mut p = ServiceProcess::spawn("sh", cmd, &log).unwrap();
        let err = p
            .wait_ready("nowhere", &log, Duration::from_secs(10), || false)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exited during start-up"), "{text}");
        assert!(text.contains("boom-from-child"), "{text}");
    }

    #[test]
    fn children_spawned_from_short_lived_threads_survive_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let log2 = log.clone();
        // The spawning thread ends at once; PDEATHSIG must not kill the child with it.
        let mut p = std::thread::spawn(move || {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            ServiceProcess::spawn("sleep", cmd, &log2).unwrap()
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(p.is_running());
        assert!(pid_alive(p.pid().unwrap()));
        p.kill9();
        assert!(!p.is_running());
    }

    #[test]
    fn stop_sends_sigterm_then_kill() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        // Ignores TERM: stop must fall back to KILL after the grace period.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; while :; do sleep 0.05; done"]);
        let mut p = ServiceProcess::spawn("stubborn", cmd, &log).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let status = p.stop(Duration::from_millis(300)).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(!p.is_running());
    }
}
