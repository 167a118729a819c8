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

#[tokio::test]
async fn a_rollout_argo_ran_is_adopted_without_a_redeploy() {
    let blue_green = json!({"autoPromotionEnabled": false});
    let mut argos =
        serde_json::to_value(rollout("example.com/app:1", json!({}), blue_green)).unwrap();
    argos["metadata"]["labels"] =
        json!({"argo-rollouts.argoproj.io/controller-instance-id": "argo"});
    let flow = Flow::start("migration", from::<Rollout>(argos)).await;
    let rollout = flow.rollouts.get("demo").await.unwrap();

    // What Argo left behind: its ReplicaSet and pods, the Services on its hash, its status.
    let mut template = serde_json::to_value(&rollout.spec.template).unwrap();
    template["metadata"]["labels"]["rollouts-pod-template-hash"] = json!(ARGO_HASH);
    template["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let rs: ReplicaSet = from(json!({
        "metadata": {"name": format!("demo-{ARGO_HASH}"),
            "labels": {"app": "demo", "rollouts-pod-template-hash": ARGO_HASH},
            "annotations": {"rollout.argoproj.io/revision": "4", "rollout.argoproj.io/desired-replicas": "2"},
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
    flow.patch_status(
        json!({"observedGeneration": generation, "currentPodHash": ARGO_HASH,
        "stableRS": ARGO_HASH, "phase": "Healthy",
        "blueGreen": {"activeSelector": ARGO_HASH, "previewSelector": ARGO_HASH}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(flow.rollouts.clone().into_client(), &flow.ns);
    let pod_names = || async {
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
    };
    until("Argo's pods running", 30, || async {
        pod_names().await.len() == 2
    })
    .await;
    let before = pod_names().await;

    // sluice takes over.
    let take_over =
        json!({"metadata": {"labels": {"argo-rollouts.argoproj.io/controller-instance-id": null}}});
    flow.rollouts
        .patch("demo", &PatchParams::default(), &Patch::Merge(take_over))
        .await
        .unwrap();
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
    assert_eq!(pod_names().await, before, "no pod replaced");

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
    let rollout = flow.rollouts.get("demo").await.unwrap();
    let mut template = serde_json::to_value(&rollout.spec.template).unwrap();
    template["metadata"]["labels"]["rollouts-pod-template-hash"] = json!(ARGO_HASH);
    let rs: ReplicaSet = from(json!({
        "metadata": {"name": format!("demo-{ARGO_HASH}"),
            "labels": {"app": "demo", "rollouts-pod-template-hash": ARGO_HASH},
            "annotations": {"rollout.argoproj.io/revision": "7", "rollout.argoproj.io/desired-replicas": "2"},
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
    // Argo's step hash is computed from Go's encoding; any other value must not restart steps.
    flow.patch_status(
        json!({"observedGeneration": generation, "currentPodHash": ARGO_HASH,
        "stableRS": ARGO_HASH, "phase": "Healthy", "currentStepIndex": 3,
        "currentStepHash": "5b9c7d4f4", "canary": {}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(flow.rollouts.clone().into_client(), &flow.ns);
    let pod_names = || async {
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
    };
    until("Argo's pods running", 30, || async {
        pod_names().await.len() == 2
    })
    .await;
    let before = pod_names().await;
    let take_over =
        json!({"metadata": {"labels": {"argo-rollouts.argoproj.io/controller-instance-id": null}}});
    flow.rollouts
        .patch("demo", &PatchParams::default(), &Patch::Merge(take_over))
        .await
        .unwrap();
    let status = flow.phase("Healthy").await;
    assert_eq!(status["currentPodHash"], ARGO_HASH, "{status}");
    assert_eq!(status["stableRS"], ARGO_HASH);
    assert_eq!(status["currentStepIndex"], 3);
    assert_eq!(flow.replica_sets().await.len(), 1, "no new ReplicaSet");
    assert_eq!(pod_names().await, before, "no pod replaced");
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
