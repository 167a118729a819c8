//! Prometheus with the cluster: pods come and go in the file_sd targets and in Prometheus'
//! own target list, labelled as Kubernetes discovery with `labelmap` labels them; a run whose
//! Prometheus goes away mid-run errs after `consecutiveErrorLimit`; and `sluice up
//! --prometheus` as a user runs it: listed in the ready line, scraping the ingress and the
//! controllers, the controllers' default address, gone within 5 s of a SIGKILL of `sluice up`,
//! and refused with the install command where the binary is missing. Every Prometheus here is
//! the binary on PATH on a free port; without it these tests say so and return.

use std::{net::SocketAddr, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
};
use serde_json::json;
use sluice_api::{AnalysisPhase, AnalysisRun};
use sluice_cluster::prometheus::targets;
use sluice_testkit::prometheus::{TestPrometheus, free_address, get_json};

use super::{alive, client, from, namespace};

/// Waits up to `seconds` for `check`.
async fn within<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..seconds * 5 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {seconds}s waiting for {what}");
}

/// Prometheus' active targets' labels (`/api/v1/targets`), with `health` and `scrapeUrl`
/// added.
async fn active_targets(address: SocketAddr) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let answer = tokio::task::spawn_blocking(move || get_json(address, "/api/v1/targets"))
        .await
        .unwrap();
    answer["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let mut labels = t["labels"].as_object()?.clone();
            labels.insert("health".into(), t["health"].clone());
            labels.insert("scrapeUrl".into(), t["scrapeUrl"].clone());
            Some(labels)
        })
        .collect()
}

fn pod(name: &str, image: &str, ports: serde_json::Value, annotations: serde_json::Value) -> Pod {
    from(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations,
            "labels": {"app": name, "rollouts-pod-template-hash": "abc123"}},
        "spec": {"containers": [{"name": "main", "image": image, "ports": ports}]}}))
}

#[tokio::test]
async fn pods_come_and_go_in_prometheus_targets_with_their_labels() {
    let Some(server) = TestPrometheus::start().await else {
        return;
    };
    let ns = namespace(&client(), "prom-targets").await;
    let follow = tokio::spawn(targets::run(client(), server.prometheus.dir().to_owned()));
    let pods: Api<Pod> = Api::namespaced(client(), &ns);
    let create = |p: Pod| {
        let pods = pods.clone();
        async move { pods.create(&PostParams::default(), &p).await.unwrap() }
    };
    create(pod(
        "demo",
        "argoproj/rollouts-demo:blue",
        json!([{"name": "http", "containerPort": 8080}]),
        json!({}),
    ))
    .await;
    create(pod(
        "exporter",
        "example.com/exporter:1",
        json!([{"name": "web", "containerPort": 8080}]),
        json!({"prometheus.io/scrape": "true", "prometheus.io/port": "9100", "prometheus.io/path": "/stats"}),
    ))
    .await;
    create(pod(
        "grpc",
        "example.com/grpc:1",
        json!([{"name": "grpc", "containerPort": 9000}]),
        json!({}),
    ))
    .await;
    let file = server.prometheus.dir().join("targets/pods.json");
    let ours = |groups: &serde_json::Value| -> Vec<String> {
        let mut names: Vec<String> = groups
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["labels"]["namespace"] == ns.as_str())
            .filter_map(|g| g["labels"]["pod"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    let read = || {
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(&file).unwrap_or_default(),
        )
        .unwrap_or_default()
    };
    within(30, "the ready pods in pods.json", || async {
        ours(&read()) == ["demo", "exporter"]
    })
    .await;

    let address = server.prometheus.address();
    let mine = |targets: Vec<serde_json::Map<String, serde_json::Value>>| {
        targets
            .into_iter()
            .filter(|t| t.get("namespace").and_then(|v| v.as_str()) == Some(ns.as_str()))
            .collect::<Vec<_>>()
    };
    within(30, "Prometheus scraping the demo pod", || async {
        mine(active_targets(address).await)
            .iter()
            .any(|t| t["pod"] == "demo" && t["health"] == "up")
    })
    .await;
    let targets = mine(active_targets(address).await);
    let demo = targets.iter().find(|t| t["pod"] == "demo").unwrap();
    for (label, value) in [
        ("namespace", ns.as_str()),
        ("container", "main"),
        ("app", "demo"),
        ("rollouts_pod_template_hash", "abc123"),
        ("job", "kubernetes-pods"),
    ] {
        assert_eq!(demo[label], value, "{label} of {demo:?}");
    }
    let exporter = targets.iter().find(|t| t["pod"] == "exporter").unwrap();
    let url = exporter["scrapeUrl"].as_str().unwrap();
    assert!(url.ends_with(":9100/stats"), "{url}");
    assert!(!targets.iter().any(|t| t["pod"] == "grpc"));

    pods.delete("demo", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    within(30, "the deleted pod gone from pods.json", || async {
        ours(&read()) == ["exporter"]
    })
    .await;
    within(
        30,
        "the deleted pod gone from Prometheus' targets",
        || async {
            let targets = mine(active_targets(address).await);
            !targets.iter().any(|t| t["pod"] == "demo")
                && targets.iter().any(|t| t["pod"] == "exporter")
        },
    )
    .await;
    follow.abort();
}

#[tokio::test]
async fn a_run_whose_prometheus_goes_away_errs_after_consecutive_error_limit() {
    let Some(server) = TestPrometheus::start().await else {
        return;
    };
    let ns = namespace(&client(), "prom-down").await;
    let url = server.url();
    let api: Api<AnalysisRun> = Api::namespaced(client(), &ns);
    let run: AnalysisRun = from(json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun", "metadata": {"name": "rate"},
        "spec": {"metrics": [{"name": "rate", "interval": "1s", "consecutiveErrorLimit": 2,
            "successCondition": "result[0] >= 0.95",
            "provider": {"prometheus": {"address": url, "query": "vector(0.99)"}}}]}}));
    api.create(&PostParams::default(), &run).await.unwrap();
    let measurements = |run: &AnalysisRun| {
        run.status
            .as_ref()
            .and_then(|s| s.metric_results.as_ref())
            .and_then(|r| r.first())
            .and_then(|r| r.measurements.clone())
            .unwrap_or_default()
    };
    within(30, "a successful measurement", || async {
        measurements(&api.get("rate").await.unwrap())
            .iter()
            .any(|m| m.phase == AnalysisPhase::Successful && m.value.as_deref() == Some("[0.99]"))
    })
    .await;
    drop(server);
    within(30, "the run to err", || async {
        api.get("rate")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.phase.completed())
    })
    .await;
    let run = api.get("rate").await.unwrap();
    let status = run.status.clone().unwrap();
    assert_eq!(status.phase, AnalysisPhase::Error, "{status:?}");
    let message = status.message.unwrap_or_default();
    assert!(
        message.starts_with(
            "Metric \"rate\" assessed Error due to consecutiveErrors (3) > consecutiveErrorLimit (2): \"Error Message: Post \""
        ),
        "{message}"
    );
    let errors = measurements(&run)
        .iter()
        .filter(|m| m.phase == AnalysisPhase::Error)
        .count();
    assert_eq!(errors, 3);
}

/// `sluice up` as a child process with every listener on a free port.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn children(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let parent = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        let comm = stat
            .split_once(" (")
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map(|(c, _)| c.to_owned())
            .unwrap_or_default();
        if parent == Some(pid) {
            found.push((child, comm));
        }
    }
    found
}

#[tokio::test]
async fn sluice_up_prometheus_scrapes_sluice_serves_the_controllers_and_dies_with_it() {
    if sluice_cluster::prometheus::find().is_err() {
        eprintln!("SKIPPED: no `prometheus` binary on PATH; scripts/test.sh installs it");
        return;
    }
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let listen = free_address();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "up",
            "--ephemeral",
            "--listen",
            "127.0.0.1:0",
            "--ingress-listen",
            "127.0.0.1:0",
            "--ingress-metrics-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            &format!("--prometheus={listen}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run sluice up");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut up = Up(child);
    assert!(
        line.starts_with("sluice: ready at")
            && line.contains(&format!(" prometheus http://{listen}")),
        "{line}"
    );
    let prometheus: Vec<u32> = children(up.0.id())
        .into_iter()
        .filter(|(_, comm)| comm == "prometheus")
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(prometheus.len(), 1, "{:?}", children(up.0.id()));

    within(30, "the ingress and the controllers scraped", || async {
        let targets = active_targets(listen).await;
        ["sluice", "ingress-nginx"].iter().all(|job| {
            targets
                .iter()
                .any(|t| t["job"] == *job && t["health"] == "up")
        })
    })
    .await;

    // A metric that names no address queries this Prometheus.
    let kubeconfig = kube::config::Kubeconfig::read_from(dir.path().join("kubeconfig")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let api: Api<AnalysisRun> = Api::namespaced(client, "default");
    let run: AnalysisRun = from(json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun", "metadata": {"name": "self"},
        "spec": {"metrics": [{"name": "up", "successCondition": "result[0] == 1",
            "provider": {"prometheus": {"query": "up{job=\"sluice\"}"}}}]}}));
    api.create(&PostParams::default(), &run).await.unwrap();
    within(30, "the run to succeed", || async {
        api.get("self")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.phase == AnalysisPhase::Successful)
    })
    .await;
    let run = api.get("self").await.unwrap();
    assert_eq!(run.name_any(), "self");

    up.0.kill().unwrap(); // SIGKILL: no chance to clean up
    up.0.wait().unwrap();
    let killed_at = std::time::Instant::now();
    while prometheus.iter().any(|p| alive(*p)) && killed_at.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        prometheus.iter().all(|p| !alive(*p)),
        "prometheus left 5 s after SIGKILL of sluice up"
    );
}

#[test]
fn sluice_up_prometheus_without_the_binary_says_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["up", "--prometheus", "--data-dir"])
        .arg(dir.path())
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("apt-get install prometheus"), "{stderr}");
}
