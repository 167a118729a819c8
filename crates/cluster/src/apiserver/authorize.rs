//! Authorization of every request, before any handler runs: the request's attributes as
//! Kubernetes' `RequestInfoFactory` derives them, the policy's decision, and a refusal in
//! Kubernetes' exact `403 Forbidden` shape.
//!
//! Verbs: `GET` of an object is `get`, of a collection `list` (`watch` with `?watch=true` or
//! the `/watch/` prefix); `POST` is `create`, `PUT` `update`, `PATCH` `patch`; `DELETE` of an
//! object `delete`, of a collection `deletecollection`. A collection request with
//! `fieldSelector=metadata.name=X` is about object `X` (so `resourceNames` rules admit the
//! single-object watches of kube-rs and kubectl). `/api/v1/namespaces/NAME` is in namespace
//! `NAME`, so a RoleBinding can let a user read its own namespace. Streams (`exec`, `attach`,
//! `portforward`) are `create` on the subresource for `POST` (SPDY), and `get` for `GET`
//! (WebSocket) plus a second check for `create` — Kubernetes 1.35's
//! `AuthorizePodWebsocketUpgradeCreatePermission`, which closes the hole of `get`-only roles
//! running commands: sluice applies it whatever version it reports.
//!
//! Requests of in-process clients carry no [`User`] and are not checked (they are the
//! administrator, see [`crate::authn`]); neither are the public paths anonymous clients reach.

use std::sync::Mutex;

use http::Method;

use super::{ApiError, ApiPath, Query, ResourcePath};
use crate::{
    authn::User,
    rbac::{Attributes, ResourceAttributes},
};

/// What authorization refused, for tests and operators (the latest are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The user.
    pub user: String,
    /// Kubernetes' message (`secrets is forbidden: User … cannot list …`).
    pub message: String,
}

/// Refusals since start: a count and the latest [`KEPT`].
#[derive(Default)]
pub(crate) struct Refusals {
    latest: Mutex<(u64, std::collections::VecDeque<Refusal>)>,
}

/// How many refusals are kept.
const KEPT: usize = 1000;

impl Refusals {
    pub fn record(&self, refusal: Refusal) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        latest.0 += 1;
        latest.1.push_back(refusal);
        if latest.1.len() > KEPT {
            latest.1.pop_front();
        }
    }

    pub fn snapshot(&self) -> (u64, Vec<Refusal>) {
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        (latest.0, latest.1.iter().cloned().collect())
    }
}

fn method_verb(method: &Method) -> String {
    match *method {
        Method::GET | Method::HEAD => "get".into(),
        Method::POST => "create".into(),
        Method::PUT => "update".into(),
        Method::PATCH => "patch".into(),
        Method::DELETE => "delete".into(),
        ref other => other.as_str().to_lowercase(),
    }
}

/// The attributes of a request to a resource path; more than one when Kubernetes checks twice
/// (a WebSocket upgrade of a pod stream: `get`, then `create`).
pub fn resource_attributes(
    method: &Method,
    path: &ResourcePath,
    query: &Query,
    upgrade: bool,
) -> Vec<Attributes> {
    let mut verb = method_verb(method);
    let mut resource = ResourceAttributes {
        namespace: path.namespace.clone().unwrap_or_default(),
        group: path.group.clone(),
        resource: path.resource.clone(),
        subresource: path.subresource.clone().unwrap_or_default(),
        name: path.name.clone().unwrap_or_default(),
    };
    if path.group.is_empty() && path.resource == "namespaces" && path.namespace.is_none() {
        resource.namespace = resource.name.clone();
    }
    if path.watch_prefix {
        verb = "watch".into();
    } else if resource.name.is_empty() && verb == "get" {
        verb = if query.flag("watch") { "watch" } else { "list" }.into();
    }
    if resource.name.is_empty() && matches!(verb.as_str(), "list" | "watch") {
        let pinned = query.get("fieldSelector").and_then(|s| {
            let name = s
                .strip_prefix("metadata.name=")
                .or_else(|| s.strip_prefix("metadata.name=="))?;
            (!name.contains([',', '=', '!', '/'])).then(|| name.to_owned())
        });
        resource.name = pinned.unwrap_or_default();
    }
    if resource.name.is_empty() && verb == "delete" {
        verb = "deletecollection".into();
    }
    let stream = path.group.is_empty()
        && path.resource == "pods"
        && matches!(
            resource.subresource.as_str(),
            "exec" | "attach" | "portforward"
        );
    let mut all = vec![Attributes::resource(&verb, resource.clone())];
    if stream && upgrade && verb == "get" {
        all.push(Attributes::resource("create", resource));
    }
    all
}

/// The attributes of any request: a resource path's, or a non-resource URL's (`get` for
/// `GET`, the method's verb otherwise).
pub fn attributes(
    method: &Method,
    uri_path: &str,
    parsed: Option<&ApiPath>,
    query: &Query,
    upgrade: bool,
) -> Vec<Attributes> {
    match parsed {
        Some(ApiPath::Resource(path)) => resource_attributes(method, path, query, upgrade),
        _ => vec![Attributes::non_resource(&method_verb(method), uri_path)],
    }
}

/// Kubernetes' 403 for a refused request: `secrets is forbidden: User "…" cannot list resource
/// "secrets" in API group "" in the namespace "ns"` (`: RBAC: …` appended when bindings named
/// missing roles), with `details` naming the group, resource and object.
pub fn forbidden(user: &User, attributes: &Attributes, reason: &str) -> ApiError {
    let mut why = attributes.forbidden_message(&user.username);
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    match &attributes.resource {
        Some(r) => ApiError::forbidden_request(&r.group, &r.resource, &r.name, &why),
        None => ApiError::forbidden_request("", "", "", &why),
    }
}

/// The user a request acts as when it asks to impersonate one (`Impersonate-User`,
/// `Impersonate-Group`, `Impersonate-Uid`: `kubectl --as`, `--as-group`), as Kubernetes'
/// impersonation filter decides: the requester needs `impersonate` on `users` (or on the
/// `serviceaccounts` object of a `system:serviceaccount:NS:NAME`), on each of `groups`, and on
/// `uids`; the impersonated user gets the groups asked for, a ServiceAccount its two groups when
/// none are, and `system:authenticated`. `None` when the request impersonates no one.
///
/// # Errors
/// Kubernetes' 403 for the first right missing; 400 for groups without a user.
pub fn impersonation(
    policy: &crate::rbac::Policy,
    user: &User,
    headers: &http::HeaderMap,
) -> Result<Option<User>, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    };
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid").into_iter().next();
    let Some(username) = values("impersonate-user").into_iter().next() else {
        if groups.is_empty() && uid.is_none() {
            return Ok(None);
        }
        return Err(ApiError::bad_request(
            "requested impersonation and not a user: Impersonate-User is required",
        ));
    };
    let cluster = |resource: &str, name: &str| ResourceAttributes {
        resource: resource.into(),
        name: name.into(),
        ..ResourceAttributes::default()
    };
    let account = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    let mut checks = vec![match account {
        Some((namespace, name)) => ResourceAttributes {
            namespace: namespace.into(),
            ..cluster("serviceaccounts", name)
        },
        None => cluster("users", &username),
    }];
    checks.extend(groups.iter().map(|g| cluster("groups", g)));
    if let Some(uid) = &uid {
        checks.push(ResourceAttributes {
            group: "authentication.k8s.io".into(),
            ..cluster("uids", uid)
        });
    }
    for check in checks {
        let attributes = Attributes::resource("impersonate", check);
        let decision = policy.authorize(user, &attributes);
        if !decision.allowed {
            return Err(forbidden(user, &attributes, &decision.reason));
        }
    }
    let mut all = groups;
    if let (Some((namespace, _)), true) = (account, all.is_empty()) {
        all.push("system:serviceaccounts".into());
        all.push(format!("system:serviceaccounts:{namespace}"));
    }
    if username != "system:anonymous" && !all.iter().any(|g| g == "system:authenticated") {
        all.push("system:authenticated".into());
    }
    Ok(Some(User {
        username,
        uid: uid.unwrap_or_default(),
        groups: all,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::path::parse;

    fn verbs(method: Method, uri: &str, upgrade: bool) -> Vec<(String, String, String)> {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let parsed = parse(path);
        attributes(
            &method,
            path,
            parsed.as_ref(),
            &Query::parse(Some(query)),
            upgrade,
        )
        .into_iter()
        .map(|a| {
            let r = a.resource.unwrap_or_default();
            (a.verb, r.combined(), format!("{}|{}", r.namespace, r.name))
        })
        .collect()
    }

    fn one(method: Method, uri: &str) -> (String, String, String) {
        verbs(method, uri, false).remove(0)
    }

    #[test]
    fn verbs_follow_kubernetes_request_info() {
        let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        let pods = "/api/v1/namespaces/shop/pods";
        assert_eq!(one(Method::GET, pods), s("list", "pods", "shop|"));
        assert_eq!(
            one(Method::GET, &format!("{pods}?watch=true")),
            s("watch", "pods", "shop|")
        );
        assert_eq!(
            one(
                Method::GET,
                &format!("{pods}?watch=1&fieldSelector=metadata.name%3Dweb")
            ),
            s("watch", "pods", "shop|web")
        );
        assert_eq!(
            one(Method::GET, "/api/v1/watch/namespaces/shop/pods/web"),
            s("watch", "pods", "shop|web")
        );
        assert_eq!(
            one(Method::GET, &format!("{pods}/web")),
            s("get", "pods", "shop|web")
        );
        assert_eq!(
            one(Method::GET, &format!("{pods}/web/log")),
            s("get", "pods/log", "shop|web")
        );
        assert_eq!(one(Method::POST, pods), s("create", "pods", "shop|"));
        assert_eq!(
            one(Method::PUT, &format!("{pods}/web")),
            s("update", "pods", "shop|web")
        );
        assert_eq!(
            one(Method::PATCH, &format!("{pods}/web/status")),
            s("patch", "pods/status", "shop|web")
        );
        assert_eq!(
            one(Method::DELETE, &format!("{pods}/web")),
            s("delete", "pods", "shop|web")
        );
        assert_eq!(
            one(Method::DELETE, pods),
            s("deletecollection", "pods", "shop|")
        );
        assert_eq!(
            one(Method::POST, &format!("{pods}/web/eviction")),
            s("create", "pods/eviction", "shop|web")
        );
        assert_eq!(
            one(Method::GET, "/api/v1/namespaces/shop"),
            s("get", "namespaces", "shop|shop")
        );
        assert_eq!(
            one(Method::GET, "/api/v1/namespaces"),
            s("list", "namespaces", "|")
        );
        assert_eq!(one(Method::GET, "/apis/apps/v1"), s("get", "", "|"));
        // Pod streams: SPDY is POST (create); a WebSocket is GET, checked for create as well.
        assert_eq!(
            verbs(Method::POST, &format!("{pods}/web/exec?command=ls"), true),
            [s("create", "pods/exec", "shop|web")]
        );
        assert_eq!(
            verbs(Method::GET, &format!("{pods}/web/exec?command=ls"), true),
            [
                s("get", "pods/exec", "shop|web"),
                s("create", "pods/exec", "shop|web")
            ]
        );
        assert_eq!(
            verbs(Method::GET, &format!("{pods}/web/portforward"), true),
            [
                s("get", "pods/portforward", "shop|web"),
                s("create", "pods/portforward", "shop|web")
            ]
        );
    }

    #[test]
    fn refusals_are_kubernetes_status_objects() {
        let user = User {
            username: "system:serviceaccount:ns:ro".into(),
            uid: String::new(),
            groups: vec![],
        };
        let list = one(Method::GET, "/api/v1/namespaces/ns/secrets");
        assert_eq!(list.0, "list");
        let parsed = parse("/api/v1/namespaces/ns/secrets");
        let attributes = attributes(&Method::GET, "", parsed.as_ref(), &Query::default(), false);
        let status = forbidden(&user, &attributes[0], "").to_status();
        assert_eq!(
            status,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "secrets is forbidden: User \"system:serviceaccount:ns:ro\" cannot list resource \"secrets\" in API group \"\" in the namespace \"ns\"",
                "reason": "Forbidden", "details": {"kind": "secrets"}, "code": 403,
            })
        );
        let named = Attributes::resource(
            "get",
            ResourceAttributes {
                group: "argoproj.io".into(),
                resource: "rollouts".into(),
                subresource: "status".into(),
                name: "web".into(),
                namespace: "ns".into(),
            },
        );
        assert_eq!(
            forbidden(&user, &named, "").message,
            "rollouts.argoproj.io \"web\" is forbidden: User \"system:serviceaccount:ns:ro\" cannot get resource \"rollouts/status\" in API group \"argoproj.io\" in the namespace \"ns\""
        );
        let path = Attributes::non_resource("get", "/metrics");
        let status = forbidden(&user, &path, "").to_status();
        assert_eq!(
            status["message"],
            "forbidden: User \"system:serviceaccount:ns:ro\" cannot get path \"/metrics\""
        );
        assert_eq!(status["details"], serde_json::json!({}));
    }
}
