//! What the API server does per kind on create and update, beyond generic metadata: defaults a
//! real cluster applies, Service cluster IPs, pod scheduling to the one node, namespace
//! lifecycle, and CustomResourceDefinition acceptance.
//!
//! Layering: the object room, below the API server (its errors are [`crate::api_error`]'s).

use std::{collections::BTreeSet, net::Ipv4Addr};

use jiff::Timestamp;

use serde_json::{Value, json};

use crate::{
    api_error::{ApiError, ApiResult},
    defaults,
    object::{NAMESPACE_FINALIZER, meta_str},
    quantity::Quantity,
    registry::{self, ResourceType},
    scheduling,
    store::{ObjectKey, ResourceKey, Txn},
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
    defaults::apply(rt, object);
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => admit_pod(txn, rt, object)?,
        ("", "services") => {
            assign_cluster_ip(txn, rt, object)?;
            assign_node_ports(txn, rt, object)?;
        }
        ("", "namespaces") => {
            object["spec"]["finalizers"] = json!([NAMESPACE_FINALIZER]);
            object["status"] = json!({"phase": "Active"});
        }
        ("batch", "jobs") => {
            check_job_restart_policy(rt, object, "spec.template.spec")?;
            select_job_pods(object);
        }
        ("batch", "cronjobs") => {
            check_job_restart_policy(rt, object, "spec.jobTemplate.spec.template.spec")?;
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => accept_crd(rt, object, now)?,
        _ => {}
    }
    Ok(())
}

/// What kube-apiserver's admission plugins and the pod registry add to a new pod: the
/// ServiceAccount (`default`), priority from its PriorityClass (0 without one), the
/// not-ready/unreachable tolerations (300 s), the node when it takes pods (else the scheduler
/// binds it later), and the first status with the QoS class. The service-account token volume
/// is not added: no container here mounts volumes.
fn admit_pod(txn: &Txn<'_>, rt: &ResourceType, object: &mut Value) -> ApiResult<()> {
    let name = meta_str(object, "name").to_owned();
    let spec = &mut object["spec"];
    defaults::default(spec, "serviceAccountName", json!("default"));
    spec["serviceAccount"] = spec["serviceAccountName"].clone();
    match spec["priorityClassName"].as_str().filter(|c| !c.is_empty()) {
        None => {
            defaults::default(spec, "priority", json!(0));
            defaults::default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        Some(class) => {
            let found = txn
                .get(
                    &ResourceKey::new("scheduling.k8s.io", "priorityclasses"),
                    &ObjectKey::new("", class),
                )
                .ok_or_else(|| {
                    ApiError::forbidden(
                        rt,
                        &name,
                        &format!("no PriorityClass with name {class} was found"),
                    )
                })?;
            spec["priority"] = found["value"].clone();
            spec["preemptionPolicy"] = found
                .get("preemptionPolicy")
                .cloned()
                .unwrap_or_else(|| json!("PreemptLowerPriority"));
        }
    }
    add_default_tolerations(spec);
    let unassigned = spec["nodeName"].as_str().is_none_or(str::is_empty);
    if unassigned {
        let node = txn.get(
            &ResourceKey::new("", "nodes"),
            &ObjectKey::new("", NODE_NAME),
        );
        // Before the kubelet registers, and while the node takes the pod, bind at once.
        if node.is_none_or(|node| scheduling::fits(&node, &object["spec"]).is_ok()) {
            object["spec"]["nodeName"] = json!(NODE_NAME);
        }
    }
    object["status"] = json!({"phase": "Pending", "qosClass": qos_class(&object["spec"])});
    Ok(())
}

/// DefaultTolerationSeconds: tolerate a not-ready or unreachable node for 300 s, unless a
/// toleration already covers it.
fn add_default_tolerations(spec: &mut Value) {
    for wanted in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let covered = spec["tolerations"].as_array().is_some_and(|list| {
            list.iter().any(|t| {
                let key = t["key"].as_str().unwrap_or_default();
                let key_ok = match t["operator"].as_str() {
                    Some("Exists") => key.is_empty() || key == wanted,
                    _ => key == wanted,
                };
                let effect_ok = t["effect"]
                    .as_str()
                    .is_none_or(|e| e.is_empty() || e == "NoExecute");
                key_ok && effect_ok
            })
        });
        if !covered {
            let toleration = json!({"key": wanted, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 300});
            match spec["tolerations"].as_array_mut() {
                Some(list) => list.push(toleration),
                None => spec["tolerations"] = json!([toleration]),
            }
        }
    }
}

/// A pod's QoS class: `BestEffort` without any cpu or memory request or limit, `Guaranteed`
/// when every container limits both and requests what it limits (`1` and `1000m` are the
/// same), else `Burstable`.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .collect();
    let resources = ["cpu", "memory"];
    let any = containers.iter().any(|c| {
        resources.iter().any(|r| {
            !c["resources"]["requests"][*r].is_null() || !c["resources"]["limits"][*r].is_null()
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        resources.iter().all(|r| {
            let limit = &c["resources"]["limits"][*r];
            let request = &c["resources"]["requests"][*r];
            let amount = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let same = matches!(
                (Quantity::parse(&amount(request)), Quantity::parse(&amount(limit))),
                (Some(a), Some(b)) if a == b
            );
            !limit.is_null() && (request.is_null() || same)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Jobs run to completion: their pods restart `OnFailure` or `Never`, as Kubernetes validates.
fn check_job_restart_policy(rt: &ResourceType, object: &Value, path: &str) -> ApiResult<()> {
    let pointer = format!("/{}/restartPolicy", path.replace('.', "/"));
    match object.pointer(&pointer).and_then(Value::as_str) {
        Some("OnFailure" | "Never") | None => Ok(()),
        Some(other) => Err(ApiError::invalid_field(
            rt,
            meta_str(object, "name"),
            &format!("{path}.restartPolicy"),
            format!("Unsupported value: \"{other}\": supported values: \"OnFailure\", \"Never\""),
        )),
    }
}

/// The Job registry's generated selector (unless `manualSelector`): its pods carry the Job's
/// name and uid as labels, the selector matches the uid, and a Job without labels of its own
/// takes its template's.
fn select_job_pods(object: &mut Value) {
    if object["spec"]["manualSelector"] == true {
        return;
    }
    let name = meta_str(object, "name").to_owned();
    let uid = meta_str(object, "uid").to_owned();
    let labels = &mut object["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        if labels.get(key).is_none() {
            labels[key] = json!(value);
        }
    }
    let template_labels = labels.clone();
    object["spec"]["selector"] =
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    defaults::default(&mut object["metadata"], "labels", template_labels);
}

/// 422 for a changed immutable field, as Kubernetes' `ValidateImmutableField` words it
/// (`spec.selector: Invalid value: …: field is immutable`), the value shown as JSON.
fn immutable(rt: &ResourceType, name: &str, field: &str, value: &Value) -> ApiError {
    ApiError::invalid_field(
        rt,
        name,
        field,
        format!("Invalid value: {value}: field is immutable"),
    )
}

/// The pod template fields a suspended Job that never started may still change (Kubernetes'
/// mutable scheduling directives).
const SCHEDULING_DIRECTIVES: [(&str, &str); 6] = [
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("spec", "nodeSelector"),
    ("spec", "tolerations"),
    ("spec", "affinity"),
    ("spec", "schedulingGates"),
];

/// A Job's selector and pod template cannot change, as Kubernetes' `ValidateJobSpecUpdate`;
/// only a suspended Job that never started may change its template's scheduling directives.
/// Both sides are compared as Kubernetes' semantic equality does: an absent field, `null`,
/// `{}` and `[]` are the same.
fn check_job_update(rt: &ResourceType, old: &Value, new: &Value) -> ApiResult<()> {
    let name = meta_str(old, "name");
    let selector = &new["spec"]["selector"];
    if semantic(selector) != semantic(&old["spec"]["selector"]) {
        return Err(immutable(rt, name, "spec.selector", selector));
    }
    let schedulable = old["spec"]["suspend"] == true && old["status"]["startTime"].is_null();
    let template = |job: &Value| {
        let mut template = job["spec"]["template"].clone();
        if schedulable {
            for (part, field) in SCHEDULING_DIRECTIVES {
                if let Some(part) = template.get_mut(part).and_then(Value::as_object_mut) {
                    part.remove(field);
                }
            }
        }
        semantic(&template)
    };
    if template(new) != template(old) {
        return Err(immutable(
            rt,
            name,
            "spec.template",
            &new["spec"]["template"],
        ));
    }
    Ok(())
}

/// A value without its `null`s and empty objects and arrays (Kubernetes' semantic equality
/// treats them as absent).
fn semantic(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Keeps server-owned fields across an update.
///
/// # Errors
/// 422 when an immutable field changes or a CRD becomes invalid.
pub fn on_update(
    txn: &Txn<'_>,
    rt: &ResourceType,
    old: &Value,
    new: &mut Value,
    now: Timestamp,
) -> ApiResult<()> {
    defaults::apply(rt, new);
    let name = meta_str(old, "name");
    if is(rt, "batch", "jobs") {
        check_job_update(rt, old, new)?;
    }
    if is(rt, "", "services") {
        keep_node_ports(old, new);
        assign_node_ports(txn, rt, new)?;
        let external_name = new["spec"]["type"] == "ExternalName";
        let old_ip = old["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty());
        let requested = new["spec"]["clusterIP"].as_str().map(str::to_owned);
        match (external_name, requested.as_deref(), old_ip) {
            // An ExternalName has no address; one that becomes it gives its address back.
            (true, _, _) => {
                if let Some(spec) = new["spec"].as_object_mut() {
                    spec.remove("clusterIP");
                    spec.remove("clusterIPs");
                }
            }
            (false, None | Some(""), Some(ip)) => {
                new["spec"]["clusterIP"] = json!(ip);
                new["spec"]["clusterIPs"] = json!([ip]);
            }
            (false, Some(ip), Some(before)) if ip != before => {
                return Err(ApiError::invalid_field(
                    rt,
                    name,
                    "spec.clusterIP",
                    "field is immutable",
                ));
            }
            (false, Some(_), Some(_)) => {}
            // It had none (it was an ExternalName): it gets one now.
            (false, _, None) => assign_cluster_ip(txn, rt, new)?,
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

fn assign_cluster_ip(txn: &Txn<'_>, rt: &ResourceType, object: &mut Value) -> ApiResult<()> {
    if object["spec"]["type"] == "ExternalName" {
        return Ok(());
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

/// The range of Service node ports (kube-apiserver's `--service-node-port-range` default).
const NODE_PORTS: (i64, i64) = (30000, 32767);

/// On an update, ports that keep their number and protocol keep their allocated node port, as
/// kube-apiserver's `patchAllocatedValues` does (`kubectl apply` and `replace` rarely send it).
fn keep_node_ports(old: &Value, new: &mut Value) {
    let allocated: Vec<&Value> = old["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    for port in new["spec"]["ports"].as_array_mut().into_iter().flatten() {
        if !port["nodePort"].is_null() {
            continue;
        }
        let same = allocated
            .iter()
            .find(|p| p["port"] == port["port"] && p["protocol"] == port["protocol"]);
        if let Some(nodeport) = same.map(|p| &p["nodePort"]).filter(|n| !n.is_null()) {
            port["nodePort"] = nodeport.clone();
        }
    }
}

/// Node ports for the ports of a NodePort or LoadBalancer Service that have none: the lowest
/// free one in 30000–32767. A requested one must be in range and not another Service's.
fn assign_node_ports(txn: &Txn<'_>, rt: &ResourceType, object: &mut Value) -> ApiResult<()> {
    let spec = &object["spec"];
    let wants = match spec["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => spec["allocateLoadBalancerNodePorts"] != false,
        _ => false,
    };
    if !wants {
        // A Service changed to ClusterIP gives its node ports back.
        let cluster_ip = spec["type"].as_str().is_none_or(|t| t == "ClusterIP");
        if cluster_ip {
            for port in object["spec"]["ports"].as_array_mut().into_iter().flatten() {
                if let Some(map) = port.as_object_mut() {
                    map.remove("nodePort");
                }
            }
        }
        return Ok(());
    }
    let name = meta_str(object, "name").to_owned();
    let namespace = meta_str(object, "namespace").to_owned();
    let mut used: BTreeSet<i64> = txn
        .list(&ResourceKey::new("", "services"), None)
        .iter()
        .map(|s| s.value())
        .filter(|s| meta_str(s, "name") != name || meta_str(s, "namespace") != namespace)
        .flat_map(|s| {
            s["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["nodePort"].as_i64())
                .collect::<Vec<_>>()
        })
        .collect();
    let ports = object["spec"]["ports"].as_array_mut();
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let field = format!("spec.ports[{i}].nodePort");
        match port["nodePort"].as_i64() {
            Some(n) if !(NODE_PORTS.0..=NODE_PORTS.1).contains(&n) => {
                return Err(ApiError::invalid_field(
                    rt,
                    &name,
                    &field,
                    format!(
                        "Invalid value: {n}: provided port is not in the valid range. The range of valid ports is 30000-32767"
                    ),
                ));
            }
            Some(n) if !used.insert(n) => {
                return Err(ApiError::invalid_field(
                    rt,
                    &name,
                    &field,
                    format!("Invalid value: {n}: provided port is already allocated"),
                ));
            }
            Some(_) => {}
            None => {
                let free = (NODE_PORTS.0..=NODE_PORTS.1)
                    .find(|n| !used.contains(n))
                    .ok_or_else(|| ApiError::internal("no free node port in 30000-32767"))?;
                used.insert(free);
                port["nodePort"] = json!(free);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resources: Value) -> Value {
        json!({"containers": [{"name": "app", "resources": resources}]})
    }

    fn job(template: Value) -> Value {
        json!({"metadata": {"name": "migrate"},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                "template": template},
            "status": {"startTime": "2025-01-01T00:00:00Z"}})
    }

    fn jobs() -> ResourceType {
        registry::Registry::with_builtins()
            .get("batch", "jobs")
            .map(|rt| (*rt).clone())
            .unwrap()
    }

    #[test]
    fn a_jobs_template_and_selector_are_immutable() {
        let rt = jobs();
        let template = json!({"metadata": {"labels": {"job-name": "migrate"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m:1"}]}});
        let old = job(template.clone());
        // The same template, with `null`s and empty fields as a typed client sends them.
        let mut same = old.clone();
        same["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
        same["spec"]["template"]["spec"]["volumes"] = json!([]);
        same["metadata"]["labels"] = json!({"team": "a"});
        assert!(check_job_update(&rt, &old, &same).is_ok());

        let mut image = old.clone();
        image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("m:2");
        let error = check_job_update(&rt, &old, &image).unwrap_err();
        assert_eq!(error.code, 422);
        assert!(
            error
                .message
                .starts_with("Job.batch \"migrate\" is invalid: spec.template: Invalid value: {"),
            "{}",
            error.message
        );
        assert!(error.message.ends_with("}: field is immutable"));

        // `kubectl replace` of the manifest as written: no generated selector.
        let mut unselected = old.clone();
        unselected["spec"]
            .as_object_mut()
            .unwrap()
            .remove("selector");
        let error = check_job_update(&rt, &old, &unselected).unwrap_err();
        assert_eq!(
            error.message,
            "Job.batch \"migrate\" is invalid: spec.selector: Invalid value: null: field is immutable"
        );
    }

    #[test]
    fn a_suspended_job_that_never_started_may_change_its_scheduling_directives() {
        let rt = jobs();
        let mut old = job(json!({"spec": {"containers": [{"name": "m", "image": "m:1"}]}}));
        old["spec"]["suspend"] = json!(true);
        old["status"] = json!({});
        let mut placed = old.clone();
        placed["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        placed["spec"]["template"]["metadata"]["labels"] = json!({"queue": "q"});
        assert!(check_job_update(&rt, &old, &placed).is_ok());
        let mut image = old.clone();
        image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("m:2");
        assert!(check_job_update(&rt, &old, &image).is_err());
        // Once started, nothing in the template changes.
        old["status"]["startTime"] = json!("2025-01-01T00:00:00Z");
        assert!(check_job_update(&rt, &old, &placed).is_err());
    }

    #[test]
    fn qos_classes_compare_quantities_by_value() {
        assert_eq!(qos_class(&spec(json!({}))), "BestEffort");
        let same = json!({"requests": {"cpu": "1", "memory": "1Gi"},
            "limits": {"cpu": "1000m", "memory": "1024Mi"}});
        assert_eq!(qos_class(&spec(same)), "Guaranteed");
        let limits_only = json!({"limits": {"cpu": "500m", "memory": "128Mi"}});
        assert_eq!(qos_class(&spec(limits_only)), "Guaranteed");
        let less = json!({"requests": {"cpu": "0.5", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos_class(&spec(less)), "Burstable");
        let no_memory_limit = json!({"limits": {"cpu": "1"}});
        assert_eq!(qos_class(&spec(no_memory_limit)), "Burstable");
    }
}
