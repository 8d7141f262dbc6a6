//! Leader election with a `coordination.k8s.io/v1` Lease, after client-go's
//! `leaderelection`: acquire when the lease is free or expired, renew every
//! `retry_period`, give up when renewal has failed for `renew_deadline`.
//!
//! The leader epoch is the Lease's `leaseTransitions` after this replica took it.
//! It goes into every record, so downstream can drop a deposed leader's late
//! records; (cluster, uid, resourceVersion) dedup covers the rest. Optimistic
//! concurrency (the Lease's resourceVersion) makes two replicas racing for an
//! expired lease safe: one update wins, the other gets 409 Conflict.
//!
//! A leader cut off from the API server must stop publishing before another replica
//! can take the Lease. Another replica takes it once `lease_duration` has passed since
//! the renewTime we last wrote; we stamp renewTime after the attempt started, so the
//! leader steps down at (start of its last successful attempt) + `renew_deadline`,
//! which config validation keeps below `lease_duration`. Each attempt runs under that
//! same deadline: a renewal request that hangs on a silent connection (no answer, no
//! error) cannot hold the step-down back.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio::time::Instant;

use runtime::backoff::Backoff;
use crate::config::LeaderElectionConfig;

/// The settings with durations resolved.
#[derive(Debug, Clone)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

/// What an acquisition attempt found.
#[derive(Debug, PartialEq)]
pub enum Attempt {
    /// We hold the lease, with this epoch.
    Leader(i64),
    /// Someone else holds a valid lease.
    Follower { holder: String },
}

/// Now, built from `SystemTime` (jiff's `Timestamp::now` needs its `std` feature,
/// which nothing here guarantees).
fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::try_from(std::time::SystemTime::now()).expect("clock after 1970")
}

impl Elector {
    pub fn new(client: kube::Client, cfg: &LeaderElectionConfig, identity: String) -> Self {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            name: cfg.lease_name.clone(),
            identity,
            lease_duration: Duration::from_secs(cfg.lease_duration_secs),
            renew_deadline: Duration::from_secs(cfg.renew_deadline_secs),
            retry_period: Duration::from_secs(cfg.retry_period_secs),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self, transitions: i32, acquire: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_duration.as_secs() as i32),
            acquire_time: Some(acquire.unwrap_or(MicroTime(now()))),
            renew_time: Some(MicroTime(now())),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One attempt to acquire or renew.
    pub async fn try_acquire(&self) -> Result<Attempt, kube::Error> {
        let existing = self.api.get_opt(&self.name).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(self.spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leader(0)),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Follower { holder: "?".into() }),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
        let renewed = spec.renew_time.as_ref().map(|t| t.0).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let expired = now().duration_since(renewed).as_secs_f64() > duration.as_secs_f64();
        let (transitions, acquire) = if holder == self.identity {
            (transitions, spec.acquire_time.clone())
        } else if holder.is_empty() || expired {
            (transitions + 1, None)
        } else {
            return Ok(Attempt::Follower { holder });
        };
        lease.spec = Some(self.spec(transitions, acquire));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Attempt::Leader(transitions as i64)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Follower { holder }),
            Err(e) => Err(e),
        }
    }

    /// Wait until this replica leads; returns the epoch and when the successful attempt
    /// started (the renew deadline counts from there).
    pub async fn acquire(&self) -> (i64, Instant) {
        let mut backoff = Backoff::new(self.retry_period, self.retry_period * 4, Duration::from_secs(60));
        loop {
            let started = Instant::now();
            // A hung attempt must not block the standby forever either.
            let attempt = match tokio::time::timeout(self.renew_deadline, self.try_acquire()).await {
                Ok(a) => a,
                Err(_) => {
                    tracing::warn!(deadline = ?self.renew_deadline, "lease acquisition did not answer in time");
                    continue;
                }
            };
            match attempt {
                Ok(Attempt::Leader(epoch)) => return (epoch, started),
                Ok(Attempt::Follower { holder }) => {
                    tracing::debug!(%holder, "lease held by another replica");
                    tokio::time::sleep(self.retry_period).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease acquisition failed");
                    tokio::time::sleep(backoff.next_delay(None)).await;
                }
            }
        }
    }

    /// Renew every `retry_period` until someone else took the lease or no renewal
    /// succeeded within `renew_deadline` of the start of the last successful one
    /// (`renewed_at`, first from [`Elector::acquire`]). Returns when leadership is lost;
    /// the caller stops publishing at once.
    pub async fn hold(&self, epoch: i64, mut renewed_at: Instant) {
        loop {
            let step_down = renewed_at + self.renew_deadline;
            if Instant::now() + self.retry_period < step_down {
                tokio::time::sleep(self.retry_period).await;
            }
            let started = Instant::now();
            match tokio::time::timeout_at(step_down, self.try_acquire()).await {
                Ok(Ok(Attempt::Leader(e))) if e == epoch => renewed_at = started,
                Ok(Ok(other)) => {
                    tracing::warn!(?other, "lost the lease");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed"),
                Err(_) => {}
            }
            if Instant::now() >= renewed_at + self.renew_deadline {
                tracing::warn!(deadline = ?self.renew_deadline, "lease not renewed within the renew deadline: stepping down");
                return;
            }
        }
    }

    /// Give the lease up on graceful shutdown so a standby takes over at once.
    pub async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await {
            let mine = lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(&self.identity);
            if mine {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                    spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
                }
                let _ = self.api.replace(&self.name, &PostParams::default(), &lease).await;
            }
        }
    }
}
