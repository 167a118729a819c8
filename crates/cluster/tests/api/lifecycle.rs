//! Deletion: finalizers, owner-reference garbage collection in all three modes, namespaces.

use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{ConfigMap, Namespace, Pod},
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy},
};
use serde_json::json;

use crate::harness::{eventually, from, local, namespace};

async fn exists<K>(api: &Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.unwrap().is_some()
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let client = local();
    let ns = namespace(&client, "fin").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let response = api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = response
        .left()
        .expect("still there while a finalizer remains");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(exists(&api, "held").await);
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        !exists(&api, "held").await,
        "gone once the last finalizer is removed"
    );
}

async fn owner_and_dependents(
    client: &Client,
    ns: &str,
    owner: &str,
) -> (Api<ReplicaSet>, Api<Pod>) {
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let rs = sets
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": owner}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": owner}},
                "template": {"metadata": {"labels": {"app": owner}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for i in 0..2 {
        // Pods that were never scheduled go at once (no kubelet has to stop them).
        pods.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": format!("{owner}-{i}"), "labels": {"app": owner},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                    "uid": rs.metadata.uid.clone().unwrap(), "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"nodeName": "", "containers": [{"name": "c", "image": "nginx"}]}})),
        )
        .await
        .unwrap();
    }
    (sets, pods)
}

async fn unschedule(pods: &Api<Pod>, name: &str) {
    // Pods are scheduled at create; deleting with grace 0 stands in for the kubelet.
    pods.delete(
        name,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let client = local();
    let ns = namespace(&client, "gc-bg").await;
    let (sets, pods) = owner_and_dependents(&client, &ns, "bg").await;
    sets.delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    assert!(!exists(&sets, "bg").await, "the owner goes first");
    eventually("pods collected", || async {
        let list = pods.list(&Default::default()).await.unwrap();
        list.items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    for i in 0..2 {
        unschedule(&pods, &format!("bg-{i}")).await;
    }
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() {
    let client = local();
    let ns = namespace(&client, "gc-fg").await;
    let (sets, pods) = owner_and_dependents(&client, &ns, "fg").await;
    sets.delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let owner = sets.get("fg").await.unwrap();
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert!(
        owner
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    eventually("dependents marked for deletion", || async {
        let list = pods.list(&Default::default()).await.unwrap();
        list.items.len() == 2
            && list
                .items
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    assert!(
        exists(&sets, "fg").await,
        "the owner waits while dependents remain"
    );
    for i in 0..2 {
        unschedule(&pods, &format!("fg-{i}")).await;
    }
    eventually("owner deleted after its dependents", || async {
        !exists(&sets, "fg").await
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents() {
    let client = local();
    let ns = namespace(&client, "gc-orphan").await;
    let (sets, pods) = owner_and_dependents(&client, &ns, "or").await;
    sets.delete("or", &DeleteParams::orphan()).await.unwrap();
    eventually("owner gone", || async { !exists(&sets, "or").await }).await;
    let list = pods.list(&Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 2, "dependents stay");
    for pod in list.items {
        assert!(
            pod.metadata.owner_references.unwrap_or_default().is_empty(),
            "owner references removed"
        );
        assert!(pod.metadata.deletion_timestamp.is_none());
    }
    let _ = PropagationPolicy::Orphan;
}

#[tokio::test]
async fn dependents_of_a_missing_owner_are_collected() {
    let client = local();
    let ns = namespace(&client, "gc-missing").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "stray", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "00000000-0000-0000-0000-000000000000"}]}})),
    )
    .await
    .unwrap();
    eventually("stray dependent collected", || async {
        !exists(&api, "stray").await
    })
    .await;
}

#[tokio::test]
async fn namespaces_must_exist_and_their_deletion_cascades() {
    let client = local();
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "no-such-namespace");
    let err = missing
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "x"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message.contains("namespaces \"no-such-namespace\" not found")),
        "{err}"
    );

    let ns = namespace(&client, "cascade").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for name in ["a", "b"] {
        api.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": name}})),
        )
        .await
        .unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    eventually("namespace and contents gone", || async {
        !exists(&namespaces, &ns).await
    })
    .await;
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn terminating_namespaces_refuse_new_objects() {
    let client = local();
    let ns = namespace(&client, "term").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        namespaces
            .get(&ns)
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Terminating")
    );
    let err = api
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "late"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err}"
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("namespace gone", || async {
        !exists(&namespaces, &ns).await
    })
    .await;
}

#[tokio::test]
async fn scheduled_pods_terminate_gracefully() {
    let client = local();
    let ns = namespace(&client, "grace").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": 20, "containers": [{"name": "c", "image": "nginx"}]}})),
    )
    .await
    .unwrap();
    let marked = pods
        .delete("p", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(20));
    // The kubelet confirms with grace 0.
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    assert!(!exists(&pods, "p").await);
}
