//! Table-style tests of the blue-green planner: each builds what the controller would see at one
//! moment of the flow and checks the next step.

use std::time::Duration;

use jiff::Timestamp;
use sluice_api::{BlueGreenStrategy, PauseReason, RolloutPhase, names::event};

use sluice_api::AnalysisPhase;

use crate::{
    gate::{Prepared, RunKind, RunState, Tracked},
    model::{
        Action, Avoid, BlueGreenObserved, Deadline, LastProgress, LastReason, Observed, Phase,
        Plan, Progress, ReplicaSetState, ServiceState, Strategy, Targets,
    },
    phase::Degraded,
    plan::plan,
};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-01T10:00:00Z";

fn strategy(extra: serde_json::Value) -> BlueGreenStrategy {
    let mut value = serde_json::json!({"activeService": "active", "previewService": "preview"});
    value
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(value).unwrap()
}

fn rs(hash: &str, revision: i64, replicas: i32, available: i32) -> ReplicaSetState {
    ReplicaSetState {
        name: format!("demo-{hash}"),
        hash: hash.into(),
        revision,
        previous_revision: None,
        replicas,
        actual: replicas,
        available,
        ready: available,
        scale_down_deadline: None,
        ephemeral: None,
    }
}

fn selects(hash: &str) -> ServiceState {
    ServiceState::Selects(Some(hash.into()))
}

fn observed<'a>(
    strategy: &'a BlueGreenStrategy,
    hash: &str,
    sets: Vec<ReplicaSetState>,
    stable: Option<&str>,
) -> Observed<'a> {
    Observed {
        strategy: Strategy::BlueGreen(BlueGreenObserved {
            spec: strategy,
            active: stable.map_or(ServiceState::Selects(None), selects),
            preview: Some(stable.map_or(ServiceState::Selects(None), selects)),
            switch_settled: true,
        }),
        replicas: 3,
        paused: false,
        hash: hash.into(),
        replica_sets: sets,
        collision: false,
        rollback_window: None,
        status: Progress {
            stable: stable.map(str::to_owned),
            ..Progress::default()
        },
        invalid: None,
        deadline: Deadline {
            seconds: 600,
            abort: false,
            last_progress: LastProgress::At(t(NOW)),
        },
        history_limit: 10,
        analysis: Default::default(),
        restart: Default::default(),
        workload: None,
    }
}

/// An update whose new ReplicaSet is saturated, with the preview on it.
fn saturated(strategy: &BlueGreenStrategy) -> Observed<'_> {
    let sets = vec![rs("old", 1, 3, 3), rs("new", 2, 3, 3)];
    let mut ready = observed(strategy, "new", sets, Some("old"));
    bg(&mut ready).preview = Some(selects("new"));
    ready
}

/// The blue-green part of what was observed.
fn bg<'a, 'b>(observed: &'b mut Observed<'a>) -> &'b mut BlueGreenObserved<'a> {
    match &mut observed.strategy {
        Strategy::BlueGreen(bg) => bg,
        Strategy::Canary(_) => unreachable!("blue-green tests"),
    }
}

/// The plan's actions, scale actions without the counts they came from.
fn actions(plan: &Plan) -> Vec<Action> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::Scale { name, replicas, .. } => scale(name, *replicas),
            other => other.clone(),
        })
        .collect()
}

/// What the plan says the Services select.
fn selectors(plan: &Plan) -> (Option<String>, Option<String>) {
    match &plan.targets {
        Targets::BlueGreen { active, preview } => (active.clone(), preview.clone()),
        Targets::Canary { .. } => unreachable!("blue-green tests"),
    }
}

fn switches(plan: &Plan) -> Vec<(String, String)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::SwitchService { service, to, .. } => Some((service.clone(), to.clone())),
            _ => None,
        })
        .collect()
}

fn scale(name: &str, replicas: i32) -> Action {
    Action::Scale {
        name: name.into(),
        revision: 0,
        from: 0,
        replicas,
    }
}

#[test]
fn a_new_template_gets_a_replica_set_with_the_next_revision() {
    let s = strategy(serde_json::json!({}));
    let plan = plan(
        &observed(&s, "new", vec![rs("old", 4, 3, 3)], Some("old")),
        t(NOW),
    );
    assert_eq!(
        actions(&plan),
        [Action::CreateReplicaSet {
            revision: 5,
            avoid: None
        }]
    );
}

#[test]
fn the_first_deploy_becomes_stable_once_available_then_services_switch() {
    let s = strategy(serde_json::json!({}));
    let starting = plan(&observed(&s, "h1", vec![rs("h1", 1, 0, 0)], None), t(NOW));
    assert_eq!(actions(&starting), [scale("demo-h1", 3)]);
    assert!(
        switches(&starting).is_empty(),
        "no Service points at pods that are not available"
    );
    let done = plan(&observed(&s, "h1", vec![rs("h1", 1, 3, 3)], None), t(NOW));
    assert_eq!(done.progress.stable.as_deref(), Some("h1"));
    assert_eq!(
        switches(&done),
        [
            ("active".into(), "h1".into()),
            ("preview".into(), "h1".into())
        ]
    );
    assert_eq!(done.events[0].reason, "RolloutCompleted");
    assert!(done.events[0].message.ends_with("(h1): Initial deploy"));
    assert_eq!(done.phase.rollout_phase(), RolloutPhase::Healthy);
}

#[test]
fn an_update_runs_on_the_preview_while_production_stays_on_stable_then_promotes_itself() {
    let s = strategy(serde_json::json!({"scaleDownDelaySeconds": 10}));
    let sets = vec![rs("old", 1, 3, 3), rs("new", 2, 0, 0)];
    let start = plan(&observed(&s, "new", sets, Some("old")), t(NOW));
    assert!(actions(&start).contains(&scale("demo-new", 3)));
    assert_eq!(switches(&start), [("preview".into(), "new".into())]);
    assert_eq!(selectors(&start), (Some("old".into()), Some("new".into())));

    // Saturated: with automatic promotion the active Service switches.
    let mut ready = saturated(&s);
    let switch = plan(&ready, t(NOW));
    assert_eq!(switches(&switch), [("active".into(), "new".into())]);
    assert_eq!(
        switch.progress.stable.as_deref(),
        Some("old"),
        "stable moves only once the switch is seen"
    );

    // The switch observed: the new ReplicaSet is stable; the old one waits for its delay.
    bg(&mut ready).active = selects("new");
    let promoted = plan(&ready, t(NOW));
    assert_eq!(promoted.progress.stable.as_deref(), Some("new"));
    assert_eq!(
        actions(&promoted),
        [Action::ScaleDownDeadline {
            name: "demo-old".into(),
            at: Some(t("2026-11-01T10:00:10Z"))
        }]
    );
    assert_eq!(promoted.requeue, Some(Duration::from_secs(10)));
    assert!(
        promoted
            .events
            .iter()
            .any(|e| e.message.ends_with("(new): Completed blue-green update"))
    );

    // After the delay, and only once the active endpoints are all new pods, the old one goes.
    let mut later = ready.clone();
    later.status.stable = Some("new".into());
    later.replica_sets[0].scale_down_deadline = Some(t("2026-11-01T10:00:10Z"));
    let waiting = plan(&later, t("2026-11-01T10:00:05Z"));
    assert!(actions(&waiting).is_empty());
    assert_eq!(waiting.requeue, Some(Duration::from_secs(5)));
    bg(&mut later).switch_settled = false;
    assert!(
        actions(&plan(&later, t("2026-11-01T10:00:11Z"))).is_empty(),
        "switch not settled yet"
    );
    bg(&mut later).switch_settled = true;
    let down = plan(&later, t("2026-11-01T10:00:11Z"));
    assert_eq!(
        actions(&down),
        [
            scale("demo-old", 0),
            Action::ScaleDownDeadline {
                name: "demo-old".into(),
                at: None
            }
        ]
    );
    assert_eq!(down.phase.rollout_phase(), RolloutPhase::Healthy);
}

#[test]
fn without_automatic_promotion_it_pauses_until_promoted() {
    let s = strategy(serde_json::json!({"autoPromotionEnabled": false}));
    let mut ready = saturated(&s);
    let pausing = plan(&ready, t(NOW));
    assert_eq!(pausing.phase, Phase::Paused(PauseReason::BlueGreenPause));
    assert_eq!(
        pausing.progress.paused_since(PauseReason::BlueGreenPause),
        Some(t(NOW))
    );
    assert!(pausing.progress.controller_pause && switches(&pausing).is_empty());
    ready.status = pausing.progress.clone();
    let still = plan(&ready, t("2026-11-01T11:00:00Z"));
    assert!(still.actions.is_empty() && still.requeue.is_none());
    // `sluice promote` clears the pause condition and leaves controllerPause set.
    ready.status.unpause(PauseReason::BlueGreenPause);
    let promoted = plan(&ready, t("2026-11-01T11:00:00Z"));
    assert_eq!(switches(&promoted), [("active".into(), "new".into())]);
}

#[test]
fn auto_promotion_seconds_resume_the_pause_by_themselves() {
    let s = strategy(serde_json::json!({"autoPromotionSeconds": 20}));
    let mut ready = saturated(&s);
    let pausing = plan(&ready, t(NOW));
    assert_eq!(pausing.requeue, Some(Duration::from_secs(20)));
    ready.status = pausing.progress;
    assert!(switches(&plan(&ready, t("2026-11-01T10:00:19Z"))).is_empty());
    let resumed = plan(&ready, t("2026-11-01T10:00:20Z"));
    assert_eq!(switches(&resumed), [("active".into(), "new".into())]);
    assert!(resumed.events.iter().any(|e| e.reason == "RolloutResumed"));
}

#[test]
fn a_preview_replica_count_scales_up_before_the_switch() {
    let s = strategy(serde_json::json!({"previewReplicaCount": 1}));
    let sets = vec![rs("old", 1, 3, 3), rs("new", 2, 0, 0)];
    assert!(
        actions(&plan(&observed(&s, "new", sets, Some("old")), t(NOW)))
            .contains(&scale("demo-new", 1))
    );
    let mut preview = observed(
        &s,
        "new",
        vec![rs("old", 1, 3, 3), rs("new", 2, 1, 1)],
        Some("old"),
    );
    bg(&mut preview).preview = Some(selects("new"));
    let scaling = plan(&preview, t(NOW));
    assert_eq!(actions(&scaling), [scale("demo-new", 3)]);
    assert!(scaling.progress.scale_up_preview && switches(&scaling).is_empty());
    preview.status.scale_up_preview = true;
    preview.replica_sets[1] = rs("new", 2, 3, 3);
    assert_eq!(
        switches(&plan(&preview, t(NOW))),
        [("active".into(), "new".into())]
    );
}

#[test]
fn abort_puts_both_services_back_on_stable_and_scales_the_new_set_down_after_the_delay() {
    let s = strategy(serde_json::json!({"abortScaleDownDelaySeconds": 5}));
    let mut aborted = observed(
        &s,
        "new",
        vec![rs("old", 1, 3, 3), rs("new", 2, 3, 3)],
        Some("old"),
    );
    bg(&mut aborted).active = selects("new");
    bg(&mut aborted).preview = Some(selects("new"));
    aborted.status.abort = true;
    let back = plan(&aborted, t(NOW));
    assert_eq!(
        switches(&back),
        [
            ("active".into(), "old".into()),
            ("preview".into(), "old".into())
        ]
    );
    assert_eq!(selectors(&back), (Some("old".into()), Some("old".into())));
    assert!(actions(&back).contains(&Action::ScaleDownDeadline {
        name: "demo-new".into(),
        at: Some(t("2026-11-01T10:00:05Z"))
    }));
    assert_eq!(
        back.phase,
        Phase::Degraded(Degraded::Aborted(
            "Rollout aborted update to revision 2".into()
        ))
    );
    aborted.replica_sets[1].scale_down_deadline = Some(t("2026-11-01T10:00:05Z"));
    bg(&mut aborted).active = selects("old");
    bg(&mut aborted).preview = Some(selects("old"));
    assert_eq!(
        actions(&plan(&aborted, t("2026-11-01T10:00:06Z"))),
        [
            scale("demo-new", 0),
            Action::ScaleDownDeadline {
                name: "demo-new".into(),
                at: None
            }
        ],
        "scaled down, and its deadline cleared so history pruning can take it later"
    );
}

/// What the analysis controller would make of a run.
fn run(name: &str, kind: RunKind, phase: AnalysisPhase) -> RunState {
    RunState {
        name: name.into(),
        kind,
        hash: "new".into(),
        phase,
        message: if phase == AnalysisPhase::Failed {
            "Metric \"web\" assessed Failed due to failed (1) > failureLimit (0)".into()
        } else {
            String::new()
        },
        terminate: false,
        created: Some(t(NOW)),
        failed_metric: (phase == AnalysisPhase::Failed).then(|| "web".into()),
    }
}

#[test]
fn pre_promotion_analysis_holds_the_switch_until_its_run_succeeds() {
    let s = strategy(serde_json::json!({}));
    let mut ready = saturated(&s);
    ready.analysis.pre = Some(Prepared::default());
    ready.analysis.rollout = "demo".into();
    let held = plan(&ready, t(NOW));
    assert!(switches(&held).is_empty());
    assert_eq!(held.phase.message(), "waiting for analysis to complete");
    let Some(Action::CreateRun(created)) = held.actions.last() else {
        panic!("a run: {:?}", held.actions);
    };
    assert_eq!(created.name, "demo-new-2-pre");
    assert_eq!(
        held.progress.runs.pre.as_ref().unwrap().name,
        "demo-new-2-pre"
    );
    // The next reconcile sees the run running: it holds, creating nothing.
    ready.status = held.progress.clone();
    ready.analysis.runs = vec![run(
        "demo-new-2-pre",
        RunKind::PrePromotion,
        AnalysisPhase::Running,
    )];
    let again = plan(&ready, t(NOW));
    assert!(
        again
            .actions
            .iter()
            .all(|a| !matches!(a, Action::CreateRun(_)))
    );
    assert!(switches(&again).is_empty());
    // It succeeded: the active Service switches.
    ready.analysis.runs[0].phase = AnalysisPhase::Successful;
    let open = plan(&ready, t(NOW));
    assert_eq!(
        switches(&open),
        vec![("active".to_owned(), "new".to_owned())]
    );
}

#[test]
fn a_failed_pre_promotion_run_aborts_with_the_preview_back_on_stable() {
    let s = strategy(serde_json::json!({}));
    let mut ready = saturated(&s);
    ready.analysis.pre = Some(Prepared::default());
    ready.analysis.rollout = "demo".into();
    ready.status.runs.pre = Some(Tracked {
        name: "demo-new-2-pre".into(),
        phase: AnalysisPhase::Running,
        message: None,
    });
    ready.analysis.runs = vec![run(
        "demo-new-2-pre",
        RunKind::PrePromotion,
        AnalysisPhase::Failed,
    )];
    let aborting = plan(&ready, t(NOW));
    assert!(aborting.progress.abort);
    assert_eq!(aborting.analysis_abort.as_deref(), Some("web"));
    assert_eq!(
        aborting.phase.message(),
        "RolloutAborted: Rollout aborted update to revision 2: Blue/green pre-promotion analysis phase error/failed: Metric \"web\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    // The aborting reconcile already puts the preview back on stable, active untouched.
    assert_eq!(
        switches(&aborting),
        vec![("preview".to_owned(), "old".to_owned())]
    );
    // The next reconcile is the abort stage: the same, the reason kept.
    ready.status = aborting.progress.clone();
    ready.status.reason = LastReason::Aborted;
    ready.status.abort_message = Some(match &aborting.phase {
        Phase::Degraded(Degraded::Aborted(m)) => m.clone(),
        other => panic!("{other:?}"),
    });
    let aborted = plan(&ready, t(NOW));
    assert_eq!(
        switches(&aborted),
        vec![("preview".to_owned(), "old".to_owned())]
    );
    assert_eq!(aborted.phase.message(), aborting.phase.message());
    assert_eq!(aborted.analysis_abort, None, "counted once");
}

#[test]
fn the_revision_limit_caps_old_sets_waiting_for_their_delay() {
    let s = strategy(serde_json::json!({"scaleDownDelayRevisionLimit": 1}));
    let deadline = Some(t("2026-11-01T10:00:30Z"));
    let mut sets = vec![rs("v1", 1, 3, 3), rs("v2", 2, 3, 3), rs("v3", 3, 3, 3)];
    sets[0].scale_down_deadline = deadline;
    sets[1].scale_down_deadline = deadline;
    let steady = plan(&observed(&s, "v3", sets, Some("v3")), t(NOW));
    assert_eq!(
        actions(&steady),
        [
            scale("demo-v1", 0),
            Action::ScaleDownDeadline {
                name: "demo-v1".into(),
                at: None
            }
        ],
        "the newest old set waits, the older one goes now"
    );
}

#[test]
fn a_paused_rollout_does_nothing() {
    let s = strategy(serde_json::json!({}));
    let mut paused = observed(
        &s,
        "new",
        vec![rs("old", 1, 3, 3), rs("new", 2, 0, 0)],
        Some("old"),
    );
    paused.paused = true;
    let plan = plan(&paused, t(NOW));
    assert!(actions(&plan).is_empty());
    assert_eq!(plan.phase, Phase::ManuallyPaused);
}

#[test]
fn an_invalid_spec_moves_nothing_and_says_why() {
    let s = strategy(serde_json::json!({}));
    let mut bad = observed(&s, "new", vec![rs("old", 1, 3, 3)], Some("old"));
    bad.invalid =
        Some("spec.replicas: Invalid value: -1: must be greater than or equal to 0".into());
    let plan = plan(&bad, t(NOW));
    assert!(actions(&plan).is_empty());
    assert_eq!(
        plan.phase,
        Phase::Degraded(Degraded::InvalidSpec(
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0".into()
        ))
    );
}

#[test]
fn a_missing_service_is_an_invalid_spec_and_nothing_moves() {
    let s = strategy(serde_json::json!({}));
    let mut missing = observed(&s, "new", vec![rs("old", 1, 3, 3)], Some("old"));
    bg(&mut missing).preview = Some(ServiceState::Missing);
    let plan = plan(&missing, t(NOW));
    assert!(actions(&plan).is_empty());
    assert_eq!(plan.phase.rollout_phase(), RolloutPhase::Degraded);
    assert!(
        plan.phase
            .message()
            .starts_with("InvalidSpec: spec.strategy.blueGreen.previewService"),
        "{}",
        plan.phase.message()
    );
}

#[test]
fn undo_within_the_scale_down_delay_switches_back_at_once_and_renumbers() {
    let s = strategy(serde_json::json!({"autoPromotionEnabled": false}));
    // v1 (revision 1) was replaced by v2 (revision 2) and is still up for its delay.
    let mut back = observed(
        &s,
        "v1",
        vec![rs("v1", 1, 3, 3), rs("v2", 2, 3, 3)],
        Some("v2"),
    );
    back.replica_sets[0].scale_down_deadline = Some(t("2026-11-01T10:00:30Z"));
    let back_plan = plan(&back, t(NOW));
    assert!(actions(&back_plan).contains(&Action::Renumber {
        name: "demo-v1".into(),
        revision: 3,
        previous: 1
    }));
    assert!(
        switches(&back_plan).contains(&("active".into(), "v1".into())),
        "no pause: {back_plan:?}"
    );
    // After the delay the old version is down: going back is a new update, with a pause.
    let mut late = observed(
        &s,
        "v1",
        vec![rs("v1", 3, 0, 0), rs("v2", 2, 3, 3)],
        Some("v2"),
    );
    bg(&mut late).preview = Some(selects("v1"));
    let scaling = plan(&late, t(NOW));
    assert!(actions(&scaling).contains(&scale("demo-v1", 3)));
    late.replica_sets[0] = rs("v1", 3, 3, 3);
    assert_eq!(
        plan(&late, t(NOW)).phase.rollout_phase(),
        RolloutPhase::Paused
    );
}

#[test]
fn an_update_that_stops_progressing_is_degraded_once_its_deadline_passes() {
    let s = strategy(serde_json::json!({}));
    let sets = vec![rs("old", 1, 3, 3), rs("new", 2, 3, 1)];
    let mut seen = observed(&s, "new", sets, Some("old"));
    bg(&mut seen).preview = Some(selects("new"));
    seen.deadline.seconds = 60;
    let before = plan(&seen, t("2026-11-01T10:00:59Z"));
    assert_eq!(before.phase.rollout_phase(), RolloutPhase::Progressing);
    assert_eq!(
        before.requeue,
        Some(Duration::from_secs(1)),
        "woken at the deadline"
    );
    let after = plan(&seen, t("2026-11-01T10:01:00Z"));
    assert_eq!(
        after.phase,
        Phase::Degraded(Degraded::TimedOut {
            replica_set: "demo-new".into()
        })
    );
    assert_eq!(after.events[0].reason, event::PROGRESS_DEADLINE_EXCEEDED);
    assert!(after.events[0].warning);
    assert!(!after.progress.abort, "no progressDeadlineAbort");
    assert!(
        switches(&after).is_empty(),
        "production stays on the stable version"
    );
    seen.status.reason = LastReason::TimedOut;
    seen.deadline.last_progress = LastProgress::TimedOut;
    let later = plan(&seen, t("2026-11-01T10:01:01Z"));
    assert_eq!(
        later.phase.rollout_phase(),
        RolloutPhase::Degraded,
        "timed out stays timed out, though the condition was just written"
    );
    assert!(later.events.is_empty(), "one event");
    seen.deadline.abort = true;
    let aborting = plan(&seen, t("2026-11-01T10:02:00Z"));
    assert!(aborting.progress.abort, "progressDeadlineAbort aborts");
    assert_eq!(
        aborting.progress.aborted_at,
        Some(t("2026-11-01T10:02:00Z"))
    );
}

#[test]
fn an_abort_is_reported_once_and_sends_both_services_to_stable() {
    let s = strategy(serde_json::json!({}));
    let mut seen = saturated(&s);
    seen.status.abort = true;
    let first = plan(&seen, t(NOW));
    assert_eq!(first.events.last().unwrap().reason, event::ROLLOUT_ABORTED);
    assert_eq!(first.progress.aborted_at, Some(t(NOW)));
    assert_eq!(selectors(&first), (Some("old".into()), Some("old".into())));
    seen.status.reason = LastReason::Aborted;
    bg(&mut seen).preview = Some(selects("old"));
    assert!(plan(&seen, t(NOW)).events.is_empty());
}

#[test]
fn old_replica_sets_beyond_the_history_limit_are_deleted_oldest_first() {
    let s = strategy(serde_json::json!({}));
    let sets = vec![
        rs("r1", 1, 0, 0),
        rs("r2", 2, 0, 0),
        rs("r3", 3, 0, 0),
        rs("r4", 4, 3, 3),
    ];
    let mut seen = observed(&s, "r4", sets, Some("r4"));
    seen.history_limit = 1;
    let deleted: Vec<_> = actions(&plan(&seen, t(NOW)))
        .into_iter()
        .filter(|a| matches!(a, Action::DeleteReplicaSet { .. }))
        .collect();
    assert_eq!(
        deleted,
        [
            Action::DeleteReplicaSet {
                name: "demo-r1".into()
            },
            Action::DeleteReplicaSet {
                name: "demo-r2".into()
            }
        ]
    );
}

#[test]
fn pods_carry_the_metadata_of_their_role() {
    let s = strategy(serde_json::json!({
        "autoPromotionEnabled": false,
        "activeMetadata": {"labels": {"role": "active"}},
        "previewMetadata": {"labels": {"role": "preview"}},
    }));
    let seen = saturated(&s);
    let metadata: Vec<_> = actions(&plan(&seen, t(NOW)))
        .into_iter()
        .filter(|a| matches!(a, Action::EphemeralMetadata { .. }))
        .collect();
    assert_eq!(
        metadata,
        [
            Action::EphemeralMetadata {
                name: "demo-old".into(),
                hash: "old".into(),
                before: None,
                after: Some(serde_json::json!({"labels": {"role": "active"}})),
            },
            Action::EphemeralMetadata {
                name: "demo-new".into(),
                hash: "new".into(),
                before: None,
                after: Some(serde_json::json!({"labels": {"role": "preview"}})),
            },
        ]
    );
}

#[test]
fn with_anti_affinity_the_new_replica_set_avoids_the_stable_pods() {
    let s = strategy(
        serde_json::json!({"antiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}),
    );
    let plan = plan(
        &observed(&s, "new", vec![rs("old", 1, 3, 3)], Some("old")),
        t(NOW),
    );
    assert_eq!(
        actions(&plan),
        [Action::CreateReplicaSet {
            revision: 2,
            avoid: Some(Avoid {
                hash: "old".into(),
                preferred: None
            })
        }]
    );
}

#[test]
fn a_fast_rollback_cut_short_after_renumbering_still_switches_at_once() {
    let s = strategy(serde_json::json!({"autoPromotionEnabled": false, "previewReplicaCount": 1}));
    // Version 1 came back while still up; an earlier pass renumbered it 1 -> 3.
    let mut back = rs("v1", 3, 3, 3);
    back.previous_revision = Some(1);
    back.scale_down_deadline = Some(t("2026-11-01T10:00:20Z"));
    let mut seen = observed(&s, "v1", vec![back, rs("v2", 2, 3, 3)], Some("v2"));
    bg(&mut seen).preview = Some(selects("v1"));
    let plan = plan(&seen, t(NOW));
    assert_eq!(switches(&plan), [("active".to_owned(), "v1".to_owned())]);
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Scale { .. } | Action::ScaleDownDeadline { .. })),
        "no preview scale-down, the deadline kept until the switch: {:?}",
        actions(&plan)
    );
    assert_ne!(plan.phase.rollout_phase(), RolloutPhase::Paused);
}

#[test]
fn a_failed_post_promotion_run_switches_active_back_in_the_aborting_reconcile() {
    let s = strategy(serde_json::json!({}));
    let mut switched = saturated(&s);
    bg(&mut switched).active = selects("new");
    switched.analysis.post = Some(Prepared::default());
    switched.analysis.rollout = "demo".into();
    switched.status.runs.post = Some(Tracked {
        name: "demo-new-2-post".into(),
        phase: AnalysisPhase::Running,
        message: None,
    });
    switched.analysis.runs = vec![run(
        "demo-new-2-post",
        RunKind::PostPromotion,
        AnalysisPhase::Failed,
    )];
    let aborting = plan(&switched, t(NOW));
    assert!(aborting.progress.abort);
    assert_eq!(aborting.progress.stable.as_deref(), Some("old"));
    assert_eq!(
        switches(&aborting),
        vec![
            ("active".to_owned(), "old".to_owned()),
            ("preview".to_owned(), "old".to_owned())
        ]
    );
    assert_eq!(
        selectors(&aborting),
        (Some("old".to_owned()), Some("old".to_owned())),
        "the status written with the abort says where production is"
    );
}
