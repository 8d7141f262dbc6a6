//! `kevents report`: one self-contained HTML file with the incident timelines,
//! from a `kubectl` dump (through the analyze engine, no infrastructure) or
//! from ClickHouse (a window of the fleet, or one incident).
//!
//! Layout:
//! - [`model`]: the report's data, whatever its source, and its compact JSON.
//! - [`lanes`]: an incident's timeline lanes, grouped by owner chain.
//! - [`from_analysis`] / [`from_store`]: the two sources.
//! - [`html`]: the file (assets/: the page skeleton, styles and renderer).

mod from_analysis;
mod from_store;
mod html;
mod lanes;
mod model;

use crate::query::ConnArgs;
use anyhow::Context;
use kevents_query::ReportFilter;
use std::path::PathBuf;

/// `kevents report [FILE] [-o OUT] [--since D] [--cluster C] [--namespace N] [--incident ID]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `kubectl get events -A -o json|yaml` dump or watch stream (`-`: stdin),
    /// analyzed in process like `kevents analyze`. Without it, the report reads ClickHouse.
    pub file: Option<PathBuf>,
    /// The HTML file to write.
    #[arg(long = "out", short = 'o', default_value = "kevents-report.html")]
    pub out: PathBuf,
    /// The page's title (default: what the report covers).
    #[arg(long)]
    pub title: Option<String>,
    /// With FILE: rule files on top of the built-in rules (as for `kevents analyze`).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// With FILE: the cluster name to show. From ClickHouse: only these clusters.
    #[arg(long = "cluster", value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// Only these namespaces (events; incidents by their root cause's namespace).
    #[arg(long = "namespace", short = 'n', value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Only this incident and its events (the id `kevents incidents` prints).
    #[arg(long)]
    pub incident: Option<String>,
    /// From ClickHouse: the last D (30m, 6h, 1d, 1w). Default 1d, or all time with --incident.
    #[arg(long)]
    pub since: Option<String>,
    /// From ClickHouse: at most this many events (the earliest of the window).
    #[arg(long, default_value_t = 200_000)]
    pub max_events: u64,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let input = match &args.file {
        Some(file) => dump_input(&args, file)?,
        None => store_input(&args).await?,
    };
    let counts = (input.events.len(), input.incidents.len(), input.patterns.len());
    let page = html::render(&model::build(input))?;
    std::fs::write(&args.out, &page).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {} events, {} incidents, {} pattern episodes, {:.2} MB",
        args.out.display(),
        counts.0,
        counts.1,
        counts.2,
        page.len() as f64 / 1_048_576.0
    );
    Ok(())
}

/// Keeps what the namespace and incident flags ask for.
fn restrict(input: &mut model::Input, namespaces: &[String], incident: Option<&str>) {
    if !namespaces.is_empty() {
        input.events.retain(|e| namespaces.contains(&e.namespace));
        let kept: std::collections::HashSet<&str> = input.events.iter().map(|e| e.uid.as_str()).collect();
        input.incidents.retain(|i| kept.contains(i.root_uid.as_str()));
        input.patterns.retain(|p| namespaces.contains(&p.namespace));
    }
    if let Some(id) = incident {
        input.incidents.retain(|i| i.id == id);
        input.events.retain(|e| e.incident == id);
        input.patterns.clear();
    }
}

/// The dump's text and how to name it (`-`: standard input).
fn read(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    use std::io::Read;
    if path == std::path::Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
        return Ok(("standard input".into(), s));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

fn dump_input(args: &Args, file: &std::path::Path) -> anyhow::Result<model::Input> {
    let cluster = args.clusters.first().map(String::as_str).unwrap_or("kubectl");
    let (source, text) = read(file)?;
    let engine = crate::analyze::engine(&args.rules)?;
    let (shape, events) = crate::analyze::parse(&text).with_context(|| format!("reading {source}"))?;
    let analysis = crate::analyze::analyze(&engine, cluster, shape, events, source.clone());
    let title = args.title.clone().unwrap_or_else(|| format!("kevents report: {source}"));
    let mut input = from_analysis::input(&analysis, title);
    restrict(&mut input, &args.namespaces, args.incident.as_deref());
    if let Some(id) = &args.incident {
        anyhow::ensure!(!input.incidents.is_empty(), "no incident {id} in {source} (kevents analyze lists them)");
    }
    Ok(input)
}

async fn store_input(args: &Args) -> anyhow::Result<model::Input> {
    let since = args.since.clone().or_else(|| args.incident.is_none().then(|| "1d".to_string()));
    let from_ms = since.as_deref().map(kevents_query::parse_duration).transpose()?.map(|d| kevents_query::now_ms() - d.as_millis() as i64);
    let f = ReportFilter {
        from_ms,
        to_ms: None,
        clusters: args.clusters.clone(),
        namespaces: args.namespaces.clone(),
        incident: args.incident.clone(),
        limit: args.max_events,
    };
    let store = crate::query::store(&args.conn)?;
    let mut what = match &args.incident {
        Some(id) => format!("incident {id}"),
        None => format!("the last {}", since.as_deref().unwrap_or("1d")),
    };
    if !args.clusters.is_empty() {
        what += &format!(", clusters {}", args.clusters.join(", "));
    }
    if !args.namespaces.is_empty() {
        what += &format!(", namespaces {}", args.namespaces.join(", "));
    }
    let title = args.title.clone().unwrap_or_else(|| format!("kevents report: {what}"));
    let input = from_store::input(&store, &f, title, format!("ClickHouse, {what}")).await?;
    if let Some(id) = &args.incident {
        anyhow::ensure!(!input.incidents.is_empty(), "no incident {id} in ClickHouse");
    }
    Ok(input)
}
