//! `spec.restartAt` (the `restart` verb), as Argo's `rollout/restart.go`: once the time has
//! come, the pods of every ReplicaSet of the Rollout created before it are evicted — through
//! the `pods/eviction` subresource, so PodDisruptionBudgets hold — never more at once than
//! availability allows, and when none is left `status.restartedAt` records the time. Pure:
//! the pods and the time are parameters; the eviction is an [`Action::Evict`] the applier
//! carries out.
//!
//! Argo's arithmetic: at most `max(maxUnavailable, 1)` pods may be unavailable, counted
//! against the larger of `spec.replicas` and the ReplicaSets' replicas, so the pods that may
//! go now are the available ones beyond that floor. The candidates are ordered stable
//! ReplicaSet first, then the current one, then the older ones (Argo's
//! `SortReplicaSetsByPriority`), and within a ReplicaSet oldest pod first. Argo sends no event
//! for a restart; neither does sluice.

use std::time::Duration;

use jiff::Timestamp;

use crate::model::{Action, ReplicaSetState};

/// How soon a Rollout with pods left to restart is looked at again (Argo's
/// `restartPodCheckTime`): a restart must not wait for a change that may not come.
pub const CHECK: Duration = Duration::from_secs(30);

/// A pod of one of the Rollout's ReplicaSets, as the restart sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    /// Its name.
    pub name: String,
    /// The ReplicaSet that controls it.
    pub replica_set: String,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// It has a `deletionTimestamp` (evicted or deleted, still terminating).
    pub deleting: bool,
    /// Ready for at least `minReadySeconds` (Kubernetes' `IsPodAvailable`).
    pub available: bool,
}

/// What a restart reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestartObserved {
    /// `spec.restartAt`.
    pub restart_at: Option<Timestamp>,
    /// `status.restartedAt`.
    pub restarted_at: Option<Timestamp>,
    /// The Rollout's pods (read only while a restart is due).
    pub pods: Vec<PodState>,
    /// `maxUnavailable` as a pod count (Argo's `MaxUnavailable`).
    pub max_unavailable: i32,
}

impl RestartObserved {
    /// Whether a restart is due at `now` (Argo's `NeedsRestart`): `restartAt` is set, not the
    /// last completed one, and past.
    pub fn due(&self, now: Timestamp) -> bool {
        due(self.restart_at, self.restarted_at, now)
    }
}

/// Whether a restart at `restart_at` is due at `now`, `restarted_at` being the last completed
/// one (Argo's `NeedsRestart`).
pub fn due(restart_at: Option<Timestamp>, restarted_at: Option<Timestamp>, now: Timestamp) -> bool {
    match restart_at {
        Some(at) => restarted_at != Some(at) && now > at,
        None => false,
    }
}

/// Where a restart stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// None asked for, or the last one is done.
    Idle,
    /// Asked for at a time still to come.
    Scheduled(Timestamp),
    /// Pods created before `restartAt` are left.
    Restarting {
        /// The pods to evict, in order; the applier evicts until `budget` succeeded (a pod a
        /// disruption budget protects is skipped, as Argo does on 429).
        candidates: Vec<String>,
        /// How many may go now.
        budget: i32,
        /// Pods created before `restartAt` (terminating ones included).
        remaining: usize,
    },
    /// Every pod is newer than `restartAt`: `status.restartedAt` becomes it.
    Done(Timestamp),
}

impl Restart {
    /// The eviction to carry out, if any may go now.
    pub fn action(&self) -> Option<Action> {
        match self {
            Self::Restarting {
                candidates, budget, ..
            } if *budget > 0 && !candidates.is_empty() => Some(Action::Evict {
                candidates: candidates.clone(),
                budget: *budget,
            }),
            _ => None,
        }
    }
}

/// The restart's next step. `replicas` is `spec.replicas`; `sets` the Rollout's ReplicaSets;
/// `stable` and `current` name the stable and the current ReplicaSet.
pub fn plan(
    observed: &RestartObserved,
    replicas: i32,
    sets: &[ReplicaSetState],
    stable: Option<&str>,
    current: Option<&str>,
    now: Timestamp,
) -> Restart {
    let Some(restart_at) = observed.restart_at else {
        return Restart::Idle;
    };
    if !observed.due(now) {
        return if observed.restarted_at == Some(restart_at) {
            Restart::Idle
        } else {
            Restart::Scheduled(restart_at)
        };
    }
    let total: i32 = sets.iter().map(|rs| rs.replicas).sum();
    let available = observed
        .pods
        .iter()
        .filter(|p| p.available && !p.deleting)
        .count() as i32;
    let concurrent = observed.max_unavailable.max(1);
    let floor = replicas.max(total) - concurrent;
    let budget = available - floor;
    // Stable first, then current, then the others oldest first (lowest revision).
    let rank = |name: &str| -> (u8, i64) {
        if Some(name) == stable {
            (0, 0)
        } else if Some(name) == current {
            (1, 0)
        } else {
            let revision = sets
                .iter()
                .find(|rs| rs.name == name)
                .map_or(i64::MAX, |rs| rs.revision);
            (2, revision)
        }
    };
    let mut old: Vec<&PodState> = observed
        .pods
        .iter()
        .filter(|p| p.created < restart_at)
        .collect();
    if old.is_empty() {
        return Restart::Done(restart_at);
    }
    old.sort_by(|a, b| {
        (rank(&a.replica_set), a.created, &a.name).cmp(&(rank(&b.replica_set), b.created, &b.name))
    });
    let candidates = if budget > 0 {
        old.iter()
            .filter(|p| !p.deleting)
            .map(|p| p.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    Restart::Restarting {
        candidates,
        budget: budget.max(0),
        remaining: old.len(),
    }
}

#[cfg(test)]
mod tests;
