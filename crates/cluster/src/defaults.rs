//! Kubernetes' scheme defaults for built-in kinds (`SetDefaults_*` in `pkg/apis/*/v1`), applied
//! on every create and update as kube-apiserver applies them, so `kubectl get -o yaml` and
//! `kubectl describe` show what they show on a real cluster (`imagePullPolicy`, `protocol: TCP`,
//! `dnsPolicy`, probe timings, `ipFamilies`, …). Pod templates get the PodSpec and container
//! defaults wherever they sit (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
//! CronJobs, PodTemplates); `enableServiceLinks` and the limits-to-requests copy are for Pods
//! only, as in Kubernetes. Custom resources get none: Argo keeps its defaults in code
//! (DESIGN §5). Pure: values in, values out.
//!
//! What admission plugins and registries add (a pod's service account, priority and
//! tolerations, a Job's selector, cluster IPs) lives in [`crate::admission`].
//!
//! Layering: the object room, below the API server.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// Sets `parent[field]` to `value` when it is unset: absent, `null`, or an empty object (Go
/// clients send a zero struct as `{}`, protobuf as an empty message).
pub fn default(parent: &mut Value, field: &str, value: Value) {
    if parent.is_null() {
        *parent = json!({});
    }
    let unset = parent
        .get(field)
        .is_none_or(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty));
    if unset {
        parent[field] = value;
    }
}

/// Sets a field when absent or `null` only (an empty object is a value, as for `resources`).
fn default_absent(parent: &mut Value, field: &str, value: Value) {
    if parent.get(field).is_none_or(Value::is_null) {
        parent[field] = value;
    }
}

/// The items of the list at `parent[field]`, if it is one.
fn items<'a>(parent: &'a mut Value, field: &str) -> impl Iterator<Item = &'a mut Value> {
    parent
        .get_mut(field)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// The object at `parent[field]`, if it is one.
fn object<'a>(parent: &'a mut Value, field: &str) -> Option<&'a mut Value> {
    parent.get_mut(field).filter(|v| v.is_object())
}

/// Applies the defaults of `rt`'s kind to `value`.
pub fn apply(rt: &ResourceType, value: &mut Value) {
    if rt.custom || !value.is_object() {
        return;
    }
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => pod(value),
        ("", "podtemplates") => template(value, "template"),
        ("", "services") => service(value),
        ("", "endpoints") => {
            for subset in items(value, "subsets") {
                for port in items(subset, "ports") {
                    default(port, "protocol", json!("TCP"));
                }
            }
        }
        ("", "secrets") => default(value, "type", json!("Opaque")),
        ("", "namespaces") => {
            let name = value["metadata"]["name"].clone();
            if name.is_string() {
                default(&mut value["metadata"], "labels", json!({}));
                value["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            }
        }
        ("", "persistentvolumes") => {
            default(
                &mut value["spec"],
                "persistentVolumeReclaimPolicy",
                json!("Retain"),
            );
            default(&mut value["spec"], "volumeMode", json!("Filesystem"));
            default(&mut value["status"], "phase", json!("Pending"));
        }
        ("", "persistentvolumeclaims") => claim(value),
        ("", "replicationcontrollers") => {
            let labels = value["spec"]["template"]["metadata"]["labels"].clone();
            if labels.as_object().is_some_and(|l| !l.is_empty()) {
                default(&mut value["spec"], "selector", labels.clone());
                default(&mut value["metadata"], "labels", labels);
            }
            default(&mut value["spec"], "replicas", json!(1));
            template(&mut value["spec"], "template");
        }
        ("apps", "deployments") => {
            let spec = &mut value["spec"];
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(spec, "strategy", json!({"type": "RollingUpdate"}));
            if spec["strategy"]["type"] == "RollingUpdate" {
                let rolling = &mut spec["strategy"]["rollingUpdate"];
                default_absent(rolling, "maxUnavailable", json!("25%"));
                default_absent(rolling, "maxSurge", json!("25%"));
            }
            template(spec, "template");
        }
        ("apps", "replicasets") => {
            default(&mut value["spec"], "replicas", json!(1));
            template(&mut value["spec"], "template");
        }
        ("apps", "statefulsets") => stateful_set(value),
        ("apps", "daemonsets") => {
            let spec = &mut value["spec"];
            default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                let rolling = &mut spec["updateStrategy"]["rollingUpdate"];
                default_absent(rolling, "maxUnavailable", json!(1));
                default_absent(rolling, "maxSurge", json!(0));
            }
            default(spec, "revisionHistoryLimit", json!(10));
            template(spec, "template");
        }
        ("batch", "jobs") => job_spec(&mut value["spec"], true),
        ("batch", "cronjobs") => {
            let spec = &mut value["spec"];
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(job) = object(spec, "jobTemplate").and_then(|t| object(t, "spec")) {
                job_spec(job, false);
            }
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            default(&mut value["spec"], "minReplicas", json!(1));
            let spec = &mut value["spec"];
            if spec["metrics"].as_array().is_none_or(Vec::is_empty) {
                spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]);
            }
        }
        ("networking.k8s.io", "networkpolicies") => network_policy(value),
        ("networking.k8s.io", "ingressclasses") => {
            let parameters = object(value, "spec").and_then(|spec| object(spec, "parameters"));
            if let Some(parameters) = parameters {
                default(parameters, "scope", json!("Cluster"));
            }
        }
        ("discovery.k8s.io", "endpointslices") => {
            for port in items(value, "ports") {
                default_absent(port, "name", json!(""));
                default(port, "protocol", json!("TCP"));
            }
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            if let Some(role) = object(value, "roleRef") {
                default(role, "apiGroup", json!("rbac.authorization.k8s.io"));
            }
            for subject in items(value, "subjects") {
                if subject["apiGroup"].as_str().is_none_or(str::is_empty) {
                    subject["apiGroup"] = match subject["kind"].as_str() {
                        Some("User" | "Group") => json!("rbac.authorization.k8s.io"),
                        _ => json!(""),
                    };
                }
            }
        }
        ("storage.k8s.io", "storageclasses") => {
            default(value, "reclaimPolicy", json!("Delete"));
            default(value, "volumeBindingMode", json!("Immediate"));
        }
        ("storage.k8s.io", "csidrivers") => {
            let spec = &mut value["spec"];
            default_absent(spec, "attachRequired", json!(true));
            default_absent(spec, "podInfoOnMount", json!(false));
            default_absent(spec, "storageCapacity", json!(false));
            default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
            default(spec, "volumeLifecycleModes", json!(["Persistent"]));
            default_absent(spec, "requiresRepublish", json!(false));
        }
        ("scheduling.k8s.io", "priorityclasses") => {
            default(value, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        _ => {}
    }
}

fn pod(value: &mut Value) {
    let spec = &mut value["spec"];
    pod_spec(spec);
    default_absent(spec, "enableServiceLinks", json!(true));
    // A limit without a request requests the limit.
    for list in ["initContainers", "containers"] {
        for container in items(spec, list) {
            let limits = container["resources"]["limits"].clone();
            if let Some(limits) = limits.as_object() {
                let requests = &mut container["resources"]["requests"];
                if requests.is_null() {
                    *requests = json!({});
                }
                for (name, quantity) in limits {
                    default_absent(requests, name, quantity.clone());
                }
            }
        }
    }
}

/// The PodSpec defaults of the template at `parent[field]`.
fn template(parent: &mut Value, field: &str) {
    if let Some(spec) = object(parent, field).and_then(|t| object(t, "spec")) {
        pod_spec(spec);
    }
}

fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "restartPolicy", json!("Always"));
    default_absent(spec, "securityContext", json!({}));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        items(spec, list).for_each(container);
    }
    items(spec, "volumes").for_each(volume);
}

/// `IfNotPresent`, or `Always` for a `latest` or untagged image (`SetDefaults_Container`).
fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, tag)| tag);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn container(container: &mut Value) {
    if !container.is_object() {
        return;
    }
    let policy = pull_policy(container["image"].as_str().unwrap_or_default());
    default(container, "imagePullPolicy", json!(policy));
    default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    default(container, "terminationMessagePolicy", json!("File"));
    default_absent(container, "resources", json!({}));
    for port in items(container, "ports") {
        default(port, "protocol", json!("TCP"));
    }
    for env in items(container, "env") {
        let field = object(env, "valueFrom").and_then(|from| object(from, "fieldRef"));
        if let Some(field) = field {
            default(field, "apiVersion", json!("v1"));
        }
    }
    for probe_field in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = object(container, probe_field) {
            for (field, value) in [
                ("timeoutSeconds", 1),
                ("periodSeconds", 10),
                ("successThreshold", 1),
                ("failureThreshold", 3),
            ] {
                if probe[field].as_i64().is_none_or(|v| v == 0) {
                    probe[field] = json!(value);
                }
            }
            http_get(probe);
        }
    }
    if let Some(lifecycle) = object(container, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(handler) = object(lifecycle, hook) {
                http_get(handler);
            }
        }
    }
}

fn http_get(handler: &mut Value) {
    if let Some(get) = object(handler, "httpGet") {
        default(get, "path", json!("/"));
        default(get, "scheme", json!("HTTP"));
    }
}

/// The sources a volume may have; one without any is an `emptyDir`.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn volume(volume: &mut Value) {
    let Some(map) = volume.as_object_mut() else {
        return;
    };
    if !VOLUME_SOURCES.iter().any(|s| map.contains_key(*s)) {
        map.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(source) = object(volume, source) {
            default_absent(source, "defaultMode", json!(420));
        }
    }
    if let Some(host) = object(volume, "hostPath") {
        default_absent(host, "type", json!(""));
    }
    if let Some(downward) = object(volume, "downwardAPI") {
        field_refs(downward);
    }
    if let Some(projected) = object(volume, "projected") {
        for source in items(projected, "sources") {
            if let Some(token) = object(source, "serviceAccountToken") {
                default(token, "expirationSeconds", json!(3600));
            }
            if let Some(downward) = object(source, "downwardAPI") {
                field_refs(downward);
            }
        }
    }
    if let Some(claim) = object(volume, "ephemeral")
        .and_then(|e| object(e, "volumeClaimTemplate"))
        .and_then(|t| object(t, "spec"))
    {
        default(claim, "volumeMode", json!("Filesystem"));
    }
}

fn field_refs(downward: &mut Value) {
    for item in items(downward, "items") {
        if let Some(field) = object(item, "fieldRef") {
            default(field, "apiVersion", json!("v1"));
        }
    }
}

fn service(value: &mut Value) {
    let spec = &mut value["spec"];
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    if spec["sessionAffinity"] == "None" {
        if let Some(map) = spec.as_object_mut() {
            map.remove("sessionAffinityConfig");
        }
    } else {
        let timeout = &mut spec["sessionAffinityConfig"]["clientIP"];
        default(timeout, "timeoutSeconds", json!(10800));
    }
    for port in items(spec, "ports") {
        default(port, "protocol", json!("TCP"));
        let target = &port["targetPort"];
        if target.is_null() || target == 0 || target == "" {
            port["targetPort"] = port["port"].clone();
        }
    }
    let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_owned();
    if kind != "ExternalName" {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        if spec["ipFamilies"].as_array().is_none_or(Vec::is_empty) {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
    }
    let external = matches!(kind.as_str(), "NodePort" | "LoadBalancer")
        || spec["externalIPs"]
            .as_array()
            .is_some_and(|ips| !ips.is_empty());
    if external {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        default_absent(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    default_absent(&mut value["status"], "loadBalancer", json!({}));
}

fn claim(value: &mut Value) {
    default(&mut value["spec"], "volumeMode", json!("Filesystem"));
    default(&mut value["status"], "phase", json!("Pending"));
}

fn stateful_set(value: &mut Value) {
    let spec = &mut value["spec"];
    default(spec, "podManagementPolicy", json!("OrderedReady"));
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    if spec["updateStrategy"]["type"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        spec["updateStrategy"]["type"] = json!("RollingUpdate");
        default_absent(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
    }
    if spec["updateStrategy"]["type"] == "RollingUpdate"
        && let Some(rolling) = object(&mut spec["updateStrategy"], "rollingUpdate")
    {
        default_absent(rolling, "partition", json!(0));
    }
    default(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    for template in items(spec, "volumeClaimTemplates") {
        claim(template);
    }
    template(spec, "template");
}

/// A Job's spec; `own` for a Job (a CronJob's job template gets only the pod defaults, as
/// `SetDefaults_Job` does not run on a JobTemplateSpec).
fn job_spec(spec: &mut Value, own: bool) {
    if own {
        match (spec["completions"].is_null(), spec["parallelism"].is_null()) {
            (true, true) => {
                spec["completions"] = json!(1);
                spec["parallelism"] = json!(1);
            }
            (_, true) => spec["parallelism"] = json!(1),
            _ => {}
        }
        let backoff = if spec["backoffLimitPerIndex"].is_null() {
            6
        } else {
            i32::MAX
        };
        default_absent(spec, "backoffLimit", json!(backoff));
        default(spec, "completionMode", json!("NonIndexed"));
        default_absent(spec, "suspend", json!(false));
        default_absent(spec, "manualSelector", json!(false));
        let replacement = if spec["podFailurePolicy"].is_null() {
            "TerminatingOrFailed"
        } else {
            "Failed"
        };
        default(spec, "podReplacementPolicy", json!(replacement));
    }
    template(spec, "template");
}

fn network_policy(value: &mut Value) {
    let spec = &mut value["spec"];
    for direction in ["ingress", "egress"] {
        for rule in items(spec, direction) {
            for port in items(rule, "ports") {
                default(port, "protocol", json!("TCP"));
            }
        }
    }
    if spec["policyTypes"].as_array().is_none_or(Vec::is_empty) {
        let mut types = vec![json!("Ingress")];
        if spec["egress"].as_array().is_some_and(|e| !e.is_empty()) {
            types.push(json!("Egress"));
        }
        spec["policyTypes"] = json!(types);
    }
}

#[cfg(test)]
mod tests;
