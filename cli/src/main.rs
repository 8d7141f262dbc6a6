//! `kevents`: the one user-facing binary. Each subcommand sets up logging, loads
//! its stage's config (YAML file, then `KEVENTS__SECTION__FIELD` env overrides) and
//! runs that stage until SIGTERM or Ctrl-C — the one shutdown signal every stage
//! receives as a future.

/// mimalloc rather than glibc malloc: the processor step allocates per record,
/// and glibc's malloc/free were a fifth of its time (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod analyze;
mod footprint;
mod query;
mod report;
#[cfg(feature = "simulate")]
mod simulate;

#[derive(Parser)]
#[command(
    name = "kevents",
    version,
    about = "Kubernetes Events of a whole fleet, classified, correlated and kept in ClickHouse.",
    long_about = "kevents turns the Kubernetes Events of a fleet of clusters into classified, \
                  correlated, long-lived data.\n\nData flows one way: collector (one per cluster) → \
                  Kafka → processor → Kafka → sink → ClickHouse.\n\nEvery stage reads a YAML config \
                  (--config) and lets environment variables override any field: \
                  KEVENTS__<SECTION>__<FIELD>=value, e.g. KEVENTS__KAFKA__BROKERS=kafka:9092."
)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info,kevents_collector=debug`.
    #[arg(long, global = true, env = "KEVENTS_LOG", default_value = "info")]
    log: String,
    /// Log as JSON lines (for log shippers) instead of human-readable text.
    #[arg(long, global = true, env = "KEVENTS_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch one cluster's Events and publish them to the raw Kafka topic.
    ///
    /// Resumes where it left off by reading its cursor back from the topic (no local
    /// state), handles 410 Gone and stale watches by relisting, supports Lease-based
    /// leader election for HA. Serves /healthz, /readyz and /metrics on `listen`.
    Collector {
        /// YAML config file (see deploy/config/collector.yaml for every field).
        #[arg(long, short, env = "KEVENTS_CONFIG")]
        config: Option<PathBuf>,
        /// Override `cluster.name`.
        #[arg(long)]
        cluster: Option<String>,
        /// Override `kubeconfig`.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Print the effective config (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Classify events, count occurrences and write the results to Kafka.
    ///
    /// Joins a consumer group on the raw topic (add members to scale out), restores its
    /// per-partition state by replaying the recent raw records, and emits processed
    /// events with deterministic ids, committing offsets only after the outputs are
    /// acknowledged. Serves /healthz, /readyz and /metrics on `listen`.
    Processor {
        /// YAML config file (see deploy/config/processor.yaml for every field).
        #[arg(long, short, env = "KEVENTS_CONFIG")]
        config: Option<PathBuf>,
        /// Print the effective config (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Load the processor's results into ClickHouse, exactly once.
    ///
    /// Applies the schema migrations at start-up, consumes the result topics in a
    /// consumer group, inserts in batches (RowBinary, LZ4), and commits offsets only
    /// after ClickHouse has the rows. Replays are dropped by the high-water marks stored
    /// with the rows. Serves /healthz, /readyz and /metrics on `listen`.
    Sink {
        /// YAML config file (see deploy/config/sink.yaml for every field).
        #[arg(long, short, env = "KEVENTS_CONFIG")]
        config: Option<PathBuf>,
        /// Print the effective config (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Accept applications' own events over HTTP (Event JSON, OTLP logs) into the raw topic.
    ///
    /// Bearer tokens from a file, each bound to clusters and namespaces, with a rate
    /// limit; a 2xx means stored in Kafka; a retry is stored once. Serves the API,
    /// /openapi.json, /healthz, /readyz and /metrics on `listen` (docs/ingest.md).
    Ingest {
        /// YAML config file (see docs/ingest.md for every field).
        #[arg(long, short, env = "KEVENTS_CONFIG")]
        config: Option<PathBuf>,
        /// Print the effective config (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Export processed events and incidents to an OTLP/HTTP endpoint (logs, optionally traces).
    ///
    /// Reads the result topics in its own consumer group, sends OTLP protobuf to
    /// `/v1/logs` (and `/v1/traces`), retries with backoff, dead-letters what the endpoint
    /// rejects for good, and commits only what the endpoint accepted: at least once, with
    /// stable ids. Serves /healthz, /readyz and /metrics on `listen` (docs/otlp-export.md).
    Export {
        /// YAML config file (see docs/otlp-export.md for every field).
        #[arg(long, short, env = "KEVENTS_CONFIG")]
        config: Option<PathBuf>,
        /// Print the effective config (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Send one event to a `kevents ingest` endpoint (for scripts); prints the stored event.
    Emit(EmitArgs),
    /// Apply the ClickHouse schema migrations and exit (the sink also does this at start).
    Migrate {
        /// The sink's YAML config file (its `clickhouse` section is used).
        #[arg(long, short, env = "KEVENTS_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Events, newest first, filtered (parameterized SQL; --explain shows it).
    Query(query::QueryArgs),
    /// Counts by cluster/namespace/kind/reason/category/severity, optionally per
    /// 1m/1h/1d; reads the rollups when it can (--explain says which table and why).
    Aggregate(query::AggregateArgs),
    /// Incidents (latest version each) with their root cause.
    Incidents(query::IncidentsArgs),
    /// Recurring patterns: per cluster (default), across the fleet (--fleet), or
    /// every episode of one key over days (--key).
    Patterns(query::PatternsArgs),
    /// Simulated clusters emitting realistic events: test API servers it starts, or real kube-apiservers by kubeconfig.
    #[cfg(feature = "simulate")]
    Simulate(simulate::Args),
    /// Analyze a `kubectl get events` dump with the processor's engine, in process:
    /// incidents with root causes, recurring patterns, counts by category/severity.
    ///
    /// Reads `kubectl get events -A -o json` or `-o yaml` (core/v1 or events.k8s.io/v1)
    /// or a watch stream (`kubectl get events -A -w -o json`); `-` reads stdin. Needs
    /// no Kafka or ClickHouse.
    Analyze(analyze::Args),
    /// One self-contained HTML file with the incident timelines (no network needed
    /// to open it): from a `kubectl` dump (analyzed in process) or from ClickHouse
    /// (`--since`, `--cluster`, `--namespace`, `--incident ID`).
    Report(report::Args),
}

/// `kevents emit`: one `events.k8s.io/v1` Event, posted with retries of the same body.
#[derive(clap::Args)]
struct EmitArgs {
    /// Base URL of the ingest stage.
    #[arg(long, env = "KEVENTS_INGEST_URL", default_value = "http://127.0.0.1:9480")]
    url: String,
    /// File holding the bearer token (a mounted Secret); or set KEVENTS_INGEST_TOKEN.
    #[arg(long, env = "KEVENTS_INGEST_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The cluster (optional when the token may write only one).
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long, short, default_value = "default")]
    namespace: String,
    /// The object the event is about, `Kind/name`, e.g. `Deployment/payment-gateway`.
    #[arg(long)]
    object: String,
    #[arg(long)]
    reason: String,
    /// The message (`note`, at most 1 kB).
    #[arg(long, default_value = "")]
    note: String,
    /// `Normal` or `Warning`.
    #[arg(long = "type", default_value = "Normal")]
    event_type: String,
    #[arg(long)]
    action: Option<String>,
    /// `reportingController`; default `kevents-emit`.
    #[arg(long)]
    controller: Option<String>,
    /// Your own id for the event; default derived from its content.
    #[arg(long)]
    uid: Option<String>,
    /// RFC 3339 time; default now.
    #[arg(long)]
    time: Option<String>,
    /// Attempts in all (503, 429 and connection errors are retried with the same body).
    #[arg(long, default_value_t = 5)]
    attempts: u32,
}

fn init_tracing(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Resolves on SIGTERM or Ctrl-C: the one shutdown signal of every stage.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_json);
    if let Command::Analyze(args) = cli.command {
        return analyze::run(args);
    }
    if matches!(cli.command, Command::Collector { .. } | Command::Processor { .. } | Command::Sink { .. }) {
        footprint::no_transparent_huge_pages();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        match cli.command {
            Command::Collector { config, cluster, kubeconfig, print_config } => {
                let mut cfg: collector::CollectorConfig = runtime::config::load(config.as_deref())
                    .context("loading the collector config")?;
                if let Some(c) = cluster {
                    cfg.cluster.name = c;
                }
                if kubeconfig.is_some() {
                    cfg.kubeconfig = kubeconfig;
                }
                if print_config {
                    cfg.validate().map_err(|e| anyhow::anyhow!("invalid collector config: {e}"))?;
                    println!("{cfg:#?}");
                    return Ok(());
                }
                collector::run(cfg, shutdown_signal()).await?;
                Ok(())
            }
            Command::Processor { config, print_config } => {
                let cfg: processor::ProcessorConfig =
                    runtime::config::load(config.as_deref()).context("loading the processor config")?;
                if print_config {
                    cfg.validate().map_err(|e| anyhow::anyhow!("invalid processor config: {e}"))?;
                    println!("{cfg:#?}");
                    return Ok(());
                }
                processor::run(cfg, shutdown_signal()).await?;
                Ok(())
            }
            Command::Sink { config, print_config } => {
                let cfg: sink::SinkConfig =
                    runtime::config::load(config.as_deref()).context("loading the sink config")?;
                if print_config {
                    cfg.validate().map_err(|e| anyhow::anyhow!("invalid sink config: {e}"))?;
                    println!("{cfg:#?}");
                    return Ok(());
                }
                sink::run(cfg, shutdown_signal()).await?;
                Ok(())
            }
            Command::Ingest { config, print_config } => {
                let cfg: ingest::IngestConfig =
                    runtime::config::load(config.as_deref()).context("loading the ingest config")?;
                if print_config {
                    cfg.validate().map_err(|e| anyhow::anyhow!("invalid ingest config: {e}"))?;
                    println!("{cfg:#?}");
                    return Ok(());
                }
                ingest::run(cfg, shutdown_signal()).await?;
                Ok(())
            }
            Command::Export { config, print_config } => {
                let cfg: export::ExportConfig =
                    runtime::config::load(config.as_deref()).context("loading the export config")?;
                if print_config {
                    cfg.validate().map_err(|e| anyhow::anyhow!("invalid export config: {e}"))?;
                    println!("{cfg:#?}");
                    return Ok(());
                }
                export::run(cfg, shutdown_signal()).await?;
                Ok(())
            }
            Command::Emit(a) => {
                let token = match (&a.token_file, std::env::var("KEVENTS_INGEST_TOKEN")) {
                    (Some(f), _) => std::fs::read_to_string(f).with_context(|| format!("reading the token file {}", f.display()))?.trim().to_string(),
                    (None, Ok(t)) => t,
                    (None, Err(_)) => anyhow::bail!("no token: pass --token-file or set KEVENTS_INGEST_TOKEN"),
                };
                let emit = ingest::emit::Emit {
                    url: a.url,
                    token: runtime::secret::Secret::new(token),
                    cluster: a.cluster,
                    namespace: a.namespace,
                    object: a.object,
                    reason: a.reason,
                    note: a.note,
                    event_type: a.event_type,
                    action: a.action,
                    reporting_controller: a.controller,
                    uid: a.uid,
                    event_time: a.time,
                    attempts: a.attempts,
                };
                let stored = emit.send().await?;
                println!("{}", serde_json::to_string_pretty(&stored)?);
                Ok(())
            }
            Command::Migrate { config } => {
                let cfg: sink::SinkConfig =
                    runtime::config::load(config.as_deref()).context("loading the sink config")?;
                let report = sink::migrate(&cfg).await?;
                println!(
                    "migrations: applied {:?}, already present {:?}, unknown to this binary {:?}",
                    report.applied, report.present, report.unknown
                );
                Ok(())
            }
            Command::Query(a) => query::run_query(a).await,
            Command::Aggregate(a) => query::run_aggregate(a).await,
            Command::Incidents(a) => query::run_incidents(a).await,
            Command::Patterns(a) => query::run_patterns(a).await,
            #[cfg(feature = "simulate")]
            Command::Simulate(args) => simulate::run(args, shutdown_signal()).await,
            Command::Report(args) => report::run(args).await,
            Command::Analyze(_) => unreachable!("analyze runs without a runtime"),
        }
    });
    // A stage that failed may leave a thread stuck in a call that ignores its own
    // timeout (a processor stalled inside librdkafka): its error is what counts, so
    // the exit does not wait for that thread the way dropping the runtime would.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}
