//! Rollout controller benchmark.
//!
//! 1. On an in-process `sluice up` cluster with the controller, a blue-green Rollout of demo
//!    app processes (readiness probe every second), round after round: template change →
//!    preview Ready (the preview Service selects the new hash and its EndpointSlice lists a
//!    ready new pod), then `promote` (the status patch `sluice promote` sends) → the active
//!    Service's selector switched, beside the floor measured in the same run: a bare patch of
//!    a Service selector until a watch shows it.
//! 2. `sluice controller` as its own process against `sluice up --no-controllers`, with N
//!    blue-green Rollouts of simulated pods (default 1,000): time until all are Healthy, an
//!    image change of all of them until all are Healthy again, the controller's peak and
//!    steady memory (VmHWM, VmRSS) and CPU seconds in each phase and at idle.
//!
//! `cargo bench -p sluice --bench rollouts [-- ROUNDS [N]]`. Numbers, never pass/fail.

mod common;

use common::{Child, usage};

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use serde_json::{Value, json};
use sluice_api::Rollout;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[at].as_secs_f64() * 1e3
}

fn summary(what: &str, mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{what} ({} rounds): p50 {p50:.1} ms, p99 {p99:.1} ms",
        samples.len()
    );
    (p50, p99)
}

/// A store of `K` in `namespace`, kept by a watch.
fn store<K>(client: &Client, namespace: &str) -> Store<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let watch = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .for_each(|_| async {});
    tokio::spawn(watch);
    reader
}

/// Polls `check` every millisecond (it reads in-memory stores) for up to two minutes.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn selects(services: &Store<Service>, namespace: &str, name: &str) -> Option<String> {
    let service = services.get(&reflector::ObjectRef::new(name).within(namespace))?;
    service
        .spec
        .as_ref()?
        .selector
        .as_ref()?
        .get("rollouts-pod-template-hash")
        .cloned()
}

fn status(rollouts: &Store<Rollout>, namespace: &str, name: &str) -> Value {
    rollouts
        .get(&reflector::ObjectRef::new(name).within(namespace))
        .and_then(|r| serde_json::to_value(&r.status).ok())
        .unwrap_or_default()
}

/// Whether `service`'s EndpointSlices list ready pods, all of `hash`.
fn ready_on(slices: &Store<EndpointSlice>, service: &str, hash: &str) -> bool {
    let endpoints: Vec<_> = slices
        .state()
        .iter()
        .filter(|s| {
            s.labels()
                .get("kubernetes.io/service-name")
                .map(String::as_str)
                == Some(service)
        })
        .flat_map(|s| s.endpoints.clone())
        .collect();
    !endpoints.is_empty()
        && endpoints.iter().all(|e| {
            let pod = e
                .target_ref
                .as_ref()
                .and_then(|t| t.name.clone())
                .unwrap_or_default();
            pod.contains(hash) && e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
        })
}

fn service(name: &str, app: &str) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    .unwrap()
}

fn rollout(name: &str, image: &str, blue_green: Value, probe: bool) -> Rollout {
    let mut container = json!({"name": "app", "image": image,
        "ports": [{"name": "http", "containerPort": 8080}]});
    if probe {
        container["readinessProbe"] =
            json!({"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1});
    }
    serde_json::from_value(json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "revisionHistoryLimit": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}},
            "strategy": {"blueGreen": blue_green}}}))
    .unwrap()
}

async fn set_image(api: &Api<Rollout>, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

/// Part 1: the cutover latencies on demo pods.
async fn cutover(rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::demo_cluster(dir.path(), false).await;
    let client = cluster.client();
    tokio::spawn(sluice_rollouts::controller::run(
        client.clone(),
        Default::default(),
        Default::default(),
    ));
    let ns = "default";
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    for name in ["active", "preview", "floor"] {
        services
            .create(&PostParams::default(), &service(name, "demo"))
            .await
            .unwrap();
    }
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns);
    let blue_green = json!({"activeService": "active", "previewService": "preview",
        "autoPromotionEnabled": false, "scaleDownDelaySeconds": 0});
    rollouts
        .create(
            &PostParams::default(),
            &rollout("demo", "argoproj/rollouts-demo:blue", blue_green, true),
        )
        .await
        .unwrap();
    let (service_store, slice_store, rollout_store) = (
        store::<Service>(&client, ns),
        store::<EndpointSlice>(&client, ns),
        store::<Rollout>(&client, ns),
    );
    until("the first deploy", || {
        status(&rollout_store, ns, "demo")["phase"] == "Healthy"
    })
    .await;
    let colours = ["yellow", "green", "purple", "orange", "blue"];
    let (mut preview_ready, mut switched, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let image = format!("argoproj/rollouts-demo:{}", colours[round % colours.len()]);
        let before = status(&rollout_store, ns, "demo")["currentPodHash"].clone();
        let t = Instant::now();
        set_image(&rollouts, "demo", &image).await;
        let mut hash = String::new();
        until("preview ready", || {
            let now = status(&rollout_store, ns, "demo")["currentPodHash"].clone();
            if now == before {
                return false;
            }
            hash = now.as_str().unwrap_or_default().to_owned();
            selects(&service_store, ns, "preview").as_deref() == Some(hash.as_str())
                && ready_on(&slice_store, "preview", &hash)
        })
        .await;
        preview_ready.push(t.elapsed());
        until("paused", || {
            status(&rollout_store, ns, "demo")["phase"] == "Paused"
        })
        .await;
        let t = Instant::now();
        let promote = json!({"status": {"pauseConditions": null}});
        rollouts
            .patch_status("demo", &PatchParams::default(), &Patch::Merge(promote))
            .await
            .unwrap();
        until("switched", || {
            selects(&service_store, ns, "active").as_deref() == Some(hash.as_str())
        })
        .await;
        switched.push(t.elapsed());
        let value = format!("floor-{round}");
        let t = Instant::now();
        let patch = json!({"spec": {"selector": {"rollouts-pod-template-hash": value}}});
        services
            .patch("floor", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
        until("floor patch seen", || {
            selects(&service_store, ns, "floor").as_deref() == Some(value.as_str())
        })
        .await;
        floor.push(t.elapsed());
        until("healthy", || {
            status(&rollout_store, ns, "demo")["phase"] == "Healthy"
        })
        .await;
    }
    println!(
        "== cutover on demo app processes (1 replica, readiness probe every 1 s, fsync per commit)"
    );
    summary("template change -> preview Ready", preview_ready);
    let (s50, s99) = summary("promote -> active selector switched", switched);
    let (f50, f99) = summary(
        "floor: bare Service selector patch -> seen by a watch",
        floor,
    );
    println!(
        "promote -> switched vs floor: p50 {:.1}x, p99 {:.1}x",
        s50 / f50,
        s99 / f99
    );
    cluster.shutdown().await;
}

/// Part 2: N Rollouts under `sluice controller` as its own process.
async fn scale(count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let _up = common::bare_up(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    let controller = Child(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["controller", "--leader-elect=false"])
            .args([
                "--health-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env("SLUICE_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = controller.0.id();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let ns = "default";
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let rollout_store = store::<Rollout>(&client, ns);
    let (_, _, cpu_start) = usage(pid);
    let t = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let (rollouts, services) = (rollouts.clone(), services.clone());
            async move {
                let name = format!("r{i}");
                let active = format!("r{i}-active");
                services
                    .create(&PostParams::default(), &service(&active, &name))
                    .await
                    .unwrap();
                let blue_green = json!({"activeService": active, "scaleDownDelaySeconds": 5});
                rollouts
                    .create(
                        &PostParams::default(),
                        &rollout(&name, "example.com/app:1", blue_green, false),
                    )
                    .await
                    .unwrap();
            }
        })
        .await;
    let created = t.elapsed();
    let healthy = |store: &Store<Rollout>, image: &str| {
        store
            .state()
            .iter()
            .filter(|r| {
                let status = serde_json::to_value(&r.status).unwrap_or_default();
                let current = r.spec.template.as_ref().and_then(|t| {
                    serde_json::to_value(t).ok()?["spec"]["containers"][0]["image"]
                        .as_str()
                        .map(str::to_owned)
                });
                status["phase"] == "Healthy"
                    && status["stableRS"] == status["currentPodHash"]
                    && current.as_deref() == Some(image)
                    && status["observedGeneration"]
                        == r.metadata.generation.unwrap_or(0).to_string().as_str()
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    while healthy(&rollout_store, "example.com/app:1") < count {
        assert!(
            Instant::now() < deadline,
            "the first deploys did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = t.elapsed();
    let (peak, rss, cpu) = usage(pid);
    println!(
        "== {count} blue-green Rollouts (1 simulated pod each) under `sluice controller` (own process)"
    );
    println!(
        "first deploy: created in {:.1} s, all Healthy after {:.1} s; controller CPU {:.1} s; memory peak {peak:.1} MiB, now {rss:.1} MiB ({:.1} KiB per Rollout)",
        created.as_secs_f64(),
        converged.as_secs_f64(),
        cpu - cpu_start,
        rss * 1024.0 / count as f64
    );
    let (_, _, idle_start) = usage(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_, _, idle_end) = usage(pid);
    println!(
        "idle: controller CPU {:.2} s over 10 s ({:.1} %)",
        idle_end - idle_start,
        (idle_end - idle_start) * 10.0
    );
    let t = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let rollouts = rollouts.clone();
            async move { set_image(&rollouts, &format!("r{i}"), "example.com/app:2").await }
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(900);
    while healthy(&rollout_store, "example.com/app:2") < count {
        assert!(Instant::now() < deadline, "the updates did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let updated = t.elapsed();
    let (peak, rss, cpu_after) = usage(pid);
    println!(
        "update of all (image change, auto-promotion): all Healthy on the new version after {:.1} s; controller CPU {:.1} s; memory peak {peak:.1} MiB, now {rss:.1} MiB",
        updated.as_secs_f64(),
        cpu_after - idle_end
    );
    println!(
        "for scale: Argo Rollouts users report 11-14 GB at 11-13k Rollouts (about 1 MiB per Rollout)"
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let count = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    println!("sluice Rollout controller benchmark");
    cutover(rounds).await;
    scale(count).await;
}
