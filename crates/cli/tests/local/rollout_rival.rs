//! Argo Rollouts' own controller beside sluice: a Deployment `argo-rollouts` in namespace
//! `argo-rollouts`, running with Argo's `--instance-id` (this test's own, so the Rollouts of
//! other tests, unlabelled, are not contended), and a sluice controller with the same
//! instance id: its Rollout gets one `ArgoRolloutsControllerRunning` Warning and `sluice get
//! rollout` says the same; a Rollout labelled for another instance id, or one created once
//! Argo's Deployment is scaled to 0, gets neither.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use sluice_api::{Rollout, names::label};
use sluice_rollouts::{controller::Settings, rival};

use super::*;

fn rollout(name: &str, instance: &str) -> Rollout {
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "labels": {label::CONTROLLER_INSTANCE_ID: instance}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:blue"}]}},
            "strategy": {"canary": {}}}}),
    )
}

/// `sluice get rollout NAME`'s stderr.
fn get_stderr(name: &str, ns: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["get", "rollout", name, "-n", ns, "--kubeconfig"])
        .arg(SHARED.cluster.kubeconfig())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn warnings(ns: &str, rollout: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client(), ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(rival::REASON)
                && e.involved_object.name.as_deref() == Some(rollout)
        })
        .collect()
}

/// Waits until the controller has handled the Rollout (its status names the revision).
async fn reconciled(rollouts: &Api<Rollout>, name: &str) {
    eventually(&format!("{name} reconciled"), || async {
        let rollout = rollouts.get(name).await.unwrap();
        rollout.status.is_some_and(|s| s.current_pod_hash.is_some())
    })
    .await;
}

#[tokio::test]
async fn a_running_argo_rollouts_controller_is_warned_about_once() {
    let client = client();
    let ns = namespace(&client, "rival").await;
    // Argo's namespace, shared by whoever runs this first.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let argo_ns: Namespace = from(json!({"metadata": {"name": "argo-rollouts"}}));
    let _ = namespaces.create(&PostParams::default(), &argo_ns).await;
    let argo: Deployment = from(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": rival::DEPLOYMENT, "namespace": "argo-rollouts"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "argo-rollouts"}},
            "template": {"metadata": {"labels": {"app": "argo-rollouts"}},
                "spec": {"containers": [{"name": "argo-rollouts",
                    "image": "example.com/listener:1",
                    "args": ["--instance-id", ns.as_str()]}]}}}}));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "argo-rollouts");
    deployments
        .create(&PostParams::default(), &argo)
        .await
        .unwrap();
    let controller = tokio::spawn(sluice_rollouts::controller::run(
        client.clone(),
        Settings {
            instance_id: Some(ns.clone()),
            ..Settings::default()
        },
        Default::default(),
    ));
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    rollouts
        .create(&PostParams::default(), &rollout("contended", &ns))
        .await
        .unwrap();
    eventually("the Warning event", || async {
        !warnings(&ns, "contended").await.is_empty()
    })
    .await;
    let warned = warnings(&ns, "contended").await;
    let message = warned[0].message.clone().unwrap_or_default();
    assert_eq!(warned[0].type_.as_deref(), Some("Warning"));
    assert!(
        message.contains("(Deployment argo-rollouts/argo-rollouts)")
            && message.contains(&format!("{}={ns}", label::CONTROLLER_INSTANCE_ID))
            && message.contains("--instance-id"),
        "{message}"
    );
    // Later reconciles (a change of the Rollout) do not repeat it.
    let touch = json!({"metadata": {"annotations": {"touched": "yes"}}});
    rollouts
        .patch("contended", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    reconciled(&rollouts, "contended").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warned = warnings(&ns, "contended").await;
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].count.unwrap_or(1), 1, "{warned:?}");
    assert!(
        warned[0]
            .series
            .as_ref()
            .is_none_or(|s| s.count.unwrap_or(1) <= 1),
        "{warned:?}"
    );
    let shown = get_stderr("contended", &ns);
    assert!(
        shown.starts_with(
            "Warning: Argo Rollouts' controller is running (Deployment argo-rollouts/argo-rollouts)"
        ),
        "{shown}"
    );

    // Labelled for another instance id: Argo's controller leaves it alone.
    let other = format!("{ns}-other");
    rollouts
        .create(&PostParams::default(), &rollout("elsewhere", &other))
        .await
        .unwrap();
    assert!(!get_stderr("elsewhere", &ns).contains("Warning"));

    // Argo's controller scaled to 0: a new Rollout of this instance is not warned about.
    let scale = json!({"spec": {"replicas": 0}});
    deployments
        .patch(
            rival::DEPLOYMENT,
            &PatchParams::default(),
            &Patch::Merge(&scale),
        )
        .await
        .unwrap();
    assert!(!get_stderr("contended", &ns).contains("Warning"));
    // The controller's watch sees the scale-down before it handles the new Rollout.
    tokio::time::sleep(Duration::from_secs(1)).await;
    rollouts
        .create(&PostParams::default(), &rollout("alone", &ns))
        .await
        .unwrap();
    reconciled(&rollouts, "alone").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(warnings(&ns, "alone").await.is_empty());
    assert!(!get_stderr("alone", &ns).contains("Warning"));

    controller.abort();
    deployments
        .delete(rival::DEPLOYMENT, &Default::default())
        .await
        .unwrap();
}
