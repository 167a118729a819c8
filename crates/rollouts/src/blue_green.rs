//! The blue-green planner: Argo Rollouts' `rollout/bluegreen.go` as pure functions of the
//! stage [`crate::plan`] classified (research §2.3) — aborted, steady (incl. the first
//! deploy), updating. Every step waits for the previous one to be observed, so a controller
//! restarted anywhere carries on from the objects alone.
//!
//! Deliberate departure (the user's flow wins over Argo): on abort both the active and the
//! preview Service go back to the stable ReplicaSet (Argo leaves preview on the new one), and
//! `status.blueGreen.previewSelector` says so.
//!
//! Pre- and post-promotion analysis go through [`crate::gate`]: the switch waits for the
//! pre-promotion run (a failure aborts, with the preview back on stable too), the new
//! ReplicaSet becomes stable only once the post-promotion run succeeds (a failure aborts, and
//! the active Service switches back). A fast rollback and `promote --full` skip both.

use sluice_api::{PauseReason, names::event};

use crate::{
    gate::{Passage, RunKind},
    model::{BlueGreenObserved, Pause, Phase, Progress, ReplicaSetState, Targets},
    plan::Stage,
    planner::{Planner, at},
};

/// Plans `stage` of a blue-green Rollout.
pub fn plan_stage(planner: &mut Planner<'_>, bg: &BlueGreenObserved<'_>, stage: Stage<'_>) {
    let roles = match stage {
        Stage::Aborted { stable, current } => aborted(planner, bg, stable, current),
        Stage::Steady { current, first } => steady(planner, bg, current, first),
        Stage::Updating { stable, current } => updating(planner, bg, stable, current),
        Stage::Invalid | Stage::Create | Stage::ManuallyPaused => false,
    };
    if roles {
        role_metadata(planner, bg);
    }
}

/// Sets what the Services select in the plan's targets.
fn target(planner: &mut Planner<'_>, active: Option<&str>, preview: Option<&str>) {
    if let Targets::BlueGreen {
        active: a,
        preview: p,
    } = &mut planner.plan.targets
    {
        if let Some(active) = active {
            *a = Some(active.to_owned());
        }
        if let Some(preview) = preview {
            *p = Some(preview.to_owned());
        }
    }
}

/// Each ReplicaSet carries the metadata of its role: `activeMetadata` on the one the active
/// Service selects, `previewMetadata` on the current one while it is not active.
fn role_metadata(planner: &mut Planner<'_>, bg: &BlueGreenObserved<'_>) {
    let active = match &planner.plan.targets {
        Targets::BlueGreen { active, .. } => active.clone(),
        Targets::Canary { .. } => None,
    };
    let spec = bg.spec;
    planner.role_metadata(
        active.as_deref(),
        spec.active_metadata.as_ref(),
        spec.preview_metadata.as_ref(),
    );
}

/// Aborted: everything back on stable; the new ReplicaSet goes after its delay.
fn aborted(
    planner: &mut Planner<'_>,
    bg: &BlueGreenObserved<'_>,
    stable: &ReplicaSetState,
    current: &ReplicaSetState,
) -> bool {
    let now = planner.now;
    back_to_stable(planner, bg, stable);
    let delay = bg.spec.abort_scale_down_delay_seconds();
    match current.scale_down_deadline {
        _ if delay == 0 || current.replicas == 0 => {}
        None => planner.deadline(current, Some(at(now, delay))),
        Some(deadline) if deadline > now => planner.soonest(deadline),
        Some(_) => {
            planner.scale(current, 0);
            planner.deadline(current, None);
        }
    }
    planner.aborted(stable, current);
    true
}

/// The stable ReplicaSet at full size, both Services on it.
fn back_to_stable(planner: &mut Planner<'_>, bg: &BlueGreenObserved<'_>, stable: &ReplicaSetState) {
    let (active_name, preview_name) = (
        Some(bg.spec.active_service.as_str()),
        bg.spec.preview_service(),
    );
    planner.scale(stable, planner.observed.replicas);
    planner.switch(active_name, Some(&bg.active), &stable.hash);
    planner.switch(preview_name, bg.preview.as_ref(), &stable.hash);
    target(
        planner,
        Some(&stable.hash),
        preview_name.map(|_| stable.hash.as_str()),
    );
}

/// A gate stopped the update; when it aborted, the Services go back to stable in the same
/// reconcile, so no status says "aborted" while production still selects the new version.
fn stopped(
    planner: &mut Planner<'_>,
    bg: &BlueGreenObserved<'_>,
    stable: &ReplicaSetState,
) -> bool {
    if planner.plan.progress.abort {
        back_to_stable(planner, bg, stable);
    }
    true
}

/// Steady, or the first deploy: the current ReplicaSet is (or becomes) the stable one.
fn steady(
    planner: &mut Planner<'_>,
    bg: &BlueGreenObserved<'_>,
    current: &ReplicaSetState,
    first: bool,
) -> bool {
    let replicas = planner.observed.replicas;
    let hash = current.hash.as_str();
    planner.scale(current, replicas);
    let ready = current.replicas == replicas && current.available >= replicas;
    if first && !ready {
        planner.becoming_available(current, false);
        return false;
    }
    if first {
        planner.plan.progress.stable = Some(hash.to_owned());
        let message = format!(
            "Rollout completed update to revision {} ({hash}): Initial deploy",
            current.revision
        );
        planner.event(false, event::ROLLOUT_COMPLETED, message);
    }
    let (active_name, preview_name) = (
        Some(bg.spec.active_service.as_str()),
        bg.spec.preview_service(),
    );
    planner.switch(active_name, Some(&bg.active), hash);
    planner.switch(preview_name, bg.preview.as_ref(), hash);
    target(planner, Some(hash), preview_name.map(|_| hash));
    // Back from a fast rollback: the stable version has no delay to wait out.
    planner.deadline(current, None);
    planner.scale_down_old(
        &[hash],
        bg.spec.scale_down_delay_revision_limit,
        bg.switch_settled,
    );
    planner.prune_history(&[hash]);
    let progress = &mut planner.plan.progress;
    progress.unpause(PauseReason::BlueGreenPause);
    progress.controller_pause = false;
    progress.scale_up_preview = false;
    progress.aborted_at = None;
    if ready {
        planner.phase(Phase::Healthy);
    } else {
        planner.becoming_available(current, false);
    }
    true
}

/// An update: preview on the new ReplicaSet, production on the stable one until promotion.
fn updating(
    planner: &mut Planner<'_>,
    bg: &BlueGreenObserved<'_>,
    stable: &ReplicaSetState,
    current: &ReplicaSetState,
) -> bool {
    let (now, replicas) = (planner.now, planner.observed.replicas);
    let status = planner.observed.status.clone();
    let spec = bg.spec;
    let hash = current.hash.as_str();
    let (active_name, preview_name) = (Some(spec.active_service.as_str()), spec.preview_service());
    // Fast rollback (research §2.11): back to a version older than the stable one (or
    // renumbered from one) while it is still up inside its scale-down delay switches at once:
    // no preview scale-down, no pause, no analysis. Decided from what the ReplicaSet was, so a
    // reconcile cut short after the renumbering still sees it.
    let older = current.revision < stable.revision
        || current
            .previous_revision
            .is_some_and(|previous| previous < stable.revision);
    let fast_rollback = (older
        && current
            .scale_down_deadline
            .is_some_and(|deadline| deadline > now))
        || planner.within_rollback_window(current, stable);
    // A retry after an abort starts the analysis afresh.
    if status.aborted_at.is_some() {
        planner.plan.progress.runs = Default::default();
    }
    let skip_analysis = fast_rollback || status.promote_full;
    // A retry after an abort lifts the aborted ReplicaSet's scale-down deadline.
    if !fast_rollback {
        planner.deadline(current, None);
    }
    planner.scale(stable, replicas);
    planner.switch(preview_name, bg.preview.as_ref(), hash);
    target(planner, None, preview_name.map(|_| hash));
    planner.scale_down_old(
        &[hash, &stable.hash],
        spec.scale_down_delay_revision_limit,
        bg.switch_settled,
    );
    planner.prune_history(&[hash, &stable.hash]);
    planner.plan.progress.aborted_at = None;
    let target_count = match spec.preview_replica_count {
        Some(count) if !status.scale_up_preview && !fast_rollback => count.clamp(0, replicas),
        _ => replicas,
    };
    planner.scale(current, target_count);
    let saturated = current.replicas == target_count && current.available >= target_count;
    if !saturated {
        planner.becoming_available(current, true);
        return true;
    }
    if bg.active.hash() != Some(hash) {
        match planner.analysis(RunKind::PrePromotion, skip_analysis) {
            Passage::Open => {}
            Passage::Wait => {
                planner.phase(Phase::progressing("waiting for analysis to complete"));
                return true;
            }
            Passage::Stopped => return stopped(planner, bg, stable),
        }
        let needs_pause = !spec.auto_promotion_enabled() || spec.auto_promotion_seconds() > 0;
        if needs_pause && !status.promote_full && !fast_rollback && !promotion_pause(planner, bg) {
            return true;
        }
        if target_count < replicas {
            planner.plan.progress.scale_up_preview = true;
            planner.scale(current, replicas);
            planner.phase(Phase::progressing(
                "updated replicas are still becoming available",
            ));
            return true;
        }
        planner.switch(active_name, Some(&bg.active), hash);
        target(planner, Some(hash), None);
        planner.phase(Phase::progressing("active service cutover pending"));
        return true;
    }
    match planner.analysis(RunKind::PostPromotion, skip_analysis) {
        Passage::Open => {}
        Passage::Wait => {
            planner.phase(Phase::progressing(
                "waiting for post-promotion verification to complete",
            ));
            return true;
        }
        Passage::Stopped => return stopped(planner, bg, stable),
    }
    // Switched and saturated: the new ReplicaSet becomes stable; the old one stays up for the delay.
    target(planner, Some(hash), None);
    planner.plan.progress = Progress {
        stable: Some(hash.to_owned()),
        reason: planner.plan.progress.reason,
        step: planner.plan.progress.step,
        runs: planner.plan.progress.runs.clone(),
        ..Progress::default()
    };
    let deadline = at(now, spec.scale_down_delay_seconds());
    planner.deadline(stable, Some(deadline));
    planner.soonest(deadline);
    let message = format!(
        "Rollout completed update to revision {} ({hash}): Completed blue-green update",
        current.revision
    );
    planner.event(false, event::ROLLOUT_COMPLETED, message);
    planner.phase(Phase::Healthy);
    true
}

/// The `BlueGreenPause` before promotion: taken once, ended by `promote` (which clears it) or
/// after `autoPromotionSeconds`. Whether the Rollout may go on now.
fn promotion_pause(planner: &mut Planner<'_>, bg: &BlueGreenObserved<'_>) -> bool {
    let (now, spec) = (planner.now, bg.spec);
    let status = &planner.observed.status;
    let auto = spec.auto_promotion_enabled();
    match (
        status.paused_since(PauseReason::BlueGreenPause),
        status.controller_pause,
    ) {
        (None, false) => {
            planner.plan.progress.pauses.push(Pause {
                reason: PauseReason::BlueGreenPause,
                since: now,
            });
            planner.plan.progress.controller_pause = true;
            planner.event(
                false,
                event::ROLLOUT_PAUSED,
                "Rollout is paused (BlueGreenPause)".into(),
            );
            planner.phase(Phase::Paused(PauseReason::BlueGreenPause));
            if auto {
                planner.soonest(at(now, spec.auto_promotion_seconds()));
            }
            false
        }
        (Some(since), _) => {
            let resume = at(since, spec.auto_promotion_seconds());
            if !auto || now < resume {
                if auto {
                    planner.soonest(resume);
                }
                planner.phase(Phase::Paused(PauseReason::BlueGreenPause));
                return false;
            }
            planner.plan.progress.unpause(PauseReason::BlueGreenPause);
            planner.event(false, event::ROLLOUT_RESUMED, "Rollout is resumed".into());
            true
        }
        // Resumed by the user (`promote` cleared the pause condition).
        (None, true) => true,
    }
}

#[cfg(test)]
mod tests;
