//! The pod subresources that upgrade the connection: `exec` (and `kubectl cp`, which runs `tar`
//! through it) and `portforward`, over SPDY/3.1 as kubectl, client-go and the kubelet speak them
//! ([`spdy`], [`session`]; protocols in [`exec`] and [`portforward`]).
//!
//! kubectl 1.31+ first tries WebSocket for both; sluice answers that with 400, and kubectl falls
//! back to SPDY (its `FallbackDialer`/`FallbackExecutor`), which every client-go version speaks.
//! WebSocket-only clients cannot exec or port-forward yet.
//!
//! Exec runs the command on this host, in the container's working directory with its
//! environment, like the `exec` runtime — so it needs `sluice up --allow-host-exec`, and a
//! container that runs as a local process. There is no TTY: `-t` runs the command on pipes.
//! Port-forward connects to the pod's address and port on this machine.

pub mod exec;
pub mod portforward;
pub mod session;
pub mod spdy;

use std::{path::PathBuf, sync::Arc};

use axum::{body::Body, response::Response};
use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::{
    apiserver::{ApiError, ApiServer, ResourcePath},
    object::meta_str,
    store::{ObjectKey, ResourceKey},
};

/// How to run a command in a running container: what the kubelet launched it with.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// The container's environment.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub dir: PathBuf,
}

/// The kubelet's side of `exec`.
pub trait Containers: Send + Sync {
    /// How to run a command in `container` of the pod with `uid`.
    ///
    /// # Errors
    /// Why no command can run there (simulated, not running, host exec not allowed).
    fn exec_context(&self, uid: &str, container: &str) -> Result<ExecContext, String>;
}

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
    let name = meta_str(&pod, "name").to_owned();
    let names: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let container = match container.filter(|c| !c.is_empty()) {
        Some(c) if names.iter().any(|n| n == c) => c.to_owned(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    Ok((pod, container))
}

/// The SPDY sub-protocol to speak: the first of ours the client offers.
fn negotiate(request: &Request<Body>, ours: &[&'static str]) -> Option<&'static str> {
    let offered: Vec<&str> = request
        .headers()
        .get_all("x-stream-protocol-version")
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
    if upgrade == "websocket" {
        return ApiError::bad_request(
            "sluice serves exec and port-forward over SPDY/3.1, not WebSocket (kubectl falls back to SPDY by itself)",
        )
        .into_response();
    }
    if upgrade != "spdy/3.1" || !matches!(*request.method(), Method::POST | Method::GET) {
        return ApiError::bad_request("Upgrade request required").into_response();
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    let prepared = match path.subresource.as_deref() {
        Some("exec") => exec::prepare(&server, &path, &query).map(Prepared::Exec),
        Some("portforward") => portforward::prepare(&server, &path).map(Prepared::PortForward),
        _ => Err(ApiError::bad_request(
            "kubectl attach is not supported: a pod's output is in kubectl logs -f",
        )),
    };
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return err.into_response(),
    };
    let protocols: &[&str] = match prepared {
        Prepared::Exec(_) => &exec::PROTOCOLS,
        Prepared::PortForward(_) => &[portforward::PROTOCOL],
    };
    let Some(protocol) = negotiate(&request, protocols) else {
        let mut refused = ApiError::bad_request(format!(
            "unable to upgrade: no common stream protocol; sluice speaks {}",
            protocols.join(", ")
        ));
        refused.code = 403;
        refused.reason = "Forbidden";
        let mut response = refused.into_response();
        if let Ok(value) = HeaderValue::from_str(&protocols.join(",")) {
            response
                .headers_mut()
                .insert("x-accepted-stream-protocol-versions", value);
        }
        return response;
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(io) => TokioIo::new(io),
            Err(err) => {
                tracing::debug!(
                    "upgrading pods/{}: {err}",
                    path.subresource.as_deref().unwrap_or_default()
                );
                return;
            }
        };
        let session = session::serve(io);
        match prepared {
            Prepared::Exec(exec) => exec.run(session, protocol).await,
            Prepared::PortForward(forward) => forward.run(session).await,
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(protocol),
    );
    response
}

/// A request checked and ready to run once the connection is upgraded.
enum Prepared {
    Exec(exec::Exec),
    PortForward(portforward::PortForward),
}
