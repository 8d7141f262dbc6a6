//! A bare processor process for fault tests: `processor-member --config FILE`
//! runs [`kevents_processor::run`] until SIGTERM/SIGINT. Tests spawn several of
//! them and `kill -9` one to prove a crashed member loses nothing. (The product
//! binary is `kevents processor`, wired in the cli crate.) Logs go to stderr
//! (`RUST_LOG`, default info); a member that failed (an error, a panic) exits 1.

/// The same allocator as the `kevents` binary.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let args: Vec<String> = std::env::args().collect();
    let path = match args.iter().position(|a| a == "--config") {
        Some(i) if i + 1 < args.len() => Some(PathBuf::from(&args[i + 1])),
        _ => None,
    };
    let cfg: kevents_processor::ProcessorConfig = match runtime::config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("processor-member: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let running = match kevents_processor::start(cfg, shutdown).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("processor-member: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    // Tests read the ops address from here.
    println!("ops {}", running.ops_addr);
    match running.wait().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("processor-member: {e}");
            // As the kevents binary does, without waiting for a thread stuck in a
            // blocking call (a stalled consume loop) the way the runtime's drop would.
            std::process::exit(1)
        }
    }
}
