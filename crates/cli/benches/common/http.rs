//! HTTP load for the benchmarks: keep-alive (or per-request) clients against an address with a
//! `Host` header, their throughput, latencies and failures.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// The `p` percentile of sorted durations, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[at].as_secs_f64() * 1e3
}

/// One client connection.
pub type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// Opens a connection.
pub async fn connect(target: SocketAddr) -> Result<Sender, Box<dyn std::error::Error>> {
    let stream = tokio::net::TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// `GET /color` for `host`: the demo's `X-Version`, or an error for anything but 200.
pub async fn get(sender: &mut Sender, host: &str) -> Result<String, Box<dyn std::error::Error>> {
    let request = hyper::Request::get("/color")
        .header("host", host)
        .body(Empty::<Bytes>::new())?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let version = response
        .headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    response.into_body().collect().await?;
    if status != 200 {
        return Err(format!("status {status}").into());
    }
    Ok(version)
}

/// `workers` clients for `length`, each on one connection (or a new one per request):
/// requests per second, sorted latencies, and failed requests.
pub async fn load(
    target: SocketAddr,
    host: &str,
    workers: usize,
    length: Duration,
    keep_alive: bool,
) -> (f64, Vec<Duration>, usize) {
    let started = Instant::now();
    let results = stream::iter(0..workers)
        .map(|_| async move {
            let (mut latencies, mut failed) = (Vec::new(), 0);
            let mut sender = None;
            while started.elapsed() < length {
                let t = Instant::now();
                if sender.is_none() || !keep_alive {
                    sender = connect(target).await.ok();
                }
                let outcome = match sender.as_mut() {
                    Some(s) => get(s, host).await.map(|_| ()),
                    None => Err("connect failed".into()),
                };
                match outcome {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(_) => {
                        failed += 1;
                        sender = None;
                    }
                }
            }
            (latencies, failed)
        })
        .buffer_unordered(workers)
        .collect::<Vec<_>>()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let failed = results.iter().map(|(_, f)| f).sum();
    let mut all: Vec<Duration> = results.into_iter().flat_map(|(l, _)| l).collect();
    all.sort();
    (all.len() as f64 / elapsed, all, failed)
}

/// Waits until `target` answers for `host`; panics after 30 s.
pub async fn answering(target: SocketAddr, host: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while load(target, host, 1, Duration::from_millis(50), false)
        .await
        .2
        > 0
    {
        assert!(Instant::now() < deadline, "{target} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
