//! The cluster runtime against the embedded API server: the kubelet's simulated pods, the
//! ReplicaSet controller, Endpoints and EndpointSlices, garbage collection of pods. Delays are
//! a fraction of a second to a few seconds.

mod workloads;

use sluice_testkit::{Shared, eventually, from, namespace};

use std::{path::Path, sync::LazyLock, time::Duration};

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    batch::v1::Job,
    core::v1::{Endpoints, Event, Node, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_cluster::{
    Cluster, ClusterConfig,
    kubelet::Rules,
    store::{Durability, StoreConfig},
};

const RULES: &str = r#"
rules:
- image: "example.com/broken:*"
  pullError: true
- image: "*:crashing"
  crashAfter: 300ms
- image: "*:slow-stop"
  terminationDelay: 1s
- image: "*:never-ready"
  neverReady: true
- image: "*:job-fails"
  exitCode: 1
  runFor: 200ms
- image: "*:job-long"
  runFor: 30s
default:
  readyAfter: 300ms
"#;

fn config(dir: &Path) -> ClusterConfig {
    ClusterConfig {
        data_dir: dir.to_owned(),
        ephemeral: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        durability: Durability::Normal,
        store: StoreConfig::default(),
        runtime: Some(Rules::parse(RULES).unwrap()),
        ingress: None,
    }
}

static SHARED: LazyLock<Shared> = LazyLock::new(|| Shared::start(config, |_, _| {}));

fn client() -> Client {
    SHARED.cluster.client()
}

fn replicaset(name: &str, replicas: i32, image: &str, min_ready: i32) -> ReplicaSet {
    from(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]}}}
    }))
}

async fn pods_of(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn the_node_is_ready() {
    let nodes: Api<Node> = Api::all(client());
    eventually("node sluice-local Ready", || async {
        nodes
            .get_opt("sluice-local")
            .await
            .unwrap()
            .is_some_and(|n| {
                n.status
                    .and_then(|s| s.conditions)
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
    })
    .await;
}

#[tokio::test]
async fn replicasets_run_pods_that_become_ready_and_available() {
    let client = client();
    let ns = namespace(&client, "rs").await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    sets.create(
        &PostParams::default(),
        &replicaset("web", 3, "nginx:1.25", 1),
    )
    .await
    .unwrap();
    eventually("3 pods ready", || async {
        let p = pods_of(&pods, "web").await;
        p.len() == 3 && p.iter().all(ready)
    })
    .await;
    let list = pods_of(&pods, "web").await;
    for pod in &list {
        assert!(pod.name_any().starts_with("web-"));
        assert_eq!(pod.labels()["tier"], "web", "labels come from the template");
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("ReplicaSet", Some(true))
        );
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.as_deref().unwrap().starts_with("127.1."));
        let container = &status.container_statuses.as_ref().unwrap()[0];
        assert!(container.ready && container.state.as_ref().unwrap().running.is_some());
    }
    let ips: std::collections::BTreeSet<_> = list
        .iter()
        .map(|p| p.status.as_ref().unwrap().pod_ip.clone())
        .collect();
    assert_eq!(ips.len(), 3, "every pod has its own address");
    // minReadySeconds: ready first, available a second later.
    eventually("status counts", || async {
        let s = sets.get("web").await.unwrap().status.unwrap_or_default();
        s.replicas == 3
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.fully_labeled_replicas == Some(3)
    })
    .await;
    assert_eq!(
        sets.get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .observed_generation,
        Some(1)
    );
}

#[tokio::test]
async fn scaling_down_removes_the_newest_pods_first() {
    let client = client();
    let ns = namespace(&client, "scale").await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    sets.create(
        &PostParams::default(),
        &replicaset("web", 1, "nginx:1.25", 0),
    )
    .await
    .unwrap();
    eventually("first pod ready", || async {
        pods_of(&pods, "web")
            .await
            .iter()
            .filter(|p| ready(p))
            .count()
            == 1
    })
    .await;
    let oldest = pods_of(&pods, "web").await[0].name_any();
    // Kubernetes timestamps have one-second precision: let the next pods be visibly newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    eventually("3 pods", || async {
        pods_of(&pods, "web")
            .await
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count()
            == 3
    })
    .await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("1 pod left", || async {
        pods_of(&pods, "web").await.len() == 1
    })
    .await;
    assert_eq!(
        pods_of(&pods, "web").await[0].name_any(),
        oldest,
        "the ready, oldest pod stays"
    );
}

#[tokio::test]
async fn endpoint_slices_follow_readiness() {
    let client = client();
    let ns = namespace(&client, "eps").await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .create(
            &PostParams::default(),
            &from(
                json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
            ),
        )
        .await
        .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    sets.create(
        &PostParams::default(),
        &replicaset("web", 2, "nginx:1.25", 0),
    )
    .await
    .unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    eventually("two ready endpoints", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .unwrap()
            .items;
        list.len() == 1
            && list[0]
                .endpoints
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count()
                == 2
    })
    .await;
    let slice = &slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        slice.labels()["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), Some(8080)),
        "named targetPort resolved"
    );
    let ep = endpoints.get("web").await.unwrap();
    assert_eq!(ep.subsets.unwrap()[0].addresses.as_ref().unwrap().len(), 2);

    // A pod that never becomes ready is listed as not ready.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &from(json!({"metadata": {"name": "stuck", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:never-ready", "ports": [{"name": "http", "containerPort": 8080}]}]}})))
        .await
        .unwrap();
    eventually("not-ready address", || async {
        endpoints
            .get("web")
            .await
            .unwrap()
            .subsets
            .unwrap_or_default()
            .iter()
            .any(|s| {
                s.not_ready_addresses.as_ref().is_some_and(|a| {
                    a.iter().any(|a| {
                        a.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some("stuck")
                    })
                })
            })
    })
    .await;
    // Scaling to zero empties the endpoints.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    pods.delete("stuck", &DeleteParams::default())
        .await
        .unwrap();
    eventually("no endpoints", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .unwrap()
            .items;
        list.len() == 1 && list[0].endpoints.is_empty()
    })
    .await;
}

#[tokio::test]
async fn pull_failures_and_crash_loops_show_in_pod_status() {
    let client = client();
    let ns = namespace(&client, "fail").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for (name, image) in [
        ("broken", "example.com/broken:1"),
        ("crasher", "demo:crashing"),
    ] {
        pods.create(&PostParams::default(), &from(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image}]}})))
            .await
            .unwrap();
    }
    let waiting = |pod: &Pod| -> String {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c[0].state.as_ref()?.waiting.as_ref()?.reason.clone())
            .unwrap_or_default()
    };
    eventually("ImagePullBackOff", || async {
        waiting(&pods.get("broken").await.unwrap()) == "ImagePullBackOff"
    })
    .await;
    assert_eq!(
        pods.get("broken")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Pending")
    );
    eventually("CrashLoopBackOff", || async {
        waiting(&pods.get("crasher").await.unwrap()) == "CrashLoopBackOff"
    })
    .await;
    let crasher = pods.get("crasher").await.unwrap();
    let status = &crasher.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(status.restart_count, 1);
    assert_eq!(
        status
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        1
    );
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    eventually("BackOff and Failed events", || async {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        let reasons: Vec<_> = list.iter().filter_map(|e| e.reason.clone()).collect();
        reasons.contains(&"BackOff".to_string())
            && reasons.contains(&"Failed".to_string())
            && reasons.contains(&"Scheduled".to_string())
    })
    .await;
}

#[tokio::test]
async fn deleted_pods_stop_within_their_grace_period() {
    let client = client();
    let ns = namespace(&client, "stop").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for (name, image) in [("quick", "nginx:1.25"), ("slow", "nginx:slow-stop")] {
        pods.create(&PostParams::default(), &from(json!({"metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 30, "containers": [{"name": "app", "image": image}]}})))
            .await
            .unwrap();
    }
    eventually("both running", || async {
        ready(&pods.get("quick").await.unwrap()) && ready(&pods.get("slow").await.unwrap())
    })
    .await;
    pods.delete("quick", &DeleteParams::default())
        .await
        .unwrap();
    pods.delete("slow", &DeleteParams::default()).await.unwrap();
    eventually("quick gone at once", || async {
        pods.get_opt("quick").await.unwrap().is_none()
    })
    .await;
    assert!(
        pods.get_opt("slow").await.unwrap().is_some(),
        "a slow-stopping container is still stopping"
    );
    eventually("slow gone after its termination delay", || async {
        pods.get_opt("slow").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn pods_go_with_their_replicaset() {
    let client = client();
    let ns = namespace(&client, "gc").await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    sets.create(
        &PostParams::default(),
        &replicaset("web", 2, "nginx:1.25", 0),
    )
    .await
    .unwrap();
    eventually("2 pods", || async {
        pods_of(&pods, "web").await.len() == 2
    })
    .await;
    sets.delete("web", &DeleteParams::background())
        .await
        .unwrap();
    eventually("pods collected", || async {
        pods_of(&pods, "web").await.is_empty()
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let reasons: Vec<_> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.contains(&"SuccessfulCreate".to_string()),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_restart_keeps_pods_and_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(config(dir.path())).await.unwrap();
    let client = cluster.client();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    sets.create(
        &PostParams::default(),
        &replicaset("kept", 2, "nginx:1.25", 0),
    )
    .await
    .unwrap();
    eventually("2 ready", || async {
        pods_of(&pods, "kept")
            .await
            .iter()
            .filter(|p| ready(p))
            .count()
            == 2
    })
    .await;
    let before: Vec<(String, Option<String>)> = pods_of(&pods, "kept")
        .await
        .iter()
        .map(|p| (p.name_any(), p.status.as_ref().unwrap().pod_ip.clone()))
        .collect();
    cluster.shutdown().await;
    let cluster = Cluster::start(config(dir.path())).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: Vec<(String, Option<String>)> = pods_of(&pods, "kept")
        .await
        .iter()
        .map(|p| (p.name_any(), p.status.as_ref().unwrap().pod_ip.clone()))
        .collect();
    assert_eq!(before, after, "same pods, same addresses");
    assert!(pods_of(&pods, "kept").await.iter().all(ready));
    cluster.shutdown().await;
}
