//! Real local pods benchmark: process pod create → Ready (demo app processes, with and without
//! a readiness probe), and the throughput and latency of the service proxy (L4) and the ingress
//! (L7) beside hitting the pod directly in the same run (keep-alive connections, and a new
//! connection per request).
//!
//! `cargo bench -p sluice --bench pods`. Numbers, never pass/fail.

mod common;

use common::http::{answering, load, percentile};

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{
    core::v1::{Pod, Service},
    networking::v1::Ingress,
};
use kube::{
    Api,
    api::{PostParams, WatchEvent, WatchParams},
};
use serde_json::json;
use sluice_cluster::Cluster;

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn demo_pod(name: &str, probe: bool) -> Pod {
    let mut container = json!({"name": "demo", "image": "argoproj/rollouts-demo:blue",
        "ports": [{"name": "http", "containerPort": 8080}]});
    if probe {
        container["readinessProbe"] =
            json!({"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1});
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}),
    )
    .unwrap()
}

async fn create_to_ready(
    pods: &Api<Pod>,
    prefix: &str,
    count: usize,
    in_flight: usize,
    probe: bool,
) {
    let rv = pods
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watch = pods
        .watch(&WatchParams::default().timeout(290), &rv)
        .await
        .unwrap()
        .boxed();
    let created: std::collections::HashMap<String, Instant> = stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            let name = format!("{prefix}-{i}");
            async move {
                let t = Instant::now();
                pods.create(&PostParams::default(), &demo_pod(&name, probe))
                    .await
                    .unwrap();
                (name, t)
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut latencies = Vec::new();
    let mut done = std::collections::HashSet::new();
    while done.len() < count {
        if let Some(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) =
            watch.try_next().await.unwrap()
        {
            let name = pod.metadata.name.clone().unwrap();
            if created.contains_key(&name) && ready(&pod) && done.insert(name.clone()) {
                latencies.push(created[&name].elapsed());
            }
        }
    }
    latencies.sort();
    println!(
        "process pod create -> Ready ({count} pods, {in_flight} at a time, readiness probe: {}): p50 {:.1} ms, p99 {:.1} ms",
        if probe { "httpGet every 1 s" } else { "none" },
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}

async fn proxy(cluster: &Cluster, ingress: SocketAddr) {
    let client = cluster.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let mut pod = demo_pod("target", true);
    pod.metadata.labels = Some([("app".to_owned(), "target".to_owned())].into());
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let service: Service = serde_json::from_value(json!({"metadata": {"name": "target"},
        "spec": {"selector": {"app": "target"}, "ports": [{"port": 8080, "targetPort": "http"}]}}))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let pod = loop {
        let pod = pods.get("target").await.unwrap();
        if ready(&pod) {
            break pod;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let direct: SocketAddr = format!("{}:8080", pod.status.unwrap().pod_ip.unwrap())
        .parse()
        .unwrap();
    let ip = services
        .get("target")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let through: SocketAddr = format!("{ip}:8080").parse().unwrap();
    // Wait for the endpoints to reach the proxy.
    answering(through, "bench.example").await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let front: Ingress = serde_json::from_value(json!({"metadata": {"name": "bench"},
        "spec": {"rules": [{"host": "bench.example", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "target", "port": {"number": 8080}}}}]}}]}}))
    .unwrap();
    ingresses
        .create(&PostParams::default(), &front)
        .await
        .unwrap();
    answering(ingress, "bench.example").await;
    let length = Duration::from_secs(5);
    for (keep_alive, label) in [(true, "keep-alive"), (false, "new connection per request")] {
        let (direct_rps, direct_lat, direct_failed) =
            load(direct, "bench.example", 16, length, keep_alive).await;
        println!(
            "GET /color, 16 clients, {label}: pod direct {direct_rps:.0} req/s p50 {:.2} ms p99 {:.2} ms (failed {direct_failed})",
            percentile(&direct_lat, 0.5),
            percentile(&direct_lat, 0.99),
        );
        for (name, target) in [
            ("service proxy (clusterIP, L4)", through),
            ("ingress (L7)", ingress),
        ] {
            let (rps, lat, failed) = load(target, "bench.example", 16, length, keep_alive).await;
            println!(
                "  through the {name}: {rps:.0} req/s p50 {:.2} ms p99 {:.2} ms (failed {failed}); \
                 vs direct: throughput {:.2}x, p99 {:.2}x",
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                rps / direct_rps,
                percentile(&lat, 0.99) / percentile(&direct_lat, 0.99)
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::demo_cluster(dir.path(), true).await;
    println!("sluice local pods benchmark (demo app processes, fsync per commit)");
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    create_to_ready(&pods, "bare", 30, 1, false).await;
    create_to_ready(&pods, "probed", 30, 1, true).await;
    create_to_ready(&pods, "batch", 60, 16, true).await;
    pods.delete_collection(
        &Default::default(),
        &kube::api::ListParams::default().labels("app=bench"),
    )
    .await
    .unwrap();
    let ingress = cluster.ingress_addresses().unwrap().0;
    proxy(&cluster, ingress).await;
    cluster.shutdown().await;
}
