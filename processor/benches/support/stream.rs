//! The realistic raw stream both processor benches replay: 14 real event shapes
//! (kubelet, scheduler, controllers, HPA, autoscaler, node-problem-detector) over
//! 300 objects per shape in 6 clusters; mostly repeats (MODIFIED with a higher
//! count, both API shapes), 5% re-deliveries, a heartbeat every 50 records.

use schemas::model::{ApiShape, ClusterId, NormalizedEvent, ObjectRef};
use schemas::records::{CollectorMeta, Heartbeat, RawRecord, WatchEvent, WatchKind};

const SHAPES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("BackOff", "Warning", "kubelet", "Pod", "spec.containers{app}", "Back-off restarting failed container app in pod {p}_default(0c6c1f7e-1111-2222-3333-444455556666)"),
    ("Unhealthy", "Warning", "kubelet", "Pod", "spec.containers{app}", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
    ("Pulled", "Normal", "kubelet", "Pod", "spec.containers{app}", "Container image \"registry.example.com/shop/app:1.4.2\" already present on machine"),
    ("Failed", "Warning", "kubelet", "Pod", "spec.containers{app}", "Failed to pull image \"registry.example.com/shop/app:1.4.3\": rpc error: code = NotFound desc = failed to pull and unpack image: not found"),
    ("FailedMount", "Warning", "kubelet", "Pod", "", "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found"),
    ("FailedScheduling", "Warning", "default-scheduler", "Pod", "", "0/5 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu, 2 Insufficient memory. preemption: 0/5 nodes are available: 5 No preemption victims found for incoming pod."),
    ("Evicted", "Warning", "kubelet", "Pod", "", "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92160Ki."),
    ("NodeNotReady", "Warning", "node-controller", "Pod", "", "Node is not ready"),
    ("OOMKilling", "Warning", "kernel-monitor", "Node", "", "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB"),
    ("ScalingReplicaSet", "Normal", "deployment-controller", "Deployment", "", "Scaled up replica set {p} from 2 to 3"),
    ("SuccessfulCreate", "Normal", "replicaset-controller", "ReplicaSet", "", "Created pod: {p}"),
    ("FailedGetResourceMetric", "Warning", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler", "", "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"),
    ("TriggeredScaleUp", "Normal", "cluster-autoscaler", "Pod", "", "pod triggered scale-up: [{eks-general 3->5 (max: 20)}]"),
    ("BackoffLimitExceeded", "Warning", "job-controller", "Job", "", "Job has reached the specified backoff limit"),
];

/// The raw partition (of 6) of a record of this stream or of `sim_stream.rs`:
/// both name cluster c `cluster-<c>-…`, and its records go to partition c % 6,
/// as the collector's keying by cluster does.
pub fn partition_of(cluster_uid: &str) -> usize {
    cluster_uid.split('-').nth(1).and_then(|c| c.parse::<usize>().ok()).unwrap_or(0) % 6
}

/// `n` raw records, deterministic.
pub fn stream(n: usize) -> Vec<RawRecord> {
    let mut counts = vec![0i64; SHAPES.len() * 300];
    let mut rv = 10_000u64;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let mut out: Vec<RawRecord> = Vec::with_capacity(n);
    while out.len() < n {
        rv += 1;
        let cl = rnd(6) as usize;
        let cluster = ClusterId { name: format!("c{cl}").into(), uid: format!("cluster-{cl}-5b0f8e2a-uid").into() };
        let observed_us = 1_800_000_000_000_000 + rv as i64 * 10_000;
        if out.len() % 50 == 49 {
            out.push(RawRecord {
                cluster,
                collector: CollectorMeta { instance: "collector-0".into(), leader_epoch: 3 },
                observed_us,
                resource_version: rv.to_string(),
                event: None,
                heartbeat: Some(Heartbeat { scope: String::new(), resource_version: rv.to_string(), last_bookmark_us: observed_us, published_since_last: 49 }),
            });
            continue;
        }
        if out.len() % 20 == 7 {
            let dup = out[out.len() - 3].clone();
            out.push(dup);
            continue;
        }
        let i = rnd(counts.len() as u64) as usize;
        let (reason, ty, comp, kind, fp, note) = SHAPES[i % SHAPES.len()];
        let pod = format!("shop-{}-6f9c8d7b5-x2k{}", i % 37, i % 300);
        counts[i] += 1;
        let shape = if i & 1 == 0 { ApiShape::EventsV1 } else { ApiShape::CoreV1 };
        out.push(RawRecord {
            cluster,
            collector: CollectorMeta { instance: "collector-0".into(), leader_epoch: 3 },
            observed_us,
            resource_version: rv.to_string(),
            event: Some(WatchEvent {
                kind: if counts[i] == 1 { WatchKind::Added } else { WatchKind::Modified },
                event: Box::new(NormalizedEvent {
                    uid: format!("9d1c{i:08}-aaaa-bbbb-cccc-dddddddddddd").into(),
                    namespace: "default".into(),
                    name: format!("{pod}.17a{i:05x}").into(),
                    resource_version: rv.to_string().into(),
                    api_shape: shape,
                    event_type: ty.into(),
                    reason: reason.into(),
                    note: note.replace("{p}", &pod).into(),
                    regarding: ObjectRef { kind: kind.into(), namespace: "default".into(), name: pod.as_str().into(), uid: format!("pod-uid-{i}").into(), api_version: "v1".into(), field_path: fp.into() },
                    reporting_controller: comp.into(),
                    reporting_instance: format!("ip-10-0-{}-{}.ec2.internal", i % 4, i % 50).into(),
                    count: counts[i],
                    series: shape == ApiShape::EventsV1 && counts[i] > 1,
                    first_seen_us: observed_us - 3_600_000_000,
                    last_seen_us: observed_us,
                    created_us: observed_us - 3_600_000_000,
                    ..Default::default()
                }),
            }),
            heartbeat: None,
        });
    }
    out
}

