//! Which pods Prometheus scrapes under `sluice up --prometheus`, as Kubernetes service
//! discovery with the usual relabelling would: every ready pod that declares a container port
//! named `metrics` (else `http`), or that is annotated `prometheus.io/scrape: "true"` (with
//! `prometheus.io/port`, `prometheus.io/path` and `prometheus.io/scheme`; `"false"` opts a pod
//! out). Each target carries `namespace`, `pod`, `container` and every pod label as
//! Prometheus' `labelmap` writes it (`rollouts-pod-template-hash` →
//! `rollouts_pod_template_hash`). [`run`] follows the pods and rewrites `targets/pods.json`
//! whenever the answer changes.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ContainerPort, Pod};
use kube::Client;

use super::{TargetGroup, write_targets};

/// The target file [`run`] writes.
pub const POD_TARGETS: &str = "pods";

const SCRAPE: &str = "prometheus.io/scrape";
const PORT: &str = "prometheus.io/port";
const PATH: &str = "prometheus.io/path";
const SCHEME: &str = "prometheus.io/scheme";

/// A label name as Prometheus sanitises it: every character outside `[a-zA-Z0-9_]` becomes
/// `_`, and (so the name stays valid) a leading digit gets a `_` before it.
pub fn label_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// The target of one pod, if it is scraped.
pub fn pod_target(pod: &Pod) -> Option<TargetGroup> {
    let ip = pod.status.as_ref()?.pod_ip.as_deref()?;
    if !is_ready(pod) {
        return None;
    }
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let annotated = match annotations.get(SCRAPE).map(String::as_str) {
        Some("true") => true,
        Some("false") => return None,
        _ => false,
    };
    let containers = &pod.spec.as_ref()?.containers;
    let ports = || {
        containers.iter().flat_map(|c| {
            c.ports
                .iter()
                .flatten()
                .map(move |p: &ContainerPort| (c.name.as_str(), p))
        })
    };
    let named = |name: &str| ports().find(|(_, p)| p.name.as_deref() == Some(name));
    let (container, port) = if annotated {
        match annotations
            .get(PORT)
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            Some(number) => {
                let declared = ports().find(|(_, p)| p.container_port == number);
                let container = declared
                    .map(|(c, _)| c)
                    .or_else(|| containers.first().map(|c| c.name.as_str()))?;
                (container, number)
            }
            None => {
                let (c, p) = named("metrics")
                    .or_else(|| named("http"))
                    .or_else(|| ports().next())?;
                (c, p.container_port)
            }
        }
    } else {
        let (c, p) = named("metrics").or_else(|| named("http"))?;
        (c, p.container_port)
    };
    let mut labels: BTreeMap<String, String> = pod
        .metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (label_name(k), v.clone()))
        .collect();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    labels.insert("namespace".into(), namespace);
    labels.insert("pod".into(), pod.metadata.name.clone().unwrap_or_default());
    labels.insert("container".into(), container.to_owned());
    if annotated {
        if let Some(path) = annotations.get(PATH).filter(|p| !p.is_empty()) {
            labels.insert("__metrics_path__".into(), path.clone());
        }
        if let Some(scheme) = annotations.get(SCHEME).filter(|s| !s.is_empty()) {
            labels.insert("__scheme__".into(), scheme.clone());
        }
    }
    Some(TargetGroup {
        targets: vec![format!("{ip}:{port}")],
        labels,
    })
}

/// The targets of `pods`, in a stable order.
pub fn pod_targets<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Vec<TargetGroup> {
    let mut groups: Vec<TargetGroup> = pods.into_iter().filter_map(pod_target).collect();
    groups.sort();
    groups
}

/// Follows every pod and keeps `DIR/targets/pods.json` equal to their targets, until aborted
/// or the API server goes away.
pub async fn run(client: Client, dir: PathBuf) {
    let (pods, events) = sluice_reconcile::informer::watched::<Pod>(&client);
    let mut written: Option<Vec<TargetGroup>> = None;
    let mut write = |groups: Vec<TargetGroup>| {
        if written.as_ref() == Some(&groups) {
            return;
        }
        match write_targets(&dir, POD_TARGETS, &groups) {
            Ok(()) => written = Some(groups),
            Err(err) => tracing::warn!("prometheus targets: {err}"),
        }
    };
    write(Vec::new());
    let mut batches = std::pin::pin!(events.ready_chunks(1024));
    while let Some(batch) = batches.next().await {
        if batch.iter().any(Result::is_err) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let state = pods.state();
        write(pod_targets(state.iter().map(AsRef::as_ref)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ports: serde_json::Value, annotations: serde_json::Value, ready: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "shop", "annotations": annotations,
                "labels": {"app": "web", "rollouts-pod-template-hash": "abc", "app.kubernetes.io/name": "w", "1x": "y"}},
            "spec": {"containers": [{"name": "side", "image": "s"}, {"name": "main", "image": "m", "ports": ports}]},
            "status": {"podIP": "127.1.0.7", "conditions": [{"type": "Ready", "status": ready}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_ready_pod_with_a_metrics_or_http_port_is_scraped_with_its_labels() {
        let target = pod_target(&pod(
            json!([{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]),
            json!({}),
            "True",
        ))
        .unwrap();
        assert_eq!(target.targets, ["127.1.0.7:9100"]);
        let labels: Vec<(&str, &str)> = target
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("_1x", "y"),
                ("app", "web"),
                ("app_kubernetes_io_name", "w"),
                ("container", "main"),
                ("namespace", "shop"),
                ("pod", "web-1"),
                ("rollouts_pod_template_hash", "abc"),
            ]
        );
        let http = pod(
            json!([{"name": "http", "containerPort": 8080}]),
            json!({}),
            "True",
        );
        assert_eq!(pod_target(&http).unwrap().targets, ["127.1.0.7:8080"]);
    }

    #[test]
    fn unready_unnamed_and_opted_out_pods_are_not() {
        let http = json!([{"name": "http", "containerPort": 8080}]);
        assert_eq!(pod_target(&pod(http.clone(), json!({}), "False")), None);
        let other = json!([{"name": "grpc", "containerPort": 9000}]);
        assert_eq!(pod_target(&pod(other, json!({}), "True")), None);
        let out = json!({"prometheus.io/scrape": "false"});
        assert_eq!(pod_target(&pod(http, out, "True")), None);
    }

    #[test]
    fn annotations_choose_the_port_and_path() {
        let annotations = json!({"prometheus.io/scrape": "true", "prometheus.io/port": "9000", "prometheus.io/path": "/stats"});
        let target = pod_target(&pod(json!(null), annotations, "True")).unwrap();
        assert_eq!(target.targets, ["127.1.0.7:9000"]);
        assert_eq!(target.labels["__metrics_path__"], "/stats");
        assert_eq!(target.labels["container"], "side");
    }
}
