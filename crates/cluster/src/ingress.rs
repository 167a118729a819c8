//! The ingress data plane of `sluice up`: an L7 HTTP reverse proxy serving
//! `networking.k8s.io/v1` Ingresses of class `nginx` (or none) with ingress-nginx's semantics —
//! host and path routing ([`routes`]), canary Ingresses by header, cookie and weight
//! ([`canary`]), a ready endpoint picked per request from the EndpointSlices (not through the
//! clusterIP), and ingress-nginx's metrics ([`metrics`]) on their own listener. The table is
//! rebuilt on every Ingress, Service or EndpointSlice change and swapped in whole, so a change
//! applies to the next request while requests in flight finish where they started; client
//! connections (keep-alive) are not touched.
//!
//! Layering: a client of the API server (over kube-rs), beside the proxy.

pub mod canary;
pub mod metrics;
pub mod routes;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, State},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client as HttpClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice, networking::v1::Ingress};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::net::TcpListener;

use sluice_api::names::annotation::{ROUTE_VERSION, SERVED_GENERATION, SERVED_ROUTE_VERSION};

use crate::controllers::watched;
use metrics::{Labels, Metrics};
use routes::{Found, RouteKey, Table};

/// The largest request body forwarded (ingress-nginx's default `proxy-body-size`).
const MAX_BODY: usize = 1024 * 1024;

/// Attempts per request: the next endpoint is tried when one cannot be reached.
const ATTEMPTS: usize = 3;

/// Headers that belong to one connection, not to the request.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

struct Shared {
    table: RwLock<Arc<Table>>,
    metrics: Metrics,
    upstream: HttpClient<HttpConnector, Full<Bytes>>,
}

/// Runs the data plane on `listener` and its metrics on `metrics_listener` until aborted.
pub async fn run(client: Client, listener: TcpListener, metrics_listener: TcpListener) {
    let address = listener.local_addr().ok();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let shared = Arc::new(Shared {
        table: RwLock::default(),
        metrics: Metrics::default(),
        upstream: HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
    });
    let proxy = Router::new().fallback(handle).with_state(shared.clone());
    let serve_proxy = axum::serve(
        listener,
        proxy.into_make_service_with_connect_info::<SocketAddr>(),
    );
    let metrics = Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(shared): State<Arc<Shared>>| async move {
                let mut response = shared.metrics.render().into_response();
                let content_type = HeaderValue::from_static("text/plain; version=0.0.4");
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
                response
            }),
        )
        .with_state(shared.clone());
    let serve_metrics = axum::serve(metrics_listener, metrics);
    tokio::select! {
        result = serve_proxy => tracing::error!("ingress stopped: {result:?}"),
        result = serve_metrics => tracing::error!("ingress metrics stopped: {result:?}"),
        () = follow(client, shared, address) => {}
    }
}

/// Rebuilds the table on every change, and writes each Ingress's load-balancer status.
async fn follow(client: Client, shared: Arc<Shared>, address: Option<SocketAddr>) {
    let (ingresses, ingress_events) = watched::<Ingress>(&client);
    let (services, service_events) = watched::<Service>(&client);
    let (slices, slice_events) = watched::<EndpointSlice>(&client);
    let changes = futures::stream::select_all([
        ingress_events.map(|_| ()).boxed(),
        service_events.map(|_| ()).boxed(),
        slice_events.map(|_| ()).boxed(),
    ]);
    let mut batches = changes.ready_chunks(1024);
    let mut counters: BTreeMap<RouteKey, Arc<std::sync::atomic::AtomicU64>> = BTreeMap::new();
    while batches.next().await.is_some() {
        // One snapshot for the table and the report: an Ingress is reported served only as
        // the table that is live holds it.
        let snapshot = ingresses.state();
        let table = Table::build(&snapshot, &services.state(), &slices.state(), &mut counters);
        *shared.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        if let Some(address) = address {
            report(&client, &snapshot, address).await;
        }
    }
}

/// Reports, on every Ingress this data plane serves, that it serves it: its address in
/// `status.loadBalancer.ingress`, and — once the table that holds it is live — its
/// `metadata.generation` in the annotation `sluice.dev/served-generation` and its
/// `sluice.dev/route-version` (set by the Rollout controller's NGINX router) echoed in
/// `sluice.dev/served-route-version`, so the controller knows the weight it wrote is served.
/// Nothing is written when nothing changed, so the report does not feed itself.
async fn report(client: &Client, ingresses: &[Arc<Ingress>], address: SocketAddr) {
    let wanted = json!([{"ip": address.ip().to_string(), "ports": [{"port": address.port(), "protocol": "TCP"}]}]);
    for ingress in ingresses {
        if !routes::is_ours(ingress) {
            continue;
        }
        let api: Api<Ingress> =
            Api::namespaced(client.clone(), &ingress.namespace().unwrap_or_default());
        let name = ingress.name_any();
        let annotations = ingress.annotations();
        let generation = ingress.metadata.generation.unwrap_or(0).to_string();
        let mut marks = serde_json::Map::new();
        if annotations.get(SERVED_GENERATION) != Some(&generation) {
            marks.insert(SERVED_GENERATION.into(), json!(generation));
        }
        if let Some(version) = annotations.get(ROUTE_VERSION)
            && annotations.get(SERVED_ROUTE_VERSION) != Some(version)
        {
            marks.insert(SERVED_ROUTE_VERSION.into(), json!(version));
        }
        if !marks.is_empty() {
            let patch = json!({"metadata": {"annotations": marks}});
            if let Err(err) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                tracing::debug!("served marks of ingress {name}: {err}");
            }
        }
        let current = ingress
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref());
        let current =
            serde_json::to_value(current.and_then(|l| l.ingress.as_ref())).unwrap_or_default();
        if current == wanted {
            continue;
        }
        let status = json!({"status": {"loadBalancer": {"ingress": wanted}}});
        if let Err(err) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await
        {
            tracing::debug!("ingress status of {name}: {err}");
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let started = Instant::now();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.to_owned();
    let table = shared
        .table
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let path = request.uri().path().to_owned();
    let (target, labels) = match table.find(&host, &path) {
        Found::Route(route) => {
            let headers = request.headers();
            let by_header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let by_cookie = |name: &str| cookie(headers, name);
            let (target, canary) = route.choose(&by_header, &by_cookie);
            let labels = Labels {
                namespace: route.namespace.clone(),
                ingress: route.main.ingress.clone(),
                service: route.main.backend.service.clone(),
                canary: canary.unwrap_or_default(),
                host: route.host.clone(),
                path: route.path.clone(),
                method: request.method().to_string(),
                status: 0,
            };
            (target, Some(labels))
        }
        Found::Default(_, target) => (target, None),
        Found::Nothing => return plain(StatusCode::NOT_FOUND, "default backend - 404\n"),
    };
    let response = forward(&shared.upstream, &target.backend, request, peer, &host).await;
    if let Some(mut labels) = labels {
        labels.status = response.status().as_u16();
        shared
            .metrics
            .observe(labels, started.elapsed().as_secs_f64());
    }
    response
}

async fn forward(
    upstream: &HttpClient<HttpConnector, Full<Bytes>>,
    backend: &routes::Backend,
    request: Request<Body>,
    peer: SocketAddr,
    host: &str,
) -> Response {
    if backend.endpoints.is_empty() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Temporarily Unavailable\n",
        );
    }
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large\n",
            );
        }
    };
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    let mut headers = parts.headers.clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(previous) => format!("{previous}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    for (name, value) in [
        ("x-forwarded-for", forwarded_for),
        ("x-real-ip", peer.ip().to_string()),
        ("x-forwarded-host", host.to_owned()),
        ("x-forwarded-proto", "http".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    for address in backend.rotation().take(ATTEMPTS) {
        let mut outgoing = Request::new(Full::new(body.clone()));
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.headers_mut() = headers.clone();
        match format!("http://{address}{path}").parse() {
            Ok(uri) => *outgoing.uri_mut() = uri,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "400 Bad Request\n"),
        }
        match upstream.request(outgoing).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(name);
                }
                return Response::from_parts(parts, Body::new(body));
            }
            Err(err) if err.is_connect() || idempotent => {
                tracing::debug!("ingress: {address}: {err}; trying the next endpoint");
            }
            Err(err) => {
                tracing::debug!("ingress: {address}: {err}");
                break;
            }
        }
    }
    plain(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n")
}
