//! kube-runtime's building blocks against the embedded server: a Controller reconciling a
//! Rollout, and Lease-based leader election by optimistic concurrency.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, watcher},
};
use serde_json::json;
use sluice_api::Rollout;

use crate::harness::{eventually, local, namespace, tcp};

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Failed(#[from] kube::Error);

async fn reconcile(rollout: Arc<Rollout>, client: Arc<Client>) -> Result<Action, Failed> {
    let api: Api<Rollout> = Api::namespaced((*client).clone(), &rollout.namespace().unwrap());
    let generation = rollout.metadata.generation.unwrap_or_default().to_string();
    let status = json!({"status": {"observedGeneration": generation, "phase": "Healthy"}});
    api.patch_status(
        &rollout.name_any(),
        &PatchParams::default(),
        &Patch::Merge(status),
    )
    .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Rollout>, _: &Failed, _: Arc<Client>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test]
async fn a_controller_reconciles_rollouts() {
    for client in [tcp().await, local()] {
        let ns = namespace(&client, "ctrl").await;
        let api: Api<Rollout> = Api::namespaced(client.clone(), &ns);
        let controller = Controller::new(api.clone(), watcher::Config::default())
            .run(reconcile, error_policy, Arc::new(client.clone()))
            .for_each(|_| async {});
        let task = tokio::spawn(controller);
        let rollout: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "demo"},
            "spec": {"selector": {"matchLabels": {"app": "demo"}},
                     "template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{"name": "a", "image": "argoproj/rollouts-demo:blue"}]}},
                     "strategy": {"canary": {}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &rollout).await.unwrap();
        let observed = |want: &'static str| {
            let api = api.clone();
            move || {
                let api = api.clone();
                async move {
                    let r = api.get("demo").await.unwrap();
                    r.status.and_then(|s| s.observed_generation).as_deref() == Some(want)
                }
            }
        };
        eventually("first reconcile", observed("1")).await;
        api.patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
        eventually("reconcile of generation 2", observed("2")).await;
        task.abort();
    }
}

/// One round of client-go's LeaseLock: GET, then PUT with the resourceVersion read. A 409 means
/// another candidate won.
async fn try_acquire(api: &Api<Lease>, name: &str, me: &str) -> Result<bool, kube::Error> {
    let mut lease = api.get(name).await?;
    lease
        .spec
        .get_or_insert_with(Default::default)
        .holder_identity = Some(me.to_owned());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

#[tokio::test]
async fn lease_election_has_one_winner() {
    let client = tcp().await;
    let ns = namespace(&client, "lease").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "sluice"}, "spec": {"leaseDurationSeconds": 15}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &lease).await.unwrap();
    // Both read the same version; only the first write wins.
    let seen = api.get("sluice").await.unwrap();
    let mut a = seen.clone();
    a.spec.as_mut().unwrap().holder_identity = Some("a".into());
    let mut b = seen.clone();
    b.spec.as_mut().unwrap().holder_identity = Some("b".into());
    api.replace("sluice", &PostParams::default(), &a)
        .await
        .unwrap();
    let lost = api
        .replace("sluice", &PostParams::default(), &b)
        .await
        .unwrap_err();
    assert!(matches!(lost, kube::Error::Api(ref s) if s.code == 409));
    assert_eq!(
        api.get("sluice")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a")
    );
    // Racing rounds: exactly one acquisition per version.
    let (x, y) = tokio::join!(
        try_acquire(&api, "sluice", "x"),
        try_acquire(&api, "sluice", "y")
    );
    let winners = [x.unwrap(), y.unwrap()].iter().filter(|w| **w).count();
    assert!(winners >= 1, "someone holds the lease");
}
