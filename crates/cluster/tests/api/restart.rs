//! Restarts of the control plane: objects and resourceVersions persist, watches resume, and an
//! expired resourceVersion makes kube-rs re-list.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{PostParams, WatchEvent, WatchParams},
    runtime::watcher::{self, Event},
};
use serde_json::json;
use sluice_cluster::{
    Cluster,
    store::{Durability, ObjectKey, ResourceKey, Store, StoreConfig},
};

use crate::harness::{client_from_kubeconfig, config};

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

async fn free_address() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn objects_and_resource_versions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(config(dir.path(), "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let before = api
        .create(&PostParams::default(), &configmap("kept"))
        .await
        .unwrap();
    let rv_before: u64 = before.metadata.resource_version.unwrap().parse().unwrap();
    cluster.shutdown().await;

    let cluster = Cluster::start(config(dir.path(), "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let kept = api.get("kept").await.unwrap();
    assert_eq!(kept.metadata.uid, before.metadata.uid);
    let after = api
        .create(&PostParams::default(), &configmap("new"))
        .await
        .unwrap();
    let rv_after: u64 = after.metadata.resource_version.unwrap().parse().unwrap();
    assert!(
        rv_after > rv_before,
        "resourceVersions keep increasing across restarts"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_watcher_resumes_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address().await;
    let cluster = Cluster::start(config(dir.path(), address)).await.unwrap();
    let client = client_from_kubeconfig(cluster.kubeconfig()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &configmap("before"))
        .await
        .unwrap();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    // Drain the initial list.
    loop {
        if let Event::InitDone = events.try_next().await.unwrap().unwrap() {
            break;
        }
    }
    cluster.shutdown().await;
    let cluster = Cluster::start(config(dir.path(), address)).await.unwrap();
    let writer: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    writer
        .create(&PostParams::default(), &configmap("after"))
        .await
        .unwrap();
    let mut relisted = false;
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                Some(Ok(Event::Apply(cm))) if cm.metadata.name.as_deref() == Some("after") => {
                    return true;
                }
                Some(Ok(Event::Init)) => relisted = true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(seen, "the watcher saw the object created after the restart");
    assert!(
        !relisted,
        "history reloaded from the store lets the watch resume without a re-list"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_expired_resource_version_answers_410_and_kube_re_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = config(dir.path(), "127.0.0.1:0".parse().unwrap());
    small.store = StoreConfig {
        history: 5,
        ..StoreConfig::default()
    };
    let cluster = Cluster::start(small.clone()).await.unwrap();
    let client = client_from_kubeconfig(cluster.kubeconfig()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = api
        .create(&PostParams::default(), &configmap("first"))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    for i in 0..10 {
        api.create(&PostParams::default(), &configmap(&format!("later-{i}")))
            .await
            .unwrap();
    }
    // HTTP 200, then one ERROR event with a 410 Status.
    let mut stream = api
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    cluster.shutdown().await;

    // Writes while the cluster is down push a running watcher's resourceVersion out of history.
    let mut events = {
        let cluster = Cluster::start(small.clone()).await.unwrap();
        let address = cluster.address();
        let client = client_from_kubeconfig(cluster.kubeconfig()).await;
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        loop {
            if let Event::InitDone = events.try_next().await.unwrap().unwrap() {
                break;
            }
        }
        cluster.shutdown().await;
        let store = Store::open(
            &dir.path().join("state.db"),
            Durability::Normal,
            StoreConfig {
                history: 5,
                ..Default::default()
            },
        )
        .unwrap();
        store
            .write(|txn| {
                for i in 0..10 {
                    let name = format!("offline-{i}");
                    let value = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "uid": format!("offline-{i}")}});
                    txn.put(&ResourceKey::new("", "configmaps"), ObjectKey::new("default", &name), value);
                }
                Ok::<_, sluice_cluster::store::StoreError>(())
            })
            .unwrap();
        drop(store);
        let mut again = small.clone();
        again.listen = address;
        let cluster = Cluster::start(again).await.unwrap();
        std::mem::forget(cluster);
        events
    };
    let relisted = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(Ok(Event::InitApply(cm))) = events.next().await
                && cm.metadata.name.as_deref() == Some("offline-9")
            {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(
        relisted,
        "the watcher re-listed and found objects written while it was away"
    );
}

/// A Deployment stored by an older sluice, without the defaults the API server applies now,
/// gets them at the next start, at the same generation, so a later label does not look like a
/// new template.
#[tokio::test]
async fn objects_stored_without_defaults_get_them_at_start() {
    use k8s_openapi::api::apps::v1::Deployment;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("state.db"),
        Durability::Normal,
        StoreConfig::default(),
    )
    .unwrap();
    store
        .write(|txn| {
            let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "old", "namespace": "default", "uid": "u-old", "generation": 4,
                    "creationTimestamp": "2026-11-01T10:00:00Z"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "old"}},
                    "template": {"metadata": {"labels": {"app": "old"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}}}});
            txn.put(
                &ResourceKey::new("apps", "deployments"),
                ObjectKey::new("default", "old"),
                old,
            );
            Ok::<_, sluice_cluster::store::StoreError>(())
        })
        .unwrap();
    drop(store);
    let cluster = Cluster::start(config(dir.path(), "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let read = serde_json::to_value(api.get("old").await.unwrap()).unwrap();
    let container = &read["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["ports"][0]["protocol"], "TCP");
    assert_eq!(read["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(read["metadata"]["generation"], 4);
    let labelled = api
        .patch(
            "old",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"team": "web"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(4),
        "a label is no new template"
    );
    cluster.shutdown().await;
}
