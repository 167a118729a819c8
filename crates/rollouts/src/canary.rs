//! The canary planner without a traffic router: Argo Rollouts' `rollout/canary.go` as pure
//! functions of the stage [`crate::plan`] classified (research §2.4, §2.6, §2.7, §2.11).
//! The canary's share is a share of pods: each `setWeight` step scales the canary and stable
//! ReplicaSets to Argo's counts ([`crate::replica_math`]), one group per reconcile (older
//! ReplicaSets, then stable, then canary); `pause` steps wait for a duration or
//! for `promote`; no steps is a rolling update by `maxSurge`/`maxUnavailable`.
//!
//! `analysis` steps and background `analysis` (from `startingStep`) go through
//! [`crate::gate`]: a step completes when its run succeeds; a failed step or background run
//! aborts, an inconclusive one pauses. Steps sluice does not run yet — `experiment`,
//! `plugin` — hold the Rollout before them, Progressing with a message naming the step; they
//! are never skipped. A Rollout with `trafficRouting` holds
//! before its first step the same way (the routers come with their own issue): a replica
//! ratio would not be the traffic split its author asked for.
//!
//! `canaryService` and `stableService` (without a router) get the canary and stable hashes in
//! their selectors; on abort the canary Service goes back to stable.

use sluice_api::{CanaryStep, PauseReason, duration::pause_duration, names::event};

use crate::{
    gate::{Passage, RunKind},
    model::{CanaryObserved, Counts, Pause, Phase, ReplicaSetState, Routed, Routing},
    plan::Stage,
    planner::{Planner, at},
    replica_math::{self, BasicCanary, SetCounts, Stable},
    routed,
};

/// Plans `stage` of a canary Rollout.
pub fn plan_stage(planner: &mut Planner<'_>, canary: &CanaryObserved<'_>, stage: Stage<'_>) {
    let roles = match stage {
        Stage::Aborted { stable, current } => aborted(planner, canary, stable, current),
        Stage::Steady { current, first } => steady(planner, canary, current, first),
        Stage::Updating { stable, current } => updating(planner, canary, stable, current),
        Stage::Invalid | Stage::Create | Stage::ManuallyPaused => false,
    };
    if roles {
        role_metadata(planner, canary);
    }
    // Argo's pause bookkeeping: `controllerPause` says the controller paused (and a user may
    // have resumed) only while the step that paused is current.
    let progress = &mut planner.plan.progress;
    if progress.pauses.is_empty() && !matches!(stage, Stage::ManuallyPaused) {
        progress.controller_pause = false;
    }
}

/// Argo's text for a step in events (`CanaryStepString`).
fn step_text(step: &CanaryStep) -> String {
    if let Some(weight) = step.set_weight {
        return format!("setWeight: {weight}");
    }
    if let Some(pause) = &step.pause {
        return match &pause.duration {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                format!("pause: {n}")
            }
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => {
                format!("pause: {s}")
            }
            None => "pause".into(),
        };
    }
    let kind = [
        (step.experiment.is_some(), "experiment"),
        (step.analysis.is_some(), "analysis"),
        (step.set_canary_scale.is_some(), "setCanaryScale"),
        (step.set_header_route.is_some(), "setHeaderRoute"),
        (step.set_mirror_route.is_some(), "setMirrorRoute"),
        (step.plugin.is_some(), "plugin"),
    ];
    kind.into_iter()
        .find(|(set, _)| *set)
        .map_or("step", |(_, name)| name)
        .into()
}

/// Each ReplicaSet carries the metadata of its role: `stableMetadata` on the stable one,
/// `canaryMetadata` on the current one while it is not stable.
fn role_metadata(planner: &mut Planner<'_>, canary: &CanaryObserved<'_>) {
    let stable = planner.plan.progress.stable.clone();
    let spec = canary.spec;
    planner.role_metadata(
        stable.as_deref(),
        spec.stable_metadata.as_ref(),
        spec.canary_metadata.as_ref(),
    );
}

/// Points the canary and stable Services (those the strategy names) at these hashes.
pub(crate) fn services(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    to_canary: Option<&str>,
    to_stable: &str,
) {
    let spec = canary.spec;
    if let Some(to) = to_canary {
        planner.switch(
            spec.canary_service.as_deref(),
            canary.canary_service.as_ref(),
            to,
        );
    }
    planner.switch(
        spec.stable_service.as_deref(),
        canary.stable_service.as_ref(),
        to_stable,
    );
}

/// Scales the ReplicaSets toward Argo's counts for `weight`, one group per reconcile (stable,
/// then canary, then the others); whether every ReplicaSet is at its count with all its pods
/// available and no other ReplicaSet has any (Argo's `AtDesiredReplicaCountsForCanary`).
fn scale_to_weight(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    weight: i32,
    current: &ReplicaSetState,
    stable: Option<&ReplicaSetState>,
) -> bool {
    let observed = planner.observed;
    let mut others: Vec<&ReplicaSetState> = observed
        .replica_sets
        .iter()
        .filter(|rs| {
            rs.hash != current.hash && Some(rs.hash.as_str()) != stable.map(|s| s.hash.as_str())
        })
        .filter(|rs| rs.replicas > 0 || rs.available > 0)
        .collect();
    others.sort_by_key(|rs| std::cmp::Reverse(rs.revision));
    let counts = |rs: &ReplicaSetState| SetCounts {
        replicas: rs.replicas,
        available: rs.available,
    };
    let other_counts: Vec<SetCounts> = others.iter().map(|rs| counts(rs)).collect();
    let (surge, unavailable) = (canary.spec.max_surge(), canary.spec.max_unavailable());
    let input = BasicCanary {
        replicas: observed.replicas,
        max_surge: &surge,
        max_unavailable: &unavailable,
        weight,
        canary: Some(counts(current)),
        stable: match stable {
            Some(stable) if stable.hash != current.hash => Stable::Separate(counts(stable)),
            Some(_) => Stable::IsCanary,
            None => Stable::Absent,
        },
        others: &other_counts,
    };
    // The shared validation rejects a maxSurge or maxUnavailable that does not parse, so the
    // error cannot reach here; should it, nothing is scaled.
    let Ok(targets) = replica_math::basic_canary(&input) else {
        return false;
    };
    // One group per reconcile, the next from fresh counts. Older ReplicaSets first (an
    // update mid-canary takes the in-between canary down before the new one grows, within
    // maxUnavailable — Argo scales them last), then the stable, then the canary.
    let separate = stable.filter(|s| s.hash != current.hash);
    let before = planner.plan.actions.len();
    for (rs, target) in others.iter().zip(&targets.others) {
        planner.scale(rs, *target);
        if *target == 0 {
            planner.deadline(rs, None);
        }
    }
    if planner.plan.actions.len() == before
        && let Some(stable) = separate
    {
        planner.scale(stable, targets.stable);
    }
    if planner.plan.actions.len() == before {
        planner.scale(current, targets.canary);
    }
    let at = |rs: &ReplicaSetState, n: i32| rs.replicas == n && rs.available == n;
    at(current, targets.canary)
        && separate.is_none_or(|s| at(s, targets.stable))
        && others.iter().all(|rs| rs.available == 0)
}

/// Progressing with Argo's count-based message (`CalculateRolloutPhase`), or Healthy.
fn count_phase(planner: &Planner<'_>, fully_promoted: bool) -> Phase {
    let observed = planner.observed;
    let counts = Counts::of(&observed.replica_sets, &observed.hash, None);
    if counts.updated < observed.replicas {
        Phase::progressing("more replicas need to be updated")
    } else if counts.available < counts.updated {
        Phase::progressing("updated replicas are still becoming available")
    } else if counts.replicas > counts.updated {
        Phase::progressing("old replicas are pending termination")
    } else if !fully_promoted {
        Phase::progressing("waiting for all steps to complete")
    } else {
        Phase::Healthy
    }
}

/// Aborted: the canary's share goes to 0 and the stable version back to full size; both
/// Services select stable. The step pointer goes back to 0 (a retry starts over).
fn aborted(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    stable: &ReplicaSetState,
    current: &ReplicaSetState,
) -> bool {
    if let Routing::Routed(routed) = &canary.routing {
        routed::aborted(planner, canary, routed, (stable, current));
    } else {
        scale_to_weight(planner, canary, 0, current, Some(stable));
        services(planner, canary, Some(&stable.hash), &stable.hash);
    }
    planner.plan.progress.step = Some(0);
    // Argo's canary lets go of its runs once they are cancelled.
    planner.plan.progress.runs.step = None;
    planner.plan.progress.runs.background = None;
    planner.aborted(stable, current);
    true
}

/// Steady, the first deploy, or back on the stable version: the current ReplicaSet is the
/// stable one, at full size; older ones go. The first deploy is promoted at once (Argo's
/// "Initial deploy"); going back to the stable template skips the remaining steps.
fn steady(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    current: &ReplicaSetState,
    first: bool,
) -> bool {
    let hash = current.hash.clone();
    let steps = canary.spec.steps().len();
    let progress = planner.observed.status.clone();
    if first {
        planner.plan.progress.stable = Some(hash.clone());
        let message = format!(
            "Rollout completed update to revision {} ({hash}): Initial deploy",
            current.revision
        );
        planner.event(false, event::ROLLOUT_COMPLETED, message);
    } else if steps > 0 && progress.step.is_none_or(|i| i < steps as i32) {
        planner.event(
            false,
            event::SKIP_STEPS,
            "Rollback to stable ReplicaSets".into(),
        );
    }
    let stable = (!first).then_some(current);
    let served = match &canary.routing {
        Routing::Routed(routed) => routed::steady(planner, canary, routed, current),
        _ => {
            scale_to_weight(planner, canary, 100, current, stable);
            services(planner, canary, Some(&hash), &hash);
            true
        }
    };
    planner.prune_history(&[&hash]);
    let progress = &mut planner.plan.progress;
    progress.step = Some(steps as i32);
    progress.pauses.clear();
    progress.controller_pause = false;
    progress.promote_full = false;
    progress.aborted_at = None;
    progress.runs.step = None;
    progress.runs.background = None;
    let phase = count_phase(planner, true);
    if phase != Phase::Healthy
        && current.available < planner.observed.replicas
        && planner.timed_out(current, false)
    {
        return true;
    }
    if !served && phase == Phase::Healthy {
        planner.phase(Phase::progressing(routed::waiting_message(0)));
        return true;
    }
    planner.phase(phase);
    true
}

/// An update: step by step from `status.currentStepIndex`.
fn updating(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    stable: &ReplicaSetState,
    current: &ReplicaSetState,
) -> bool {
    let spec = canary.spec;
    if let Routing::Unsupported(router) = &canary.routing {
        planner.phase(Phase::Progressing(format!(
            "waiting for traffic routing: sluice does not route canary traffic through {router} yet; not progressing"
        )));
        return false;
    }
    let now = planner.now;
    let replicas = planner.observed.replicas;
    let status = planner.observed.status.clone();
    let steps = spec.steps();
    let count = steps.len() as i32;
    let mut index = status.step.unwrap_or(0).clamp(0, count);
    let rolling_back = planner.within_rollback_window(current, stable) && current.replicas > 0;
    if rolling_back {
        if index < count {
            planner.event(
                false,
                event::SKIP_STEPS,
                "Rollback to active ReplicaSets within RollbackWindow".into(),
            );
        }
        index = count;
    }
    if status.promote_full {
        index = count;
    }
    if index == count {
        planner.plan.progress.pauses.clear();
    }
    // A retry after an abort starts the analysis afresh.
    if status.aborted_at.is_some() {
        planner.plan.progress.runs = Default::default();
    }
    // A retry after an abort: the aborted canary may not wait for a deadline any more.
    planner.deadline(current, None);
    let full_size = current.available >= replicas && current.replicas == replicas;
    let (at_counts, routing) = match &canary.routing {
        Routing::Routed(routed) => {
            let routing = routed_update(planner, canary, routed, (stable, current), index);
            (routing.0, Some(routing.1))
        }
        _ => {
            let set_weights: Vec<Option<i32>> = steps.iter().map(|s| s.set_weight).collect();
            let weight =
                replica_math::desired_weight(&set_weights, Some(index), false, status.promote_full);
            let at_counts = scale_to_weight(planner, canary, weight, current, Some(stable));
            let to_canary = (current.available > 0).then_some(current.hash.as_str());
            services(planner, canary, to_canary, &stable.hash);
            (at_counts, None)
        }
    };
    planner.prune_history(&[&current.hash, &stable.hash]);
    planner.plan.progress.aborted_at = None;
    planner.plan.progress.step = Some(index);
    // Background analysis runs from `startingStep` until the canary is promoted; it never
    // holds a step, but its failure aborts and its inconclusive end pauses.
    let skip_background = status.promote_full || rolling_back;
    let started = index >= planner.observed.analysis.background_start.min(count);
    if (started || skip_background)
        && planner.analysis(RunKind::Background, skip_background) == Passage::Stopped
    {
        return true;
    }
    if steps
        .get(index as usize)
        .is_none_or(|step| step.analysis.is_none())
    {
        planner.plan.progress.runs.step = None;
    }
    // Behind a router, nothing that depends on the split happens until the data plane
    // serves it.
    if let Some(routing) = routing.as_ref().filter(|r| !r.served) {
        if !planner.timed_out(current, true) {
            planner.phase(Phase::Progressing(routed::waiting_message(routing.weight)));
        }
        return true;
    }
    if index == count {
        // Every step done (or skipped): promote once the canary is at full availability —
        // behind a router, once it takes all the traffic and the stable Service's endpoints
        // are its pods.
        if full_size {
            if let Routing::Routed(routed) = &canary.routing {
                let all = routing
                    .as_ref()
                    .is_some_and(|r| r.weight == spec.max_traffic_weight());
                let message = if !all {
                    Some(routed::waiting_message(spec.max_traffic_weight()))
                } else if !routed.stable_settled {
                    Some(
                        "waiting for the stable Service's endpoints to be the canary's pods"
                            .to_owned(),
                    )
                } else {
                    None
                };
                if let Some(message) = message {
                    if !planner.timed_out(current, true) {
                        planner.phase(Phase::Progressing(message));
                    }
                    return true;
                }
            }
            promote(planner, current, count, status.promote_full);
            return true;
        }
        if !planner.timed_out(current, true) {
            let phase = count_phase(planner, false);
            planner.phase(phase);
        }
        return true;
    }
    let step = &steps[index as usize];
    let position = index + 1;
    let complete = |planner: &mut Planner<'_>| {
        planner.plan.progress.step = Some(position);
        planner.plan.progress.unpause(PauseReason::CanaryPauseStep);
        planner.event(
            false,
            event::ROLLOUT_STEP_COMPLETED,
            format!(
                "Rollout step {position}/{count} completed ({})",
                step_text(step)
            ),
        );
        planner.plan.requeue = Some(std::time::Duration::ZERO);
        let phase = count_phase(planner, false);
        planner.phase(phase);
    };
    let unsupported = routing.as_ref().and_then(|r| r.unsupported.clone());
    if step.set_header_route.is_some() || step.set_mirror_route.is_some() {
        // The router holds the route from this reconcile on; one it cannot express is a
        // warning, and the step completes (as in Argo).
        if let Some(why) = unsupported {
            planner.event(true, event::TRAFFIC_ROUTING_ERROR, why);
        }
        complete(planner);
    } else if step.set_weight.is_some() || step.set_canary_scale.is_some() {
        if at_counts {
            complete(planner);
        } else if !planner.timed_out(current, true) {
            let phase = count_phase(planner, false);
            planner.phase(phase);
        }
    } else if let Some(pause) = &step.pause {
        let duration = pause
            .duration
            .as_ref()
            .and_then(|d| pause_duration(d).ok())
            .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX));
        match (
            status.paused_since(PauseReason::CanaryPauseStep),
            status.controller_pause,
        ) {
            (None, false) => {
                planner.plan.progress.pauses.push(Pause {
                    reason: PauseReason::CanaryPauseStep,
                    since: now,
                });
                planner.plan.progress.controller_pause = true;
                planner.event(
                    false,
                    event::ROLLOUT_PAUSED,
                    "Rollout is paused (CanaryPauseStep)".into(),
                );
                if let Some(seconds) = duration {
                    planner.soonest(at(now, seconds));
                }
                planner.phase(Phase::Paused(PauseReason::CanaryPauseStep));
            }
            (Some(since), _) => match duration {
                Some(seconds) if now >= at(since, seconds) => complete(planner),
                Some(seconds) => {
                    planner.soonest(at(since, seconds));
                    planner.phase(Phase::Paused(PauseReason::CanaryPauseStep));
                }
                None => planner.phase(Phase::Paused(PauseReason::CanaryPauseStep)),
            },
            // Resumed by the user (`promote` cleared the pause condition).
            (None, true) => complete(planner),
        }
    } else if step.analysis.is_some() {
        match planner.analysis(RunKind::Step(index), false) {
            Passage::Open => complete(planner),
            Passage::Wait => {
                let phase = count_phase(planner, false);
                planner.phase(phase);
            }
            Passage::Stopped => {}
        }
    } else {
        // experiment, plugin (and the router steps, which validation refuses without a router).
        planner.phase(Phase::Progressing(format!(
            "waiting for the {} step ({position}/{count}): sluice does not run it yet; not continuing",
            step_text(step)
        )));
    }
    true
}

/// An update behind a router: the pod counts of the step, the weight (the previous step's
/// until the canary is at its counts, 0 while it has no available pod, the recorded one on
/// `promote --full` until the canary has all its pods, all of it once every step is done), the router told, the Services
/// pointed — the stable one at the canary once it takes all the traffic and the data plane
/// serves that. Whether the counts are reached, and what the router said.
fn routed_update(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    routed: &Routed,
    (stable, current): (&ReplicaSetState, &ReplicaSetState),
    index: i32,
) -> (bool, routed::Routing) {
    let spec = canary.spec;
    let steps = spec.steps();
    let count = steps.len() as i32;
    let max = spec.max_traffic_weight();
    let replicas = planner.observed.replicas;
    let full = planner.observed.status.promote_full;
    let pods = routed::PodWeight {
        index,
        full,
        aborted: None,
        keep_scale: false,
        steps,
    };
    let targets = routed::counts(spec, replicas, routed, pods);
    let at_counts = routed::at_counts(spec, (current, Some(stable)), targets);
    let recorded = routed.weights.as_ref().map_or(0, |w| w.canary);
    let (weight, routes) = if current.available == 0 {
        (0, routed::Routes::Removed)
    } else if full && at_counts {
        // Every pod of the canary is up: all of the traffic, then the stable Service's
        // switch (Argo switches at once, keeping the weight; confirming 100 % first keeps
        // the switch invisible).
        (max, routed::Routes::Removed)
    } else if full {
        let weight = if spec.dynamic_stable_scale() {
            max * current.available / replicas.max(1)
        } else {
            recorded
        };
        (weight, routed::Routes::Removed)
    } else if !at_counts {
        (
            routed::previous_weight(steps, index),
            routed::Routes::UpTo(index),
        )
    } else if index < count {
        (
            routed::set_weight(steps, index, max),
            routed::Routes::UpTo(index),
        )
    } else {
        (max, routed::Routes::UpTo(index))
    };
    let hashes = (current.hash.as_str(), stable.hash.as_str());
    let routing = routed::route(planner, canary, routed, weight, routes, hashes);
    // Older ReplicaSets the canary Service or the router still points at keep their pods.
    let referenced = |rs: &ReplicaSetState| {
        canary.canary_service.as_ref().and_then(|s| s.hash()) == Some(rs.hash.as_str())
            || routed
                .weights
                .as_ref()
                .and_then(|w| w.canary_hash.as_deref())
                == Some(rs.hash.as_str())
    };
    let others: Vec<&ReplicaSetState> = planner
        .observed
        .replica_sets
        .iter()
        .filter(|rs| rs.hash != current.hash && rs.hash != stable.hash && rs.replicas > 0)
        .filter(|rs| !referenced(rs))
        .collect();
    routed::scale(
        planner,
        (current, Some(stable)),
        targets,
        &others,
        routing.served,
    );
    let to_canary = (current.available > 0).then_some(current.hash.as_str());
    let all_canary = index == count && routing.weight == max && routing.served;
    let to_stable = if all_canary {
        &current.hash
    } else {
        &stable.hash
    };
    services(planner, canary, to_canary, to_stable);
    (at_counts, routing)
}

/// Every step done: the canary becomes the stable version (Argo's `promoteStable`).
fn promote(planner: &mut Planner<'_>, current: &ReplicaSetState, count: i32, full: bool) {
    let hash = current.hash.clone();
    let why = if full {
        "Full promotion requested".to_owned()
    } else {
        format!("Completed all {count} canary steps")
    };
    let message = format!(
        "Rollout completed update to revision {} ({hash}): {why}",
        current.revision
    );
    planner.event(false, event::ROLLOUT_COMPLETED, message);
    let progress = &mut planner.plan.progress;
    progress.stable = Some(hash);
    progress.step = Some(count);
    progress.pauses.clear();
    progress.controller_pause = false;
    progress.promote_full = false;
    progress.runs.step = None;
    progress.runs.background = None;
    planner.plan.requeue = Some(std::time::Duration::ZERO);
    let phase = count_phase(planner, true);
    planner.phase(phase);
}

#[cfg(test)]
mod tests;
