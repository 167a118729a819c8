//! One real container's next status and action, from what the supervisor sees of its process
//! and the status written before: start it, restart it after an exit or a failed liveness probe
//! (per the restart policy, with CrashLoopBackOff's back-off), or leave it terminated. A
//! container that was running before sluice restarted counts as exited (`Unknown`, 255) and is
//! started again.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Container;
use serde_json::{Value, json};

use super::{PodEvent, PodPlan, RuntimeAction, at, crash_back_off};
use crate::{kubelet::process::Observed, object::timestamp};

/// A pod's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart after every exit.
    Always,
    /// Restart after a non-zero exit.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// From the pod spec.
    pub fn parse(policy: Option<&str>) -> Self {
        match policy {
            Some("OnFailure") => Self::OnFailure,
            Some("Never") => Self::Never,
            _ => Self::Always,
        }
    }

    fn restarts_after(self, code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => code != 0,
            Self::Never => false,
        }
    }
}

/// How long a failed container start waits before the next attempt.
const RETRY_START: Duration = Duration::from_secs(10);

/// The wait before restart number `restarts`: none for the first, then 10 s doubling to 5 min.
fn restart_delay(restarts: i64) -> Duration {
    if restarts <= 1 {
        Duration::ZERO
    } else {
        crash_back_off(restarts - 1)
    }
}

/// The outcome of one container's step.
pub(super) struct Step {
    /// Its `containerStatuses` entry.
    pub status: Value,
    /// Ready.
    pub ready: bool,
    /// For a container that has terminated for good: its exit code.
    pub exit: Option<i32>,
}

fn terminated(id: &str, code: i32, reason: &str, started: &str, finished: &str) -> Value {
    json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started,
        "finishedAt": finished, "containerID": id}})
}

/// Where a real container stands.
pub(super) struct Situation<'a> {
    /// Its previous `containerStatuses` entry (or null).
    pub prev: &'a Value,
    /// What the supervisor sees.
    pub observed: &'a Observed,
    /// The pod's restart policy.
    pub policy: RestartPolicy,
    /// The grace period for a restart.
    pub grace: Duration,
    /// `namespace/name` of the pod, for messages.
    pub pod: &'a str,
    /// Now.
    pub now: Timestamp,
}

/// The next status of a real container. `soonest` collects when to look again.
pub(super) fn step(
    container: &Container,
    situation: &Situation<'_>,
    plan: &mut PodPlan,
    soonest: &mut dyn FnMut(Timestamp),
) -> Step {
    let Situation {
        prev,
        observed,
        policy,
        grace,
        pod,
        now,
    } = *situation;
    let name = container.name.as_str();
    let image = container.image.clone().unwrap_or_default();
    let restarts = prev["restartCount"].as_i64().unwrap_or(0);
    let mut status = json!({"name": name, "image": image, "imageID": format!("sluice://process/{image}"),
        "restartCount": restarts, "ready": false, "started": false});
    if !prev["lastState"].is_null() {
        status["lastState"] = prev["lastState"].clone();
    }
    let event = |plan: &mut PodPlan, warning, reason, note: String| {
        plan.events.push(PodEvent {
            warning,
            reason,
            note,
        });
    };
    // Start now, or wait for `resume`.
    let mut start_or_wait = |status: &mut Value,
                             plan: &mut PodPlan,
                             restarts: i64,
                             resume: Timestamp,
                             waiting: Value| {
        if now >= resume {
            plan.actions.push(RuntimeAction::Start {
                container: name.to_owned(),
                restart: restarts,
            });
            status["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
        } else {
            soonest(resume);
            status["state"] = json!({"waiting": waiting});
        }
    };
    let back_off = |restarts: i64| {
        json!({"reason": "CrashLoopBackOff", "message": format!(
            "back-off {}s restarting failed container={name} pod={}",
            restart_delay(restarts).as_secs(), pod)})
    };
    match observed {
        Observed::Running {
            id,
            started_at,
            started,
            ready,
            unhealthy,
            stopping,
        } => {
            if prev["containerID"] != id.as_str() {
                let pulled = format!("Container image \"{image}\" already present on machine");
                event(plan, false, "Pulled", pulled);
                event(plan, false, "Created", format!("Created container {name}"));
                event(plan, false, "Started", format!("Started container {name}"));
            }
            if let Some(why) = unhealthy
                && !stopping
            {
                let note = format!("Container {name} failed {why}, will be restarted");
                event(plan, false, "Killing", note);
                plan.actions.push(RuntimeAction::Restart {
                    container: name.to_owned(),
                    grace,
                });
            }
            let ready = *ready && unhealthy.is_none() && !stopping;
            status["containerID"] = json!(id);
            status["ready"] = json!(ready);
            status["started"] = json!(started);
            status["state"] = json!({"running": {"startedAt": timestamp(*started_at)}});
            Step {
                status,
                ready,
                exit: None,
            }
        }
        Observed::Exited {
            id,
            started_at,
            finished_at,
            code,
        } => {
            let reason = if *code == 0 { "Completed" } else { "Error" };
            let state = terminated(
                id,
                *code,
                reason,
                &timestamp(*started_at),
                &timestamp(*finished_at),
            );
            status["containerID"] = json!(id);
            if !policy.restarts_after(*code) {
                status["state"] = state;
                return Step {
                    status,
                    ready: false,
                    exit: Some(*code),
                };
            }
            let counted = prev["lastState"]["terminated"]["containerID"] == id.as_str();
            let restarts = restarts + i64::from(!counted);
            status["restartCount"] = json!(restarts);
            status["lastState"] = state;
            let resume = at(*finished_at, restart_delay(restarts));
            if !counted && now < resume {
                let note = format!("Back-off restarting failed container {name} in pod {pod}");
                event(plan, true, "BackOff", note);
            }
            start_or_wait(&mut status, plan, restarts, resume, back_off(restarts));
            Step {
                status,
                ready: false,
                exit: None,
            }
        }
        Observed::Absent => {
            let state = &prev["state"];
            if !state["running"].is_null() {
                // Running before sluice restarted: that process is gone.
                let id = prev["containerID"].as_str().unwrap_or_default();
                let started = state["running"]["startedAt"].as_str().unwrap_or_default();
                status["lastState"] = terminated(id, 255, "Unknown", started, &timestamp(now));
                status["restartCount"] = json!(restarts + 1);
                start_or_wait(&mut status, plan, restarts + 1, now, Value::Null);
            } else if let Some(code) = state["terminated"]["exitCode"].as_i64()
                && !policy.restarts_after(code as i32)
            {
                status["state"] = state.clone();
                status["containerID"] = prev["containerID"].clone();
                return Step {
                    status,
                    ready: false,
                    exit: Some(code as i32),
                };
            } else {
                let finished = prev["lastState"]["terminated"]["finishedAt"]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok());
                let resume = match (state["waiting"]["reason"].as_str(), finished) {
                    (Some("CrashLoopBackOff"), Some(finished)) => {
                        at(finished, restart_delay(restarts))
                    }
                    _ => now,
                };
                start_or_wait(&mut status, plan, restarts, resume, back_off(restarts));
            }
            Step {
                status,
                ready: false,
                exit: None,
            }
        }
        Observed::Failed {
            reason,
            message,
            at: failed,
        } => {
            let waiting = json!({"reason": reason, "message": message});
            if prev["state"]["waiting"] != waiting {
                event(plan, true, "Failed", format!("Error: {message}"));
            }
            start_or_wait(
                &mut status,
                plan,
                restarts,
                at(*failed, RETRY_START),
                waiting,
            );
            Step {
                status,
                ready: false,
                exit: None,
            }
        }
    }
}
