//! The ReplicaSet controller: keeps `spec.replicas` pods from the template and reports how many
//! are ready and available. Observe (the pods it controls) → [`plan`] → apply.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::{
    api::{
        apps::v1::ReplicaSetStatus,
        core::v1::{Pod, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, watcher},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_api::Preserved;

use super::{ControllerError, PodOwners, pods, record};

/// A ReplicaSet whose pod template is kept exactly as written.
pub type ReplicaSet =
    super::exact::Exact<k8s_openapi::api::apps::v1::ReplicaSet, ReplicaSetSpec, ReplicaSetStatus>;

/// The parts of a ReplicaSet's spec the controller reads.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetSpec {
    /// Desired pods (default 1).
    pub replicas: Option<i32>,
    /// Seconds a pod must be ready to count as available.
    pub min_ready_seconds: Option<i32>,
    /// Pod selector.
    pub selector: LabelSelector,
    /// Pod template, as written.
    pub template: Option<Preserved<PodTemplateSpec>>,
}

/// What the controller does next for one ReplicaSet.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods to create.
    pub create: usize,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// The status to write, when it changed.
    pub status: Option<Value>,
    /// When to look again (a pod becoming available).
    pub requeue: Option<Duration>,
}

/// Pods created at once, at most (Kubernetes' burst is 500).
const BURST: usize = 500;

/// The next step for `rs`, given the pods it controls.
pub fn plan(rs: &ReplicaSet, owned: &[&Pod], now: Timestamp) -> Plan {
    let Some(spec) = &rs.spec else {
        return Plan::default();
    };
    let desired = spec.replicas.unwrap_or(1).max(0) as usize;
    let mut active: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| pods::is_active(p))
        .collect();
    let mut plan = Plan::default();
    if active.len() < desired {
        plan.create = (desired - active.len()).min(BURST);
    } else if active.len() > desired {
        pods::sort_for_deletion(&mut active);
        plan.delete = active[..active.len() - desired]
            .iter()
            .map(|p| p.name_any())
            .collect();
    }
    let min_ready = i64::from(spec.min_ready_seconds.unwrap_or(0));
    let template_labels: BTreeMap<String, String> = spec
        .template
        .as_ref()
        .and_then(|t| t.pointer("/metadata/labels").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let mut ready = 0;
    let mut available = 0;
    let mut next_available: Option<Timestamp> = None;
    let mut fully_labeled = 0;
    for pod in &active {
        if pods::is_ready(pod) {
            ready += 1;
        }
        match pods::availability(pod, min_ready, now) {
            Ok(()) => available += 1,
            Err(Some(at)) => next_available = Some(next_available.map_or(at, |n| n.min(at))),
            Err(None) => {}
        }
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully_labeled += 1;
        }
    }
    let status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": rs.metadata.generation.unwrap_or(0),
    });
    let current = json!({
        "replicas": rs.status.as_ref().map_or(0, |s| s.replicas),
        "fullyLabeledReplicas": rs.status.as_ref().and_then(|s| s.fully_labeled_replicas).unwrap_or(0),
        "readyReplicas": rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0),
        "availableReplicas": rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0),
        "observedGeneration": rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0),
    });
    if status != current {
        plan.status = Some(status);
    }
    plan.requeue =
        next_available.map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default());
    plan
}

/// A new pod for `rs`, from its template as written.
pub fn pod_for(rs: &ReplicaSet) -> Value {
    let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
    pods::from_template(
        template,
        &rs.name_any(),
        &rs.namespace().unwrap_or_default(),
        rs.controller_owner_ref(&()),
        &[],
    )
}

/// Runs the ReplicaSet controller.
pub async fn run(client: Client) {
    let (context, pod_events) = PodOwners::start(&client, "replicaset-controller");
    Controller::new(Api::<ReplicaSet>::all(client), watcher::Config::default())
        .owns_stream(pod_events)
        .run(reconcile, super::error_policy, context)
        .for_each(|_| async {})
        .await;
}

async fn reconcile(
    rs: Arc<ReplicaSet>,
    context: Arc<PodOwners>,
) -> Result<Action, ControllerError> {
    let uid = rs.uid().unwrap_or_default();
    let namespace = rs.namespace().unwrap_or_default();
    let all = context.pods.state();
    let owned = pods::owned_by(&all, &namespace, &uid);
    if !context.caught_up(&uid) {
        return Ok(Action::requeue(Duration::from_millis(50)));
    }
    let plan = plan(&rs, &owned, Timestamp::now());
    let pod_api: Api<DynamicObject> = Api::namespaced_with(
        context.client.clone(),
        &namespace,
        &ApiResource::erase::<Pod>(&()),
    );
    let mut created = Vec::new();
    for _ in 0..plan.create {
        let pod: DynamicObject =
            serde_json::from_value(pod_for(&rs)).map_err(ControllerError::Encode)?;
        match pod_api.create(&PostParams::default(), &pod).await {
            Ok(pod) => {
                let name = pod.name_any();
                record(
                    &context.recorder,
                    &rs.object_ref(&()),
                    false,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                )
                .await;
                created.push((name, pod.resource_version().and_then(|v| v.parse().ok())));
            }
            Err(err) => {
                record(
                    &context.recorder,
                    &rs.object_ref(&()),
                    true,
                    "FailedCreate",
                    format!("Error creating: {err}"),
                )
                .await;
                let failure = json!({"status": {"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": err.to_string()}]}});
                let api: Api<ReplicaSet> = Api::namespaced(context.client.clone(), &namespace);
                let _ = api
                    .patch_status(
                        &rs.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(failure),
                    )
                    .await;
                return Err(err.into());
            }
        }
    }
    for name in &plan.delete {
        match pod_api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                record(
                    &context.recorder,
                    &rs.object_ref(&()),
                    false,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                )
                .await
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(err) => return Err(err.into()),
        }
    }
    context.expect(&uid, &namespace, &created, &plan.delete);
    if let Some(mut status) = plan.status {
        if rs
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| !c.is_empty())
        {
            status["conditions"] = Value::Null;
        }
        let api: Api<ReplicaSet> = Api::namespaced(context.client.clone(), &namespace);
        match api
            .patch_status(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(match plan.requeue {
        Some(after) => Action::requeue(after + Duration::from_millis(20)),
        None => Action::await_change(),
    })
}
