//! `create`, `update`, `patch` and `delete`, for objects and their `status` and `scale`
//! subresources. Each runs as one store transaction: it succeeds whole or changes nothing.

use std::sync::Arc;

use axum::response::Response;
use http::{StatusCode, header::CONTENT_TYPE};
use jiff::Timestamp;
use serde_json::{Value, json};
use sluice_patch::{self as patch, PatchError, PatchKind};

use super::{
    ApiError, ApiResult, ApiServer, Cause, ResourceRequest, ephemeral, json_bytes, json_value, view,
};
use crate::{
    admission,
    object::{self, Assigned, DeleteOptions, Deletion, Part, Propagation, Update},
    registry::{self, ResourceType},
    store::{ObjectKey, ResourceKey, StoredObject, Txn},
};

/// The body of a write: JSON, or the protobuf kubectl's typed clients send.
pub(super) fn parse_body(request: &ResourceRequest) -> ApiResult<Value> {
    let content_type = request
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        // kubectl's generators (`kubectl create deployment …`) send built-in kinds as protobuf.
        return super::kubectl::protobuf::decode(&request.body).map_err(|e| match e {
            super::kubectl::protobuf::ProtobufError::UnknownKind(_) => {
                ApiError::unsupported_media_type(content_type)
            }
            other => ApiError::bad_request(other.to_string()),
        });
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// `fieldValidation` checks of a written object: CRD kinds are pruned to their schema and must
/// have the right types; built-in kinds keep fields k8s-openapi does not know (newer Kubernetes)
/// but report them. Returns the warnings to send (`Warn`, the default); `Strict` makes unknown
/// fields an error, `Ignore` stays silent.
pub(super) fn validate_fields(
    rt: &ResourceType,
    version: &str,
    query: &super::Query,
    object: &mut Value,
) -> ApiResult<Vec<String>> {
    let name = object::meta_str(object, "name").to_owned();
    if let Some(metadata) = object.get_mut("metadata") {
        crate::schema::drop_nulls(metadata);
    }
    let unknown = if rt.custom {
        let Some(schema) = rt.schemas.get(version) else {
            return Ok(Vec::new());
        };
        let findings = crate::schema::prune(schema, object);
        if !findings.type_errors.is_empty() {
            let causes = findings
                .type_errors
                .iter()
                .map(|e| {
                    let (field, message) = e.split_once(": ").unwrap_or((e.as_str(), ""));
                    Cause {
                        reason: "FieldValueTypeInvalid",
                        field: field.to_owned(),
                        message: message.to_owned(),
                    }
                })
                .collect();
            return Err(ApiError::invalid(rt, &name, causes));
        }
        findings.unknown
    } else {
        crate::schema::drop_nulls(object);
        crate::schema::unknown_builtin(&rt.group, &rt.resource, object).map_err(|e| {
            ApiError::bad_request(format!("the object does not decode as a {}: {e}", rt.kind))
        })?
    };
    let unknown: Vec<String> = unknown
        .into_iter()
        .filter(|f| !f.starts_with(".metadata.") && f != ".status" && !f.starts_with(".status."))
        .map(|f| f.trim_start_matches('.').to_owned())
        .collect();
    match query.get("fieldValidation") {
        Some("Ignore") => Ok(Vec::new()),
        Some("Strict") if !unknown.is_empty() => {
            let fields: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                fields.join(", ")
            )))
        }
        _ => Ok(unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect()),
    }
}

/// The field manager of a write: `fieldManager`, else the client's User-Agent up to its first
/// `/` (as the API server derives it: `kubectl/v1.33 …` → `kubectl`).
fn manager(request: &ResourceRequest) -> String {
    if let Some(manager) = request.query.get("fieldManager") {
        return manager.to_owned();
    }
    let agent = request
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let product = agent.split('/').next().unwrap_or_default().trim();
    if product.is_empty() {
        "unknown".to_owned()
    } else {
        product.chars().take(128).collect()
    }
}

/// Adds `Warning` headers, as the API server sends them.
pub(super) fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    response
}

fn namespace_key() -> ResourceKey {
    ResourceKey::new("", "namespaces")
}

/// New objects may only go to namespaces that exist and are not terminating.
fn check_namespace(txn: &Txn<'_>, rt: &ResourceType, namespace: &str, name: &str) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    match txn.get(&namespace_key(), &ObjectKey::new("", namespace)) {
        None => Err(ApiError::namespace_not_found(namespace)),
        Some(ns) if object::is_deleting(&ns) => Err(ApiError::forbidden(
            rt,
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// `POST` to a collection.
pub fn create(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let rt = &request.rt;
    if request.path.subresource.is_some() {
        return Err(ApiError::method_not_allowed("POST"));
    }
    let mut object = parse_body(request)?;
    object::check_body(rt, &request.path.version, request.namespace(), &mut object)?;
    let warnings = validate_fields(rt, &request.path.version, &request.query, &mut object)?;
    let mut object = view::input(rt, object);
    let now = object::timestamp(Timestamp::now());
    let api_version = rt.api_version(&request.path.version);
    patch::apply::track_update(
        None,
        &mut object,
        &manager(request),
        None,
        &api_version,
        &now,
    );
    let created = create_object(server, rt, object, request.query.dry_run())?;
    let body = serde_json::to_vec(&view::output_value(rt, &request.path.version, &created))
        .unwrap_or_default();
    Ok(with_warnings(
        json_bytes(StatusCode::CREATED, body),
        &warnings,
    ))
}

/// Creates an object (already checked against its kind and in the storage shape); returns it as
/// stored. With `dry_run`, returns what would be stored.
pub(crate) fn create_object(
    server: &ApiServer,
    rt: &ResourceType,
    object: Value,
    dry_run: bool,
) -> ApiResult<Value> {
    let now = Timestamp::now();
    let assigned = Assigned::random(now);
    let (created, stored) = server.store.write(|txn| {
        let mut object = object::prepare_create(rt, object, &assigned)?;
        let name = object::meta_str(&object, "name").to_owned();
        let namespace = object::meta_str(&object, "namespace").to_owned();
        check_namespace(txn, rt, &namespace, &name)?;
        let key = ObjectKey::new(&namespace, &name);
        if txn.get(&rt.storage, &key).is_some() {
            return Err(ApiError::already_exists(rt, &name));
        }
        admission::on_create(txn, rt, &mut object, now)?;
        if !dry_run {
            txn.put(&rt.storage, key, object.clone());
        }
        Ok::<_, ApiError>(object)
    })?;
    after_commit(server, rt, &stored);
    Ok(stored.first().map_or(created, |s| s.value()))
}

/// `PUT` of an object, its status or its scale.
pub fn update(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let body = parse_body(request)?;
    let rt = request.rt.clone();
    modify(server, request, move |current| {
        match request.path.subresource.as_deref() {
            Some("scale") => {
                let replicas = body["spec"]["replicas"].clone();
                let mut updated = current.clone();
                set_path(&mut updated, &scale_paths(&rt)?.spec_replicas, replicas);
                if let Some(rv) = body["metadata"]["resourceVersion"].as_str() {
                    updated["metadata"]["resourceVersion"] = json!(rv);
                }
                Ok(updated)
            }
            Some(ephemeral::SUBRESOURCE) => ephemeral::replace(&rt, current, &body),
            _ => {
                let mut body = body;
                object::check_body(&rt, &request.path.version, request.namespace(), &mut body)?;
                Ok(view::input(&rt, body))
            }
        }
    })
}

/// `PATCH` of an object, its status or its scale.
pub fn patch(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let content_type = request
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if PatchKind::from_content_type(&kind) == Some(PatchKind::Apply) {
        return super::apply::server_side_apply(server, request);
    }
    let patch: Value = parse_body(request)?;
    let rt = request.rt.clone();
    let version = request.path.version.clone();
    modify(server, request, move |current| {
        let scale = request.path.subresource.as_deref() == Some("scale");
        let mut document = if scale {
            scale_of(&rt, current)?
        } else {
            view::output_value(&rt, &version, current)
        };
        let name = object::meta_str(current, "name");
        apply_patch(&rt, name, &kind, &mut document, &patch)?;
        if scale {
            let mut updated = current.clone();
            set_path(
                &mut updated,
                &scale_paths(&rt)?.spec_replicas,
                document["spec"]["replicas"].clone(),
            );
            return Ok(updated);
        }
        if request.path.subresource.as_deref() == Some(ephemeral::SUBRESOURCE) {
            return ephemeral::replace(&rt, current, &document);
        }
        Ok(view::input(&rt, document))
    })
}

/// Applies a patch of the given media type to a document.
fn apply_patch(
    rt: &ResourceType,
    name: &str,
    content_type: &str,
    document: &mut Value,
    patch: &Value,
) -> ApiResult<()> {
    let kind = PatchKind::from_content_type(content_type)
        .filter(|kind| !(rt.custom && *kind == PatchKind::Strategic))
        .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    patch::apply(kind, document, patch).map_err(|err| match err {
        PatchError::Decode(_) => ApiError::bad_request(err.to_string()),
        PatchError::Apply(_) => ApiError::invalid_field(rt, name, "", err.to_string()),
        PatchError::Unsupported => ApiError::unsupported_media_type(content_type),
    })
}

/// Reads an object, derives its new version with `change`, and writes it (an update of the
/// part the subresource names).
pub(super) fn modify(
    server: &ApiServer,
    request: &ResourceRequest,
    change: impl FnOnce(&Value) -> ApiResult<Value>,
) -> ApiResult<Response> {
    let rt = &request.rt;
    let name = request.path.name.clone().unwrap_or_default();
    let key = ObjectKey::new(request.namespace().unwrap_or_default(), &name);
    let part = match request.path.subresource.as_deref() {
        None | Some("scale" | "finalize" | "binding") => Part::Main,
        Some(ephemeral::SUBRESOURCE) if rt.group.is_empty() && rt.resource == "pods" => Part::Main,
        Some("status") if rt.status => Part::Status,
        Some(other) => {
            return Err(ApiError::no_route(&format!(
                "{}/{other}",
                rt.qualified_name()
            )));
        }
    };
    let dry_run = request.query.dry_run();
    let now = Timestamp::now();
    let mut warnings = Vec::new();
    // Server-side apply records its own ownership; other writes are tracked as updates.
    let applying = request
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/apply-patch"));
    let tracking = (!applying).then(|| {
        let subresource = request
            .path
            .subresource
            .as_deref()
            .filter(|s| *s == "status")
            .map(str::to_owned);
        (
            manager(request),
            subresource,
            rt.api_version(&request.path.version),
            object::timestamp(now),
        )
    });
    let (result, stored) = server.store.write(|txn| {
        let current = txn
            .get(&rt.storage, &key)
            .ok_or_else(|| ApiError::not_found(rt, &name))?;
        let mut updated = change(&current)?;
        if part == Part::Main {
            if request.path.subresource.is_none() {
                warnings =
                    validate_fields(rt, &request.path.version, &request.query, &mut updated)?;
            }
            admission::on_update(txn, rt, &current, &mut updated, now)?;
        }
        let mut outcome = object::prepare_update(rt, &current, updated, part)?;
        if let (Update::Write(value), Some((manager, subresource, api_version, stamp))) =
            (&mut outcome, &tracking)
        {
            patch::apply::track_update(
                Some(&current),
                value,
                manager,
                subresource.as_deref(),
                api_version,
                stamp,
            );
        }
        if !dry_run {
            match &outcome {
                Update::Write(value) => txn.put(&rt.storage, key.clone(), value.clone()),
                Update::Remove(_) => txn.delete(&rt.storage, key.clone()),
                Update::Unchanged => {}
            }
        }
        Ok::<_, ApiError>((current, outcome))
    })?;
    after_commit(server, rt, &stored);
    let (current, outcome) = result;
    let value = match (stored.first(), outcome) {
        (Some(stored), _) => stored.value(),
        (None, Update::Write(value) | Update::Remove(value)) => value,
        (None, Update::Unchanged) => current,
    };
    Ok(with_warnings(
        respond_object(rt, request, &value)?,
        &warnings,
    ))
}

fn respond_object(
    rt: &ResourceType,
    request: &ResourceRequest,
    value: &Value,
) -> ApiResult<Response> {
    if request.path.subresource.as_deref() == Some("scale") {
        return Ok(json_value(StatusCode::OK, &scale_of(rt, value)?));
    }
    Ok(json_value(
        StatusCode::OK,
        &view::output_value(rt, &request.path.version, value),
    ))
}

/// Delete options from the body (`DeleteOptions`) or the query, as clients send either.
fn delete_options(request: &ResourceRequest) -> ApiResult<DeleteOptions> {
    let body: Value = if request.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        parse_body(request)?
    };
    let text = |field: &str| {
        body[field]
            .as_str()
            .map(str::to_owned)
            .or_else(|| request.query.get(field).map(str::to_owned))
    };
    let propagation = match text("propagationPolicy").as_deref() {
        None => match body["orphanDependents"]
            .as_bool()
            .or(request.query.get("orphanDependents").map(|v| v == "true"))
        {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            None => None,
        },
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    };
    let dry_run = body["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|v| v == "All"))
        || request.query.dry_run();
    Ok(DeleteOptions {
        propagation,
        grace_period_seconds: body["gracePeriodSeconds"]
            .as_i64()
            .or_else(|| request.query.int("gracePeriodSeconds")),
        precondition_uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
        precondition_rv: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
        dry_run,
    })
}

/// Stages the deletion of one object; returns what happened and the object's version.
fn stage_delete(
    txn: &mut Txn<'_>,
    rt: &ResourceType,
    key: ObjectKey,
    options: &DeleteOptions,
    now: Timestamp,
) -> ApiResult<(Deletion, Value)> {
    let current = txn
        .get(&rt.storage, &key)
        .ok_or_else(|| ApiError::not_found(rt, &key.name))?;
    let deletion = object::plan_delete(rt, &current, options, now)?;
    if !options.dry_run {
        deletion.stage(txn, &rt.storage, key);
    }
    Ok((deletion, current))
}

/// `DELETE` of an object.
pub fn delete(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let rt = &request.rt;
    if request.path.subresource.is_some() {
        return Err(ApiError::method_not_allowed("DELETE"));
    }
    let options = delete_options(request)?;
    let name = request.path.name.clone().unwrap_or_default();
    let key = ObjectKey::new(request.namespace().unwrap_or_default(), &name);
    let now = Timestamp::now();
    let ((deletion, current), stored) = server
        .store
        .write(|txn| stage_delete(txn, rt, key, &options, now))?;
    after_commit(server, rt, &stored);
    let version = &request.path.version;
    match deletion {
        Deletion::Remove if !rt.custom => Ok(json_value(
            StatusCode::OK,
            &json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": rt.group, "kind": rt.resource, "uid": object::meta_str(&current, "uid")},
            }),
        )),
        Deletion::Remove => {
            let last = stored.first().map_or(current, |s| s.value());
            Ok(json_value(
                StatusCode::OK,
                &view::output_value(rt, version, &last),
            ))
        }
        Deletion::Mark(marked) => {
            let value = stored.first().map_or(marked, |s| s.value());
            Ok(json_value(
                StatusCode::OK,
                &view::output_value(rt, version, &value),
            ))
        }
        Deletion::AlreadyDeleting => Ok(json_value(
            StatusCode::OK,
            &view::output_value(rt, version, &current),
        )),
    }
}

/// `DELETE` of a collection (with selectors).
pub fn delete_collection(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let rt = &request.rt;
    let filter = super::read::Filter::from_request(request)?;
    let options = delete_options(request)?;
    let now = Timestamp::now();
    let (_, stored) = server.store.write(|txn| {
        let keys: Vec<ObjectKey> = txn
            .list(&rt.storage, request.namespace())
            .iter()
            .filter(|o| filter.matches(o))
            .map(|o| o.key.clone())
            .collect();
        for key in keys {
            stage_delete(txn, rt, key, &options, now)?;
        }
        Ok::<_, ApiError>(())
    })?;
    after_commit(server, rt, &stored);
    let items: Vec<Value> = stored
        .iter()
        .map(|s| view::output_value(rt, &request.path.version, &s.value()))
        .collect();
    Ok(json_value(
        StatusCode::OK,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(&request.path.version), "metadata": {}, "items": items}),
    ))
}

/// Effects of committed writes outside the store: CRDs register or unregister their kinds.
pub(crate) fn after_commit(server: &ApiServer, rt: &ResourceType, stored: &[Arc<StoredObject>]) {
    if !(rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions") {
        return;
    }
    for crd in stored {
        sync_crd(server, &crd.key.name);
    }
}

/// Makes the registry agree with the stored CRD of this name.
pub(crate) fn sync_crd(server: &ApiServer, name: &str) {
    let crds = ResourceKey::new("apiextensions.k8s.io", "customresourcedefinitions");
    let (group, resource) = name
        .split_once('.')
        .map(|(r, g)| (g.to_owned(), r.to_owned()))
        .unwrap_or_default();
    match server.store.get(&crds, &ObjectKey::new("", name)) {
        Some(crd) if !object::is_deleting(&crd.value()) => match registry::from_crd(&crd.value()) {
            Ok(t) => server.registry.insert(t),
            Err(err) => tracing::warn!("CRD {name} is not servable: {err}"),
        },
        _ => {
            server.registry.remove(&group, &resource);
            // Instances go with their definition, as Kubernetes' CRD cleanup does.
            let instances = ResourceKey::new(&group, &resource);
            let cleanup = server.store.write(|txn| {
                for object in txn.list(&instances, None) {
                    txn.delete(&instances, object.key.clone());
                }
                Ok::<_, ApiError>(())
            });
            if let Err(err) = cleanup {
                tracing::warn!("deleting instances of {name}: {err}");
            }
        }
    }
}

/// The `autoscaling/v1 Scale` view of an object.
pub(crate) fn scale_of(rt: &ResourceType, object: &Value) -> ApiResult<Value> {
    let paths = scale_paths(rt)?;
    let replicas = get_path(object, &paths.spec_replicas).clone();
    let status_replicas = get_path(object, &paths.status_replicas)
        .as_i64()
        .unwrap_or(0);
    let selector = match &paths.label_selector {
        Some(path) => get_path(object, path)
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        None => selector_string(&object["spec"]["selector"]),
    };
    let meta = &object["metadata"];
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": if replicas.is_null() { json!(0) } else { replicas }},
        "status": {"replicas": status_replicas, "selector": selector},
    }))
}

fn scale_paths(rt: &ResourceType) -> ApiResult<&registry::ScalePaths> {
    rt.scale
        .as_ref()
        .ok_or_else(|| ApiError::no_route(&format!("{}/scale", rt.qualified_name())))
}

/// A label selector object (`matchLabels`, `matchExpressions`) in string form.
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for expr in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expr["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expr["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match expr["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// The value at a simple JSON path (`.spec.replicas`).
fn get_path<'a>(object: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.')
        .split('.')
        .fold(object, |node, part| &node[part])
}

fn set_path(object: &mut Value, path: &str, value: Value) {
    let mut node = object;
    for part in path.trim_start_matches('.').split('.') {
        if !node.is_object() {
            *node = json!({});
        }
        node = &mut node[part];
    }
    *node = value;
}
