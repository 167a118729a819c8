//! `Table` responses for `kubectl get`: kubectl's own columns for the built-in kinds sluice
//! runs, a CRD's printer columns, and NAME/AGE for everything else. Rows carry the object's
//! metadata (`PartialObjectMetadata`), as the real server sends them.

use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// The `Content-Type` of a Table answer.
pub const CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Whether the client asked for a Table.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("as=Table") && accept.contains("g=meta.k8s.io"))
}

/// Kubernetes' short human duration (`45s`, `3m12s`, `5h`, `3d4h`, `2y10d`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        format!("{}y{}d", days / 365, days % 365)
    } else {
        format!("{}y", days / 365)
    }
}

fn age(value: &Value, field: &Value, now: Timestamp) -> String {
    let _ = value;
    match field.as_str().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn path<'a>(value: &'a Value, json_path: &str) -> &'a Value {
    json_path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
        .fold(value, |node, part| &node[part])
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

type Column = (String, String, i64);

fn cols(list: &[(&str, &str, i64)]) -> Vec<Column> {
    list.iter()
        .map(|(n, t, p)| ((*n).to_owned(), (*t).to_owned(), *p))
        .collect()
}

fn containers_and_images(template_spec: &Value) -> (String, String) {
    let containers = template_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = containers.iter().map(|c| text(&c["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| text(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn selector(value: &Value) -> String {
    let labels = value["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    or_none(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".into();
    }
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for s in &statuses {
        if let Some(reason) = s["state"]["waiting"]["reason"].as_str() {
            return reason.into();
        }
        if let Some(reason) = s["state"]["terminated"]["reason"].as_str() {
            return reason.into();
        }
    }
    or_none(text(&pod["status"]["phase"]))
}

/// Columns and cells for one kind.
fn columns(rt: &ResourceType, object: &Value, now: Timestamp) -> (Vec<Column>, Vec<Value>) {
    let name = json!(text(&object["metadata"]["name"]));
    let created = &object["metadata"]["creationTimestamp"];
    let age_cell = json!(age(object, created, now));
    let spec = &object["spec"];
    let status = &object["status"];
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => {
            let statuses = status["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: i64 = statuses.iter().map(|s| int(&s["restartCount"])).sum();
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Ready", "string", 0),
                    ("Status", "string", 0),
                    ("Restarts", "string", 0),
                    ("Age", "string", 0),
                    ("IP", "string", 1),
                    ("Node", "string", 1),
                    ("Nominated Node", "string", 1),
                    ("Readiness Gates", "string", 1),
                ]),
                vec![
                    name,
                    json!(format!("{ready}/{total}")),
                    json!(pod_status(object)),
                    json!(restarts.to_string()),
                    age_cell,
                    json!(or_none(text(&status["podIP"]))),
                    json!(or_none(text(&spec["nodeName"]))),
                    json!("<none>"),
                    json!("<none>"),
                ],
            )
        }
        ("apps", "deployments") => {
            let (containers, images) = containers_and_images(&spec["template"]["spec"]);
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Ready", "string", 0),
                    ("Up-to-date", "string", 0),
                    ("Available", "string", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                    ("Selector", "string", 1),
                ]),
                vec![
                    name,
                    json!(format!(
                        "{}/{}",
                        int(&status["readyReplicas"]),
                        int(&spec["replicas"])
                    )),
                    json!(int(&status["updatedReplicas"])),
                    json!(int(&status["availableReplicas"])),
                    age_cell,
                    json!(containers),
                    json!(images),
                    json!(selector(&spec["selector"])),
                ],
            )
        }
        ("apps", "replicasets") => {
            let (containers, images) = containers_and_images(&spec["template"]["spec"]);
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Desired", "integer", 0),
                    ("Current", "integer", 0),
                    ("Ready", "integer", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                    ("Selector", "string", 1),
                ]),
                vec![
                    name,
                    json!(int(&spec["replicas"])),
                    json!(int(&status["replicas"])),
                    json!(int(&status["readyReplicas"])),
                    age_cell,
                    json!(containers),
                    json!(images),
                    json!(selector(&spec["selector"])),
                ],
            )
        }
        ("", "services") => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{}/{}",
                        int(&p["port"]),
                        text(&p["protocol"]).chars().collect::<String>()
                    )
                })
                .collect();
            let selector = spec["selector"]
                .as_object()
                .map(|s| {
                    s.iter()
                        .map(|(k, v)| format!("{k}={}", text(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Type", "string", 0),
                    ("Cluster-IP", "string", 0),
                    ("External-IP", "string", 0),
                    ("Port(s)", "string", 0),
                    ("Age", "string", 0),
                    ("Selector", "string", 1),
                ]),
                vec![
                    name,
                    json!(text(&spec["type"])),
                    json!(text(&spec["clusterIP"])),
                    json!("<none>"),
                    json!(or_none(ports.join(","))),
                    age_cell,
                    json!(or_none(selector)),
                ],
            )
        }
        ("", "endpoints") => {
            let mut endpoints = Vec::new();
            for subset in object["subsets"].as_array().into_iter().flatten() {
                for address in subset["addresses"].as_array().into_iter().flatten() {
                    for port in subset["ports"].as_array().into_iter().flatten() {
                        endpoints.push(format!("{}:{}", text(&address["ip"]), int(&port["port"])));
                    }
                }
            }
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Endpoints", "string", 0),
                    ("Age", "string", 0),
                ]),
                vec![name, json!(or_none(endpoints.join(","))), age_cell],
            )
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = object["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| int(&p["port"]).to_string())
                .collect();
            let addresses: Vec<String> = object["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["addresses"][0].as_str().map(str::to_owned))
                .collect();
            (
                cols(&[
                    ("Name", "string", 0),
                    ("AddressType", "string", 0),
                    ("Ports", "string", 0),
                    ("Endpoints", "string", 0),
                    ("Age", "string", 0),
                ]),
                vec![
                    name,
                    json!(text(&object["addressType"])),
                    json!(or_none(ports.join(","))),
                    json!(or_none(addresses.join(","))),
                    age_cell,
                ],
            )
        }
        ("", "namespaces") => (
            cols(&[
                ("Name", "string", 0),
                ("Status", "string", 0),
                ("Age", "string", 0),
            ]),
            vec![name, json!(text(&status["phase"])), age_cell],
        ),
        ("", "nodes") => {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Status", "string", 0),
                    ("Roles", "string", 0),
                    ("Age", "string", 0),
                    ("Version", "string", 0),
                ]),
                vec![
                    name,
                    json!(if ready { "Ready" } else { "NotReady" }),
                    json!("control-plane"),
                    age_cell,
                    json!(text(&status["nodeInfo"]["kubeletVersion"])),
                ],
            )
        }
        ("batch", "jobs") => {
            let done = |t: &str| {
                status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            let state = if done("Complete") {
                "Complete"
            } else if done("Failed") {
                "Failed"
            } else {
                "Running"
            };
            let duration = match (
                status["startTime"].as_str(),
                status["completionTime"].as_str(),
            ) {
                (Some(start), end) => {
                    let start: Option<Timestamp> = start.parse().ok();
                    let end: Timestamp = end.and_then(|e| e.parse().ok()).unwrap_or(now);
                    start
                        .map(|s| human_duration(end.duration_since(s).as_secs()))
                        .unwrap_or_default()
                }
                _ => String::new(),
            };
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Status", "string", 0),
                    ("Completions", "string", 0),
                    ("Duration", "string", 0),
                    ("Age", "string", 0),
                ]),
                vec![
                    name,
                    json!(state),
                    json!(format!(
                        "{}/{}",
                        int(&status["succeeded"]),
                        spec["completions"].as_i64().unwrap_or(1)
                    )),
                    json!(duration),
                    age_cell,
                ],
            )
        }
        ("networking.k8s.io", "ingresses") => {
            let hosts: Vec<String> = spec["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["host"].as_str().map(str::to_owned))
                .collect();
            let address: Vec<String> = status["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(str::to_owned)
                })
                .collect();
            (
                cols(&[
                    ("Name", "string", 0),
                    ("Class", "string", 0),
                    ("Hosts", "string", 0),
                    ("Address", "string", 0),
                    ("Ports", "string", 0),
                    ("Age", "string", 0),
                ]),
                vec![
                    name,
                    json!(or_none(text(&spec["ingressClassName"]))),
                    json!(if hosts.is_empty() {
                        "*".to_owned()
                    } else {
                        hosts.join(",")
                    }),
                    json!(address.join(",")),
                    json!(if spec["tls"].is_array() {
                        "80, 443"
                    } else {
                        "80"
                    }),
                    age_cell,
                ],
            )
        }
        ("", "events") => {
            let last = if object["lastTimestamp"].is_string() {
                &object["lastTimestamp"]
            } else {
                &object["eventTime"]
            };
            let involved = &object["involvedObject"];
            (
                cols(&[
                    ("Last Seen", "string", 0),
                    ("Type", "string", 0),
                    ("Reason", "string", 0),
                    ("Object", "string", 0),
                    ("Message", "string", 0),
                ]),
                vec![
                    json!(age(object, last, now)),
                    json!(text(&object["type"])),
                    json!(text(&object["reason"])),
                    json!(format!(
                        "{}/{}",
                        text(&involved["kind"]).to_lowercase(),
                        text(&involved["name"])
                    )),
                    json!(text(&object["message"])),
                ],
            )
        }
        _ => {
            let mut definitions: Vec<Column> = cols(&[("Name", "string", 0)]);
            let mut cells = vec![name];
            let mut has_age = false;
            for column in &rt.columns {
                let value = path(object, &column.json_path);
                let cell = if column.type_ == "date" {
                    json!(age(object, value, now))
                } else {
                    value.clone()
                };
                has_age |= column.json_path == ".metadata.creationTimestamp";
                let type_ = if column.type_ == "date" {
                    "string".to_owned()
                } else {
                    column.type_.clone()
                };
                definitions.push((column.name.clone(), type_, column.priority));
                cells.push(cell);
            }
            if !has_age {
                definitions.push(("Age".into(), "string".into(), 0));
                cells.push(age_cell);
            }
            (definitions, cells)
        }
    }
}

/// A Table of `objects` (all of kind `rt`), with or without column definitions.
pub fn render(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: Option<String>,
    with_definitions: bool,
    now: Timestamp,
) -> Value {
    let mut definitions = Vec::new();
    let mut rows = Vec::new();
    for object in objects {
        let (columns, cells) = columns(rt, object, now);
        if definitions.is_empty() {
            definitions = columns;
        }
        let metadata = &object["metadata"];
        rows.push(json!({
            "cells": cells,
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata},
        }));
    }
    if definitions.is_empty() {
        definitions = columns(rt, &json!({"metadata": {}}), now).0;
    }
    let column_definitions: Vec<Value> = definitions
        .iter()
        .map(|(name, type_, priority)| json!({"name": name, "type": type_, "format": if name == "Name" { "name" } else { "" }, "description": "", "priority": priority}))
        .collect();
    let mut table =
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "rows": rows});
    if with_definitions {
        table["columnDefinitions"] = json!(column_definitions);
    }
    if let Some(rv) = resource_version {
        table["metadata"]["resourceVersion"] = json!(rv);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (9 * 3600, "9h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (800 * 86400, "2y70d"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected);
        }
    }
}
