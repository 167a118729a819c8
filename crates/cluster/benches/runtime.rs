//! Cluster runtime benchmark: pod create → Ready latency (simulated runtime, no readiness delay,
//! so it measures the API server, kubelet and watch round trips), and 1,000 pods of one
//! ReplicaSet: time until all are Ready and resident memory, in a fresh process.
//!
//! `cargo bench -p sluice-cluster --bench runtime`. Numbers, never pass/fail.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::{
    Api,
    api::{PostParams, WatchEvent, WatchParams},
};
use serde_json::json;
use sluice_cluster::{
    Cluster, ClusterConfig,
    kubelet::Rules,
    store::{Durability, StoreConfig},
};

async fn start(dir: &std::path::Path) -> Cluster {
    Cluster::start(ClusterConfig {
        data_dir: dir.to_owned(),
        ephemeral: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        durability: Durability::Full,
        store: StoreConfig::default(),
        runtime: Some(Rules::parse("default:\n  readyAfter: 0s\n").unwrap()),
        ingress: None,
    })
    .await
    .unwrap()
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn create_to_ready(count: usize, in_flight: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
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
    let created: HashMap<String, Instant> = stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Pod =
                    serde_json::from_value(json!({"metadata": {"name": format!("p-{i}")},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}))
                    .unwrap();
                let t = Instant::now();
                pods.create(&PostParams::default(), &pod).await.unwrap();
                (format!("p-{i}"), t)
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
            if ready(&pod) && done.insert(name.clone()) {
                latencies.push(created[&name].elapsed());
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "pod create -> Ready ({count} pods, {in_flight} created at a time): p50 {:.1} ms, p99 {:.1} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    cluster.shutdown().await;
}

async fn thousand_pods() {
    let dir = tempfile::tempdir().unwrap();
    let before = rss_mib();
    let cluster = start(dir.path()).await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client(), "default");
    let empty = rss_mib();
    let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "big"}, "spec": {"replicas": 1000,
        "selector": {"matchLabels": {"app": "big"}},
        "template": {"metadata": {"labels": {"app": "big"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}}}))
    .unwrap();
    let start = Instant::now();
    sets.create(&PostParams::default(), &rs).await.unwrap();
    loop {
        let status = sets.get("big").await.unwrap().status.unwrap_or_default();
        if status.ready_replicas == Some(1000) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "1,000 pods did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    let full = rss_mib();
    println!(
        "1,000 simulated pods of one ReplicaSet: all Ready in {:.2} s; resident memory {before:.0} MiB before start, {empty:.0} MiB idle cluster, {full:.0} MiB with 1,000 running pods",
        elapsed.as_secs_f64()
    );
    cluster.shutdown().await;
}

#[tokio::main]
async fn main() {
    if std::env::var_os("SLUICE_BENCH_THOUSAND").is_some() {
        thousand_pods().await;
        return;
    }
    println!("sluice cluster runtime benchmark (simulated pods, fsync per commit)");
    create_to_ready(50, 1).await;
    create_to_ready(200, 16).await;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env("SLUICE_BENCH_THOUSAND", "1")
        .status()
        .unwrap();
    assert!(status.success());
}
