//! The kubelet's Node: `sluice-local`, registered with this machine's CPUs, memory, kernel and
//! ids, and kept alive as a real kubelet keeps it — a Lease in `kube-node-lease` renewed every
//! 10 s (what `kubectl describe node` shows under `Lease`), and the Ready condition's heartbeat
//! refreshed every 5 minutes.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::{coordination::v1::Lease, core::v1::Node};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{admission::NODE_NAME, object::timestamp};

/// The kubelet version the Node reports.
const KUBELET_VERSION: &str = "v1.33.0-sluice";
/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often the Lease is renewed, and how long it lasts (the kubelet's defaults).
const LEASE_RENEW: Duration = Duration::from_secs(10);
const LEASE_SECONDS: i64 = 40;
/// How often the Ready condition's heartbeat is refreshed (`nodeStatusReportFrequency`).
const STATUS_REPORT: Duration = Duration::from_secs(300);

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// This machine's memory as a quantity (`24105Mi`), from `/proc/meminfo`.
fn memory() -> String {
    let kib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    match kib {
        Some(kib) => format!("{kib}Ki"),
        None => "0".to_owned(),
    }
}

/// This machine's architecture as Kubernetes names it (Go's `GOARCH`: `amd64`, `arm64`), what
/// `nodeSelector: {kubernetes.io/arch: amd64}` in manifests expects.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The Node's status: Ready, addresses, capacity and system info.
fn status(now: &str) -> Value {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let capacity = json!({"cpu": cpus.to_string(), "memory": memory(), "pods": "1k"});
    json!({
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
        "capacity": capacity,
        "allocatable": capacity,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "containerRuntimeVersion": "sluice://local",
            "operatingSystem": std::env::consts::OS, "architecture": go_arch(),
            "kernelVersion": read("/proc/sys/kernel/osrelease"), "osImage": "sluice",
            "machineID": read("/etc/machine-id"), "systemUUID": read("/etc/machine-id"),
            "bootID": read("/proc/sys/kernel/random/boot_id"), "kubeProxyVersion": ""},
    })
}

/// Creates the Node if it is missing and reports its status.
///
/// # Errors
/// The API's.
pub async fn register(client: &Client) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(NODE_NAME).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": NODE_NAME, "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": std::env::consts::OS,
                "kubernetes.io/arch": go_arch(),
                "node-role.kubernetes.io/control-plane": "",
            }},
            "spec": {},
        }))
        .expect("a valid Node");
        nodes.create(&PostParams::default(), &node).await?;
    }
    let now = timestamp(Timestamp::now());
    nodes
        .patch_status(
            NODE_NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status(&now)})),
        )
        .await?;
    Ok(())
}

/// Renews the node Lease every 10 s and the Ready heartbeat every 5 minutes, forever.
pub async fn heartbeat(client: Client) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    let mut ticker = tokio::time::interval(LEASE_RENEW);
    let mut last_report = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        if let Err(err) = renew(&leases, &nodes).await {
            tracing::debug!("renewing the node lease: {err}");
        }
        if last_report.elapsed() >= STATUS_REPORT {
            last_report = tokio::time::Instant::now();
            let now = timestamp(Timestamp::now());
            let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
                "reason": "KubeletReady", "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now}]}});
            let patched = nodes
                .patch_status(NODE_NAME, &PatchParams::default(), &Patch::Strategic(patch))
                .await;
            if let Err(err) = patched {
                tracing::debug!("reporting the node status: {err}");
            }
        }
    }
}

async fn renew(leases: &Api<Lease>, nodes: &Api<Node>) -> Result<(), kube::Error> {
    let now = Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    if leases.get_opt(NODE_NAME).await?.is_some() {
        let patch = json!({"spec": {"renewTime": now, "holderIdentity": NODE_NAME}});
        leases
            .patch(NODE_NAME, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        return Ok(());
    }
    let node = nodes.get(NODE_NAME).await?;
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": NODE_NAME, "namespace": LEASE_NAMESPACE, "ownerReferences": [{
            "apiVersion": "v1", "kind": "Node", "name": NODE_NAME,
            "uid": node.metadata.uid.unwrap_or_default()}]},
        "spec": {"holderIdentity": NODE_NAME, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now},
    }))
    .expect("a valid Lease");
    leases.create(&PostParams::default(), &lease).await?;
    Ok(())
}
