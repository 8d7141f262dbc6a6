//! Metadata extraction on real scheduler, controller and cluster-autoscaler
//! message formats, each copied from the source cited on its test.

use super::message_tests::{assert_has, extract};
use super::MetadataExtractor;
use schemas::model::NormalizedEvent;
use std::collections::BTreeMap;

#[test]
fn scheduler_messages() {
    // source: pkg/scheduler/framework/types.go (FitError), tainttoleration, noderesources plugins
    let out = extract("FailedScheduling", "default-scheduler", "Pod", "web-6f9c8d7b5-x2kqp",
        "0/5 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu, 3 Insufficient memory, 1 Insufficient nvidia.com/gpu. preemption: 0/5 nodes are available: 1 Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod.");
    assert_has(
        &out,
        &[
            ("nodes_available", "0"),
            ("nodes_total", "5"),
            (
                "untolerated_taint",
                "node-role.kubernetes.io/control-plane:",
            ),
            ("insufficient_cpu", "2"),
            ("insufficient_memory", "3"),
            ("insufficient_nvidia_com_gpu", "1"),
            ("owner_kind", "Deployment"),
            ("owner_name", "web"),
        ],
    );
    let out = extract("FailedScheduling", "default-scheduler", "Pod", "x",
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.");
    assert_has(
        &out,
        &[("unschedulable_nodes", "1"), ("affinity_mismatch", "2")],
    );
    let out = extract("FailedScheduling", "default-scheduler", "Pod", "x",
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.");
    assert_has(&out, &[("pvc_unbound", "true"), ("nodes_total", "1")]);
    // source: pkg/scheduler/schedule_one.go
    assert_has(
        &extract(
            "Scheduled",
            "default-scheduler",
            "Pod",
            "x",
            "Successfully assigned default/web-6f9c8d7b5-x2kqp to k8-node-20",
        ),
        &[("node", "k8-node-20")],
    );
    // source: pkg/scheduler/framework/preemption/preemption.go
    assert_has(
        &extract(
            "Preempted",
            "default-scheduler",
            "Pod",
            "x",
            "Preempted by pod 3a0e2b7c-1d2e on node node-2",
        ),
        &[("preemptor", "3a0e2b7c-1d2e"), ("node", "node-2")],
    );
}

#[test]
fn controller_messages() {
    // source: pkg/controller/deployment/sync.go (new and old formats)
    assert_has(
        &extract(
            "ScalingReplicaSet",
            "deployment-controller",
            "Deployment",
            "web",
            "Scaled up replica set web-6f9c8d7b5 from 0 to 3",
        ),
        &[
            ("child", "web-6f9c8d7b5"),
            ("scale_from", "0"),
            ("scale_to", "3"),
            ("reason_detail", "up"),
        ],
    );
    assert_has(
        &extract(
            "ScalingReplicaSet",
            "deployment-controller",
            "Deployment",
            "web",
            "Scaled down replica set web-7c5d9 to 0",
        ),
        &[
            ("child", "web-7c5d9"),
            ("scale_to", "0"),
            ("reason_detail", "down"),
        ],
    );
    // source: pkg/controller/controller_utils.go; owner from the ReplicaSet name
    assert_has(
        &extract(
            "SuccessfulCreate",
            "replicaset-controller",
            "ReplicaSet",
            "web-6f9c8d7b5",
            "Created pod: web-6f9c8d7b5-x2kqp",
        ),
        &[
            ("child", "web-6f9c8d7b5-x2kqp"),
            ("owner_kind", "Deployment"),
            ("owner_name", "web"),
        ],
    );
    // source: pkg/controller/statefulset/stateful_pod_control.go
    assert_has(
        &extract(
            "SuccessfulCreate",
            "statefulset-controller",
            "StatefulSet",
            "web",
            "create Claim data-web-0 Pod web-0 in StatefulSet web success",
        ),
        &[("claim", "data-web-0"), ("child", "web-0")],
    );
    assert_has(
        &extract(
            "SuccessfulCreate",
            "statefulset-controller",
            "StatefulSet",
            "web",
            "create Pod web-0 in StatefulSet web successful",
        ),
        &[("child", "web-0")],
    );
    // source: pkg/controller/daemon/daemon_controller.go
    assert_has(
        &extract(
            "FailedDaemonPod",
            "daemonset-controller",
            "DaemonSet",
            "fluentd",
            "Found failed daemon pod kube-system/fluentd-x2kqp on node node-3, will try to kill it",
        ),
        &[("child", "fluentd-x2kqp"), ("node", "node-3")],
    );
    // source: pkg/controller/cronjob/cronjob_controllerv2.go; owner of a CronJob's Job
    assert_has(
        &extract(
            "SawCompletedJob",
            "cronjob-controller",
            "CronJob",
            "backup",
            "Saw completed job: backup-28956720, status: Failed",
        ),
        &[("child", "backup-28956720"), ("reason_detail", "Failed")],
    );
    assert_has(
        &extract(
            "SuccessfulCreate",
            "job-controller",
            "Job",
            "backup-28956720",
            "Created pod: backup-28956720-7xk2p",
        ),
        &[
            ("child", "backup-28956720-7xk2p"),
            ("owner_kind", "CronJob"),
            ("owner_name", "backup"),
        ],
    );
    // source: pkg/controller/podautoscaler/horizontal.go, replica_calculator.go
    assert_has(
        &extract(
            "SuccessfulRescale",
            "horizontal-pod-autoscaler",
            "HorizontalPodAutoscaler",
            "web",
            "New size: 6; reason: cpu resource utilization (percentage of request) above target",
        ),
        &[
            ("replicas", "6"),
            (
                "reason_detail",
                "cpu resource utilization (percentage of request) above target",
            ),
        ],
    );
    assert_has(
        &extract("FailedGetResourceMetric", "horizontal-pod-autoscaler", "HorizontalPodAutoscaler", "web",
            "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"),
        &[("metric", "cpu")],
    );
}

#[test]
fn cluster_autoscaler_messages() {
    // source: kubernetes/autoscaler cluster-autoscaler/processors/status/eventing_scale_up_processor.go + ScaleUpInfo.String
    assert_has(
        &extract(
            "TriggeredScaleUp",
            "cluster-autoscaler",
            "Pod",
            "x",
            "pod triggered scale-up: [{eks-gpu-nodes 1->3 (max: 10)}]",
        ),
        &[
            ("node_group", "eks-gpu-nodes"),
            ("scale_from", "1"),
            ("scale_to", "3"),
            ("scale_max", "10"),
        ],
    );
    // source: cluster-autoscaler/core/scaleup/orchestrator/executor.go
    assert_has(
        &extract(
            "ScaledUpGroup",
            "cluster-autoscaler",
            "ConfigMap",
            "cluster-autoscaler-status",
            "Scale-up: setting group eks-gpu-nodes size to 3 instead of 1 (max: 10)",
        ),
        &[
            ("node_group", "eks-gpu-nodes"),
            ("scale_from", "1"),
            ("scale_to", "3"),
            ("scale_max", "10"),
        ],
    );
    assert_has(
        &extract(
            "ScaledUpGroup",
            "cluster-autoscaler",
            "ConfigMap",
            "s",
            "Scale-up: group eks-gpu-nodes size set to 3 instead of 1 (max: 10)",
        ),
        &[("node_group", "eks-gpu-nodes"), ("scale_to", "3")],
    );
    assert_has(
        &extract(
            "FailedToScaleUpGroup",
            "cluster-autoscaler",
            "ConfigMap",
            "s",
            "Scale-up failed for group eks-gpu-nodes: InsufficientInstanceCapacity",
        ),
        &[("node_group", "eks-gpu-nodes")],
    );
    // source: cluster-autoscaler/core/scaledown/actuation/actuator.go
    assert_has(
        &extract(
            "ScaleDownEmpty",
            "cluster-autoscaler",
            "ConfigMap",
            "s",
            "Scale-down: removing empty node \"ip-10-0-1-149.ec2.internal\"",
        ),
        &[("node", "ip-10-0-1-149.ec2.internal")],
    );
    assert_has(
        &extract("ScaleDown", "cluster-autoscaler", "ConfigMap", "s",
            "Scale-down: removing node ip-10-0-1-7.ec2.internal, utilization: {0.1 0.05 0 0 cpu}, pods to reschedule: default/web-0"),
        &[("node", "ip-10-0-1-7.ec2.internal")],
    );
    // source: cluster-autoscaler/core/static_autoscaler.go
    assert_has(
        &extract(
            "DeleteUnregistered",
            "cluster-autoscaler",
            "ConfigMap",
            "s",
            "Removed unregistered node ip-10-0-9-9.ec2.internal",
        ),
        &[("node", "ip-10-0-9-9.ec2.internal")],
    );
}

#[test]
fn node_status_messages_and_kubelet_instance() {
    // source: pkg/kubelet/nodestatus/setters.go ("Node %s status is now: %s"), node_lifecycle_controller.go
    let mut ev = NormalizedEvent {
        reason: "NodeHasSufficientMemory".into(),
        reporting_controller: "kubelet".into(),
        reporting_instance: "node-1".into(),
        note: "Node node-1 status is now: NodeHasSufficientMemory".into(),
        ..Default::default()
    };
    ev.regarding.kind = "Node".into();
    ev.regarding.name = "node-1".into();
    let mut out = BTreeMap::new();
    MetadataExtractor::builtin().extract(&ev, &mut out);
    assert_eq!(
        out,
        BTreeMap::from([("node".to_string(), "node-1".to_string())])
    );

    // A kubelet event about a pod: the node is the kubelet's reporting instance.
    let mut ev = NormalizedEvent {
        reason: "Pulling".into(),
        reporting_controller: "kubelet".into(),
        reporting_instance: "k8-node-20".into(),
        note: "Pulling image \"ghcr.io/actions/actions-runner:latest\"".into(),
        ..Default::default()
    };
    ev.regarding.kind = "Pod".into();
    ev.regarding.name = "swarm-runners-scaleset-ka0s-p5l6k-runner-6jbpj".into();
    ev.regarding.field_path = "spec.containers{runner}".into();
    let mut out = BTreeMap::new();
    MetadataExtractor::builtin().extract(&ev, &mut out);
    assert_has(
        &out,
        &[
            ("node", "k8-node-20"),
            ("container", "runner"),
            ("image", "ghcr.io/actions/actions-runner:latest"),
        ],
    );

    assert_has(
        &extract(
            "RegisteredNode",
            "node-controller",
            "Node",
            "node-1",
            "Node node-1 event: Registered Node node-1 in Controller",
        ),
        &[("node", "node-1")],
    );
}
