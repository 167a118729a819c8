//! The operator's `restart` and the `workloadRef` migration, end to end on simulated pods:
//! a restart replaces every pod through evictions while a PodDisruptionBudget (or the
//! strategy's maxUnavailable) holds — checked on every pod change seen through a watch —
//! and `--in` waits; a Rollout takes its template from a Deployment under each `scaleDown`
//! mode, rolls out the Deployment's updates, undoes onto it, and reports a missing one.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Pod, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
    runtime::watcher,
};
use serde_json::{Value, json};
use sluice_api::Rollout;

use super::{client, from, namespace, rollout_options::until, rollouts::sluice};

fn template(app: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": image}]}})
}

async fn status(rollouts: &Api<Rollout>) -> Value {
    let rollout = rollouts.get("demo").await.unwrap();
    serde_json::to_value(rollout.status).unwrap_or_default()
}

async fn healthy(rollouts: &Api<Rollout>) -> Value {
    until("the Rollout Healthy", 60, || async {
        let rollout = rollouts.get("demo").await.unwrap();
        let generation = rollout.metadata.generation.unwrap_or(0).to_string();
        let status = serde_json::to_value(&rollout.status).unwrap_or_default();
        status["phase"] == "Healthy" && status["observedGeneration"] == generation.as_str()
    })
    .await;
    status(rollouts).await
}

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Watches the pods of `app`: after every change, the fewest ready (and not terminating) pods
/// seen so far.
fn fewest_ready(
    client: Client,
    ns: &str,
    app: &str,
) -> (Arc<Mutex<usize>>, tokio::task::JoinHandle<()>) {
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let fewest = Arc::new(Mutex::new(usize::MAX));
    let seen = fewest.clone();
    let config = watcher::Config::default().labels(&format!("app={app}"));
    let task = tokio::spawn(async move {
        let mut state: BTreeMap<String, bool> = BTreeMap::new();
        let mut listing = BTreeMap::new();
        let mut listed = false;
        let mut events = watcher(pods, config).boxed();
        while let Some(Ok(event)) = events.next().await {
            match event {
                watcher::Event::Init => listing.clear(),
                watcher::Event::InitApply(pod) => {
                    listing.insert(pod.name_any(), ready(&pod));
                }
                watcher::Event::InitDone => {
                    state = std::mem::take(&mut listing);
                    listed = true;
                }
                watcher::Event::Apply(pod) => {
                    state.insert(pod.name_any(), ready(&pod));
                }
                watcher::Event::Delete(pod) => {
                    state.remove(&pod.name_any());
                }
            }
            if !listed {
                continue;
            }
            let count = state.values().filter(|r| **r).count();
            let mut fewest = seen.lock().unwrap();
            *fewest = (*fewest).min(count);
        }
    });
    (fewest, task)
}

async fn pod_names(pods: &Api<Pod>, app: &str) -> Vec<(String, bool)> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap();
    list.items
        .iter()
        .map(|p| (p.name_any(), p.metadata.deletion_timestamp.is_some()))
        .collect()
}

/// Waits until every pod of `app` was created after `at` and `status.restartedAt` is `at`.
async fn restarted(
    rollouts: &Api<Rollout>,
    pods: &Api<Pod>,
    app: &str,
    at: &str,
    before: &[String],
) {
    until("every pod replaced and restartedAt set", 90, || async {
        let now = pod_names(pods, app).await;
        let replaced = now.iter().all(|(name, _)| !before.contains(name));
        replaced && status(rollouts).await["restartedAt"] == at
    })
    .await;
}

#[tokio::test]
async fn a_restart_goes_through_evictions_and_the_disruption_budget_holds() {
    let client = client();
    let ns = namespace(&client, "restart-pdb").await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // maxUnavailable 2 would let two pods go at once; the budget allows one.
    let pdb: PodDisruptionBudget = from(json!({"metadata": {"name": "demo"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "restart"}}}}));
    Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pdb)
        .await
        .unwrap();
    let rollout: Rollout = from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "restart"}},
            "template": template("restart", "example.com/app:1"),
            "strategy": {"canary": {"maxUnavailable": 2, "maxSurge": 0}}}}),
    );
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
    healthy(&rollouts).await;
    until("4 ready pods", 30, || async {
        let list = pods
            .list(&ListParams::default().labels("app=restart"))
            .await
            .unwrap();
        list.items.iter().filter(|p| ready(p)).count() == 4
    })
    .await;
    let before: Vec<String> = pod_names(&pods, "restart")
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    // restartAt is to the second: after the pods' creation second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (fewest, watch) = fewest_ready(client.clone(), &ns, "restart");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = sluice(&["restart", "demo"], &ns);
    assert_eq!(out, "rollout 'demo' restarts in 0s\n");
    let at = rollouts.get("demo").await.unwrap().spec.restart_at.unwrap();
    let at = serde_json::to_value(at).unwrap();
    restarted(&rollouts, &pods, "restart", at.as_str().unwrap(), &before).await;
    watch.abort();
    let fewest = *fewest.lock().unwrap();
    assert_eq!(
        fewest, 3,
        "never more than the budget's one pod down, and one went at a time"
    );
    // The last replacement may still be becoming available when restartedAt is written.
    healthy(&rollouts).await;
}

#[tokio::test]
async fn restart_in_waits_and_then_keeps_max_unavailable() {
    let client = client();
    let ns = namespace(&client, "restart-in").await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let service: Service = from(json!({"metadata": {"name": "active"},
        "spec": {"selector": {"app": "later"}, "ports": [{"port": 80, "targetPort": 8080}]}}));
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let rollout: Rollout = from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "later"}},
            "template": template("later", "example.com/app:1"),
            "strategy": {"blueGreen": {"activeService": "active"}}}}),
    );
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
    healthy(&rollouts).await;
    until("3 ready pods", 30, || async {
        let list = pods
            .list(&ListParams::default().labels("app=later"))
            .await
            .unwrap();
        list.items.iter().filter(|p| ready(p)).count() == 3
    })
    .await;
    let before: Vec<String> = pod_names(&pods, "later")
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (fewest, watch) = fewest_ready(client.clone(), &ns, "later");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = sluice(&["restart", "demo", "--in", "4s"], &ns);
    assert_eq!(out, "rollout 'demo' restarts in 4s\n");
    // Nothing before the time.
    for _ in 0..25 {
        let now = pod_names(&pods, "later").await;
        assert!(
            now.iter()
                .all(|(name, deleting)| before.contains(name) && !deleting),
            "a pod went before restartAt: {now:?}"
        );
        assert!(status(&rollouts).await["restartedAt"].is_null());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at = rollouts.get("demo").await.unwrap().spec.restart_at.unwrap();
    let at = serde_json::to_value(at).unwrap();
    restarted(&rollouts, &pods, "later", at.as_str().unwrap(), &before).await;
    watch.abort();
    // Blue-green's maxUnavailable (25% of 3 → 0) still lets one go at a time.
    assert_eq!(*fewest.lock().unwrap(), 2);
}

/// A Deployment `web` of `app` and a Rollout `demo` that takes its template from it.
async fn migrate(prefix: &str, scale_down: &str) -> (String, Api<Rollout>, Api<Deployment>) {
    let client = client();
    let ns = namespace(&client, prefix).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = from(json!({"metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": template("web", "example.com/app:1")}}));
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let rollout: Rollout = from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 3,
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                "scaleDown": scale_down},
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}}}}),
    );
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
    (ns, rollouts, deployments)
}

async fn deployment_replicas(deployments: &Api<Deployment>) -> i32 {
    deployments
        .get("web")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(1)
}

async fn generation_recorded(rollouts: &Api<Rollout>, generation: &str) {
    until(
        &format!("workload generation {generation} recorded"),
        30,
        || async {
            let rollout = rollouts.get("demo").await.unwrap();
            let annotated = rollout
                .annotations()
                .get("rollout.argoproj.io/workload-generation")
                .map(String::as_str)
                == Some(generation);
            let status = serde_json::to_value(&rollout.status).unwrap_or_default();
            annotated && status["workloadObservedGeneration"] == generation
        },
    )
    .await;
}

fn image_of(value: &Value) -> String {
    value["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn workload_ref_never_rolls_out_deployment_updates_and_undo_patches_the_deployment() {
    let (ns, rollouts, deployments) = migrate("workload-never", "never").await;
    let first = healthy(&rollouts).await;
    generation_recorded(&rollouts, "1").await;
    assert_eq!(deployment_replicas(&deployments).await, 3);
    let sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client(), &ns);
    let name = format!("demo-{}", first["stableRS"].as_str().unwrap());
    let rs = serde_json::to_value(sets.get(&name).await.unwrap()).unwrap();
    assert_eq!(image_of(&rs), "example.com/app:1");
    assert_eq!(first["selector"], "app=web");
    // An update of the Deployment's template rolls out through the Rollout's steps.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "example.com/app:2"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    generation_recorded(&rollouts, "2").await;
    until("the update rolled out", 60, || async {
        let status = status(&rollouts).await;
        status["phase"] == "Healthy" && status["stableRS"] != first["stableRS"]
    })
    .await;
    let second = status(&rollouts).await;
    let name = format!("demo-{}", second["stableRS"].as_str().unwrap());
    let rs = serde_json::to_value(sets.get(&name).await.unwrap()).unwrap();
    assert_eq!(image_of(&rs), "example.com/app:2");
    // `never`: the Deployment was left alone throughout.
    assert_eq!(deployment_replicas(&deployments).await, 3);
    // Undo patches the Deployment's template (the Rollout's stays empty).
    let out = sluice(&["undo", "demo"], &ns);
    assert_eq!(out, "rollout 'demo' undo\n");
    let deployment = serde_json::to_value(deployments.get("web").await.unwrap()).unwrap();
    assert_eq!(image_of(&deployment), "example.com/app:1");
    let rollout = rollouts.get("demo").await.unwrap();
    assert!(
        rollout
            .spec
            .template
            .is_none_or(|t| t.as_object().is_empty())
    );
    until("back on the first template", 60, || async {
        let status = status(&rollouts).await;
        status["phase"] == "Healthy" && status["stableRS"] == first["stableRS"]
    })
    .await;
}

#[tokio::test]
async fn workload_ref_onsuccess_scales_the_deployment_down_once_healthy() {
    let (_ns, rollouts, deployments) = migrate("workload-onsuccess", "onsuccess").await;
    // Until the Rollout is Healthy the Deployment keeps its pods.
    until("the Rollout's pods up", 60, || async {
        status(&rollouts).await["availableReplicas"]
            .as_i64()
            .unwrap_or(0)
            > 0
    })
    .await;
    let phase = status(&rollouts).await["phase"].clone();
    if phase != "Healthy" {
        assert_eq!(deployment_replicas(&deployments).await, 3);
    }
    healthy(&rollouts).await;
    until("the Deployment at 0", 30, || async {
        deployment_replicas(&deployments).await == 0
    })
    .await;
    generation_recorded(&rollouts, "2").await;
    assert_eq!(status(&rollouts).await["phase"], "Healthy");
}

#[tokio::test]
async fn workload_ref_progressively_scales_the_deployment_as_pods_become_ready() {
    let (_ns, rollouts, deployments) = migrate("workload-progressively", "progressively").await;
    let seen = Arc::new(Mutex::new(Vec::<i32>::new()));
    let record = seen.clone();
    let watching = deployments.clone();
    let sampler = tokio::spawn(async move {
        loop {
            let replicas = deployment_replicas(&watching).await;
            {
                let mut seen = record.lock().unwrap();
                if seen.last() != Some(&replicas) {
                    seen.push(replicas);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    healthy(&rollouts).await;
    until("the Deployment at 0", 30, || async {
        deployment_replicas(&deployments).await == 0
    })
    .await;
    sampler.abort();
    let mut seen = seen.lock().unwrap().clone();
    if seen.last() != Some(&0) {
        seen.push(0);
    }
    assert_eq!(seen.first(), Some(&3), "{seen:?}");
    assert_eq!(seen.last(), Some(&0), "{seen:?}");
    // Down as the Rollout's pods came up: never back up.
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "{seen:?}");
}

#[tokio::test]
async fn a_missing_deployment_is_an_invalid_spec_until_it_appears() {
    let client = client();
    let ns = namespace(&client, "workload-missing").await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let rollout: Rollout = from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 1,
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "strategy": {"canary": {}}}}),
    );
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
    let expected = format!(
        "InvalidSpec: spec.workloadRef: Invalid value: v1alpha1.ObjectRef{{APIVersion:\"apps/v1\", Kind:\"Deployment\", Name:\"web\", ScaleDown:\"\"}}: deployments.apps \"{ns}/web\" not found"
    );
    until("InvalidSpec", 30, || async {
        let status = status(&rollouts).await;
        status["phase"] == "Degraded"
    })
    .await;
    assert_eq!(status(&rollouts).await["message"], expected.as_str());
    let deployments: Api<Deployment> = Api::namespaced(client, &ns);
    let deployment: Deployment = from(json!({"metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": template("web", "example.com/app:1")}}));
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    healthy(&rollouts).await;
}
