//! Scale benchmark: thousands of Rollouts under one controller (issue 16, part 4).
//!
//! For each count N given (default 1,000 3,000 10,000): a fresh `sluice up --no-controllers`
//! and `sluice controller` as their own processes, N Rollouts of one simulated pod each, half
//! blue-green (an active Service, auto-promotion, scale-down delay 5 s) and half canary
//! (`setWeight: 50`, a 1 s pause, replica-ratio traffic). It prints:
//!
//! - the first deploy and an image change of all N: wall time until all are Healthy on the
//!   version, the controller's CPU seconds in each phase and at idle;
//! - the controller's peak (VmHWM) and settled (VmRSS, after the scale-down delay) memory, and
//!   the API server's beside it;
//! - the per-Rollout slope of settled memory between counts;
//! - where the bytes go: every object the controller's stores hold, fetched from the API
//!   server after the update and put into reflector stores in this process as the controller
//!   stores them (the same trimming), counted by an allocator that tracks live bytes: bytes per
//!   store and per object, and the share of the fields that weigh most.
//!
//! `cargo bench -p sluice --bench scale [-- N...]` (`SLUICE_BIN=PATH` runs another build's
//! `sluice`, for a before and after). Numbers, never pass/fail.

mod common;

use common::{Child, usage};

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{core::v1::Pod, core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
    runtime::{reflector, watcher},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sluice_api::Rollout;
use sluice_rollouts::stored::{self, ReplicaSet};

/// The system allocator, counting the live bytes and blocks each thread allocated (minus
/// what it freed): a section that runs on one thread measures exactly what it keeps.
struct Counting;

thread_local! {
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn count(bytes: isize, blocks: isize) {
    let _ = LIVE.try_with(|live| {
        let (b, n) = live.get();
        live.set((b + bytes, n + blocks));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counting touches only a
// thread-local cell of plain integers, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize), -1);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize, 0);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live bytes and blocks this thread holds.
fn live() -> (isize, isize) {
    LIVE.with(Cell::get)
}

fn typed<K: DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

fn service(name: &str, app: &str) -> Value {
    json!({"metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}})
}

fn rollout(name: &str, image: &str, strategy: Value) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "revisionHistoryLimit": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app",
                    "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]}},
            "strategy": strategy}})
}

/// The `i`th Rollout's strategy: even ones blue-green, odd ones canary.
fn strategy(i: usize) -> Value {
    if i.is_multiple_of(2) {
        json!({"blueGreen": {"activeService": format!("r{i}-active"), "scaleDownDelaySeconds": 5}})
    } else {
        json!({"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}})
    }
}

/// How many Rollouts are Healthy on `image`, their status written for their generation.
fn healthy(rollouts: &[Rollout], image: &str) -> usize {
    rollouts
        .iter()
        .filter(|r| {
            let status = serde_json::to_value(&r.status).unwrap_or_default();
            let current = r
                .spec
                .template
                .as_ref()
                .and_then(|t| t.pointer("/spec/containers/0/image"))
                .and_then(Value::as_str);
            status["phase"] == "Healthy"
                && status["stableRS"] == status["currentPodHash"]
                && current == Some(image)
                && status["observedGeneration"]
                    == r.metadata.generation.unwrap_or(0).to_string().as_str()
        })
        .count()
}

/// Lists until every Rollout is Healthy on `image` (a list every 2 s, not a watch: the bench
/// process holds no store of its own while it measures).
async fn until_healthy(api: &Api<Rollout>, count: usize, image: &str) {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let list = api
            .list(&ListParams::default())
            .await
            .expect("list Rollouts");
        if healthy(&list.items, image) >= count {
            return;
        }
        assert!(Instant::now() < deadline, "Rollouts not Healthy on {image}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Memory and CPU of both processes at one moment.
#[derive(Clone, Copy)]
struct Usage {
    controller: (f64, f64, f64),
    api: (f64, f64, f64),
}

fn sample(controller: u32, api: u32) -> Usage {
    Usage {
        controller: usage(controller),
        api: usage(api),
    }
}

/// One count's results: settled controller RSS (MiB), for the slope.
async fn run(count: usize, breakdown: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let up = common::bare_up(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    let controller = Child(
        Command::new(common::sluice_bin())
            .args([
                "controller",
                "--leader-elect=false",
                "--controllers",
                "rollouts",
            ])
            .args(["--health-listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env("SLUICE_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (pid, api_pid) = (controller.0.id(), up.0.id());
    let client = client(&kubeconfig).await;
    let ns = "default";
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    println!(
        "== {count} Rollouts ({} blue-green, {} canary; 1 simulated pod each)",
        count.div_ceil(2),
        count / 2
    );
    let start = sample(pid, api_pid);
    let t = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let (services, rollouts) = (services.clone(), rollouts.clone());
            async move {
                let name = format!("r{i}");
                if i.is_multiple_of(2) {
                    let active = typed(service(&format!("{name}-active"), &name));
                    services
                        .create(&PostParams::default(), &active)
                        .await
                        .unwrap();
                }
                let body = typed(rollout(&name, "example.com/app:1", strategy(i)));
                rollouts
                    .create(&PostParams::default(), &body)
                    .await
                    .unwrap();
            }
        })
        .await;
    let created = t.elapsed();
    until_healthy(&rollouts, count, "example.com/app:1").await;
    let deployed = sample(pid, api_pid);
    println!(
        "first deploy: created in {:.1} s, all Healthy after {:.1} s; controller CPU {:.1} s, peak {:.1} MiB; API server CPU {:.1} s, RSS {:.1} MiB",
        created.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        deployed.controller.2 - start.controller.2,
        deployed.controller.0,
        deployed.api.2 - start.api.2,
        deployed.api.1,
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = sample(pid, api_pid);
    println!(
        "idle: controller CPU {:.2} s over 10 s ({:.1} %), RSS {:.1} MiB",
        idle.controller.2 - deployed.controller.2,
        (idle.controller.2 - deployed.controller.2) * 10.0,
        idle.controller.1
    );
    let t = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let rollouts = rollouts.clone();
            async move {
                let patch = json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": "example.com/app:2"}]}}}});
                rollouts
                    .patch(
                        &format!("r{i}"),
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(patch),
                    )
                    .await
                    .unwrap();
            }
        })
        .await;
    until_healthy(&rollouts, count, "example.com/app:2").await;
    let updated = sample(pid, api_pid);
    println!(
        "update of all (image change): all Healthy on the new version after {:.1} s; controller CPU {:.1} s, peak {:.1} MiB; API server CPU {:.1} s",
        t.elapsed().as_secs_f64(),
        updated.controller.2 - idle.controller.2,
        updated.controller.0,
        updated.api.2 - idle.api.2,
    );
    // Past the blue-green scale-down delay: the old ReplicaSets at zero.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let settled = sample(pid, api_pid);
    println!(
        "settled: controller RSS {:.1} MiB ({:.1} KiB per Rollout), peak {:.1} MiB; API server RSS {:.1} MiB, peak {:.1} MiB",
        settled.controller.1,
        settled.controller.1 * 1024.0 / count as f64,
        settled.controller.0,
        settled.api.1,
        settled.api.0,
    );
    if breakdown {
        stores(&client, count).await;
    }
    drop(controller);
    drop(up);
    settled.controller.1
}

async fn client(kubeconfig: &Path) -> Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

/// Every object of a kind, as the API server lists it, JSON.
async fn list_json(client: &Client, path: &str) -> Vec<Value> {
    let request = http::Request::get(path).body(Vec::new()).unwrap();
    let list: Value = client.request(request).await.expect("list");
    match list["items"].clone() {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

/// Bytes a reflector store of `K` keeps for `items`, each trimmed as the controller trims it,
/// and the blocks it took: measured on this thread alone.
fn store_bytes<K>(items: &[Value], trim: fn(&mut K)) -> (isize, isize)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Send + Sync + 'static,
{
    let before = live();
    let (reader, mut writer) = reflector::store::<K>();
    for item in items {
        let mut object: K = serde_json::from_value(item.clone()).expect("an object");
        object.meta_mut().managed_fields = None;
        trim(&mut object);
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }
    let after = live();
    drop(reader);
    drop(writer);
    (after.0 - before.0, after.1 - before.1)
}

/// `items` with the value at each pointer removed.
fn without(items: &[Value], pointer: &str) -> Vec<Value> {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            if let Some(Value::Object(map)) = item.pointer_mut(parent) {
                map.remove(key);
            }
            item
        })
        .collect()
}

fn keep_all<K>(_: &mut K) {}

/// One store's line: its bytes, per object, and what its heaviest fields weigh.
fn report<K>(what: &str, items: &[Value], trim: fn(&mut K), fields: &[&str]) -> isize
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Send + Sync + 'static,
{
    let (bytes, blocks) = store_bytes(items, trim);
    let per = |b: isize| b as f64 / items.len().max(1) as f64;
    let mut line = format!(
        "  {what:<15} {:>6} objects {:>8.1} MiB  {:>6.0} B/object ({:.0} blocks)",
        items.len(),
        bytes as f64 / 1048576.0,
        per(bytes),
        per(blocks),
    );
    for field in fields {
        let (rest, _) = store_bytes(&without(items, field), trim);
        line.push_str(&format!(
            "; {field} {:.0}%",
            (bytes - rest) as f64 * 100.0 / bytes.max(1) as f64
        ));
    }
    println!("{line}");
    bytes
}

/// Where the controller's bytes go: each store as the controller keeps it.
async fn stores(client: &Client, count: usize) {
    let rollouts = list_json(client, "/apis/argoproj.io/v1alpha1/rollouts").await;
    let sets = list_json(client, "/apis/apps/v1/replicasets").await;
    let services = list_json(client, "/api/v1/services").await;
    let slices = list_json(client, "/apis/discovery.k8s.io/v1/endpointslices").await;
    let pods = list_json(
        client,
        "/api/v1/pods?labelSelector=rollouts-pod-template-hash",
    )
    .await;
    println!("where the controller's bytes go (its stores, as it trims them; live heap bytes):");
    // Each measured on this thread alone, with nothing else of this process running on it.
    let total = report::<Rollout>(
        "Rollouts",
        &rollouts,
        stored::trim_applied,
        &["/spec/template", "/status", "/metadata/annotations"],
    ) + report::<ReplicaSet>(
        "ReplicaSets",
        &sets,
        keep_all,
        &[
            "/spec/template",
            "/status",
            "/metadata/annotations",
            "/metadata/labels",
        ],
    ) + report::<Service>("Services", &services, stored::trim_service, &["/spec"])
        + report::<EndpointSlice>(
            "EndpointSlices",
            &slices,
            stored::trim_slice,
            &["/endpoints"],
        )
        + report::<Pod>("Pods", &pods, stored::trim_pod, &["/metadata/labels"]);
    println!(
        "  all stores: {:.1} MiB ({:.1} KiB per Rollout)",
        total as f64 / 1048576.0,
        total as f64 / 1024.0 / count as f64
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    if counts.is_empty() {
        counts = vec![1000, 3000, 10000];
    }
    println!(
        "sluice scale benchmark: `sluice controller` (own process) against `sluice up --no-controllers`"
    );
    let mut settled = Vec::new();
    for (i, &count) in counts.iter().enumerate() {
        let rss = run(count, i + 1 == counts.len()).await;
        settled.push((count, rss));
    }
    if let (Some(&(n0, r0)), Some(&(n1, r1))) = (settled.first(), settled.last())
        && n1 > n0
    {
        println!(
            "slope: {:.1} KiB per Rollout of settled controller RSS between {n0} and {n1} ({:.1} MiB at rest beside)",
            (r1 - r0) * 1024.0 / (n1 - n0) as f64,
            r0 - (r1 - r0) / (n1 - n0) as f64 * n0 as f64
        );
    }
    println!(
        "for scale: Argo Rollouts users report 11-14 GB at 11-13k Rollouts (about 1 MiB per Rollout)"
    );
}
