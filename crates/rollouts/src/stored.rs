//! What the Rollout controller's stores keep of the objects it watches, when that is less
//! than the API's whole object. At 10,000 Rollouts the stores are most of the controller's
//! memory, and k8s-openapi's structs are wide: a typed pod template is a few kilobytes of
//! mostly empty `Option`s and B-tree nodes, however little the user wrote.
//!
//! - [`ReplicaSet`]: metadata, desired replicas, status, and the pod template as the exact
//!   JSON the API server sent — read only to find the ReplicaSet of a template that no hash
//!   names (an adoption or an undo), so never parsed on the common path.
//! - [`trim_pod`]: a pod's metadata and its Ready condition.
//! - [`trim_service`]: a Service's metadata and selector.
//! - [`trim_slice`]: an EndpointSlice's endpoints reduced to their pod and readiness.
//! - [`trim_applied`]: any object without `kubectl.kubernetes.io/last-applied-configuration`
//!   (a second copy of the whole object, which nothing here reads).
//!
//! Nothing stored is ever written back whole: the controller writes by merge patch, so what a
//! store leaves out is never lost on the server.

use std::borrow::Cow;

use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::ReplicaSetStatus,
        core::v1::{ObjectReference, Pod, PodStatus, Service, ServiceSpec},
        discovery::v1::{Endpoint, EndpointConditions, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A ReplicaSet as the controller's store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaSet {
    /// Its metadata (without `managedFields`).
    pub metadata: ObjectMeta,
    /// Desired replicas and the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ReplicaSetSpec>,
    /// Its counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReplicaSetStatus>,
}

/// The part of a ReplicaSet's spec the controller reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaSetSpec {
    /// Desired replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The pod template, as the API server sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Box<RawValue>>,
}

impl Resource for ReplicaSet {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ReplicaSet".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "apps".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "replicasets".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A pod as the pod store keeps it: its metadata and its Ready condition.
pub fn trim_pod(pod: &mut Pod) {
    pod.spec = None;
    let ready = pod
        .status
        .take()
        .and_then(|s| s.conditions)
        .map(|c| c.into_iter().filter(|c| c.type_ == "Ready").collect());
    pod.status = Some(PodStatus {
        conditions: ready,
        ..PodStatus::default()
    });
}

/// A Service as the Service store keeps it: metadata and selector (which hash it selects).
pub fn trim_service(service: &mut Service) {
    trim_applied(service);
    let selector = service.spec.take().and_then(|s| s.selector);
    service.spec = Some(ServiceSpec {
        selector,
        ..ServiceSpec::default()
    });
    service.status = None;
}

/// An EndpointSlice as the slice store keeps it: its labels (the Service it serves) and, per
/// endpoint, the pod and whether it is ready.
pub fn trim_slice(slice: &mut EndpointSlice) {
    slice.ports = None;
    for endpoint in &mut slice.endpoints {
        let pod = endpoint.target_ref.take().map(|t| ObjectReference {
            name: t.name,
            ..ObjectReference::default()
        });
        let ready = endpoint.conditions.take().map(|c| EndpointConditions {
            ready: c.ready,
            ..EndpointConditions::default()
        });
        *endpoint = Endpoint {
            target_ref: pod,
            conditions: ready,
            ..Endpoint::default()
        };
    }
}

/// Drops the client-side apply record: a second copy of the whole object.
pub fn trim_applied<K: Resource>(object: &mut K) {
    object
        .annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
    if object
        .meta()
        .annotations
        .as_ref()
        .is_some_and(|a| a.is_empty())
    {
        object.meta_mut().annotations = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stored_replica_set_keeps_its_template_as_sent() {
        let sent = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "r-abc", "labels": {"rollouts-pod-template-hash": "abc"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "r"}},
                "template": {"metadata": {"labels": {"app": "r"}},
                    "spec": {"containers": [{"name": "app", "image": "x:1",
                        "newerField": {"kept": true}}]}}},
            "status": {"replicas": 2, "readyReplicas": 1}});
        let stored: ReplicaSet = serde_json::from_value(sent.clone()).unwrap();
        let value = serde_json::to_value(&stored).unwrap();
        assert_eq!(value["spec"]["template"], sent["spec"]["template"]);
        assert_eq!(value["spec"]["replicas"], 2);
        assert_eq!(value["status"]["readyReplicas"], 1);
        assert_eq!(value["metadata"], sent["metadata"]);
    }

    #[test]
    fn trimmed_objects_keep_what_the_controller_reads() {
        let mut service: Service = serde_json::from_value(json!({
            "metadata": {"name": "active", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "argo-rollouts.argoproj.io/managed-by-rollouts": "r"}},
            "spec": {"selector": {"app": "r", "rollouts-pod-template-hash": "abc"},
                "ports": [{"port": 80}], "clusterIP": "127.2.0.1"}}))
        .unwrap();
        trim_service(&mut service);
        let value = serde_json::to_value(&service).unwrap();
        assert_eq!(
            value["spec"],
            json!({"selector": {"app": "r", "rollouts-pod-template-hash": "abc"}})
        );
        assert_eq!(
            value["metadata"]["annotations"],
            json!({"argo-rollouts.argoproj.io/managed-by-rollouts": "r"})
        );
        let mut slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "active-x", "labels": {"kubernetes.io/service-name": "active"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.1.0.5"], "conditions": {"ready": true, "serving": true},
                "targetRef": {"kind": "Pod", "name": "r-abc-x1", "namespace": "ns", "uid": "u"},
                "nodeName": "sluice-local"}],
            "ports": [{"port": 8080}]}))
        .unwrap();
        trim_slice(&mut slice);
        let value = serde_json::to_value(&slice).unwrap();
        assert_eq!(
            value["endpoints"],
            json!([{"addresses": [], "conditions": {"ready": true}, "targetRef": {"name": "r-abc-x1"}}])
        );
        assert_eq!(
            value["metadata"]["labels"]["kubernetes.io/service-name"],
            "active"
        );
    }
}
