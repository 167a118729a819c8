//! The seed's operator workflow, with kubectl as the operator types it: a root Application
//! whose manifests are Applications — the platform (the Rollout CRD) in wave −1, the workload
//! after — synced by `kubectl patch` of the root's `operation`; `kubectl wait
//! crd/rollouts.argoproj.io --for=condition=Established`; then the workload's own sync, and a
//! wait for its Rollout to be Paused or Healthy.

use std::process::Output;

use serde_json::json;
use sluice_testkit::git::repository;

use super::gitops::{application, apps, as_refs};
use super::gitops_apps::rollout;
use super::gitops_waves::wait_for;
use super::*;

async fn kubectl(args: &[String]) -> Output {
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(SHARED.cluster.kubeconfig())
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn the_seed_workflow_root_then_crd_established_then_workload() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed: skipped");
        return;
    }
    let ns = namespace(&client(), "gitops-seed").await;
    let crd = include_str!("../../../../deploy/crds/rollout-crd.yaml");
    let platform = repository(&[("rollout-crd.yaml", crd)]);
    let workload = repository(&[("rollout.yaml", &rollout("canary", "blue", 30))]);
    let child = |name: &str, repo: &std::path::Path, wave: &str| {
        serde_json::to_string(&json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": format!("{ns}-{name}"), "namespace": "argocd",
                "annotations": {"argocd.argoproj.io/sync-wave": wave}},
            "spec": {"project": "default",
                "source": {"repoURL": format!("file://{}", repo.display()), "targetRevision": "HEAD", "path": "."},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}}}))
        .unwrap()
    };
    let files = [
        ("platform.yaml", child("platform", platform.path(), "-1")),
        ("workload.yaml", child("workload", workload.path(), "0")),
    ];
    let root_repo = repository(&as_refs(&files));
    let root = format!("{ns}-root");
    application(&root, root_repo.path(), &ns, json!({})).await;
    let patch =
        r#"{"operation": {"initiatedBy": {"username": "operator"}, "sync": {"prune": true}}}"#;
    let out = kubectl(&[
        "patch".into(),
        "application".into(),
        root.clone(),
        "-n".into(),
        "argocd".into(),
        "--type".into(),
        "merge".into(),
        "-p".into(),
        patch.into(),
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    // The platform child (wave −1) is created first; it is manual too: the operator syncs
    // it, then waits for the CRD. (The root's operation itself may still wait on the
    // workload child when child health is opted in through argocd-cm.)
    let platform_app = format!("{ns}-platform");
    eventually("the platform Application", || async {
        apps().get_opt(&platform_app).await.unwrap().is_some()
    })
    .await;
    let out = kubectl(&[
        "patch".into(),
        "application".into(),
        platform_app.clone(),
        "-n".into(),
        "argocd".into(),
        "--type".into(),
        "merge".into(),
        "-p".into(),
        patch.into(),
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    wait_for(&platform_app, "the platform synced", 60, |s| {
        s["operationState"]["phase"] == "Succeeded"
    })
    .await;
    let out = kubectl(&words(
        "wait crd/rollouts.argoproj.io --for=condition=Established --timeout=60s",
    ))
    .await;
    assert!(out.status.success(), "{out:?}");
    let workload_app = format!("{ns}-workload");
    eventually("the workload Application", || async {
        apps().get_opt(&workload_app).await.unwrap().is_some()
    })
    .await;
    let out = kubectl(&[
        "patch".into(),
        "application".into(),
        workload_app.clone(),
        "-n".into(),
        "argocd".into(),
        "--type".into(),
        "merge".into(),
        "-p".into(),
        patch.into(),
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    wait_for(&workload_app, "the workload synced", 60, |s| {
        s["operationState"]["phase"] == "Succeeded"
    })
    .await;
    let out = kubectl(&words(&format!(
        "wait rollout/web -n {ns} --for=condition=Healthy --timeout=60s"
    )))
    .await;
    assert!(out.status.success(), "{out:?}");
}
