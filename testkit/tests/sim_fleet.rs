//! The fleet driver against real test API servers: rate, counters, ground truth.

use kevents_testkit::sim::{Fleet, FleetOptions, ScenarioKind};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_reaches_its_rate_with_noise() {
    let opts = FleetOptions {
        clusters: 2,
        seed: 7,
        rate: 2000.0,
        noise: true,
        duration: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let mut fleet = Fleet::start(opts).await.unwrap();
    assert_eq!(fleet.clusters().len(), 2);
    assert_eq!(fleet.clusters()[1].name, "sim-2");
    assert!(fleet.kubeconfig_yaml().contains("sim-2"));
    fleet.wait().await;
    let stats = fleet.stats();
    assert!(stats.applied >= 3600, "applied {} of 4000", stats.applied);
    assert!(stats.applied <= 4400, "applied {} of 4000", stats.applied);
    assert!(stats.achieved_rate >= 1800.0, "{stats:?}");
    for (c, h) in stats.clusters.iter().zip(fleet.clusters()) {
        assert!(c.applied >= 1800, "{c:?}");
        assert!(c.noise_events > 0 && c.scenarios_started > 0, "{c:?}");
        assert_eq!(c.applied, c.noise_events + c.scenario_events);
        // Every apply is a write with its own resourceVersion.
        assert!(h.store().current_rv() >= c.applied, "{c:?}");
        assert!(!h.store().is_empty());
    }
    let truth = fleet.truth();
    assert_eq!(truth.len(), 2);
    let incidents: usize = truth.iter().map(|t| t.truth.incidents.len()).sum();
    assert!(incidents > 0, "scenarios started in 2 s have visible root causes");
    for t in &truth {
        for inc in &t.truth.incidents {
            assert!(t.truth.occurrences.contains_key(&inc.root_cause_uid));
        }
    }
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_without_noise_plays_scenarios_compressed() {
    let opts = FleetOptions {
        clusters: 1,
        seed: 3,
        rate: 1500.0,
        noise: false,
        scenarios: vec![ScenarioKind::CrashLoop, ScenarioKind::NodeNotReady],
        duration: Some(Duration::from_secs(1)),
        capture: true,
        ..Default::default()
    };
    let mut fleet = Fleet::start(opts).await.unwrap();
    fleet.wait().await;
    let stats = fleet.stats();
    assert!(stats.applied >= 1350, "{stats:?}");
    // The capture holds what the server holds.
    let captured = fleet.captured_events();
    assert_eq!(captured[0].0, "sim-1");
    assert_eq!(captured[0].1.len(), fleet.clusters()[0].store().len());
    let ev = &captured[0].1[0];
    let stored = fleet.clusters()[0].store().get(ev.metadata.namespace.as_deref().unwrap(), ev.metadata.name.as_deref().unwrap()).unwrap();
    assert_eq!(stored.metadata.uid, ev.metadata.uid);
    assert_eq!(stored.count, ev.count);
    assert_eq!(stats.clusters[0].noise_events, 0);
    let truth = &fleet.truth()[0].truth;
    assert!(truth.incidents.iter().any(|i| i.kind == "crash-loop"));
    assert!(truth.incidents.iter().any(|i| i.kind == "node-not-ready"));
    // Occurrences seen in the truth are those of applied versions.
    assert!(truth.total_occurrences() as u64 >= truth.occurrences.len() as u64);
    let stats = fleet.shutdown().await;
    assert!(stats.elapsed <= Duration::from_millis(1500), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_an_open_ended_fleet() {
    let opts = FleetOptions { clusters: 1, rate: 500.0, duration: None, ..Default::default() };
    let mut fleet = Fleet::start(opts).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.stop().await;
    let a = fleet.stats().applied;
    assert!(a > 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fleet.stats().applied, a, "nothing is applied after stop");
    fleet.shutdown().await;
}
