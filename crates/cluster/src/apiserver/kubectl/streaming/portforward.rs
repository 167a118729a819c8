//! `pods/portforward`, as kubectl speaks it — SPDY (`portforward.k8s.io`), straight or tunneled
//! in WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+) — and as kube-rs
//! and other WebSocket clients do (`v4.channel.k8s.io`: the ports in the query, channels 2i and
//! 2i+1 for the data and errors of port i, each opened with the port as two little-endian
//! bytes). Over SPDY the client opens an `error` and a `data` stream with the same `requestid`
//! and `port` for each local connection; sluice connects to the pod's address on that port and
//! copies both ways, each direction ending on its own (a FIN shuts the other side's write half),
//! then finishes both streams. A pod port nothing listens on is reported on the error stream,
//! as the kubelet reports it.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

use super::{
    Output,
    session::{Session, Stream, until_closed},
    websocket::{ChannelWriter, Channels},
};
use crate::{
    apiserver::{ApiError, ApiServer, ResourcePath},
    object::meta_str,
};

/// The SPDY protocol served.
pub const PROTOCOL: &str = "portforward.k8s.io";

/// The WebSocket protocols served, best first: kubectl's SPDY tunnel, then channels.
pub const WEBSOCKET_PROTOCOLS: [&str; 4] = [
    "SPDY/3.1+portforward.k8s.io",
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "channel.k8s.io",
];

/// The ports of a WebSocket port-forward (`?ports=80,8080`, or the parameter repeated).
///
/// # Errors
/// 400 without a valid port.
pub fn ports(query: &str) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "ports" {
            continue;
        }
        for port in value.split(',').filter(|p| !p.is_empty()) {
            let parsed = port.trim().parse::<u16>().ok().filter(|p| *p > 0);
            ports.push(parsed.ok_or_else(|| {
                ApiError::bad_request(format!("invalid port {port:?}: ports must be 1-65535"))
            })?);
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"ports\" is required",
        ));
    }
    Ok(ports)
}

/// A port-forward request, checked.
pub struct PortForward {
    pod: String,
    uid: String,
    ip: IpAddr,
}

/// Checks a port-forward request: the pod exists and has an address.
///
/// # Errors
/// 404 for a missing pod, 400 for one that is not running.
pub fn prepare(server: &ApiServer, path: &ResourcePath) -> Result<PortForward, ApiError> {
    let pod = super::pod(server, path)?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    let ip = pod["status"]["podIP"]
        .as_str()
        .and_then(|ip| ip.parse().ok());
    match (phase, ip) {
        ("Running", Some(ip)) => Ok(PortForward {
            pod: meta_str(&pod, "name").to_owned(),
            uid: meta_str(&pod, "uid").to_owned(),
            ip,
        }),
        _ => Err(ApiError::bad_request(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        ))),
    }
}

/// The two streams of one forwarded connection, as they arrive.
#[derive(Default)]
struct Pair {
    error: Option<Stream>,
    data: Option<Stream>,
}

impl PortForward {
    /// Forwards every connection the client opens, until it closes the session.
    pub async fn run(self, mut session: Session) {
        let mut pending: HashMap<String, Pair> = HashMap::new();
        while let Some(stream) = session.streams.recv().await {
            let port = stream
                .header("port")
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p > 0);
            let kind = stream.header("streamtype").map(str::to_owned);
            let (Some(port), Some(kind)) = (port, kind) else {
                stream.writer.reset().await;
                continue;
            };
            let request = stream
                .header("requestid")
                .map(str::to_owned)
                .unwrap_or_else(|| port.to_string());
            let pair = pending.entry(request.clone()).or_default();
            match kind.as_str() {
                "error" if pair.error.is_none() => pair.error = Some(stream),
                "data" if pair.data.is_none() => pair.data = Some(stream),
                _ => {
                    stream.writer.reset().await;
                    continue;
                }
            }
            if pair.error.is_some() && pair.data.is_some() {
                let Pair { error, data } = pending.remove(&request).unwrap_or_default();
                if let (Some(error), Some(data)) = (error, data) {
                    let target = (self.ip, port);
                    let what = format!("pod {}, uid {}", self.pod, self.uid);
                    let closed = until_closed(session.closed());
                    tokio::spawn(async move {
                        // A client that goes away takes its connections with it.
                        tokio::select! {
                            () = forward(target, what, error, data) => {}
                            () = closed => {}
                        }
                    });
                }
            }
        }
    }
}

impl PortForward {
    /// Forwards `ports` over WebSocket channels, one connection per port, until they all end or
    /// the client goes away; then closes with 1000.
    pub async fn run_websocket(self, mut channels: Channels, ports: Vec<u16>) {
        let mut forwards = Vec::new();
        for (i, port) in ports.into_iter().enumerate() {
            let Ok(data) = u8::try_from(2 * i) else { break };
            let (input, writer, errors) = (
                channels.input(data),
                channels.writer(data),
                channels.writer(data + 1),
            );
            writer.send(&port.to_le_bytes()).await;
            errors.send(&port.to_le_bytes()).await;
            let what = format!("pod {}, uid {}", self.pod, self.uid);
            forwards.push(tokio::spawn(forward_channel(
                (self.ip, port),
                what,
                input,
                writer,
                errors,
            )));
        }
        let all = futures::future::join_all(forwards);
        tokio::select! {
            _ = all => {}
            () = until_closed(channels.closed()) => {}
        }
        channels.close().await;
    }
}

/// Copies one port's connection between its WebSocket channels and the pod.
async fn forward_channel(
    (ip, port): (IpAddr, u16),
    pod: String,
    input: Option<mpsc::Receiver<Bytes>>,
    data: ChannelWriter,
    errors: ChannelWriter,
) {
    match TcpStream::connect((ip, port)).await {
        Ok(connection) => relay(connection, input, Output::Channel(data)).await,
        Err(err) => {
            errors
                .send(dial_error(port, &pod, ip, &err).as_bytes())
                .await;
        }
    }
}

/// Copies one connection between the client's data stream and the pod's port, then finishes
/// the error stream, which is what tells kubectl the connection is over.
async fn forward((ip, port): (IpAddr, u16), pod: String, error: Stream, data: Stream) {
    match TcpStream::connect((ip, port)).await {
        Ok(connection) => {
            relay(connection, Some(data.incoming), Output::Spdy(data.writer)).await;
        }
        Err(err) => {
            let text = dial_error(port, &pod, ip, &err);
            error.writer.send(Bytes::from(text)).await;
            data.writer.finish().await;
        }
    }
    error.writer.finish().await;
}

/// The kubelet's message for a pod port nothing listens on.
fn dial_error(port: u16, pod: &str, ip: IpAddr, err: &std::io::Error) -> String {
    format!("error forwarding port {port} to {pod}: dial tcp {ip}:{port}: {err}")
}

/// How long the client's direction may go on once the pod's has ended (containerd's grace).
const HALF_CLOSED: Duration = Duration::from_secs(1);

/// Copies a pod connection and a client's stream both ways, each direction ending on its own
/// (the client's end shuts the pod's write half; the pod's end finishes `output`). When the pod
/// ends first, the client's direction gets [`HALF_CLOSED`] to end too.
async fn relay(connection: TcpStream, input: Option<mpsc::Receiver<Bytes>>, output: Output) {
    let _ = connection.set_nodelay(true);
    let (mut from_pod, mut to_pod) = connection.into_split();
    let upstream = async move {
        if let Some(mut input) = input {
            while let Some(bytes) = input.recv().await {
                if to_pod.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        }
        let _ = to_pod.shutdown().await;
    };
    let downstream = async {
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match from_pod.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !output.send(Bytes::copy_from_slice(&buffer[..n])).await {
                        break;
                    }
                }
            }
        }
        output.finish().await;
    };
    let mut upstream = std::pin::pin!(upstream);
    let mut downstream = std::pin::pin!(downstream);
    tokio::select! {
        () = &mut downstream => {
            let _ = tokio::time::timeout(HALF_CLOSED, upstream).await;
        }
        () = &mut upstream => downstream.await,
    }
}
