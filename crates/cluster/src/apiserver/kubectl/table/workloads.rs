//! Columns of pods and what runs them: Deployments, ReplicaSets, ReplicationControllers,
//! StatefulSets, DaemonSets, Jobs, CronJobs, HorizontalPodAutoscalers, PodDisruptionBudgets,
//! PodTemplates and ControllerRevisions.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Row, count, int, label_selector, labels, or_none, since, text};
use crate::registry::ResourceType;

pub(super) fn row(rt: &ResourceType, object: &Value, now: Timestamp) -> Option<Row> {
    let spec = &object["spec"];
    let status = &object["status"];
    let row = match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => pod(object, now),
        ("apps", "deployments") => Row::named(object)
            .cell("Ready", "string", ready_of(object))
            .cell("Up-to-date", "integer", int(&status["updatedReplicas"]))
            .cell("Available", "integer", int(&status["availableReplicas"]))
            .age(object, now)
            .template(&spec["template"]["spec"])
            .wide("Selector", "string", label_selector(&spec["selector"])),
        ("apps", "replicasets") => {
            replicas(object, now).wide("Selector", "string", label_selector(&spec["selector"]))
        }
        ("", "replicationcontrollers") => {
            replicas(object, now).wide("Selector", "string", labels(&spec["selector"]))
        }
        ("apps", "statefulsets") => Row::named(object)
            .cell("Ready", "string", ready_of(object))
            .age(object, now)
            .template(&spec["template"]["spec"]),
        ("apps", "daemonsets") => Row::named(object)
            .cell("Desired", "integer", int(&status["desiredNumberScheduled"]))
            .cell("Current", "integer", int(&status["currentNumberScheduled"]))
            .cell("Ready", "integer", int(&status["numberReady"]))
            .cell(
                "Up-to-date",
                "integer",
                int(&status["updatedNumberScheduled"]),
            )
            .cell("Available", "integer", int(&status["numberAvailable"]))
            .cell(
                "Node Selector",
                "string",
                labels(&spec["template"]["spec"]["nodeSelector"]),
            )
            .age(object, now)
            .template(&spec["template"]["spec"])
            .wide("Selector", "string", label_selector(&spec["selector"])),
        ("batch", "jobs") => job(object, now),
        ("batch", "cronjobs") => {
            let job = &spec["jobTemplate"]["spec"];
            let suspend = match spec["suspend"].as_bool() {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let last = &status["lastScheduleTime"];
            Row::named(object)
                .cell("Schedule", "string", text(&spec["schedule"]))
                .cell("Timezone", "string", or_none(text(&spec["timeZone"])))
                .cell("Suspend", "boolean", suspend)
                .cell("Active", "integer", count(&status["active"]))
                .cell(
                    "Last Schedule",
                    "string",
                    if last.is_null() {
                        "<none>".to_owned()
                    } else {
                        since(last, now)
                    },
                )
                .age(object, now)
                .template(&job["template"]["spec"])
                .wide("Selector", "string", label_selector(&job["selector"]))
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            let target = &spec["scaleTargetRef"];
            let min = spec["minReplicas"]
                .as_i64()
                .map_or("<unset>".to_owned(), |m| m.to_string());
            Row::named(object)
                .cell(
                    "Reference",
                    "string",
                    format!("{}/{}", text(&target["kind"]), text(&target["name"])),
                )
                .cell("Targets", "string", hpa_targets(spec, status))
                .cell("MinPods", "string", min)
                .cell("MaxPods", "string", int(&spec["maxReplicas"]))
                .cell("Replicas", "string", int(&status["currentReplicas"]))
                .age(object, now)
        }
        ("policy", "poddisruptionbudgets") => {
            let bound = |field: &str| match &spec[field] {
                Value::Null => "N/A".to_owned(),
                other => text(other),
            };
            Row::named(object)
                .cell("Min Available", "string", bound("minAvailable"))
                .cell("Max Unavailable", "string", bound("maxUnavailable"))
                .cell(
                    "Allowed Disruptions",
                    "integer",
                    int(&status["disruptionsAllowed"]),
                )
                .age(object, now)
        }
        ("", "podtemplates") => {
            let (containers, images) = super::containers_and_images(&object["template"]["spec"]);
            Row::named(object)
                .cell("Containers", "string", containers)
                .cell("Images", "string", images)
                .cell(
                    "Pod Labels",
                    "string",
                    labels(&object["template"]["metadata"]["labels"]),
                )
        }
        ("apps", "controllerrevisions") => {
            let owner = object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["controller"] == true);
            let controller = owner.map_or("<none>".to_owned(), |o| {
                let api_version = text(&o["apiVersion"]);
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let kind = text(&o["kind"]).to_lowercase();
                let kind = if group.is_empty() {
                    kind
                } else {
                    format!("{kind}.{group}")
                };
                format!("{kind}/{}", text(&o["name"]))
            });
            Row::named(object)
                .cell("Controller", "string", controller)
                .cell("Revision", "string", int(&object["revision"]))
                .age(object, now)
        }
        _ => return None,
    };
    Some(row)
}

/// `ready/desired` replicas (Deployments, StatefulSets).
fn ready_of(object: &Value) -> String {
    let (spec, status) = (&object["spec"], &object["status"]);
    format!(
        "{}/{}",
        int(&status["readyReplicas"]),
        int(&spec["replicas"])
    )
}

/// ReplicaSets and ReplicationControllers, but for the Selector column.
fn replicas(object: &Value, now: Timestamp) -> Row {
    let (spec, status) = (&object["spec"], &object["status"]);
    Row::named(object)
        .cell("Desired", "integer", int(&spec["replicas"]))
        .cell("Current", "integer", int(&status["replicas"]))
        .cell("Ready", "integer", int(&status["readyReplicas"]))
        .age(object, now)
        .template(&spec["template"]["spec"])
}

fn condition(status: &Value, kind: &str) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn job(object: &Value, now: Timestamp) -> Row {
    let (spec, status) = (&object["spec"], &object["status"]);
    let state = if condition(status, "Complete") {
        "Complete"
    } else if condition(status, "Failed") {
        "Failed"
    } else if !object["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if condition(status, "Suspended") {
        "Suspended"
    } else if condition(status, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let succeeded = int(&status["succeeded"]);
    let completions = match spec["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None if int(&spec["parallelism"]) > 1 => {
            format!("{succeeded}/1 of {}", int(&spec["parallelism"]))
        }
        None => format!("{succeeded}/1"),
    };
    let start: Option<Timestamp> = status["startTime"].as_str().and_then(|t| t.parse().ok());
    let duration = start.map_or(String::new(), |start| {
        let end: Timestamp = status["completionTime"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        super::human_duration(end.duration_since(start).as_secs())
    });
    Row::named(object)
        .cell("Status", "string", state)
        .cell("Completions", "string", completions)
        .cell("Duration", "string", duration)
        .age(object, now)
        .template(&spec["template"]["spec"])
        .wide("Selector", "string", label_selector(&spec["selector"]))
}

/// `formatHPAMetrics`: each metric's current value over its target, paired with the status by
/// index, at most two then `+ N more...`.
fn hpa_targets(spec: &Value, status: &Value) -> String {
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    if metrics.is_empty() {
        return "<none>".into();
    }
    let current = status["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown: Vec<String> = metrics
        .iter()
        .enumerate()
        .map(|(i, metric)| {
            let now = current.get(i).cloned().unwrap_or(Value::Null);
            let kind = text(&metric["type"]);
            let source = match kind.as_str() {
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                "Pods" => "pods",
                "Object" => "object",
                "External" => "external",
                _ => return "<unknown type>".to_owned(),
            };
            let target = &metric[source]["target"];
            let observed = &now[source]["current"];
            let value = |v: &Value| {
                if v.is_null() {
                    "<unknown>".to_owned()
                } else {
                    text(v)
                }
            };
            match source {
                "resource" | "containerResource" => {
                    let name = text(&metric[source]["name"]);
                    if target["averageUtilization"].is_null() && !target["averageValue"].is_null() {
                        format!(
                            "{name}: {}/{}",
                            value(&observed["averageValue"]),
                            text(&target["averageValue"])
                        )
                    } else {
                        let goal = match &target["averageUtilization"] {
                            Value::Null => "<auto>".to_owned(),
                            v => format!("{}%", text(v)),
                        };
                        let seen = match &observed["averageUtilization"] {
                            Value::Null => "<unknown>".to_owned(),
                            v => format!("{}%", text(v)),
                        };
                        format!("{name}: {seen}/{goal}")
                    }
                }
                "pods" => format!(
                    "{}/{}",
                    value(&observed["averageValue"]),
                    text(&target["averageValue"])
                ),
                _ if !target["averageValue"].is_null() => format!(
                    "{}/{} (avg)",
                    value(&observed["averageValue"]),
                    text(&target["averageValue"])
                ),
                _ => format!("{}/{}", value(&observed["value"]), text(&target["value"])),
            }
        })
        .collect();
    let mut text = shown.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
    if shown.len() > 2 {
        text.push_str(&format!(" + {} more...", shown.len() - 2));
    }
    text
}

/// kubectl's pod STATUS: the reason, the first unfinished init container, else the containers
/// from last to first, `Terminating` while being deleted.
fn pod_status(pod: &Value) -> (String, usize, i64, Option<String>) {
    let status = &pod["status"];
    let mut reason = status["reason"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| text(&status["phase"]));
    let gated = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".into();
    }
    let mut restarts = 0;
    let mut last_restart: Option<String> = None;
    let mut note = |s: &Value| {
        restarts += int(&s["restartCount"]);
        if let Some(t) = s["lastState"]["terminated"]["finishedAt"].as_str()
            && last_restart.as_deref().is_none_or(|l| l < t)
        {
            last_restart = Some(t.to_owned());
        }
    };
    let init_total = pod["spec"]["initContainers"].as_array().map_or(0, Vec::len);
    let mut initializing = false;
    let inits = status["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, s) in inits.iter().enumerate() {
        note(s);
        let terminated = &s["state"]["terminated"];
        if terminated["exitCode"] == 0 && !terminated.is_null() {
            continue;
        }
        if s["started"] == true {
            continue;
        }
        reason = if !terminated.is_null() {
            match terminated["reason"].as_str() {
                Some(r) => format!("Init:{r}"),
                None if int(&terminated["signal"]) != 0 => {
                    format!("Init:Signal:{}", int(&terminated["signal"]))
                }
                None => format!("Init:ExitCode:{}", int(&terminated["exitCode"])),
            }
        } else if let Some(r) = s["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        initializing = true;
        break;
    }
    let containers = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ready = 0;
    if !initializing {
        let mut running = false;
        for s in containers.iter().rev() {
            note(s);
            let state = &s["state"];
            if let Some(r) = state["waiting"]["reason"].as_str() {
                reason = r.into();
            } else if let Some(r) = state["terminated"]["reason"].as_str() {
                reason = r.into();
            } else if !state["terminated"].is_null() {
                let signal = int(&state["terminated"]["signal"]);
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int(&state["terminated"]["exitCode"]))
                };
            } else if s["ready"] == true && !state["running"].is_null() {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && running {
            reason = if condition(status, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        if status["reason"] == "NodeLost" {
            reason = "Unknown".into();
        } else if !matches!(text(&status["phase"]).as_str(), "Succeeded" | "Failed") {
            reason = "Terminating".into();
        }
    }
    (or_none(reason), ready, restarts, last_restart)
}

fn pod(object: &Value, now: Timestamp) -> Row {
    let (spec, status) = (&object["spec"], &object["status"]);
    let total = spec["containers"].as_array().map_or(0, Vec::len);
    let (reason, ready, restarts, last) = pod_status(object);
    let restarts = match last {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", since(&json!(t), now)),
        _ => restarts.to_string(),
    };
    let ip = status["podIPs"][0]["ip"]
        .as_str()
        .or(status["podIP"].as_str())
        .unwrap_or_default();
    let gates = spec["readinessGates"]
        .as_array()
        .map_or(String::new(), |gates| {
            let ok = gates
                .iter()
                .filter(|g| condition(status, g["conditionType"].as_str().unwrap_or_default()))
                .count();
            format!("{ok}/{}", gates.len())
        });
    Row::named(object)
        .cell("Ready", "string", format!("{ready}/{total}"))
        .cell("Status", "string", reason)
        .cell("Restarts", "string", restarts)
        .age(object, now)
        .wide("IP", "string", or_none(ip.to_owned()))
        .wide("Node", "string", or_none(text(&spec["nodeName"])))
        .wide(
            "Nominated Node",
            "string",
            or_none(text(&status["nominatedNodeName"])),
        )
        .wide("Readiness Gates", "string", or_none(gates))
}
