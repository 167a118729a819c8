//! The scheduler for pods the API server could not place at create (the node cordoned or
//! tainted, or a `nodeSelector` it does not match; see [`crate::scheduling`]): each waits,
//! Pending with kube-scheduler's `Unschedulable` condition and a `FailedScheduling` event, and
//! is bound through `pods/binding` once the node takes it (`kubectl uncordon`). Observe (pod,
//! node) → [`plan`] → apply.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use serde_json::{Value, json};

use super::{ControllerError, Recorder, record, recorder};
use crate::{admission::NODE_NAME, scheduling};

/// What to do with one unbound pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Bind it to the node.
    Bind,
    /// Report why it waits (the condition, and an event when the reason is new).
    Wait {
        /// kube-scheduler's message.
        message: String,
        /// Whether the pod's condition already says so.
        reported: bool,
    },
    /// Nothing: bound, being deleted, or no node registered yet.
    Nothing,
}

/// The step for `pod` given the node (`None` before the kubelet registers it).
pub fn plan(pod: &Value, node: Option<&Value>) -> Step {
    let bound = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    if bound || !pod["metadata"]["deletionTimestamp"].is_null() {
        return Step::Nothing;
    }
    let Some(node) = node else {
        return Step::Nothing;
    };
    match scheduling::fits(node, &pod["spec"]) {
        Ok(()) => Step::Bind,
        Err(unfit) => {
            let message = unfit.message();
            let reported = pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "PodScheduled" && c["message"] == message.as_str());
            Step::Wait { message, reported }
        }
    }
}

struct Context {
    client: Client,
    recorder: Recorder,
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let node = Api::<Node>::all(ctx.client.clone())
        .get_opt(NODE_NAME)
        .await?
        .map(|n| serde_json::to_value(n).map_err(ControllerError::Encode))
        .transpose()?;
    let value = serde_json::to_value(pod.as_ref()).map_err(ControllerError::Encode)?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    match plan(&value, node.as_ref()) {
        // Without a node, the Node watch wakes every pending pod once one registers.
        Step::Nothing => {}
        Step::Bind => {
            let binding = json!({"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME}});
            match pods
                .create_subresource::<Value, Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await
            {
                Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => {}
                other => drop(other?),
            }
        }
        Step::Wait { message, reported } => {
            if !reported {
                let now = crate::object::timestamp(jiff::Timestamp::now());
                let patch = json!({"status": {"conditions": [{"type": "PodScheduled",
                    "status": "False", "reason": "Unschedulable", "message": message,
                    "lastProbeTime": null, "lastTransitionTime": now}]}});
                pods.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await?;
                let reference = pod.object_ref(&());
                record(&ctx.recorder, &reference, true, "FailedScheduling", message).await;
            }
        }
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Pod>, err: &ControllerError, _: Arc<Context>) -> Action {
    tracing::debug!("scheduler: {err}");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the scheduler until the client's server goes away.
pub async fn run(client: Client) {
    let pending = watcher::Config::default().fields("spec.nodeName=");
    let controller = Controller::new(Api::<Pod>::all(client.clone()), pending);
    let store = controller.store();
    let ctx = Arc::new(Context {
        recorder: recorder(&client, "default-scheduler"),
        client: client.clone(),
    });
    controller
        .watches(
            Api::<Node>::all(client),
            watcher::Config::default(),
            move |_node| {
                store
                    .state()
                    .iter()
                    .map(|p| ObjectRef::from_obj(p.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_pods_wait_for_the_node_to_take_them() {
        let node = json!({"metadata": {"name": NODE_NAME}, "spec": {}});
        let cordoned = json!({"metadata": {"name": NODE_NAME}, "spec": {"unschedulable": true}});
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        assert_eq!(plan(&pod, Some(&node)), Step::Bind);
        assert_eq!(plan(&pod, None), Step::Nothing);
        let message = scheduling::Unfit::Unschedulable.message();
        assert_eq!(
            plan(&pod, Some(&cordoned)),
            Step::Wait {
                message: message.clone(),
                reported: false
            }
        );
        let mut waiting = pod.clone();
        waiting["status"]["conditions"] =
            json!([{"type": "PodScheduled", "status": "False", "message": message}]);
        assert_eq!(
            plan(&waiting, Some(&cordoned)),
            Step::Wait {
                message,
                reported: true
            }
        );
        let mut bound = pod.clone();
        bound["spec"]["nodeName"] = json!(NODE_NAME);
        assert_eq!(plan(&bound, Some(&cordoned)), Step::Nothing);
    }
}
