//! API server benchmark: prints latency percentiles and throughput for create, get, list and
//! merge patch over HTTPS and in-process, watch fan-out to 100 watchers, resident memory with
//! 10,000 Rollouts stored, and time to ready with them in the store.
//!
//! `cargo bench -p sluice-cluster --bench apiserver` (`SLUICE_BENCH_SCALE=0.2` for a quick run).
//! Numbers, never pass/fail.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
};
use serde_json::json;
use sluice_api::Rollout;
use sluice_cluster::{
    Cluster, ClusterConfig,
    store::{Durability, StoreConfig},
};

const CONCURRENCY: usize = 16;

fn scale() -> f64 {
    std::env::var("SLUICE_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn n(count: usize) -> usize {
    ((count as f64 * scale()) as usize).max(10)
}

fn config(dir: &std::path::Path, durability: Durability) -> ClusterConfig {
    ClusterConfig {
        data_dir: dir.to_owned(),
        ephemeral: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        durability,
        store: StoreConfig::default(),
        runtime: None,
        ingress: None,
    }
}

async fn tcp_client(cluster: &Cluster) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

struct Stats {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    fn print(&self, what: &str) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let pct = |p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
        println!(
            "{what:<34} {:>7} req  {:>9.0} req/s  p50 {:>8.3} ms  p99 {:>8.3} ms",
            sorted.len(),
            sorted.len() as f64 / self.wall.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `count` operations with `CONCURRENCY` in flight, timing each.
async fn measure<F, Fut>(count: usize, op: F) -> Stats
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let latencies: Vec<Duration> = stream::iter(0..count)
        .map(|i| {
            let fut = op(i);
            async move {
                let t = Instant::now();
                fut.await;
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    Stats {
        latencies,
        wall: start.elapsed(),
    }
}

async fn make_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn configmap(name: String) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"bench": "yes"}}, "data": {"payload": "x".repeat(512)}})).unwrap()
}

async fn crud(client: &Client, via: &str) -> f64 {
    let ns = format!("crud-{via}");
    make_namespace(client, &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let count = n(2000);
    let create = measure(count, |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &configmap(format!("cm-{i}")))
                .await
                .unwrap();
        }
    })
    .await;
    create.print(&format!("create ({via})"));
    let get = measure(n(5000), |i| {
        let api = api.clone();
        async move {
            api.get(&format!("cm-{}", i % count)).await.unwrap();
        }
    })
    .await;
    get.print(&format!("get ({via})"));
    let patch = measure(count, |i| {
        let api = api.clone();
        async move {
            api.patch(
                &format!("cm-{i}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"n": i.to_string()}})),
            )
            .await
            .unwrap();
        }
    })
    .await;
    patch.print(&format!("merge patch ({via})"));
    create.throughput()
}

async fn fill(client: &Client, ns: &str, count: usize) {
    make_namespace(client, ns).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    stream::iter(0..count)
        .for_each_concurrent(CONCURRENCY * 2, |i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &configmap(format!("cm-{i}")))
                    .await
                    .unwrap();
            }
        })
        .await;
}

async fn lists(client: &Client, via: &str, namespaces: &[(&str, usize)]) {
    for (ns, size) in namespaces {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let times = if *size > 5000 { 10 } else { 50 };
        let stats = measure(times, |_| {
            let api = api.clone();
            async move {
                let list = api.list(&ListParams::default()).await.unwrap();
                assert_eq!(list.items.len(), *size);
            }
        })
        .await;
        stats.print(&format!("list {size} objects, typed ({via})"));
        // The same list as bytes: the server's share, without kube-rs decoding the items.
        let path = format!("/api/v1/namespaces/{ns}/configmaps");
        let stats = measure(times, |_| {
            let client = client.clone();
            let path = path.clone();
            async move {
                let request = http::Request::get(&path).body(Vec::new()).unwrap();
                let response = client
                    .send(request.map(kube::client::Body::from))
                    .await
                    .unwrap();
                let body = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .unwrap();
                assert!(!body.to_bytes().is_empty());
            }
        })
        .await;
        stats.print(&format!("list {size} objects, raw ({via})"));
    }
}

async fn fan_out(client: &Client, via: &str, watchers: usize) {
    let ns = format!("fanout-{via}");
    make_namespace(client, &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let events = n(1000);
    let mut streams = Vec::new();
    for _ in 0..watchers {
        streams.push(
            api.watch(&WatchParams::default().timeout(290), &rv)
                .await
                .unwrap()
                .boxed(),
        );
    }
    let start = Instant::now();
    let receivers: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < events {
                    match s.try_next().await {
                        Ok(Some(WatchEvent::Added(_))) => seen += 1,
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
                seen
            })
        })
        .collect();
    for i in 0..events {
        api.create(&PostParams::default(), &configmap(format!("w-{i}")))
            .await
            .unwrap();
    }
    let mut delivered = 0;
    for r in receivers {
        delivered += r.await.unwrap();
    }
    let wall = start.elapsed();
    println!(
        "watch fan-out ({via})               {events} events x {watchers} watchers: {delivered} delivered in {:.2} s = {:.0} events/s",
        wall.as_secs_f64(),
        delivered as f64 / wall.as_secs_f64()
    );
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn rollout(i: usize) -> Rollout {
    serde_json::from_value(json!({
        "metadata": {"name": format!("ro-{i}"), "labels": {"app": format!("app-{i}")}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": format!("app-{i}")}},
            "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                "spec": {"containers": [{"name": "app", "image": "argoproj/rollouts-demo:blue",
                    "ports": [{"containerPort": 8080}], "readinessProbe": {"httpGet": {"path": "/", "port": 8080}}}]}},
            "strategy": {"blueGreen": {"activeService": format!("svc-{i}-active"), "previewService": format!("svc-{i}-preview"), "autoPromotionEnabled": false}}
        }
    }))
    .unwrap()
}

async fn memory_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let before = rss_mib();
    let cluster = Cluster::start(config(dir.path(), Durability::Normal))
        .await
        .unwrap();
    let client = cluster.client();
    let api: Api<Rollout> = Api::namespaced(client.clone(), "default");
    let count = n(10_000);
    let empty = rss_mib();
    stream::iter(0..count)
        .for_each_concurrent(CONCURRENCY * 2, |i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &rollout(i))
                    .await
                    .unwrap();
            }
        })
        .await;
    let full = rss_mib();
    println!(
        "resident memory: {before:.0} MiB before start, {empty:.0} MiB empty cluster, {full:.0} MiB with {count} Rollouts ({:.1} KiB per Rollout)",
        (full - empty) * 1024.0 / count as f64
    );
    cluster.shutdown().await;
    let start = Instant::now();
    let cluster = Cluster::start(config(dir.path(), Durability::Normal))
        .await
        .unwrap();
    let ready = start.elapsed();
    let listed = Api::<Rollout>::namespaced(cluster.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    println!(
        "time to ready with {} objects in the store: {:.0} ms",
        listed.items.len(),
        ready.as_secs_f64() * 1e3
    );
    cluster.shutdown().await;
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var_os("SLUICE_BENCH_MEMORY").is_some() {
        // A fresh process, so resident memory is the cluster's alone.
        memory_and_restart().await;
        return;
    }
    println!(
        "sluice API server benchmark (scale {}, {CONCURRENCY} requests in flight)",
        scale()
    );
    let mut creates = Vec::new();
    for durability in [Durability::Full, Durability::Normal] {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::start(config(dir.path(), durability))
            .await
            .unwrap();
        let tag = match durability {
            Durability::Full => "fsync",
            Durability::Normal => "no fsync",
        };
        println!("-- store with {tag} per commit");
        let tcp = tcp_client(&cluster).await;
        let local = cluster.client();
        for (via, client) in [("https", &tcp), ("in-process", &local)] {
            let via = format!("{via}, {tag}");
            creates.push((
                via.clone(),
                crud(client, &via.replace([',', ' '], "-")).await,
            ));
        }
        if durability == Durability::Normal {
            fill(&local, "list-1k", n(1000)).await;
            fill(&local, "list-10k", n(10_000)).await;
            let sizes = [("list-1k", n(1000)), ("list-10k", n(10_000))];
            lists(&tcp, "https", &sizes).await;
            lists(&local, "in-process", &sizes).await;
            fan_out(&tcp, "https", 100).await;
            fan_out(&local, "in-process", 100).await;
        }
        cluster.shutdown().await;
    }
    let base = creates[0].1;
    for (via, rate) in &creates {
        println!(
            "create throughput {via:<22} {:.2}x of https with fsync",
            rate / base
        );
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env("SLUICE_BENCH_MEMORY", "1")
        .status()
        .unwrap();
    assert!(status.success());
}
