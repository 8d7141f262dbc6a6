//! `kevents simulate`: N simulated clusters — test API servers it starts (speaking the
//! real Kubernetes wire format), or real kube-apiservers given by kubeconfig
//! (`--target real`) — printing how to reach them, driving the seeded failure
//! scenarios plus background noise at a chosen rate, with a progress line every second
//! and a summary at the end. On real servers Events are created and patched through
//! the API as the emitters do, and the summary says what rate the servers sustained and
//! how many requests were retried (429, 5xx, transport) or refused.

use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;
use testkit::sim::fleet::{Fleet, FleetOptions, FleetStats, RealCluster, Target};
use testkit::sim::scenarios::ScenarioKind;
use testkit::sim::WriterOptions;

/// Which API servers the simulated clusters run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ServerKind {
    /// Test API servers started by this command (fast: events go straight to the store).
    Test,
    /// Real kube-apiservers, one `--kubeconfig` per cluster (events go through the API).
    Real,
}

#[derive(clap::Args)]
pub struct Args {
    /// Number of simulated clusters (one API server each). Default: 3 test servers, or
    /// one per --kubeconfig with --target real.
    #[arg(long)]
    clusters: Option<usize>,
    /// Where the clusters run.
    #[arg(long, value_enum, default_value_t = ServerKind::Test)]
    target: ServerKind,
    /// With --target real: the kubeconfig of one cluster (repeat per cluster); the cluster
    /// is named after the file (`sim-1.kubeconfig` → sim-1).
    #[arg(long = "kubeconfig", value_name = "FILE")]
    kubeconfigs: Vec<PathBuf>,
    /// With --target real: requests in flight per cluster at most.
    #[arg(long, default_value_t = WriterOptions::default().lanes)]
    max_in_flight: usize,
    /// Target events per second over the whole fleet (creates + updates).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Scenarios to play, comma separated (default: every failure scenario).
    /// Names: healthy-rollout, image-pull-failure, crash-loop, … (see --list-scenarios).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<ScenarioKind>,
    /// Do not fill the rate with background noise.
    #[arg(long)]
    no_noise: bool,
    /// Seed: the same seed plays the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this long (e.g. 10s, 5m); default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Write one kubeconfig per cluster into this directory (`<cluster>.kubeconfig`;
    /// with --target real, copies of the given ones).
    #[arg(long)]
    kubeconfig_dir: Option<PathBuf>,
    /// List scenario names and exit.
    #[arg(long)]
    list_scenarios: bool,
    /// Write the chosen scenarios (seeded) as `kubectl get events -A -o json` output to
    /// FILE — core/v1 in FILE, events.k8s.io/v1 and the ground truth beside it — and
    /// exit without starting any cluster. Input for `kevents analyze`.
    #[arg(long, value_name = "FILE")]
    write_eventlist: Option<PathBuf>,
}

/// ", N retried" on real API servers once anything was retried.
fn retries(s: &FleetStats) -> String {
    let (retried, refused) = s
        .clusters
        .iter()
        .filter_map(|c| c.writes.as_ref())
        .fold((0, 0), |(r, x), w| (r + w.retries(), x + w.rejected));
    if retried + refused == 0 {
        String::new()
    } else {
        format!(", {retried} requests retried, {refused} refused")
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?} (e.g. 10s, 5m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

pub async fn run(args: Args, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    if args.list_scenarios {
        for k in ScenarioKind::ALL {
            println!("{}", k.name());
        }
        return Ok(());
    }
    if let Some(path) = &args.write_eventlist {
        let kinds = if args.scenarios.is_empty() { ScenarioKind::ALL.to_vec() } else { args.scenarios.clone() };
        let cluster = testkit::sim::ClusterCtx::new("sim-1", 5);
        let run = testkit::sim::generate_run(&kinds, args.seed, std::time::SystemTime::now(), &cluster, Duration::from_secs(30));
        let events = run.final_events();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let files = testkit::sim::write_eventlist(path, &events, &run.truth).context("writing the event list")?;
        println!(
            "{} events from {} scenario(s), {} incidents in the ground truth:\n  core/v1:          {}\n  events.k8s.io/v1: {}\n  ground truth:     {}",
            events.len(),
            kinds.len(),
            run.truth.incidents.len(),
            files.core_v1.display(),
            files.events_v1.display(),
            files.truth.display()
        );
        return Ok(());
    }
    let target = match args.target {
        ServerKind::Test => {
            anyhow::ensure!(args.kubeconfigs.is_empty(), "--kubeconfig needs --target real");
            Target::TestServers
        }
        ServerKind::Real => {
            anyhow::ensure!(!args.kubeconfigs.is_empty(), "--target real needs a --kubeconfig per cluster");
            Target::Real(
                args.kubeconfigs
                    .iter()
                    .map(|k| RealCluster {
                        name: k.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "sim".into()),
                        kubeconfig: k.clone(),
                    })
                    .collect(),
            )
        }
    };
    let clusters = args.clusters.unwrap_or(match &target {
        Target::Real(list) => list.len(),
        Target::TestServers => 3,
    });
    let opts = FleetOptions {
        clusters,
        target,
        writer: WriterOptions { lanes: args.max_in_flight, ..Default::default() },
        seed: args.seed,
        rate: args.rate,
        scenarios: args.scenarios.clone(),
        noise: !args.no_noise,
        duration: args.duration,
        ..Default::default()
    };
    let mut fleet = Fleet::start(opts).await.context("starting the simulated fleet")?;
    for c in fleet.clusters() {
        println!("cluster {} on a {} at {}", c.name, c.server_kind(), c.url());
        if let Some(dir) = &args.kubeconfig_dir {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{}.kubeconfig", c.name));
            c.write_kubeconfig(&path)?;
            println!("  kubeconfig: {}", path.display());
        }
    }
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0u64;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                let s = fleet.stats();
                eprintln!(
                    "[{:>5.1}s] applied {} events ({:.0}/s now, {:.0}/s average){}",
                    s.elapsed.as_secs_f64(), s.applied, (s.applied - last) as f64, s.achieved_rate, retries(&s)
                );
                last = s.applied;
                if let Some(d) = args.duration {
                    if s.elapsed >= d {
                        break;
                    }
                }
            }
        }
    }
    fleet.stop().await;
    let s = fleet.stats();
    println!(
        "done: {} events over {:.1}s = {:.0} events/s (target {:.0}/s) across {} clusters",
        s.applied,
        s.elapsed.as_secs_f64(),
        s.achieved_rate,
        args.rate,
        s.clusters.len()
    );
    for c in &s.clusters {
        println!("  {}: {} events ({} scenario, {} noise, {} scenarios started)", c.name, c.applied, c.scenario_events, c.noise_events, c.scenarios_started);
        if let Some(w) = &c.writes {
            println!(
                "    API writes: {} creates ({} after a patch found nothing), {} patches, {} deletes; retried {} (429: {}, 5xx: {}, transport: {}); refused {}, abandoned {}; {} namespaces created",
                w.creates, w.fallback_creates, w.patches, w.deletes, w.retries(), w.retried_throttled, w.retried_server_error,
                w.retried_transport, w.rejected, w.abandoned, w.namespaces_created
            );
        }
    }
    let truth = fleet.truth();
    let incidents: usize = truth.iter().map(|t| t.truth.incidents.len()).sum();
    println!("ground truth: {incidents} incidents");
    fleet.shutdown().await;
    Ok(())
}
