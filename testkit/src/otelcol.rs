//! A real OpenTelemetry Collector for the export tests: the binary
//! `scripts/install-deps` builds with the OpenTelemetry Collector Builder from
//! `tools/otelcol-sink/otelcol-builder.yaml` (OTLP receiver → file exporter), run
//! as a child of the test process on a free port, writing what it receives as
//! OTLP-JSON lines to a logs file and a traces file in a temporary directory.
//!
//! Where the binary is: `$KEVENTS_OTELCOL_SINK`, else
//! `$KEVENTS_CACHE/otelcol-sink-<version>/otelcol-kevents-sink` (the cache defaults
//! to `~/.cache/kevents`, as in scripts/lib/common.sh). When it is missing
//! [`OtelCollector::start`] panics saying how to build it: a test that needs it
//! never skips silently.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::services::process::{free_port, tcp_open, ServiceProcess};

/// The release `scripts/lib/otelcol_sink_build.sh` builds (`OTELCOL_SINK_VERSION`).
pub const OTELCOL_SINK_VERSION: &str = "0.145.0";

/// Where the Collector binary is expected.
pub fn binary_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KEVENTS_OTELCOL_SINK") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("KEVENTS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kevents")))
        .unwrap_or_else(|| PathBuf::from("/tmp/kevents-cache"));
    cache.join(format!("otelcol-sink-{OTELCOL_SINK_VERSION}/otelcol-kevents-sink"))
}

/// A running Collector; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct OtelCollector {
    port: u16,
    tls: bool,
    dir: tempfile::TempDir,
    process: ServiceProcess,
}

impl OtelCollector {
    /// Start the Collector with an OTLP/HTTP receiver on 127.0.0.1 and wait until
    /// it accepts connections. Panics when the binary is missing or it does not
    /// come up within a minute (with its log).
    pub fn start() -> OtelCollector {
        Self::start_with(None)
    }

    /// The same, serving HTTPS with this certificate and key (PEM files); the
    /// shared broker's test CA signed one for 127.0.0.1 ([`crate::services::SaslListener`]'s
    /// directory holds `broker.crt` and `broker.pk8`).
    pub fn start_tls(cert: &Path, key: &Path) -> OtelCollector {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> OtelCollector {
        let bin = binary_path();
        assert!(
            bin.is_file(),
            "the OpenTelemetry Collector for the export tests is missing at {}: build it with \
             `scripts/install-deps --only otelcol` (OpenTelemetry Collector Builder, about 2-15 minutes once per machine), \
             or point KEVENTS_OTELCOL_SINK at an otelcol binary with the otlp receiver and the file exporter",
            bin.display()
        );
        let dir = tempfile::Builder::new().prefix("kevents-otelcol-").tempdir().expect("a temporary directory");
        let port = free_port().expect("a free port");
        let config = format!(
            r#"receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}{tls}
exporters:
  file/logs:
    path: {logs}
    flush_interval: 100ms
  file/traces:
    path: {traces}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file/logs]
    traces:
      receivers: [otlp]
      exporters: [file/traces]
"#,
            tls = tls.map_or(String::new(), |(c, k)| format!("\n        tls:\n          cert_file: {}\n          key_file: {}", c.display(), k.display())),
            logs = dir.path().join("logs.jsonl").display(),
            traces = dir.path().join("traces.jsonl").display(),
        );
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).expect("writing the Collector config");
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config={}", config_path.display()));
        let log = dir.path().join("otelcol.log");
        let mut process = ServiceProcess::spawn("the OpenTelemetry Collector", cmd, &log).unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let started = Instant::now();
        while !tcp_open(&format!("127.0.0.1:{port}")) {
            assert!(process.is_running(), "the OpenTelemetry Collector exited at start:{}", crate::services::process::log_tail(&log, 30));
            assert!(started.elapsed() < Duration::from_secs(60), "the OpenTelemetry Collector did not listen within 60 s:{}", crate::services::process::log_tail(&log, 30));
            std::thread::sleep(Duration::from_millis(50));
        }
        OtelCollector { port, tls: tls.is_some(), dir, process }
    }

    /// The OTLP/HTTP base URL (`/v1/logs`, `/v1/traces` are appended by senders).
    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls { "https" } else { "http" }, self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Every log record received so far, each with its resource's attributes
    /// merged in under `"resource"` (OTLP-JSON, as the file exporter writes it).
    pub fn log_records(&self) -> Vec<Value> {
        flatten(&self.dir.path().join("logs.jsonl"), "resourceLogs", "scopeLogs", "logRecords")
    }

    /// Every span received so far, with `"resource"` as above.
    pub fn spans(&self) -> Vec<Value> {
        flatten(&self.dir.path().join("traces.jsonl"), "resourceSpans", "scopeSpans", "spans")
    }
}

/// The records of every complete line of an OTLP-JSON lines file (a line still
/// being written is skipped: it is read on the next call).
fn flatten(path: &Path, resources: &str, scopes: &str, records: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        for r in v[resources].as_array().into_iter().flatten() {
            let resource = r["resource"]["attributes"].clone();
            for s in r[scopes].as_array().into_iter().flatten() {
                for rec in s[records].as_array().into_iter().flatten() {
                    let mut rec = rec.clone();
                    rec["resource"] = resource.clone();
                    out.push(rec);
                }
            }
        }
    }
    out
}

/// The string value of attribute `key` in an OTLP-JSON attribute list
/// (`[{"key": …, "value": {"stringValue": …}}]`).
pub fn attr<'a>(attributes: &'a Value, key: &str) -> Option<&'a str> {
    attributes.as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}
