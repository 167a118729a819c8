//! Argo's tables for the canary replica math, ported row by row, and our own edge cases.
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
