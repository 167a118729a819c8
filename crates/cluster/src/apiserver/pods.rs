//! Pod subresources: `eviction` (honouring PodDisruptionBudgets, computed from the pods at the
//! moment of the request, as the disruption controller would), `binding` (the scheduler's
//! assignment of a pending pod to the node) and `log` (the files the kubelet writes for real
//! containers, with kubectl's options; simulated containers write nothing).

use std::sync::Arc;

use axum::{body::Body, response::Response};
use http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{Selector, SelectorExt};
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiServer, ResourceRequest, json_value};
use crate::{
    node::logs::{self, LogOptions},
    object::{self, DeleteOptions},
    store::{ObjectKey, ResourceKey},
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

/// The pods a budget expects, as the disruption controller counts them: the scale of each
/// controller (ReplicaSet, StatefulSet, ReplicationController) of the `covered` pods, once per
/// controller — so a pod evicted and not yet replaced still counts; a pod without one counts
/// as itself.
fn expected_pods(txn: &crate::store::Txn<'_>, namespace: &str, covered: &[&Value]) -> i64 {
    let mut seen = std::collections::BTreeSet::new();
    let mut expected = 0;
    for pod in covered {
        let owner = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["controller"] == true);
        let scaled = owner.and_then(|o| {
            let resource = match o["kind"].as_str()? {
                "ReplicaSet" => ResourceKey::new("apps", "replicasets"),
                "StatefulSet" => ResourceKey::new("apps", "statefulsets"),
                "ReplicationController" => ResourceKey::new("", "replicationcontrollers"),
                _ => return None,
            };
            let name = o["name"].as_str()?;
            let controller = txn.get(&resource, &ObjectKey::new(namespace, name))?;
            Some((
                o["uid"].as_str()?.to_owned(),
                controller["spec"]["replicas"].as_i64().unwrap_or(1),
            ))
        });
        match scaled {
            Some((uid, replicas)) => {
                if seen.insert(uid) {
                    expected += replicas;
                }
            }
            None => expected += 1,
        }
    }
    expected
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
                let expected = expected_pods(txn, &namespace, &covered);
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
                    // Kubernetes' answer: 429, its message, the budget's numbers as the cause.
                    let mut err = ApiError::internal(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    );
                    err.code = 429;
                    err.reason = "TooManyRequests";
                    err.details = Some(json!({"causes": [{"reason": "DisruptionBudget",
                        "message": format!(
                            "The disruption budget {} needs {desired} healthy pods and has {healthy} currently",
                            object::meta_str(&pdb, "name")
                        )}]}));
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

/// `POST pods/{name}/binding`: assigns a pod that has no node yet (409 when it has one).
pub fn bind(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let body = super::write::parse_body(request)?;
    let node = body["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("a Binding needs target.name"))?
        .to_owned();
    let name = request.path.name.clone().unwrap_or_default();
    let rt = request.rt.clone();
    super::write::modify(server, request, move |current| {
        let assigned = current["spec"]["nodeName"].as_str().unwrap_or_default();
        if !assigned.is_empty() {
            return Err(ApiError::conflict(
                &rt,
                &name,
                &format!("pod {name} is already assigned to node \"{assigned}\""),
            ));
        }
        let mut bound = current.clone();
        bound["spec"]["nodeName"] = json!(node);
        Ok(bound)
    })?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_value(StatusCode::CREATED, &status))
}

/// The options of `pods/log`.
fn log_options(request: &ResourceRequest) -> ApiResult<LogOptions> {
    let number = |key: &str| -> ApiResult<Option<i64>> {
        request
            .query
            .get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("{key}: invalid value {v:?}")))
            })
            .transpose()
    };
    let since_time = match request.query.get("sinceTime") {
        Some(t) => Some(
            t.parse::<Timestamp>()
                .map_err(|_| ApiError::bad_request(format!("sinceTime: invalid time {t:?}")))?,
        ),
        None => None,
    };
    let since_seconds = number("sinceSeconds")?
        .map(|s| Timestamp::now() - jiff::SignedDuration::from_secs(s.max(0)));
    Ok(LogOptions {
        timestamps: request.query.flag("timestamps"),
        tail_lines: number("tailLines")?.map(|n| n.max(0) as usize),
        since: since_time.or(since_seconds),
        limit_bytes: number("limitBytes")?.map(|n| n.max(0) as usize),
    })
}

/// `GET pods/{name}/log`: what the kubelet captured of a container (one file per start;
/// `previous` reads the start before). Simulated containers write nothing. `follow` streams
/// new lines until the container stops, restarts or the pod goes.
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
    let container = object::pod_container(&pod, request.query.get("container"))
        .map_err(ApiError::bad_request)?;
    let options = log_options(request)?;
    let restarts = container_status(&pod, &container)["restartCount"]
        .as_i64()
        .unwrap_or(0);
    let restart = if request.query.flag("previous") {
        if restarts == 0 {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        restarts - 1
    } else {
        restarts
    };
    // Without a kubelet no container ran, so there is no log to read.
    let Some(node) = server.node() else {
        return Ok(text_response(Body::empty()));
    };
    let uid = object::meta_str(&pod, "uid");
    let path = node.log_file(&namespace, &name, uid, &container, restart);
    let text = std::fs::read(&path).unwrap_or_default();
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let first = logs::render(&String::from_utf8_lossy(&text[..complete]), &options);
    let body = if request.query.flag("follow") && !request.query.flag("previous") {
        let state = FollowState {
            server: server.clone(),
            key,
            container: container.clone(),
            path,
            next: node.log_file(&namespace, &name, uid, &container, restart + 1),
            offset: complete as u64,
            timestamps: options.timestamps,
        };
        let first = futures::stream::once(async move { Ok(bytes::Bytes::from(first)) });
        let rest = futures::stream::unfold(state, follow);
        Body::from_stream(futures::StreamExt::chain(first, rest))
    } else {
        Body::from(first)
    };
    Ok(text_response(body))
}

/// A `text/plain` answer.
fn text_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn container_status<'a>(pod: &'a Value, container: &str) -> &'a Value {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|list| pod["status"][*list].as_array().into_iter().flatten())
    .find(|s| s["name"] == container)
    .unwrap_or(&Value::Null)
}

struct FollowState {
    server: Arc<ApiServer>,
    key: ObjectKey,
    container: String,
    path: std::path::PathBuf,
    /// The next start's log file: once it exists, this one is complete.
    next: std::path::PathBuf,
    offset: u64,
    timestamps: bool,
}

/// The next chunk of a followed log: new complete lines, or the end.
async fn follow(
    mut state: FollowState,
) -> Option<(Result<bytes::Bytes, std::convert::Infallible>, FollowState)> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    loop {
        let mut fresh = Vec::new();
        if let Ok(mut file) = tokio::fs::File::open(&state.path).await
            && file
                .seek(std::io::SeekFrom::Start(state.offset))
                .await
                .is_ok()
        {
            let _ = file.read_to_end(&mut fresh).await;
        }
        if let Some(end) = fresh.iter().rposition(|b| *b == b'\n') {
            state.offset += end as u64 + 1;
            let options = LogOptions {
                timestamps: state.timestamps,
                ..LogOptions::default()
            };
            let text = logs::render(&String::from_utf8_lossy(&fresh[..=end]), &options);
            return Some((Ok(bytes::Bytes::from(text)), state));
        }
        let pod = state
            .server
            .store
            .get(&pods(), &state.key)
            .map(|p| p.value());
        let stopped = match &pod {
            None => true,
            Some(pod) => !container_status(pod, &state.container)["state"]["terminated"].is_null(),
        };
        if stopped || state.next.exists() {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
