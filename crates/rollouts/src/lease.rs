//! Leader election on a `coordination.k8s.io/v1` Lease, client-go's LeaseLock model: read the
//! Lease, take it when it is free, ours or expired by writing it back with the
//! `resourceVersion` read (a 409 means another replica won), renew while leading, and stop
//! leading as soon as a renewal has not succeeded within the renew deadline — before the
//! Lease can expire and another replica take it (Argo's #2117: an old leader kept working).
//! Durations are Argo's: lease 15 s, renew deadline 10 s, retry 2 s. Whether a Lease may be
//! taken is a pure function of the Lease, the identity and the time.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, api::PostParams};

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

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// Whether `identity` may hold `spec` at `now`: nobody holds it, `identity` does, or the
/// holder has not renewed it within its duration.
pub fn may_hold(spec: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() || holder == identity {
        return true;
    }
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
    renewed.is_none_or(|t| t.0 + SignedDuration::from_secs(seconds) < now)
}

/// One replica's claim on a Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
}

impl Elector {
    /// A claim on the Lease `name` (in `api`'s namespace) for `identity`.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: Timing) -> Self {
        Self {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
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
        if !may_hold(&spec, &self.identity, now) {
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
                Err(err) => tracing::debug!("lease {}: {err}", self.name),
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Renews the Lease until a renewal has not succeeded within the renew deadline (or
    /// another replica took it); returns then, when this replica must stop leading.
    pub async fn keep(&self) {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry).await;
            match self.try_hold().await {
                Ok(true) => renewed = tokio::time::Instant::now(),
                Ok(false) => return,
                Err(err) => tracing::debug!("renewing lease {}: {err}", self.name),
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

    fn spec(holder: Option<&str>, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_free_when_unheld_ours_or_expired() {
        let now: Timestamp = "2026-11-22T10:00:20Z".parse().unwrap();
        assert!(may_hold(&spec(None, "2026-11-22T10:00:19Z"), "a", now));
        assert!(may_hold(&spec(Some("a"), "2026-11-22T10:00:19Z"), "a", now));
        assert!(!may_hold(
            &spec(Some("b"), "2026-11-22T10:00:10Z"),
            "a",
            now
        ));
        assert!(may_hold(&spec(Some("b"), "2026-11-22T10:00:04Z"), "a", now));
    }
}
