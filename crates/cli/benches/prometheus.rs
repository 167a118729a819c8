//! Prometheus benchmark, three parts, each with the `prometheus` binary on PATH:
//!
//! 1. **Abort to stable**: an in-process cluster with the ingress and the Rollout and
//!    AnalysisRun controllers, a Prometheus scraping its pods and the ingress every second, and
//!    a canary at 20 % through the NGINX router whose analysis step reads the canary's error
//!    rate by pod-template hash every 2 s. Under 200 requests/s through the ingress, `bad-red`
//!    fails it; the time from the first failing measurement (the run's watch event) to the
//!    Rollout's abort with the router's 0 served (its watch event), and to the last request
//!    the canary answered (every later one served by stable; negative when it came before),
//!    over several rounds (`retry`, fail again). The canary answers one request every 25 ms,
//!    which bounds how finely the last one can be placed.
//! 2. **Controller load**: `sluice controller --prometheus-address` as its own process against
//!    `sluice up --no-controllers`, first with no AnalysisRuns (baseline), then with N runs
//!    (default 1,000) each querying Prometheus every 10 s: the controller's CPU and memory in
//!    both windows, in the same run, and Prometheus' queries answered and CPU.
//! 3. **Prometheus' footprint**: `sluice up --prometheus` (its own process, every listener on a
//!    free port) with P real demo pods (default 100, `sluice demo-app` processes) scraped every
//!    2 s: Prometheus' VmRSS and VmHWM before the pods and over a window with them, and its
//!    head series.
//!
//! `cargo bench -p sluice --bench prometheus [-- ROUNDS [RUNS [WINDOW_SECONDS [PODS]]]]`
//! (defaults 5, 1000, 60, 100). Numbers, never pass/fail.

mod common;

use common::{Child, usage};

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::{
    core::v1::{Pod, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};
use sluice_api::{AnalysisPhase, AnalysisRun, AnalysisTemplate, Rollout};
use sluice_cluster::prometheus::targets;
use sluice_testkit::prometheus::{Exposition, TestPrometheus, encode, free_address, get_json};

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[at]
}

/// `later - earlier` in seconds, negative when `later` came first.
fn signed(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64(),
        None => -earlier.duration_since(later).as_secs_f64(),
    }
}

/// min, p50, p99 and max of `values`, in seconds.
fn spread(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "min {:.3} s, p50 {:.3} s, p99 {:.3} s, max {:.3} s (n = {})",
        values[0],
        percentile(values, 0.5),
        percentile(values, 0.99),
        values[values.len() - 1],
        values.len()
    )
}

/// An instant query's first value, if any.
async fn query(address: SocketAddr, promql: &str) -> Option<f64> {
    let path = format!("/api/v1/query?query={}", encode(promql));
    let answer = tokio::task::spawn_blocking(move || get_json(address, &path))
        .await
        .unwrap();
    answer["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
}

/// A keep-alive client of the ingress: the `X-Version` of each answer.
async fn connect(
    address: SocketAddr,
) -> Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// 200 requests/s through the ingress for `host` (8 clients, one request each per 40 ms)
/// until `stop`, each answer's completion time and version appended to `log`.
fn load(
    ingress: SocketAddr,
    host: &'static str,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
) {
    for _ in 0..8 {
        let (log, stop) = (log.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sender = None;
            let mut tick = tokio::time::interval(Duration::from_millis(40));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let Some(client) = sender.as_mut() else {
                    sender = connect(ingress).await;
                    continue;
                };
                if client.ready().await.is_err() {
                    sender = None;
                    continue;
                }
                let request = hyper::Request::get("/color")
                    .header("host", host)
                    .body(Empty::new())
                    .unwrap();
                let Ok(response) = client.send_request(request).await else {
                    continue;
                };
                let version = response
                    .headers()
                    .get("x-version")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let _ = response.into_body().collect().await;
                log.lock().unwrap().push((Instant::now(), version));
            }
        });
    }
}

async fn rollout_status(rollouts: &Api<Rollout>) -> Value {
    serde_json::to_value(rollouts.get("demo").await.unwrap().status).unwrap_or_default()
}

/// Waits for the Rollout's phase with the router's weight verified at `weight`.
async fn settled(rollouts: &Api<Rollout>, phase: &str, weight: i64) -> Value {
    let started = Instant::now();
    loop {
        let status = rollout_status(rollouts).await;
        let weights = &status["canary"]["weights"];
        if status["phase"] == phase
            && weights["canary"]["weight"] == weight
            && weights["verified"] == json!(true)
        {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no {phase} at {weight}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Part 1: from the first failing measurement to every request on stable, `rounds` times.
async fn abort_to_stable(rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::demo_cluster(dir.path(), true).await;
    let client = cluster.client();
    tokio::spawn(sluice_rollouts::controller::run(
        client.clone(),
        Default::default(),
        Default::default(),
    ));
    tokio::spawn(sluice_analysis::controller::run(
        client.clone(),
        Default::default(),
        Default::default(),
    ));
    let (ingress, ingress_metrics) = cluster.ingress_addresses().unwrap();
    let prometheus = TestPrometheus::start().await.unwrap();
    prometheus.scrape("ingress-nginx", ingress_metrics);
    tokio::spawn(targets::run(
        client.clone(),
        prometheus.prometheus.dir().to_owned(),
    ));

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    for name in ["demo-stable", "demo-canary"] {
        let service: Service = from(json!({"metadata": {"name": name},
            "spec": {"selector": {"app": "demo"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}));
        services
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
    }
    let ingress_object: Ingress = from(json!({"metadata": {"name": "demo"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "bench.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "demo-stable", "port": {"number": 80}}}}]}}]}}));
    Api::<Ingress>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &ingress_object)
        .await
        .unwrap();
    let selector = "namespace=\"default\",rollouts_pod_template_hash=\"{{args.hash}}\"";
    let template: AnalysisTemplate = from(json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate", "metadata": {"name": "error-rate"},
        "spec": {"args": [{"name": "hash"}],
            "metrics": [{"name": "error-rate", "interval": "2s", "count": 60,
                "successCondition": "len(result) == 0 || isNaN(result[0]) || result[0] <= 0.05",
                "provider": {"prometheus": {"address": prometheus.url(), "query": format!(
                    "(sum(rate(http_requests_total{{{selector},status=~\"5..\"}}[10s])) or vector(0)) / sum(rate(http_requests_total{{{selector}}}[10s]))")}}}]}}));
    Api::<AnalysisTemplate>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let rollout: Rollout = from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "demo",
                    "image": "argoproj/rollouts-demo:blue",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                        "periodSeconds": 1, "failureThreshold": 1}}]}},
            "strategy": {"canary": {"canaryService": "demo-canary", "stableService": "demo-stable",
                "trafficRouting": {"nginx": {"stableIngress": "demo"}},
                "abortScaleDownDelaySeconds": 2,
                "steps": [{"setWeight": 20},
                    {"analysis": {"templates": [{"templateName": "error-rate"}],
                        "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}},
                    {"pause": {}}]}}}}),
    );
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
    settled(&rollouts, "Healthy", 0).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    load(ingress, "bench.example", log.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;

    // When each run's first failing measurement and each abort arrive, as watch events (the
    // controllers see the same events).
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), "default");
    let failures: Arc<Mutex<Vec<(String, Instant, String)>>> = Arc::default();
    let seen = failures.clone();
    let run_events = watcher(runs.clone(), watcher::Config::default()).applied_objects();
    tokio::spawn(async move {
        let mut run_events = std::pin::pin!(run_events);
        while let Some(Ok(run)) = run_events.next().await {
            let failed = run
                .status
                .as_ref()
                .and_then(|s| s.metric_results.as_ref())
                .and_then(|r| r.first())
                .and_then(|r| r.measurements.as_ref())
                .and_then(|m| m.iter().find(|m| m.phase == AnalysisPhase::Failed))
                .map(|m| m.value.clone().unwrap_or_default());
            let mut seen = seen.lock().unwrap();
            if let Some(value) = failed
                && !seen.iter().any(|(name, _, _)| *name == run.name_any())
            {
                seen.push((run.name_any(), Instant::now(), value));
            }
        }
    });
    let aborts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = aborts.clone();
    let rollout_events = watcher(rollouts.clone(), watcher::Config::default()).applied_objects();
    tokio::spawn(async move {
        let mut rollout_events = std::pin::pin!(rollout_events);
        let mut was = false;
        while let Some(Ok(rollout)) = rollout_events.next().await {
            let status = serde_json::to_value(rollout.status).unwrap_or_default();
            let now = status["phase"] == "Degraded"
                && status["canary"]["weights"]["canary"]["weight"] == 0
                && status["canary"]["weights"]["verified"] == json!(true);
            if now && !was {
                seen.lock().unwrap().push(Instant::now());
            }
            was = now;
        }
    });
    let kubeconfig = cluster.kubeconfig().to_owned();
    let (mut to_abort, mut to_stable, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        if round == 0 {
            let image = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                "value": "argoproj/rollouts-demo:bad-red"}]);
            rollouts
                .patch(
                    "demo",
                    &PatchParams::default(),
                    &Patch::Json::<()>(from(image)),
                )
                .await
                .unwrap();
        } else {
            let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["retry", "rollout", "demo", "-n", "default", "--kubeconfig"])
                .arg(&kubeconfig)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        // The round's run: the (round + 1)-th to fail.
        while failures.lock().unwrap().len() <= round {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, failed_at, value) = failures.lock().unwrap()[round].clone();
        values.push(value);
        settled(&rollouts, "Degraded", 0).await;
        while aborts.lock().unwrap().len() <= round {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let aborted_at = aborts.lock().unwrap()[round];
        to_abort.push(signed(aborted_at, failed_at));
        // Anything the canary still answers comes within the next few seconds.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let last_canary = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, version)| version == "bad-red")
            .map(|(at, _)| *at)
            .max()
            .unwrap();
        to_stable.push(signed(last_canary, failed_at));
        let after: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at > last_canary)
            .map(|(_, version)| version.clone())
            .collect();
        assert!(
            !after.is_empty() && after.iter().all(|v| v == "blue"),
            "after the canary's last answer: {after:?}"
        );
        // The canary's pods go after abortScaleDownDelaySeconds; the next round starts once
        // the rate window (10 s) no longer holds this round's requests: the retried canary has
        // the same hash, and its first measurement would read them.
        tokio::time::sleep(Duration::from_secs(8)).await;
    }
    println!(
        "== 1. abort to stable: canary at 20 % through the ingress, 200 requests/s, bad-red (15 % errors), error rate every 2 s"
    );
    println!("failing values measured: {}", values.join(" "));
    println!("(from the watch event of each run's first failing measurement; negative: before it)");
    println!(
        "→ the watch event of the Rollout Degraded with the router's 0 served: {}",
        spread(&mut to_abort)
    );
    println!(
        "→ the last request answered by the canary (every later one by stable): {}",
        spread(&mut to_stable)
    );
    stop.store(true, Ordering::Relaxed);
    drop(prometheus);
    cluster.shutdown().await;
}

/// `sluice controller` as its own process against `kubeconfig`, querying `prometheus`.
fn controller(kubeconfig: &std::path::Path, prometheus: &str) -> Child {
    let mut controller = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["controller", "--leader-elect=false"])
        .args([
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--prometheus-address",
            prometheus,
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(controller.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    std::thread::spawn(move || for _ in stderr.lines() {});
    Child(controller)
}

async fn client_of(kubeconfig: &std::path::Path) -> Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

/// CPU seconds and VmRSS of `pid` over `window`: `(cpu % of one core, VmRSS MiB, VmHWM MiB)`.
async fn window_usage(pid: u32, window: u64) -> (f64, f64, f64) {
    let (_, _, before) = usage(pid);
    tokio::time::sleep(Duration::from_secs(window)).await;
    let (peak, rss, after) = usage(pid);
    ((after - before) / window as f64 * 100.0, rss, peak)
}

/// Part 2: the controller's added CPU and memory with `count` runs querying every 10 s.
async fn controller_load(count: usize, window: u64) {
    let dir = tempfile::tempdir().unwrap();
    let _up = common::bare_up(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    let prometheus = TestPrometheus::start().await.unwrap();
    let exposition = Exposition::serve(
        "http_requests_total{status=\"200\"} 1000\nhttp_requests_total{status=\"500\"} 3\n",
    );
    prometheus.scrape("demo", exposition.address);
    prometheus.scrape("prometheus", prometheus.prometheus.address());
    let controller = controller(&kubeconfig, &prometheus.url());
    let pid = controller.0.id();
    let client = client_of(&kubeconfig).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (cpu_base, rss_base, _) = window_usage(pid, window).await;
    let queries = |address| async move {
        query(
            address,
            "sum(prometheus_http_requests_total{handler=\"/api/v1/query\"})",
        )
        .await
        .unwrap_or(0.0)
    };

    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let runs = runs.clone();
            async move {
                let run: AnalysisRun = from(json!({
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                    "metadata": {"name": format!("run-{i}")},
                    "spec": {"metrics": [{"name": "success-rate", "interval": "10s",
                        "successCondition": "len(result) == 0 || isNaN(result[0]) || result[0] >= 0.95",
                        "provider": {"prometheus": {"query":
                            "sum(rate(http_requests_total{job=\"demo\",status!~\"5..\"}[30s])) / sum(rate(http_requests_total{job=\"demo\"}[30s]))"}}}]}}));
                runs.create(&PostParams::default(), &run).await.unwrap();
            }
        })
        .await;
    loop {
        let list = runs.list(&ListParams::default()).await.unwrap().items;
        let measured = list
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.metric_results.as_ref())
                    .is_some_and(|m| !m.is_empty())
            })
            .count();
        if measured == count {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {measured} measured"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let measured_after = started.elapsed();
    let address = prometheus.prometheus.address();
    let queries_before = queries(address).await;
    let (_, _, prometheus_cpu_before) = usage(prometheus.prometheus.pid());
    let (cpu_runs, rss_runs, peak) = window_usage(pid, window).await;
    let (_, _, prometheus_cpu_after) = usage(prometheus.prometheus.pid());
    let answered = queries(address).await - queries_before;
    let list = runs.list(&ListParams::default()).await.unwrap().items;
    let errors: usize = list
        .iter()
        .filter_map(|r| r.status.as_ref()?.metric_results.as_ref()?.first()?.error)
        .map(|e| e as usize)
        .sum();
    let measurements: usize = list
        .iter()
        .filter_map(|r| r.status.as_ref()?.metric_results.as_ref()?.first()?.count)
        .map(|e| e as usize)
        .sum();
    let error_message = list.iter().find_map(|r| {
        let result = r.status.as_ref()?.metric_results.as_ref()?.first()?;
        result
            .measurements
            .as_ref()?
            .iter()
            .find(|m| m.phase == AnalysisPhase::Error)
            .and_then(|m| m.message.clone())
    });
    println!(
        "== 2. {count} AnalysisRuns, one prometheus metric every 10 s, under `sluice controller` (own process)"
    );
    println!(
        "every run measured once {:.1} s after the first was created",
        measured_after.as_secs_f64()
    );
    println!(
        "baseline ({window} s, no runs): CPU {cpu_base:.1} % of one core, VmRSS {rss_base:.0} MiB"
    );
    println!(
        "with runs ({window} s): CPU {cpu_runs:.1} % of one core, VmRSS {rss_runs:.0} MiB (VmHWM {peak:.0} MiB); added CPU {:.1} points, added VmRSS {:.0} MiB",
        cpu_runs - cpu_base,
        rss_runs - rss_base
    );
    let prometheus_cpu = (prometheus_cpu_after - prometheus_cpu_before) / window as f64 * 100.0;
    if answered >= 0.0 {
        println!(
            "Prometheus answered {answered:.0} queries ({:.1}/s, expected {:.1}/s) with {prometheus_cpu:.1} % of one core",
            answered / window as f64,
            count as f64 / 10.0,
        );
    } else {
        // Its scrape of itself failed in the window: the counter's series went stale.
        println!(
            "Prometheus' query count unavailable (its scrape of itself failed); {prometheus_cpu:.1} % of one core"
        );
    }
    println!(
        "measurements in all: {measurements}, Error: {errors}{}",
        error_message.map_or(String::new(), |m| format!(" (e.g. {m})"))
    );
    drop(controller);
}

/// The pid of `parent`'s child called `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(") ")?;
            let comm = head.split_once(" (")?.1;
            let ppid = rest.split(' ').nth(1)?.parse::<u32>().ok()?;
            (ppid == parent && comm == name).then_some(pid)
        })
}

/// Part 3: Prometheus' own memory under `sluice up --prometheus` with `count` demo pods.
async fn prometheus_footprint(count: usize, window: u64) {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_address();
    let mut up = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["up", "--ephemeral", "--no-controllers"])
        .args(["--listen", "127.0.0.1:0", "--ingress-listen", "127.0.0.1:0"])
        .args(["--ingress-metrics-listen", "127.0.0.1:0"])
        .arg(format!("--prometheus={listen}"))
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(up.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let up = Child(up);
    let pid = child_named(up.0.id(), "prometheus").expect("prometheus under sluice up");
    let client = client_of(&dir.path().join("kubeconfig")).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_, rss_empty, _) = usage(pid);

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(8, |i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = from(json!({"metadata": {"name": format!("demo-{i}"),
                        "labels": {"app": "demo", "rollouts-pod-template-hash": "6d5f8c7b9"}},
                    "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:blue",
                        "ports": [{"name": "http", "containerPort": 8080}]}]}}));
                pods.create(&PostParams::default(), &pod).await.unwrap();
            }
        })
        .await;
    let up_query = "count(up{job=\"kubernetes-pods\"} == 1)";
    while query(listen, up_query).await.unwrap_or(0.0) < count as f64 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{:?} of {count} pods scraped",
            query(listen, up_query).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let scraped = started.elapsed();
    let mut samples = Vec::new();
    let ends = Instant::now() + Duration::from_secs(window);
    while Instant::now() < ends {
        samples.push(usage(pid).1);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let (peak, rss, _) = usage(pid);
    let tsdb = tokio::task::spawn_blocking(move || get_json(listen, "/api/v1/status/tsdb"))
        .await
        .unwrap();
    let series = tsdb["data"]["headStats"]["numSeries"]
        .as_f64()
        .unwrap_or(0.0);
    samples.sort_by(f64::total_cmp);
    println!(
        "== 3. Prometheus under `sluice up --prometheus` (scrape every 2 s) with {count} demo pods"
    );
    println!(
        "every pod up in Prometheus {:.1} s after the first was created; head series {series:.0}",
        scraped.as_secs_f64()
    );
    println!(
        "Prometheus VmRSS: {rss_empty:.0} MiB with no pods; over {window} s with them p50 {:.0} MiB, max {:.0} MiB, now {rss:.0} MiB, VmHWM {peak:.0} MiB",
        percentile(&samples, 0.5),
        samples[samples.len() - 1]
    );
    let names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(names.len(), count);
    drop(up);
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if sluice_cluster::prometheus::find().is_err() {
        println!(
            "SKIPPED: no `prometheus` binary on PATH ({})",
            sluice_cluster::prometheus::INSTALL_HINT
        );
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (rounds, count, window, pods) = (arg(0, 5), arg(1, 1000), arg(2, 60) as u64, arg(3, 100));
    println!("sluice Prometheus benchmark");
    abort_to_stable(rounds).await;
    controller_load(count, window).await;
    prometheus_footprint(pods, window).await;
}
