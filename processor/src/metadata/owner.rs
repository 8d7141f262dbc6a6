//! The workload that owns the involved object, guessed from its name.
//!
//! Events carry no owner references, but controllers name what they create
//! predictably. The heuristics and their limits:
//!
//! - **ReplicaSet `x-<hash>` → Deployment `x`.** The pod-template-hash is
//!   `rand.SafeEncodeString` of a decimal uint32: 6–10 characters from the
//!   alphabet `bcdfghjklmnpqrstvwxz2456789` (no vowels, no 0/1/3), so a name
//!   part like `-backend` or `-v2` never looks like one. A hand-made ReplicaSet
//!   whose last part happens to be vowel-free (`x-tcp`... of 6+ chars) would be
//!   misread; that is rare.
//! - **Pod `x-<hash>-<5>` → Deployment `x`** (the ReplicaSet's pod; generated
//!   suffixes use the same alphabet, 5 characters).
//! - **Job `x-<unix minutes>` → CronJob `x`** (the CronJob controller names
//!   its Jobs `<cronjob>-<scheduled time in minutes>`: 8 digits; accepted
//!   range 20,000,000–59,999,999, i.e. years 2008–2084).
//! - **Pod `x-<minutes>-<5>` → CronJob `x`** (a pod of such a Job).
//! - **Not guessed:** a Pod `x-<5>` may belong to a Job, a DaemonSet or a bare
//!   ReplicaSet, and a Pod `x-<n>` may be a StatefulSet's or a hand-written
//!   name. Emitting an owner there would be wrong too often. The controllers'
//!   own events name the pod they create (`child`, e.g. "create Pod web-0 in
//!   StatefulSet web successful"), which is the reliable link for the
//!   correlation stage to join on.
//! - Names truncated by the API server's generateName (base names over 58
//!   characters) are not recognised.

/// Characters of `k8s.io/apimachinery/pkg/util/rand` generated suffixes.
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `SAFE` as a byte table: every event's involved name is tested.
static IS_SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < SAFE.len() {
        t[SAFE[i] as usize] = true;
        i += 1;
    }
    t
};

fn is_safe(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| IS_SAFE[b as usize])
}

fn is_template_hash(s: &str) -> bool {
    is_safe(s, 6, 10)
}

fn is_pod_suffix(s: &str) -> bool {
    is_safe(s, 5, 5)
}

fn is_cron_minutes(s: &str) -> bool {
    s.len() == 8
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u64>()
            .is_ok_and(|m| (20_000_000..60_000_000).contains(&m))
}

/// Splits `base-suffix` at the last dash; `base` must be non-empty.
fn split_last(name: &str) -> Option<(&str, &str)> {
    // A byte scan: names are short, and every event's involved name comes here.
    let dash = name.bytes().rposition(|b| b == b'-')?;
    (dash > 0).then(|| (&name[..dash], &name[dash + 1..]))
}

/// `(owner kind, owner name)` for an involved object, when the name allows.
pub(crate) fn guess_owner<'a>(kind: &str, name: &'a str) -> Option<(&'static str, &'a str)> {
    match kind {
        "ReplicaSet" => {
            let (base, hash) = split_last(name)?;
            is_template_hash(hash).then_some(("Deployment", base))
        }
        "Job" => {
            let (base, minutes) = split_last(name)?;
            is_cron_minutes(minutes).then_some(("CronJob", base))
        }
        "Pod" => {
            let (rest, suffix) = split_last(name)?;
            if !is_pod_suffix(suffix) {
                return None;
            }
            let (base, middle) = split_last(rest)?;
            // Cron minutes first: an all-digit 8-char part is also a valid hash.
            if is_cron_minutes(middle) {
                Some(("CronJob", base))
            } else if is_template_hash(middle) {
                Some(("Deployment", base))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The ReplicaSet `x-<hash>` of a Deployment's pod `x-<hash>-<5>`, when the
/// name has that shape (the step between a pod and its Deployment).
pub(crate) fn guess_replica_set(pod: &str) -> Option<&str> {
    let (rest, suffix) = split_last(pod)?;
    let (_, hash) = split_last(rest)?;
    (is_pod_suffix(suffix) && is_template_hash(hash) && !is_cron_minutes(hash)).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_from_replicaset_and_pod_names() {
        // Names as printed by `kubectl describe` in real clusters.
        assert_eq!(
            guess_owner("ReplicaSet", "web-6f9c8d7b5"),
            Some(("Deployment", "web"))
        );
        assert_eq!(
            guess_owner("Pod", "web-6f9c8d7b5-x2kqp"),
            Some(("Deployment", "web"))
        );
        assert_eq!(
            guess_owner("Pod", "metrics-server-867d48dc9c-zmwq8"),
            Some(("Deployment", "metrics-server"))
        );
        assert_eq!(
            guess_owner("Pod", "triton-79569cfbbc-m2wcc"),
            Some(("Deployment", "triton"))
        );
    }

    #[test]
    fn replica_set_of_a_deployment_pod() {
        assert_eq!(guess_replica_set("web-6f9c8d7b5-x2kqp"), Some("web-6f9c8d7b5"));
        assert_eq!(guess_replica_set("backup-28956720-7xk2p"), None, "a CronJob's pod");
        assert_eq!(guess_replica_set("web-0"), None);
    }

    #[test]
    fn cronjob_from_job_and_pod_names() {
        assert_eq!(
            guess_owner("Job", "backup-28956720"),
            Some(("CronJob", "backup"))
        );
        assert_eq!(
            guess_owner("Pod", "backup-28956720-7xk2p"),
            Some(("CronJob", "backup"))
        );
        // A Job that is not a CronJob's keeps no owner.
        assert_eq!(guess_owner("Job", "migrate-db"), None);
        assert_eq!(guess_owner("Job", "pi-12345"), None);
    }

    #[test]
    fn ambiguous_names_get_no_owner() {
        assert_eq!(
            guess_owner("Pod", "fluentd-x2kqp"),
            None,
            "Job, DaemonSet or bare ReplicaSet"
        );
        assert_eq!(
            guess_owner("Pod", "web-0"),
            None,
            "StatefulSet or hand-written"
        );
        assert_eq!(guess_owner("Pod", "nginx"), None);
        assert_eq!(
            guess_owner("ReplicaSet", "api-backend"),
            None,
            "vowels: not a hash"
        );
        assert_eq!(guess_owner("Pod", "my-app-backend-x2kqp"), None);
        assert_eq!(guess_owner("Node", "web-6f9c8d7b5"), None);
        assert_eq!(guess_owner("ReplicaSet", "-6f9c8d7b5"), None);
    }
}
