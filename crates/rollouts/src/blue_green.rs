//! The blue-green planner: from the Rollout's spec and status, what the controller sees of its
//! ReplicaSets and Services, and the time, the next actions (create or scale a ReplicaSet, set or
//! clear a scale-down deadline, switch a Service's selector), the status to write, the events
//! and when to look again — Argo Rollouts' `rollout/bluegreen.go` as a pure function
//! (research/argo-rollouts.md §2.3). Every step waits for the previous one to be observed, so a
//! controller restarted anywhere carries on from the objects alone.
//!
//! Deliberate departure (the user's flow wins over Argo): on abort both the active and the
//! preview Service go back to the stable ReplicaSet (Argo leaves preview on the new one), and
//! `status.blueGreen.previewSelector` says so.
//!
//! Not yet here: pre- and post-promotion analysis are held, never skipped (the analysis
//! controller is not built: the plan waits before that gate and says why).

mod model;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sluice_api::{PodMetadata, RolloutPhase};

pub use model::{
    ABORTED, Action, Deadline, Event, LastProgress, Observed, Plan, Progress, ReplicaSetState,
    ServiceState, TIMED_OUT,
};

/// `seconds` after `t` (`t` itself if that is past the end of time: statuses are user input).
fn at(t: Timestamp, seconds: i32) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(i64::from(seconds.max(0))))
        .unwrap_or(t)
}

struct Planner<'a> {
    observed: &'a Observed<'a>,
    now: Timestamp,
    roles: bool,
    plan: Plan,
}

impl Planner<'_> {
    fn soonest(&mut self, when: Timestamp) {
        let wait = Duration::try_from(when.duration_since(self.now)).unwrap_or(Duration::ZERO);
        self.plan.requeue = Some(self.plan.requeue.map_or(wait, |r| r.min(wait)));
    }

    fn scale(&mut self, rs: &ReplicaSetState, replicas: i32) {
        if rs.replicas != replicas {
            let name = rs.name.clone();
            self.plan.actions.push(Action::Scale { name, replicas });
        }
    }

    fn switch(&mut self, service: Option<&str>, state: Option<&ServiceState>, to: &str) {
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
            self.event(false, "SwitchService", message);
        }
    }

    fn event(&mut self, warning: bool, reason: &'static str, message: String) {
        self.plan.events.push(Event {
            warning,
            reason,
            message,
        });
    }

    fn phase(&mut self, phase: RolloutPhase, message: &str) {
        self.plan.phase = (phase, message.to_owned());
    }

    /// The current ReplicaSet's pods are not all available: Progressing until the progress
    /// deadline, then Degraded with `ProgressDeadlineExceeded` (one warning event) and, with
    /// `progressDeadlineAbort` during an update, an abort back to the stable version.
    fn becoming_available(&mut self, current: &ReplicaSetState, update: bool) {
        let deadline = &self.observed.deadline;
        if let LastProgress::At(last) = deadline.last_progress
            && let due = at(last, deadline.seconds)
            && self.now < due
        {
            self.soonest(due);
            self.phase(
                RolloutPhase::Progressing,
                "updated replicas are still becoming available",
            );
            return;
        }
        let message = format!("ReplicaSet \"{}\" has timed out progressing.", current.name);
        if self.observed.status.reason.as_deref() != Some(TIMED_OUT) {
            self.event(true, TIMED_OUT, message.clone());
        }
        self.phase(RolloutPhase::Degraded, &format!("{TIMED_OUT}: {message}"));
        if update && deadline.abort {
            self.plan.progress.abort = true;
            self.plan.progress.aborted_at = Some(self.now);
            self.plan.requeue = Some(Duration::ZERO);
        }
    }

    /// Old ReplicaSets at zero replicas beyond `revisionHistoryLimit` are deleted, oldest first.
    fn prune_history(&mut self, keep: &[&str]) {
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

    /// Each ReplicaSet carries the metadata of its role: `activeMetadata` on the one the active
    /// Service selects, `previewMetadata` on the current one while it is not active, nothing on
    /// the others.
    fn ephemeral_metadata(&mut self) {
        let strategy = self.observed.strategy;
        let (active, _) = self.plan.selectors.clone();
        let encode = |m: &Option<PodMetadata>| {
            m.as_ref()
                .filter(|m| m.labels.is_some() || m.annotations.is_some())
                .and_then(|m| serde_json::to_value(m).ok())
        };
        for rs in &self.observed.replica_sets {
            let after = if active.as_deref() == Some(rs.hash.as_str()) {
                encode(&strategy.active_metadata)
            } else if rs.hash == self.observed.hash {
                encode(&strategy.preview_metadata)
            } else {
                None
            };
            if after != rs.ephemeral {
                self.plan.actions.push(Action::EphemeralMetadata {
                    name: rs.name.clone(),
                    before: rs.ephemeral.clone(),
                    after,
                });
            }
        }
    }

    /// Old ReplicaSets (neither `keep` hash): scaled down when their deadline passes, or at once
    /// when they have none; `scaleDownDelayRevisionLimit` caps how many wait.
    fn scale_down_old(&mut self, keep: &[&str]) {
        let limit = self.observed.strategy.scale_down_delay_revision_limit;
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
                Some(deadline) if deadline > self.now && limit.is_none_or(|l| waiting < l) => {
                    waiting += 1;
                    self.soonest(deadline);
                }
                _ if !self.observed.switch_settled => {}
                _ => {
                    self.scale(rs, 0);
                    if rs.scale_down_deadline.is_some() {
                        let name = rs.name.clone();
                        self.plan
                            .actions
                            .push(Action::ScaleDownDeadline { name, at: None });
                    }
                }
            }
        }
    }
}

/// The next step of a blue-green Rollout.
pub fn plan(observed: &Observed<'_>, now: Timestamp) -> Plan {
    let mut planner = steps(observed, now);
    if planner.roles {
        planner.ephemeral_metadata();
    }
    planner.plan
}

/// The step itself; `roles` says whether the Services' targets are settled enough for the
/// ReplicaSets' active/preview metadata to follow.
fn steps<'a>(observed: &'a Observed<'a>, now: Timestamp) -> Planner<'a> {
    let status = observed.status.clone();
    let mut planner = Planner {
        observed,
        now,
        roles: false,
        plan: Plan {
            actions: Vec::new(),
            progress: status.clone(),
            phase: (RolloutPhase::Progressing, String::new()),
            selectors: (None, None),
            events: Vec::new(),
            requeue: None,
        },
    };
    let strategy = observed.strategy;
    let replicas = observed.replicas;
    let hash = observed.hash.as_str();
    // What the Services select now; the steps below change it where they switch one.
    let selected = |state: Option<&ServiceState>| match state {
        Some(ServiceState::Selects(hash)) => hash.clone(),
        _ => None,
    };
    planner.plan.selectors = (
        selected(Some(&observed.active)),
        selected(observed.preview.as_ref()),
    );
    if let Some(problem) = &observed.invalid {
        planner.phase(RolloutPhase::Degraded, &format!("InvalidSpec: {problem}"));
        return planner;
    }
    // A Service that does not exist: nothing is scaled until it does.
    let missing = [
        (
            Some(&observed.active),
            "activeService",
            Some(strategy.active_service.as_str()),
        ),
        (
            observed.preview.as_ref(),
            "previewService",
            strategy.preview_service(),
        ),
    ];
    for (state, field, name) in missing {
        if let (Some(ServiceState::Missing), Some(name)) = (state, name) {
            let message = format!(
                "InvalidSpec: spec.strategy.blueGreen.{field}: Invalid value: \"{name}\": service \"{name}\" not found"
            );
            planner.phase(RolloutPhase::Degraded, &message);
            return planner;
        }
    }
    let Some(current) = observed.replica_sets.iter().find(|rs| rs.hash == hash) else {
        let revision = observed
            .replica_sets
            .iter()
            .map(|rs| rs.revision)
            .max()
            .unwrap_or(0)
            + 1;
        let avoid = strategy
            .anti_affinity
            .as_ref()
            .and(status.stable.clone())
            .filter(|stable| observed.replica_sets.iter().any(|rs| &rs.hash == stable));
        planner
            .plan
            .actions
            .push(Action::CreateReplicaSet { revision, avoid });
        planner.phase(
            RolloutPhase::Progressing,
            "more replicas need to be updated",
        );
        return planner;
    };
    let stable = status
        .stable
        .as_deref()
        .and_then(|s| observed.replica_sets.iter().find(|rs| rs.hash == s));
    let preview_name = strategy.preview_service();
    let active_name = Some(strategy.active_service.as_str());
    let (active, preview) = (Some(&observed.active), observed.preview.as_ref());
    if observed.paused {
        planner.phase(RolloutPhase::Paused, "manually paused");
        return planner;
    }
    // An older template is current again: it becomes the newest revision, as in Argo.
    let newest = observed
        .replica_sets
        .iter()
        .map(|rs| rs.revision)
        .max()
        .unwrap_or(0);
    if current.revision < newest {
        planner.plan.actions.push(Action::Renumber {
            name: current.name.clone(),
            revision: newest + 1,
            previous: current.revision,
        });
    }

    // Aborted: everything back on stable; the new ReplicaSet goes after its delay.
    if status.abort
        && let Some(stable) = stable.filter(|s| s.hash != hash)
    {
        planner.scale(stable, replicas);
        planner.switch(active_name, active, &stable.hash);
        planner.switch(preview_name, preview, &stable.hash);
        planner.plan.selectors = (
            Some(stable.hash.clone()),
            preview_name.map(|_| stable.hash.clone()),
        );
        let delay = strategy.abort_scale_down_delay_seconds();
        match current.scale_down_deadline {
            _ if delay == 0 || current.replicas == 0 => {}
            None => planner.plan.actions.push(Action::ScaleDownDeadline {
                name: current.name.clone(),
                at: Some(at(now, delay)),
            }),
            Some(deadline) if deadline > now => planner.soonest(deadline),
            Some(_) => {
                planner.scale(current, 0);
                let name = current.name.clone();
                planner
                    .plan
                    .actions
                    .push(Action::ScaleDownDeadline { name, at: None });
            }
        }
        planner.plan.progress.paused_since = None;
        planner.plan.progress.controller_pause = false;
        planner.plan.progress.aborted_at = status.aborted_at.or(Some(now));
        planner.prune_history(&[hash, &stable.hash]);
        planner.roles = true;
        let message = format!("Rollout aborted update to revision {}", current.revision);
        if status.reason.as_deref() != Some(ABORTED) {
            planner.event(true, ABORTED, message.clone());
        }
        planner.phase(RolloutPhase::Degraded, &format!("{ABORTED}: {message}"));
        return planner;
    }

    // Steady, or the first deploy: the current ReplicaSet is (or becomes) the stable one.
    if stable.is_none_or(|s| s.hash == hash) {
        planner.scale(current, replicas);
        let ready = current.replicas == replicas && current.available >= replicas;
        if stable.is_none() && !ready {
            planner.becoming_available(current, false);
            return planner;
        }
        if stable.is_none() {
            planner.plan.progress.stable = Some(hash.to_owned());
            let message = format!(
                "Rollout completed update to revision {} ({hash}): Initial deploy",
                current.revision
            );
            planner.event(false, "RolloutCompleted", message);
        }
        planner.switch(active_name, active, hash);
        planner.switch(preview_name, preview, hash);
        planner.plan.selectors = (Some(hash.to_owned()), preview_name.map(|_| hash.to_owned()));
        if current.scale_down_deadline.is_some() {
            // Back from a fast rollback: the stable version has no delay to wait out.
            let name = current.name.clone();
            planner
                .plan
                .actions
                .push(Action::ScaleDownDeadline { name, at: None });
        }
        planner.scale_down_old(&[hash]);
        planner.prune_history(&[hash]);
        planner.roles = true;
        planner.plan.progress.paused_since = None;
        planner.plan.progress.controller_pause = false;
        planner.plan.progress.scale_up_preview = false;
        planner.plan.progress.aborted_at = None;
        if ready {
            planner.phase(RolloutPhase::Healthy, "");
        } else {
            planner.becoming_available(current, false);
        }
        return planner;
    }
    let stable = stable.expect("checked above");

    // Fast rollback (research §2.11): back to a version older than the stable one (or
    // renumbered from one) while it is still up inside its scale-down delay switches at once:
    // no preview scale-down, no pause, no analysis. Decided from what the ReplicaSet was, so a
    // reconcile cut short after the renumbering still sees it.
    let older = current.revision < stable.revision
        || current
            .previous_revision
            .is_some_and(|previous| previous < stable.revision);
    let fast_rollback = older
        && current
            .scale_down_deadline
            .is_some_and(|deadline| deadline > now);
    // An update: preview on the new ReplicaSet, production on the stable one. (A retry after
    // an abort lifts the aborted ReplicaSet's scale-down deadline.)
    if current.scale_down_deadline.is_some() && !fast_rollback {
        let name = current.name.clone();
        planner
            .plan
            .actions
            .push(Action::ScaleDownDeadline { name, at: None });
    }
    planner.scale(stable, replicas);
    planner.switch(preview_name, preview, hash);
    planner.plan.selectors.1 = preview_name.map(|_| hash.to_owned());
    planner.scale_down_old(&[hash, &stable.hash]);
    planner.prune_history(&[hash, &stable.hash]);
    planner.roles = true;
    planner.plan.progress.aborted_at = None;
    let target = match strategy.preview_replica_count {
        Some(count) if !status.scale_up_preview && !fast_rollback => count.clamp(0, replicas),
        _ => replicas,
    };
    planner.scale(current, target);
    let saturated = current.replicas == target && current.available >= target;
    if !saturated {
        planner.becoming_available(current, true);
        return planner;
    }
    let switched = matches!(active, Some(ServiceState::Selects(Some(h))) if h == hash);
    if !switched {
        if strategy.pre_promotion_analysis.is_some() && !fast_rollback {
            planner.phase(
                RolloutPhase::Progressing,
                "waiting for analysis to complete: prePromotionAnalysis needs the analysis controller, which sluice does not have yet; not promoting",
            );
            return planner;
        }
        let needs_pause =
            !strategy.auto_promotion_enabled() || strategy.auto_promotion_seconds() > 0;
        if needs_pause && !status.promote_full && !fast_rollback {
            match (status.paused_since, status.controller_pause) {
                (None, false) => {
                    planner.plan.progress.paused_since = Some(now);
                    planner.plan.progress.controller_pause = true;
                    planner.event(
                        false,
                        "RolloutPaused",
                        "Rollout is paused (BlueGreenPause)".into(),
                    );
                    planner.phase(RolloutPhase::Paused, "BlueGreenPause");
                    if strategy.auto_promotion_enabled() {
                        planner.soonest(at(now, strategy.auto_promotion_seconds()));
                    }
                    return planner;
                }
                (Some(since), _) => {
                    let resume = at(since, strategy.auto_promotion_seconds());
                    if !strategy.auto_promotion_enabled() || now < resume {
                        if strategy.auto_promotion_enabled() {
                            planner.soonest(resume);
                        }
                        planner.phase(RolloutPhase::Paused, "BlueGreenPause");
                        return planner;
                    }
                    planner.plan.progress.paused_since = None;
                    planner.event(false, "RolloutResumed", "Rollout is resumed".into());
                }
                // Resumed by the user (`promote` cleared the pause condition).
                (None, true) => {}
            }
        }
        if target < replicas {
            planner.plan.progress.scale_up_preview = true;
            planner.scale(current, replicas);
            planner.phase(
                RolloutPhase::Progressing,
                "updated replicas are still becoming available",
            );
            return planner;
        }
        planner.switch(active_name, active, hash);
        planner.plan.selectors.0 = Some(hash.to_owned());
        planner.phase(RolloutPhase::Progressing, "active service cutover pending");
        return planner;
    }
    if strategy.post_promotion_analysis.is_some() {
        planner.phase(
            RolloutPhase::Progressing,
            "waiting for post-promotion verification to complete: postPromotionAnalysis needs the analysis controller, which sluice does not have yet",
        );
        return planner;
    }
    // Switched and saturated: the new ReplicaSet becomes stable; the old one stays up for the delay.
    planner.plan.selectors.0 = Some(hash.to_owned());
    planner.plan.progress = Progress {
        stable: Some(hash.to_owned()),
        ..Progress::default()
    };
    let deadline = at(now, strategy.scale_down_delay_seconds());
    planner.plan.actions.push(Action::ScaleDownDeadline {
        name: stable.name.clone(),
        at: Some(deadline),
    });
    planner.soonest(deadline);
    let message = format!(
        "Rollout completed update to revision {} ({hash}): Completed blue-green update",
        current.revision
    );
    planner.event(false, "RolloutCompleted", message);
    planner.phase(RolloutPhase::Healthy, "");
    planner
}

#[cfg(test)]
mod tests;
