//! Background noise: what a healthy fleet says all day. Mostly pod starts of healthy
//! workloads (scheduler `Scheduled`, kubelet `Pulled`/`Created`/`Started`, controller
//! `SuccessfulCreate`), the odd rollout, and harmless warnings: a readiness probe
//! failing once while an app warms up (pkg/kubelet/prober), and the kubelet's
//! `DNSConfigForming` (pkg/kubelet/network/dns/dns.go: `Nameserver limits were
//! exceeded, some nameservers have been omitted, the applied nameserver line is: %s`)
//! repeating on pods of a namespace whose resolv.conf lists too many servers.
//!
//! [`noise_scenario`] renders a few minutes of it as a scenario; [`NoiseStream`]
//! produces it endlessly, on demand, for the fleet driver.

use super::script::{Script, NORMAL, WARNING};
use crate::sim::objects::{ClusterCtx, ObjRef, SimNode, Workload, NAMESPACES};
use crate::sim::recorder::{series, Emitter, Intent, Recorders, Sink, Tag};
use crate::sim::timeline::{Agenda, Emission, Nanos, MILLI, SECOND};
use std::collections::VecDeque;

/// Pods the DNS warning repeats on, at most.
const DNS_POOL: usize = 2000;

/// Workloads and long-lived pods the noise draws from.
pub(crate) struct NoiseState {
    workloads: Vec<Workload>,
    dns_pods: VecDeque<(ObjRef, SimNode)>,
}

impl NoiseState {
    pub fn new(s: &mut Script, workloads: usize) -> Self {
        let mut w = Vec::new();
        for _ in 0..workloads.max(1) {
            let ns = *s.ids.pick(NAMESPACES);
            w.push(Workload::new(&mut s.ids, ns));
        }
        NoiseState { workloads: w, dns_pods: VecDeque::new() }
    }
}

/// Writes one noise episode starting at `t`.
pub(crate) fn episode(s: &mut Script, st: &mut NoiseState, t: Nanos) {
    let roll = s.ids.range(0, 99);
    if roll < 4 {
        // A rollout of one workload: a new ReplicaSet takes over.
        let i = s.ids.range(0, st.workloads.len() as i64 - 1) as usize;
        let ns = st.workloads[i].namespace().to_string();
        let fresh = Workload::new(&mut s.ids, &ns);
        let w = Workload { replica_set: fresh.replica_set, image: fresh.image, ..st.workloads[i].clone() };
        let n = s.ids.range(1, 3) as usize;
        let (pods, at) = s.rollout(t, &w, n, Tag::NONE);
        for p in &pods {
            let node = s.node();
            s.pod_start(at, p, &node, &w, true);
        }
        st.workloads[i] = w;
    } else if roll < 14 && !st.dns_pods.is_empty() {
        let i = s.ids.range(0, st.dns_pods.len() as i64 - 1) as usize;
        let (pod, node) = st.dns_pods[i].clone();
        let msg = "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 10.0.0.2 10.0.0.3";
        s.kubelet(t, &node, &pod, WARNING, "DNSConfigForming", msg.into(), Tag::NONE);
    } else {
        // A replacement or scaled pod of a healthy workload starts.
        let i = s.ids.range(0, st.workloads.len() as i64 - 1) as usize;
        let w = st.workloads[i].clone();
        let pod = w.pod(&mut s.ids);
        let node = s.node();
        let mut at = t;
        if s.ids.chance(0.5) {
            s.controller(at, "replicaset-controller", &w.replica_set, NORMAL, "SuccessfulCreate", format!("Created pod: {}", pod.name), Tag::NONE);
            at += 10 * MILLI;
        }
        let fresh = s.ids.chance(0.15);
        let started = s.pod_start(at, &pod, &node, &w, fresh);
        if s.ids.chance(0.1) {
            let ip = s.ids.pod_ip();
            let msg = format!("Readiness probe failed: Get \"http://{ip}:8080/ready\": dial tcp {ip}:8080: connect: connection refused");
            let at = s.at(started + 2 * SECOND, 3000);
            s.kubelet(at, &node, &pod.container(&w.container), WARNING, "Unhealthy", msg, Tag::NONE);
        }
        if w.namespace() == "data" {
            st.dns_pods.push_back((pod, node));
            if st.dns_pods.len() > DNS_POOL {
                st.dns_pods.pop_front();
            }
        }
    }
}

/// A few minutes of background noise in one cluster, as a scenario (no incident).
pub(crate) fn noise_scenario(s: &mut Script) {
    let mut st = NoiseState::new(s, 8);
    let n = s.ids.range(40, 80);
    let span = 300 * SECOND;
    let mut times: Vec<Nanos> = (0..n).map(|_| s.t0 + s.ids.jitter(span)).collect();
    times.sort_unstable();
    for t in times {
        episode(s, &mut st, t);
    }
}


/// Endless background noise for one cluster, produced as fast as it is asked for.
///
/// Episodes start at the time they are asked for; their later steps (a container
/// starting seconds after it was scheduled) wait in a queue until their time comes.
/// Everything goes through the same recorder emulation as scenarios, except the
/// scheduler's `Scheduled` singletons, which are written directly: they never repeat,
/// so the recorder would only hold them in its cache for six minutes.
pub struct NoiseStream {
    script: Script,
    state: NoiseState,
    recorders: Recorders,
    sink: Sink,
    pending: Agenda<Intent>,
    /// Episodes started so far: each starts a nanosecond before the previous one of the
    /// same call, so no two share a timestamp (client-go names an Event after its
    /// object and `UnixNano()`; two episodes of one ReplicaSet at one instant would
    /// write the same name, which a real API server refuses as AlreadyExists).
    episodes: u64,
}

impl NoiseStream {
    pub fn new(seed: u64, cluster: ClusterCtx, origin: Nanos) -> Self {
        let mut script = Script::new(seed, cluster, "default", origin);
        let state = NoiseState::new(&mut script, 40);
        NoiseStream { script, state, recorders: Recorders::new(), sink: Sink::new(origin, false), pending: Agenda::default(), episodes: 0 }
    }

    /// Appends at least `n` emissions for time `now` to `out` (an episode may add a
    /// few more than asked).
    pub fn fill(&mut self, now: Nanos, n: usize, out: &mut Vec<Emission>) {
        let target = out.len() + n;
        let mut guard = 0usize;
        while out.len() < target && guard < n * 64 + 64 {
            guard += 1;
            let Some(intent) = self.pending.pop_due(now) else {
                self.episodes += 1;
                episode(&mut self.script, &mut self.state, now - (self.episodes % 1_000_000) as Nanos);
                for i in self.script.intents.drain(..) {
                    self.pending.push(i.at, i);
                }
                continue;
            };
            match &intent.emitter {
                Emitter::Series { controller, instance } if intent.reason == "Scheduled" => {
                    let uid = self.script.ids.uuid();
                    out.push(Emission::Apply(series::singleton(controller, instance, &intent, uid)));
                }
                _ => {
                    self.recorders.record(&mut self.script.ids, &mut self.sink, &intent);
                    out.extend(self.sink.emissions.drain(..).map(|e| e.emission));
                }
            }
        }
    }

    /// Occurrences the spam filter dropped so far.
    pub fn suppressed(&self) -> u64 {
        self.recorders.suppressed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_fills_what_is_asked_and_is_seeded() {
        let t0 = 1_700_000_000 * SECOND;
        let run = |seed| {
            let mut s = NoiseStream::new(seed, ClusterCtx::new("sim-1", 4), t0);
            let mut out = Vec::new();
            for i in 0..50 {
                s.fill(t0 + i * 100 * MILLI, 40, &mut out);
            }
            out
        };
        let a = run(1);
        assert!(a.len() >= 2000);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        let warnings = a
            .iter()
            .filter(|e| matches!(e, Emission::Apply(ev) if ev.type_.as_deref() == Some("Warning")))
            .count();
        assert!(warnings > 0 && warnings * 5 < a.len(), "{warnings} of {}", a.len());
    }
}
