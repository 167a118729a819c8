//! The user's whole loop, as one test, on the in-process cluster: a CD repository with a
//! blue-green Rollout, its active and preview Services, an Ingress and a ConfigMap in wave −1;
//! an Application with automated prune and self-heal. Commit a new tag → synced, preview on
//! the new ReplicaSet, paused (Synced, Suspended, operation Succeeded) → promote → the
//! Ingress serves the new version with no failed request → `git revert` → synced, the Rollout
//! goes back (fast rollback inside the scale-down delay) → the Ingress serves the old version;
//! and a `sluice undo` while self-heal is on is put back to what Git says, with an event.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{Event, Service},
};
use kube::api::ListParams;
use serde_json::{Value, json};
use sluice_testkit::git::{commit, git, repository};

use super::gitops::{application, as_refs, rollout_image, service_yaml};
use super::gitops_apps::{rollout, sluice};
use super::gitops_waves::{config_map, wait_for};
use super::ingress::{Connection, ingress_address};
use super::*;

fn ingress_yaml(host: &str) -> String {
    serde_json::to_string(
        &json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "web-active", "port": {"number": 80}}}}]}}]}}),
    )
    .unwrap()
}

/// What production (the Ingress) answers now: the demo's `X-Version`.
async fn production(host: &str) -> Option<String> {
    let mut connection = Connection::open(ingress_address()).await;
    let (status, version, _) = connection.get(host, "/color", &[]).await.ok()?;
    (status == 200).then_some(version)
}

async fn serves(host: &str, version: &str, stage: &str) {
    eventually(&format!("production on {version} ({stage})"), || async {
        production(host).await.as_deref() == Some(version)
    })
    .await;
}

fn hash_of(service: &Service) -> String {
    service.spec.as_ref().unwrap().selector.as_ref().unwrap()["rollouts-pod-template-hash"].clone()
}

#[tokio::test]
async fn the_whole_loop_commit_preview_promote_revert_and_undo_healed() {
    let ns = namespace(&client(), "gitops-loop").await;
    let host = format!("web-{ns}.example");
    let files = |tag: &str| {
        vec![
            ("rollout.yaml", rollout("blueGreen", tag, 30)),
            ("active-service.yaml", service_yaml("web-active")),
            ("preview-service.yaml", service_yaml("web-preview")),
            ("ingress.yaml", ingress_yaml(&host)),
            (
                "config.yaml",
                config_map("web-config", json!({"argocd.argoproj.io/sync-wave": "-1"})),
            ),
        ]
    };
    let blue = files("blue");
    let repo = repository(&as_refs(&blue));
    let name = format!("{ns}-app");
    application(
        &name,
        repo.path(),
        &ns,
        json!({"automated": {"prune": true, "selfHeal": true}}),
    )
    .await;
    wait_for(&name, "Synced and Healthy on blue", 90, |s| {
        s["sync"]["status"] == "Synced" && s["health"]["status"] == "Healthy"
    })
    .await;
    serves(&host, "blue", "first").await;

    // Commit a new tag: synced, a new ReplicaSet, the preview on it, paused.
    let green = files("green");
    let second = commit(repo.path(), &as_refs(&green), "green");
    let s = wait_for(&name, "green synced, Suspended", 90, |s| {
        s["operationState"]["syncResult"]["revision"] == second.as_str()
            && s["operationState"]["phase"] == "Succeeded"
            && s["sync"]["status"] == "Synced"
            && s["health"]["status"] == "Suspended"
    })
    .await;
    assert_eq!(s["sync"]["revision"], second.as_str());
    let sets: Api<ReplicaSet> = Api::namespaced(client(), &ns);
    let listed = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 2, "a new ReplicaSet beside the stable one");
    let services: Api<Service> = Api::namespaced(client(), &ns);
    let preview = hash_of(&services.get("web-preview").await.unwrap());
    let active = hash_of(&services.get("web-active").await.unwrap());
    assert_ne!(preview, active, "the preview is on the new ReplicaSet");
    assert_eq!(production(&host).await.as_deref(), Some("blue"));

    // Promote under load: production moves to green with no failed request.
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (host, stop) = (host.clone(), stop.clone());
            tokio::spawn(async move {
                let mut connection = Connection::open(ingress_address()).await;
                let mut replies = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_millis(40));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    replies.push(connection.get(&host, "/color", &[]).await);
                }
                replies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = sluice(&["promote", "web", "-n", &ns]).await;
    assert!(out.status.success(), "{out:?}");
    serves(&host, "green", "promoted").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut replies = Vec::new();
    for worker in workers {
        replies.extend(worker.await.unwrap());
    }
    let failed: Vec<_> = replies
        .iter()
        .filter(|r| !matches!(r, Ok((200, _, _))))
        .collect();
    assert!(replies.len() > 20, "{} requests", replies.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        replies.len(),
        &failed[..failed.len().min(3)]
    );
    wait_for(&name, "Healthy on green", 60, |s| {
        s["health"]["status"] == "Healthy"
    })
    .await;

    // git revert: synced, the Rollout goes back at once (inside the scale-down delay).
    git(repo.path(), &["revert", "--no-edit", "HEAD"]);
    let third = git(repo.path(), &["rev-parse", "HEAD"]);
    wait_for(&name, "the revert synced", 60, |s: &Value| {
        s["operationState"]["syncResult"]["revision"] == third.as_str()
            && s["operationState"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(
        rollout_image(&ns).await.as_deref(),
        Some("argoproj/rollouts-demo:blue")
    );
    serves(&host, "blue", "reverted").await;

    // `sluice undo` while self-heal is on: put back to what Git says, with an event.
    wait_for(&name, "Synced and Healthy on blue again", 60, |s| {
        s["sync"]["status"] == "Synced" && s["health"]["status"] == "Healthy"
    })
    .await;
    let out = sluice(&["undo", "web", "-n", &ns]).await;
    assert!(out.status.success(), "{out:?}");
    eventually("the undo healed back to Git", || async {
        let events: Api<Event> = Api::namespaced(client(), &ns);
        let healed = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("SelfHeal")
                    && e.involved_object.kind.as_deref() == Some("Rollout")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("Git is the source of truth"))
            });
        healed && rollout_image(&ns).await.as_deref() == Some("argoproj/rollouts-demo:blue")
    })
    .await;
    // The spec is Git's again; what production serves is the Rollout's to decide: the undo
    // and the heal are two template changes, and a blue-green update outside the fast-rollback
    // window waits for promotion.
    let s = wait_for(&name, "Synced after the heal", 60, |s| {
        s["sync"]["status"] == "Synced"
            && matches!(
                s["health"]["status"].as_str(),
                Some("Healthy" | "Suspended")
            )
    })
    .await;
    if s["health"]["status"] == "Suspended" {
        let out = sluice(&["promote", "web", "-n", &ns]).await;
        assert!(out.status.success(), "{out:?}");
    }
    serves(&host, "blue", "healed").await;
}
