//! The gate's decisions as a table: (where it stands, the tracked run, the runs) → what it
//! says, which run the status tracks next, and the event.

use jiff::Timestamp;
use sluice_api::AnalysisPhase::{self, *};

use super::*;

fn run(name: &str, kind: RunKind, phase: AnalysisPhase) -> RunState {
    RunState {
        name: name.into(),
        kind,
        hash: "abc".into(),
        phase,
        message: match phase {
            Failed => {
                "Metric \"errors\" assessed Failed due to failed (1) > failureLimit (0)".into()
            }
            _ => String::new(),
        },
        terminate: false,
        created: Some("2026-11-01T10:00:00Z".parse::<Timestamp>().unwrap()),
        failed_metric: (phase == Failed).then(|| "errors".into()),
    }
}

/// A row: the run's phase, what the gate must say, and why.
type Row = (AnalysisPhase, fn(&Gate) -> bool, &'static str);

fn tracked(name: &str, phase: AnalysisPhase) -> Tracked {
    Tracked {
        name: name.into(),
        phase,
        message: None,
    }
}

fn decide_with(
    kind: RunKind,
    tracked: Option<Tracked>,
    runs: &[RunState],
    paused_inconclusive: bool,
) -> Decision {
    let prepared = Prepared::default();
    decide(&GateInput {
        kind,
        prepared: &prepared,
        rollout: "demo",
        hash: "abc",
        revision: 2,
        tracked: tracked.as_ref(),
        runs,
        paused_inconclusive,
    })
}

/// The name of the run a decision creates.
fn created(decision: &Decision) -> Option<&str> {
    match &decision.gate {
        Gate::Create(run) => Some(run.name.as_str()),
        _ => None,
    }
}

#[test]
fn a_gate_without_a_run_creates_one_named_as_argo_names_it() {
    let cases = [
        (RunKind::PrePromotion, "demo-abc-2-pre"),
        (RunKind::PostPromotion, "demo-abc-2-post"),
        (RunKind::Step(3), "demo-abc-2-3"),
        (RunKind::Background, "demo-abc-2"),
    ];
    for (kind, name) in cases {
        let decision = decide_with(kind, None, &[], false);
        assert_eq!(created(&decision), Some(name), "{kind:?}");
        assert_eq!(decision.tracked.unwrap().phase, Pending);
        assert_eq!(decision.event, None);
    }
    // Taken names (a finished run of an earlier attempt) get the collision suffix.
    let taken = [
        run("demo-abc-2-pre", RunKind::PrePromotion, Failed),
        run("demo-abc-2-pre.1", RunKind::PrePromotion, Failed),
    ];
    let decision = decide_with(RunKind::PrePromotion, None, &taken, false);
    assert_eq!(created(&decision), Some("demo-abc-2-pre.2"));
}

#[test]
fn the_tracked_runs_phase_decides() {
    let kind = RunKind::Step(1);
    let cases: [Row; 5] = [
        (Pending, |g| *g == Gate::Hold, "pending holds"),
        (Running, |g| *g == Gate::Hold, "running holds"),
        (Successful, |g| *g == Gate::Open, "success opens"),
        (Inconclusive, |g| *g == Gate::Pause, "inconclusive pauses"),
        (
            Failed,
            |g| {
                *g == Gate::Abort {
                    message: "Step-based analysis phase error/failed: Metric \"errors\" assessed Failed due to failed (1) > failureLimit (0)".into(),
                    metric: Some("errors".into()),
                }
            },
            "failure aborts with the run's message",
        ),
    ];
    for (phase, expected, why) in cases {
        let runs = [run("demo-abc-2-1", kind, phase)];
        let decision = decide_with(kind, Some(tracked("demo-abc-2-1", Running)), &runs, false);
        assert!(expected(&decision.gate), "{why}: {:?}", decision.gate);
        assert_eq!(decision.tracked.unwrap().phase, phase, "{why}");
    }
}

#[test]
fn abort_messages_are_argos_for_each_kind() {
    let cases = [
        (
            RunKind::PrePromotion,
            "Blue/green pre-promotion analysis phase error/failed",
        ),
        (
            RunKind::PostPromotion,
            "Blue/green post-promotion analysis phase error/failed",
        ),
        (
            RunKind::Background,
            "Background analysis phase error/failed",
        ),
    ];
    for (kind, prefix) in cases {
        let mut failed = run("r", kind, Error);
        failed.message = String::new();
        let decision = decide_with(kind, Some(tracked("r", Running)), &[failed], false);
        let Gate::Abort { message, .. } = decision.gate else {
            panic!("{kind:?} aborts");
        };
        assert_eq!(message, prefix);
    }
}

#[test]
fn a_second_reconcile_with_the_run_present_creates_nothing() {
    // The status write of the reconcile that created the run was lost (a restart): the run is
    // ours and still going, so the gate follows it.
    let runs = [run("demo-abc-2-pre", RunKind::PrePromotion, Running)];
    let decision = decide_with(RunKind::PrePromotion, None, &runs, false);
    assert_eq!(decision.gate, Gate::Hold);
    assert_eq!(decision.tracked.unwrap().name, "demo-abc-2-pre");
    // Finished or terminated runs of another attempt are not followed.
    let mut old = run("demo-abc-2-pre", RunKind::PrePromotion, Running);
    old.terminate = true;
    let decision = decide_with(RunKind::PrePromotion, None, &[old], false);
    assert_eq!(created(&decision), Some("demo-abc-2-pre.1"));
    // Another hash's or another step's runs are not ours.
    let other = run("demo-abc-2-1", RunKind::Step(1), Running);
    let decision = decide_with(RunKind::Step(2), None, &[other], false);
    assert_eq!(created(&decision), Some("demo-abc-2-2"));
}

#[test]
fn promote_after_an_inconclusive_run_goes_on() {
    let step = RunKind::Step(1);
    let runs = [run("demo-abc-2-1", step, Inconclusive)];
    // Still paused: stays paused.
    let paused = decide_with(
        step,
        Some(tracked("demo-abc-2-1", Inconclusive)),
        &runs,
        true,
    );
    assert_eq!(paused.gate, Gate::Pause);
    assert!(!paused.resumed);
    // The pause cleared (`promote`): a step completes.
    let resumed = decide_with(
        step,
        Some(tracked("demo-abc-2-1", Inconclusive)),
        &runs,
        false,
    );
    assert_eq!(resumed.gate, Gate::Open);
    assert!(resumed.resumed);
    // The first sight of the inconclusive run pauses even without a pause yet.
    let first = decide_with(step, Some(tracked("demo-abc-2-1", Running)), &runs, false);
    assert_eq!(first.gate, Gate::Pause);
    // Pre-promotion analysis starts a fresh run instead (Argo's needsNewAnalysisRun).
    let pre = [run("demo-abc-2-pre", RunKind::PrePromotion, Inconclusive)];
    let fresh = decide_with(
        RunKind::PrePromotion,
        Some(tracked("demo-abc-2-pre", Inconclusive)),
        &pre,
        false,
    );
    assert_eq!(created(&fresh), Some("demo-abc-2-pre.1"));
    assert!(fresh.resumed);
}

#[test]
fn a_phase_change_of_the_tracked_run_is_an_event() {
    let kind = RunKind::Background;
    let runs = [run("demo-abc-2", kind, Failed)];
    let decision = decide_with(kind, Some(tracked("demo-abc-2", Running)), &runs, false);
    assert_eq!(
        decision.event,
        Some((
            true,
            "AnalysisRunFailed",
            "Background Analysis Run 'demo-abc-2' Status New: 'Failed' Previous: 'Running'".into()
        ))
    );
    let same = decide_with(kind, Some(tracked("demo-abc-2", Failed)), &runs, false);
    assert_eq!(same.event, None);
}
