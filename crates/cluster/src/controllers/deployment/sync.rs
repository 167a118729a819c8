//! The Deployment controller's applier: watches, then executes each [`Plan`](super::Plan).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, reflector::Store, watcher},
};
use serde_json::{Value, json};

use super::{Deployment, HASH_LABEL, REVISION, Step, plan};
use crate::controllers::{ControllerError, Recorder, record, replicaset::ReplicaSet};

struct Context {
    client: Client,
    sets: Store<ReplicaSet>,
    recorder: Recorder,
}

/// Runs the Deployment controller.
pub async fn run(client: Client) {
    let (sets, set_events) = crate::controllers::watched::<ReplicaSet>(&client);
    let context = Arc::new(Context {
        recorder: crate::controllers::recorder(&client, "deployment-controller"),
        client: client.clone(),
        sets,
    });
    Controller::new(Api::<Deployment>::all(client), watcher::Config::default())
        .owns_stream(set_events)
        .run(reconcile, crate::controllers::error_policy, context)
        .for_each(|_| async {})
        .await;
}

fn new_replicaset(
    deployment: &Deployment,
    name: &str,
    hash: &str,
    revision: i64,
    replicas: i32,
) -> Value {
    let spec = deployment.spec.clone().unwrap_or_default();
    let mut template = spec
        .template
        .map_or_else(|| json!({}), |t| Value::Object(t.into_object()));
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector =
        serde_json::to_value(spec.selector.unwrap_or_default()).unwrap_or_else(|_| json!({}));
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let owner = deployment.controller_owner_ref(&()).map(|mut r| {
        r.block_owner_deletion = Some(true);
        r
    });
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": deployment.namespace(), "labels": template["metadata"]["labels"],
            "annotations": {REVISION: revision.to_string(), "deployment.kubernetes.io/desired-replicas": spec.replicas.unwrap_or(1).to_string()},
            "ownerReferences": [owner]},
        "spec": {"replicas": replicas, "minReadySeconds": spec.min_ready_seconds.unwrap_or(0), "selector": selector, "template": template},
    })
}

async fn reconcile(
    deployment: Arc<Deployment>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    let uid = deployment.uid().unwrap_or_default();
    let namespace = deployment.namespace().unwrap_or_default();
    let all = context.sets.state();
    let owned: Vec<&ReplicaSet> = all
        .iter()
        .map(|rs| rs.as_ref())
        .filter(|rs| {
            rs.namespace().as_deref() == Some(namespace.as_str())
                && rs
                    .owner_references()
                    .iter()
                    .any(|r| r.controller == Some(true) && r.uid == uid)
        })
        .collect();
    let plan = plan(&deployment, &owned, Timestamp::now());
    let name = deployment.name_any();
    let reference = deployment.object_ref(&());
    let sets: Api<ReplicaSet> = Api::namespaced(context.client.clone(), &namespace);
    let raw: Api<DynamicObject> = Api::namespaced_with(
        context.client.clone(),
        &namespace,
        &ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
    );
    for step in &plan.steps {
        match step {
            Step::Create {
                name: rs,
                hash,
                revision,
                replicas,
            } => {
                let object: DynamicObject = serde_json::from_value(new_replicaset(
                    &deployment,
                    rs,
                    hash,
                    *revision,
                    *replicas,
                ))
                .map_err(ControllerError::Encode)?;
                match raw.create(&PostParams::default(), &object).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(err) => return Err(err.into()),
                }
                record(
                    &context.recorder,
                    &reference,
                    false,
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {rs} from 0 to {replicas}"),
                )
                .await;
                // The store sees the new set on a later reconcile.
                return Ok(Action::requeue(Duration::from_millis(100)));
            }
            Step::Scale { name: rs, from, to } => {
                sets.patch(rs, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": to},
                    "metadata": {"annotations": {"deployment.kubernetes.io/desired-replicas": deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).to_string()}}})))
                    .await?;
                let verb = if to > from { "up" } else { "down" };
                record(
                    &context.recorder,
                    &reference,
                    false,
                    "ScalingReplicaSet",
                    format!("Scaled {verb} replica set {rs} from {from} to {to}"),
                )
                .await;
            }
            Step::Delete(rs) => match sets.delete(rs, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(err) => return Err(err.into()),
            },
            Step::Revision { name: rs, revision } => {
                sets.patch(
                    rs,
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {REVISION: revision.to_string()}}}),
                    ),
                )
                .await?;
            }
        }
    }
    let api: Api<Deployment> = Api::namespaced(context.client.clone(), &namespace);
    if let Some(revision) = plan.revision {
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {REVISION: revision.to_string()}}})),
        )
        .await?;
    }
    if let Some(status) = plan.status {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    Ok(match plan.requeue {
        Some(after) => Action::requeue(after.min(Duration::from_secs(60))),
        None => Action::await_change(),
    })
}
