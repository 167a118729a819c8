//! Pod subresources: `eviction` (honouring PodDisruptionBudgets, computed from the pods at the
//! moment of the request, as the disruption controller would) and `log` (simulated containers
//! write nothing, so their logs are empty; `follow` stays open until the pod is gone).

use std::sync::Arc;

use axum::{body::Body, response::Response};
use http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{Selector, SelectorExt};
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiServer, ResourceRequest, json_value};
use crate::{
    object::{self, DeleteOptions},
    store::{EventType, ObjectKey, ResourceKey},
};

fn pods() -> ResourceKey {
    ResourceKey::new("", "pods")
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn resolve(value: &Value, total: i64, round_up: bool) -> i64 {
    serde_json::from_value::<IntOrString>(value.clone())
        .ok()
        .and_then(|v| sluice_api::int_or_percent::resolve(&v, total as i32, round_up))
        .map_or(0, i64::from)
}

/// `POST pods/{name}/eviction`.
pub fn evict(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let rt = &request.rt;
    let namespace = request.namespace().unwrap_or_default().to_owned();
    let name = request.path.name.clone().unwrap_or_default();
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let grace = body["deleteOptions"]["gracePeriodSeconds"].as_i64();
    let pdb_key = ResourceKey::new("policy", "poddisruptionbudgets");
    let now = Timestamp::now();
    server.store.write(|txn| {
        let pod = txn
            .get(&pods(), &ObjectKey::new(&namespace, &name))
            .ok_or_else(|| ApiError::not_found(rt, &name))?;
        if !object::is_deleting(&pod) {
            let labels = pod["metadata"]["labels"].clone();
            let labels: std::collections::BTreeMap<String, String> = serde_json::from_value(labels).unwrap_or_default();
            let all: Vec<Value> = txn.list(&pods(), Some(&namespace)).iter().map(|p| p.value()).collect();
            for pdb in txn.list(&pdb_key, Some(&namespace)) {
                let pdb = pdb.value();
                let Ok(selector) = serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(pdb["spec"]["selector"].clone())
                    .map_err(|_| ())
                    .and_then(|s| Selector::try_from(s).map_err(|_| ()))
                else {
                    continue;
                };
                if !selector.matches(&labels) {
                    continue;
                }
                let covered: Vec<&Value> = all
                    .iter()
                    .filter(|p| !object::is_deleting(p))
                    .filter(|p| {
                        let l: std::collections::BTreeMap<String, String> =
                            serde_json::from_value(p["metadata"]["labels"].clone()).unwrap_or_default();
                        selector.matches(&l)
                    })
                    .collect();
                let expected = covered.len() as i64;
                let healthy = covered.iter().filter(|p| ready(p)).count() as i64;
                let desired = if !pdb["spec"]["minAvailable"].is_null() {
                    resolve(&pdb["spec"]["minAvailable"], expected, true)
                } else if !pdb["spec"]["maxUnavailable"].is_null() {
                    expected - resolve(&pdb["spec"]["maxUnavailable"], expected, true)
                } else {
                    expected
                };
                let disrupting_healthy_pod = ready(&pod);
                if disrupting_healthy_pod && healthy - 1 < desired {
                    let mut err = ApiError::internal(format!(
                        "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {} needs {desired} healthy pods and has {healthy} currently",
                        object::meta_str(&pdb, "name")
                    ));
                    err.code = 429;
                    err.reason = "TooManyRequests";
                    return Err(err);
                }
            }
            let options = DeleteOptions { grace_period_seconds: grace, ..DeleteOptions::default() };
            object::plan_delete(rt, &pod, &options, now)?.stage(txn, &pods(), ObjectKey::new(&namespace, &name));
        }
        Ok::<_, ApiError>(())
    })?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_value(StatusCode::CREATED, &status))
}

/// `GET pods/{name}/log`.
pub fn log(server: &Arc<ApiServer>, request: &ResourceRequest) -> ApiResult<Response> {
    let rt = &request.rt;
    let namespace = request.namespace().unwrap_or_default().to_owned();
    let name = request.path.name.clone().unwrap_or_default();
    let key = ObjectKey::new(&namespace, &name);
    let pod = server
        .store
        .get(&pods(), &key)
        .ok_or_else(|| ApiError::not_found(rt, &name))?
        .value();
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    match request.query.get("container") {
        Some(c) if !containers.iter().any(|n| n == c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() > 1 => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
        _ => {}
    }
    let mut response = if request.query.flag("follow") {
        // Nothing is ever written; the stream ends when the pod goes.
        let subscription = server
            .store
            .subscribe(None)
            .map_err(|e| ApiError::expired(0, e.oldest))?;
        let mut receiver = subscription.receiver;
        let gone = async move {
            loop {
                match receiver.recv().await {
                    Ok(event)
                        if event.resource == pods()
                            && event.object.key == key
                            && event.kind == EventType::Deleted =>
                    {
                        break;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    _ => {}
                }
            }
        };
        let stream = futures::StreamExt::filter_map(futures::stream::once(gone), |()| async {
            None::<Result<bytes::Bytes, std::convert::Infallible>>
        });
        Response::new(Body::from_stream(stream))
    } else {
        Response::new(Body::empty())
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}
