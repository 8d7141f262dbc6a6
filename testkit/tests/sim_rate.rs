//! Throughput measurement: 3 clusters at 20,000 events/s for 10 s. Run it on a release
//! build: `cargo test -p kevents-testkit --release --test sim_rate -- --ignored --nocapture`.

use kevents_testkit::sim::{Fleet, FleetOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 10-second measurement for release builds"]
async fn fleet_20k_per_second_for_10_seconds() {
    let rate: f64 = std::env::var("SIM_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000.0);
    let secs: u64 = std::env::var("SIM_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let opts = FleetOptions { clusters: 3, seed: 1, rate, noise: true, duration: Some(Duration::from_secs(secs)), ..Default::default() };
    let mut fleet = Fleet::start(opts).await.unwrap();
    fleet.wait().await;
    let stats = fleet.stats();
    for c in &stats.clusters {
        println!("{}: applied {} (scenario {}, noise {}), scenarios started {}", c.name, c.applied, c.scenario_events, c.noise_events, c.scenarios_started);
    }
    println!("target {rate}/s for {secs}s: applied {} in {:?} = {:.0}/s", stats.applied, stats.elapsed, stats.achieved_rate);
    assert!(stats.achieved_rate >= rate * 0.95, "{stats:?}");
    fleet.shutdown().await;
}
