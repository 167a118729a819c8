use serde_json::json;

use super::*;
use crate::hooks::DeletePolicy;

fn key(kind: &str, name: &str) -> ResourceKey {
    ResourceKey {
        group: match kind {
            "Rollout" => "argoproj.io".into(),
            "Job" => "batch".into(),
            _ => String::new(),
        },
        kind: kind.into(),
        namespace: "demo".into(),
        name: name.into(),
    }
}

fn task(phase: Phase, wave: i64, kind: &str, name: &str, hook: bool) -> SyncTask {
    SyncTask {
        phase,
        wave,
        hook: hook.then(DeletePolicy::default),
        task: Task::Apply {
            key: key(kind, name),
            api_version: "v1".into(),
            object: json!({"metadata": {"name": name}}),
            live: None,
            kind_unknown: false,
        },
    }
}

fn done(task: &SyncTask, hook_phase: &str, message: &str) -> ResourceResult {
    let key = task.task.key();
    ResourceResult {
        group: key.group.clone(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        status: Some("Synced".into()),
        message: Some(message.into()),
        hook_phase: Some(hook_phase.into()),
        sync_phase: Some(task.phase.as_str().into()),
        ..ResourceResult::default()
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_000 + seconds).unwrap()
}

fn observe<'a>(
    tasks: &'a [SyncTask],
    results: &'a [ResourceResult],
    live: &'a dyn Fn(&ResourceKey) -> Option<Value>,
    now: i64,
    strict: bool,
) -> Observed<'a> {
    Observed {
        tasks,
        results,
        live,
        applied_at: Some(at(0)),
        now: at(now),
        wave_delay: Duration::from_secs(2),
        strict,
        application_health: false,
    }
}

fn paused_rollout(name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "generation": 2, "annotations": annotations},
        "status": {"observedGeneration": "2", "phase": "Paused", "message": "BlueGreenPause"}})
}

/// A live Job as this sync applied `name` (its last-applied annotation says so).
fn job(name: &str, status: Value) -> Option<Value> {
    let applied = crate::apply::with_last_applied(&json!({"metadata": {"name": name}}));
    Some(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": applied["metadata"],
        "status": status}))
}

#[test]
fn steps_run_in_order_with_the_wave_delay_between() {
    let tasks = [
        task(Phase::PreSync, 0, "Job", "migrate", true),
        task(Phase::Sync, -1, "ConfigMap", "a", false),
        task(Phase::Sync, 0, "ConfigMap", "b", false),
        task(Phase::PostSync, 0, "Job", "smoke", true),
    ];
    let nothing = |_: &ResourceKey| None;
    let first = Observed {
        applied_at: None,
        ..observe(&tasks, &[], &nothing, 0, false)
    };
    assert_eq!(advance(&first).1, Next::Apply(vec![0]));
    // The hook completed; the next step waits for the wave delay.
    let complete = |_: &ResourceKey| {
        job(
            "migrate",
            json!({"conditions": [{"type": "Complete", "status": "True"}]}),
        )
    };
    let results = [done(&tasks[0], "Running", "job.batch/migrate created")];
    let (updated, next) = advance(&observe(&tasks, &results, &complete, 1, false));
    assert_eq!(updated[0].hook_phase.as_deref(), Some("Succeeded"));
    assert!(
        matches!(next, Next::Wait(d, _) if d == Duration::from_secs(1)),
        "{next:?}"
    );
    let (_, next) = advance(&observe(&tasks, &updated, &complete, 2, false));
    assert_eq!(next, Next::Apply(vec![1]));
}

#[test]
fn a_running_hook_waits_and_a_failed_one_runs_sync_fail() {
    let tasks = [
        task(Phase::PreSync, 0, "Job", "migrate", true),
        task(Phase::Sync, 0, "ConfigMap", "a", false),
        task(Phase::SyncFail, 0, "Job", "cleanup", true),
    ];
    let running = |_: &ResourceKey| job("migrate", json!({"active": 1}));
    let results = [done(&tasks[0], "Running", "job.batch/migrate created")];
    let (_, next) = advance(&observe(&tasks, &results, &running, 5, false));
    assert!(
        matches!(next, Next::Wait(_, ref m) if m.contains("Job/migrate")),
        "{next:?}"
    );
    let failed = |_: &ResourceKey| {
        job(
            "migrate",
            json!({"conditions": [{"type": "Failed", "status": "True"}]}),
        )
    };
    let (updated, next) = advance(&observe(&tasks, &results, &failed, 5, false));
    assert_eq!(updated[0].hook_phase.as_deref(), Some("Failed"));
    assert_eq!(next, Next::Apply(vec![2]));
    let mut with_fail_hook = updated.clone();
    with_fail_hook.push(done(&tasks[2], "Succeeded", "job.batch/cleanup created"));
    let (_, next) = advance(&observe(&tasks, &with_fail_hook, &failed, 9, false));
    assert_eq!(
        next,
        Next::Finish {
            succeeded: false,
            message: "one or more synchronization tasks completed unsuccessfully".into()
        }
    );
}

#[test]
fn a_changed_paused_rollout_counts_as_applied_unless_healthy_is_asked_for() {
    let tasks = [
        task(Phase::Sync, 0, "Rollout", "web", false),
        task(Phase::PostSync, 0, "Job", "smoke", true),
    ];
    let results = [done(
        &tasks[0],
        "Running",
        "rollout.argoproj.io/web configured",
    )];
    let paused = |_: &ResourceKey| Some(paused_rollout("web", json!({})));
    let (updated, next) = advance(&observe(&tasks, &results, &paused, 15, false));
    assert_eq!(next, Next::Apply(vec![1]));
    assert!(
        updated[0]
            .message
            .as_deref()
            .unwrap()
            .ends_with(PAUSED_APPLIED),
        "{updated:?}"
    );
    // Strict on the Application, or on the resource: Argo CD's rule, wait for Healthy.
    let (_, next) = advance(&observe(&tasks, &results, &paused, 15, true));
    assert!(matches!(next, Next::Wait(..)), "{next:?}");
    let strict_one = |_: &ResourceKey| Some(paused_rollout("web", json!({SYNC_WAIT: "Healthy"})));
    let mut strict_tasks = tasks.clone();
    if let Task::Apply { object, .. } = &mut strict_tasks[0].task {
        object["metadata"]["annotations"] = json!({SYNC_WAIT: "Healthy"});
    }
    let (_, next) = advance(&observe(&strict_tasks, &results, &strict_one, 15, false));
    assert!(matches!(next, Next::Wait(..)), "{next:?}");
    // A Rollout the sync did not change is not let through.
    let unchanged = [done(
        &tasks[0],
        "Running",
        "rollout.argoproj.io/web unchanged",
    )];
    let (_, next) = advance(&observe(&tasks, &unchanged, &paused, 15, false));
    assert!(matches!(next, Next::Wait(..)), "{next:?}");
}

#[test]
fn a_live_object_older_than_the_apply_is_not_judged_yet() {
    let tasks = [
        task(Phase::PreSync, 0, "Job", "migrate", true),
        task(Phase::Sync, 0, "ConfigMap", "a", false),
    ];
    let results = [done(&tasks[0], "Running", "job.batch/migrate configured")];
    // The cache still shows the previous copy, complete: not this sync's.
    let previous = |_: &ResourceKey| {
        Some(
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        )
    };
    let (_, next) = advance(&observe(&tasks, &results, &previous, 1, false));
    assert!(matches!(next, Next::Wait(..)), "{next:?}");
    // Missing just after creation is the cache lagging; much later it is an error.
    let missing = |_: &ResourceKey| None;
    let (_, next) = advance(&observe(&tasks, &results, &missing, 1, false));
    assert!(matches!(next, Next::Wait(..)), "{next:?}");
    let (updated, _) = advance(&observe(&tasks, &results, &missing, 60, false));
    assert!(
        updated[0]
            .message
            .as_deref()
            .unwrap()
            .contains("is missing"),
        "{updated:?}"
    );
}

#[test]
fn a_single_step_succeeds_once_applied() {
    let tasks = [task(Phase::Sync, 0, "Rollout", "web", false)];
    let results = [done(
        &tasks[0],
        "Running",
        "rollout.argoproj.io/web configured",
    )];
    let progressing = |_: &ResourceKey| None;
    let (_, next) = advance(&observe(&tasks, &results, &progressing, 0, true));
    assert_eq!(
        next,
        Next::Finish {
            succeeded: true,
            message: "successfully synced (all tasks run)".into()
        }
    );
}

#[test]
fn a_pruned_object_gone_from_the_plan_is_complete() {
    // `y` (wave 1) was pruned in the first step; it is gone, so the next plan has no task for
    // it — its result must not stay Running.
    let keep = task(Phase::Sync, 0, "ConfigMap", "keep", false);
    let gone = task(Phase::Sync, 1, "ConfigMap", "y", false);
    let mut pruned = done(&gone, "Running", "pruned");
    pruned.status = Some("Pruned".into());
    let tasks = [keep.clone()];
    let results = [
        pruned,
        done(&keep, "Succeeded", "configmap/keep configured"),
    ];
    let nothing = |_: &ResourceKey| None;
    let (updated, next) = advance(&observe(&tasks, &results, &nothing, 5, false));
    assert_eq!(updated[0].hook_phase.as_deref(), Some("Succeeded"));
    assert!(
        matches!(
            next,
            Next::Finish {
                succeeded: true,
                ..
            }
        ),
        "{next:?}"
    );
}
