//! The workload-level failures correlation builds incidents on (issue 17): a
//! failed Job, a CronJob's missed or failed runs, a stalled Deployment, a
//! controller that cannot create its pods, a claim that lost its volume. Each
//! must get its category and a severity of at least `warning` from an explicit
//! rule (never `unknown`, never a `fallback:` rule), with the messages the
//! controllers really write.
//!
//! Messages are copied from k8s.io/kubernetes v1.37.2 (Go module source):
//! pkg/controller/job/job_controller.go, pod_failure_policy.go,
//! pkg/controller/cronjob/cronjob_controllerv2.go,
//! pkg/controller/deployment/util/deployment_util.go and progress.go,
//! pkg/controller/controller_utils.go (FailedCreate "Error creating: %v"),
//! pkg/controller/statefulset/stateful_set_control.go,
//! pkg/controller/volume/persistentvolume/pv_controller.go.

use kevents_processor::classify::Classifier;
use schemas::model::{NormalizedEvent, Severity};

fn ev(reason: &str, ty: &str, component: &str, kind: &str, note: &str) -> NormalizedEvent {
    let mut e = NormalizedEvent {
        reason: reason.into(),
        event_type: ty.into(),
        reporting_controller: component.into(),
        note: note.into(),
        namespace: "batch".into(),
        ..Default::default()
    };
    e.regarding.kind = kind.into();
    e
}

type Case = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str, Severity);

fn check(cases: &[Case]) {
    let c = Classifier::builtin();
    for &(reason, ty, component, kind, note, category, severity) in cases {
        let got = c.classify(&ev(reason, ty, component, kind, note));
        let what = format!("{reason} {ty} {component} {kind} {note:?} (rule {:?})", got.rule);
        assert!(!got.unknown, "{what}: unknown");
        assert!(!got.rule.starts_with("fallback:"), "{what}: only a fallback matched");
        assert_eq!((got.category, got.severity), (category, severity), "{what}");
        assert!(got.severity >= Severity::Warning, "{what}: below warning");
    }
}

#[test]
fn failed_jobs_are_job_errors() {
    use Severity::Error;
    check(&[
        ("BackoffLimitExceeded", "Warning", "job-controller", "Job", "Job has reached the specified backoff limit", "job", Error),
        ("DeadlineExceeded", "Warning", "job-controller", "Job", "Job was active longer than specified deadline", "job", Error),
        ("PodFailurePolicy", "Warning", "job-controller", "Job",
         "Container main for pod batch/pi-x7k2p failed with exit code 42 matching FailJob rule at index 0", "job", Error),
        ("MaxFailedIndexesExceeded", "Warning", "job-controller", "Job",
         "Job has exceeded the specified maximal number of failed indexes", "job", Error),
        ("FailedIndexes", "Warning", "job-controller", "Job", "Job has failed indexes", "job", Error),
        ("FailedCreate", "Warning", "job-controller", "Job",
         "Error creating: pods \"pi-x7k2p\" is forbidden: error looking up service account batch/runner: serviceaccount \"runner\" not found",
         "admission", Error),
        ("FailedCreate", "Warning", "job-controller", "Job", "Error creating: Internal error occurred: etcdserver: request timed out", "job", Error),
    ]);
}

#[test]
fn cronjob_missed_and_failed_runs_are_job_warnings_or_errors() {
    use Severity::{Error, Warning};
    check(&[
        ("SawCompletedJob", "Normal", "cronjob-controller", "CronJob", "Saw completed job: backup-28956720, condition: Failed", "job", Warning),
        ("SawCompletedJob", "Normal", "cronjob-controller", "CronJob", "Saw completed job: backup-28956720, status: Failed", "job", Warning),
        ("MissSchedule", "Warning", "cronjob-controller", "CronJob",
         "Missed scheduled time to start a job: Sun, 06 Dec 2026 09:00:00 +0000", "job", Warning),
        ("FailedNeedsStart", "Warning", "cronjob-controller", "CronJob", "Cannot determine if job needs to be started: too many missed start time (> 100)", "job", Error),
        ("TooManyMissedTimes", "Warning", "cronjob-controller", "CronJob", "too many missed start times: 101. Set or decrease .spec.startingDeadlineSeconds or check clock skew", "job", Error),
        ("InvalidSchedule", "Warning", "cronjob-controller", "CronJob", "invalid schedule: 0 0 31 2 * : time difference between two schedules is less than 1 second", "job", Error),
        ("UnparseableSchedule", "Warning", "cronjob-controller", "CronJob", "unparseable schedule: \"* * *\" : expected exactly 5 fields, found 3: * * *", "job", Error),
        ("UnknownTimeZone", "Warning", "cronjob-controller", "CronJob", "invalid timeZone: \"Mars/Olympus\": unknown time zone Mars/Olympus", "job", Error),
        ("FailedCreate", "Warning", "cronjob-controller", "CronJob", "Error creating job: jobs.batch \"backup-28956720\" already exists", "job", Error),
    ]);
}

#[test]
fn stalled_rollouts_and_pod_creation_failures() {
    use Severity::Error;
    check(&[
        ("ProgressDeadlineExceeded", "Warning", "deployment-controller", "Deployment",
         "ReplicaSet \"web-6f9c8d7b5\" has timed out progressing.", "rollout", Error),
        ("FailedCreate", "Warning", "statefulset-controller", "StatefulSet",
         "create Pod db-0 in StatefulSet db failed error: pods \"db-0\" is forbidden: exceeded quota: compute, requested: cpu=2, used: cpu=8, limited: cpu=8",
         "admission", Error),
        ("FailedCreate", "Warning", "statefulset-controller", "StatefulSet",
         "create Claim data-db-0 for Pod db-0 in StatefulSet db failed error: persistentvolumeclaims \"data-db-0\" already exists",
         "workload", Error),
        ("FailedCreate", "Warning", "daemonset-controller", "DaemonSet",
         "Error creating: pods \"agent-\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)",
         "admission", Error),
        ("FailedCreate", "Warning", "replicaset-controller", "ReplicaSet",
         "Error creating: Internal error occurred: failed calling webhook", "admission", Error),
        ("FailedCreate", "Warning", "replicaset-controller", "ReplicaSet",
         "Error creating: Timeout: request did not complete within requested timeout", "workload", Error),
    ]);
}

#[test]
fn a_claim_that_lost_its_volume_is_critical() {
    use Severity::{Critical, Error};
    check(&[
        ("ClaimLost", "Warning", "persistentvolume-controller", "PersistentVolumeClaim",
         "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!", "storage-provisioning", Critical),
        ("ClaimLost", "Warning", "persistentvolume-controller", "PersistentVolumeClaim",
         "Bound claim has lost its PersistentVolume. Data on the volume is lost!", "storage-provisioning", Critical),
        ("ClaimMisbound", "Warning", "persistentvolume-controller", "PersistentVolumeClaim",
         "Two claims are bound to the same volume, this one is bound incorrectly", "storage-provisioning", Error),
    ]);
}
