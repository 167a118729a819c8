//! Deployments, Jobs, availability and disruption: the workload controllers over the kubelet.

use super::*;

fn deployment(name: &str, image: &str, strategy: serde_json::Value) -> Deployment {
    from(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": name}}, "strategy": strategy,
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}}}
    }))
}

/// Pods of `app` that are not terminating, and how many of them are ready.
async fn live(pods: &Api<Pod>, app: &str) -> (Vec<Pod>, usize) {
    let live: Vec<Pod> = pods_of(pods, app)
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let ready = live.iter().filter(|p| ready(p)).count();
    (live, ready)
}

fn image_of(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test]
async fn rolling_updates_stay_within_surge_and_unavailability() {
    let client = client();
    let ns = namespace(&client, "deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", "nginx:1.25", strategy),
        )
        .await
        .unwrap();
    eventually("4 available", || async {
        deployments
            .get("web")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.available_replicas == Some(4) && s.updated_replicas == Some(4))
    })
    .await;
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "1");
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}})))
        .await
        .unwrap();
    let mut steps = 0;
    loop {
        let (live_pods, ready_count) = live(&pods, "web").await;
        assert!(
            live_pods.len() <= 5,
            "at most replicas + maxSurge pods: {}",
            live_pods.len()
        );
        assert!(
            ready_count >= 3,
            "at least replicas - maxUnavailable ready: {ready_count}"
        );
        if live_pods.len() == 4
            && live_pods.iter().all(|p| image_of(p) == "nginx:1.26")
            && ready_count == 4
        {
            break;
        }
        steps += 1;
        assert!(steps < 400, "rollout did not finish");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eventually("status settled", || async {
        let d = deployments.get("web").await.unwrap();
        let s = d.status.clone().unwrap_or_default();
        let progressing = s
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Progressing");
        s.updated_replicas == Some(4)
            && s.available_replicas == Some(4)
            && progressing.is_some_and(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"))
            && d.annotations()["deployment.kubernetes.io/revision"] == "2"
    })
    .await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let list = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 2, "the old ReplicaSet is kept for history");
    let old = list
        .iter()
        .find(|rs| rs.annotations()["deployment.kubernetes.io/revision"] == "1")
        .unwrap();
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    assert!(old.labels().contains_key("pod-template-hash"));
}

#[tokio::test]
async fn recreate_stops_old_pods_before_starting_new_ones() {
    let client = client();
    let ns = namespace(&client, "recreate").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", "nginx:1.25", json!({"type": "Recreate"})),
        )
        .await
        .unwrap();
    eventually("4 ready", || async { live(&pods, "web").await.1 == 4 }).await;
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}})))
        .await
        .unwrap();
    let mut steps = 0;
    loop {
        let all = pods_of(&pods, "web").await;
        let old = all.iter().filter(|p| image_of(p) == "nginx:1.25").count();
        let new = all.iter().filter(|p| image_of(p) == "nginx:1.26").count();
        assert!(
            old == 0 || new == 0,
            "never old and new pods together: {old} old, {new} new"
        );
        if new == 4 && live(&pods, "web").await.1 == 4 {
            break;
        }
        steps += 1;
        assert!(steps < 400, "recreate did not finish");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn job(name: &str, image: &str, spec: serde_json::Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": image}]}});
    from(json!({"metadata": {"name": name}, "spec": spec}))
}

fn condition(job: &Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| c.reason.clone().unwrap_or_default())
}

#[tokio::test]
async fn jobs_complete_fail_after_backoff_and_respect_deadlines() {
    let client = client();
    let ns = namespace(&client, "jobs").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    jobs.create(
        &PostParams::default(),
        &job("ok", "tool:v1", json!({"completions": 2, "parallelism": 1})),
    )
    .await
    .unwrap();
    jobs.create(
        &PostParams::default(),
        &job("fails", "tool:job-fails", json!({"backoffLimit": 1})),
    )
    .await
    .unwrap();
    jobs.create(
        &PostParams::default(),
        &job("late", "tool:job-long", json!({"activeDeadlineSeconds": 1})),
    )
    .await
    .unwrap();
    eventually("ok completes", || async {
        condition(&jobs.get("ok").await.unwrap(), "Complete").is_some()
    })
    .await;
    let ok = jobs.get("ok").await.unwrap().status.unwrap();
    assert_eq!((ok.succeeded, ok.failed.unwrap_or(0)), (Some(2), 0));
    assert!(ok.completion_time.is_some());
    eventually("fails fails", || async {
        condition(&jobs.get("fails").await.unwrap(), "Failed").as_deref()
            == Some("BackoffLimitExceeded")
    })
    .await;
    assert_eq!(
        jobs.get("fails").await.unwrap().status.unwrap().failed,
        Some(2),
        "backoffLimit 1 allows one retry"
    );
    eventually("late times out", || async {
        condition(&jobs.get("late").await.unwrap(), "Failed").as_deref() == Some("DeadlineExceeded")
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    eventually("late's pod stopped", || async {
        pods.list(&ListParams::default().labels("job-name=late"))
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
}

#[tokio::test]
async fn min_ready_seconds_delays_availability() {
    let client = client();
    let ns = namespace(&client, "minready").await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    sets.create(
        &PostParams::default(),
        &replicaset("slow", 2, "nginx:1.25", 3),
    )
    .await
    .unwrap();
    eventually("2 ready", || async {
        sets.get("slow")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(2))
    })
    .await;
    let status = sets.get("slow").await.unwrap().status.unwrap();
    assert_eq!(
        status.available_replicas,
        Some(0),
        "ready pods are not available before minReadySeconds"
    );
    eventually("2 available", || async {
        sets.get("slow")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.available_replicas == Some(2))
    })
    .await;
}

#[tokio::test]
async fn a_deployment_that_cannot_progress_reports_its_deadline() {
    let client = client();
    let ns = namespace(&client, "deadline").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let mut stuck = deployment(
        "stuck",
        "nginx:never-ready",
        json!({"type": "RollingUpdate"}),
    );
    stuck.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
    deployments
        .create(&PostParams::default(), &stuck)
        .await
        .unwrap();
    eventually("ProgressDeadlineExceeded", || async {
        deployments
            .get("stuck")
            .await
            .unwrap()
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "Progressing"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                })
            })
    })
    .await;
    let available = deployments
        .get("stuck")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(available.status, "False");
}

#[tokio::test]
async fn evictions_honour_pod_disruption_budgets() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::EvictParams;
    let client = client();
    let ns = namespace(&client, "evict").await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    sets.create(
        &PostParams::default(),
        &replicaset("web", 2, "nginx:1.25", 0),
    )
    .await
    .unwrap();
    eventually("2 ready", || async {
        pods_of(&pods, "web")
            .await
            .iter()
            .filter(|p| ready(p))
            .count()
            == 2
    })
    .await;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    budgets
        .create(&PostParams::default(), &from(json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})))
        .await
        .unwrap();
    let victim = pods_of(&pods, "web").await[0].name_any();
    let err = pods
        .evict(&victim, &EvictParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 429),
        "{err}"
    );
    budgets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": 1}})),
        )
        .await
        .unwrap();
    pods.evict(&victim, &EvictParams::default()).await.unwrap();
    eventually("evicted pod replaced", || async {
        let list = pods_of(&pods, "web").await;
        !list.iter().any(|p| p.name_any() == victim) && list.len() == 2
    })
    .await;
}

/// Whether `user` is one of the cluster's own components.
fn component(user: &str) -> bool {
    user.starts_with("system:node:")
        || [
            "system:kube-controller-manager",
            "system:kube-scheduler",
            "system:kube-proxy",
            "sluice:ingress",
        ]
        .contains(&user)
}

#[tokio::test]
async fn components_act_as_their_own_users_and_are_never_refused() {
    let client = client();
    let ns = namespace(&client, "identity").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", "nginx:1.25", json!({"type": "RollingUpdate"})),
        )
        .await
        .unwrap();
    // The controllers, the scheduler and the kubelet run it under their own users.
    eventually("4 pods ready", || async { live(&pods, "web").await.1 == 4 }).await;
    // The kubelet's identity may read a Secret but not delete a Deployment.
    let api = SHARED.cluster.api();
    let kubelet = api.client_as(sluice_cluster::authn::User::node("sluice-local"));
    let as_kubelet: Api<Deployment> = Api::namespaced(kubelet, &ns);
    let refused = as_kubelet
        .delete("web", &DeleteParams::default())
        .await
        .unwrap_err();
    let kube::Error::Api(status) = refused else {
        panic!("{refused}")
    };
    assert_eq!(status.code, 403);
    assert!(
        status.message.ends_with(&format!(
            r#"User "system:node:sluice-local" cannot delete resource "deployments" in API group "apps" in the namespace "{ns}""#
        )),
        "{}",
        status.message
    );
    assert!(deployments.get_opt("web").await.unwrap().is_some());
    // No other request of a component was refused, in this test or any before it.
    let (_, refusals) = api.refusals();
    let unexpected: Vec<_> = refusals
        .iter()
        .filter(|r| component(&r.user) && !r.message.contains(&format!("\"{ns}\"")))
        .map(|r| &r.message)
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}
