//! Collector bench (a bench command, not a timed test):
//!
//! `cargo bench -p kevents --bench collector [-- --events N --soak-secs S --soak-rate R]`
//!
//! 1. Throughput: a collector (the real `kevents` binary) watches a test API server;
//!    N events are written to the server as fast as it takes them; measured from the
//!    first write to the moment Kafka has acknowledged all N (the collector's own
//!    `records_published_total` metric). Baseline in the same run: the same N writes
//!    with a bare kube-rs watch that only counts (watch + decode cost, no Kafka), so
//!    the ratio says what publishing costs. Median of 3.
//! 2. Soak: R events/s for S seconds (default 5,000/s for 300 s); the collector's RSS
//!    sampled every second from /proc; prints median and max, then waits (at most
//!    120 s) until Kafka acknowledged every event written and prints what is missing.
//!    `--broker-stop-secs D` stops the broker for D seconds in the middle of the soak
//!    (SIGTERM, then a start on the same data): the watch must pause without memory
//!    growing past the in-flight budget, and lose nothing.
//!
//! 3. `--instructions N` (before the rest): the collector's instructions per event under
//!    callgrind, from a run of N and one of 2N events (the difference over N).
//!
//! `--throughput-rounds 0` skips part 1; env `KEVENTS_BENCH_BIN` runs another copy of
//! the `kevents` binary (e.g. one saved before a change). Uses a private Apache Kafka broker (testkit
//! `OwnedBroker`, durable log on disk).

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, WatchEvent, WatchParams};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::apiserver::{ApiServer, ServerOptions, Store};
use testkit::services::{free_port, http_request, OwnedBroker};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(i: u64) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(format!("web-{}.{i:x}", i % 1000)),
            namespace: Some(format!("ns-{}", i % 20)),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some(format!("web-{}", i % 1000)),
            namespace: Some(format!("ns-{}", i % 20)),
            field_path: Some("spec.containers{app}".into()),
            ..Default::default()
        },
        reason: Some("BackOff".into()),
        message: Some(format!("Back-off restarting failed container app in pod web-{}_ns(uid)", i % 1000)),
        type_: Some("Warning".into()),
        count: Some(1),
        ..Default::default()
    }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_request(&format!("http://127.0.0.1:{port}"), "GET", path, "", Duration::from_secs(5)).ok()
}

/// Watch events acknowledged by Kafka, from the collector's metrics.
fn published(port: u16) -> u64 {
    http_get(port, "/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("kevents_collector_records_published_total") && !l.contains("HEARTBEAT"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One line of `/proc/PID/status`, KiB.
fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// RSS, and its anonymous (heap, stacks) and file-backed (the binary's pages) parts, MiB.
#[derive(Clone, Copy, Default)]
struct Rss {
    total: f64,
    anon: f64,
    file: f64,
}

fn rss(pid: u32) -> Rss {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mib = |f: &str| status_kib(&s, f) as f64 / 1024.0;
    Rss { total: mib("VmRSS:"), anon: mib("RssAnon:"), file: mib("RssFile:") }
}


struct Collector {
    child: Child,
    port: u16,
}

impl Drop for Collector {
    /// SIGTERM (a graceful stop: the allocator's exit statistics with
    /// `MIMALLOC_SHOW_STATS=1`), SIGKILL after 20 s.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_collector(dir: &Path, server: &ApiServer, brokers: &str, topic: &str) -> Collector {
    start_collector_with(dir, server, brokers, topic, &[])
}

/// `start_collector` with `wrapper` in front of the binary (e.g. valgrind and its options).
fn start_collector_with(dir: &Path, server: &ApiServer, brokers: &str, topic: &str, wrapper: &[String]) -> Collector {
    let kc = dir.join("kubeconfig");
    server.write_kubeconfig(&kc, "bench").unwrap();
    let port = free_port().unwrap();
    let cfg = dir.join("collector.yaml");
    std::fs::write(
        &cfg,
        format!(
            "cluster: {{name: bench}}\nkubeconfig: {}\nkafka: {{brokers: \"{brokers}\"}}\ntopic: {topic}\nlisten: 127.0.0.1:{port}\n",
            kc.display()
        ),
    )
    .unwrap();
    // KEVENTS_BENCH_BIN: a copy of the binary to measure (the target dir may be shared).
    let bin = std::env::var("KEVENTS_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kevents").into());
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let child = command
        .args(["collector", "--config"])
        .arg(&cfg)
        .env("KEVENTS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(if wrapper.is_empty() { 60 } else { 300 });
    while !matches!(http_get(port, "/readyz"), Some((200, _))) {
        assert!(Instant::now() < deadline, "collector not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    Collector { child, port }
}

async fn new_server() -> ApiServer {
    ApiServer::start(ServerOptions { compaction_window: 2_000_000, watch_buffer: 200_000, ..Default::default() })
        .await
        .unwrap()
}

/// Write `n` events as fast as the store takes them.
fn write_burst(store: &Store, from: u64, n: u64) {
    for i in from..from + n {
        store.apply(event(i));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn baseline_watch(n: u64) -> f64 {
    let server = new_server().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc, "bench").unwrap();
    let config = kube::Config::from_custom_kubeconfig(kube::config::Kubeconfig::read_from(&kc).unwrap(), &Default::default())
        .await
        .unwrap();
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::all(kube::Client::try_from(config).unwrap());
    let rv = server.store().current_rv().to_string();
    let mut stream = api.watch(&WatchParams::default().timeout(290), &rv).await.unwrap().boxed();
    let store = server.store();
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || write_burst(&store, 0, n));
    let mut got = 0;
    while got < n {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(_))) => got += 1,
            Some(Ok(_)) => {}
            other => panic!("baseline watch ended: {other:?}"),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    writer.join().unwrap();
    n as f64 / secs
}

/// Instructions the collector executes per event, under callgrind (`valgrind` is on
/// the machine): the collector's whole run for `n` and for `2n` events, the
/// difference divided by `n`, so start-up and shutdown cancel out. Instructions do not
/// move with the machine's load, unlike rates.
async fn instructions_per_event(n: u64, brokers: &str, broker: &OwnedBroker) -> f64 {
    let mut totals = Vec::new();
    for (round, events) in [n, 2 * n].into_iter().enumerate() {
        let server = new_server().await;
        let topics = broker.create_topics(&format!("bench-cg-{round}"), &[("raw", 1)]).await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("callgrind.log");
        let wrapper = [
            "valgrind".to_string(),
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}", dir.path().join("callgrind.out").display()),
            format!("--log-file={}", log.display()),
        ];
        let c = start_collector_with(dir.path(), &server, brokers, topics.name("raw"), &wrapper);
        write_burst(&server.store(), 0, events);
        while published(c.port) < events {
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(c); // SIGTERM: the collector stops and callgrind writes its totals
        let text = std::fs::read_to_string(&log).expect("callgrind log");
        let total: f64 = text
            .lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no total in the callgrind log:\n{text}"));
        println!("  callgrind: {events} events, {total:.0} instructions in all");
        totals.push(total);
    }
    (totals[1] - totals[0]) / n as f64
}

async fn collector_throughput(n: u64, brokers: &str, broker: &OwnedBroker, round: u32) -> f64 {
    let server = new_server().await;
    let topics = broker.create_topics(&format!("bench-{round}"), &[("raw", 1)]).await;
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), &server, brokers, topics.name("raw"));
    let store = server.store();
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || write_burst(&store, 0, n));
    while published(c.port) < n {
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = t0.elapsed().as_secs_f64();
    writer.join().unwrap();
    n as f64 / secs
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for benchmark names
    }
    let n = arg("--events", 100_000);
    let soak_secs = arg("--soak-secs", 300);
    let soak_rate = arg("--soak-rate", 5_000);
    let rounds = arg("--throughput-rounds", 3);
    let broker_stop_secs = arg("--broker-stop-secs", 0);
    let instructions = arg("--instructions", 0);
    let mut broker = OwnedBroker::spawn().expect("private broker");
    let brokers = broker.bootstrap();
    if instructions > 0 {
        let per_event = instructions_per_event(instructions, &brokers, &broker).await;
        println!("instructions per event (callgrind, {instructions} vs {} events): {per_event:.0}", 2 * instructions);
    }

    let mut base = Vec::new();
    let mut ours = Vec::new();
    for round in 0..rounds as u32 {
        base.push(baseline_watch(n).await);
        ours.push(collector_throughput(n, &brokers, &broker, round).await);
        println!("round {round}: bare watch {:.0} ev/s, collector watch→Kafka ack {:.0} ev/s", base[round as usize], ours[round as usize]);
    }
    if rounds > 0 {
        let (b, o) = (median(base), median(ours));
        println!("throughput ({n} events, median of {rounds}): collector {o:.0} ev/s; bare kube-rs watch {b:.0} ev/s; ratio {:.2}", o / b);
    }

    if soak_secs == 0 {
        return;
    }
    let server = new_server().await;
    let topics = broker.create_topics("bench-soak", &[("raw", 1)]).await;
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), &server, &brokers, topics.name("raw"));
    let pid = c.child.id();
    let store = server.store();
    // The broker outage, in the middle of the soak, on its own thread (stop and start block).
    // (`if`, not `bool::then`: a closure would take the broker along and drop it.)
    let outage = if broker_stop_secs > 0 {
        let at = Duration::from_secs(soak_secs.saturating_sub(broker_stop_secs) / 2);
        Some(std::thread::spawn(move || {
            std::thread::sleep(at);
            println!("  broker stopped at {at:?}");
            broker.stop();
            std::thread::sleep(Duration::from_secs(broker_stop_secs));
            let took = broker.start().expect("broker restart");
            println!("  broker back after {broker_stop_secs} s (+{took:.1?} to start)");
            broker
        }))
    } else {
        None
    };
    let mut samples = Vec::new();
    let mut written = 0u64;
    let t0 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = soak_rate / 100;
    let mut next_sample = Duration::from_secs(1);
    while t0.elapsed() < Duration::from_secs(soak_secs) {
        tick.tick().await;
        write_burst(&store, written, per_tick);
        written += per_tick;
        if t0.elapsed() >= next_sample {
            samples.push(rss(pid));
            next_sample += Duration::from_secs(1);
            if samples.len() % 30 == 0 {
                let r = samples.last().unwrap();
                println!("  soak {:>4}s: RSS {:.1} MiB (anon {:.1}, file {:.1}), published {} of {written}", samples.len(), r.total, r.anon, r.file, published(c.port));
            }
        }
    }
    let lag = written.saturating_sub(published(c.port));
    // Nothing lost: wait for Kafka to acknowledge the backlog, sampling RSS meanwhile.
    let _broker = outage.map(|t| t.join().expect("outage thread"));
    let soaked = samples.len();
    let drain = Instant::now();
    while published(c.port) < written && drain.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(rss(pid));
    }
    let acked = published(c.port);
    // Steady state: skip the first 30 s of warm-up.
    let steady: Vec<Rss> = samples[..soaked].iter().skip(30).copied().collect();
    let steady = if steady.is_empty() { samples.clone() } else { steady };
    let med = |f: fn(&Rss) -> f64| median(steady.iter().map(f).collect());
    let max = |f: fn(&Rss) -> f64| samples.iter().map(f).fold(0.0, f64::max);
    println!(
        "soak {soak_rate} ev/s for {soak_secs} s (broker stopped {broker_stop_secs} s): RSS median {:.1} MiB (steady, after 30 s; anon {:.1}, file {:.1}), max {:.1} MiB (anon {:.1}); {written} written, {lag} not yet acknowledged when writing stopped, {} missing after {:.0?} more ({acked} acknowledged)",
        med(|r| r.total),
        med(|r| r.anon),
        med(|r| r.file),
        max(|r| r.total),
        max(|r| r.anon),
        written.saturating_sub(acked),
        drain.elapsed(),
    );
}
