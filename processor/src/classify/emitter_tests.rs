//! Per-emitter classification tests: real reasons and messages, copied from the
//! sources cited on each test (and from `kubectl describe` output of real
//! clusters where the format is printed at run time).

use super::Classifier;
use schemas::model::{NormalizedEvent, Severity};
use Severity::{Critical, Error, Info, Warning};

/// An event as the rules see it (namespace `default`).
pub(super) fn ev(reason: &str, ty: &str, component: &str, kind: &str, note: &str) -> NormalizedEvent {
    let mut e = NormalizedEvent {
        reason: reason.into(),
        event_type: ty.into(),
        reporting_controller: component.into(),
        note: note.into(),
        namespace: "default".into(),
        ..Default::default()
    };
    e.regarding.kind = kind.into();
    e
}

/// Asserts (category, severity) for each case and that a rule matched.
fn check(c: &Classifier, cases: &[(&str, &str, &str, &str, &str, &str, Severity)]) {
    for &(reason, ty, component, kind, note, category, severity) in cases {
        let got = c.classify(&ev(reason, ty, component, kind, note));
        assert!(
            !got.unknown,
            "{reason} {ty} {component} {kind} {note:?}: unknown"
        );
        assert_eq!(
            (got.category, got.severity),
            (category, severity),
            "{reason} {ty} {component} {kind} {note:?} (rule {})",
            got.rule
        );
    }
}

/// Every reason constant must be classified (not `unknown`) for its emitter.
fn all_known(c: &Classifier, component: &str, kind: &str, ty: &str, reasons: &[&str]) {
    for r in reasons {
        let got = c.classify(&ev(r, ty, component, kind, ""));
        assert!(!got.unknown, "{component}: reason {r} is unknown");
    }
}

#[test]
fn kubelet_reason_constants_are_all_classified() {
    // source: kubernetes pkg/kubelet/events/event.go (every constant)
    let c = Classifier::builtin();
    all_known(
        &c,
        "kubelet",
        "Pod",
        "Warning",
        &[
            "Created",
            "Started",
            "Failed",
            "Killing",
            "Preempting",
            "BackOff",
            "ExceededGracePeriod",
            "FailedKillPod",
            "FailedCreatePodContainer",
            "NetworkNotReady",
            "Pulling",
            "Pulled",
            "InspectFailed",
            "ErrImageNeverPull",
            "NodeReady",
            "NodeNotReady",
            "NodeSchedulable",
            "NodeNotSchedulable",
            "Starting",
            "KubeletSetupFailed",
            "FailedAttachVolume",
            "FailedMount",
            "VolumeResizeFailed",
            "VolumeResizeSuccessful",
            "FileSystemResizeFailed",
            "FileSystemResizeSuccessful",
            "FailedMapVolume",
            "AlreadyMountedVolume",
            "SuccessfulAttachVolume",
            "SuccessfulMountVolume",
            "Rebooted",
            "ContainerGCFailed",
            "ImageGCFailed",
            "FailedNodeAllocatableEnforcement",
            "NodeAllocatableEnforced",
            "SandboxChanged",
            "FailedCreatePodSandBox",
            "FailedPodSandBoxStatus",
            "FailedMountOnFilesystemMismatch",
            "InvalidDiskCapacity",
            "FreeDiskSpaceFailed",
            "Unhealthy",
            "ProbeWarning",
            "FailedSync",
            "FailedValidation",
            "FailedPostStartHook",
            "FailedPreStopHook",
            // older releases of the same file
            "FailedDetachVolume",
            "FailedUnMount",
            "SuccessfulDetachVolume",
            "SuccessfulUnMountVolume",
            "HostPortConflict",
            "NodeSelectorMismatching",
            "InsufficientFreeCPU",
            "InsufficientFreeMemory",
            "OutOfDisk",
            "HostNetworkNotSupported",
            "NilShaper",
            "UnfinishedPreStopHook",
            // pkg/kubelet/eviction, pkg/kubelet/lifecycle/predicate.go, pkg/kubelet/oom, nodestatus
            "Evicted",
            "EvictionThresholdMet",
            "OutOfcpu",
            "OutOfmemory",
            "OutOfpods",
            "OutOfephemeral-storage",
            "OutOfnvidia.com/gpu",
            "NodeAffinity",
            "UnexpectedAdmissionError",
            "PodOSSelectorNodeLabelDoesNotMatch",
            "PodOSNotSupported",
            "InvalidNodeInfo",
            "InitContainerRestartPolicyForbidden",
            "SupplementalGroupsPolicyNotSupported",
            "UnknownReason",
            "UnexpectedPredicateFailureType",
            "SystemOOM",
            "NodeHasSufficientMemory",
            "NodeHasInsufficientMemory",
            "NodeHasNoDiskPressure",
            "NodeHasDiskPressure",
            "NodeHasSufficientPID",
            "NodeHasInsufficientPID",
            "DNSConfigForming",
            "MissingClusterDNS",
        ],
    );
}

#[test]
fn kubelet_containers() {
    // source: pkg/kubelet/kuberuntime/kuberuntime_container.go, kuberuntime_manager.go
    let c = Classifier::builtin();
    check(&c, &[
        ("Created", "Normal", "kubelet", "Pod", "Created container: runner", "container-lifecycle", Info),
        ("Created", "Normal", "kubelet", "Pod", "Container created", "container-lifecycle", Info),
        ("Started", "Normal", "kubelet", "Pod", "Started container runner", "container-lifecycle", Info),
        ("Killing", "Normal", "kubelet", "Pod", "Stopping container web", "container-lifecycle", Info),
        ("Killing", "Normal", "kubelet", "Pod", "Container web failed liveness probe, will be restarted", "probe", Warning),
        ("BackOff", "Warning", "kubelet", "Pod",
         "Back-off restarting failed container web in pod web-6f9c8d7b5-x2kqp_default(0c6c1f7e-1111-2222-3333-444455556666)",
         "container-crash", Error),
        ("Failed", "Warning", "kubelet", "Pod",
         "Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"/app\": permission denied: unknown",
         "container-crash", Error),
        ("Failed", "Warning", "kubelet", "Pod", "Error: configmap \"postgres-db-config\" not found", "config", Error),
        ("Failed", "Warning", "kubelet", "Pod", "Error: secret \"db-password\" not found", "config", Error),
        ("Failed", "Warning", "kubelet", "Pod", "Error: couldn't find key DB_HOST in ConfigMap default/app-config", "config", Error),
        ("FailedPostStartHook", "Warning", "kubelet", "Pod", "PostStartHook failed", "container-crash", Error),
        ("FailedPreStopHook", "Warning", "kubelet", "Pod", "PreStopHook failed", "container-lifecycle", Warning),
        ("ExceededGracePeriod", "Warning", "kubelet", "Pod",
         "Container runtime did not kill the pod within specified grace period.", "container-lifecycle", Warning),
        ("FailedCreatePodSandBox", "Warning", "kubelet", "Pod",
         "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"abc\": plugin type=\"calico\" failed (add): error getting ClusterInformation: connection is unauthorized: Unauthorized",
         "sandbox", Error),
        ("SandboxChanged", "Normal", "kubelet", "Pod", "Pod sandbox changed, it will be killed and re-created.", "sandbox", Warning),
        ("DNSConfigForming", "Warning", "kubelet", "Pod",
         "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.0.0.2 10.0.0.3 10.0.0.4",
         "config", Warning),
    ]);
}

#[test]
fn kubelet_images() {
    // source: pkg/kubelet/images/image_manager.go; messages as printed by kubectl describe
    let c = Classifier::builtin();
    check(&c, &[
        ("Pulling", "Normal", "kubelet", "Pod", "Pulling image \"busybox\"", "image", Info),
        ("Pulled", "Normal", "kubelet", "Pod",
         "Successfully pulled image \"busybox\" in 1.627s (1.627s including waiting). Image size: 2222260 bytes.", "image", Info),
        ("Pulled", "Normal", "kubelet", "Pod", "Container image \"quickticket-gateway:v1\" already present on machine", "image", Info),
        ("Failed", "Warning", "kubelet", "Pod",
         "Failed to pull image \"nginx:doesnotexist\": rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:doesnotexist\": failed to resolve reference \"docker.io/library/nginx:doesnotexist\": docker.io/library/nginx:doesnotexist: not found",
         "image", Error),
        ("Failed", "Warning", "kubelet", "Pod", "Error: ErrImagePull", "image", Error),
        ("Failed", "Warning", "kubelet", "Pod", "Error: ImagePullBackOff", "image", Error),
        ("Failed", "Warning", "kubelet", "Pod", "Error: InvalidImageName", "image", Error),
        ("BackOff", "Normal", "kubelet", "Pod", "Back-off pulling image \"nginx:doesnotexist\"", "image", Warning),
        // Newer kubelets may append the pull error to the back-off message.
        ("BackOff", "Normal", "kubelet", "Pod",
         "Back-off pulling image \"nginx:doesnotexist\": ErrImagePull: not found", "image", Warning),
        ("InspectFailed", "Warning", "kubelet", "Pod",
         "Failed to apply default image tag \"nginx:::\": couldn't parse image reference \"nginx:::\": invalid reference format",
         "image", Error),
        ("ErrImageNeverPull", "Warning", "kubelet", "Pod",
         "Container image \"app:dev\" is not present with pull policy of Never", "image", Error),
    ]);
}

#[test]
fn kubelet_probes() {
    // source: pkg/kubelet/prober/prober.go, pkg/probe/http/http.go
    let c = Classifier::builtin();
    check(&c, &[
        ("Unhealthy", "Warning", "kubelet", "Pod", "Liveness probe failed: HTTP probe failed with statuscode: 500", "probe", Warning),
        ("Unhealthy", "Warning", "kubelet", "Pod",
         "Readiness probe failed: Get \"http://10.244.1.7:8080/ready\": dial tcp 10.244.1.7:8080: connect: connection refused", "probe", Warning),
        ("Unhealthy", "Warning", "kubelet", "Pod", "Startup probe errored: rpc error: code = Unknown", "probe", Warning),
        ("ProbeWarning", "Warning", "kubelet", "Pod", "Readiness probe warning: Probe terminated redirects", "probe", Info),
    ]);
}

#[test]
fn kubelet_volumes() {
    // source: pkg/volume/util/operationexecutor/operation_generator.go, pkg/kubelet/volumemanager/volume_manager.go
    let c = Classifier::builtin();
    check(&c, &[
        ("FailedMount", "Warning", "kubelet", "Pod",
         "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found", "config", Error),
        ("FailedMount", "Warning", "kubelet", "Pod",
         "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data kube-api-access-8x2lq]: timed out waiting for the condition",
         "volume", Error),
        ("FailedAttachVolume", "Warning", "attachdetach-controller", "Pod",
         "Multi-Attach error for volume \"pvc-0a1b2c3d\" Volume is already used by pod(s) web-0", "volume", Error),
        ("FailedAttachVolume", "Warning", "attachdetach-controller", "Pod",
         "AttachVolume.Attach failed for volume \"pvc-0a1b2c3d\" : rpc error: code = DeadlineExceeded desc = context deadline exceeded",
         "volume", Error),
        ("SuccessfulAttachVolume", "Normal", "attachdetach-controller", "Pod",
         "AttachVolume.Attach succeeded for volume \"pvc-0a1b2c3d\"", "volume", Info),
        ("FailedMapVolume", "Warning", "kubelet", "Pod", "MapVolume.SetUpDevice failed for volume \"block\"", "volume", Error),
    ]);
    let multi = c.classify(&ev(
        "FailedAttachVolume",
        "Warning",
        "attachdetach-controller",
        "Pod",
        "Multi-Attach error for volume \"pvc-0a1b2c3d\" Volume is already used by pod(s) web-0",
    ));
    assert_eq!(
        multi.labels.get("problem").map(String::as_str),
        Some("multi-attach")
    );
}

#[test]
fn kubelet_admission_eviction_and_node() {
    // source: pkg/kubelet/lifecycle/predicate.go, pkg/kubelet/eviction/helpers.go,
    // pkg/kubelet/nodestatus/setters.go, pkg/kubelet/oom/oom_watcher_linux.go, pkg/kubelet/kubelet.go
    let c = Classifier::builtin();
    check(&c, &[
        ("OutOfcpu", "Warning", "kubelet", "Pod",
         "Node didn't have enough resource: cpu, requested: 2000, used: 1500, capacity: 2000", "admission", Error),
        ("OutOfnvidia.com/gpu", "Warning", "kubelet", "Pod",
         "Node didn't have enough resource: nvidia.com/gpu, requested: 1, used: 1, capacity: 1", "admission", Error),
        ("NodeAffinity", "Warning", "kubelet", "Pod",
         "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector", "admission", Error),
        ("UnexpectedAdmissionError", "Warning", "kubelet", "Pod",
         "Allocate failed due to can't allocate unhealthy devices nvidia.com/gpu, which is unexpected", "admission", Error),
        ("Evicted", "Warning", "kubelet", "Pod",
         "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92160Ki. Container app was using 1234567Ki, request is 0, has larger consumption of memory. ",
         "eviction", Error),
        ("EvictionThresholdMet", "Warning", "kubelet", "Node", "Attempting to reclaim memory", "resource-pressure", Warning),
        ("NodeHasDiskPressure", "Normal", "kubelet", "Node", "Node node-1 status is now: NodeHasDiskPressure", "resource-pressure", Warning),
        ("NodeHasNoDiskPressure", "Normal", "kubelet", "Node", "Node node-1 status is now: NodeHasNoDiskPressure", "resource-pressure", Info),
        ("SystemOOM", "Warning", "kubelet", "Node", "System OOM encountered, victim process: java, pid: 4242", "oom", Critical),
        ("Rebooted", "Warning", "kubelet", "Node", "Node node-1 has been rebooted, boot id: 5b3a9c4e", "node-health", Error),
        ("Starting", "Normal", "kubelet", "Node", "Starting kubelet.", "node-lifecycle", Info),
        ("InvalidDiskCapacity", "Warning", "kubelet", "Node", "invalid capacity 0 on image filesystem", "resource-pressure", Warning),
        ("ImageGCFailed", "Warning", "kubelet", "Node",
         "failed to garbage collect required amount of images. Attempted to free 4294967296 bytes, but only found 0 bytes eligible to free.",
         "gc", Warning),
        // NodeNotReady: Normal on the Node from the kubelet; Normal on the Node from the node
        // controller (node down); Warning on each Pod from the node controller.
        ("NodeNotReady", "Normal", "kubelet", "Node", "Node node-1 status is now: NodeNotReady", "node-health", Error),
        ("NodeNotReady", "Normal", "node-controller", "Node", "Node node-1 status is now: NodeNotReady", "node-health", Critical),
        ("NodeNotReady", "Warning", "node-controller", "Pod", "Node is not ready", "node-health", Error),
        ("NodeReady", "Normal", "kubelet", "Node", "Node node-1 status is now: NodeReady", "node-health", Info),
    ]);
}

#[test]
fn scheduler() {
    // source: pkg/scheduler/schedule_one.go, pkg/scheduler/framework/preemption/preemption.go
    let c = Classifier::builtin();
    check(&c, &[
        ("Scheduled", "Normal", "default-scheduler", "Pod",
         "Successfully assigned default/web-6f9c8d7b5-x2kqp to k8-node-20", "scheduling", Info),
        ("FailedScheduling", "Warning", "default-scheduler", "Pod",
         "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
         "scheduling", Error),
        ("FailedScheduling", "Warning", "default-scheduler", "Pod",
         "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
         "scheduling", Error),
        ("Preempted", "Normal", "default-scheduler", "Pod", "Preempted by pod 3a0e2b7c-1d2e on node node-2", "eviction", Warning),
    ]);
}

#[test]
fn deployment_replicaset_statefulset_daemonset() {
    // source: pkg/controller/deployment/sync.go, pkg/controller/controller_utils.go,
    // pkg/controller/statefulset/stateful_pod_control.go, pkg/controller/daemon/daemon_controller.go
    let c = Classifier::builtin();
    check(&c, &[
        ("ScalingReplicaSet", "Normal", "deployment-controller", "Deployment",
         "Scaled up replica set web-6f9c8d7b5 from 0 to 3", "rollout", Info),
        ("ProgressDeadlineExceeded", "Warning", "deployment-controller", "Deployment",
         "Deployment \"web\" has timed out progressing.", "rollout", Error),
        ("SuccessfulCreate", "Normal", "replicaset-controller", "ReplicaSet", "Created pod: web-6f9c8d7b5-x2kqp", "workload", Info),
        ("SuccessfulDelete", "Normal", "replicaset-controller", "ReplicaSet", "Deleted pod: web-6f9c8d7b5-x2kqp", "workload", Info),
        ("FailedCreate", "Warning", "replicaset-controller", "ReplicaSet",
         "Error creating: pods \"web-6f9c8d7b5-x2kqp\" is forbidden: exceeded quota: compute-resources, requested: limits.cpu=2, used: limits.cpu=8, limited: limits.cpu=8",
         "admission", Error),
        ("FailedCreate", "Warning", "replicaset-controller", "ReplicaSet",
         "Error creating: Internal error occurred: resource quota evaluation timed out", "workload", Error),
        ("SuccessfulCreate", "Normal", "statefulset-controller", "StatefulSet",
         "create Pod web-0 in StatefulSet web successful", "workload", Info),
        ("RecreatingFailedPod", "Warning", "statefulset-controller", "StatefulSet",
         "StatefulSet default/web is recreating failed Pod web-0", "workload", Warning),
        ("FailedDaemonPod", "Warning", "daemonset-controller", "DaemonSet",
         "Found failed daemon pod kube-system/fluentd-x2kqp on node node-3, will try to kill it", "workload", Warning),
        ("SelectingAll", "Warning", "deployment-controller", "Deployment",
         "This deployment is selecting all pods. A non-empty selector is required.", "workload", Warning),
    ]);
}

#[test]
fn job_and_cronjob() {
    // source: pkg/controller/job/job_controller.go, pkg/controller/job/pod_failure_policy.go,
    // pkg/controller/cronjob/cronjob_controllerv2.go
    let c = Classifier::builtin();
    check(&c, &[
        ("SuccessfulCreate", "Normal", "job-controller", "Job", "Created pod: pi-x2kqp", "job", Info),
        ("BackoffLimitExceeded", "Warning", "job-controller", "Job", "Job has reached the specified backoff limit", "job", Error),
        ("DeadlineExceeded", "Warning", "job-controller", "Job", "Job was active longer than specified deadline", "job", Error),
        ("PodFailurePolicy", "Warning", "job-controller", "Job",
         "Container main for pod default/job-pod-failure-policy-example-x2kqp failed with exit code 42 matching FailJob rule at index 0",
         "job", Error),
        ("Completed", "Normal", "job-controller", "Job", "Job completed", "job", Info),
        ("SuccessfulCreate", "Normal", "cronjob-controller", "CronJob", "Created job backup-28956720", "job", Info),
        ("SawCompletedJob", "Normal", "cronjob-controller", "CronJob", "Saw completed job: backup-28956720, status: Complete", "job", Info),
        ("SawCompletedJob", "Normal", "cronjob-controller", "CronJob", "Saw completed job: backup-28956720, status: Failed", "job", Warning),
        ("SuccessfulDelete", "Normal", "cronjob-controller", "CronJob", "Deleted job backup-28956000", "job", Info),
        ("UnexpectedJob", "Warning", "cronjob-controller", "CronJob",
         "Saw a job that the controller did not create or forgot: backup-manual", "job", Warning),
        ("MissingJob", "Warning", "cronjob-controller", "CronJob", "Active job went missing: backup-28956720", "job", Warning),
        ("TooManyMissedTimes", "Warning", "cronjob-controller", "CronJob",
         "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew", "job", Error),
        ("FailedNeedsStart", "Warning", "cronjob-controller", "CronJob", "Cannot determine if job needs to be started", "job", Error),
        ("JobAlreadyActive", "Normal", "cronjob-controller", "CronJob",
         "Not starting job because prior execution is running and concurrency policy is Forbid", "job", Info),
    ]);
}

#[test]
fn horizontal_and_vertical_pod_autoscalers() {
    // source: pkg/controller/podautoscaler/horizontal.go; kubernetes/autoscaler vertical-pod-autoscaler/pkg/updater
    let c = Classifier::builtin();
    check(&c, &[
        ("SuccessfulRescale", "Normal", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler",
         "New size: 6; reason: cpu resource utilization (percentage of request) above target", "autoscaling", Info),
        ("FailedGetResourceMetric", "Warning", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler",
         "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
         "autoscaling", Warning),
        ("FailedComputeMetricsReplicas", "Warning", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler",
         "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value", "autoscaling", Warning),
        ("FailedGetScale", "Warning", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler",
         "deployments/scale.apps \"web\" not found", "autoscaling", Error),
        ("FailedRescale", "Warning", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler",
         "New size: 4; reason: All metrics below target; error: Operation cannot be fulfilled", "autoscaling", Error),
        ("EvictedByVPA", "Normal", "vpa-updater", "Pod",
         "Pod was evicted by VPA Updater to apply resource recommendation.", "autoscaling", Info),
    ]);
}

#[test]
fn services_endpoints_and_network() {
    // source: staging/src/k8s.io/cloud-provider/controllers/service/controller.go,
    // pkg/controller/endpoint/endpoints_controller.go, pkg/controller/endpointslice/endpointslice_controller.go
    let c = Classifier::builtin();
    check(&c, &[
        ("EnsuringLoadBalancer", "Normal", "service-controller", "Service", "Ensuring load balancer", "network", Info),
        ("EnsuredLoadBalancer", "Normal", "service-controller", "Service", "Ensured load balancer", "network", Info),
        ("SyncLoadBalancerFailed", "Warning", "service-controller", "Service",
         "Error syncing load balancer: failed to ensure load balancer: could not find any suitable subnets for creating the ELB",
         "network", Error),
        ("UpdatedLoadBalancer", "Normal", "service-controller", "Service", "Updated load balancer with new hosts", "network", Info),
        ("DeletingLoadBalancer", "Normal", "service-controller", "Service", "Deleting load balancer", "network", Info),
        ("FailedToUpdateEndpoint", "Warning", "endpoint-controller", "Endpoints",
         "Failed to update endpoint default/web: Operation cannot be fulfilled on endpoints \"web\"", "network", Warning),
        ("FailedToUpdateEndpointSlices", "Warning", "endpoint-slice-controller", "Service",
         "Error updating Endpoint Slices for Service default/web: node \"node-1\" not found", "network", Warning),
    ]);
}

#[test]
fn persistent_volumes_and_attach_detach() {
    // source: pkg/controller/volume/events/event.go, pkg/controller/volume/persistentvolume/pv_controller.go
    let c = Classifier::builtin();
    check(&c, &[
        ("ProvisioningFailed", "Warning", "persistentvolume-controller", "PersistentVolumeClaim",
         "storageclass.storage.k8s.io \"fast\" not found", "storage-provisioning", Error),
        ("ProvisioningSucceeded", "Normal", "ebs.csi.aws.com", "PersistentVolumeClaim",
         "Successfully provisioned volume pvc-0a1b2c3d", "storage-provisioning", Info),
        ("ExternalProvisioning", "Normal", "persistentvolume-controller", "PersistentVolumeClaim",
         "Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
         "storage-provisioning", Info),
        ("FailedBinding", "Warning", "persistentvolume-controller", "PersistentVolumeClaim",
         "no persistent volumes available for this claim and no storage class is set", "storage-provisioning", Warning),
        ("WaitForFirstConsumer", "Normal", "persistentvolume-controller", "PersistentVolumeClaim",
         "waiting for first consumer to be created before binding", "storage-provisioning", Info),
        ("VolumeMismatch", "Warning", "persistentvolume-controller", "PersistentVolumeClaim",
         "Cannot bind to requested volume \"pv-1\": requested PV is too small", "storage-provisioning", Warning),
        ("FailedDetachVolume", "Warning", "attachdetach-controller", "Pod",
         "DetachVolume.Detach failed for volume \"pvc-0a1b2c3d\"", "volume", Warning),
    ]);
}

#[test]
fn node_lifecycle_taint_eviction_gc_disruption() {
    // source: pkg/controller/nodelifecycle/node_lifecycle_controller.go, pkg/controller/tainteviction/taint_eviction.go,
    // pkg/controller/garbagecollector/garbagecollector.go, pkg/controller/disruption/disruption.go
    let c = Classifier::builtin();
    check(&c, &[
        ("RegisteredNode", "Normal", "node-controller", "Node",
         "Node node-1 event: Registered Node node-1 in Controller", "node-lifecycle", Info),
        ("RemovingNode", "Normal", "node-controller", "Node",
         "Node node-1 event: Removing Node node-1 from Controller", "node-lifecycle", Info),
        ("DeletingNode", "Normal", "cloud-node-lifecycle-controller", "Node",
         "Deleting node node-1 because it does not exist in the cloud provider", "node-lifecycle", Warning),
        ("TaintManagerEviction", "Normal", "taint-eviction-controller", "Pod",
         "Marking for deletion Pod default/web-0", "eviction", Warning),
        ("TaintManagerEviction", "Normal", "taint-eviction-controller", "Pod",
         "Cancelling deletion of Pod default/web-0", "eviction", Info),
        ("OwnerRefInvalidNamespace", "Warning", "garbage-collector-controller", "Pod",
         "ownerRef [apps/v1/ReplicaSet, namespace: other, name: web, uid: 123] does not exist in namespace \"default\"", "gc", Warning),
        ("NoPods", "Normal", "controllermanager", "PodDisruptionBudget", "No matching pods found", "disruption", Info),
        ("CalculateExpectedPodCountFailed", "Warning", "controllermanager", "PodDisruptionBudget",
         "Failed to calculate the number of expected pods: found no controllers for pod \"web-0\"", "disruption", Warning),
        ("LeaderElection", "Normal", "kube-controller-manager", "Lease",
         "cp-1_2a6c0c9e became leader", "control-plane", Info),
    ]);
}

#[test]
fn cluster_autoscaler() {
    // source: kubernetes/autoscaler cluster-autoscaler/processors/status/eventing_scale_up_processor.go,
    // core/scaleup/orchestrator/executor.go, core/scaledown/actuation/actuator.go, core/static_autoscaler.go
    let c = Classifier::builtin();
    check(&c, &[
        ("TriggeredScaleUp", "Normal", "cluster-autoscaler", "Pod",
         "pod triggered scale-up: [{eks-gpu-nodes 1->3 (max: 10)}]", "node-autoscaling", Info),
        ("NotTriggerScaleUp", "Normal", "cluster-autoscaler", "Pod",
         "pod didn't trigger scale-up: 2 node(s) didn't match Pod's node affinity/selector, 1 max node group size reached",
         "node-autoscaling", Warning),
        ("ScaledUpGroup", "Normal", "cluster-autoscaler", "ConfigMap",
         "Scale-up: setting group eks-gpu-nodes size to 3 instead of 1 (max: 10)", "node-autoscaling", Info),
        ("FailedToScaleUpGroup", "Warning", "cluster-autoscaler", "ConfigMap",
         "Scale-up failed for group eks-gpu-nodes: InsufficientInstanceCapacity", "node-autoscaling", Error),
        ("ScaleDown", "Normal", "cluster-autoscaler", "Node", "marked the node as toBeDeleted/unschedulable", "node-autoscaling", Info),
        ("ScaleDownEmpty", "Normal", "cluster-autoscaler", "ConfigMap",
         "Scale-down: removing empty node \"ip-10-0-1-149.ec2.internal\"", "node-autoscaling", Info),
        ("ScaleDownFailed", "Warning", "cluster-autoscaler", "Node",
         "failed to mark the node as toBeDeleted/unschedulable: nodes \"n1\" not found", "node-autoscaling", Warning),
        ("DeleteUnregistered", "Normal", "cluster-autoscaler", "ConfigMap", "Removed unregistered node n1", "node-autoscaling", Warning),
    ]);
}

#[test]
fn node_problem_detector() {
    // source: kubernetes/node-problem-detector config/kernel-monitor.json, docker-monitor.json,
    // readonly-monitor.json, health-checker-*.json, systemd-monitor.json
    let c = Classifier::builtin();
    check(&c, &[
        ("OOMKilling", "Warning", "kernel-monitor", "Node",
         "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB",
         "oom", Critical),
        ("KernelOops", "Warning", "kernel-monitor", "Node",
         "kernel: BUG: unable to handle kernel NULL pointer dereference at 0000000000000008", "node-problem", Critical),
        ("TaskHung", "Warning", "kernel-monitor", "Node", "task java:4242 blocked for more than 120 seconds.", "node-problem", Error),
        ("UnregisterNetDevice", "Warning", "kernel-monitor", "Node",
         "unregister_netdevice: waiting for eth0 to become free. Usage count = 1", "node-problem", Warning),
        ("DockerHung", "Warning", "kernel-monitor", "Node", "task docker:7 blocked for more than 300 seconds.", "node-problem", Critical),
        ("KubeletUnhealthy", "Warning", "health-checker", "Node", "kubelet:kubelet was found unhealthy; repair flag : true", "node-problem", Critical),
        ("ContainerdUnhealthy", "Warning", "health-checker", "Node", "cri:containerd was found unhealthy", "node-problem", Critical),
        ("CorruptDockerOverlay2", "Warning", "docker-monitor", "Node",
         "returned error: readlink /var/lib/docker/overlay2/l/abc: invalid argument", "node-problem", Critical),
        ("FilesystemIsReadOnly", "Warning", "readonly-monitor", "Node", "Remounting filesystem read-only", "node-problem", Critical),
        ("KubeletStart", "Warning", "systemd-monitor", "Node", "Started Kubernetes kubelet.", "node-problem", Warning),
        ("KernelHasNoDeadlock", "Normal", "kernel-monitor", "Node", "kernel has no deadlock", "node-problem", Info),
    ]);
}
