//! The pod lifecycle as a pure function: from a pod, how each container runs — simulated (its
//! image's behaviour over time) or real (what the supervisor sees of its process, [`real`]) —
//! and the time: the status the kubelet should report next, which processes to start or stop,
//! whether the pod can be removed, which events to record, and when to look again. All state
//! lives in the pod's status (start times, restart counts, last termination, container IDs), so a
//! restarted kubelet carries on where it left off.

mod ephemeral;
mod real;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::{process::Observed, rules::Behaviour};
use crate::object::timestamp;
pub use ephemeral::containers as ephemeral_containers;
pub use real::RestartPolicy;

/// How one container runs, as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Run {
    /// Simulated with this behaviour.
    Simulated(Behaviour),
    /// A real process, as the supervisor sees it.
    Real(Observed),
}

/// What the kubelet asks of the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeAction {
    /// Start a container; `restart` numbers this start (its log file).
    Start {
        /// Container name.
        container: String,
        /// The restart count of this start.
        restart: i64,
    },
    /// Stop a running container so that it restarts (a failed liveness or startup probe).
    Restart {
        /// Container name.
        container: String,
        /// Time between SIGTERM and SIGKILL.
        grace: Duration,
    },
    /// Stop every container of the pod (it is being deleted).
    Stop {
        /// Time left between SIGTERM and SIGKILL.
        grace: Duration,
    },
}

/// Back-off before restarting a crashed container: 10 s doubling to 5 min, as the kubelet.
pub fn crash_back_off(restarts: i64) -> Duration {
    let exponent = (restarts.max(1) - 1).min(5) as u32;
    Duration::from_secs((10 * 2u64.pow(exponent)).min(300))
}

/// An event for the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// `Normal` or `Warning`.
    pub warning: bool,
    /// Kubernetes' reason (`Scheduled`, `Pulled`, `Started`, `BackOff`, `Killing`, …).
    pub reason: &'static str,
    /// Message.
    pub note: String,
}

/// What the kubelet does next for a pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodPlan {
    /// The status to write, when it differs from the current one.
    pub status: Option<Value>,
    /// Remove the pod (its containers have stopped after deletion).
    pub remove: bool,
    /// Events to record.
    pub events: Vec<PodEvent>,
    /// When to look again.
    pub requeue: Option<Duration>,
    /// What the supervisor must do, after the status is written.
    pub actions: Vec<RuntimeAction>,
}

fn parse_time(
    value: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Option<Timestamp> {
    value.map(|t| t.0)
}

fn at(t: Timestamp, d: Duration) -> Timestamp {
    t + SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The next step for `pod`. `runs` tells how each container runs; `pod_ip` is the address to
/// report once the pod starts.
pub fn plan(pod: &Pod, runs: &dyn Fn(&Container) -> Run, pod_ip: &str, now: Timestamp) -> PodPlan {
    let mut plan = PodPlan::default();
    let (Some(spec), meta) = (pod.spec.as_ref(), &pod.metadata) else {
        return plan;
    };
    let status = pod.status.clone().unwrap_or_default();
    // Its ephemeral containers (`kubectl debug`), read once.
    let debuggers = ephemeral::containers(pod);
    let name = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    );

    if let Some(deleting) = &meta.deletion_timestamp {
        let grace = meta.deletion_grace_period_seconds.unwrap_or(0).max(0) as u64;
        let started = at(deleting.0, Duration::ZERO) - SignedDuration::from_secs(grace as i64);
        let runs: Vec<Run> = spec.containers.iter().chain(&debuggers).map(runs).collect();
        let delay = runs
            .iter()
            .map(|run| match run {
                Run::Simulated(b) => b.termination_delay.unwrap_or_default(),
                Run::Real(_) => Duration::ZERO,
            })
            .max()
            .unwrap_or_default()
            .min(Duration::from_secs(grace));
        let done = at(started, delay);
        let running = runs
            .iter()
            .any(|run| matches!(run, Run::Real(Observed::Running { .. })));
        if running {
            // SIGTERM now (once), SIGKILL at the deadline; the exit wakes the kubelet.
            plan.actions.push(RuntimeAction::Stop {
                grace: until(now, deleting.0),
            });
            plan.requeue = Some(until(now, deleting.0) + Duration::from_millis(100));
        } else if now >= done {
            plan.remove = true;
            for c in &spec.containers {
                plan.events.push(PodEvent {
                    warning: false,
                    reason: "Killing",
                    note: format!("Stopping container {}", c.name),
                });
            }
        } else {
            plan.requeue = Some(until(now, done));
        }
        return plan;
    }
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        // A finished pod's ephemeral containers are stopped too, and their statuses kept true.
        for container in &debuggers {
            if let Run::Real(Observed::Running {
                stopping: false, ..
            }) = runs(container)
            {
                plan.actions.push(RuntimeAction::Restart {
                    container: container.name.clone(),
                    grace: Duration::ZERO,
                });
            }
        }
        let ephemeral =
            ephemeral::statuses(pod, &debuggers, runs, &name, now, &mut plan, &mut |_| {});
        // Compared as typed statuses, as below, so JSON spellings do not count as changes.
        let typed = serde_json::from_value::<Vec<k8s_openapi::api::core::v1::ContainerStatus>>(
            json!(ephemeral),
        );
        let changed = typed.is_ok_and(|t| status.ephemeral_container_statuses.as_ref() != Some(&t));
        if !ephemeral.is_empty() && changed {
            let mut next = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
            next["ephemeralContainerStatuses"] = json!(ephemeral);
            plan.status = Some(next);
        }
        return plan;
    }

    let policy = RestartPolicy::parse(spec.restart_policy.as_deref());
    let run_to_completion = policy != RestartPolicy::Always;
    let grace =
        Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
    let start = parse_time(status.start_time.as_ref());
    let Some(start) = start else {
        // First sight: scheduled, containers being created.
        plan.events.push(PodEvent {
            warning: false,
            reason: "Scheduled",
            note: format!(
                "Successfully assigned {name} to {}",
                spec.node_name.as_deref().unwrap_or_default()
            ),
        });
        let containers: Vec<Value> = spec
            .containers
            .iter()
            .map(|c| {
                json!({"name": c.name, "image": c.image, "imageID": "", "ready": false, "restartCount": 0,
                       "started": false, "state": {"waiting": {"reason": "ContainerCreating"}}})
            })
            .collect();
        plan.status = Some(json!({
            "phase": "Pending",
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": timestamp(now),
            "conditions": conditions(now, now, false, false),
            "containerStatuses": containers,
        }));
        plan.requeue = Some(Duration::from_millis(10));
        return plan;
    };

    let previous: Vec<Value> = serde_json::to_value(&status.container_statuses)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let mut statuses = Vec::new();
    let mut next: Option<Timestamp> = None;
    let mut soonest = |t: Timestamp| {
        if t > now {
            next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        }
    };
    let mut all_ready = true;
    let mut ready_since = start;
    let mut waiting_pull = false;
    let mut exit_codes = Vec::new();
    for container in &spec.containers {
        let prev = previous
            .iter()
            .find(|s| s["name"] == container.name.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        let b = match runs(container) {
            Run::Simulated(b) => b,
            Run::Real(observed) => {
                let situation = real::Situation {
                    prev: &prev,
                    observed: &observed,
                    policy,
                    grace,
                    pod: &name,
                    now,
                };
                let step = real::step(container, &situation, &mut plan, &mut soonest);
                all_ready &= step.ready;
                if step.ready {
                    ready_since = ready_since.max(now);
                }
                exit_codes.push(step.exit.unwrap_or(-1));
                statuses.push(step.status);
                continue;
            }
        };
        let image = container.image.clone().unwrap_or_default();
        let image_id = format!("sluice://simulated/{image}");
        let restarts = prev["restartCount"].as_i64().unwrap_or(0);
        let mut cs = json!({"name": container.name, "image": image, "imageID": image_id, "restartCount": restarts});
        if b.pull_error {
            waiting_pull = true;
            all_ready = false;
            let first = prev["state"]["waiting"]["reason"] != "ErrImagePull"
                && prev["state"]["waiting"]["reason"] != "ImagePullBackOff";
            let reason = if first {
                "ErrImagePull"
            } else {
                "ImagePullBackOff"
            };
            if first {
                plan.events.push(PodEvent {
                    warning: true,
                    reason: "Failed",
                    note: format!(
                        "Failed to pull image \"{image}\": the image rules say it cannot be pulled"
                    ),
                });
                soonest(at(now, Duration::from_secs(1)));
            } else if prev["state"]["waiting"]["reason"] == "ErrImagePull" {
                plan.events.push(PodEvent {
                    warning: false,
                    reason: "BackOff",
                    note: format!("Back-off pulling image \"{image}\""),
                });
            }
            cs["imageID"] = json!("");
            cs["ready"] = json!(false);
            cs["started"] = json!(false);
            cs["state"] = json!({"waiting": {"reason": reason, "message": format!("image {image} cannot be pulled")}});
            statuses.push(cs);
            continue;
        }
        if prev["state"]["waiting"]["reason"] == "ContainerCreating" || prev.is_null() {
            plan.events.push(PodEvent {
                warning: false,
                reason: "Pulled",
                note: format!("Container image \"{image}\" already present on machine"),
            });
            plan.events.push(PodEvent {
                warning: false,
                reason: "Created",
                note: format!("Created container {}", container.name),
            });
            plan.events.push(PodEvent {
                warning: false,
                reason: "Started",
                note: format!("Started container {}", container.name),
            });
        }
        if run_to_completion {
            let finish = at(start, b.run_for());
            if now >= finish {
                let code = b.exit_code.unwrap_or(0);
                exit_codes.push(code);
                cs["ready"] = json!(false);
                cs["started"] = json!(false);
                cs["state"] = json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                    "startedAt": timestamp(start), "finishedAt": timestamp(finish)}});
                all_ready = false;
            } else {
                soonest(finish);
                cs["ready"] = json!(!b.never_ready);
                cs["started"] = json!(true);
                cs["state"] = json!({"running": {"startedAt": timestamp(start)}});
                exit_codes.push(-1);
            }
            statuses.push(cs);
            continue;
        }
        // Long-running container: running since `started`, maybe crashing.
        let mut started = prev["state"]["running"]["startedAt"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(start);
        let mut restarts = restarts;
        if let Some(crash) = b.crash_after {
            if prev["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
                let finished = prev["lastState"]["terminated"]["finishedAt"]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .unwrap_or(now);
                let resume = at(finished, crash_back_off(restarts));
                if now < resume {
                    soonest(resume);
                    all_ready = false;
                    cs["ready"] = json!(false);
                    cs["started"] = json!(false);
                    cs["state"] = prev["state"].clone();
                    cs["lastState"] = prev["lastState"].clone();
                    statuses.push(cs);
                    continue;
                }
                started = resume;
                plan.events.push(PodEvent {
                    warning: false,
                    reason: "Started",
                    note: format!("Started container {}", container.name),
                });
            }
            let dies = at(started, crash);
            if now >= dies {
                restarts += 1;
                plan.events.push(PodEvent {
                    warning: true,
                    reason: "BackOff",
                    note: format!(
                        "Back-off restarting failed container {} in pod {name}",
                        container.name
                    ),
                });
                all_ready = false;
                soonest(at(dies, crash_back_off(restarts)));
                cs["restartCount"] = json!(restarts);
                cs["ready"] = json!(false);
                cs["started"] = json!(false);
                cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": format!("back-off {}s restarting failed container={} pod={name}", crash_back_off(restarts).as_secs(), container.name)}});
                cs["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": timestamp(started), "finishedAt": timestamp(dies)}});
                statuses.push(cs);
                continue;
            }
            soonest(dies);
        }
        if !prev["lastState"].is_null() {
            cs["lastState"] = prev["lastState"].clone();
        }
        let ready_at = at(started, b.ready_after());
        let ready = !b.never_ready && now >= ready_at;
        if !b.never_ready && !ready {
            soonest(ready_at);
        }
        all_ready &= ready;
        ready_since = ready_since.max(ready_at);
        cs["ready"] = json!(ready);
        cs["started"] = json!(true);
        cs["state"] = json!({"running": {"startedAt": timestamp(started)}});
        statuses.push(cs);
    }

    let ephemeral = ephemeral::statuses(pod, &debuggers, runs, &name, now, &mut plan, &mut soonest);

    let phase = if waiting_pull {
        "Pending"
    } else if run_to_completion && exit_codes.iter().all(|c| *c >= 0) {
        if exit_codes.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else {
        "Running"
    };
    let mut next_status = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
    next_status["phase"] = json!(phase);
    next_status["containerStatuses"] = json!(statuses);
    if !ephemeral.is_empty() {
        next_status["ephemeralContainerStatuses"] = json!(ephemeral);
    }
    // Init containers complete at once.
    if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        let finished: Vec<Value> = init
            .iter()
            .map(|c| {
                json!({"name": c.name, "image": c.image, "imageID": format!("sluice://simulated/{}", c.image.as_deref().unwrap_or_default()),
                    "ready": true, "restartCount": 0, "started": false,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": timestamp(start), "finishedAt": timestamp(start)}}})
            })
            .collect();
        next_status["initContainerStatuses"] = json!(finished);
    }
    let previous_conditions = serde_json::to_value(&status.conditions).unwrap_or(Value::Null);
    next_status["conditions"] = merge_conditions(
        &previous_conditions,
        conditions(
            start,
            if all_ready { ready_since } else { now },
            all_ready,
            all_ready,
        ),
    );
    if phase != "Pending" && next_status["podIP"].is_null() {
        next_status["podIP"] = json!(pod_ip);
    }
    // Compare as typed statuses, so JSON spellings (a null `lastProbeTime`) do not count.
    let unchanged =
        serde_json::from_value::<k8s_openapi::api::core::v1::PodStatus>(next_status.clone())
            .is_ok_and(|next| next == status);
    if !unchanged {
        plan.status = Some(next_status);
    }
    plan.requeue = next.map(|t| until(now, t));
    plan
}

fn conditions(
    scheduled: Timestamp,
    changed: Timestamp,
    containers_ready: bool,
    ready: bool,
) -> Value {
    let condition = |type_: &str, status: bool, at: Timestamp| json!({"type": type_, "status": if status { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": timestamp(at)});
    json!([
        condition("PodReadyToStartContainers", true, scheduled),
        condition("Initialized", true, scheduled),
        condition("Ready", ready, changed),
        condition("ContainersReady", containers_ready, changed),
        condition("PodScheduled", true, scheduled),
    ])
}

/// Keeps a condition's `lastTransitionTime` while its status does not change.
fn merge_conditions(previous: &Value, next: Value) -> Value {
    let Value::Array(mut next) = next else {
        return next;
    };
    for condition in &mut next {
        let old = previous
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == condition["type"]);
        if let Some(old) = old
            && old["status"] == condition["status"]
        {
            condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
        }
    }
    Value::Array(next)
}

#[cfg(test)]
mod tests;
