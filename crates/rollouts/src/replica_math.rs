//! The canary's replica math, ported from Argo Rollouts: how many pods the canary, the stable
//! and every other ReplicaSet of a canary Rollout should have.
//!
//! - [`resolve_surge_unavailable`]: `maxSurge` / `maxUnavailable` as Argo resolves them.
//! - [`desired_weight`] and [`dynamic_abort_weight`]: the canary weight the counts aim for.
//! - [`approximate_weighted`]: the canary/stable split that comes closest to a weight.
//! - [`basic_canary`]: a canary without a traffic router (replica ratio), bounded by surge and
//!   unavailability, other ReplicaSets scaled down first.
//! - [`traffic_routed`]: a canary behind a traffic router.
//!
//! Pure: counts in, counts out; no IO, no clock. Deciding which ReplicaSet is the canary, the
//! stable or an other, and scaling them, is the planner's.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The weight that stands for all traffic without a traffic router (Argo's `MaxTrafficWeight`
/// when `trafficRouting.maxTrafficWeight` is unset): weights are percentages.
pub const MAX_WEIGHT: i32 = 100;

/// `maxSurge` and `maxUnavailable` when the spec leaves them out (Argo's `DefaultMaxSurge` and
/// `DefaultMaxUnavailable`, the string `"25"`, which its parser reads as 25 %).
pub const DEFAULT_SURGE_UNAVAILABLE: &str = "25%";

/// What the replica math cannot work with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaMathError {
    /// A `maxSurge` / `maxUnavailable` string that is not a whole number with `%` signs.
    #[error("{field} {value:?} is neither an integer nor a percentage")]
    InvalidIntOrPercent {
        /// `maxSurge` or `maxUnavailable`.
        field: &'static str,
        /// The string as the spec has it.
        value: String,
    },
}

/// One ReplicaSet as the math sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetCounts {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

/// The stable ReplicaSet, as [`basic_canary`] must know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stable {
    /// None: no `status.stableRS` yet (the first deploy), or its ReplicaSet is gone. The canary
    /// goes straight to `replicas`.
    Absent,
    /// The stable ReplicaSet is the canary's own: fully promoted, or rolled back to stable. The
    /// canary goes straight to `replicas`. (Argo then counts that ReplicaSet once more when it
    /// bounds a scale-down; [`basic_canary`] keeps that.) Without a canary, as `Absent`.
    IsCanary,
    /// A ReplicaSet of its own.
    Separate(SetCounts),
}

/// The inputs of [`basic_canary`].
#[derive(Clone, Debug)]
pub struct BasicCanary<'a> {
    /// The Rollout's `spec.replicas` (1 when unset).
    pub replicas: i32,
    /// `spec.strategy.canary.maxSurge` (default [`DEFAULT_SURGE_UNAVAILABLE`]).
    pub max_surge: &'a IntOrString,
    /// `spec.strategy.canary.maxUnavailable` (default [`DEFAULT_SURGE_UNAVAILABLE`]).
    pub max_unavailable: &'a IntOrString,
    /// The canary weight to reach, 0..=100: [`desired_weight`]'s answer, so 0 once aborted and
    /// 100 when promoting fully or past the last step. Unused unless `stable` is `Separate`.
    pub weight: i32,
    /// The canary: the ReplicaSet of the current template; `None` before it is created.
    pub canary: Option<SetCounts>,
    /// The stable ReplicaSet.
    pub stable: Stable,
    /// Every other ReplicaSet of the Rollout (older stables, intermediate canaries), newest
    /// revision first: the order [`BasicTargets::others`] scales them down in. Those at 0
    /// replicas with no available pods may be left out.
    pub others: &'a [SetCounts],
}

/// What [`basic_canary`] wants each ReplicaSet scaled to.
///
/// Argo applies them one group per reconcile, in this order, and stops at the first group that
/// changes anything: the stable (only when `Stable::Separate`), then the canary, then the
/// others. Later groups are recomputed from fresh counts on the next pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicTargets {
    /// The canary's replicas (0 when there is no canary yet).
    pub canary: i32,
    /// The stable's replicas; meaningful only for `Stable::Separate`.
    pub stable: i32,
    /// Each of [`BasicCanary::others`], in the same order.
    pub others: Vec<i32>,
}

/// The count `value` stands for out of `total`, as Kubernetes' deprecated
/// `intstr.GetValueFromIntOrPercent` (which Argo's `resolveFenceposts` calls) reads it: any
/// string is a percentage once its `%` signs are dropped — `"25"` is 25 % — and must then be a
/// whole number. `None` when it is not.
fn scaled(value: &IntOrString, total: i32, round_up: bool) -> Option<i64> {
    match value {
        IntOrString::Int(n) => Some(i64::from(*n)),
        IntOrString::String(text) => {
            let percent: i64 = text.replace('%', "").parse().ok()?;
            let exact = percent as f64 * f64::from(total) / 100.0;
            Some(if round_up {
                exact.ceil()
            } else {
                exact.floor()
            } as i64)
        }
    }
}

/// `maxSurge` and `maxUnavailable` as pod counts for `replicas`: Argo's `MaxSurge` and
/// `MaxUnavailable` (through `resolveFenceposts`). Surge rounds up, unavailable down; when both
/// come to 0, unavailable is 1; unavailable is 0 for 0 replicas and never more than `replicas`.
pub fn resolve_surge_unavailable(
    replicas: i32,
    surge: &IntOrString,
    unavailable: &IntOrString,
) -> Result<(i32, i32), ReplicaMathError> {
    let invalid = |field, value: &IntOrString| ReplicaMathError::InvalidIntOrPercent {
        field,
        value: match value {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(text) => text.clone(),
        },
    };
    let max_surge = scaled(surge, replicas, true).ok_or_else(|| invalid("maxSurge", surge))?;
    let mut max_unavailable = scaled(unavailable, replicas, false)
        .ok_or_else(|| invalid("maxUnavailable", unavailable))?;
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let max_unavailable = if replicas == 0 {
        0
    } else {
        max_unavailable.min(i64::from(replicas))
    };
    Ok((narrow(max_surge), narrow(max_unavailable)))
}

/// The canary weight a Rollout without a traffic router aims for: Argo's
/// `GetCanaryReplicasOrWeight` and `GetCurrentSetWeight`.
///
/// `set_weights` holds each step's `setWeight` (`None` for the other step kinds);
/// `current_step_index` is `status.currentStepIndex` (unset and negative read as 0). `full` is
/// Argo's "go to 100": `status.promoteFull`, or no `status.stableRS`, or `status.currentPodHash`
/// equal to it. Then 100; else 0 when `aborted`; else 100 without steps or past the last one;
/// else the last `setWeight` at or before the current step, 0 when there is none.
pub fn desired_weight(
    set_weights: &[Option<i32>],
    current_step_index: Option<i32>,
    aborted: bool,
    full: bool,
) -> i32 {
    if full {
        return MAX_WEIGHT;
    }
    if aborted {
        return 0;
    }
    let index = current_step_index.map_or(0, |i| usize::try_from(i).unwrap_or(0));
    if index >= set_weights.len() {
        return MAX_WEIGHT;
    }
    set_weights[..=index]
        .iter()
        .rev()
        .find_map(|weight| *weight)
        .unwrap_or(0)
}

/// The weight an aborted traffic-routed canary with `dynamicStableScale` steps back down
/// through: Argo's `GetDesiredCanaryWeight` when both ReplicaSets exist. The largest
/// `setWeight` (walking the steps from the last) whose pods are fewer than the canary still
/// holds, 0 when none is. The canary holds `replicas` minus the stable's available pods, or
/// its own available pods when more — unless `explicit_abort_delay`
/// (`abortScaleDownDelaySeconds` set and not 0), when the canary waits for its deadline and
/// only the stable counts.
pub fn dynamic_abort_weight(
    replicas: i32,
    max_weight: i32,
    set_weights: &[Option<i32>],
    canary_available: i32,
    stable_available: i32,
    explicit_abort_delay: bool,
) -> i32 {
    let expected = replicas.saturating_sub(stable_available);
    let held = if explicit_abort_delay {
        expected
    } else {
        expected.max(canary_available)
    };
    set_weights
        .iter()
        .rev()
        .flatten()
        .copied()
        .find(|&weight| weight_to_replicas(replicas, weight, max_weight) < held)
        .unwrap_or(0)
}

/// The canary and stable counts that come closest to `weight` %: Argo's
/// `approximateWeightedCanaryStableReplicaCounts` (with the weight out of [`MAX_WEIGHT`]).
///
/// The candidates are the canary share rounded up and down, out of `replicas` and — when
/// `max_surge` > 0 — out of `replicas + 1`; the one nearest the weight wins, the first listed on
/// a tie (rounded up, unsurged). A weight strictly between 0 and 100 never gives either side 0
/// pods unless there is a single replica and no surge. 0 replicas give `(0, 0)`.
pub fn approximate_weighted(replicas: i32, weight: i32, max_surge: i32) -> (i32, i32) {
    approximate(replicas, weight, MAX_WEIGHT, max_surge)
}

fn approximate(replicas: i32, weight: i32, max_weight: i32, max_surge: i32) -> (i32, i32) {
    if replicas == 0 {
        return (0, 0);
    }
    let (total, weight64, max64) = (
        i64::from(replicas),
        i64::from(weight),
        i64::from(max_weight),
    );
    let share = (total * weight64) as f64 / max64 as f64;
    let (ceil, floor) = (share.ceil() as i64, share.floor() as i64);
    // A share ending in exactly .5: rounding down is as far off as rounding up, so only the
    // larger canary is a candidate.
    let tied =
        |total: i64| (total as f64 * (f64::from(weight) / f64::from(max_weight))).fract() == 0.5;
    let zero_allowed = weight == max_weight || weight == 0 || (replicas == 1 && max_surge == 0);

    let mut options = Vec::with_capacity(4);
    if ceil < total || zero_allowed {
        options.push((ceil, total));
    }
    if !tied(total) && (floor != 0 || zero_allowed) {
        options.push((floor, total));
    }
    if max_surge > 0 {
        options.push((ceil, total + 1));
        if !tied(total + 1) && (floor != 0 || zero_allowed) {
            options.push((floor, total + 1));
        }
    }
    let delta = |&(canary, total): &(i64, i64)| {
        ((canary * max64) as f64 / total as f64 - weight64 as f64).abs()
    };
    let Some(mut best) = options.first().copied() else {
        return (0, replicas);
    };
    for option in &options[1..] {
        if delta(option) < delta(&best) {
            best = *option;
        }
    }
    (narrow(best.0), narrow(best.1 - best.0))
}

/// The counts for a canary without a traffic router: Argo's
/// `CalculateReplicaCountsForBasicCanary` for the canary and the stable, and
/// `scaleDownOldReplicaSetsForCanary` (after `cleanupUnhealthyReplicas`) for the others.
///
/// The canary and stable aim at [`approximate_weighted`]'s split of `replicas` for `weight`
/// (the canary at all of `replicas` unless the stable is `Separate`). They grow within the surge
/// budget — `replicas + maxSurge` minus every ReplicaSet's replicas — the stable first. While
/// any other ReplicaSet has replicas, neither shrinks. Otherwise the side being drained (the
/// stable while the canary grows, the canary while it shrinks) gives up pods only while the
/// available ones stay at `replicas - maxUnavailable`; the growing side's unavailable pods count
/// against that.
///
/// The others first lose their unavailable pods (all of them at once; nothing this pass while
/// one of them is still scaling down), then as many pods, newest first, as leave
/// `replicas - maxUnavailable` available across the Rollout.
pub fn basic_canary(input: &BasicCanary) -> Result<BasicTargets, ReplicaMathError> {
    let (max_surge, max_unavailable) =
        resolve_surge_unavailable(input.replicas, input.max_surge, input.max_unavailable)?;
    let (canary, stable) = canary_and_stable(input, max_surge, max_unavailable);
    Ok(BasicTargets {
        canary: narrow(canary),
        stable: narrow(stable),
        others: others_scaled_down(input, max_unavailable),
    })
}

/// A ReplicaSet in the 64-bit arithmetic the math runs in.
#[derive(Clone, Copy)]
struct Set {
    replicas: i64,
    available: i64,
}

impl From<SetCounts> for Set {
    fn from(counts: SetCounts) -> Self {
        Set {
            replicas: i64::from(counts.replicas),
            available: i64::from(counts.available),
        }
    }
}

/// Argo's `CalculateReplicaCountsForBasicCanary`.
fn canary_and_stable(input: &BasicCanary, max_surge: i32, max_unavailable: i32) -> (i64, i64) {
    let replicas = i64::from(input.replicas);
    let canary_set = input.canary.map(Set::from);
    // Argo's `CheckStableRSExists`: a stable ReplicaSet that is not the canary's.
    let separate = match input.stable {
        Stable::Separate(counts) => Some(Set::from(counts)),
        Stable::IsCanary | Stable::Absent => None,
    };
    // The stable ReplicaSet as Argo passes it to the scale-down bounds, even when it is the
    // canary's own.
    let stable_set = match input.stable {
        Stable::Separate(_) => separate,
        Stable::IsCanary => canary_set,
        Stable::Absent => None,
    };

    let (desired_canary, desired_stable) =
        approximate(input.replicas, input.weight, MAX_WEIGHT, max_surge);
    let (mut desired_canary, mut desired_stable) =
        (i64::from(desired_canary), i64::from(desired_stable));
    let mut canary = canary_set.map_or(0, |set| set.replicas);
    let mut stable = 0;
    match separate {
        Some(set) => stable = set.replicas,
        None => (desired_canary, desired_stable) = (replicas, 0),
    }

    let max_total = replicas + i64::from(max_surge);
    let others: i64 = input.others.iter().map(|set| i64::from(set.replicas)).sum();
    let current_total =
        others + canary_set.map_or(0, |set| set.replicas) + separate.map_or(0, |set| set.replicas);
    let mut scale_up = max_total - current_total;

    if let Some(set) = separate
        && set.replicas < desired_stable
        && scale_up > 0
    {
        stable = desired_stable.min(set.replicas + scale_up);
        scale_up -= stable - set.replicas;
    }
    if let Some(set) = canary_set
        && set.replicas < desired_canary
        && scale_up > 0
    {
        canary = desired_canary.min(set.replicas + scale_up);
    }

    if others > 0 {
        // The others go first: nothing shrinks until they are gone.
        return (canary, stable);
    }

    let min_available = replicas - i64::from(max_unavailable);
    let increasing = canary_set.is_none_or(|set| desired_canary >= set.replicas);
    let countable =
        for_scale_down(canary_set, !increasing) + for_scale_down(stable_set, increasing);
    if countable <= min_available {
        return (canary, stable);
    }
    let scale_down = countable - min_available;
    if !increasing {
        canary = drained(canary_set, desired_canary, scale_down, canary);
        (canary, stable) = within_limits(
            canary_set,
            stable_set,
            canary,
            stable,
            max_total,
            min_available,
        );
    } else if separate.is_some() {
        stable = drained(separate, desired_stable, scale_down, stable);
        (stable, canary) = within_limits(
            separate,
            canary_set,
            stable,
            canary,
            max_total,
            min_available,
        );
    }
    (canary, stable)
}

/// Argo's `GetReplicasForScaleDown`: the pods of `set` that count as up when bounding a
/// scale-down — its replicas when `ignore_availability` or when it is already shrinking, else
/// its available pods.
fn for_scale_down(set: Option<Set>, ignore_availability: bool) -> i64 {
    match set {
        None => 0,
        Some(set) if set.replicas < set.available || ignore_availability => set.replicas,
        Some(set) => set.available,
    }
}

/// Argo's `calculateScaleDownReplicaCount`: the drained side, `scale_down` pods smaller but
/// not below its desired count.
fn drained(set: Option<Set>, desired: i64, scale_down: i64, count: i64) -> i64 {
    match set {
        Some(set) if set.replicas > desired => desired.max(set.replicas - scale_down),
        _ => count,
    }
}

/// Argo's `adjustReplicaWithinLimits`: takes the surge overshoot off the adjusted side, gives
/// back to it what the minimum availability needs, and takes any overshoot that leaves off the
/// drained side. Returns `(drain_count, adjust_count)`.
fn within_limits(
    drain: Option<Set>,
    adjust: Option<Set>,
    mut drain_count: i64,
    mut adjust_count: i64,
    max_total: i64,
    min_available: i64,
) -> (i64, i64) {
    let mut available = drain.map_or(0, |set| set.available.min(drain_count));
    if let Some(adjust) = adjust {
        adjust_count -= (adjust_count + drain_count - max_total).max(0);
        available += adjust.available.min(adjust_count);
        let lost = (adjust.available - adjust_count).max(0);
        let missing = (min_available - available).max(0);
        adjust_count += lost.min(missing);
        drain_count -= (adjust_count + drain_count - max_total).max(0);
    }
    (drain_count, adjust_count)
}

/// Argo's `cleanupUnhealthyReplicas` then `scaleDownOldReplicaSetsForCanary`, for a canary
/// without a traffic router.
fn others_scaled_down(input: &BasicCanary, max_unavailable: i32) -> Vec<i32> {
    let mut targets: Vec<i64> = input
        .others
        .iter()
        .map(|set| i64::from(set.replicas))
        .collect();
    // Unavailable pods first, oldest ReplicaSet first (Argo goes by creation time). One still
    // scaling down (more available than wanted) ends the pass: Argo stops there with an error.
    for (set, target) in input.others.iter().zip(targets.iter_mut()).rev() {
        if set.replicas == 0 || set.replicas == set.available {
            continue;
        }
        if set.available > set.replicas {
            return targets.into_iter().map(narrow).collect();
        }
        *target = i64::from(set.available);
    }

    let canary = input.canary.map(Set::from);
    let stable = match input.stable {
        Stable::Separate(counts) => Some(Set::from(counts)),
        Stable::IsCanary | Stable::Absent => None,
    };
    let available: i64 = input
        .others
        .iter()
        .map(|set| i64::from(set.available))
        .chain(canary.map(|set| set.available))
        .chain(stable.map(|set| set.available))
        .sum();
    let min_available = i64::from(input.replicas) - i64::from(max_unavailable);
    let mut budget = available - min_available;
    for target in targets.iter_mut() {
        if budget <= 0 {
            break;
        }
        if *target == 0 {
            continue;
        }
        let keep = (*target - budget).max(0);
        budget -= *target - keep;
        *target = keep;
    }
    targets.into_iter().map(narrow).collect()
}

/// A canary's current traffic split, as `status.canary.weights` records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights {
    /// The canary's weight.
    pub canary: i32,
    /// The stable's weight.
    pub stable: i32,
}

/// The inputs of [`traffic_routed`].
#[derive(Clone, Debug)]
pub struct TrafficRouted {
    /// The Rollout's `spec.replicas` (1 when unset).
    pub replicas: i32,
    /// The canary weight to reach: [`desired_weight`], `setCanaryScale.weight` while that step
    /// rules, [`dynamic_abort_weight`] on an abort with `dynamicStableScale`; 0 while
    /// `canary_scale` rules.
    pub weight: i32,
    /// `trafficRouting.maxTrafficWeight` (default [`MAX_WEIGHT`]).
    pub max_weight: i32,
    /// `setCanaryScale.replicas` while that step rules.
    pub canary_scale: Option<i32>,
    /// `spec.strategy.canary.minPodsPerReplicaSet`.
    pub min_pods: Option<i32>,
    /// `spec.strategy.canary.dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// The split the router has now (`status.canary.weights`), if recorded.
    pub current: Option<Weights>,
    /// `status.abort`.
    pub aborted: bool,
}

/// The canary and stable counts behind a traffic router: Argo's
/// `CalculateReplicaCountsForTrafficRoutedCanary`.
///
/// The canary gets `canary_scale`, else `ceil(replicas × weight / max_weight)` raised to
/// `min_pods` (at most `replicas`) unless 0. The stable keeps all `replicas` — unless
/// `dynamic_stable_scale`, when it gets the pods for the larger of its desired and its current
/// traffic share, and on abort the canary keeps the pods for its current share until the
/// router has moved it back; both then raised to `min_pods`.
pub fn traffic_routed(input: &TrafficRouted) -> (i32, i32) {
    let to_replicas = |weight| weight_to_replicas(input.replicas, weight, input.max_weight);
    let min_pods = |count| with_min_pods(count, input.min_pods, input.replicas);
    let canary = input
        .canary_scale
        .unwrap_or_else(|| min_pods(to_replicas(input.weight)));
    if !input.dynamic_stable_scale {
        return (canary, input.replicas);
    }
    let mut canary = canary;
    let mut stable = to_replicas(input.max_weight.saturating_sub(input.weight));
    if let Some(current) = input.current {
        stable = stable.max(to_replicas(current.stable));
        if input.aborted {
            canary = canary.max(to_replicas(current.canary));
        }
    }
    (min_pods(canary), min_pods(stable))
}

/// Argo's `trafficWeightToReplicas`: the pods that carry `weight` out of `max_weight`, rounded
/// up.
pub fn weight_to_replicas(replicas: i32, weight: i32, max_weight: i32) -> i32 {
    narrow((f64::from(weight) * f64::from(replicas) / f64::from(max_weight)).ceil() as i64)
}

/// Argo's `CheckMinPodsPerReplicaSet`: a count that is not 0 raised to `min_pods`, which is
/// capped at `replicas`.
fn with_min_pods(count: i32, min_pods: Option<i32>, replicas: i32) -> i32 {
    match min_pods {
        Some(min) if count != 0 => count.max(min.min(replicas)),
        _ => count,
    }
}

fn narrow(value: i64) -> i32 {
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests;
