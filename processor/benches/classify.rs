//! Classification and metadata throughput on a realistic replay.
//!
//! The mix: ~40 real event shapes (kubelet, scheduler, controllers, HPA,
//! cluster-autoscaler, node-problem-detector; messages as the sources format
//! them), instantiated for 50 pods/nodes each (2,000 distinct events), then
//! replayed as a stream of 20,000 versions in which most events repeat (the
//! shape of a watch stream: repeats are MODIFIED versions with a higher count).
//! Criterion reports elements/s = events/s.
//!
//! Run: `cargo bench -p kevents-processor --bench classify`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kevents_processor::classify::{Classifier, ClassifyCache};
use kevents_processor::metadata::{MetadataCache, MetadataExtractor};
use schemas::model::NormalizedEvent;
use std::collections::BTreeMap;
use std::hint::black_box;

/// (reason, type, component, kind, field_path, message template; `{p}` = pod, `{n}` = node).
const SHAPES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("Scheduled", "Normal", "default-scheduler", "Pod", "", "Successfully assigned default/{p} to {n}"),
    ("Pulling", "Normal", "kubelet", "Pod", "spec.containers{app}", "Pulling image \"registry.example.com/shop/app:1.4.2\""),
    ("Pulled", "Normal", "kubelet", "Pod", "spec.containers{app}", "Successfully pulled image \"registry.example.com/shop/app:1.4.2\" in 1.627s (1.627s including waiting). Image size: 2222260 bytes."),
    ("Pulled", "Normal", "kubelet", "Pod", "spec.containers{app}", "Container image \"registry.example.com/shop/app:1.4.2\" already present on machine"),
    ("Created", "Normal", "kubelet", "Pod", "spec.containers{app}", "Created container: app"),
    ("Started", "Normal", "kubelet", "Pod", "spec.containers{app}", "Started container app"),
    ("Killing", "Normal", "kubelet", "Pod", "spec.containers{app}", "Stopping container app"),
    ("Killing", "Normal", "kubelet", "Pod", "spec.containers{app}", "Container app failed liveness probe, will be restarted"),
    ("Unhealthy", "Warning", "kubelet", "Pod", "spec.containers{app}", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
    ("Unhealthy", "Warning", "kubelet", "Pod", "spec.containers{app}", "Liveness probe failed: Get \"http://10.244.1.7:8080/healthz\": dial tcp 10.244.1.7:8080: connect: connection refused"),
    ("BackOff", "Warning", "kubelet", "Pod", "spec.containers{app}", "Back-off restarting failed container app in pod {p}_default(0c6c1f7e-1111-2222-3333-444455556666)"),
    ("BackOff", "Normal", "kubelet", "Pod", "spec.containers{app}", "Back-off pulling image \"registry.example.com/shop/app:1.4.3\""),
    ("Failed", "Warning", "kubelet", "Pod", "spec.containers{app}", "Failed to pull image \"registry.example.com/shop/app:1.4.3\": rpc error: code = NotFound desc = failed to pull and unpack image: not found"),
    ("Failed", "Warning", "kubelet", "Pod", "spec.containers{app}", "Error: ErrImagePull"),
    ("Failed", "Warning", "kubelet", "Pod", "spec.containers{app}", "Error: ImagePullBackOff"),
    ("Failed", "Warning", "kubelet", "Pod", "spec.containers{app}", "Error: configmap \"app-config\" not found"),
    ("FailedMount", "Warning", "kubelet", "Pod", "", "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found"),
    ("FailedMount", "Warning", "kubelet", "Pod", "", "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data kube-api-access-8x2lq]: timed out waiting for the condition"),
    ("FailedScheduling", "Warning", "default-scheduler", "Pod", "", "0/5 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu, 2 Insufficient memory. preemption: 0/5 nodes are available: 1 Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod."),
    ("Evicted", "Warning", "kubelet", "Pod", "", "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92160Ki. Container app was using 1234567Ki, request is 0, has larger consumption of memory. "),
    ("OutOfcpu", "Warning", "kubelet", "Pod", "", "Node didn't have enough resource: cpu, requested: 2000, used: 1500, capacity: 2000"),
    ("NodeNotReady", "Warning", "node-controller", "Pod", "", "Node is not ready"),
    ("NodeNotReady", "Normal", "node-controller", "Node", "", "Node {n} status is now: NodeNotReady"),
    ("NodeHasDiskPressure", "Normal", "kubelet", "Node", "", "Node {n} status is now: NodeHasDiskPressure"),
    ("SystemOOM", "Warning", "kubelet", "Node", "", "System OOM encountered, victim process: java, pid: 4242"),
    ("OOMKilling", "Warning", "kernel-monitor", "Node", "", "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB"),
    ("ScalingReplicaSet", "Normal", "deployment-controller", "Deployment", "", "Scaled up replica set {p} from 2 to 3"),
    ("SuccessfulCreate", "Normal", "replicaset-controller", "ReplicaSet", "", "Created pod: {p}"),
    ("SuccessfulDelete", "Normal", "replicaset-controller", "ReplicaSet", "", "Deleted pod: {p}"),
    ("SuccessfulCreate", "Normal", "job-controller", "Job", "", "Created pod: {p}"),
    ("BackoffLimitExceeded", "Warning", "job-controller", "Job", "", "Job has reached the specified backoff limit"),
    ("SawCompletedJob", "Normal", "cronjob-controller", "CronJob", "", "Saw completed job: backup-28956720, status: Complete"),
    ("SuccessfulRescale", "Normal", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler", "", "New size: 6; reason: cpu resource utilization (percentage of request) above target"),
    ("FailedGetResourceMetric", "Warning", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler", "", "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"),
    ("TriggeredScaleUp", "Normal", "cluster-autoscaler", "Pod", "", "pod triggered scale-up: [{eks-general 3->5 (max: 20)}]"),
    ("NotTriggerScaleUp", "Normal", "cluster-autoscaler", "Pod", "", "pod didn't trigger scale-up: 2 node(s) didn't match Pod's node affinity/selector, 1 max node group size reached"),
    ("EnsuredLoadBalancer", "Normal", "service-controller", "Service", "", "Ensured load balancer"),
    ("ProvisioningSucceeded", "Normal", "ebs.csi.aws.com", "PersistentVolumeClaim", "", "Successfully provisioned volume pvc-0a1b2c3d"),
    ("LeaderElection", "Normal", "kube-controller-manager", "Lease", "", "cp-1_2a6c0c9e became leader"),
    ("Sync", "Normal", "nginx-ingress-controller", "Ingress", "", "Scheduled for sync"),
];

fn events() -> Vec<NormalizedEvent> {
    let mut distinct = Vec::new();
    for i in 0..50 {
        let pod = format!(
            "shop-{}-6f9c8d7b5-x2k{}p",
            i % 7,
            ["q", "r", "s", "t", "v"][i % 5]
        );
        let node = format!("ip-10-0-{}-{}.ec2.internal", i % 4, i);
        for (s, (reason, ty, component, kind, fp, note)) in SHAPES.iter().enumerate() {
            let mut ev = NormalizedEvent {
                uid: format!("uid-{i}-{s}").into(),
                namespace: "default".into(),
                reason: (*reason).into(),
                event_type: (*ty).into(),
                reporting_controller: (*component).into(),
                reporting_instance: if *component == "kubelet" {
                    node.clone().into()
                } else {
                    String::new().into()
                },
                note: note.replace("{p}", &pod).replace("{n}", &node).into(),
                count: 1,
                ..Default::default()
            };
            ev.regarding.kind = (*kind).into();
            ev.regarding.name = if *kind == "Node" {
                node.clone().into()
            } else {
                pod.clone().into()
            };
            ev.regarding.field_path = (*fp).into();
            distinct.push(ev);
        }
    }
    // Replay: 20,000 versions, repeats of the distinct events with growing counts,
    // in a scrambled but deterministic order.
    let n = distinct.len();
    (0..20_000u64)
        .map(|k| {
            let idx = ((k * 7919) % n as u64) as usize;
            let mut ev = distinct[idx].clone();
            ev.count = 1 + (k / n as u64) as i64;
            ev
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let stream = events();
    let classifier = Classifier::builtin();
    let extractor = MetadataExtractor::builtin();
    let mut group = c.benchmark_group("processor-core");
    group.throughput(Throughput::Elements(stream.len() as u64));

    group.bench_function("classify", |b| {
        b.iter(|| {
            for ev in &stream {
                black_box(classifier.classify(ev));
            }
        })
    });
    group.bench_function("classify_cached", |b| {
        let mut cache = ClassifyCache::default();
        b.iter(|| {
            for ev in &stream {
                black_box(cache.classify(&classifier, ev));
            }
        })
    });
    group.bench_function("metadata", |b| {
        b.iter_batched_ref(
            || Vec::<BTreeMap<String, String>>::with_capacity(stream.len()),
            |outs| {
                for ev in &stream {
                    let mut out = BTreeMap::new();
                    extractor.extract(ev, &mut out);
                    outs.push(out);
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("metadata_cached", |b| {
        let mut cache = MetadataCache::default();
        b.iter_batched_ref(
            || Vec::with_capacity(stream.len()),
            |outs| {
                for ev in &stream {
                    outs.push(cache.extract(&extractor, ev));
                }
            },
            BatchSize::LargeInput,
        )
    });
    // The processor's per-event core: classification and metadata, both cached.
    group.bench_function("classify_cached+metadata_cached", |b| {
        let mut ccache = ClassifyCache::default();
        let mut mcache = MetadataCache::default();
        b.iter_batched_ref(
            || Vec::with_capacity(stream.len()),
            |outs| {
                for ev in &stream {
                    let class = ccache.classify(&classifier, ev);
                    black_box(&class.category);
                    outs.push(mcache.extract(&extractor, ev));
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
