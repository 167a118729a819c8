//! Tests of the canary planner: a small simulator plays each plan back onto what was observed
//! (ReplicaSets scaled at once, their pods available at once, Services switched), so a test
//! states where a flow settles — the user's drill, abort, promote, rollback — and single
//! plans are checked where one step matters.

use jiff::Timestamp;
use sluice_api::{AnalysisPhase, CanaryStrategy, PauseReason, RolloutPhase, names::event};

use crate::{
    gate::{Prepared, RunKind, RunState},
    model::{
        Action, CanaryObserved, Deadline, LastProgress, LastReason, Observed, Phase, Plan,
        Progress, ReplicaSetState, Routing, ServiceState, Strategy,
    },
    plan::plan,
};

const NOW: &str = "2026-11-01T10:00:00Z";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn strategy(value: serde_json::Value) -> CanaryStrategy {
    serde_json::from_value(value).unwrap()
}

/// The user's drill: two replicas, 50 %, an indefinite pause, 100 %.
fn drill() -> CanaryStrategy {
    strategy(serde_json::json!({
        "canaryService": "canary", "stableService": "stable",
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}],
    }))
}

fn rs(hash: &str, revision: i64, replicas: i32) -> ReplicaSetState {
    ReplicaSetState {
        name: format!("demo-{hash}"),
        hash: hash.into(),
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

/// A canary Rollout of `replicas` whose template has `hash`, stable on `stable`.
fn observed<'a>(
    spec: &'a CanaryStrategy,
    replicas: i32,
    hash: &str,
    sets: Vec<ReplicaSetState>,
    stable: Option<&str>,
) -> Observed<'a> {
    let selects = ServiceState::Selects(stable.map(str::to_owned));
    Observed {
        replicas,
        paused: false,
        hash: hash.into(),
        replica_sets: sets,
        status: Progress {
            stable: stable.map(str::to_owned),
            step: stable.map(|_| spec.steps().len() as i32),
            ..Progress::default()
        },
        invalid: None,
        deadline: Deadline {
            seconds: 600,
            abort: false,
            last_progress: LastProgress::At(t(NOW)),
        },
        history_limit: 10,
        rollback_window: None,
        collision: false,
        strategy: Strategy::Canary(CanaryObserved {
            spec,
            canary_service: spec.canary_service.as_ref().map(|_| selects.clone()),
            stable_service: spec.stable_service.as_ref().map(|_| selects.clone()),
            step_hash: "steps".into(),
            routing: Routing::Replicas,
        }),
        analysis: Default::default(),
        restart: Default::default(),
        workload: None,
    }
}

/// An update of `drill()`-like strategies from stable `old` (revision 1, full size) to `new`.
fn update<'a>(spec: &'a CanaryStrategy, replicas: i32) -> Observed<'a> {
    let mut o = observed(
        spec,
        replicas,
        "new",
        vec![rs("old", 1, replicas)],
        Some("old"),
    );
    o.status.step = None;
    o.analysis.successful_limit = 5;
    o.analysis.unsuccessful_limit = 5;
    o
}

/// Plays `plan` back onto `o`: scaled ReplicaSets have their pods available at once.
fn play(o: &mut Observed<'_>, plan: &Plan) {
    for action in &plan.actions {
        match action {
            Action::CreateReplicaSet { revision, .. } => {
                let hash = o.hash.clone();
                o.replica_sets.push(rs(&hash, *revision, 0));
            }
            Action::Scale { name, replicas, .. } => {
                let set = o.replica_sets.iter_mut().find(|r| &r.name == name).unwrap();
                (set.replicas, set.actual, set.available, set.ready) =
                    (*replicas, *replicas, *replicas, *replicas);
            }
            Action::ScaleDownDeadline { name, at } => {
                let set = o.replica_sets.iter_mut().find(|r| &r.name == name).unwrap();
                set.scale_down_deadline = *at;
            }
            Action::SwitchService { service, to, .. } => {
                let Strategy::Canary(c) = &mut o.strategy else {
                    unreachable!()
                };
                let state = if service == "canary" {
                    c.canary_service.as_mut()
                } else {
                    c.stable_service.as_mut()
                };
                *state.unwrap() = ServiceState::Selects(Some(to.clone()));
            }
            Action::Renumber {
                name,
                revision,
                previous,
            } => {
                let set = o.replica_sets.iter_mut().find(|r| &r.name == name).unwrap();
                set.revision = *revision;
                set.previous_revision = Some(*previous);
            }
            Action::DeleteReplicaSet { name } => o.replica_sets.retain(|r| &r.name != name),
            Action::EphemeralMetadata { .. }
            | Action::Evict { .. }
            | Action::ScaleWorkload { .. } => {}
            Action::CreateRun(run) => o.analysis.runs.push(RunState {
                name: run.name.clone(),
                kind: run.kind,
                hash: run.hash.clone(),
                phase: AnalysisPhase::Pending,
                message: String::new(),
                terminate: false,
                created: Some(t(NOW)),
                failed_metric: None,
            }),
            Action::TerminateRun { name } => {
                let run = o
                    .analysis
                    .runs
                    .iter_mut()
                    .find(|r| &r.name == name)
                    .unwrap();
                run.terminate = true;
            }
            Action::DeleteRun { name } => o.analysis.runs.retain(|r| &r.name != name),
            Action::Route(write) => {
                if let Strategy::Canary(c) = &mut o.strategy
                    && let Routing::Routed(routed) = &mut c.routing
                {
                    let crate::router::Observed::Nginx(nginx) = &mut routed.router;
                    nginx.simulate(write);
                }
            }
        }
    }
    let hash = o.hash.clone();
    if let Strategy::Canary(c) = &mut o.strategy
        && let Routing::Routed(routed) = &mut c.routing
    {
        if let crate::model::Targets::Canary { weights, .. } = &plan.targets {
            routed.weights = weights.clone();
        }
        routed.stable_settled =
            c.stable_service.as_ref().and_then(|s| s.hash()) == Some(hash.as_str());
    }
    o.status = plan.progress.clone();
    o.status.abort_message = match &plan.phase {
        Phase::Degraded(crate::phase::Degraded::Aborted(m)) => Some(m.clone()),
        _ => None,
    };
    // What the status's Progressing condition then says.
    o.status.reason = match &plan.phase {
        Phase::Degraded(crate::phase::Degraded::Aborted(_)) => LastReason::Aborted,
        Phase::Degraded(crate::phase::Degraded::TimedOut { .. }) => LastReason::TimedOut,
        _ => LastReason::Other,
    };
}

/// Plans and plays until nothing changes; every plan on the way, the last one last.
fn settle(o: &mut Observed<'_>, now: &str) -> Vec<Plan> {
    let mut plans = Vec::new();
    for _ in 0..30 {
        let next = plan(o, t(now));
        play(o, &next);
        let done = next.actions.is_empty()
            && next.progress
                == plans
                    .last()
                    .map_or(Progress::default(), |p: &Plan| p.progress.clone())
            && next.events.is_empty();
        plans.push(next);
        if done {
            return plans;
        }
    }
    panic!("no settled plan after 30 rounds: {:?}", plans.last());
}

fn replicas(o: &Observed<'_>, hash: &str) -> i32 {
    o.replica_set(hash).map_or(0, |r| r.replicas)
}

fn events(plans: &[Plan]) -> Vec<String> {
    plans
        .iter()
        .flat_map(|p| {
            p.events
                .iter()
                .map(|e| format!("{}: {}", e.reason, e.message))
        })
        .collect()
}

fn selects(o: &Observed<'_>) -> (Option<String>, Option<String>) {
    let Strategy::Canary(c) = &o.strategy else {
        unreachable!()
    };
    let hash = |s: &Option<ServiceState>| s.as_ref().and_then(|s| s.hash()).map(str::to_owned);
    (hash(&c.canary_service), hash(&c.stable_service))
}

#[test]
fn the_first_deploy_is_promoted_at_once_and_healthy_when_available() {
    let spec = drill();
    let mut o = observed(&spec, 2, "v1", vec![], None);
    let plans = settle(&mut o, NOW);
    assert_eq!(replicas(&o, "v1"), 2);
    assert_eq!(o.status.stable.as_deref(), Some("v1"));
    assert_eq!(o.status.step, Some(3), "step 3/3");
    assert_eq!(plans.last().unwrap().phase, Phase::Healthy);
    assert!(
        events(&plans)
            .iter()
            .any(|e| e.ends_with("(v1): Initial deploy"))
    );
    assert!(
        events(&plans)
            .iter()
            .all(|e| !e.starts_with("RolloutPaused")),
        "no steps on the first deploy"
    );
}

#[test]
fn the_drill_pauses_with_one_stable_and_one_canary_pod_then_promote_finishes_it() {
    let spec = drill();
    let mut o = update(&spec, 2);
    let plans = settle(&mut o, NOW);
    let paused = plans.last().unwrap();
    assert_eq!(paused.phase, Phase::Paused(PauseReason::CanaryPauseStep));
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (1, 1));
    assert_eq!(o.status.step, Some(1));
    assert!(o.status.controller_pause);
    assert_eq!(selects(&o), (Some("new".into()), Some("old".into())));
    assert!(
        events(&plans).contains(
            &"RolloutStepCompleted: Rollout step 1/3 completed (setWeight: 50)".to_owned()
        )
    );
    assert!(
        events(&plans).contains(&"RolloutPaused: Rollout is paused (CanaryPauseStep)".to_owned())
    );
    // Still paused an hour later.
    let later = settle(&mut o, "2026-11-01T11:00:00Z");
    assert!(
        later
            .iter()
            .all(|p| p.actions.is_empty() && p.events.is_empty())
    );
    // `promote` clears the pause condition.
    o.status.unpause(PauseReason::CanaryPauseStep);
    let plans = settle(&mut o, "2026-11-01T11:00:00Z");
    assert_eq!(plans.last().unwrap().phase, Phase::Healthy);
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (2, 0));
    assert_eq!(o.status.stable.as_deref(), Some("new"));
    assert_eq!(o.status.step, Some(3));
    assert!(!o.status.controller_pause);
    assert_eq!(selects(&o), (Some("new".into()), Some("new".into())));
    let said = events(&plans);
    assert!(said.contains(&"RolloutStepCompleted: Rollout step 2/3 completed (pause)".to_owned()));
    assert!(
        said.iter()
            .any(|e| e.ends_with("(new): Completed all 3 canary steps"))
    );
}

#[test]
fn abort_goes_back_to_stable_and_retry_starts_over() {
    let spec = drill();
    let mut o = update(&spec, 2);
    settle(&mut o, NOW);
    o.status.abort = true;
    let plans = settle(&mut o, NOW);
    let last = plans.last().unwrap();
    assert_eq!(
        last.phase.message(),
        "RolloutAborted: Rollout aborted update to revision 2"
    );
    assert_eq!(last.phase.rollout_phase(), RolloutPhase::Degraded);
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (0, 2));
    assert_eq!(selects(&o), (Some("old".into()), Some("old".into())));
    assert_eq!(o.status.step, Some(0));
    assert!(o.status.pauses.is_empty());
    assert_eq!(
        events(&plans)
            .iter()
            .filter(|e| e.starts_with(event::ROLLOUT_ABORTED))
            .count(),
        1
    );
    // retry: abort lifted, the steps run again from the first.
    o.status.abort = false;
    let plans = settle(&mut o, NOW);
    assert_eq!(
        plans.last().unwrap().phase,
        Phase::Paused(PauseReason::CanaryPauseStep)
    );
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (1, 1));
}

#[test]
fn promote_full_skips_every_remaining_step() {
    let spec = drill();
    let mut o = update(&spec, 2);
    settle(&mut o, NOW);
    o.status.promote_full = true;
    let plans = settle(&mut o, NOW);
    assert_eq!(plans.last().unwrap().phase, Phase::Healthy);
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (2, 0));
    assert!(!o.status.promote_full);
    assert!(
        events(&plans)
            .iter()
            .any(|e| e.ends_with("Full promotion requested"))
    );
}

#[test]
fn a_timed_pause_ends_by_itself() {
    let spec =
        strategy(serde_json::json!({"steps": [{"setWeight": 20}, {"pause": {"duration": "10s"}}]}));
    let mut o = update(&spec, 5);
    let plans = settle(&mut o, NOW);
    assert_eq!(
        plans.last().unwrap().phase,
        Phase::Paused(PauseReason::CanaryPauseStep)
    );
    assert_eq!(replicas(&o, "new"), 1, "20 % of 5");
    let waiting = plan(&o, t("2026-11-01T10:00:05Z"));
    assert_eq!(waiting.requeue, Some(std::time::Duration::from_secs(5)));
    let plans = settle(&mut o, "2026-11-01T10:00:10Z");
    assert_eq!(plans.last().unwrap().phase, Phase::Healthy);
    assert!(
        events(&plans)
            .contains(&"RolloutStepCompleted: Rollout step 2/2 completed (pause: 10s)".to_owned())
    );
}

#[test]
fn without_steps_it_is_a_rolling_update_within_surge_and_unavailable() {
    let spec = strategy(serde_json::json!({"maxSurge": 1, "maxUnavailable": 0}));
    let mut o = update(&spec, 4);
    // Each plan keeps at most replicas + surge pods and at least replicas − unavailable.
    for _ in 0..20 {
        let next = plan(&o, t(NOW));
        play(&mut o, &next);
        let total: i32 = o.replica_sets.iter().map(|r| r.replicas).sum();
        assert!(total <= 5, "surge 1: {total} pods");
        let available: i32 = o.replica_sets.iter().map(|r| r.available).sum();
        assert!(available >= 4, "unavailable 0: {available} available");
    }
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (4, 0));
    assert_eq!(o.status.stable.as_deref(), Some("new"));
}

#[test]
fn an_update_mid_canary_scales_the_in_between_replica_set_down_first() {
    let spec = strategy(serde_json::json!({"maxUnavailable": 1,
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}));
    let mut o = update(&spec, 2);
    settle(&mut o, NOW);
    // A newer template arrives while v2 (`new`) is the canary at 50 %.
    o.hash = "newer".into();
    o.status = Progress {
        stable: Some("old".into()),
        ..Progress::default()
    };
    let first = plan(&o, t(NOW));
    assert!(matches!(
        first.actions[..],
        [Action::CreateReplicaSet { revision: 3, .. }]
    ));
    play(&mut o, &first);
    let plans = settle(&mut o, NOW);
    assert_eq!(replicas(&o, "new"), 0, "the in-between canary is gone");
    assert_eq!((replicas(&o, "newer"), replicas(&o, "old")), (1, 1));
    let scaled_first = plans.iter().flat_map(|p| &p.actions).find_map(|a| match a {
        Action::Scale { name, replicas, .. } if name != "demo-old" => {
            Some((name.clone(), *replicas))
        }
        _ => None,
    });
    assert_eq!(
        scaled_first,
        Some(("demo-new".into(), 0)),
        "v2 goes down before v3 comes up"
    );
}

#[test]
fn scaling_while_paused_keeps_the_ratio() {
    let spec = drill();
    let mut o = update(&spec, 2);
    settle(&mut o, NOW);
    o.replicas = 4;
    settle(&mut o, NOW);
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (2, 2));
    assert_eq!(o.status.step, Some(1), "still at the pause");
}

#[test]
fn going_back_to_the_stable_template_skips_the_steps() {
    let spec = drill();
    let mut o = update(&spec, 2);
    settle(&mut o, NOW);
    o.hash = "old".into();
    o.status.step = None;
    o.status.pauses.clear();
    let plans = settle(&mut o, NOW);
    assert!(events(&plans).contains(&"SkipSteps: Rollback to stable ReplicaSets".to_owned()));
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (0, 2));
    assert_eq!(plans.last().unwrap().phase, Phase::Healthy);
}

#[test]
fn a_rollback_within_the_window_skips_the_steps() {
    let spec = drill();
    let sets = vec![rs("v1", 1, 2), rs("v2", 2, 2)];
    let mut o = observed(&spec, 2, "v1", sets, Some("v2"));
    o.status.step = None;
    o.rollback_window = Some(2);
    let plans = settle(&mut o, NOW);
    assert!(
        events(&plans).contains(
            &"SkipSteps: Rollback to active ReplicaSets within RollbackWindow".to_owned()
        )
    );
    assert_eq!(o.status.stable.as_deref(), Some("v1"));
    assert!(plans.iter().all(|p| !matches!(p.phase, Phase::Paused(_))));
}

/// The step-analysis drill: 50 %, an analysis, 100 %, with the analysis ready to run.
fn analysed<'a>(spec: &'a CanaryStrategy) -> Observed<'a> {
    let mut o = update(spec, 2);
    o.analysis.rollout = "demo".into();
    o.analysis.steps.insert(1, Prepared::default());
    o
}

fn analysis_drill() -> CanaryStrategy {
    strategy(serde_json::json!({"steps": [{"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "success-rate"}]}}, {"setWeight": 100}]}))
}

#[test]
fn an_analysis_step_waits_for_its_run_and_completes_when_it_succeeds() {
    let spec = analysis_drill();
    let mut o = analysed(&spec);
    let plans = settle(&mut o, NOW);
    let last = plans.last().unwrap();
    assert_eq!(last.phase.rollout_phase(), RolloutPhase::Progressing);
    assert_eq!(o.status.step, Some(1), "held at the analysis step");
    assert_eq!(o.analysis.runs.len(), 1, "one run, created once");
    assert_eq!(o.analysis.runs[0].name, "demo-new-2-1");
    assert_eq!(o.analysis.runs[0].kind, RunKind::Step(1));
    o.analysis.runs[0].phase = AnalysisPhase::Successful;
    settle(&mut o, NOW);
    assert_eq!(o.status.stable.as_deref(), Some("new"), "promoted");
    assert_eq!(o.status.runs.step, None, "let go once promoted");
    assert_eq!(o.analysis.runs.len(), 1);
}

#[test]
fn a_failed_analysis_step_aborts_back_to_stable_and_retry_runs_it_afresh() {
    let spec = analysis_drill();
    let mut o = analysed(&spec);
    settle(&mut o, NOW);
    o.analysis.runs[0].phase = AnalysisPhase::Failed;
    o.analysis.runs[0].message = "Metric \"web\" assessed Failed".into();
    o.analysis.runs[0].failed_metric = Some("web".into());
    let plans = settle(&mut o, NOW);
    assert!(
        plans
            .iter()
            .any(|p| p.analysis_abort.as_deref() == Some("web"))
    );
    assert_eq!(
        plans.iter().filter(|p| p.analysis_abort.is_some()).count(),
        1
    );
    let last = plans.last().unwrap();
    assert_eq!(
        last.phase.message(),
        "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed: Metric \"web\" assessed Failed"
    );
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (0, 2));
    // `retry`: a fresh run at the analysis step.
    o.status.abort = false;
    settle(&mut o, NOW);
    let names: Vec<&str> = o.analysis.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["demo-new-2-1", "demo-new-2-1.1"]);
    assert_eq!(o.status.step, Some(1));
}

#[test]
fn an_inconclusive_step_pauses_and_promote_continues() {
    let spec = analysis_drill();
    let mut o = analysed(&spec);
    settle(&mut o, NOW);
    o.analysis.runs[0].phase = AnalysisPhase::Inconclusive;
    let last = settle(&mut o, NOW).pop().unwrap();
    assert_eq!(
        last.phase,
        Phase::Paused(PauseReason::InconclusiveAnalysisRun)
    );
    assert_eq!(o.status.step, Some(1));
    // `promote` clears the pause condition.
    o.status.pauses.clear();
    settle(&mut o, NOW);
    assert_eq!(o.status.stable.as_deref(), Some("new"));
}

#[test]
fn background_analysis_starts_at_its_step_and_its_failure_aborts() {
    let spec = strategy(
        serde_json::json!({"steps": [{"setWeight": 50}, {"pause": {}},
        {"setWeight": 100}], "analysis": {"templates": [{"templateName": "rate"}], "startingStep": 1}}),
    );
    let mut o = update(&spec, 2);
    o.analysis.rollout = "demo".into();
    o.analysis.background = Some(Prepared::default());
    o.analysis.background_start = 1;
    settle(&mut o, NOW);
    assert_eq!(o.status.step, Some(1), "paused at step 2");
    let names: Vec<&str> = o.analysis.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["demo-new-2"]);
    assert_eq!(o.analysis.runs[0].kind, RunKind::Background);
    o.analysis.runs[0].phase = AnalysisPhase::Failed;
    let last = settle(&mut o, NOW).pop().unwrap();
    assert!(
        last.phase
            .message()
            .contains("Background analysis phase error/failed"),
        "{}",
        last.phase.message()
    );
    assert_eq!(replicas(&o, "new"), 0);
}

#[test]
fn promote_full_terminates_the_running_analysis() {
    let spec = analysis_drill();
    let mut o = analysed(&spec);
    settle(&mut o, NOW);
    o.analysis.runs[0].phase = AnalysisPhase::Running;
    o.status.promote_full = true;
    settle(&mut o, NOW);
    assert!(o.analysis.runs[0].terminate);
    assert_eq!(o.status.stable.as_deref(), Some("new"));
}

#[test]
fn steps_sluice_does_not_run_yet_hold_the_rollout_before_them() {
    let spec = strategy(serde_json::json!({"steps": [{"experiment": {"templates": []}}]}));
    let mut o = update(&spec, 2);
    let last = settle(&mut o, NOW).pop().unwrap();
    assert!(
        last.phase.message().contains("experiment step (1/1)"),
        "{}",
        last.phase.message()
    );
    assert_eq!(replicas(&o, "new"), 0);
}

#[test]
fn with_a_router_sluice_does_not_drive_it_holds_rather_than_split_by_pods() {
    let spec = strategy(
        serde_json::json!({"canaryService": "canary", "stableService": "stable",
        "trafficRouting": {"smi": {}}, "steps": [{"setWeight": 10}]}),
    );
    let mut o = update(&spec, 2);
    o.replica_sets.push(rs("new", 2, 0));
    let Strategy::Canary(c) = &mut o.strategy else {
        unreachable!()
    };
    c.routing = Routing::Unsupported("SMI".into());
    let held = plan(&o, t(NOW));
    assert!(held.actions.is_empty());
    assert!(held.phase.message().contains("traffic routing"));
}

#[test]
fn a_canary_that_stops_progressing_is_degraded_and_may_abort() {
    let spec = drill();
    let mut o = update(&spec, 2);
    o.replica_sets.push(rs("new", 2, 1));
    o.replica_sets[1].available = 0;
    o.deadline.seconds = 60;
    let before = plan(&o, t("2026-11-01T10:00:59Z"));
    assert_eq!(before.phase.rollout_phase(), RolloutPhase::Progressing);
    let after = plan(&o, t("2026-11-01T10:01:00Z"));
    assert_eq!(
        after.phase.message(),
        "ProgressDeadlineExceeded: ReplicaSet \"demo-new\" has timed out progressing."
    );
    assert!(!after.progress.abort);
    o.deadline.abort = true;
    assert!(
        plan(&o, t("2026-11-01T10:01:00Z")).progress.abort,
        "progressDeadlineAbort"
    );
}

#[test]
fn a_manually_paused_canary_moves_nothing() {
    let spec = drill();
    let mut o = update(&spec, 2);
    o.replica_sets.push(rs("new", 2, 0));
    o.paused = true;
    let paused = plan(&o, t(NOW));
    assert!(paused.actions.is_empty());
    assert_eq!(paused.phase, Phase::ManuallyPaused);
}

mod routed;
