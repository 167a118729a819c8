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
mod tests {
    use super::*;

    fn int(n: i32) -> IntOrString {
        IntOrString::Int(n)
    }

    fn pct(text: &str) -> IntOrString {
        IntOrString::String(text.into())
    }

    fn rs(replicas: i32, available: i32) -> SetCounts {
        SetCounts {
            replicas,
            available,
        }
    }

    fn stable(replicas: i32, available: i32) -> Stable {
        Stable::Separate(rs(replicas, available))
    }

    /// One [`basic_canary`] case: the inputs, then the canary, stable and others it must give.
    struct Basic {
        name: &'static str,
        replicas: i32,
        surge: IntOrString,
        unavailable: IntOrString,
        weight: i32,
        canary: Option<SetCounts>,
        stable: Stable,
        others: Vec<SetCounts>,
        want: (i32, i32),
        want_others: Vec<i32>,
    }

    /// A case with no other ReplicaSets.
    #[allow(clippy::too_many_arguments)]
    fn case(
        name: &'static str,
        replicas: i32,
        surge: IntOrString,
        unavailable: IntOrString,
        weight: i32,
        canary: Option<SetCounts>,
        stable: Stable,
        want: (i32, i32),
    ) -> Basic {
        Basic {
            name,
            replicas,
            surge,
            unavailable,
            weight,
            canary,
            stable,
            others: vec![],
            want,
            want_others: vec![],
        }
    }

    impl Basic {
        fn others(mut self, others: Vec<SetCounts>, want: Vec<i32>) -> Self {
            self.others = others;
            self.want_others = want;
            self
        }
    }

    fn check(cases: Vec<Basic>) {
        for case in cases {
            let got = basic_canary(&BasicCanary {
                replicas: case.replicas,
                max_surge: &case.surge,
                max_unavailable: &case.unavailable,
                weight: case.weight,
                canary: case.canary,
                stable: case.stable,
                others: &case.others,
            })
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(
                (got.canary, got.stable),
                case.want,
                "{}: (canary, stable)",
                case.name
            );
            assert_eq!(got.others, case.want_others, "{}: others", case.name);
        }
    }

    /// Argo's `TestCalculateReplicaCountsForCanary` (the rows without `trafficRouting`; with
    /// one step, so `weight` is its `setWeight`, or 100 with `promoteFull`),
    /// `TestCalculateReplicaCountsForNewDeployment` and
    /// `TestCalculateReplicaCountsForCanaryStableRSdEdgeCases`. Argo asserts the canary and
    /// stable; the others' targets are this port's.
    #[test]
    #[rustfmt::skip]
    fn basic_canary_matches_argo_tables() {
        let c = Some;
        check(vec![
            case("Do not add extra RSs in scaleDownCount when .Spec.Replica < AvailableReplicas",
                10, int(3), int(0), 100, c(rs(6, 3)), stable(7, 8), (6, 7)),
            case("Use max surge int to scale up canary",
                10, int(2), int(0), 20, c(rs(0, 0)), stable(10, 10), (2, 10)),
            case("Use max surge percentage to scale up canary",
                10, pct("20%"), int(0), 20, c(rs(0, 0)), stable(10, 10), (2, 10)),
            case("Scale down extra stable replicas",
                10, pct("20%"), int(0), 20, c(rs(2, 2)), stable(10, 10), (2, 8)),
            case("Do not go past max surge",
                10, int(2), int(0), 30, c(rs(0, 0)), stable(10, 10), (2, 10)),
            case("Use max unavailable int to scale down stableRS",
                10, int(0), int(2), 20, c(rs(0, 0)), stable(10, 10), (0, 8)),
            case("Use max surge percentage to scale down stableRS",
                10, int(0), pct("20%"), 20, c(rs(0, 0)), stable(10, 10), (0, 8)),
            case("Do not go past max unavailable",
                10, int(0), int(2), 30, c(rs(0, 0)), stable(10, 10), (0, 8)),
            case("Use Max Surge and Max Unavailable",
                10, int(2), int(1), 50, c(rs(0, 0)), stable(10, 10), (2, 9)),
            case("Scale canaryRS to zero on setWeight of 0%",
                10, int(1), int(1), 0, c(rs(1, 1)), stable(10, 10), (0, 10)),
            case("Scale stable to zero on setWeight of 100%",
                10, int(1), int(1), 100, c(rs(10, 10)), stable(1, 1), (10, 0)),
            case("Do not scale canaryRS down to zero on non-zero weight",
                1, int(1), int(0), 20, c(rs(0, 0)), stable(1, 1), (1, 1)),
            case("Do not scale canaryRS down to zero on non-100 weight",
                1, int(1), int(0), 90, c(rs(0, 0)), stable(1, 1), (1, 1)),
            case("Scale canaryRS to zero on <50 weight without surge",
                1, int(0), int(1), 49, c(rs(0, 0)), stable(1, 1), (0, 1)),
            case("Scale stableRS down to zero on >=50 weight without surge",
                1, int(0), int(1), 51, c(rs(0, 0)), stable(1, 1), (0, 0)),
            case("Scale canaryRS to one on >=50 weight without surge and stable replicas",
                1, int(0), int(1), 51, c(rs(0, 0)), stable(0, 0), (1, 0)),
            case("Scale up Stable before canaryRS",
                10, int(1), int(0), 30, c(rs(0, 0)), stable(1, 1), (1, 7))
                .others(vec![rs(3, 3)], vec![3]),
            case("Scale down canaryRS and stable",
                10, int(0), int(3), 30, c(rs(4, 4)), stable(8, 5), (3, 7)),
            case("Scale down stable and canary available",
                10, int(1), int(0), 100, c(rs(10, 8)), stable(10, 2), (9, 2)),
            case("Do not scale down canaryRS or stable when older RS count >= scaleDownCount",
                10, int(0), int(1), 30, c(rs(4, 2)), stable(8, 6), (4, 8))
                .others(vec![rs(3, 3)], vec![1]),
            case("Do not round past maxSurge with uneven setWeight divisor",
                10, int(0), int(1), 5, c(rs(0, 0)), stable(10, 10), (0, 9)),
            case("Do not round past maxSurge with uneven setWeight divisor (part 2)",
                10, int(0), int(1), 5, c(rs(0, 0)), stable(9, 9), (1, 9)),
            case("Use maxUnavailable of 1 when percentage of maxUnavailable and maxSurge result in 0 replicas",
                10, pct("0%"), pct("0%"), 10, c(rs(0, 0)), stable(10, 10), (0, 9)),
            case("Ignore setCanaryScale when trafficRouting is missing and use setWeight for replicas",
                10, pct("20%"), int(0), 20, c(rs(0, 0)), stable(10, 10), (2, 10)),
            case("honor maxSurge during scale up when stableRS unavailable",
                4, int(1), int(0), 100, c(rs(0, 0)), stable(4, 1), (1, 4)),
            case("scale down to maxunavailable without exceeding maxSurge",
                3, int(0), int(2), 99, c(rs(0, 0)), stable(3, 3), (0, 1)),
            case("scale down to maxunavailable without exceeding maxSurge (part 2)",
                3, int(0), int(2), 99, c(rs(0, 0)), stable(1, 1), (2, 1)),
            case("honor maxUnavailable during scale down stableRS unavailable",
                4, int(1), int(0), 100, c(rs(1, 1)), stable(4, 1), (1, 3)),
            case("honor maxUnavailable when aborting or reducing weight part 1",
                4, int(1), int(0), 0, c(rs(4, 4)), stable(0, 0), (4, 1)),
            case("honor maxUnavailable when aborting or reducing weight part 2",
                4, int(1), int(0), 0, c(rs(4, 4)), stable(1, 0), (4, 1)),
            case("honor maxUnavailable when aborting or reducing weight part 3",
                4, int(1), int(0), 0, c(rs(4, 4)), stable(1, 1), (3, 1)),
            case("promote full does not consider weight",
                4, int(4), int(4), 100, c(rs(0, 0)), stable(4, 4), (4, 0)),
            case("promote full still honors maxSurge/maxUnavailable",
                4, int(3), int(0), 100, c(rs(0, 0)), stable(4, 4), (3, 4)),
            // TestCalculateReplicaCountsForNewDeployment: the stable is the canary's ReplicaSet.
            case("new deployment",
                10, int(0), int(1), 10, c(rs(10, 0)), Stable::IsCanary, (10, 0)),
            // TestCalculateReplicaCountsForCanaryStableRSdEdgeCases.
            case("no stable ReplicaSet",
                10, int(0), int(1), 10, c(rs(9, 9)), Stable::Absent, (10, 0)),
            case("stable is the canary",
                10, int(0), int(1), 10, c(rs(9, 9)), Stable::IsCanary, (10, 0)),
        ]);
    }

    /// The canary fixtures of Argo's `rollout/canary_test.go` that scale one ReplicaSet, as
    /// counts: the group Argo scales first changes as they assert.
    #[test]
    #[rustfmt::skip]
    fn basic_canary_matches_argo_controller_fixtures() {
        let c = Some;
        check(vec![
            // TestCanaryRolloutCreateNewReplicaWithCorrectWeight: the new ReplicaSet → 1.
            case("create new replica with correct weight",
                10, int(1), int(0), 10, c(rs(0, 0)), stable(10, 10), (1, 10)),
            // TestCanaryRolloutScaleUpNewReplicaWithCorrectWeight: canary 1 → 2.
            case("scale up new replica with correct weight",
                5, int(0), int(1), 40, c(rs(1, 1)), stable(3, 3), (2, 3)),
            // TestCanaryRolloutScaleDownStableToMatchWeight: stable 10 → 9.
            case("scale down stable to match weight",
                10, int(0), int(1), 10, c(rs(0, 0)), stable(10, 10), (0, 9)),
            // TestCanaryRolloutScaleDownOldRs: the intermediate ReplicaSet 1 → 0.
            case("scale down old rs",
                10, int(1), int(0), 10, c(rs(1, 1)), stable(9, 9), (1, 9))
                .others(vec![rs(1, 1)], vec![0]),
            // TestCanaryRolloutScaleDownOldRsDontScaleDownTooMuch: no steps, the stable is the
            // canary; revision 2 → 0, then revision 1 → 4 (availability 4 kept).
            case("scale down old rs, not too much",
                4, int(1), int(0), 100, c(rs(5, 0)), Stable::IsCanary, (5, 0))
                .others(vec![rs(5, 5), rs(5, 5)], vec![0, 4]),
            // TestCanaryRolloutScaleWhilePaused: spec.replicas 5 → 10 at setWeight 20, the
            // stable goes 5 → 8 (then the canary 0 → 2).
            case("scale while paused",
                10, int(1), int(0), 20, c(rs(0, 0)), stable(5, 5), (2, 8)),
        ]);
    }

    /// The user's drill (2 replicas, default 25 %: surge 1, unavailable 0; setWeight 50, pause,
    /// setWeight 100), one pass at a time, and an abort from the pause.
    #[test]
    #[rustfmt::skip]
    fn basic_canary_drill_and_abort() {
        let d = || pct(DEFAULT_SURGE_UNAVAILABLE);
        let c = Some;
        check(vec![
            case("first deploy: no stable, straight to 2",
                2, d(), d(), 50, c(rs(0, 0)), Stable::Absent, (2, 0)),
            case("first deploy, weight 0 is ignored without a stable",
                3, d(), d(), 0, c(rs(0, 0)), Stable::Absent, (3, 0)),
            case("50 %: canary not created yet",
                2, d(), d(), 50, None, stable(2, 2), (0, 2)),
            case("50 %: the surge pod goes to the canary",
                2, d(), d(), 50, c(rs(0, 0)), stable(2, 2), (1, 2)),
            case("50 %: stable waits for the canary pod to be available",
                2, d(), d(), 50, c(rs(1, 0)), stable(2, 2), (1, 2)),
            case("50 %: then gives one up",
                2, d(), d(), 50, c(rs(1, 1)), stable(2, 2), (1, 1)),
            case("100 %: canary surges",
                2, d(), d(), 100, c(rs(1, 1)), stable(1, 1), (2, 1)),
            case("100 %: stable drains once the canary is available",
                2, d(), d(), 100, c(rs(2, 2)), stable(1, 1), (2, 0)),
            case("abort at 50 %: the stable surges back first",
                2, d(), d(), 0, c(rs(1, 1)), stable(1, 1), (1, 2)),
            case("abort at 50 %: the canary drains once the stable is available",
                2, d(), d(), 0, c(rs(1, 1)), stable(2, 2), (0, 2)),
            case("abort at 50 %: not while the stable pod is unavailable",
                2, d(), d(), 0, c(rs(1, 1)), stable(2, 1), (1, 2)),
        ]);
    }

    /// Edge cases: one replica, odd counts, no surge, no unavailability, percents on both,
    /// the surge budget, maxUnavailable bounding the scale-down, and intermediate ReplicaSets
    /// from an update mid-canary.
    #[test]
    #[rustfmt::skip]
    fn basic_canary_edge_cases() {
        let c = Some;
        check(vec![
            case("1 replica, 25 % defaults (surge 1, unavailable 0): one of each at 50 %",
                1, pct("25%"), pct("25%"), 50, c(rs(0, 0)), stable(1, 1), (1, 1)),
            case("1 replica, no surge: 50 % moves the only pod, stable first",
                1, int(0), int(1), 50, c(rs(0, 0)), stable(1, 1), (0, 0)),
            case("1 replica, weight 100, no surge: canary up once the stable is down",
                1, int(0), int(1), 100, c(rs(0, 0)), stable(0, 0), (1, 0)),
            case("odd: 5 replicas at 50 % with surge aims at 3/3, surges 1",
                5, int(1), int(0), 50, c(rs(0, 0)), stable(5, 5), (1, 5)),
            case("odd: 5 replicas at 50 % with surge, canary available: stable drains to 4",
                5, int(1), int(0), 50, c(rs(1, 1)), stable(5, 5), (1, 4)),
            case("odd: 5 replicas at 50 % without surge aims at 3/2, stable first",
                5, int(0), int(1), 50, c(rs(0, 0)), stable(5, 5), (0, 4)),
            case("odd: 3 replicas at 100 % with surge",
                3, int(1), int(0), 100, c(rs(0, 0)), stable(3, 3), (1, 3)),
            case("surge 0: the stable makes room first",
                10, int(0), int(1), 50, c(rs(0, 0)), stable(10, 10), (0, 9)),
            case("surge 0: then the canary takes the freed slot",
                10, int(0), int(1), 50, c(rs(0, 0)), stable(9, 9), (1, 9)),
            case("surge 0: stable holds while the canary pod is unavailable",
                10, int(0), int(1), 50, c(rs(1, 0)), stable(9, 9), (1, 9)),
            case("unavailable 0: nothing drains until the surge pod is available",
                10, int(2), int(0), 50, c(rs(2, 0)), stable(10, 10), (2, 10)),
            case("unavailable 0: both zero resolves unavailable to 1",
                10, int(0), int(0), 50, c(rs(0, 0)), stable(10, 10), (0, 9)),
            case("percents on both: 10 × 25 % is surge 3, unavailable 2",
                10, pct("25%"), pct("25%"), 50, c(rs(0, 0)), stable(10, 10), (3, 8)),
            case("scale-up budget: the canary grows by the surge only",
                10, int(2), int(0), 50, c(rs(0, 0)), stable(10, 10), (2, 10)),
            case("scale-up budget: the stable takes it first while the canary shrinks",
                10, int(2), int(0), 50, c(rs(8, 8)), stable(3, 3), (7, 4)),
            case("scale-up budget: none left, the stable drains within maxUnavailable",
                10, int(1), int(0), 50, c(rs(3, 3)), stable(8, 8), (3, 7)),
            case("scale-down limited by maxUnavailable: stable 10 → 8, not → 5",
                10, int(0), int(2), 50, c(rs(0, 0)), stable(10, 10), (0, 8)),
            case("scale-down of a partly unavailable stable: its unavailable pods go",
                10, int(0), int(2), 50, c(rs(2, 2)), stable(8, 6), (2, 6)),
            case("weight 0 with no canary pods: stable stays",
                4, int(1), int(0), 0, c(rs(0, 0)), stable(4, 4), (0, 4)),
            case("weight 100 with no surge and everyone available",
                4, int(0), int(1), 100, c(rs(0, 0)), stable(4, 4), (0, 3)),
            case("0 replicas: the canary goes first",
                0, int(1), int(0), 50, c(rs(1, 1)), stable(1, 1), (0, 1)),
            case("0 replicas: then the stable",
                0, int(1), int(0), 50, c(rs(0, 0)), stable(1, 1), (0, 0)),
            // Argo's quirk when the stable is the canary's own ReplicaSet: it is counted twice
            // while bounding a scale-down, and 10 pods with 2 available go to 3 (then 4).
            case("stable is the canary: scale down 10 → 4 with 2 available gives 3",
                4, int(0), int(1), 100, c(rs(10, 2)), Stable::IsCanary, (3, 1)),
            case("no stable: the same scale down gives 4",
                4, int(0), int(1), 100, c(rs(10, 2)), Stable::Absent, (4, 0)),
            // An update mid-canary: v1 stable, v2 the interrupted canary (now an other), v3.
            case("mid-canary update: the new canary surges, the old canary waits",
                2, int(1), int(0), 50, c(rs(0, 0)), stable(1, 1), (1, 1))
                .others(vec![rs(1, 1)], vec![1]),
            case("mid-canary update: old canary goes once the new one is available",
                2, int(1), int(0), 50, c(rs(1, 1)), stable(1, 1), (1, 1))
                .others(vec![rs(1, 1)], vec![0]),
            case("mid-canary update: stable and canary do not shrink while others have pods",
                4, int(0), int(1), 25, c(rs(1, 1)), stable(4, 4), (1, 4))
                .others(vec![rs(2, 2)], vec![0]),
            case("mid-canary update: unavailable pods of the others go first, all of them",
                4, int(1), int(1), 25, c(rs(0, 0)), stable(4, 4), (0, 4))
                .others(vec![rs(2, 0)], vec![0]),
            case("mid-canary update: newest others first, within maxUnavailable",
                10, int(1), int(0), 50, c(rs(5, 3)), stable(5, 5), (5, 5))
                .others(vec![rs(1, 1), rs(2, 2), rs(3, 3)], vec![0, 0, 2]),
            case("mid-canary update: an other still shrinking stops the cleanup",
                4, int(1), int(1), 50, c(rs(2, 2)), stable(2, 2), (2, 2))
                .others(vec![rs(3, 1), rs(2, 3)], vec![3, 2]),
            case("mid-canary update: the cleanup goes oldest first up to it",
                4, int(1), int(1), 50, c(rs(2, 2)), stable(2, 2), (2, 2))
                .others(vec![rs(2, 3), rs(3, 1)], vec![2, 1]),
            case("mid-canary update: no canary yet, stable and others as they are",
                4, int(1), int(0), 50, None, stable(4, 4), (0, 4))
                .others(vec![rs(1, 1)], vec![0]),
        ]);
    }

    #[test]
    fn basic_canary_rejects_an_invalid_percent() {
        let (good, bad) = (pct("25%"), pct("a lot"));
        let input = BasicCanary {
            replicas: 4,
            max_surge: &good,
            max_unavailable: &bad,
            weight: 50,
            canary: None,
            stable: Stable::Absent,
            others: &[],
        };
        assert_eq!(
            basic_canary(&input),
            Err(ReplicaMathError::InvalidIntOrPercent {
                field: "maxUnavailable",
                value: "a lot".into(),
            })
        );
    }

    /// Argo's `TestApproximateWeightedNewStableReplicaCounts`, all 57 rows:
    /// (replicas, weight, maxSurge) → (canary, stable).
    #[test]
    fn approximate_weighted_matches_argo_table() {
        #[rustfmt::skip]
        let rows = [
            (0, 0, 0, 0, 0), (0, 50, 0, 0, 0), (0, 100, 0, 0, 0),
            (0, 0, 1, 0, 0), (0, 50, 1, 0, 0), (0, 100, 1, 0, 0),
            (1, 0, 0, 0, 1), (1, 1, 0, 0, 1), (1, 49, 0, 0, 1),
            (1, 50, 0, 1, 0), (1, 99, 0, 1, 0), (1, 100, 0, 1, 0),
            (1, 0, 1, 0, 1), (1, 1, 1, 1, 1), (1, 49, 1, 1, 1),
            (1, 50, 1, 1, 1), (1, 99, 1, 1, 1), (1, 100, 1, 1, 0),
            (2, 0, 0, 0, 2), (2, 1, 0, 1, 1), (2, 50, 0, 1, 1), (2, 99, 0, 1, 1), (2, 100, 0, 2, 0),
            (2, 0, 1, 0, 2), (2, 1, 1, 1, 2), (2, 50, 1, 1, 1), (2, 99, 1, 2, 1), (2, 100, 1, 2, 0),
            (3, 10, 0, 1, 2), (3, 25, 0, 1, 2), (3, 33, 0, 1, 2),
            (3, 34, 0, 1, 2), (3, 49, 0, 1, 2), (3, 50, 0, 2, 1),
            (3, 10, 1, 1, 3), (3, 25, 1, 1, 3), (3, 33, 1, 1, 2),
            (3, 34, 1, 1, 2), (3, 49, 1, 2, 2), (3, 50, 1, 2, 2),
            (10, 0, 1, 0, 10), (10, 1, 0, 1, 9), (10, 14, 0, 1, 9), (10, 15, 0, 2, 8),
            (10, 16, 0, 2, 8), (10, 99, 0, 9, 1), (10, 100, 1, 10, 0),
            (10, 0, 1, 0, 10), (10, 1, 1, 1, 10), (10, 18, 1, 2, 9), (10, 19, 1, 2, 9),
            (10, 20, 1, 2, 8), (10, 23, 1, 2, 8), (10, 24, 1, 3, 8), (10, 25, 1, 3, 8),
            (10, 99, 1, 10, 1), (10, 100, 1, 10, 0),
        ];
        assert_eq!(rows.len(), 57);
        for (replicas, weight, surge, canary, stable) in rows {
            assert_eq!(
                approximate_weighted(replicas, weight, surge),
                (canary, stable),
                "replicas {replicas}, weight {weight}, surge {surge}"
            );
        }
    }

    /// research §2.4's examples, and the split for the drill.
    #[test]
    fn approximate_weighted_research_examples() {
        assert_eq!(approximate_weighted(1, 50, 1), (1, 1));
        assert_eq!(approximate_weighted(4, 25, 1), (1, 3));
        assert_eq!(approximate_weighted(8, 25, 2), (2, 6));
        assert_eq!(approximate_weighted(3, 20, 1), (1, 3));
        assert_eq!(approximate_weighted(2, 50, 1), (1, 1));
        // 5 × 50 % is a tie between 2 and 3: the larger canary.
        assert_eq!(approximate_weighted(5, 50, 0), (3, 2));
        assert_eq!(approximate_weighted(5, 50, 1), (3, 3));
    }

    /// research §2.4 and the examples in Argo's doc comment on
    /// `CalculateReplicaCountsForBasicCanary` (a first pass from stable 10/10 or 1/1).
    #[test]
    #[rustfmt::skip]
    fn basic_canary_research_and_doc_examples() {
        let c = Some;
        check(vec![
            case("10 @10%, unavailable 1, surge 1", 10, int(1), int(1), 10,
                c(rs(0, 0)), stable(10, 10), (1, 9)),
            case("10 @30%, unavailable 0, surge 3", 10, int(3), int(0), 30,
                c(rs(0, 0)), stable(10, 10), (3, 10)),
            case("10 @30%, unavailable 5, surge 0", 10, int(0), int(5), 30,
                c(rs(0, 0)), stable(10, 10), (0, 7)),
            // The doc comment says stable 9; Argo's code keeps 10 (1 of 11 is nearer 5 % than
            // 1 of 10), and so does this port.
            case("10 @5%, unavailable 1, surge 1", 10, int(1), int(1), 5,
                c(rs(0, 0)), stable(10, 10), (1, 10)),
            case("1 @5%, unavailable 0, surge 1", 1, int(1), int(0), 5,
                c(rs(0, 0)), stable(1, 1), (1, 1)),
            case("1 @95%, unavailable 0, surge 1", 1, int(1), int(0), 95,
                c(rs(0, 0)), stable(1, 1), (1, 1)),
        ]);
    }

    #[test]
    fn resolves_surge_and_unavailable_as_argo() {
        #[rustfmt::skip]
        let rows = [
            (10, int(2), int(1), (2, 1)),
            (10, pct("25%"), pct("25%"), (3, 2)),
            (4, pct(DEFAULT_SURGE_UNAVAILABLE), pct(DEFAULT_SURGE_UNAVAILABLE), (1, 1)),
            (2, pct("25%"), pct("25%"), (1, 0)),
            (1, pct("25%"), pct("25%"), (1, 0)),
            (3, pct("50%"), pct("50%"), (2, 1)),
            // Argo's default is the bare string "25": a percentage all the same.
            (10, pct("25"), pct("25"), (3, 2)),
            // Both come to 0: unavailable is 1.
            (10, pct("0%"), pct("0%"), (0, 1)),
            (10, int(0), int(0), (0, 1)),
            (1, pct("1%"), pct("1%"), (1, 0)),
            (100, pct("1%"), pct("0%"), (1, 0)),
            // Unavailable never above replicas, 0 for 0 replicas; surge uncapped.
            (3, int(5), int(5), (5, 3)),
            (0, int(1), int(1), (1, 0)),
            (0, pct("25%"), pct("25%"), (0, 0)),
        ];
        for (replicas, surge, unavailable, want) in rows {
            assert_eq!(
                resolve_surge_unavailable(replicas, &surge, &unavailable),
                Ok(want),
                "{replicas} replicas, surge {surge:?}, unavailable {unavailable:?}"
            );
        }
    }

    #[test]
    fn an_invalid_percent_is_an_error() {
        for text in ["a lot", "12.5%", "", "%", "25 %"] {
            assert_eq!(
                resolve_surge_unavailable(10, &pct(text), &int(1)),
                Err(ReplicaMathError::InvalidIntOrPercent {
                    field: "maxSurge",
                    value: text.into(),
                }),
                "{text:?}"
            );
        }
        let error = resolve_surge_unavailable(10, &int(1), &pct("x%")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "maxUnavailable \"x%\" is neither an integer nor a percentage"
        );
    }

    /// Argo's `TestGetCurrentSetWeight` and `TestGetCanaryReplicasOrWeight` (the rows without
    /// `setCanaryScale`), then the rest of the rules.
    #[test]
    fn desired_weight_as_argo() {
        let one = [Some(10)];
        // TestGetCurrentSetWeight.
        assert_eq!(desired_weight(&one, Some(1), false, false), 100);
        assert_eq!(desired_weight(&one, Some(0), false, false), 10);
        assert_eq!(desired_weight(&one, Some(0), true, false), 0);
        // TestGetCanaryReplicasOrWeight: promoteFull; aborted with no stableRS recorded.
        assert_eq!(desired_weight(&[], None, false, true), 100);
        assert_eq!(desired_weight(&[], None, true, true), 100);

        let drill = [Some(50), None, Some(100)];
        assert_eq!(desired_weight(&drill, None, false, false), 50);
        assert_eq!(
            desired_weight(&drill, Some(1), false, false),
            50,
            "pause keeps 50"
        );
        assert_eq!(desired_weight(&drill, Some(2), false, false), 100);
        assert_eq!(
            desired_weight(&drill, Some(3), false, false),
            100,
            "past the end"
        );
        assert_eq!(desired_weight(&drill, Some(1), true, false), 0, "aborted");
        assert_eq!(desired_weight(&drill, Some(-1), false, false), 50);
        assert_eq!(desired_weight(&[None, Some(20)], Some(0), false, false), 0);
        assert_eq!(desired_weight(&[], None, false, false), 100, "no steps");
        assert_eq!(
            desired_weight(&[], None, true, false),
            0,
            "no steps, aborted"
        );
    }

    /// Argo's `TestGetDesiredCanaryWeightOnAbortWithScaleDownDelay`: 10 replicas, steps 10 and
    /// 50, the canary at 5 available.
    #[test]
    fn dynamic_abort_weight_as_argo() {
        let steps = [Some(10), Some(50)];
        let rows = [
            ("no explicit delay: held up by the canary", 9, false, 10),
            (
                "explicit delay: steps down while the stable scales",
                5,
                true,
                10,
            ),
            (
                "explicit delay: 0 once the stable nearly covers replicas",
                9,
                true,
                0,
            ),
            (
                "explicit zero delay (not explicit): held up by the canary",
                9,
                false,
                10,
            ),
        ];
        for (name, stable_available, explicit, want) in rows {
            assert_eq!(
                dynamic_abort_weight(10, 100, &steps, 5, stable_available, explicit),
                want,
                "{name}"
            );
        }
    }

    fn routed(replicas: i32, weight: i32) -> TrafficRouted {
        TrafficRouted {
            replicas,
            weight,
            max_weight: MAX_WEIGHT,
            canary_scale: None,
            min_pods: None,
            dynamic_stable_scale: false,
            current: None,
            aborted: false,
        }
    }

    /// Argo's `TestCalculateReplicaCountsForCanary` rows with `trafficRouting` (the weight and
    /// `setCanaryScale` as Argo resolves them) and `TestCalculateReplicaCountsForCanaryTrafficRouting`.
    #[test]
    #[rustfmt::skip]
    fn traffic_routed_matches_argo_table() {
        let rows = [
            ("setCanaryScale.replicas ignores setWeight", TrafficRouted {
                canary_scale: Some(9), ..routed(1, 0) }, (9, 1)),
            ("setCanaryScale.weight ignores setWeight", routed(4, 200), (8, 4)),
            ("matchTrafficWeight uses setWeight", routed(10, 20), (2, 10)),
            ("aborted, abortScaleDownDelaySeconds 0: setCanaryScale still rules", TrafficRouted {
                canary_scale: Some(1), aborted: true, ..routed(1, 0) }, (1, 1)),
            ("aborted, abortScaleDownDelaySeconds 30: weight 0", TrafficRouted {
                aborted: true, ..routed(1, 0) }, (0, 1)),
            ("minPodsPerReplicaSet when starting", TrafficRouted {
                min_pods: Some(2), ..routed(10, 5) }, (2, 10)),
            ("minPodsPerReplicaSet capped at replicas", TrafficRouted {
                min_pods: Some(2), ..routed(1, 100) }, (1, 1)),
            ("TestCalculateReplicaCountsForCanaryTrafficRouting", routed(10, 10), (1, 10)),
            // Not Argo's: minPodsPerReplicaSet leaves 0 at 0, and not setCanaryScale.replicas.
            ("minPodsPerReplicaSet leaves 0", TrafficRouted {
                min_pods: Some(2), ..routed(10, 0) }, (0, 10)),
            ("setCanaryScale.replicas is not raised to minPodsPerReplicaSet", TrafficRouted {
                canary_scale: Some(1), min_pods: Some(3), ..routed(10, 0) }, (1, 10)),
        ];
        for (name, input, want) in rows {
            assert_eq!(traffic_routed(&input), want, "{name}");
        }
    }

    /// Argo's `TestCalculateReplicaCountsForCanaryTrafficRoutingDynamicScale` (its first step is
    /// setWeight 20 or 10, rows 1–3 add setWeight 60 and have both ReplicaSets, so their weight
    /// is [`dynamic_abort_weight`]'s), and the last case of
    /// `TestGetDesiredCanaryWeightOnAbortWithScaleDownDelay`.
    #[test]
    #[rustfmt::skip]
    fn traffic_routed_dynamic_stable_scale_matches_argo() {
        let dynamic = |weight, aborted, canary, stable| TrafficRouted {
            dynamic_stable_scale: true,
            aborted,
            current: Some(Weights { canary, stable }),
            ..routed(10, weight)
        };
        let steps = [Some(20), Some(60)];
        // (canary available, stable available) → the abort weight.
        let abort = |canary, stable| dynamic_abort_weight(10, 100, &steps, canary, stable, false);
        let rows = [
            ("abort: stable up to the next step down", dynamic(abort(6, 4), true, 60, 40), (6, 8)),
            ("abort: fewer canaries than expected", dynamic(abort(1, 4), true, 60, 40), (6, 8)),
            ("abort: by the stable's available pods", dynamic(abort(2, 4), true, 60, 40), (6, 8)),
            ("abort without ReplicaSets: weight 0", dynamic(0, true, 60, 40), (6, 10)),
            ("scale down stable", dynamic(10, false, 10, 90), (1, 9)),
            ("desired canary 20 above actual 10", dynamic(20, false, 10, 90), (2, 9)),
            ("abort: canary keeps pods while it has traffic", dynamic(0, true, 20, 80), (2, 10)),
            ("abort: fewer canaries with less traffic", dynamic(0, true, 10, 90), (1, 10)),
        ];
        for (name, input, want) in rows {
            assert_eq!(traffic_routed(&input), want, "{name}");
        }

        let weight = dynamic_abort_weight(10, 100, &[Some(10), Some(50)], 5, 9, true);
        assert_eq!(weight, 0);
        assert_eq!(traffic_routed(&dynamic(weight, true, 10, 90)), (1, 10));
    }

    /// Argo's `TestTrafficWeightToReplicas`.
    #[test]
    fn weight_to_replicas_rounds_up() {
        assert_eq!(weight_to_replicas(10, 0, 100), 0);
        assert_eq!(weight_to_replicas(10, 20, 100), 2);
        assert_eq!(weight_to_replicas(10, 25, 100), 3);
        assert_eq!(weight_to_replicas(10, 33, 100), 4);
        assert_eq!(weight_to_replicas(10, 99, 100), 10);
        assert_eq!(weight_to_replicas(10, 100, 100), 10);
        assert_eq!(weight_to_replicas(23, 100_000_000, 100_000_000), 23);
    }
}
