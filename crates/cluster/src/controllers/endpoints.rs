//! The Endpoints and EndpointSlice controllers: for every Service with a selector, the pods it
//! selects, ready or not, with their resolved ports. Observe (Service, pods) → [`plan`] → apply.
//!
//! Departure: the Endpoints object carries an owner reference to its Service (Kubernetes' has
//! none and its controller deletes it), so the garbage collector removes both kinds with the
//! Service.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{Endpoints, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{
        Controller,
        controller::Action,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde_json::{Value, json};

use super::{ControllerError, pods};

/// The label EndpointSlices carry with their Service's name.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the EndpointSlice's manager.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// kube-controller-manager's value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// A Service port resolved against one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Port {
    name: String,
    port: i32,
    protocol: String,
}

/// The Endpoints and EndpointSlices a Service should have (`None` without a selector).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `subsets` of the Endpoints object.
    pub subsets: Vec<Value>,
    /// EndpointSlices, as `(name suffix, endpoints, ports)`.
    pub slices: Vec<(usize, Vec<Value>, Vec<Value>)>,
}

fn resolve(service: &Service, pod: &Pod) -> Vec<Port> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|p| {
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let target = match &p.target_port {
                None => p.port,
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => *n,
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name)) => {
                    containers
                        .iter()
                        .flat_map(|c| c.ports.iter().flatten())
                        .find(|cp| cp.name.as_deref() == Some(name.as_str()))?
                        .container_port
                }
            };
            Some(Port {
                name: p.name.clone().unwrap_or_default(),
                port: target,
                protocol,
            })
        })
        .collect()
}

fn target_ref(pod: &Pod) -> Value {
    json!({"kind": "Pod", "namespace": pod.namespace(), "name": pod.name_any(), "uid": pod.uid()})
}

/// Whether a Service's `selector` (equality only, as Services select) selects `pod`: read in
/// place, since at thousands of pods and Services this runs for every pair.
fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The endpoints of `service` given every pod in its namespace.
pub fn plan(service: &Service, namespace_pods: &[&Pod]) -> Option<Plan> {
    let selector = service
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())?;
    // Pods grouped by how the Service's ports resolve on them.
    let mut groups: BTreeMap<Vec<Port>, Vec<&Pod>> = BTreeMap::new();
    for pod in namespace_pods {
        let has_ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_some_and(|ip| !ip.is_empty());
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if selects(selector, pod) && has_ip && !finished {
            groups.entry(resolve(service, pod)).or_default().push(pod);
        }
    }
    let mut subsets = Vec::new();
    let mut slices = Vec::new();
    for (i, (ports, pods_in_group)) in groups.iter().enumerate() {
        let port_values: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mut v = json!({"port": p.port, "protocol": p.protocol});
                if !p.name.is_empty() {
                    v["name"] = json!(p.name);
                }
                v
            })
            .collect();
        let mut ready = Vec::new();
        let mut not_ready = Vec::new();
        let mut slice_endpoints = Vec::new();
        for pod in pods_in_group {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default();
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            let is_ready = pods::is_ready(pod);
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let address = json!({"ip": ip, "nodeName": node, "targetRef": target_ref(pod)});
            if !terminating {
                if is_ready {
                    ready.push(address)
                } else {
                    not_ready.push(address)
                }
            }
            slice_endpoints.push(json!({
                "addresses": [ip],
                "conditions": {"ready": is_ready && !terminating, "serving": is_ready, "terminating": terminating},
                "nodeName": node,
                "targetRef": target_ref(pod),
            }));
        }
        let sort =
            |v: &mut Vec<Value>| v.sort_by_key(|a| a["ip"].as_str().unwrap_or_default().to_owned());
        sort(&mut ready);
        sort(&mut not_ready);
        slice_endpoints.sort_by_key(|a| a["addresses"][0].as_str().unwrap_or_default().to_owned());
        let mut subset = json!({"ports": port_values});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        if !ready.is_empty() || !not_ready.is_empty() {
            subsets.push(subset);
        }
        slices.push((i, slice_endpoints, port_values));
    }
    if slices.is_empty() {
        slices.push((0, Vec::new(), Vec::new()));
    }
    Some(Plan { subsets, slices })
}

struct Context {
    client: Client,
    pods: Store<Pod>,
}

/// Runs the Endpoints and EndpointSlice controllers.
pub async fn run(client: Client) {
    let (pod_store, pod_events) = crate::controllers::watched::<Pod>(&client);
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
    let context = Arc::new(Context {
        client,
        pods: pod_store,
    });
    controller
        .watches_stream(pod_events, move |pod: Pod| {
            let namespace = pod.metadata.namespace.as_deref();
            services
                .state()
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == namespace)
                .filter(|s| {
                    s.spec
                        .as_ref()
                        .and_then(|spec| spec.selector.as_ref())
                        .is_some_and(|sel| !sel.is_empty() && selects(sel, &pod))
                })
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(reconcile, super::error_policy, context)
        .for_each(|_| async {})
        .await;
}

async fn reconcile(
    service: Arc<Service>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    let namespace = service.namespace().unwrap_or_default();
    let all = context.pods.state();
    let in_namespace: Vec<&Pod> = all
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .collect();
    let Some(plan) = plan(&service, &in_namespace) else {
        return Ok(Action::await_change());
    };
    let name = service.name_any();
    let owner = service.controller_owner_ref(&()).map(|mut r| {
        r.block_owner_deletion = Some(true);
        r
    });
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace, "labels": service.labels(), "ownerReferences": [owner]},
        "subsets": plan.subsets,
    });
    upsert::<Endpoints>(&context.client, &namespace, &name, endpoints).await?;
    let short = service
        .uid()
        .unwrap_or_default()
        .chars()
        .take(5)
        .collect::<String>();
    for (i, endpoints, ports) in plan.slices {
        let slice_name = if i == 0 {
            format!("{name}-{short}")
        } else {
            format!("{name}-{short}-{i}")
        };
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": namespace,
                "labels": {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY},
                "ownerReferences": [owner]},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        });
        upsert::<EndpointSlice>(&context.client, &namespace, &slice_name, slice).await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Creates the object, or patches it when what is there differs.
async fn upsert<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    desired: Value,
) -> Result<(), ControllerError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await? {
        None => {
            let object: K = serde_json::from_value(desired).map_err(ControllerError::Encode)?;
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(err) => Err(err.into()),
            }
        }
        Some(current) => {
            let current = serde_json::to_value(&current).map_err(ControllerError::Encode)?;
            let mut changed = false;
            for field in ["subsets", "endpoints", "ports", "addressType"] {
                if desired.get(field).is_some()
                    && normalize(&desired[field]) != normalize(&current[field])
                {
                    changed = true;
                }
            }
            if changed {
                let mut patch = desired.clone();
                // Lists replace wholesale in a merge patch; an empty one must be sent as empty.
                for field in ["subsets", "endpoints", "ports"] {
                    if patch.get(field).is_some_and(Value::is_null) {
                        patch[field] = json!([]);
                    }
                }
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
            Ok(())
        }
    }
}

/// Empty lists and missing fields compare equal; nulls are dropped, and so is an empty port
/// name (the API server defaults an unnamed EndpointSlice port to `name: ""`).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Null => json!([]),
        Value::Array(items) if items.is_empty() => json!([]),
        Value::Array(items) => Value::Array(items.iter().map(normalize_inner).collect()),
        other => normalize_inner(other),
    }
}

fn normalize_inner(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| {
                    let unnamed = k.as_str() == "name" && *v == "";
                    !v.is_null() && !unnamed
                })
                .map(|(k, v)| (k.clone(), normalize_inner(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize_inner).collect()),
        other => other.clone(),
    }
}
