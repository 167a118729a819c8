//! Columns of everything else kubectl prints specially: namespaces, nodes, events, config maps,
//! secrets, service accounts, volumes and their claims, storage and priority classes, quotas,
//! leases and role bindings. (Roles, cluster roles, limit ranges and CRDs have no printer in
//! Kubernetes: Name and Created At.)

use jiff::Timestamp;
use serde_json::Value;

use super::{Row, count, int, or_none, since, text};
use crate::registry::ResourceType;

pub(super) fn row(rt: &ResourceType, object: &Value, now: Timestamp) -> Option<Row> {
    let spec = &object["spec"];
    let status = &object["status"];
    let row = match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "namespaces") => Row::named(object)
            .cell("Status", "string", text(&status["phase"]))
            .age(object, now),
        ("", "nodes") => node(object, now),
        ("", "events") => event(object, now),
        ("events.k8s.io", "events") => event(&crate::events::from_events_v1(object), now),
        ("", "configmaps") => Row::named(object)
            .cell(
                "Data",
                "string",
                count(&object["data"]) + count(&object["binaryData"]),
            )
            .age(object, now),
        ("", "secrets") => Row::named(object)
            .cell("Type", "string", text(&object["type"]))
            .cell("Data", "string", count(&object["data"]))
            .age(object, now),
        ("", "serviceaccounts") => Row::named(object)
            .cell("Secrets", "string", count(&object["secrets"]))
            .age(object, now),
        ("", "persistentvolumeclaims") => {
            let bound = !spec["volumeName"].is_null();
            let class =
                object["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| text(&spec["storageClassName"]));
            Row::named(object)
                .cell("Status", "string", phase(object))
                .cell("Volume", "string", text(&spec["volumeName"]))
                .cell(
                    "Capacity",
                    "string",
                    if bound {
                        text(&status["capacity"]["storage"])
                    } else {
                        String::new()
                    },
                )
                .cell(
                    "Access Modes",
                    "string",
                    if bound {
                        access_modes(&status["accessModes"])
                    } else {
                        String::new()
                    },
                )
                .cell("StorageClass", "string", class)
                .cell(
                    "VolumeAttributesClass",
                    "string",
                    unset(&spec["volumeAttributesClassName"]),
                )
                .age(object, now)
                .wide("VolumeMode", "string", unset(&spec["volumeMode"]))
        }
        ("", "persistentvolumes") => {
            let claim = &spec["claimRef"];
            let claim = if claim.is_object() {
                format!("{}/{}", text(&claim["namespace"]), text(&claim["name"]))
            } else {
                String::new()
            };
            Row::named(object)
                .cell("Capacity", "string", text(&spec["capacity"]["storage"]))
                .cell("Access Modes", "string", access_modes(&spec["accessModes"]))
                .cell(
                    "Reclaim Policy",
                    "string",
                    text(&spec["persistentVolumeReclaimPolicy"]),
                )
                .cell("Status", "string", phase(object))
                .cell("Claim", "string", claim)
                .cell("StorageClass", "string", text(&spec["storageClassName"]))
                .cell(
                    "VolumeAttributesClass",
                    "string",
                    unset(&spec["volumeAttributesClassName"]),
                )
                .cell("Reason", "string", text(&status["reason"]))
                .age(object, now)
                .wide("VolumeMode", "string", unset(&spec["volumeMode"]))
        }
        ("storage.k8s.io", "storageclasses") => {
            let annotations = &object["metadata"]["annotations"];
            let default = [
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ]
            .iter()
            .any(|a| annotations[*a] == "true");
            let name = text(&object["metadata"]["name"]);
            let or =
                |field: &str, fallback: &str| object[field].as_str().unwrap_or(fallback).to_owned();
            Row::empty()
                .cell(
                    "Name",
                    "string",
                    if default {
                        format!("{name} (default)")
                    } else {
                        name
                    },
                )
                .cell("Provisioner", "string", text(&object["provisioner"]))
                .cell("ReclaimPolicy", "string", or("reclaimPolicy", "Delete"))
                .cell(
                    "VolumeBindingMode",
                    "string",
                    or("volumeBindingMode", "Immediate"),
                )
                .cell(
                    "AllowVolumeExpansion",
                    "string",
                    object["allowVolumeExpansion"].as_bool().unwrap_or(false),
                )
                .age(object, now)
        }
        ("scheduling.k8s.io", "priorityclasses") => Row::named(object)
            .cell("Value", "integer", int(&object["value"]))
            .cell(
                "Global-Default",
                "boolean",
                object["globalDefault"].as_bool().unwrap_or(false),
            )
            .age(object, now)
            .cell(
                "PreemptionPolicy",
                "string",
                text(&object["preemptionPolicy"]),
            ),
        ("", "resourcequotas") => {
            let (mut requests, mut limits) = (Vec::new(), Vec::new());
            let mut names: Vec<&String> = status["hard"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            names.sort();
            for name in names {
                let used = match &status["used"][name] {
                    Value::Null => "0".to_owned(),
                    v => text(v),
                };
                let shown = format!("{name}: {used}/{}", text(&status["hard"][name]));
                if name.split('.').next() == Some("limits") {
                    limits.push(shown);
                } else {
                    requests.push(shown);
                }
            }
            Row::named(object)
                .cell("Request", "string", requests.join(", "))
                .cell("Limit", "string", limits.join(", "))
                .age(object, now)
        }
        ("coordination.k8s.io", "leases") => Row::named(object)
            .cell("Holder", "string", text(&spec["holderIdentity"]))
            .age(object, now),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            let role = &object["roleRef"];
            let subjects = |kind: &str| {
                object["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["kind"] == kind)
                    .map(|s| match (kind, s["namespace"].as_str()) {
                        ("ServiceAccount", Some(ns)) => format!("{ns}/{}", text(&s["name"])),
                        _ => text(&s["name"]),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Row::named(object)
                .cell(
                    "Role",
                    "string",
                    format!("{}/{}", text(&role["kind"]), text(&role["name"])),
                )
                .age(object, now)
                .wide("Users", "string", subjects("User"))
                .wide("Groups", "string", subjects("Group"))
                .wide("ServiceAccounts", "string", subjects("ServiceAccount"))
        }
        _ => return None,
    };
    Some(row)
}

fn unset(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_owned(),
        None => "<unset>".to_owned(),
    }
}

/// A volume's or claim's phase, `Terminating` while it is being deleted.
fn phase(object: &Value) -> String {
    if object["metadata"]["deletionTimestamp"].is_null() {
        text(&object["status"]["phase"])
    } else {
        "Terminating".to_owned()
    }
}

/// `RWO,ROX,RWX,RWOP` as kubectl abbreviates access modes.
fn access_modes(modes: &Value) -> String {
    let held = |mode: &str| {
        modes
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x == mode))
    };
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| held(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn node(object: &Value, now: Timestamp) -> Row {
    let (spec, status) = (&object["spec"], &object["status"]);
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    let mut state = match ready.map(|c| c["status"].as_str().unwrap_or_default()) {
        Some("True") => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if spec["unschedulable"] == true {
        state.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = object["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    roles.sort();
    let address = |kind: &str| {
        status["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == kind)
            .map_or("<none>".to_owned(), |a| text(&a["address"]))
    };
    let info = &status["nodeInfo"];
    Row::named(object)
        .cell("Status", "string", state)
        .cell("Roles", "string", or_none(roles.join(",")))
        .age(object, now)
        .cell("Version", "string", text(&info["kubeletVersion"]))
        .wide("Internal-IP", "string", address("InternalIP"))
        .wide("External-IP", "string", address("ExternalIP"))
        .wide("OS-Image", "string", text(&info["osImage"]))
        .wide("Kernel-Version", "string", text(&info["kernelVersion"]))
        .wide(
            "Container-Runtime",
            "string",
            text(&info["containerRuntimeVersion"]),
        )
}

fn event(object: &Value, now: Timestamp) -> Row {
    let first = &object["firstTimestamp"];
    let last = if object["lastTimestamp"].is_string() {
        &object["lastTimestamp"]
    } else {
        &object["eventTime"]
    };
    let times = int(&object["count"]).max(int(&object["series"]["count"]));
    let last_seen = if times > 1 && first.is_string() {
        format!("{} (x{times} over {})", since(last, now), since(first, now))
    } else {
        since(last, now)
    };
    let involved = &object["involvedObject"];
    let source = &object["source"];
    let source = match (text(&source["component"]), text(&source["host"])) {
        (c, h) if h.is_empty() => c,
        (c, h) => format!("{c}, {h}"),
    };
    Row::empty()
        .cell("Last Seen", "string", last_seen)
        .cell("Type", "string", text(&object["type"]))
        .cell("Reason", "string", text(&object["reason"]))
        .cell(
            "Object",
            "string",
            format!(
                "{}/{}",
                text(&involved["kind"]).to_lowercase(),
                text(&involved["name"])
            ),
        )
        .wide("Subobject", "string", text(&involved["fieldPath"]))
        .wide("Source", "string", source)
        .cell("Message", "string", text(&object["message"]))
        .wide(
            "First Seen",
            "string",
            if first.is_string() {
                since(first, now)
            } else {
                String::new()
            },
        )
        .wide("Count", "string", times.max(1).to_string())
        .wide("Name", "string", text(&object["metadata"]["name"]))
}
