//! The simulated container runtime as a pure function: from a pod, its images' behaviours and
//! the time, the status the kubelet should report next, whether the pod can be removed, which
//! events to record, and when to look again. All state lives in the pod's status (start times,
//! restart counts, last termination), so a restarted kubelet carries on where it left off.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::rules::Behaviour;
use crate::object::timestamp;

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

/// The next step for `pod`. `behaviour` gives each container's behaviour; `pod_ip` is the
/// address to report once the pod starts.
pub fn plan(
    pod: &Pod,
    behaviour: &dyn Fn(&Container) -> Behaviour,
    pod_ip: &str,
    now: Timestamp,
) -> PodPlan {
    let mut plan = PodPlan::default();
    let (Some(spec), meta) = (pod.spec.as_ref(), &pod.metadata) else {
        return plan;
    };
    let status = pod.status.clone().unwrap_or_default();
    let name = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    );

    if let Some(deleting) = &meta.deletion_timestamp {
        let grace = meta.deletion_grace_period_seconds.unwrap_or(0).max(0) as u64;
        let started = at(deleting.0, Duration::ZERO) - SignedDuration::from_secs(grace as i64);
        let delay = spec
            .containers
            .iter()
            .map(|c| behaviour(c).termination_delay.unwrap_or_default())
            .max()
            .unwrap_or_default()
            .min(Duration::from_secs(grace));
        let done = at(started, delay);
        if now >= done {
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
        return plan;
    }

    let run_to_completion = spec
        .restart_policy
        .as_deref()
        .is_some_and(|p| p != "Always");
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
            "qosClass": "BestEffort",
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
        let b = behaviour(container);
        let prev = previous
            .iter()
            .find(|s| s["name"] == container.name.as_str())
            .cloned()
            .unwrap_or(Value::Null);
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
mod tests {
    use super::*;

    fn pod(spec: Value, status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": spec,
            "status": status,
        }))
        .unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn simple(ready_after_ms: u64) -> impl Fn(&Container) -> Behaviour {
        move |_| Behaviour {
            ready_after: Some(Duration::from_millis(ready_after_ms)),
            ..Behaviour::default()
        }
    }

    fn web() -> Value {
        json!({"nodeName": "sluice-local", "containers": [{"name": "app", "image": "nginx"}]})
    }

    #[test]
    fn a_new_pod_starts_then_becomes_ready_after_its_delay() {
        let now = t("2026-11-01T10:00:00Z");
        let first = plan(
            &pod(web(), json!({"phase": "Pending"})),
            &simple(2000),
            "127.1.0.1",
            now,
        );
        let status = first.status.unwrap();
        assert_eq!(status["startTime"], "2026-11-01T10:00:00Z");
        assert_eq!(status["podIP"], "127.1.0.1");
        assert_eq!(first.events[0].reason, "Scheduled");

        let running = plan(&pod(web(), status.clone()), &simple(2000), "127.1.0.1", now);
        let status = running.status.unwrap();
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["containerStatuses"][0]["ready"], false);
        assert_eq!(running.requeue, Some(Duration::from_secs(2)));
        assert!(running.events.iter().any(|e| e.reason == "Started"));

        let later = t("2026-11-01T10:00:02Z");
        let ready = plan(&pod(web(), status), &simple(2000), "127.1.0.1", later);
        let status = ready.status.unwrap();
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        let condition = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(
            (
                condition["status"].as_str(),
                condition["lastTransitionTime"].as_str()
            ),
            (Some("True"), Some("2026-11-01T10:00:02Z"))
        );
        // Nothing changes afterwards: no write, no requeue.
        let settled = plan(
            &pod(web(), status),
            &simple(2000),
            "127.1.0.1",
            t("2026-11-01T10:05:00Z"),
        );
        assert_eq!(settled, PodPlan::default());
    }

    #[test]
    fn init_containers_complete_at_once() {
        let spec = json!({"nodeName": "sluice-local", "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx"}]});
        let started = json!({"phase": "Pending", "startTime": "2026-11-01T10:00:00Z"});
        let status = plan(
            &pod(spec, started),
            &simple(1000),
            "127.1.0.5",
            t("2026-11-01T10:00:00Z"),
        )
        .status
        .unwrap();
        assert_eq!(
            status["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(status["phase"], "Running");
    }

    #[test]
    fn run_to_completion_pods_finish_with_their_exit_code() {
        let spec = json!({"nodeName": "sluice-local", "restartPolicy": "Never", "containers": [{"name": "job", "image": "x"}]});
        let failing = |_: &Container| Behaviour {
            exit_code: Some(3),
            run_for: Some(Duration::from_secs(5)),
            ..Behaviour::default()
        };
        let started = json!({"phase": "Running", "startTime": "2026-11-01T10:00:00Z"});
        let running = plan(
            &pod(spec.clone(), started.clone()),
            &failing,
            "127.1.0.2",
            t("2026-11-01T10:00:01Z"),
        );
        assert_eq!(running.requeue, Some(Duration::from_secs(4)));
        let done = plan(
            &pod(spec, started),
            &failing,
            "127.1.0.2",
            t("2026-11-01T10:00:05Z"),
        );
        let status = done.status.unwrap();
        assert_eq!(status["phase"], "Failed");
        assert_eq!(
            status["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
    }

    #[test]
    fn crashing_containers_back_off_and_restart() {
        let crashing = |_: &Container| Behaviour {
            crash_after: Some(Duration::from_secs(1)),
            ..Behaviour::default()
        };
        let started = json!({"phase": "Running", "startTime": "2026-11-01T10:00:00Z",
            "containerStatuses": [{"name": "app", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": "2026-11-01T10:00:00Z"}}}]});
        let crashed = plan(
            &pod(web(), started),
            &crashing,
            "127.1.0.3",
            t("2026-11-01T10:00:01Z"),
        );
        let status = crashed.status.unwrap();
        assert_eq!(
            status["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        assert_eq!(status["containerStatuses"][0]["restartCount"], 1);
        assert_eq!(crashed.requeue, Some(Duration::from_secs(10)));
        let restarted = plan(
            &pod(web(), status),
            &crashing,
            "127.1.0.3",
            t("2026-11-01T10:00:11Z"),
        );
        let status = restarted.status.unwrap();
        assert_eq!(
            status["containerStatuses"][0]["state"]["running"]["startedAt"],
            "2026-11-01T10:00:11Z"
        );
        assert_eq!(crash_back_off(3), Duration::from_secs(40));
        assert_eq!(crash_back_off(30), Duration::from_secs(300));
    }

    #[test]
    fn deletion_waits_for_the_termination_delay_within_the_grace_period() {
        let slow = |_: &Container| Behaviour {
            termination_delay: Some(Duration::from_secs(5)),
            ..Behaviour::default()
        };
        let mut deleting = pod(
            web(),
            json!({"phase": "Running", "startTime": "2026-11-01T10:00:00Z"}),
        );
        // Deleted at 10:01:00 with a 3 s grace period: the deadline is 10:01:03.
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t("2026-11-01T10:01:03Z")),
        );
        deleting.metadata.deletion_grace_period_seconds = Some(3);
        let waiting = plan(&deleting, &slow, "127.1.0.4", t("2026-11-01T10:01:01Z"));
        assert!(!waiting.remove);
        assert_eq!(
            waiting.requeue,
            Some(Duration::from_secs(2)),
            "capped by the grace period"
        );
        let gone = plan(&deleting, &slow, "127.1.0.4", t("2026-11-01T10:01:03Z"));
        assert!(gone.remove && gone.events[0].reason == "Killing");
    }
}
