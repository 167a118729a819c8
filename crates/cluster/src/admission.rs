//! What the API server does per kind on create and update, beyond generic metadata: defaults a
//! real cluster applies, Service cluster IPs, pod scheduling to the one node, namespace
//! lifecycle, and CustomResourceDefinition acceptance.

use std::{collections::BTreeSet, net::Ipv4Addr};

use jiff::Timestamp;

use serde_json::{Map, Value, json};

use crate::{
    apiserver::{ApiError, ApiResult},
    object::{NAMESPACE_FINALIZER, meta_str},
    registry::{self, ResourceType},
    store::{ResourceKey, Txn},
};

/// The node every pod is scheduled to.
pub const NODE_NAME: &str = "sluice-local";

/// First and last Service cluster IP (127.2.0.0/16; DESIGN §7).
const SERVICE_IPS: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(127, 2, 0, 1), Ipv4Addr::new(127, 2, 255, 254));

fn is(rt: &ResourceType, group: &str, resource: &str) -> bool {
    rt.group == group && rt.resource == resource
}

/// Applies per-kind defaults and assignments to a new object.
///
/// # Errors
/// 422 for an invalid CRD or a requested cluster IP that is taken or out of range.
pub fn on_create(
    txn: &Txn<'_>,
    rt: &ResourceType,
    object: &mut Value,
    now: Timestamp,
) -> ApiResult<()> {
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => {
            if object["spec"]["nodeName"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                object["spec"]["nodeName"] = json!(NODE_NAME);
            }
            default(&mut object["spec"], "restartPolicy", json!("Always"));
            default(
                &mut object["spec"],
                "terminationGracePeriodSeconds",
                json!(30),
            );
            default(
                &mut object["spec"],
                "schedulerName",
                json!("default-scheduler"),
            );
            object["status"] = json!({"phase": "Pending"});
        }
        ("", "services") => assign_cluster_ip(txn, rt, object)?,
        ("", "secrets") => default(object, "type", json!("Opaque")),
        ("", "namespaces") => {
            object["spec"]["finalizers"] = json!([NAMESPACE_FINALIZER]);
            object["status"] = json!({"phase": "Active"});
        }
        ("apps", "deployments") => {
            default(&mut object["spec"], "replicas", json!(1));
            default(&mut object["spec"], "revisionHistoryLimit", json!(10));
            default(&mut object["spec"], "progressDeadlineSeconds", json!(600));
            default(
                &mut object["spec"],
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
        }
        ("apps", "replicasets") => default(&mut object["spec"], "replicas", json!(1)),
        ("batch", "jobs") => {
            default(&mut object["spec"], "completions", json!(1));
            default(&mut object["spec"], "parallelism", json!(1));
            default(&mut object["spec"], "backoffLimit", json!(6));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => accept_crd(rt, object, now)?,
        _ => {}
    }
    Ok(())
}

/// Keeps server-owned fields across an update.
///
/// # Errors
/// 422 when an immutable field changes or a CRD becomes invalid.
pub fn on_update(rt: &ResourceType, old: &Value, new: &mut Value, now: Timestamp) -> ApiResult<()> {
    let name = meta_str(old, "name");
    if is(rt, "", "services") {
        let old_ip = &old["spec"]["clusterIP"];
        match new["spec"]["clusterIP"].as_str() {
            None | Some("") => {
                new["spec"]["clusterIP"] = old_ip.clone();
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
            Some(ip) if Some(ip) != old_ip.as_str() => {
                return Err(ApiError::invalid_field(
                    rt,
                    name,
                    "spec.clusterIP",
                    "field is immutable",
                ));
            }
            Some(_) => {}
        }
    }
    if is(rt, "", "pods") {
        let old_node = old["spec"]["nodeName"].as_str().unwrap_or_default();
        match new["spec"]["nodeName"].as_str() {
            None | Some("") => new["spec"]["nodeName"] = json!(old_node),
            Some(node) if node != old_node && !old_node.is_empty() => {
                return Err(ApiError::invalid_field(
                    rt,
                    name,
                    "spec.nodeName",
                    "field is immutable",
                ));
            }
            Some(_) => {}
        }
    }
    if is(rt, "", "namespaces")
        && new["spec"]["finalizers"].is_null()
        && old["metadata"]["deletionTimestamp"].is_null()
    {
        new["spec"]["finalizers"] = old["spec"]["finalizers"].clone();
    }
    if is(rt, "apiextensions.k8s.io", "customresourcedefinitions") {
        accept_crd(rt, new, now)?;
        // Conditions keep their transition times while they hold.
        if old["status"]["conditions"].is_array() {
            new["status"]["conditions"] = old["status"]["conditions"].clone();
        }
    }
    Ok(())
}

fn default(parent: &mut Value, field: &str, value: Value) {
    if parent.is_null() {
        *parent = json!({});
    }
    // An empty object is unset too: Go clients send `"strategy": {}` for a zero struct.
    let unset = parent
        .get(field)
        .is_none_or(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty));
    if unset {
        parent[field] = value;
    }
}

fn assign_cluster_ip(txn: &Txn<'_>, rt: &ResourceType, object: &mut Value) -> ApiResult<()> {
    default(&mut object["spec"], "type", json!("ClusterIP"));
    default(&mut object["spec"], "sessionAffinity", json!("None"));
    if let Some(ports) = object["spec"]["ports"].as_array_mut() {
        for port in ports {
            default(port, "protocol", json!("TCP"));
            if port.get("targetPort").is_none_or(Value::is_null) {
                port["targetPort"] = port["port"].clone();
            }
        }
    }
    let name = meta_str(object, "name").to_owned();
    let used: BTreeSet<Ipv4Addr> = txn
        .list(&ResourceKey::new("", "services"), None)
        .iter()
        .filter_map(|s| s.value()["spec"]["clusterIP"].as_str()?.parse().ok())
        .collect();
    let ip = match object["spec"]["clusterIP"].as_str() {
        Some("None") => return Ok(()),
        Some(requested) if !requested.is_empty() => {
            let ip: Ipv4Addr = requested.parse().map_err(|_| {
                ApiError::invalid_field(
                    rt,
                    &name,
                    "spec.clusterIP",
                    format!("Invalid value: {requested:?}: must be a valid IP address"),
                )
            })?;
            if !(SERVICE_IPS.0..=SERVICE_IPS.1).contains(&ip) {
                return Err(ApiError::invalid_field(
                    rt,
                    &name,
                    "spec.clusterIP",
                    format!(
                        "Invalid value: {requested:?}: provided IP is not in the valid range. The range of valid IPs is 127.2.0.0/16"
                    ),
                ));
            }
            if used.contains(&ip) {
                return Err(ApiError::invalid_field(
                    rt,
                    &name,
                    "spec.clusterIP",
                    format!("Invalid value: {requested:?}: provided IP is already allocated"),
                ));
            }
            ip
        }
        _ => {
            let (first, last) = (u32::from(SERVICE_IPS.0), u32::from(SERVICE_IPS.1));
            (first..=last)
                .map(Ipv4Addr::from)
                .find(|ip| !used.contains(ip))
                .ok_or_else(|| ApiError::internal("no free Service cluster IP in 127.2.0.0/16"))?
        }
    };
    object["spec"]["clusterIP"] = json!(ip.to_string());
    object["spec"]["clusterIPs"] = json!([ip.to_string()]);
    Ok(())
}

/// Validates a CRD and writes the status a real API server gives an accepted one.
fn accept_crd(rt: &ResourceType, object: &mut Value, now: Timestamp) -> ApiResult<()> {
    let name = meta_str(object, "name").to_owned();
    let defined = registry::from_crd(object)
        .map_err(|message| ApiError::invalid_field(rt, &name, "spec", message))?;
    let expected = format!("{}.{}", defined.resource, defined.group);
    if name != expected {
        return Err(ApiError::invalid_field(
            rt,
            &name,
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if registry::Registry::is_builtin(&defined.group, &defined.resource) {
        return Err(ApiError::invalid_field(
            rt,
            &name,
            "spec.group",
            "a built-in kind can not be redefined",
        ));
    }
    let now = crate::object::timestamp(now);
    let condition = |type_: &str, reason: &str, message: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    let stored_versions: Vec<&str> = defined
        .versions
        .first()
        .map(String::as_str)
        .into_iter()
        .collect();
    object["status"] = json!({
        "acceptedNames": object["spec"]["names"].clone(),
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored_versions,
    });
    Ok(())
}
