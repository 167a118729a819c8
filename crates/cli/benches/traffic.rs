//! Traffic-routing benchmark: the NGINX router through the embedded ingress, on demo app
//! processes.
//!
//! 1. Weight written → served: a canary Ingress flipped between weight 0 and 100, round after
//!    round — the time from the write until the first request through the ingress lands on
//!    the new side, and until the data plane reports the new version served (the mark the
//!    Rollout controller waits for).
//! 2. Failed requests per 10,000 across full canaries (10 %, a pause, 50 %, a pause, then the
//!    stable Service's switch and the split back) of a Rollout under the controller, at 200
//!    requests/s through the ingress, release after release.
//! 3. The ingress with a 50/50 canary split beside a plain route over the same two pods, same
//!    run: requests/s and p50/p99 over 16 keep-alive clients.
//!
//! `cargo bench -p sluice --bench traffic [-- ROUNDS [RELEASES]]`. Numbers, never pass/fail.

mod common;

use common::http::{answering, connect, get, load, percentile};

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service, networking::v1::Ingress};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use sluice_api::{Rollout, names::annotation};

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn container(version: &str) -> Value {
    json!({"name": "app", "image": "argoproj/rollouts-demo:blue",
        "env": [{"name": "VERSION", "value": version}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}})
}

fn service(name: &str, app: &str) -> Service {
    from(json!({"metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": "http"}]}}))
}

fn ingress(name: &str, host: &str, service: &str, annotations: Value) -> Ingress {
    from(
        json!({"metadata": {"name": name, "annotations": annotations},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}}),
    )
}

fn summary(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len()
    );
}

/// Two demo Deployments answering as `old` and `new`, each behind its Service, and a Service
/// `both` over the pods of both.
async fn backends(client: &Client) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    for version in ["old", "new"] {
        let deployment: Deployment = from(json!({"metadata": {"name": version},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": version}},
                "template": {"metadata": {"labels": {"app": version, "tier": "demo"}},
                    "spec": {"containers": [container(version)]}}}}));
        deployments
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
        services
            .create(&PostParams::default(), &service(version, version))
            .await
            .unwrap();
    }
    let both: Service = from(json!({"metadata": {"name": "both"},
        "spec": {"selector": {"tier": "demo"}, "ports": [{"port": 80, "targetPort": "http"}]}}));
    services
        .create(&PostParams::default(), &both)
        .await
        .unwrap();
}

/// Part 1: weight written → the new split served, and → reported.
async fn weight_to_served(client: &Client, ingress_at: SocketAddr, rounds: usize) {
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let host = "flip.bench";
    ingresses
        .create(
            &PostParams::default(),
            &ingress("flip", host, "old", json!({})),
        )
        .await
        .unwrap();
    let canary = json!({"nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "0"});
    ingresses
        .create(
            &PostParams::default(),
            &ingress("flip-canary", host, "new", canary),
        )
        .await
        .unwrap();
    answering(ingress_at, host).await;
    let mut sender = connect(ingress_at).await.unwrap();
    let (mut served, mut reported) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (weight, side) = if round % 2 == 0 {
            ("100", "new")
        } else {
            ("0", "old")
        };
        let version = format!("round-{round}");
        let patch = json!({"metadata": {"annotations": {
            "nginx.ingress.kubernetes.io/canary-weight": weight,
            annotation::ROUTE_VERSION: version}}});
        let t = Instant::now();
        ingresses
            .patch("flip-canary", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
        loop {
            match get(&mut sender, host).await {
                Ok(answer) if answer == side => break,
                Ok(_) => {}
                Err(_) => sender = connect(ingress_at).await.unwrap(),
            }
            assert!(t.elapsed() < Duration::from_secs(30), "never served");
        }
        served.push(t.elapsed());
        loop {
            let live = ingresses.get("flip-canary").await.unwrap();
            let mark = live.metadata.annotations.unwrap_or_default();
            if mark.get(annotation::SERVED_ROUTE_VERSION) == Some(&version) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            assert!(t.elapsed() < Duration::from_secs(30), "never reported");
        }
        reported.push(t.elapsed());
    }
    summary(
        "canary weight written -> first request on the new side",
        served,
    );
    summary(
        "canary weight written -> data plane reports it served",
        reported,
    );
}

/// Part 2: failed requests across full canaries under 200 requests/s.
async fn full_canaries(client: &Client, ingress_at: SocketAddr, releases: usize) {
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    for name in ["shop-stable", "shop-canary"] {
        services
            .create(&PostParams::default(), &service(name, "shop"))
            .await
            .unwrap();
    }
    let host = "shop.bench";
    ingresses
        .create(
            &PostParams::default(),
            &ingress("shop", host, "shop-stable", json!({})),
        )
        .await
        .unwrap();
    let rollout: Rollout = from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "shop"},
        "spec": {"replicas": 2, "revisionHistoryLimit": 2, "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [container("0")]}},
            "strategy": {"canary": {"canaryService": "shop-canary", "stableService": "shop-stable",
                "trafficRouting": {"nginx": {"stableIngress": "shop"}}, "scaleDownDelaySeconds": 2,
                "steps": [{"setWeight": 10}, {"pause": {"duration": 1}},
                    {"setWeight": 50}, {"pause": {"duration": 1}}]}}}}),
    );
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
    let healthy = |version: String| {
        let rollouts = rollouts.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(180);
            loop {
                let r = rollouts.get("shop").await.unwrap();
                let status = serde_json::to_value(&r.status).unwrap_or_default();
                let spec = serde_json::to_value(&r.spec).unwrap_or_default();
                let image_version = spec
                    .pointer("/template/spec/containers/0/env/0/value")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if status["phase"] == "Healthy"
                    && status["canary"]["weights"]["canary"]["weight"] == 0
                    && status["canary"]["weights"]["verified"] == true
                    && image_version.as_deref() == Some(version.as_str())
                    && status["observedGeneration"]
                        == json!(r.metadata.generation.unwrap_or(0).to_string())
                {
                    return;
                }
                assert!(Instant::now() < deadline, "release {version} never Healthy");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    healthy("0".into()).await;
    answering(ingress_at, host).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (total, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, total, failed) = (stop.clone(), total.clone(), failed.clone());
            tokio::spawn(async move {
                let mut sender = connect(ingress_at).await.ok();
                let mut tick = tokio::time::interval(Duration::from_millis(40));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    total.fetch_add(1, Ordering::Relaxed);
                    let outcome = match sender.as_mut() {
                        Some(s) => get(s, host).await.map(|_| ()),
                        None => Err("connect failed".into()),
                    };
                    if outcome.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                        sender = connect(ingress_at).await.ok();
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut lengths = Vec::new();
    for release in 1..=releases {
        let version = release.to_string();
        let patch = json!([{"op": "replace",
            "path": "/spec/template/spec/containers/0/env/0/value", "value": version}]);
        let t = Instant::now();
        rollouts
            .patch(
                "shop",
                &PatchParams::default(),
                &Patch::Json::<()>(serde_json::from_value(patch).unwrap()),
            )
            .await
            .unwrap();
        healthy(version).await;
        lengths.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let (total, failed) = (
        total.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    summary(
        "full canary (10 %, pause 1 s, 50 %, pause 1 s, switch)",
        lengths,
    );
    println!(
        "  under 200 requests/s for {:.0} s: {total} requests, {failed} failed = {:.2} per 10,000",
        started.elapsed().as_secs_f64(),
        failed as f64 * 10_000.0 / total.max(1) as f64
    );
}

/// Part 3: the ingress with a 50/50 canary split (`old` and `new`) beside a plain route over
/// the same two pods (the Service `both`, one endpoint per request in turn).
async fn split_versus_plain(client: &Client, ingress_at: SocketAddr) {
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    ingresses
        .create(
            &PostParams::default(),
            &ingress("plain", "plain.bench", "both", json!({})),
        )
        .await
        .unwrap();
    ingresses
        .create(
            &PostParams::default(),
            &ingress("split", "split.bench", "old", json!({})),
        )
        .await
        .unwrap();
    let canary = json!({"nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "50"});
    ingresses
        .create(
            &PostParams::default(),
            &ingress("split-canary", "split.bench", "new", canary),
        )
        .await
        .unwrap();
    answering(ingress_at, "plain.bench").await;
    answering(ingress_at, "split.bench").await;
    let length = Duration::from_secs(5);
    let (plain_rps, plain, plain_failed) = load(ingress_at, "plain.bench", 16, length, true).await;
    let (split_rps, split, split_failed) = load(ingress_at, "split.bench", 16, length, true).await;
    println!(
        "ingress, 16 keep-alive clients: plain route over both pods {plain_rps:.0} req/s p50 {:.2} ms p99 {:.2} ms (failed {plain_failed})",
        percentile(&plain, 0.5),
        percentile(&plain, 0.99)
    );
    println!(
        "  50/50 canary split {split_rps:.0} req/s p50 {:.2} ms p99 {:.2} ms (failed {split_failed}); vs plain: throughput {:.2}x, p99 {:.2}x",
        percentile(&split, 0.5),
        percentile(&split, 0.99),
        split_rps / plain_rps,
        percentile(&split, 0.99) / percentile(&plain, 0.99)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let releases = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::demo_cluster(dir.path(), true).await;
    let client = cluster.client();
    tokio::spawn(sluice_rollouts::controller::run(
        client.clone(),
        Default::default(),
        Default::default(),
    ));
    let ingress_at = cluster.ingress_addresses().unwrap().0;
    println!(
        "sluice traffic-routing benchmark (NGINX router, embedded ingress, demo app processes)"
    );
    backends(&client).await;
    weight_to_served(&client, ingress_at, rounds).await;
    split_versus_plain(&client, ingress_at).await;
    full_canaries(&client, ingress_at, releases).await;
}
