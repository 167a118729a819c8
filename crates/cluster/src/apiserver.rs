//! The Kubernetes-compatible HTTP API: one generic handler for every kind in the registry.
//!
//! ```text
//!   request ─▶ authorize (RBAC) ─▶ path::parse ─▶ registry lookup ─▶ read | write | watch | discovery
//!                                                  │
//!                              object (metadata rules) ─▶ Store::write (atomic) ─▶ watchers
//! ```
//!
//! Every request that carries a [`User`] (all but anonymous ones on public paths; in-process
//! clients carry their component's, [`ApiServer::client_as`]) is authorized first ([`authorize`], [`crate::rbac`]), streams and watches included; a refusal
//! is Kubernetes' 403 and is counted ([`ApiServer::refusals`]).
//!
//! The same [`axum::Router`] serves TCP clients (kubectl, kube-rs over HTTPS, through the
//! listener in `serve`, a layer above) and in-process kube-rs clients ([`ApiServer::client`]).
//!
//! Layering: above the store and the object room; its kubectl-fidelity corner is [`kubectl`];
//! it reaches the node only through [`crate::node::NodeOps`]. The controllers, the garbage
//! collector, the kubelet, the proxy and the ingress are its clients; it imports none of them.

mod apply;
pub mod authorize;
mod discovery;
mod ephemeral;
pub mod kubectl;
mod metrics;
mod path;
mod pods;
mod query;
mod read;
mod review;
mod view;
mod watch;
mod write;

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::State,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header::CONTENT_TYPE};
use http_body_util::BodyExt;

pub use crate::api_error::{ApiError, ApiResult, Cause};
pub use path::{ApiPath, ResourcePath, parse as parse_path};
pub use query::Query;
pub(crate) use write::{create_object, sync_crd};

pub use authorize::Refusal;

use crate::{
    authn::{API_AUDIENCE, Authenticator, User},
    node::NodeOps,
    object::meta_str,
    rbac::{Attributes, Decision, Policy, index::PolicyIndex},
    registry::{Persistence, Registry, ResourceType},
    store::{ObjectKey, ResourceKey, Store},
};

/// Largest request body accepted (Kubernetes' limit for an object).
pub const MAX_BODY: usize = 3 * 1024 * 1024 / 2;

/// The API server: the store, the kinds it serves, and the handlers.
pub struct ApiServer {
    store: Arc<Store>,
    registry: Arc<Registry>,
    /// `host:port` clients reach the server at, for discovery.
    address: String,
    /// Checks bearer tokens and issues service-account tokens.
    authenticator: Authenticator,
    /// The node's operations, for `exec`, `attach`, `pods/log` and metrics (set once the
    /// kubelet starts).
    node: std::sync::OnceLock<Arc<dyn NodeOps>>,
    /// RBAC, kept current from the store.
    policy: PolicyIndex,
    /// What authorization refused.
    refusals: authorize::Refusals,
}

impl ApiServer {
    /// A server over `store`, serving the kinds in `registry`; `admin_token` is the
    /// administrator's bearer token.
    pub fn new(
        store: Arc<Store>,
        registry: Arc<Registry>,
        address: String,
        admin_token: &str,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry,
            address,
            authenticator: Authenticator::new(admin_token),
            node: std::sync::OnceLock::new(),
            policy: PolicyIndex::default(),
            refusals: authorize::Refusals::default(),
        })
    }

    /// Lets `exec`, `attach`, `pods/log` and the metrics API reach the node (the kubelet).
    pub fn set_node(&self, node: Arc<dyn NodeOps>) {
        let _ = self.node.set(node);
    }

    /// The node's operations, once the kubelet runs.
    pub fn node(&self) -> Option<&Arc<dyn NodeOps>> {
        self.node.get()
    }

    /// Who presents the bearer `token` for one of `audiences`: the administrator, or the
    /// ServiceAccount of a token this server issued while that account exists.
    pub fn authenticate(&self, token: &str, audiences: &[&str]) -> Option<User> {
        let accounts = ResourceKey::new("", "serviceaccounts");
        self.authenticator.authenticate(
            token,
            audiences,
            jiff::Timestamp::now(),
            |ns, name, uid| {
                self.store
                    .get(&accounts, &ObjectKey::new(ns, name))
                    .is_some_and(|sa| meta_str(&sa.value(), "uid") == uid)
            },
        )
    }

    /// Who presents an `Authorization` header's value to the API itself.
    pub fn authenticate_header(&self, header: &str) -> Option<User> {
        let token = header.strip_prefix("Bearer ")?.trim();
        self.authenticate(token, &[API_AUDIENCE])
    }

    /// The RBAC policy as of now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.policy(&self.store)
    }

    /// Whether `user` may do `request`, as RBAC decides.
    pub fn authorize(&self, user: &User, request: &Attributes) -> Decision {
        self.policy().authorize(user, request)
    }

    /// How many requests authorization refused since start, and the latest (up to 1000).
    pub fn refusals(&self) -> (u64, Vec<Refusal>) {
        self.refusals.snapshot()
    }

    /// The user a request acts as: `user`, or the one it impersonates when `user` may
    /// ([`authorize::impersonation`]).
    ///
    /// # Errors
    /// Kubernetes' 403 (recorded) when `user` may not impersonate that user or group.
    pub fn impersonate(&self, user: User, headers: &HeaderMap) -> ApiResult<User> {
        match authorize::impersonation(&self.policy(), &user, headers) {
            Ok(None) => Ok(user),
            Ok(Some(other)) => Ok(other),
            Err(error) => {
                if error.code == 403 {
                    tracing::info!("refused: {}", error.message);
                    self.refusals.record(Refusal {
                        user: user.username.clone(),
                        message: error.message.clone(),
                    });
                }
                Err(error)
            }
        }
    }

    /// Checks every attribute of a request; the first refusal as Kubernetes' 403, recorded
    /// and logged.
    fn check(&self, user: &User, all: &[Attributes], in_process: bool) -> ApiResult<()> {
        let policy = self.policy();
        for attributes in all {
            let decision = policy.authorize(user, attributes);
            if !decision.allowed {
                let error = authorize::forbidden(user, attributes, &decision.reason);
                if in_process {
                    tracing::warn!(
                        "an in-process component was refused (a missing RBAC rule): {}",
                        error.message
                    );
                } else {
                    tracing::info!("refused: {}", error.message);
                }
                self.refusals.record(Refusal {
                    user: user.username.clone(),
                    message: error.message.clone(),
                });
                return Err(error);
            }
        }
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The router: every API path, no authentication (the TCP listener adds it).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// A kube-rs client wired straight to the router, acting as the administrator: same
    /// handlers and authorization, no socket.
    pub fn client(self: &Arc<Self>) -> kube::Client {
        self.client_as(User::admin())
    }

    /// A kube-rs client wired straight to the router whose every request is `user`'s,
    /// authorized as that user's would be over TCP: how the cluster's components and
    /// `sluice up`'s controllers each reach the API as themselves ([`crate::authn`]). A
    /// refusal is logged as a warning naming the user, verb and resource.
    pub fn client_as(self: &Arc<Self>, user: User) -> kube::Client {
        let router = self
            .router()
            .layer(axum::Extension(user))
            .layer(axum::Extension(InProcess));
        kube::Client::new(router, "default")
    }
}

/// Marks a request of an in-process client ([`ApiServer::client_as`]): its refusals are
/// warnings, since a component refused is a component that stops working.
#[derive(Debug, Clone, Copy)]
struct InProcess;

async fn handle(State(server): State<Arc<ApiServer>>, request: Request<Body>) -> Response {
    if let Some(user) = request.extensions().get::<User>() {
        let parsed = path::parse(request.uri().path());
        let upgrade = request.headers().contains_key(http::header::UPGRADE);
        let all = authorize::attributes(
            request.method(),
            request.uri().path(),
            parsed.as_ref(),
            &Query::parse(request.uri().query()),
            upgrade,
        );
        let in_process = request.extensions().get::<InProcess>().is_some();
        if let Err(refused) = server.check(user, &all, in_process) {
            return refused.into_response();
        }
    }
    if let Some(ApiPath::Resource(path)) = path::parse(request.uri().path())
        && kubectl::streaming::handles(&path)
    {
        return kubectl::streaming::serve(server, request, path).await;
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    let query = Query::parse(parts.uri.query());
    let result = match path::parse(parts.uri.path()) {
        None => Err(ApiError::no_route(&format!(
            "{} {}",
            parts.method,
            parts.uri.path()
        ))),
        Some(ApiPath::Resource(path)) => {
            let user = parts.extensions.get::<User>().cloned();
            let request = Incoming {
                method: &parts.method,
                headers: &parts.headers,
                user,
            };
            resource(&server, request, path, query, body).await
        }
        Some(other) => discovery::serve(&server, &parts.method, &parts.headers, other),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn read_body(body: Body) -> ApiResult<Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::too_large(MAX_BODY))
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "reading the request body: {err}"
        ))),
    }
}

/// What arrived, before its path is resolved.
struct Incoming<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    /// Who sent it (`None` for anonymous requests to public paths).
    user: Option<User>,
}

/// A request to a resource, resolved against the registry.
pub(crate) struct ResourceRequest {
    pub path: ResourcePath,
    pub rt: Arc<ResourceType>,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Who sent it (`None` for anonymous requests to public paths).
    pub user: Option<User>,
}

impl ResourceRequest {
    /// The namespace the request addresses (`None` for cluster-scoped kinds or all namespaces).
    pub fn namespace(&self) -> Option<&str> {
        if self.rt.namespaced {
            self.path.namespace.as_deref()
        } else {
            None
        }
    }
}

async fn resource(
    server: &Arc<ApiServer>,
    incoming: Incoming<'_>,
    path: ResourcePath,
    query: Query,
    body: Bytes,
) -> ApiResult<Response> {
    let method = incoming.method;
    let rt = server
        .registry
        .get(&path.group, &path.resource)
        .filter(|rt| rt.serves(&path.version))
        .ok_or_else(|| {
            let gv = if path.group.is_empty() {
                path.version.clone()
            } else {
                format!("{}/{}", path.group, path.version)
            };
            ApiError::no_route(&format!("resource \"{}\" in {gv}", path.resource))
        })?;
    if !rt.namespaced && path.namespace.is_some() {
        return Err(ApiError::no_route(&format!(
            "{} is cluster-scoped and has no namespaced path",
            rt.qualified_name()
        )));
    }
    let request = ResourceRequest {
        path,
        rt,
        query,
        headers: incoming.headers.clone(),
        body,
        user: incoming.user,
    };
    if request.rt.persistence == Persistence::Review {
        return match (method, &request.path.name, &request.path.subresource) {
            (&Method::POST, None, None) => review::create(server, &request),
            (method, _, _) => Err(ApiError::method_not_allowed(method.as_str())),
        };
    }
    if request.rt.persistence == Persistence::Metrics {
        return metrics::serve(server, &request, method);
    }
    let watching = request.path.watch_prefix || request.query.flag("watch");
    let pod_subresource = request.rt.group.is_empty() && request.rt.resource == "pods";
    match (method, request.path.subresource.as_deref()) {
        (&Method::POST, Some("eviction")) if pod_subresource => {
            return pods::evict(server, &request);
        }
        (&Method::GET, Some("log")) if pod_subresource => return pods::log(server, &request),
        (&Method::POST, Some("binding")) if pod_subresource => return pods::bind(server, &request),
        (&Method::POST, Some("token"))
            if request.rt.group.is_empty() && request.rt.resource == "serviceaccounts" =>
        {
            return review::token(server, &request);
        }
        _ => {}
    }
    match (method, request.path.name.is_some()) {
        (&Method::GET, false) if watching => watch::serve(server, request),
        (&Method::GET, true) if watching => watch::serve(server, request),
        (&Method::GET, false) => read::list(server, &request),
        (&Method::GET, true) => read::get(server, &request),
        (&Method::POST, false) => write::create(server, &request),
        (&Method::PUT, true) => write::update(server, &request),
        (&Method::PATCH, true) => write::patch(server, &request),
        (&Method::DELETE, true) => write::delete(server, &request),
        (&Method::DELETE, false) => write::delete_collection(server, &request),
        (method, _) => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

/// A JSON response from bytes.
pub(crate) fn json_bytes(code: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON response from a value.
pub(crate) fn json_value(code: StatusCode, value: &serde_json::Value) -> Response {
    json_bytes(code, serde_json::to_vec(value).unwrap_or_default())
}
