//! The pod subresources that upgrade the connection: `exec` (and `kubectl cp`, which runs `tar`
//! through it), `attach` ([`attach`], on exec's protocols) and `portforward`, over WebSocket (what kubectl 1.31+, kube-rs and most clients
//! try first; [`websocket`]) and SPDY/3.1 (what every client-go falls back to; [`spdy`],
//! [`session`]), with the protocols of [`exec`] and [`portforward`].
//!
//! Exec runs the command on this host, in the container's working directory with its
//! environment, like the `exec` runtime — so it needs `sluice up --allow-host-exec`, and a
//! container that runs as a local process; `-t` gives it a pseudo-terminal ([`crate::os::terminal`]).
//! Attach relays a running container's output and, when it has one, its stdin. Port-forward
//! connects to the pod's address and port on this machine.

pub mod attach;
pub mod exec;
pub mod portforward;
pub mod session;
pub mod spdy;
pub mod websocket;

use std::sync::Arc;

use axum::{body::Body, response::Response};
use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::{
    apiserver::{ApiError, ApiServer, ResourcePath},
    store::{ObjectKey, ResourceKey},
};

/// The subresources this module serves.
pub fn handles(path: &ResourcePath) -> bool {
    path.group.is_empty()
        && path.resource == "pods"
        && path.name.is_some()
        && matches!(
            path.subresource.as_deref(),
            Some("exec" | "portforward" | "attach")
        )
}

/// The pod a request names.
fn pod(server: &ApiServer, path: &ResourcePath) -> Result<Value, ApiError> {
    let name = path.name.clone().unwrap_or_default();
    let namespace = path.namespace.clone().unwrap_or_default();
    let rt = server
        .registry()
        .get("", "pods")
        .ok_or_else(|| ApiError::no_route("pods"))?;
    Ok(server
        .store()
        .get(
            &ResourceKey::new("", "pods"),
            &ObjectKey::new(&namespace, &name),
        )
        .ok_or_else(|| ApiError::not_found(&rt, &name))?
        .value())
}

/// The pod a request names, and the container it asks for (the only one, when it names none).
fn target(
    server: &ApiServer,
    path: &ResourcePath,
    container: Option<&str>,
) -> Result<(Value, String), ApiError> {
    let pod = pod(server, path)?;
    let container = crate::object::pod_container(&pod, container).map_err(ApiError::bad_request)?;
    Ok((pod, container))
}

/// The sub-protocol to speak: the first of `ours` the client offers in `header`
/// (`X-Stream-Protocol-Version` for SPDY, `Sec-WebSocket-Protocol`), as one header with a list
/// or several headers.
fn negotiate(
    headers: &http::HeaderMap,
    header: &str,
    ours: &[&'static str],
) -> Option<&'static str> {
    let offered: Vec<&str> = headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    ours.iter().copied().find(|p| offered.contains(p))
}

/// Serves `exec` or `portforward` on pod `path`.
pub async fn serve(
    server: Arc<ApiServer>,
    mut request: Request<Body>,
    path: ResourcePath,
) -> Response {
    use axum::response::IntoResponse;
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let transport = match upgrade.as_str() {
        "websocket" => Transport::WebSocket,
        "spdy/3.1" => Transport::Spdy,
        _ => return ApiError::bad_request("Upgrade request required").into_response(),
    };
    if !matches!(*request.method(), Method::POST | Method::GET) {
        return ApiError::method_not_allowed(request.method().as_str()).into_response();
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    let exec = matches!(path.subresource.as_deref(), Some("exec" | "attach"));
    let offered: &[&'static str] = match (exec, transport) {
        (true, Transport::WebSocket) => &exec::WEBSOCKET_PROTOCOLS,
        (true, Transport::Spdy) => &exec::PROTOCOLS,
        (false, Transport::WebSocket) => &portforward::WEBSOCKET_PROTOCOLS,
        (false, Transport::Spdy) => &[portforward::PROTOCOL],
    };
    let protocol = match transport {
        Transport::WebSocket => negotiate(request.headers(), "sec-websocket-protocol", offered),
        Transport::Spdy => negotiate(request.headers(), "x-stream-protocol-version", offered),
    };
    let Some(protocol) = protocol else {
        let mut refused = ApiError::bad_request(format!(
            "unable to upgrade: no common stream protocol; sluice speaks {}",
            offered.join(", ")
        ));
        if transport == Transport::Spdy {
            refused.code = 403;
            refused.reason = "Forbidden";
        }
        let mut response = refused.into_response();
        if let Ok(value) = HeaderValue::from_str(&offered.join(",")) {
            response
                .headers_mut()
                .insert("x-accepted-stream-protocol-versions", value);
        }
        return response;
    };
    let prepared = match path.subresource.as_deref() {
        Some("exec") => exec::prepare(&server, &path, &query).map(Prepared::Exec),
        Some("portforward") => {
            let forward = portforward::prepare(&server, &path);
            match (transport, protocol) {
                (Transport::WebSocket, "SPDY/3.1+portforward.k8s.io") | (Transport::Spdy, _) => {
                    forward.map(Prepared::PortForward)
                }
                _ => forward.and_then(|f| {
                    portforward::ports(&query).map(|ports| Prepared::PortChannels(f, ports))
                }),
            }
        }
        _ => exec::prepare_attach(&server, &path, &query).map(Prepared::Exec),
    };
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return err.into_response(),
    };
    let answer = match transport {
        Transport::WebSocket => match websocket::accept(request.headers(), protocol) {
            Some(headers) => headers,
            None => {
                return ApiError::bad_request("invalid WebSocket upgrade request").into_response();
            }
        },
        Transport::Spdy => vec![
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
            (header::UPGRADE, HeaderValue::from_static("SPDY/3.1")),
            (
                header::HeaderName::from_static("x-stream-protocol-version"),
                HeaderValue::from_static(protocol),
            ),
        ],
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(io) => TokioIo::new(io),
            Err(err) => {
                tracing::debug!("upgrading a pod stream: {err}");
                return;
            }
        };
        match (transport, prepared) {
            (Transport::Spdy, Prepared::Exec(exec)) => exec.run(session::serve(io), protocol).await,
            (Transport::Spdy, Prepared::PortForward(forward)) => {
                forward.run(session::serve(io)).await;
            }
            (Transport::WebSocket, Prepared::Exec(exec)) => {
                let inputs = exec::WEBSOCKET_INPUTS;
                let channels = websocket::Channels::serve(websocket::server(io).await, &inputs);
                exec.run_websocket(channels, protocol).await;
            }
            (Transport::WebSocket, Prepared::PortForward(forward)) => {
                let tunnel = websocket::Tunnel::new(websocket::server(io).await);
                forward.run(session::serve(tunnel)).await;
            }
            (_, Prepared::PortChannels(forward, ports)) => {
                let inputs: Vec<u8> = (0..ports.len())
                    .filter_map(|i| u8::try_from(2 * i).ok())
                    .collect();
                let channels = websocket::Channels::serve(websocket::server(io).await, &inputs);
                forward.run_websocket(channels, ports).await;
            }
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response.headers_mut().extend(answer);
    response
}

/// One output stream of a command or a forwarded connection, on either transport.
#[derive(Clone)]
pub(crate) enum Output {
    /// A SPDY stream.
    Spdy(session::Writer),
    /// A WebSocket channel.
    Channel(websocket::ChannelWriter),
}

impl Output {
    /// Sends bytes; `false` once the client is gone.
    async fn send(&self, data: bytes::Bytes) -> bool {
        match self {
            Self::Spdy(writer) => writer.send(data).await,
            Self::Channel(writer) => writer.send(&data).await,
        }
    }

    /// Ends it: a FIN on SPDY; on WebSocket the end of the connection ends every channel.
    async fn finish(&self) {
        if let Self::Spdy(writer) = self {
            writer.finish().await;
        }
    }
}

/// How the connection is upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    WebSocket,
    Spdy,
}

/// A request checked and ready to run once the connection is upgraded.
enum Prepared {
    Exec(exec::Exec),
    /// Port-forward as kubectl speaks it: a SPDY session, perhaps tunneled.
    PortForward(portforward::PortForward),
    /// Port-forward on WebSocket channels, for these ports.
    PortChannels(portforward::PortForward, Vec<u16>),
}
