//! AnalysisRun controller benchmark: `sluice controller` as its own process against `sluice up
//! --no-controllers`, N AnalysisRuns (default 1,000) each with one `web` metric every 10 s
//! (no count: until terminated) against an HTTP server in this process. Reports the time until
//! every run has its first measurement, then over a window (default 60 s): measurements per
//! second, the controller's CPU seconds and memory (VmHWM, VmRSS), and the delay from each
//! measurement's due time to its recording, from the controller's
//! `analysis_run_measurement_delay_seconds` histogram (p50/p99 as the bucket they fall in).
//!
//! `cargo bench -p sluice --bench analysis [-- N [WINDOW_SECONDS]]`. Numbers, never
//! pass/fail.

mod common;

use common::{Child, usage};

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use kube::{Api, Client, api::PostParams};
use serde_json::json;
use sluice_api::AnalysisRun;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// An HTTP server answering `{"ok": true}` to everything; the number of requests it answered.
async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 2048];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        count.fetch_add(1, Ordering::Relaxed);
                        let body = "{\"ok\": true}";
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (address, served)
}

async fn scrape(address: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        return String::new();
    };
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out).await;
    out
}

/// `(bound, cumulative count)` of the delay histogram, and its count and sum.
fn histogram(text: &str) -> (Vec<(String, f64)>, f64, f64) {
    let mut buckets = Vec::new();
    let (mut count, mut sum) = (0.0, 0.0);
    for line in text.lines() {
        let value = || {
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        if let Some(rest) = line.strip_prefix("analysis_run_measurement_delay_seconds_bucket{le=\"")
        {
            let bound = rest.split('"').next().unwrap_or_default().to_owned();
            buckets.push((bound, value()));
        } else if line.starts_with("analysis_run_measurement_delay_seconds_count") {
            count = value();
        } else if line.starts_with("analysis_run_measurement_delay_seconds_sum") {
            sum = value();
        }
    }
    (buckets, count, sum)
}

/// The bucket bound a quantile falls in, between two scrapes.
fn quantile(before: &[(String, f64)], after: &[(String, f64)], q: f64) -> String {
    let deltas: Vec<(String, f64)> = after
        .iter()
        .map(|(bound, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, n)| *n);
            (bound.clone(), n - was)
        })
        .collect();
    let total = deltas.last().map_or(0.0, |(_, n)| *n);
    deltas
        .iter()
        .find(|(_, n)| *n >= total * q)
        .map_or("?".into(), |(bound, _)| format!("≤ {bound} s"))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let window: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60);
    println!("sluice AnalysisRun controller benchmark");
    let dir = tempfile::tempdir().unwrap();
    let _up = common::bare_up(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    let mut controller = Command::new(env!("CARGO_BIN_EXE_sluice"))
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
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(controller.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    std::thread::spawn(move || for _ in stderr.lines() {});
    let metrics = first
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no metrics address in {first:?}"))
        .to_owned();
    let controller = Child(controller);
    let pid = controller.0.id();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let (address, served) = server().await;
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), "default");
    let (_, _, cpu_start) = usage(pid);
    let started = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let runs = runs.clone();
            async move {
                let run: AnalysisRun = serde_json::from_value(json!({
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                    "metadata": {"name": format!("run-{i}")},
                    "spec": {"metrics": [{"name": "web", "interval": "10s",
                        "successCondition": "result.ok",
                        "provider": {"web": {"url": format!("http://{address}/m/{i}")}}}]}}))
                .unwrap();
                runs.create(&PostParams::default(), &run).await.unwrap();
            }
        })
        .await;
    let created = started.elapsed();
    loop {
        let list = runs.list(&Default::default()).await.unwrap().items;
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_round = started.elapsed();
    let (peak, rss, cpu) = usage(pid);
    println!(
        "== {count} AnalysisRuns (one web metric every 10 s) under `sluice controller` (own process)"
    );
    println!(
        "created in {:.1} s; every run measured once after {:.1} s; CPU {:.1} s; VmHWM {peak:.0} MiB, VmRSS {rss:.0} MiB",
        created.as_secs_f64(),
        first_round.as_secs_f64(),
        cpu - cpu_start
    );
    let before = histogram(&scrape(&metrics).await);
    let served_before = served.load(Ordering::Relaxed);
    let (_, _, cpu_before) = usage(pid);
    tokio::time::sleep(Duration::from_secs(window)).await;
    let (peak, rss, cpu_after) = usage(pid);
    let after = histogram(&scrape(&metrics).await);
    let requests = served.load(Ordering::Relaxed) - served_before;
    let measured = after.1 - before.1;
    println!(
        "steady {window} s: {requests} requests ({:.1}/s, expected {:.1}/s), {measured} measurements recorded",
        requests as f64 / window as f64,
        count as f64 / 10.0
    );
    println!(
        "steady CPU {:.1} s ({:.1} % of one core); VmHWM {peak:.0} MiB, VmRSS {rss:.0} MiB",
        cpu_after - cpu_before,
        (cpu_after - cpu_before) / window as f64 * 100.0
    );
    println!(
        "due → recorded delay: mean {:.3} s, p50 {}, p99 {}",
        (after.2 - before.2) / measured.max(1.0),
        quantile(&before.0, &after.0, 0.5),
        quantile(&before.0, &after.0, 0.99)
    );
}
