//! The resource metrics API, `metrics.k8s.io/v1beta1`, as metrics-server serves it, so
//! `kubectl top pod` and `kubectl top node` (and autoscalers reading it) work: `PodMetrics`
//! for every running pod, each container with what its processes use (the kubelet measures
//! local processes, [`crate::os::usage`]; a simulated container uses nothing here and
//! reports zero), and `NodeMetrics` for the node with what this machine uses. Objects are
//! computed per request and never stored; only `get` and `list` (with label and field
//! selectors) are served.

use axum::response::Response;
use http::{Method, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiServer, ResourceRequest, json_value, read::Filter};
use crate::{
    object::meta_str,
    os::usage::Usage,
    store::{ResourceKey, StoredObject},
};

const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// A CPU quantity in nanocores, as metrics-server writes it.
fn cpu(usage: &Usage) -> String {
    format!("{}n", usage.cpu_nanocores)
}

/// A memory quantity in KiB, as metrics-server writes it.
fn memory(usage: &Usage) -> String {
    format!("{}Ki", usage.memory_bytes / 1024)
}

/// A window as Go prints a duration (`1.5s`).
fn window(usage: &Usage) -> String {
    let millis = usage.window.as_millis();
    let text = format!("{}.{:03}", millis / 1000, millis % 1000);
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The metadata a metrics object copies from what it measures.
fn metadata(object: &Value) -> Value {
    let mut metadata = json!({
        "name": meta_str(object, "name"),
        "creationTimestamp": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    let namespace = meta_str(object, "namespace");
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    if let Some(labels) = object["metadata"].get("labels") {
        metadata["labels"] = labels.clone();
    }
    metadata
}

/// The `PodMetrics` of a running pod.
fn pod_metrics(server: &ApiServer, pod: &Value, now: Timestamp) -> Option<Value> {
    if pod["status"]["phase"] != "Running" {
        return None;
    }
    let measured = server
        .node()
        .map(|c| c.usage(meta_str(pod, "uid")))
        .unwrap_or_default();
    let mut longest = Usage::default();
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .map(|name| {
            let usage = measured
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(Usage::default, |(_, u)| *u);
            longest.window = longest.window.max(usage.window);
            json!({"name": name, "usage": {"cpu": cpu(&usage), "memory": memory(&usage)}})
        })
        .collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(pod),
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "window": window(&longest),
        "containers": containers,
    }))
}

/// The `NodeMetrics` of a node (this machine; sluice runs one node).
fn node_metrics(server: &ApiServer, node: &Value, now: Timestamp) -> Option<Value> {
    let usage = server.node()?.node_usage()?;
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(node),
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "window": window(&usage),
        "usage": {"cpu": cpu(&usage), "memory": memory(&usage)},
    }))
}

/// `GET` of `pods` or `nodes` in `metrics.k8s.io`, one or a list.
pub fn serve(
    server: &ApiServer,
    request: &ResourceRequest,
    method: &Method,
) -> ApiResult<Response> {
    let watching = request.path.watch_prefix || request.query.flag("watch");
    if method != Method::GET || watching || request.path.subresource.is_some() {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    let pods = request.rt.resource == "pods";
    let source = if pods {
        ResourceKey::new("", "pods")
    } else {
        ResourceKey::new("", "nodes")
    };
    let now = Timestamp::now();
    let measure = |object: &StoredObject| {
        let value = object.value();
        if pods {
            pod_metrics(server, &value, now)
        } else {
            node_metrics(server, &value, now)
        }
    };
    if let Some(name) = &request.path.name {
        let key = crate::store::ObjectKey::new(request.namespace().unwrap_or_default(), name);
        return server
            .store
            .get(&source, &key)
            .and_then(|object| measure(&object))
            .map(|metrics| json_value(StatusCode::OK, &metrics))
            .ok_or_else(|| ApiError::not_found(&request.rt, name));
    }
    let filter = Filter::from_request(request)?;
    let (objects, _) = server.store.list(&source, request.namespace());
    let items: Vec<Value> = objects
        .iter()
        .filter(|object| filter.matches(object))
        .filter_map(|object| measure(object))
        .collect();
    let kind = if pods {
        "PodMetricsList"
    } else {
        "NodeMetricsList"
    };
    Ok(json_value(
        StatusCode::OK,
        &json!({"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn quantities_and_windows_print_as_metrics_server_prints_them() {
        let usage = Usage {
            cpu_nanocores: 1_234_567,
            memory_bytes: 10 * 1024 * 1024 + 100,
            window: Duration::from_millis(1500),
        };
        assert_eq!(cpu(&usage), "1234567n");
        assert_eq!(memory(&usage), "10240Ki");
        assert_eq!(window(&usage), "1.5s");
        let whole = Usage {
            window: Duration::from_secs(10),
            ..usage
        };
        assert_eq!(window(&whole), "10s");
        assert_eq!(window(&Usage::default()), "0s");
    }
}
