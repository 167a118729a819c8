//! The planning toolkit every strategy's planner uses: a plan being built from what was
//! observed and the time, and the moves that are the same for every strategy — scale a
//! ReplicaSet, switch a Service, wait for pods within the progress deadline, scale old
//! ReplicaSets down after their delay, prune history, give each ReplicaSet its role's
//! metadata. Pure: it only adds to the plan.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sluice_api::{PodMetadata, names::event};

use crate::model::{
    Action, Degraded, Event, LastProgress, LastReason, Observed, Phase, Plan, ReplicaSetState,
    ServiceState, Targets,
};

/// `seconds` after `t` (`t` itself if that is past the end of time: statuses are user input).
pub fn at(t: Timestamp, seconds: i32) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(i64::from(seconds.max(0))))
        .unwrap_or(t)
}

/// A plan being built.
pub struct Planner<'a> {
    /// What was observed.
    pub observed: &'a Observed<'a>,
    /// Now.
    pub now: Timestamp,
    /// The plan so far.
    pub plan: Plan,
}

impl<'a> Planner<'a> {
    /// An empty plan that keeps the observed progress, with the strategy's `targets` as they are.
    pub fn new(observed: &'a Observed<'a>, now: Timestamp, targets: Targets) -> Self {
        Self {
            observed,
            now,
            plan: Plan {
                actions: Vec::new(),
                progress: observed.status.clone(),
                phase: Phase::progressing(""),
                targets,
                events: Vec::new(),
                requeue: None,
                analysis_abort: None,
                restarted_at: None,
            },
        }
    }

    /// Look again at `when` at the latest.
    pub fn soonest(&mut self, when: Timestamp) {
        let wait = Duration::try_from(when.duration_since(self.now)).unwrap_or(Duration::ZERO);
        self.plan.requeue = Some(self.plan.requeue.map_or(wait, |r| r.min(wait)));
    }

    /// Sets `rs` to `replicas`, if it has another count.
    pub fn scale(&mut self, rs: &ReplicaSetState, replicas: i32) {
        if rs.replicas != replicas {
            self.plan.actions.push(Action::Scale {
                name: rs.name.clone(),
                revision: rs.revision,
                from: rs.replicas,
                replicas,
            });
        }
    }

    /// Sets or clears the scale-down deadline of `rs`, if it has another.
    pub fn deadline(&mut self, rs: &ReplicaSetState, at: Option<Timestamp>) {
        if rs.scale_down_deadline != at {
            let name = rs.name.clone();
            self.plan
                .actions
                .push(Action::ScaleDownDeadline { name, at });
        }
    }

    /// Points `service` (in `state`) at `to`, with Argo's `SwitchService` event.
    pub fn switch(&mut self, service: Option<&str>, state: Option<&ServiceState>, to: &str) {
        let (Some(service), Some(ServiceState::Selects(from))) = (service, state) else {
            return;
        };
        if from.as_deref() != Some(to) {
            self.plan.actions.push(Action::SwitchService {
                service: service.to_owned(),
                from: from.clone(),
                to: to.to_owned(),
            });
            let message = format!(
                "Switched selector for service '{service}' from '{}' to '{to}'",
                from.as_deref().unwrap_or_default()
            );
            self.event(false, event::SWITCH_SERVICE, message);
        }
    }

    /// Records an event.
    pub fn event(&mut self, warning: bool, reason: &'static str, message: String) {
        self.plan.events.push(Event {
            warning,
            reason,
            message,
        });
    }

    /// Sets the phase.
    pub fn phase(&mut self, phase: Phase) {
        self.plan.phase = phase;
    }

    /// The update of `current` stands aborted, back on `stable`: the controller's pauses go
    /// (Argo writes none while aborted), `abortedAt` is kept or set, history is pruned, and the
    /// phase is Degraded with Argo's message and, the first time, its `RolloutAborted` warning.
    pub fn aborted(&mut self, stable: &ReplicaSetState, current: &ReplicaSetState) {
        let now = self.now;
        let progress = &mut self.plan.progress;
        progress.pauses.clear();
        progress.controller_pause = false;
        progress.aborted_at = progress.aborted_at.or(Some(now));
        self.prune_history(&[&current.hash, &stable.hash]);
        let plain = format!("Rollout aborted update to revision {}", current.revision);
        // An abort by analysis keeps its reason (written by the reconcile that aborted).
        let message = match &self.observed.status.abort_message {
            Some(said)
                if self.observed.status.reason == LastReason::Aborted
                    && said.starts_with(&format!("{plain}: ")) =>
            {
                said.clone()
            }
            _ => plain,
        };
        if self.observed.status.reason != LastReason::Aborted {
            self.event(true, event::ROLLOUT_ABORTED, message.clone());
        }
        self.phase(Phase::Degraded(Degraded::Aborted(message)));
    }

    /// The current ReplicaSet's pods are not all available: Progressing until the progress
    /// deadline, then Degraded with `ProgressDeadlineExceeded` (one warning event) and, with
    /// `progressDeadlineAbort` during an update, an abort back to the stable version.
    pub fn becoming_available(&mut self, current: &ReplicaSetState, update: bool) {
        if !self.timed_out(current, update) {
            self.phase(Phase::progressing(
                "updated replicas are still becoming available",
            ));
        }
    }

    /// Whether the update of `current` is past its progress deadline; if so the phase is
    /// Degraded with `ProgressDeadlineExceeded` (one warning event) and, with
    /// `progressDeadlineAbort` during an update (`update`), the update aborts. If not, the
    /// Rollout is looked at again when the deadline comes.
    pub fn timed_out(&mut self, current: &ReplicaSetState, update: bool) -> bool {
        let deadline = &self.observed.deadline;
        if let LastProgress::At(last) = deadline.last_progress
            && let due = at(last, deadline.seconds)
            && self.now < due
        {
            self.soonest(due);
            return false;
        }
        if self.observed.status.reason != LastReason::TimedOut {
            let message = crate::phase::timed_out_message(&current.name);
            self.event(true, event::PROGRESS_DEADLINE_EXCEEDED, message);
        }
        self.phase(Phase::Degraded(Degraded::TimedOut {
            replica_set: current.name.clone(),
        }));
        if update && deadline.abort {
            self.plan.progress.abort = true;
            self.plan.progress.aborted_at = Some(self.now);
            self.plan.requeue = Some(Duration::ZERO);
        }
        true
    }

    /// Whether `current` is an older version coming back (undo, or an older template
    /// re-applied) within `rollbackWindow.revisions` of `stable`: fewer ReplicaSets than the
    /// window lie between them (Argo's `isRollbackWithinWindow`). Decided from the revision
    /// it had before it was renumbered, so a reconcile cut short after the renumbering still
    /// sees it.
    pub fn within_rollback_window(
        &self,
        current: &ReplicaSetState,
        stable: &ReplicaSetState,
    ) -> bool {
        let Some(window) = self.observed.rollback_window.filter(|w| *w > 0) else {
            return false;
        };
        let was = current
            .previous_revision
            .filter(|_| current.revision > stable.revision)
            .unwrap_or(current.revision);
        if was >= stable.revision {
            return false;
        }
        let between = self
            .observed
            .replica_sets
            .iter()
            .filter(|rs| rs.revision > was && rs.revision < stable.revision)
            .count();
        i32::try_from(between).unwrap_or(i32::MAX) < window
    }

    /// Old ReplicaSets at zero replicas beyond `revisionHistoryLimit` are deleted, oldest first.
    pub fn prune_history(&mut self, keep: &[&str]) {
        let limit = usize::try_from(self.observed.history_limit.max(0)).unwrap_or(0);
        let mut old: Vec<&ReplicaSetState> = self
            .observed
            .replica_sets
            .iter()
            .filter(|rs| !keep.contains(&rs.hash.as_str()))
            .collect();
        old.sort_by_key(|rs| rs.revision);
        let mut excess = old.len().saturating_sub(limit);
        for rs in old {
            if excess == 0 {
                break;
            }
            if rs.replicas == 0 && rs.scale_down_deadline.is_none() {
                let name = rs.name.clone();
                self.plan.actions.push(Action::DeleteReplicaSet { name });
                excess -= 1;
            }
        }
    }

    /// Old ReplicaSets (no `keep` hash): scaled down when their deadline passes, or at once
    /// when they have none — but only once `settled` (the Services no longer send them
    /// traffic); `revision_limit` (`scaleDownDelayRevisionLimit`) caps how many wait.
    pub fn scale_down_old(&mut self, keep: &[&str], revision_limit: Option<i32>, settled: bool) {
        let mut waiting = 0;
        let mut old: Vec<&ReplicaSetState> = self
            .observed
            .replica_sets
            .iter()
            .filter(|rs| !keep.contains(&rs.hash.as_str()) && rs.replicas > 0)
            .collect();
        old.sort_by_key(|rs| std::cmp::Reverse(rs.revision));
        for rs in old {
            match rs.scale_down_deadline {
                Some(deadline)
                    if deadline > self.now && revision_limit.is_none_or(|l| waiting < l) =>
                {
                    waiting += 1;
                    self.soonest(deadline);
                }
                _ if !settled => {}
                _ => {
                    self.scale(rs, 0);
                    self.deadline(rs, None);
                }
            }
        }
    }

    /// An older template is current again: it becomes the newest revision, as in Argo.
    pub fn renumber(&mut self, current: &ReplicaSetState) {
        let newest = self
            .observed
            .replica_sets
            .iter()
            .map(|rs| rs.revision)
            .max();
        if let Some(newest) = newest.filter(|n| current.revision < *n) {
            self.plan.actions.push(Action::Renumber {
                name: current.name.clone(),
                revision: newest + 1,
                previous: current.revision,
            });
        }
    }

    /// Each ReplicaSet carries the metadata of its role: `primary` on the one of
    /// `primary_hash` (blue-green's active, canary's stable), `current` on the current one when
    /// it is not that one (preview, canary), nothing on the others.
    pub fn role_metadata(
        &mut self,
        primary_hash: Option<&str>,
        primary: Option<&PodMetadata>,
        current: Option<&PodMetadata>,
    ) {
        let encode = |m: Option<&PodMetadata>| {
            m.filter(|m| m.labels.is_some() || m.annotations.is_some())
                .and_then(|m| serde_json::to_value(m).ok())
        };
        for rs in &self.observed.replica_sets {
            let role = if primary_hash == Some(rs.hash.as_str()) {
                primary
            } else if rs.hash == self.observed.hash {
                current
            } else {
                None
            };
            let after: Option<Value> = encode(role);
            if after != rs.ephemeral {
                self.plan.actions.push(Action::EphemeralMetadata {
                    name: rs.name.clone(),
                    hash: rs.hash.clone(),
                    before: rs.ephemeral.clone(),
                    after,
                });
            }
        }
    }
}
