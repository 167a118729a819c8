//! Ephemeral containers (`kubectl debug`): each runs once, never restarted, and counts for
//! neither the pod's readiness nor its phase; their states go to `ephemeralContainerStatuses`.
//! A real one is started when it first appears and reported as the supervisor sees it; one that
//! was running before sluice restarted is over (`Unknown`, 255), not started again. A simulated
//! one (its image has no local program) runs from when it appears.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::{
    PodPlan, Run,
    real::{self, RestartPolicy, Situation},
};
use crate::{kubelet::process::Observed, object::timestamp};

/// A pod's ephemeral containers as containers (the fields they share; `targetContainerName`
/// and the fields ephemeral containers may not have are dropped).
pub fn containers(pod: &Pod) -> Vec<Container> {
    pod.spec
        .iter()
        .flat_map(|s| s.ephemeral_containers.iter().flatten())
        .filter_map(|c| {
            let mut value = serde_json::to_value(c).ok()?;
            if let Some(fields) = value.as_object_mut() {
                fields.remove("targetContainerName");
            }
            serde_json::from_value(value).ok()
        })
        .collect()
}

/// The `ephemeralContainerStatuses` of `pod`, whose ephemeral containers are `containers`,
/// adding to `plan` the starts they need.
pub(super) fn statuses(
    pod: &Pod,
    containers: &[Container],
    runs: &dyn Fn(&Container) -> Run,
    name: &str,
    now: Timestamp,
    plan: &mut PodPlan,
    soonest: &mut dyn FnMut(Timestamp),
) -> Vec<Value> {
    let previous: Vec<Value> = pod
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.ephemeral_container_statuses).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    containers
        .iter()
        .map(|container| {
            let prev = previous
                .iter()
                .find(|s| s["name"] == container.name.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            match runs(container) {
                Run::Real(Observed::Absent) if !prev["state"]["running"].is_null() => {
                    let mut status = prev.clone();
                    let started = prev["state"]["running"]["startedAt"].clone();
                    status["state"] = json!({"terminated": {"exitCode": 255, "reason": "Unknown",
                        "startedAt": started, "finishedAt": timestamp(now),
                        "containerID": prev["containerID"]}});
                    status["ready"] = json!(false);
                    status
                }
                Run::Real(Observed::Absent) if !prev["state"]["terminated"].is_null() => prev,
                Run::Real(observed) => {
                    let situation = Situation {
                        prev: &prev,
                        observed: &observed,
                        policy: RestartPolicy::Never,
                        grace: std::time::Duration::ZERO,
                        pod: name,
                        now,
                    };
                    real::step(container, &situation, plan, soonest).status
                }
                Run::Simulated(_) => {
                    let image = container.image.clone().unwrap_or_default();
                    let started = prev["state"]["running"]["startedAt"]
                        .as_str()
                        .map_or_else(|| timestamp(now), str::to_owned);
                    json!({"name": container.name, "image": image,
                        "imageID": format!("sluice://simulated/{image}"), "restartCount": 0,
                        "ready": false, "state": {"running": {"startedAt": started}}})
                }
            }
        })
        .collect()
}
