//! A sync operation as a state machine advanced by reconciles (gitops-engine's `Sync()`,
//! research §2.2): each reconcile observes the tasks' recorded results (persisted in
//! `status.operationState.syncResult.resources`) and the live objects, and this pure function
//! says what comes next — apply the next (phase, wave) step, wait, run the `SyncFail` phase, or
//! end. Time is a parameter.
//!
//! A step's tasks complete by health: a hook is Succeeded when Healthy (a Pod or Job when it
//! completed), Failed when Degraded; an ordinary resource Succeeded when Healthy or without a
//! health check, Failed when Degraded. A sync of one step and no hooks succeeds as soon as it
//! is applied, as Argo CD's does. Between steps the wave delay (Argo CD's
//! `ARGOCD_SYNC_WAVE_DELAY`, 2 s) lets other controllers react before health is read.
//!
//! **The paused Rollout, a deliberate departure from Argo CD** (DESIGN §2): a Rollout that this
//! sync changed and that is now paused at a canary step or waiting for blue-green promotion
//! (health `Suspended`) counts as *applied*: later waves and PostSync hooks go on, while the
//! Application's health stays `Suspended`. Argo CD keeps such an operation Running until
//! someone promotes (Argo CD #19422, #25054). The annotation `sluice.dev/sync-wait: Healthy`,
//! on the Application or on the resource, restores Argo CD's rule (wait for Healthy).

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use sluice_api::ResourceResult;

use crate::{
    diff::LAST_APPLIED,
    health::{self, HealthCode},
    hooks::Phase,
    sync::{SyncTask, Task},
    tracking::ResourceKey,
};

/// The annotation choosing what a sync waits for (`Healthy`: Argo CD's strict rule).
pub const SYNC_WAIT: &str = "sluice.dev/sync-wait";

/// Argo CD's default delay between waves.
pub const DEFAULT_WAVE_DELAY: Duration = Duration::from_secs(2);

/// How long a just-applied object may be missing or stale in the cache before that counts.
const CACHE_GRACE: Duration = Duration::from_secs(10);

/// The message of a paused Rollout counted as applied.
pub const PAUSED_APPLIED: &str = "paused (Suspended), counted as applied; annotate sluice.dev/sync-wait: Healthy to wait for Healthy";

/// What a reconcile sees.
pub struct Observed<'a> {
    /// The sync's tasks, in order.
    pub tasks: &'a [SyncTask],
    /// The results recorded so far.
    pub results: &'a [ResourceResult],
    /// The live object of a key, from the cache.
    pub live: &'a dyn Fn(&ResourceKey) -> Option<Value>,
    /// When the last step was applied.
    pub applied_at: Option<Timestamp>,
    /// Now.
    pub now: Timestamp,
    /// The delay between steps.
    pub wave_delay: Duration,
    /// The Application asks for `sluice.dev/sync-wait: Healthy`.
    pub strict: bool,
    /// Child Applications have health (opted in through argocd-cm).
    pub application_health: bool,
}

/// What comes next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Apply these tasks (indices into the tasks): the next step.
    Apply(Vec<usize>),
    /// Tasks are running: look again after at most this long (or when something changes).
    Wait(Duration, String),
    /// The operation ended.
    Finish {
        /// It succeeded.
        succeeded: bool,
        /// Argo CD's message.
        message: String,
    },
}

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started.
    Pending,
    /// Applied, not complete.
    Running,
    /// Complete.
    Succeeded,
    /// Failed.
    Failed,
}

/// The result key: group, kind, namespace, name, sync phase.
pub fn result_of<'a>(results: &'a [ResourceResult], task: &SyncTask) -> Option<&'a ResourceResult> {
    let key = task.task.key();
    results.iter().find(|r| {
        r.group == key.group
            && r.kind == key.kind
            && r.namespace == key.namespace
            && r.name == key.name
            && r.sync_phase.as_deref() == Some(task.phase.as_str())
    })
}

/// The state a recorded result says.
pub fn state_of(result: Option<&ResourceResult>) -> State {
    let Some(result) = result else {
        return State::Pending;
    };
    if result.status.as_deref() == Some("SyncFailed") {
        return State::Failed;
    }
    match result.hook_phase.as_deref() {
        Some("Running") | Some("Pending") => State::Running,
        Some("Failed") | Some("Error") => State::Failed,
        _ => State::Succeeded,
    }
}

/// Whether the sync has more than one step, or hooks (then health gates progress).
pub fn multi_step(tasks: &[SyncTask]) -> bool {
    let first = tasks.first().map(SyncTask::step);
    tasks
        .iter()
        .any(|t| t.hook.is_some() || Some(t.step()) != first)
}

fn strict_for(object: Option<&Value>, app_strict: bool) -> bool {
    let resource = object
        .and_then(|o| o["metadata"]["annotations"][SYNC_WAIT].as_str())
        .map(|w| w.eq_ignore_ascii_case("healthy"));
    resource.unwrap_or(app_strict)
}

fn changed(result: &ResourceResult) -> bool {
    result
        .message
        .as_deref()
        .is_some_and(|m| m.ends_with(" created") || m.ends_with(" configured"))
}

/// The live object still shows an earlier apply than this sync's (the cache lags).
fn stale(object: &Value, live: &Value) -> bool {
    let desired = crate::apply::with_last_applied(object);
    live["metadata"]["annotations"][LAST_APPLIED]
        != desired["metadata"]["annotations"][LAST_APPLIED]
}

/// A running task's state and message from its live object.
fn assess(task: &SyncTask, result: &ResourceResult, observed: &Observed<'_>) -> (State, String) {
    let key = task.task.key();
    let live = (observed.live)(key);
    let young = observed.applied_at.is_none_or(|at| {
        observed.now.duration_since(at) < jiff::SignedDuration::try_from(CACHE_GRACE).unwrap()
    });
    let message = result.message.clone().unwrap_or_default();
    match &task.task {
        Task::Prune { .. } => match live {
            Some(l) if l["metadata"]["deletionTimestamp"].is_string() => {
                (State::Running, "pending deletion".into())
            }
            _ => (State::Succeeded, message),
        },
        Task::PruneSkipped { .. } => (State::Succeeded, message),
        Task::Apply { object, .. } => {
            let Some(live) = live else {
                return if young {
                    (State::Running, message)
                } else {
                    (
                        State::Failed,
                        format!("Resource {key} is missing, it might have been deleted"),
                    )
                };
            };
            if young && changed(result) && stale(object, &live) {
                return (State::Running, message);
            }
            let Some(health) = health::assess_with(&live, observed.application_health) else {
                return (State::Succeeded, message);
            };
            let detail = |m: &str| {
                if health.message.is_empty() {
                    m.to_owned()
                } else {
                    format!("{m}: {}", health.message)
                }
            };
            // A running task keeps its apply message; a final one says how it ended.
            match health.code {
                HealthCode::Healthy => (State::Succeeded, message),
                HealthCode::Degraded => (State::Failed, detail(&message)),
                HealthCode::Unknown if task.hook.is_some() => (State::Failed, detail(&message)),
                HealthCode::Suspended
                    if task.hook.is_none()
                        && key.group == "argoproj.io"
                        && key.kind == "Rollout"
                        && changed(result)
                        && !strict_for(Some(object), observed.strict) =>
                {
                    (State::Succeeded, format!("{message}; {PAUSED_APPLIED}"))
                }
                _ => (State::Running, message),
            }
        }
    }
}

/// The results with running tasks brought up to date, and what comes next.
pub fn advance(observed: &Observed<'_>) -> (Vec<ResourceResult>, Next) {
    let tasks = observed.tasks;
    let multi = multi_step(tasks);
    let mut results = observed.results.to_vec();
    let mut states = Vec::with_capacity(tasks.len());
    for task in tasks {
        let recorded = result_of(&results, task).cloned();
        let mut state = state_of(recorded.as_ref());
        if state == State::Running
            && let Some(recorded) = recorded
        {
            let (now, message) = if multi {
                assess(task, &recorded, observed)
            } else {
                (
                    State::Succeeded,
                    recorded.message.clone().unwrap_or_default(),
                )
            };
            state = now;
            if let Some(r) = results.iter_mut().find(|r| **r == recorded) {
                r.hook_phase = Some(
                    match now {
                        State::Running => "Running",
                        State::Failed => "Failed",
                        _ => "Succeeded",
                    }
                    .into(),
                );
                r.message = Some(message);
            }
        }
        states.push(state);
    }
    // A pruned object that is gone leaves the plan (nothing live, nothing in Git): its
    // recorded result has no task any more and is complete.
    for r in &mut results {
        let orphan = !tasks
            .iter()
            .any(|t| result_of(std::slice::from_ref(r), t).is_some());
        if orphan && r.status.as_deref() == Some("Pruned") && state_of(Some(r)) == State::Running {
            r.hook_phase = Some("Succeeded".into());
        }
    }
    let running: Vec<usize> = (0..tasks.len())
        .filter(|i| states[*i] == State::Running)
        .collect();
    if let Some(first) = running.first() {
        let key = tasks[*first].task.key();
        return (
            results,
            Next::Wait(
                Duration::from_secs(1),
                if tasks[*first].hook.is_some() {
                    format!("waiting for completion of hook {}/{}", key.kind, key.name)
                } else {
                    format!("waiting for healthy state of {}/{}", key.kind, key.name)
                },
            ),
        );
    }
    let failed = (0..tasks.len()).any(|i| states[i] == State::Failed);
    let pending = |phase_ok: &dyn Fn(Phase) -> bool| {
        let first =
            (0..tasks.len()).find(|i| states[*i] == State::Pending && phase_ok(tasks[*i].phase))?;
        let step = tasks[first].step();
        Some(
            (0..tasks.len())
                .filter(|i| states[*i] == State::Pending && tasks[*i].step() == step)
                .collect::<Vec<_>>(),
        )
    };
    let next = if failed {
        pending(&|p| p == Phase::SyncFail)
    } else {
        pending(&|p| p != Phase::SyncFail)
    };
    match next {
        Some(step) => {
            let started = states.iter().any(|s| *s != State::Pending);
            if started && let Some(at) = observed.applied_at {
                let ready = at
                    .checked_add(jiff::SignedDuration::try_from(observed.wave_delay).unwrap())
                    .unwrap_or(at);
                if observed.now < ready {
                    let left = observed.now.duration_until(ready);
                    let left = Duration::try_from(left).unwrap_or_default();
                    return (
                        results,
                        Next::Wait(left, "waiting for the next sync wave".into()),
                    );
                }
            }
            (results, Next::Apply(step))
        }
        None if failed => {
            let apply_failed = results
                .iter()
                .any(|r| r.status.as_deref() == Some("SyncFailed"));
            let message = if apply_failed {
                "one or more objects failed to apply"
            } else {
                "one or more synchronization tasks completed unsuccessfully"
            };
            (
                results,
                Next::Finish {
                    succeeded: false,
                    message: message.into(),
                },
            )
        }
        None => (
            results,
            Next::Finish {
                succeeded: true,
                message: "successfully synced (all tasks run)".into(),
            },
        ),
    }
}

#[cfg(test)]
mod tests;
