//! Discovery: `/version`, the legacy group and resource lists, and aggregated discovery (v2) in
//! the exact content type kubectl asks for, so discovery takes kubectl two requests.

use std::collections::BTreeMap;

use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header::ACCEPT, header::CONTENT_TYPE};
use serde_json::{Value, json};

use super::{ApiError, ApiPath, ApiResult, ApiServer, json_value};
use crate::registry::{Persistence, ResourceType};

/// The Kubernetes version sluice reports: kubectl's dispatcher picks a matching client.
pub const KUBERNETES_MINOR: &str = "33";

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a kind.
fn verbs(t: &ResourceType) -> &'static [&'static str] {
    match t.persistence {
        Persistence::Stored => &VERBS,
        Persistence::Review => &["create"],
        Persistence::Metrics => &["get", "list"],
    }
}

/// Subresources beyond `status` and `scale`: (name, group, version, kind, verbs).
fn extra_subresources(
    t: &ResourceType,
) -> &'static [(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
)] {
    match (t.group.as_str(), t.resource.as_str()) {
        ("", "pods") => &[
            ("log", "", "v1", "Pod", &["get"]),
            ("binding", "", "v1", "Binding", &["create"]),
            ("eviction", "policy", "v1", "Eviction", &["create"]),
            (
                "ephemeralcontainers",
                "",
                "v1",
                "Pod",
                &["get", "patch", "update"],
            ),
        ],
        ("", "serviceaccounts") => &[(
            "token",
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            &["create"],
        )],
        _ => &[],
    }
}

/// Serves a non-resource path.
pub fn serve(
    server: &ApiServer,
    method: &Method,
    headers: &HeaderMap,
    path: ApiPath,
) -> ApiResult<Response> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    let aggregated = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.contains("as=APIGroupDiscoveryList") && accept.contains("v=v2")
        });
    let types = server.registry.all();
    let body = match path {
        ApiPath::Version => version(),
        ApiPath::Health => return Ok(plain("ok")),
        ApiPath::CoreGroup if aggregated => return Ok(aggregated_list(&types, true)),
        ApiPath::Groups if aggregated => return Ok(aggregated_list(&types, false)),
        ApiPath::CoreGroup => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server.address}],
        }),
        ApiPath::Groups => json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups(&types).iter().map(|(g, versions)| group(g, versions)).collect::<Vec<_>>(),
        }),
        ApiPath::Group(name) => {
            let all = groups(&types);
            let versions = all
                .get(name.as_str())
                .ok_or_else(|| ApiError::no_route(&format!("group {name}")))?;
            let mut body = group(&name, versions);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            body
        }
        ApiPath::GroupVersion { group, version } => resource_list(&types, &group, &version)?,
        ApiPath::OpenApiV2 => return Err(ApiError::no_route("OpenAPI v2 (sluice serves v3)")),
        ApiPath::OpenApiV3Root => super::kubectl::openapi::root(&types),
        ApiPath::OpenApiV3 { group, version } => {
            super::kubectl::openapi::document(&types, &group, &version)?
        }
        ApiPath::Resource(_) => unreachable!("resources are served by the resource handlers"),
    };
    Ok(json_value(StatusCode::OK, &body))
}

fn plain(text: &'static str) -> Response {
    let mut response = Response::new(text.into());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBERNETES_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-sluice.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (sluice, Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// Non-core groups and their served versions (preferred first).
fn groups(types: &[std::sync::Arc<ResourceType>]) -> BTreeMap<&str, Vec<&str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let versions = groups.entry(t.group.as_str()).or_default();
        for v in &t.versions {
            if !versions.contains(&v.as_str()) {
                versions.push(v);
            }
        }
    }
    groups
}

fn group(name: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": entries, "preferredVersion": entries.first()})
}

fn resource_list(
    types: &[std::sync::Arc<ResourceType>],
    group: &str,
    version: &str,
) -> ApiResult<Value> {
    let served: Vec<_> = types
        .iter()
        .filter(|t| t.group == group && t.serves(version))
        .collect();
    if served.is_empty() {
        let gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        return Err(ApiError::no_route(&format!("group version {gv}")));
    }
    let mut resources = Vec::new();
    for t in served {
        resources.push(json!({
            "name": t.resource, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": verbs(t), "shortNames": t.short_names, "categories": t.categories,
        }));
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.resource), "singularName": "", "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        for (name, group, version, kind, verbs) in extra_subresources(t) {
            let mut entry = json!({"name": format!("{}/{name}", t.resource), "singularName": "",
                "namespaced": t.namespaced, "kind": kind, "verbs": verbs});
            if !group.is_empty() {
                entry["group"] = json!(group);
                entry["version"] = json!(version);
            }
            resources.push(entry);
        }
        if t.scale.is_some() {
            resources.push(json!({
                "name": format!("{}/scale", t.resource), "singularName": "", "namespaced": t.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
            }));
        }
    }
    Ok(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") },
        "resources": resources,
    }))
}

/// The aggregated (v2) discovery document for core (`/api`) or every other group (`/apis`).
fn aggregated_list(types: &[std::sync::Arc<ResourceType>], core: bool) -> Response {
    let mut by_group: BTreeMap<&str, BTreeMap<&str, Vec<Value>>> = BTreeMap::new();
    for t in types.iter().filter(|t| t.group.is_empty() == core) {
        for v in &t.versions {
            by_group
                .entry(t.group.as_str())
                .or_default()
                .entry(v.as_str())
                .or_default()
                .push(aggregated_resource(t, v));
        }
    }
    let items: Vec<Value> = by_group
        .iter()
        .map(|(group, versions)| {
            let preferred: Vec<&str> = types
                .iter()
                .filter(|t| t.group == *group)
                .flat_map(|t| t.versions.iter().map(String::as_str))
                .collect();
            let mut ordered: Vec<&str> = versions.keys().copied().collect();
            ordered.sort_by_key(|v| preferred.iter().position(|p| p == v));
            let versions: Vec<Value> = ordered
                .iter()
                .map(|v| json!({"version": v, "resources": versions[v], "freshness": "Current"}))
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    });
    let mut response = json_value(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(AGGREGATED));
    response
}

fn aggregated_resource(t: &ResourceType, version: &str) -> Value {
    let kind = json!({"group": t.group, "version": version, "kind": t.kind});
    let mut subresources = Vec::new();
    if t.status {
        subresources.push(json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}));
    }
    for (name, group, version, kind, verbs) in extra_subresources(t) {
        subresources.push(json!({"subresource": name,
            "responseKind": {"group": group, "version": version, "kind": kind}, "verbs": verbs}));
    }
    if t.scale.is_some() {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"],
        }));
    }
    json!({
        "resource": t.resource,
        "responseKind": kind,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": verbs(t),
        "shortNames": t.short_names,
        "categories": t.categories,
        "subresources": subresources,
    })
}
