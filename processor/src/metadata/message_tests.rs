//! Metadata extraction on real kubelet and node message formats, each copied from the source
//! cited on its test (or from `kubectl describe` output of real clusters for
//! values the kubelet formats at run time).

use super::MetadataExtractor;
use schemas::model::NormalizedEvent;
use std::collections::BTreeMap;

pub(super) fn extract(
    reason: &str,
    component: &str,
    kind: &str,
    name: &str,
    note: &str,
) -> BTreeMap<String, String> {
    let mut ev = NormalizedEvent {
        reason: reason.into(),
        reporting_controller: component.into(),
        note: note.into(),
        ..Default::default()
    };
    ev.regarding.kind = kind.into();
    ev.regarding.name = name.into();
    let mut out = BTreeMap::new();
    MetadataExtractor::builtin().extract(&ev, &mut out);
    out
}

pub(super) fn assert_has(out: &BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (k, v) in expected {
        assert_eq!(
            out.get(*k).map(String::as_str),
            Some(*v),
            "key {k} in {out:?}"
        );
    }
}

#[test]
fn kubelet_image_messages() {
    // source: pkg/kubelet/images/image_manager.go
    let out = extract("Pulled", "kubelet", "Pod", "x",
        "Successfully pulled image \"registry.k8s.io/metrics-server/metrics-server:v0.8.0\" in 8.082s (8.082s including waiting). Image size: 20582732 bytes.");
    assert_has(
        &out,
        &[
            (
                "image",
                "registry.k8s.io/metrics-server/metrics-server:v0.8.0",
            ),
            ("duration", "8.082s"),
            ("image_size", "20582732"),
        ],
    );
    let out = extract(
        "Pulled",
        "kubelet",
        "Pod",
        "x",
        "Successfully pulled image \"busybox\" in 384.330188ms",
    );
    assert_has(&out, &[("image", "busybox"), ("duration", "384.330188ms")]);
    let out = extract("Failed", "kubelet", "Pod", "x",
        "Failed to pull image \"nginx:doesnotexist\": rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:doesnotexist\"");
    assert_has(
        &out,
        &[
            ("image", "nginx:doesnotexist"),
            ("reason_detail", "NotFound"),
        ],
    );
    let out = extract("Failed", "kubelet", "Pod", "x", "Error: ImagePullBackOff");
    assert_has(&out, &[("reason_detail", "ImagePullBackOff")]);
    let out = extract(
        "BackOff",
        "kubelet",
        "Pod",
        "x",
        "Back-off pulling image \"nginx:doesnotexist\"",
    );
    assert_has(&out, &[("image", "nginx:doesnotexist")]);
    let out = extract(
        "Pulled",
        "kubelet",
        "Pod",
        "x",
        "Container image \"quickticket-gateway:v1\" already present on machine",
    );
    assert_has(&out, &[("image", "quickticket-gateway:v1")]);
}

#[test]
fn kubelet_container_messages() {
    // source: pkg/kubelet/kuberuntime/kuberuntime_container.go, kuberuntime_manager.go
    assert_has(
        &extract(
            "Created",
            "kubelet",
            "Pod",
            "x",
            "Created container: sync-models",
        ),
        &[("container", "sync-models")],
    );
    assert_has(
        &extract("Created", "kubelet", "Pod", "x", "Created container kubia"),
        &[("container", "kubia")],
    );
    assert_has(
        &extract("Started", "kubelet", "Pod", "x", "Started container web"),
        &[("container", "web")],
    );
    assert_has(
        &extract(
            "Killing",
            "kubelet",
            "Pod",
            "x",
            "Stopping container gateway",
        ),
        &[("container", "gateway")],
    );
    assert_has(
        &extract(
            "Killing",
            "kubelet",
            "Pod",
            "x",
            "Container gateway failed liveness probe, will be restarted",
        ),
        &[
            ("container", "gateway"),
            ("probe", "liveness"),
            ("probe_result", "failed"),
        ],
    );
    assert_has(
        &extract("BackOff", "kubelet", "Pod", "x",
            "Back-off restarting failed container web in pod web-6f9c8d7b5-x2kqp_default(0c6c1f7e-1111-2222-3333-444455556666)"),
        &[("container", "web")],
    );
    // The pod-worker error form carries the delay (kuberuntime_manager.go doBackOff: "back-off %s restarting failed container=%s pod=%s").
    assert_has(
        &extract("FailedSync", "kubelet", "Pod", "x",
            "Error syncing pod, skipping: failed to \"StartContainer\" for \"web\" with CrashLoopBackOff: \"back-off 5m0s restarting failed container=web pod=web-0_default(0c6c)\""),
        &[("container", "web"), ("backoff", "5m0s")],
    );
    // Newest kubelets leave the name out of the message: it comes from the field path.
    let mut ev = NormalizedEvent {
        reason: "Created".into(),
        note: "Container created".into(),
        ..Default::default()
    };
    ev.regarding.field_path = "spec.containers{runner}".into();
    let mut out = BTreeMap::new();
    MetadataExtractor::builtin().extract(&ev, &mut out);
    assert_has(&out, &[("container", "runner")]);
}

#[test]
fn job_pod_failure_policy_exit_code_and_signal() {
    // source: pkg/controller/job/pod_failure_policy.go
    let out = extract("PodFailurePolicy", "job-controller", "Job", "job-pod-failure-policy-example",
        "Container main for pod default/job-pod-failure-policy-example-x2kqp failed with exit code 42 matching FailJob rule at index 0");
    assert_has(
        &out,
        &[
            ("container", "main"),
            ("child", "job-pod-failure-policy-example-x2kqp"),
            ("exit_code", "42"),
        ],
    );
    assert!(!out.contains_key("signal"));
    let out = extract("PodFailurePolicy", "job-controller", "Job", "j",
        "Container main for pod default/j-x2kqp failed with exit code 137 matching FailJob rule at index 0");
    assert_has(&out, &[("exit_code", "137"), ("signal", "SIGKILL")]);
}

#[test]
fn probe_messages() {
    // source: pkg/kubelet/prober/prober.go, pkg/probe/http/http.go
    assert_has(
        &extract(
            "Unhealthy",
            "kubelet",
            "Pod",
            "x",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
        ),
        &[
            ("probe", "readiness"),
            ("probe_result", "failed"),
            ("http_status", "503"),
        ],
    );
    assert_has(
        &extract("Unhealthy", "kubelet", "Pod", "x",
            "Liveness probe failed: Get \"http://10.244.0.11:9999/healthz\": dial tcp 10.244.0.11:9999: connect: connection refused"),
        &[("probe", "liveness"), ("probe_result", "failed")],
    );
    assert_has(
        &extract(
            "Unhealthy",
            "kubelet",
            "Pod",
            "x",
            "Startup probe errored: rpc error: code = Unknown desc = failed to exec",
        ),
        &[("probe", "startup"), ("probe_result", "errored")],
    );
}

#[test]
fn eviction_and_admission_messages() {
    // source: pkg/kubelet/eviction/helpers.go (nodeLowMessageFmt, thresholdMetMessageFmt, containerMessageFmt)
    let out = extract("Evicted", "kubelet", "Pod", "x",
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92160Ki. Container app was using 1234567Ki, request is 0, has larger consumption of memory. ");
    assert_has(
        &out,
        &[
            ("resource", "memory"),
            ("threshold", "100Mi"),
            ("available", "92160Ki"),
            ("container", "app"),
        ],
    );
    let out = extract("Evicted", "kubelet", "Pod", "x",
        "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 9Gi. ");
    assert_has(
        &out,
        &[("resource", "ephemeral-storage"), ("threshold", "10Gi")],
    );
    let out = extract(
        "Evicted",
        "kubelet",
        "Pod",
        "x",
        "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Gi\". ",
    );
    assert_has(&out, &[("volume", "cache")]);
    // source: pkg/kubelet/eviction/eviction_manager.go
    assert_has(
        &extract(
            "EvictionThresholdMet",
            "kubelet",
            "Node",
            "n1",
            "Attempting to reclaim ephemeral-storage",
        ),
        &[("resource", "ephemeral-storage"), ("node", "n1")],
    );
    // source: pkg/kubelet/lifecycle/predicate.go (InsufficientResourceError.Error)
    let out = extract("OutOfcpu", "kubelet", "Pod", "x",
        "Pod was rejected: Node didn't have enough resource: cpu, requested: 2000, used: 1500, capacity: 2000");
    assert_has(
        &out,
        &[
            ("resource", "cpu"),
            ("requested", "2000"),
            ("used", "1500"),
            ("capacity", "2000"),
        ],
    );
}

#[test]
fn oom_and_kernel_messages() {
    // source: pkg/kubelet/oom/oom_watcher_linux.go
    assert_has(
        &extract(
            "SystemOOM",
            "kubelet",
            "Node",
            "node-1",
            "System OOM encountered, victim process: java, pid: 4242",
        ),
        &[
            ("process", "java"),
            ("pid", "4242"),
            ("oom", "true"),
            ("node", "node-1"),
        ],
    );
    assert_has(
        &extract(
            "SystemOOM",
            "kubelet",
            "Node",
            "node-1",
            "System OOM encountered",
        ),
        &[("oom", "true")],
    );
    // source: kubernetes/node-problem-detector config/kernel-monitor.json (OOMKilling, TaskHung patterns)
    assert_has(
        &extract("OOMKilling", "kernel-monitor", "Node", "node-2",
            "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB"),
        &[("process", "java"), ("pid", "4242"), ("oom", "true"), ("node", "node-2")],
    );
    assert_has(
        &extract(
            "TaskHung",
            "kernel-monitor",
            "Node",
            "node-2",
            "task java:4242 blocked for more than 120 seconds.",
        ),
        &[("process", "java"), ("pid", "4242")],
    );
}

#[test]
fn volume_messages() {
    // source: pkg/volume/util/operationexecutor/operation_generator.go, pkg/kubelet/volumemanager/volume_manager.go
    assert_has(
        &extract(
            "FailedMount",
            "kubelet",
            "Pod",
            "x",
            "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found",
        ),
        &[("volume", "config")],
    );
    assert_has(
        &extract("FailedMount", "kubelet", "Pod", "x",
            "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data kube-api-access-8x2lq]: timed out waiting for the condition"),
        &[("volume", "data"), ("reason_detail", "timed out waiting for the condition")],
    );
    assert_has(
        &extract(
            "FailedAttachVolume",
            "attachdetach-controller",
            "Pod",
            "x",
            "Multi-Attach error for volume \"pvc-0a1b2c3d\" Volume is already used by pod(s) web-0",
        ),
        &[
            ("volume", "pvc-0a1b2c3d"),
            ("reason_detail", "multi-attach"),
        ],
    );
    assert_has(
        &extract(
            "FailedScheduling",
            "default-scheduler",
            "Pod",
            "x",
            "persistentvolumeclaim \"data-web-0\" not found",
        ),
        &[("claim", "data-web-0")],
    );
}
