//! A team switching from Argo Rollouts: a Rollout Argo was running (its ReplicaSet under
//! Argo's hash, its pods, its status, the Services on Argo's hash) is taken over by sluice —
//! here by removing the controller-instance-id label that kept sluice away — with no new
//! ReplicaSet, no pod replaced and no selector changed; the next update then runs as usual.

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_api::Rollout;

use super::{
    from,
    rollout_options::{Flow, rollout, until},
};

/// Argo's hash for the first template (any value sluice would not compute).
const ARGO_HASH: &str = "6d9f8b7c5";

/// What Argo leaves behind for the Rollout `demo` of `flow`: its ReplicaSet (revision
/// `revision`, the template with `extra` merged into its first container) under Argo's hash,
/// the Services on that hash, and its status with `status` added; then the names of the pods
/// Argo's ReplicaSet runs, once both run.
async fn argo_left_behind(
    flow: &Flow,
    revision: i64,
    extra: serde_json::Value,
    status: serde_json::Value,
) -> Vec<String> {
    let rollout = flow.rollouts.get("demo").await.unwrap();
    let mut template = serde_json::to_value(&rollout.spec.template).unwrap();
    template["metadata"]["labels"]["rollouts-pod-template-hash"] = json!(ARGO_HASH);
    if let (Some(container), Some(extra)) = (
        template["spec"]["containers"][0].as_object_mut(),
        extra.as_object(),
    ) {
        container.extend(extra.clone());
    }
    let rs: ReplicaSet = from(json!({
        "metadata": {"name": format!("demo-{ARGO_HASH}"),
            "labels": {"app": "demo", "rollouts-pod-template-hash": ARGO_HASH},
            "annotations": {"rollout.argoproj.io/revision": revision.to_string(), "rollout.argoproj.io/desired-replicas": "2"},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "demo",
                "uid": rollout.uid().unwrap(), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": "demo", "rollouts-pod-template-hash": ARGO_HASH}},
            "template": template},
    }));
    flow.sets.create(&PostParams::default(), &rs).await.unwrap();
    for service in ["active", "preview"] {
        let patch = json!({"spec": {"selector": {"app": "demo", "rollouts-pod-template-hash": ARGO_HASH}},
            "metadata": {"annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "demo"}}});
        flow.services
            .patch(service, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }
    let generation = rollout.metadata.generation.unwrap().to_string();
    let mut recorded = json!({"observedGeneration": generation, "currentPodHash": ARGO_HASH,
        "stableRS": ARGO_HASH, "phase": "Healthy"});
    recorded
        .as_object_mut()
        .unwrap()
        .extend(status.as_object().unwrap().clone());
    flow.patch_status(recorded).await;
    until("Argo's pods running", 30, || async {
        pod_names(flow).await.len() == 2
    })
    .await;
    pod_names(flow).await
}

/// The names of the pods in `flow`'s namespace that are not being deleted.
async fn pod_names(flow: &Flow) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(flow.rollouts.clone().into_client(), &flow.ns);
    let mut names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

/// sluice takes over: the instance-id label that kept it away goes.
async fn take_over(flow: &Flow) {
    let patch =
        json!({"metadata": {"labels": {"argo-rollouts.argoproj.io/controller-instance-id": null}}});
    flow.rollouts
        .patch("demo", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rollout_argo_ran_is_adopted_without_a_redeploy() {
    let blue_green = json!({"autoPromotionEnabled": false});
    let mut argos =
        serde_json::to_value(rollout("example.com/app:1", json!({}), blue_green)).unwrap();
    argos["metadata"]["labels"] =
        json!({"argo-rollouts.argoproj.io/controller-instance-id": "argo"});
    let flow = Flow::start("migration", from::<Rollout>(argos)).await;
    // What Argo left behind: its ReplicaSet (the API server's defaults in its template) and
    // pods, the Services on its hash, its status.
    let before = argo_left_behind(
        &flow,
        4,
        json!({"imagePullPolicy": "IfNotPresent"}),
        json!({"blueGreen": {"activeSelector": ARGO_HASH, "previewSelector": ARGO_HASH}}),
    )
    .await;
    take_over(&flow).await;
    // The label change is a new generation for nothing else: wait until sluice has seen it.
    until("sluice reports the Rollout", 30, || async {
        let status = flow.status().await;
        let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        conditions
            .iter()
            .any(|c| c["type"] == "Healthy" && c["status"] == "True")
    })
    .await;
    let status = flow.status().await;
    assert_eq!(status["currentPodHash"], ARGO_HASH, "{status}");
    assert_eq!(status["stableRS"], ARGO_HASH);
    assert_eq!(flow.replica_sets().await.len(), 1, "no new ReplicaSet");
    assert_eq!(flow.selects("active").await.as_deref(), Some(ARGO_HASH));
    assert_eq!(pod_names(&flow).await, before, "no pod replaced");

    // The next version is an ordinary update from Argo's ReplicaSet, with a new revision.
    flow.set_image("example.com/app:2").await;
    let paused = flow.phase("Paused").await;
    let new = paused["currentPodHash"].as_str().unwrap().to_owned();
    assert_eq!(flow.replica_sets().await[&new].0, 5);
    assert_eq!(flow.selects("active").await.as_deref(), Some(ARGO_HASH));
    assert_eq!(flow.selects("preview").await, Some(new));
}

#[tokio::test]
async fn a_canary_argo_ran_is_adopted_without_a_redeploy() {
    let flow = Flow::start(
        "canary-migration",
        super::rollout_restarts::canary_rollout("argo"),
    )
    .await;
    // Argo's step hash is computed from Go's encoding; any other value must not restart steps.
    let before = argo_left_behind(
        &flow,
        7,
        json!({}),
        json!({"currentStepIndex": 3, "currentStepHash": "5b9c7d4f4", "canary": {}}),
    )
    .await;
    take_over(&flow).await;
    let status = flow.phase("Healthy").await;
    assert_eq!(status["currentPodHash"], ARGO_HASH, "{status}");
    assert_eq!(status["stableRS"], ARGO_HASH);
    assert_eq!(status["currentStepIndex"], 3);
    assert_eq!(flow.replica_sets().await.len(), 1, "no new ReplicaSet");
    assert_eq!(pod_names(&flow).await, before, "no pod replaced");
    assert!(
        flow.events()
            .await
            .iter()
            .all(|e| !e.starts_with("SkipSteps")),
        "adoption is no rollback"
    );

    flow.set_image("example.com/app:2").await;
    let paused = flow.phase("Paused").await;
    let new = paused["currentPodHash"].as_str().unwrap().to_owned();
    assert_eq!(flow.replica_sets().await[&new], (8, 1));
    assert_eq!(flow.replicas_of(ARGO_HASH).await, Some(1));
    assert_eq!(flow.selects("active").await.as_deref(), Some(ARGO_HASH));
}
