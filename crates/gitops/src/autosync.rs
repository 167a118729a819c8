//! Whether auto-sync starts an operation, as Argo CD's `autoSync` decides (research §2.5), as a
//! pure function of the comparison, the policy, the last operation and `now`.
//!
//! Only an OutOfSync Application with no operation running is synced. A revision already
//! tried is not tried again: after a failure the Application carries a SyncError; after a
//! success only self-heal syncs again, waiting 2 s × 3ⁿ (capped at 300 s) after the last
//! operation finished, n being the self-heal attempts made for this revision (one step later
//! than Argo CD: the first heal waits 2 s, not 0). Without prune,
//! a sync whose only work is pruning is skipped; with prune, wiping out every resource needs
//! `allowEmpty`.

use std::time::Duration;

use jiff::Timestamp;

/// The automated policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// `automated.prune`.
    pub prune: bool,
    /// `automated.selfHeal`.
    pub self_heal: bool,
    /// `automated.allowEmpty`.
    pub allow_empty: bool,
}

/// The last completed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last {
    /// The revision it synced.
    pub revision: String,
    /// It succeeded.
    pub succeeded: bool,
    /// Its message.
    pub message: String,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Self-heal attempts made for its revision.
    pub heal_attempts: i64,
}

/// What the Application looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State<'a> {
    /// Every resource matches Git.
    pub synced: bool,
    /// An operation is requested or running.
    pub operating: bool,
    /// The Application is being deleted.
    pub deleting: bool,
    /// The resolved revision.
    pub revision: &'a str,
    /// Some resource needs an apply (not only prunes).
    pub needs_apply: bool,
    /// Git has no resources while the cluster has some.
    pub wipes_everything: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do.
    Nothing,
    /// Start a sync; `heal_attempts` to record in the operation.
    Sync {
        /// This is self-heal (same revision, drifted).
        self_heal: bool,
        /// `autoHealAttemptsCount` of the new operation.
        heal_attempts: i64,
    },
    /// Self-heal, but not before this long.
    WaitToHeal(Duration),
    /// Refuse, with a SyncError condition's message.
    Error(String),
}

/// The wait before self-heal attempt `attempts` (0 → none, 1 → 2 s, 2 → 6 s, … ≤ 300 s).
pub fn heal_backoff(attempts: i64) -> Duration {
    let mut delay = Duration::ZERO;
    let mut step = Duration::from_secs(2);
    for _ in 0..attempts.clamp(0, 32) {
        delay = step.min(Duration::from_secs(300));
        step = step.saturating_mul(3);
    }
    delay
}

/// Decides.
pub fn decide(policy: Policy, state: &State<'_>, last: Option<&Last>, now: Timestamp) -> Decision {
    if state.synced || state.operating || state.deleting {
        return Decision::Nothing;
    }
    if !policy.prune && !state.needs_apply {
        return Decision::Nothing;
    }
    if policy.prune && !policy.allow_empty && state.wipes_everything {
        return Decision::Error(
            "auto-sync will wipe out all resources; set allowEmpty to allow it".into(),
        );
    }
    let Some(last) = last.filter(|l| l.revision == state.revision) else {
        return Decision::Sync {
            self_heal: false,
            heal_attempts: 0,
        };
    };
    if !last.succeeded {
        return Decision::Error(format!(
            "Failed last sync attempt to {}: {}",
            state.revision, last.message
        ));
    }
    if !policy.self_heal {
        return Decision::Nothing;
    }
    // One step later than Argo CD (2 s before the first heal, not 0): the live cache may not
    // show the sync that just finished yet, and healing at once would sync the same revision twice.
    let wait = heal_backoff(last.heal_attempts + 1);
    let since = last
        .finished_at
        .map(|at| now.duration_since(at).unsigned_abs())
        .unwrap_or(Duration::MAX);
    if since < wait {
        return Decision::WaitToHeal(wait - since);
    }
    Decision::Sync {
        self_heal: true,
        heal_attempts: last.heal_attempts + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(revision: &str) -> State<'_> {
        State {
            synced: false,
            operating: false,
            deleting: false,
            revision,
            needs_apply: true,
            wipes_everything: false,
        }
    }

    fn last(revision: &str, succeeded: bool, finished: Timestamp, attempts: i64) -> Last {
        Last {
            revision: revision.into(),
            succeeded,
            message: "boom".into(),
            finished_at: Some(finished),
            heal_attempts: attempts,
        }
    }

    #[test]
    fn backoff_is_2s_times_3_to_the_n_capped_at_300s() {
        let secs: Vec<u64> = (0..7).map(|n| heal_backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 2, 6, 18, 54, 162, 300]);
    }

    #[test]
    fn a_new_revision_syncs_and_a_failed_one_is_not_retried() {
        let now = Timestamp::from_second(1_000).unwrap();
        let policy = Policy::default();
        assert_eq!(
            decide(policy, &state("b"), Some(&last("a", false, now, 0)), now),
            Decision::Sync {
                self_heal: false,
                heal_attempts: 0
            }
        );
        let failed = decide(policy, &state("a"), Some(&last("a", false, now, 0)), now);
        assert_eq!(
            failed,
            Decision::Error("Failed last sync attempt to a: boom".into())
        );
        let mut synced = state("a");
        synced.synced = true;
        assert_eq!(decide(policy, &synced, None, now), Decision::Nothing);
        let mut busy = state("a");
        busy.operating = true;
        assert_eq!(decide(policy, &busy, None, now), Decision::Nothing);
    }

    #[test]
    fn drift_on_the_same_revision_heals_only_with_self_heal_after_the_backoff() {
        let finished = Timestamp::from_second(1_000).unwrap();
        let done = last("a", true, finished, 1);
        assert_eq!(
            decide(Policy::default(), &state("a"), Some(&done), finished),
            Decision::Nothing
        );
        let heal = Policy {
            self_heal: true,
            ..Policy::default()
        };
        let soon = finished
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap();
        assert_eq!(
            decide(heal, &state("a"), Some(&done), soon),
            Decision::WaitToHeal(Duration::from_secs(5))
        );
        let later = finished
            .checked_add(jiff::SignedDuration::from_secs(6))
            .unwrap();
        assert_eq!(
            decide(heal, &state("a"), Some(&done), later),
            Decision::Sync {
                self_heal: true,
                heal_attempts: 2
            }
        );
    }

    #[test]
    fn prune_only_work_and_wiping_out() {
        let now = Timestamp::from_second(1_000).unwrap();
        let mut only_prunes = state("a");
        only_prunes.needs_apply = false;
        assert_eq!(
            decide(Policy::default(), &only_prunes, None, now),
            Decision::Nothing
        );
        let prune = Policy {
            prune: true,
            ..Policy::default()
        };
        assert!(matches!(
            decide(prune, &only_prunes, None, now),
            Decision::Sync { .. }
        ));
        only_prunes.wipes_everything = true;
        assert!(matches!(
            decide(prune, &only_prunes, None, now),
            Decision::Error(_)
        ));
        let allow = Policy {
            allow_empty: true,
            ..prune
        };
        assert!(matches!(
            decide(allow, &only_prunes, None, now),
            Decision::Sync { .. }
        ));
    }
}
