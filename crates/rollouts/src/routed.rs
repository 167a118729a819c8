//! The canary with a traffic router: what is particular to it, as pure functions the canary
//! planner ([`crate::canary`]) calls (Argo's `rollout/trafficrouting.go` and
//! `CalculateReplicaCountsForTrafficRoutedCanary`, research §2.5).
//!
//! - **Pods**: the stable ReplicaSet stays at full size (unless `dynamicStableScale`); the
//!   canary gets `ceil(replicas × weight / maxTrafficWeight)` or its `setCanaryScale`, at least
//!   `minPodsPerReplicaSet`; a step is at its counts once `replicaProgressThreshold` of the
//!   canary's pods are available.
//! - **Weights**: the previous step's weight until the canary is at its counts, 0 while it has
//!   no available pod, the recorded weight on `promote --full`, 100 once every step is done;
//!   0 on abort (stepping down through the steps with `dynamicStableScale`) and after
//!   promotion. The router is told in Argo's order — hashes, header and mirror routes, weight
//!   — and `status.canary.weights` records the split with a `TrafficWeightUpdated` event.
//! - **Confirmed, not assumed** (beyond Argo): where the data plane reports what it serves,
//!   nothing that depends on the split — a step completing, a pause starting, an analysis
//!   starting, any scale-down, the stable Service's switch — happens until it serves the
//!   weight last written; the wait counts toward `progressDeadlineSeconds`.

use sluice_api::{
    CanaryStep, CanaryStrategy, ReplicaProgressThreshold, SetCanaryScale, names::event,
};

use crate::{
    model::{CanaryObserved, ReplicaSetState, Routed, WeightStatus},
    planner::Planner,
    replica_math::{self, TrafficRouted, Weights},
    router::Support,
};

/// Which header and mirror routes the router holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// Those the steps up to and including this index set (and did not remove).
    UpTo(i32),
    /// None (promoted, aborted, or a canary without available pods).
    Removed,
}

/// What the router said about this reconcile's split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// The data plane serves it (or cannot tell).
    pub served: bool,
    /// The weight written.
    pub weight: i32,
    /// The current step's route, if the router could not express it.
    pub unsupported: Option<String>,
}

/// Argo's `ReplicaProgressThresholdMet`: whether `available` of `desired` pods are enough.
pub fn threshold_met(
    threshold: Option<&ReplicaProgressThreshold>,
    rs: &ReplicaSetState,
    desired: i32,
) -> bool {
    match threshold {
        Some(t) if t.value >= 0 && t.type_ == "Percent" => {
            desired == 0
                || f64::from(rs.available) / f64::from(desired) * 100.0
                    >= f64::from(t.value) - 1e-10
        }
        Some(t) if t.value >= 0 => rs.available >= t.value,
        _ => rs.replicas == desired && rs.available >= desired,
    }
}

/// The last `setWeight` at or before step `index`, 0 when none (Argo's `GetCurrentSetWeight`
/// before the last step; `max` past it).
pub fn set_weight(steps: &[CanaryStep], index: i32, max: i32) -> i32 {
    let Ok(index) = usize::try_from(index) else {
        return 0;
    };
    if index >= steps.len() {
        return max;
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
}

/// The `setWeight` of the steps before `index` (the weight while the canary is not yet at
/// the counts of the current one).
pub fn previous_weight(steps: &[CanaryStep], index: i32) -> i32 {
    let end = usize::try_from(index).unwrap_or(0).min(steps.len());
    steps[..end]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
}

/// The `setCanaryScale` in force at `index` (Argo's `UseSetCanaryScale`): the last one at or
/// before it, unless that one says `matchTrafficWeight`.
pub fn canary_scale(steps: &[CanaryStep], index: i32) -> Option<&SetCanaryScale> {
    let end = usize::try_from(index).ok()?;
    let scale = steps
        .get(..=end.min(steps.len().checked_sub(1)?))?
        .iter()
        .rev()
        .find_map(|s| s.set_canary_scale.as_ref())?;
    (!scale.match_traffic_weight.unwrap_or(false)).then_some(scale)
}

/// What decides the pod counts of an update.
#[derive(Debug, Clone, Copy)]
pub struct PodWeight<'s> {
    /// The step pointer.
    pub index: i32,
    /// `promote --full`.
    pub full: bool,
    /// The update stands aborted, with this weight to step down through
    /// (`dynamicStableScale`).
    pub aborted: Option<i32>,
    /// Keep the `setCanaryScale` on abort (`abortScaleDownDelaySeconds: 0`).
    pub keep_scale: bool,
    /// The steps.
    pub steps: &'s [CanaryStep],
}

/// The canary and stable pod counts (Argo's `CalculateReplicaCountsForTrafficRoutedCanary`
/// with `GetCanaryReplicasOrWeight`).
pub fn counts(
    spec: &CanaryStrategy,
    replicas: i32,
    routed: &Routed,
    pods: PodWeight<'_>,
) -> (i32, i32) {
    let max = spec.max_traffic_weight();
    let scale = match pods.aborted {
        Some(_) if !pods.keep_scale => None,
        _ => canary_scale(pods.steps, pods.index),
    };
    let (canary_scale, weight) = match (pods.full, scale, pods.aborted) {
        (true, _, _) => (None, max),
        (
            false,
            Some(SetCanaryScale {
                replicas: Some(n), ..
            }),
            _,
        ) => (Some(*n), 0),
        (
            false,
            Some(SetCanaryScale {
                weight: Some(w), ..
            }),
            _,
        ) => (None, *w),
        (false, _, Some(abort_weight)) => (None, abort_weight),
        (false, _, None) => (None, set_weight(pods.steps, pods.index, max)),
    };
    replica_math::traffic_routed(&TrafficRouted {
        replicas,
        weight,
        max_weight: max,
        canary_scale,
        min_pods: spec.min_pods_per_replica_set,
        dynamic_stable_scale: spec.dynamic_stable_scale(),
        current: routed.weights.as_ref().map(|w| Weights {
            canary: w.canary,
            stable: w.stable,
        }),
        aborted: pods.aborted.is_some(),
    })
}

/// Whether the canary and stable are at their counts (Argo's
/// `AtDesiredReplicaCountsForCanary` with a router: older ReplicaSets may still have pods,
/// the router sends them nothing).
pub fn at_counts(
    spec: &CanaryStrategy,
    (canary, stable): (&ReplicaSetState, Option<&ReplicaSetState>),
    (canary_target, stable_target): (i32, i32),
) -> bool {
    let threshold = spec.replica_progress_threshold.as_ref();
    let canary_at =
        canary.replicas == canary_target && threshold_met(threshold, canary, canary_target);
    let separate = stable.filter(|s| s.hash != canary.hash);
    let stable_at = spec.dynamic_stable_scale()
        || separate.is_none_or(|s| s.replicas == stable_target && s.actual >= stable_target);
    canary_at && stable_at
}

/// Scales toward the counts, one group per reconcile (older ReplicaSets, stable, canary);
/// nothing is scaled down unless `may_shrink` (the data plane serves the split).
pub fn scale(
    planner: &mut Planner<'_>,
    (canary, stable): (&ReplicaSetState, Option<&ReplicaSetState>),
    (canary_target, stable_target): (i32, i32),
    others: &[&ReplicaSetState],
    may_shrink: bool,
) {
    let before = planner.plan.actions.len();
    let to = |planner: &mut Planner<'_>, rs: &ReplicaSetState, n: i32| {
        if n >= rs.replicas || may_shrink {
            planner.scale(rs, n);
        }
    };
    for rs in others {
        to(planner, rs, 0);
    }
    let separate = stable.filter(|s| s.hash != canary.hash);
    if planner.plan.actions.len() == before
        && let Some(stable) = separate
    {
        to(planner, stable, stable_target);
    }
    if planner.plan.actions.len() == before {
        to(planner, canary, canary_target);
    }
}

/// Argo's `checkReplicasAvailable`: whether the stable ReplicaSet has the pods for
/// `stable_weight`.
fn stable_can_take(
    spec: &CanaryStrategy,
    replicas: i32,
    stable: Option<&ReplicaSetState>,
    stable_weight: i32,
) -> bool {
    let Some(stable) = stable else {
        return false;
    };
    let desired = stable_weight.saturating_mul(replicas) / spec.max_traffic_weight().max(1);
    stable.available >= desired
        || threshold_met(spec.replica_progress_threshold.as_ref(), stable, desired)
}

/// Tells the router the split — `weight` to the canary of `hashes` (canary, stable), with
/// `routes` — in Argo's order, records it in `status.canary.weights` (with Argo's
/// `TrafficWeightUpdated` event when it changed) and returns whether the data plane serves it.
/// A stable ReplicaSet without the pods for its share keeps the split as it is.
pub fn route(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    routed: &Routed,
    weight: i32,
    routes: Routes,
    (canary_hash, stable_hash): (&str, &str),
) -> Routing {
    let spec = canary.spec;
    let max = spec.max_traffic_weight();
    let replicas = planner.observed.replicas;
    let stable = planner.observed.replica_set(stable_hash);
    let recorded = routed.weights.as_ref().map_or(0, |w| w.canary);
    let (weight, holding) = if stable_can_take(spec, replicas, stable, max - weight) {
        (weight, false)
    } else {
        (recorded, true)
    };
    let mut router = routed.router.start();
    router.update_hash(canary_hash, stable_hash);
    let mut unsupported = None;
    match routes {
        Routes::Removed => router.remove_managed_routes(),
        Routes::UpTo(index) => {
            for (i, step) in spec
                .steps()
                .iter()
                .enumerate()
                .take(usize::try_from(index + 1).unwrap_or(0))
            {
                let said = [
                    step.set_header_route
                        .as_ref()
                        .map(|r| router.set_header_route(r)),
                    step.set_mirror_route
                        .as_ref()
                        .map(|r| router.set_mirror_route(r)),
                ];
                for support in said.into_iter().flatten() {
                    if let Support::Unsupported(why) = support
                        && i32::try_from(i) == Ok(index)
                    {
                        unsupported = Some(why);
                    }
                }
            }
        }
    }
    router.set_weight(weight);
    let verified = router.verify_weight();
    for write in router.writes() {
        planner
            .plan
            .actions
            .push(crate::model::Action::Route(write));
    }
    let next = WeightStatus {
        canary: weight,
        stable: max - weight,
        canary_hash: Some(canary_hash.to_owned()),
        stable_hash: Some(stable_hash.to_owned()),
        verified,
    };
    let previous = routed.weights.as_ref();
    let moved = previous.is_none_or(|p| {
        (p.canary, p.stable, &p.canary_hash, &p.stable_hash)
            != (
                next.canary,
                next.stable,
                &next.canary_hash,
                &next.stable_hash,
            )
    });
    if moved {
        let detail = match previous {
            Some(p) if p.canary != weight => format!("from {} to {weight}", p.canary),
            Some(_) => String::new(),
            None => format!("to {weight}"),
        };
        planner.event(
            false,
            event::TRAFFIC_WEIGHT_UPDATED,
            format!("Traffic weight updated {detail}")
                .trim_end()
                .to_owned(),
        );
    }
    if let crate::model::Targets::Canary { weights, .. } = &mut planner.plan.targets {
        *weights = Some(next);
    }
    Routing {
        served: verified != Some(false) && !holding,
        weight,
        unsupported,
    }
}

/// The phase message while the data plane does not yet serve `weight`.
pub fn waiting_message(weight: i32) -> String {
    format!("waiting for the ingress to serve canary weight {weight}")
}

/// The weights an aborted canary steps down through with `dynamicStableScale` (Argo's
/// `GetDesiredCanaryWeight` for the pods, `calculateDesiredWeightOnAbortOrStableRollback`
/// for the traffic): the pods go by the step the stable's available pods allow; the traffic
/// never goes up again while the stable's pods come back, and only as far down as the stable
/// can take. `(traffic, pods)`; both 0 without `dynamicStableScale`.
fn abort_weights(
    spec: &CanaryStrategy,
    replicas: i32,
    routed: &Routed,
    (canary, stable): (&ReplicaSetState, &ReplicaSetState),
) -> (i32, i32) {
    if !spec.dynamic_stable_scale() || replicas == 0 {
        return (0, 0);
    }
    let max = spec.max_traffic_weight();
    let set_weights: Vec<Option<i32>> = spec.steps().iter().map(|s| s.set_weight).collect();
    let explicit = spec.abort_scale_down_delay_seconds.is_some_and(|d| d > 0);
    let desired = replica_math::dynamic_abort_weight(
        replicas,
        max,
        &set_weights,
        canary.available,
        stable.available,
        explicit,
    );
    let stable_share = max * stable.available / replicas;
    let expected = (max - stable_share).max(0);
    let traffic = match routed.weights.as_ref().map(|w| w.canary) {
        None => expected.max(desired),
        Some(current) if desired <= 0 => expected.min(current),
        Some(current) if stable_share < max - desired => current,
        Some(current) => desired.min(current),
    };
    (traffic, desired)
}

/// An aborted update behind a router: the canary's weight to 0 (stepping down with
/// `dynamicStableScale`), header routes dropped, the canary Service back on stable once the
/// canary has no traffic; the stable at full size. Once the data plane serves that and the
/// stable's pods are all available, the canary is scaled down after
/// `abortScaleDownDelaySeconds` (0 keeps it; with `dynamicStableScale` and no explicit delay
/// it drains as its share goes).
pub fn aborted(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    routed: &Routed,
    (stable, current): (&ReplicaSetState, &ReplicaSetState),
) {
    let spec = canary.spec;
    let replicas = planner.observed.replicas;
    let (weight, pods_weight) = abort_weights(spec, replicas, routed, (current, stable));
    let hashes = (current.hash.as_str(), stable.hash.as_str());
    let routing = route(planner, canary, routed, weight, Routes::Removed, hashes);
    let to_canary =
        (!spec.dynamic_stable_scale() || routing.weight == 0).then_some(stable.hash.as_str());
    crate::canary::services(planner, canary, to_canary, &stable.hash);
    let pods = PodWeight {
        index: planner.observed.status.step.unwrap_or(0),
        full: false,
        aborted: Some(pods_weight),
        keep_scale: spec.abort_scale_down_delay_seconds == Some(0),
        steps: spec.steps(),
    };
    let (canary_target, stable_target) = counts(spec, replicas, routed, pods);
    planner.scale(stable, stable_target.max(stable.replicas));
    if !routing.served || current.replicas <= canary_target {
        return;
    }
    let explicit = spec.abort_scale_down_delay_seconds;
    if spec.dynamic_stable_scale() && explicit.is_none() {
        planner.scale(current, canary_target);
        return;
    }
    let delay = spec.abort_scale_down_delay_seconds();
    if delay == 0 || stable.available < replicas {
        return;
    }
    match current.scale_down_deadline {
        None => {
            let at = crate::planner::at(planner.now, delay);
            planner.deadline(current, Some(at));
            planner.soonest(at);
        }
        Some(at) if at > planner.now => planner.soonest(at),
        Some(_) => {
            planner.scale(current, canary_target);
            planner.deadline(current, None);
        }
    }
}

/// The stable version behind a router (first deploy, promoted, or back on stable): both
/// Services on it; its share goes back to the stable Ingress once the stable Service's
/// endpoints are its pods; then older ReplicaSets keep their pods for
/// `scaleDownDelaySeconds` (at once with `dynamicStableScale`) and go. Whether the data plane
/// serves the split.
pub fn steady(
    planner: &mut Planner<'_>,
    canary: &CanaryObserved<'_>,
    routed: &Routed,
    current: &ReplicaSetState,
) -> bool {
    let spec = canary.spec;
    let hash = current.hash.as_str();
    let recorded = routed.weights.as_ref().map_or(0, |w| w.canary);
    let weight = if routed.stable_settled { 0 } else { recorded };
    let routing = route(
        planner,
        canary,
        routed,
        weight,
        Routes::Removed,
        (hash, hash),
    );
    crate::canary::services(planner, canary, Some(hash), hash);
    let replicas = planner.observed.replicas;
    planner.scale(current, replicas);
    if !routing.served || routing.weight != 0 {
        return routing.served;
    }
    if spec.dynamic_stable_scale() {
        planner.scale_down_old(&[hash], None, true);
        return true;
    }
    let now = planner.now;
    let delay = spec.scale_down_delay_seconds();
    let undated: Vec<ReplicaSetState> = planner
        .observed
        .replica_sets
        .iter()
        .filter(|rs| rs.hash != hash && rs.replicas > 0 && rs.scale_down_deadline.is_none())
        .cloned()
        .collect();
    if undated.is_empty() {
        planner.scale_down_old(&[hash], spec.scale_down_delay_revision_limit, true);
    }
    for rs in &undated {
        let at = crate::planner::at(now, delay);
        planner.deadline(rs, Some(at));
        planner.soonest(at);
    }
    true
}
