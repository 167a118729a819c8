//! Resource health as Argo CD assesses it (research §2.7): Go checks for the built-in kinds,
//! and the Lua checks Argo CD ships for Argo's own kinds — a Rollout's phase surfaced verbatim
//! with `Paused` as `Suspended`, an AnalysisRun's phase mapped. Kinds without a check have no
//! health and never make an Application unhealthy.

use serde_json::Value;

pub use sluice_api::HealthCode;

/// A resource's health and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The code.
    pub code: HealthCode,
    /// Argo CD's message (may be empty).
    pub message: String,
}

fn health(code: HealthCode, message: impl Into<String>) -> Option<Health> {
    Some(Health {
        code,
        message: message.into(),
    })
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or_default()
}

/// The argocd-cm key whose presence opts child Applications into health (Argo CD's
/// documented Lua check; Applications have no health by default since Argo CD 1.8).
pub const APPLICATION_HEALTH_KEY: &str = "resource.customizations.health.argoproj.io_Application";

/// [`assess`], with a child Application assessed by its own `status.health` (Progressing
/// until it has one) when `applications` is on.
pub fn assess_with(object: &Value, applications: bool) -> Option<Health> {
    let group = crate::tracking::group_of(object["apiVersion"].as_str().unwrap_or_default());
    if applications && group == "argoproj.io" && object["kind"] == "Application" {
        let status = &object["status"]["health"];
        let code = status["status"]
            .as_str()
            .and_then(HealthCode::parse)
            .unwrap_or(HealthCode::Progressing);
        return health(code, status["message"].as_str().unwrap_or_default());
    }
    assess(object)
}

/// The health of a live object, or `None` for kinds without a check.
pub fn assess(object: &Value) -> Option<Health> {
    if object["metadata"]["deletionTimestamp"].is_string() {
        return health(HealthCode::Progressing, "Pending deletion");
    }
    let group = crate::tracking::group_of(object["apiVersion"].as_str().unwrap_or_default());
    match (group, object["kind"].as_str().unwrap_or_default()) {
        ("apps" | "extensions", "Deployment") => deployment(object),
        ("apps" | "extensions", "ReplicaSet" | "DaemonSet") => replica_set(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("", "Pod") => pod(object),
        ("", "Service") => service(object),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(object),
        ("batch", "Job") => job(object),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(object),
        ("argoproj.io", "Rollout") => rollout(object),
        ("argoproj.io", "AnalysisRun") => analysis_run(object),
        ("argoproj.io", "Experiment") => experiment(object),
        _ => None,
    }
}

fn generation_pending(object: &Value) -> bool {
    int(&object["metadata"]["generation"]) > int(&object["status"]["observedGeneration"])
}

fn deployment(d: &Value) -> Option<Health> {
    let (spec, status) = (&d["spec"], &d["status"]);
    if spec["paused"].as_bool() == Some(true) {
        return health(HealthCode::Suspended, "Deployment is paused");
    }
    if generation_pending(d) {
        return health(
            HealthCode::Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    let deadline = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    if deadline {
        return health(
            HealthCode::Degraded,
            format!(
                "Deployment {:?} exceeded its progress deadline",
                d["metadata"]["name"].as_str().unwrap_or_default()
            ),
        );
    }
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let updated = int(&status["updatedReplicas"]);
    let total = int(&status["replicas"]);
    let available = int(&status["availableReplicas"]);
    if updated < replicas {
        return health(
            HealthCode::Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated..."
            ),
        );
    }
    if total > updated {
        return health(
            HealthCode::Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                total - updated
            ),
        );
    }
    if available < updated {
        return health(
            HealthCode::Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        );
    }
    health(HealthCode::Healthy, "")
}

fn replica_set(rs: &Value) -> Option<Health> {
    if generation_pending(rs) {
        return health(
            HealthCode::Progressing,
            "Waiting for rollout to finish: observed generation less than desired generation",
        );
    }
    let status = &rs["status"];
    if rs["kind"] == "DaemonSet" {
        let desired = int(&status["desiredNumberScheduled"]);
        let available = int(&status["numberAvailable"]);
        if int(&status["updatedNumberScheduled"]) < desired || available < desired {
            return health(
                HealthCode::Progressing,
                format!(
                    "Waiting for daemon set rollout to finish: {available} of {desired} updated pods are available..."
                ),
            );
        }
        return health(HealthCode::Healthy, "");
    }
    let replicas = rs["spec"]["replicas"].as_i64().unwrap_or(1);
    let available = int(&status["availableReplicas"]);
    if available < replicas {
        return health(
            HealthCode::Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {replicas} new replicas are available..."
            ),
        );
    }
    health(HealthCode::Healthy, "")
}

fn stateful_set(sts: &Value) -> Option<Health> {
    let status = &sts["status"];
    if int(&status["observedGeneration"]) == 0 || generation_pending(sts) {
        return health(
            HealthCode::Progressing,
            "Waiting for statefulset spec update to be observed...",
        );
    }
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = int(&status["readyReplicas"]);
    if ready < replicas {
        return health(
            HealthCode::Progressing,
            format!("Waiting for {} pods to be ready...", replicas - ready),
        );
    }
    let strategy = &sts["spec"]["updateStrategy"];
    if strategy["type"] == "OnDelete" {
        return health(HealthCode::Healthy, "");
    }
    if strategy["rollingUpdate"].is_object() {
        let partition = int(&strategy["rollingUpdate"]["partition"]);
        if int(&status["updatedReplicas"]) < replicas - partition {
            return health(
                HealthCode::Progressing,
                "Waiting for partitioned roll out to finish...",
            );
        }
        return health(HealthCode::Healthy, "");
    }
    if status["updateRevision"] != status["currentRevision"] {
        return health(
            HealthCode::Progressing,
            "waiting for statefulset rolling update to complete",
        );
    }
    health(HealthCode::Healthy, "")
}

fn pod(p: &Value) -> Option<Health> {
    let status = &p["status"];
    let always = p["spec"]["restartPolicy"]
        .as_str()
        .is_none_or(|r| r == "Always");
    let waiting_error = status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| {
            let reason = c["state"]["waiting"]["reason"].as_str()?;
            (reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff"))
                .then(|| {
                    c["state"]["waiting"]["message"]
                        .as_str()
                        .unwrap_or(reason)
                        .to_owned()
                })
        });
    if always && let Some(message) = waiting_error {
        return health(HealthCode::Degraded, message);
    }
    match status["phase"].as_str().unwrap_or_default() {
        "Pending" => health(
            HealthCode::Progressing,
            status["message"].as_str().unwrap_or_default(),
        ),
        "Succeeded" => health(
            HealthCode::Healthy,
            status["message"].as_str().unwrap_or_default(),
        ),
        "Failed" => health(
            HealthCode::Degraded,
            status["message"].as_str().unwrap_or("pod failed"),
        ),
        "Running" if always => {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready {
                return health(HealthCode::Healthy, "");
            }
            let restarted = status["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["lastState"]["terminated"].is_object());
            if restarted {
                return health(HealthCode::Degraded, "container restarted and is not ready");
            }
            health(HealthCode::Progressing, "")
        }
        "Running" => health(HealthCode::Progressing, ""),
        _ => health(
            HealthCode::Unknown,
            status["message"].as_str().unwrap_or_default(),
        ),
    }
}

fn has_load_balancer(object: &Value) -> bool {
    object["status"]["loadBalancer"]["ingress"]
        .as_array()
        .is_some_and(|i| !i.is_empty())
}

fn service(s: &Value) -> Option<Health> {
    if s["spec"]["type"] == "LoadBalancer" && !has_load_balancer(s) {
        return health(HealthCode::Progressing, "");
    }
    health(HealthCode::Healthy, "")
}

fn ingress(i: &Value) -> Option<Health> {
    if has_load_balancer(i) {
        health(HealthCode::Healthy, "")
    } else {
        health(HealthCode::Progressing, "")
    }
}

fn pvc(p: &Value) -> Option<Health> {
    match p["status"]["phase"].as_str().unwrap_or_default() {
        "Bound" => health(HealthCode::Healthy, ""),
        "Pending" => health(HealthCode::Progressing, ""),
        "Lost" => health(HealthCode::Degraded, ""),
        _ => health(HealthCode::Unknown, ""),
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

fn job(j: &Value) -> Option<Health> {
    if let Some(c) = condition(j, "Failed") {
        return health(
            HealthCode::Degraded,
            c["message"].as_str().unwrap_or_default(),
        );
    }
    if let Some(c) = condition(j, "Suspended") {
        return health(
            HealthCode::Suspended,
            c["message"].as_str().unwrap_or_default(),
        );
    }
    if let Some(c) = condition(j, "Complete") {
        return health(
            HealthCode::Healthy,
            c["message"].as_str().unwrap_or_default(),
        );
    }
    health(HealthCode::Progressing, "")
}

fn hpa(h: &Value) -> Option<Health> {
    let failing = h["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            c["status"] == "False"
                && matches!(c["type"].as_str(), Some("AbleToScale" | "ScalingActive"))
        });
    match failing {
        Some(c) => health(
            HealthCode::Degraded,
            c["message"].as_str().unwrap_or_default(),
        ),
        None => health(HealthCode::Healthy, ""),
    }
}

/// Argo CD's built-in Lua check for Rollouts (v1.0+ surface their phase).
fn rollout(r: &Value) -> Option<Health> {
    let status = &r["status"];
    let waiting = "Waiting for rollout spec update to be observed";
    if !status.is_object() {
        return health(HealthCode::Progressing, waiting);
    }
    if let Some(observed) = status["observedGeneration"]
        .as_str()
        .and_then(|g| g.parse::<i64>().ok())
        && observed != int(&r["metadata"]["generation"])
    {
        return health(HealthCode::Progressing, waiting);
    }
    if r["spec"]["workloadRef"].is_object() {
        let annotation = &r["metadata"]["annotations"]["rollout.argoproj.io/workload-generation"];
        if annotation.as_str() != status["workloadObservedGeneration"].as_str() {
            return health(HealthCode::Progressing, waiting);
        }
    }
    let message = status["message"].as_str().unwrap_or_default();
    match status["phase"].as_str() {
        Some("Healthy") => health(HealthCode::Healthy, message),
        Some("Paused") => health(HealthCode::Suspended, message),
        Some("Degraded") => health(HealthCode::Degraded, message),
        Some("Progressing") => health(HealthCode::Progressing, message),
        Some(_) => health(HealthCode::Unknown, message),
        None => health(HealthCode::Progressing, "Waiting for rollout to finish"),
    }
}

fn analysis_run(a: &Value) -> Option<Health> {
    let message = a["status"]["message"].as_str().unwrap_or_default();
    match a["status"]["phase"].as_str().unwrap_or_default() {
        "Successful" => health(HealthCode::Healthy, message),
        "Failed" | "Error" => health(HealthCode::Degraded, message),
        "Inconclusive" => health(HealthCode::Unknown, message),
        _ => health(HealthCode::Progressing, message),
    }
}

fn experiment(e: &Value) -> Option<Health> {
    let message = e["status"]["message"].as_str().unwrap_or_default();
    match e["status"]["phase"].as_str().unwrap_or_default() {
        "Successful" => health(HealthCode::Healthy, message),
        "Failed" | "Error" => health(HealthCode::Degraded, message),
        "Inconclusive" => health(HealthCode::Unknown, message),
        _ => health(HealthCode::Progressing, message),
    }
}

#[cfg(test)]
mod tests;
