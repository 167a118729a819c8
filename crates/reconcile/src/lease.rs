//! Leader election on a `coordination.k8s.io/v1` Lease, client-go's LeaseLock model: read the
//! Lease, take it when it is free, ours or expired by writing it back with the
//! `resourceVersion` read (a 409 means another replica won), renew while leading, and stop
//! leading as soon as a renewal has not succeeded within the renew deadline — before the
//! Lease can expire and another replica take it (Argo's #2117: an old leader kept working).
//! Expiry is judged as client-go does, on this replica's own clock: a holder's Lease is free
//! once its record has not changed for its duration since this replica last saw it change,
//! whatever the two machines' clocks say; each renewal is cut off at the renew deadline.
//! Durations are Argo's: lease 15 s, renew deadline 10 s, retry 2 s. Whether a Lease may be
//! taken is a pure function of the Lease, the identity and how long its record stood still.

use std::{sync::Mutex, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, api::PostParams};
use tokio::time::Instant;

/// Timings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum TimingError {
    /// They must be ordered lease > renew deadline > retry, the lease at least a second.
    #[error(
        "leader election needs lease duration ({lease:?}) > renew deadline ({renew_deadline:?}) > retry period ({retry:?}), and a lease of at least 1s"
    )]
    Disordered {
        /// The lease duration.
        lease: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
        /// The retry period.
        retry: Duration,
    },
}

/// How long a Lease lasts, how soon a leader must have renewed it, and how often to try.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// `leaseDurationSeconds`: a Lease not renewed for this long is free.
    pub lease: Duration,
    /// A leader that has not renewed for this long steps down.
    pub renew_deadline: Duration,
    /// Pause between attempts.
    pub retry: Duration,
}

impl Timing {
    /// Checks that the timings are ordered as election needs.
    pub fn check(self) -> Result<Self, TimingError> {
        let ordered = self.lease >= Duration::from_secs(1)
            && self.lease > self.renew_deadline
            && self.renew_deadline > self.retry
            && !self.retry.is_zero();
        if ordered {
            Ok(self)
        } else {
            Err(TimingError::Disordered {
                lease: self.lease,
                renew_deadline: self.renew_deadline,
                retry: self.retry,
            })
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// Whether `identity` may hold `spec`: nobody holds it, `identity` does, or its record has
/// stood still (`unchanged_for`, on this replica's clock) for the Lease's duration.
pub fn may_hold(spec: &LeaseSpec, identity: &str, unchanged_for: Duration) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() || holder == identity {
        return true;
    }
    let seconds = u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(0);
    unchanged_for >= Duration::from_secs(seconds)
}

/// What identifies one writing of a Lease record.
fn record(spec: &LeaseSpec) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        spec.holder_identity, spec.renew_time, spec.acquire_time, spec.lease_transitions
    )
}

/// One replica's claim on a Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The record last read, and when (this replica's clock) it was first seen.
    observed: Mutex<Option<(String, Instant)>>,
}

impl Elector {
    /// A claim on the Lease `name` (in `api`'s namespace) for `identity`.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: Timing) -> Self {
        Self {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            observed: Mutex::new(None),
        }
    }

    /// How long the record `spec` has stood still as this replica saw it.
    fn unchanged_for(&self, spec: &LeaseSpec) -> Duration {
        let key = record(spec);
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match observed.as_ref() {
            Some((seen, since)) if *seen == key => since.elapsed(),
            _ => {
                *observed = Some((key, Instant::now()));
                Duration::ZERO
            }
        }
    }

    /// Takes or renews the Lease; `Ok(false)` when another replica holds it.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let seconds = i32::try_from(self.timing.lease.as_secs()).unwrap_or(15);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(err) => Err(err),
            };
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if !may_hold(&spec, &self.identity, self.unchanged_for(&spec)) {
            return Ok(false);
        }
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(seconds);
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Gives the Lease up (when shutting down), so another replica need not wait for it to
    /// expire.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_hold().await {
                Ok(true) => return,
                Ok(false) => {}
                // Refused (a missing RBAC rule) never heals by waiting: said loudly.
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    tracing::error!("lease {}: the API server refused: {}", self.name, s.message);
                }
                Err(err) => tracing::debug!("lease {}: {err}", self.name),
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Renews the Lease until a renewal has not succeeded within the renew deadline (or
    /// another replica took it); returns then, when this replica must stop leading.
    pub async fn keep(&self) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry).await;
            let left = self.timing.renew_deadline.saturating_sub(renewed.elapsed());
            match tokio::time::timeout(left, self.try_hold()).await {
                Ok(Ok(true)) => renewed = Instant::now(),
                Ok(Ok(false)) => return,
                Ok(Err(err)) => tracing::warn!("renewing lease {}: {err}", self.name),
                Err(_) => tracing::warn!("renewing lease {}: no answer in time", self.name),
            }
            if renewed.elapsed() >= self.timing.renew_deadline {
                return;
            }
        }
    }

    /// Runs `work` while this replica leads, forever: acquire, run until the lease is lost
    /// (the work is dropped at once), acquire again. Returns if `work` ends by itself.
    pub async fn lead<F, W>(&self, work: W)
    where
        W: Fn() -> F,
        F: Future<Output = ()>,
    {
        loop {
            self.acquire().await;
            tracing::info!("{} leads (lease {})", self.identity, self.name);
            tokio::select! {
                () = work() => return,
                () = self.keep() => tracing::warn!("{} lost lease {}", self.identity, self.name),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            // Far ahead: another machine's clock says nothing here.
            renew_time: Some(MicroTime("2099-01-01T00:00:00Z".parse().unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_free_when_unheld_ours_or_still_for_its_duration() {
        let still = Duration::from_secs;
        assert!(may_hold(&spec(None), "a", still(0)));
        assert!(may_hold(&spec(Some("a")), "a", still(0)));
        assert!(!may_hold(&spec(Some("b")), "a", still(14)));
        assert!(may_hold(&spec(Some("b")), "a", still(15)));
    }

    #[test]
    fn timings_must_be_ordered() {
        assert!(Timing::default().check().is_ok());
        let short = Timing {
            lease: Duration::from_millis(500),
            ..Timing::default()
        };
        assert!(short.check().is_err());
        let late = Timing {
            renew_deadline: Duration::from_secs(20),
            ..Timing::default()
        };
        assert!(late.check().is_err());
    }
}
