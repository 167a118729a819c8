use super::*;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const AT: &str = "2026-11-01T10:00:00Z";

fn rs(name: &str, revision: i64, replicas: i32) -> ReplicaSetState {
    ReplicaSetState {
        name: name.into(),
        hash: name.into(),
        revision,
        previous_revision: None,
        replicas,
        actual: replicas,
        available: replicas,
        ready: replicas,
        scale_down_deadline: None,
        ephemeral: None,
    }
}

fn pod(name: &str, set: &str, created: &str) -> PodState {
    PodState {
        name: name.into(),
        replica_set: set.into(),
        created: t(created),
        deleting: false,
        available: true,
    }
}

fn observed(pods: Vec<PodState>, max_unavailable: i32) -> RestartObserved {
    RestartObserved {
        restart_at: Some(t(AT)),
        restarted_at: None,
        pods,
        max_unavailable,
    }
}

#[test]
fn nothing_happens_before_restart_at_and_nothing_after_it_is_done() {
    let sets = [rs("a", 1, 2)];
    let mut o = observed(
        vec![
            pod("a-1", "a", "2026-11-01T09:00:00Z"),
            pod("a-2", "a", "2026-11-01T09:00:00Z"),
        ],
        1,
    );
    let before = t("2026-11-01T09:59:59Z");
    assert_eq!(
        plan(&o, 2, &sets, Some("a"), Some("a"), before),
        Restart::Scheduled(t(AT))
    );
    assert_eq!(
        plan(&o, 2, &sets, Some("a"), Some("a"), before).action(),
        None
    );
    // At the very second: not yet (Argo: now.After(restartAt)).
    assert!(matches!(
        plan(&o, 2, &sets, Some("a"), Some("a"), t(AT)),
        Restart::Scheduled(_)
    ));
    o.restarted_at = Some(t(AT));
    assert_eq!(
        plan(
            &o,
            2,
            &sets,
            Some("a"),
            Some("a"),
            t("2026-11-01T11:00:00Z")
        ),
        Restart::Idle
    );
    o.restart_at = None;
    assert_eq!(plan(&o, 2, &sets, None, None, t(AT)), Restart::Idle);
}

#[test]
fn pods_go_stable_first_then_current_then_older_oldest_pod_first() {
    let sets = [rs("old", 1, 1), rs("stable", 2, 2), rs("new", 3, 1)];
    let o = observed(
        vec![
            pod("new-1", "new", "2026-11-01T09:30:00Z"),
            pod("old-1", "old", "2026-11-01T08:00:00Z"),
            pod("stable-2", "stable", "2026-11-01T09:10:00Z"),
            pod("stable-1", "stable", "2026-11-01T09:05:00Z"),
            // Created at restartAt itself: not restarted (Argo skips equal times).
            pod("new-2", "new", AT),
        ],
        4,
    );
    let now = t("2026-11-01T10:00:01Z");
    // 5 available, floor max(4, 4) - 4 = 0: up to 5 may go; 4 are older than restartAt.
    assert_eq!(
        plan(&o, 4, &sets, Some("stable"), Some("new"), now),
        Restart::Restarting {
            candidates: vec![
                "stable-1".into(),
                "stable-2".into(),
                "new-1".into(),
                "old-1".into()
            ],
            budget: 5,
            remaining: 4,
        }
    );
}

#[test]
fn no_pod_goes_while_availability_is_at_the_floor_and_terminating_ones_are_waited_for() {
    let sets = [rs("a", 1, 3)];
    let mut pods = vec![
        pod("a-1", "a", "2026-11-01T09:00:00Z"),
        pod("a-2", "a", "2026-11-01T09:00:00Z"),
        pod("a-3", "a", "2026-11-01T09:00:00Z"),
    ];
    pods[0].deleting = true;
    pods[0].available = false;
    let now = t("2026-11-01T10:00:05Z");
    // maxUnavailable 0 still lets one go at a time; one is already going.
    let o = observed(pods.clone(), 0);
    assert_eq!(
        plan(&o, 3, &sets, Some("a"), Some("a"), now),
        Restart::Restarting {
            candidates: vec![],
            budget: 0,
            remaining: 3
        }
    );
    // Its replacement is up but not yet available: still none.
    pods[0] = pod("a-4", "a", "2026-11-01T10:00:03Z");
    pods[0].available = false;
    let o = observed(pods.clone(), 0);
    assert_eq!(plan(&o, 3, &sets, Some("a"), Some("a"), now).action(), None);
    // Available: the next one goes (only one).
    pods[0].available = true;
    let o = observed(pods, 0);
    assert_eq!(
        plan(&o, 3, &sets, Some("a"), Some("a"), now).action(),
        Some(Action::Evict {
            candidates: vec!["a-2".into(), "a-3".into()],
            budget: 1
        })
    );
}

#[test]
fn a_surplus_of_pods_over_spec_replicas_counts_against_the_budget() {
    // A canary at a weight that does not divide evenly: 5 pods for 4 replicas.
    let sets = [rs("stable", 1, 3), rs("canary", 2, 2)];
    let pods: Vec<PodState> = ["stable-1", "stable-2", "stable-3", "canary-1", "canary-2"]
        .iter()
        .map(|n| pod(n, n.split('-').next().unwrap(), "2026-11-01T09:00:00Z"))
        .collect();
    let o = observed(pods, 1);
    let restart = plan(
        &o,
        4,
        &sets,
        Some("stable"),
        Some("canary"),
        t("2026-11-01T10:01:00Z"),
    );
    // floor = max(4, 5) - 1 = 4; 5 available: one may go.
    assert!(matches!(restart, Restart::Restarting { budget: 1, .. }));
}

/// Plays a whole restart: evictions as planned (a pod goes, its ReplicaSet replaces it at
/// once, the replacement becomes available a tick later); at no point are more pods
/// unavailable than `max(maxUnavailable, 1)`; it ends Done.
#[test]
fn a_whole_restart_never_has_more_than_max_unavailable_down() {
    for max_unavailable in [0, 1, 2] {
        let sets = [rs("a", 1, 5)];
        let mut pods: Vec<PodState> = (0..5)
            .map(|i| pod(&format!("a-{i}"), "a", "2026-11-01T09:00:00Z"))
            .collect();
        let mut now = t("2026-11-01T10:00:01Z");
        let mut serial = 5;
        let mut done = false;
        for _ in 0..50 {
            // Replacements created last tick become available.
            for p in &mut pods {
                p.available = true;
            }
            let o = observed(pods.clone(), max_unavailable);
            match plan(&o, 5, &sets, Some("a"), Some("a"), now) {
                Restart::Done(at) => {
                    assert_eq!(at, t(AT));
                    done = true;
                    break;
                }
                Restart::Restarting {
                    candidates, budget, ..
                } => {
                    for name in candidates.iter().take(budget as usize) {
                        pods.retain(|p| &p.name != name);
                        serial += 1;
                        let mut new = pod(&format!("a-{serial}"), "a", "2026-11-01T10:00:02Z");
                        new.created = now;
                        new.available = false;
                        pods.push(new);
                    }
                    let down = pods.iter().filter(|p| !p.available).count() as i32;
                    assert!(down <= max_unavailable.max(1), "{down} down at once");
                }
                other => panic!("{other:?}"),
            }
            now = now.checked_add(jiff::SignedDuration::from_secs(1)).unwrap();
        }
        assert!(
            done,
            "maxUnavailable {max_unavailable}: the restart finished"
        );
        assert!(pods.iter().all(|p| p.created > t(AT)));
    }
}
