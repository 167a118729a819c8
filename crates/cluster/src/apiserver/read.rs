//! `get` and `list`: label and field selectors, `limit` and `continue`.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, BytesMut};
use http::StatusCode;
use kube::core::Selector;
use serde_json::json;

use super::{ApiError, ApiResult, ApiServer, ResourceRequest, json_bytes, kubectl::table, view};
use crate::{
    selector::{self, FieldSelector},
    store::{ObjectKey, StoredObject},
};

/// `GET` of one object (or of its `status` or `scale` subresource).
pub fn get(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let rt = &request.rt;
    let name = request.path.name.as_deref().unwrap_or_default();
    let key = ObjectKey::new(request.namespace().unwrap_or_default(), name);
    let stored = server
        .store
        .get(&rt.storage, &key)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    match request.path.subresource.as_deref() {
        // `kubectl get KIND NAME` asks for a one-row Table.
        None if table::wanted(&request.headers) => {
            let object = view::output(rt, &request.path.version, &stored);
            let object: serde_json::Value =
                serde_json::from_slice(&object).map_err(|e| ApiError::internal(e.to_string()))?;
            let include = table::Include::from_query(&request.query)?;
            let rendered =
                table::render(rt, &[object], None, true, include, jiff::Timestamp::now());
            let mut response = super::json_value(StatusCode::OK, &rendered);
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(table::CONTENT_TYPE),
            );
            Ok(response)
        }
        None if view::metadata_wanted(&request.headers) => Ok(json_bytes(
            StatusCode::OK,
            view::metadata_only(&view::output(rt, &request.path.version, &stored)),
        )),
        None | Some("status") => Ok(json_bytes(
            StatusCode::OK,
            view::output(rt, &request.path.version, &stored),
        )),
        Some(super::ephemeral::SUBRESOURCE) if rt.group.is_empty() && rt.resource == "pods" => {
            Ok(json_bytes(
                StatusCode::OK,
                view::output(rt, &request.path.version, &stored),
            ))
        }
        Some("scale") if rt.scale.is_some() => {
            let scale = super::write::scale_of(rt, &stored.value())?;
            Ok(super::json_value(StatusCode::OK, &scale))
        }
        Some(other) => Err(ApiError::no_route(&format!(
            "{}/{other}",
            rt.qualified_name()
        ))),
    }
}

/// The selectors of a list or watch request.
pub struct Filter {
    /// Label selector.
    pub labels: Option<Selector>,
    /// Field selector.
    pub fields: FieldSelector,
    /// Namespace, or all.
    pub namespace: Option<String>,
}

impl Filter {
    /// The selectors in the request's query.
    ///
    /// # Errors
    /// 400 for a selector that does not parse.
    pub fn from_request(request: &ResourceRequest) -> ApiResult<Self> {
        let labels = request
            .query
            .get("labelSelector")
            .map(selector::parse_label_selector)
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let supported = selector::supported_fields(&request.rt.group, &request.rt.resource);
        let fields = request
            .query
            .get("fieldSelector")
            .map(|text| FieldSelector::parse(text, supported))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?
            .unwrap_or_default();
        Ok(Self {
            labels,
            fields,
            namespace: request.namespace().map(str::to_owned),
        })
    }

    /// Whether a stored object passes the filter.
    pub fn matches(&self, object: &StoredObject) -> bool {
        if let Some(ns) = &self.namespace
            && object.key.namespace != *ns
        {
            return false;
        }
        if let Some(labels) = &self.labels
            && !selector::labels_match(labels, object)
        {
            return false;
        }
        self.fields.is_empty() || self.fields.matches(object)
    }
}

/// `GET` of a collection.
pub fn list(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let rt = &request.rt;
    let filter = Filter::from_request(request)?;
    let (objects, rv) = match filter.fields.pinned_name() {
        // `metadata.name=x` (kubectl delete --wait, describe) needs no scan.
        Some(name) if request.namespace().is_some() || !rt.namespaced => {
            let key = ObjectKey::new(request.namespace().unwrap_or_default(), name);
            let rv = server.store.current_rv();
            (
                server.store.get(&rt.storage, &key).into_iter().collect(),
                rv,
            )
        }
        _ => server.store.list(&rt.storage, request.namespace()),
    };
    let start = match request.query.get("continue") {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let limit = request
        .query
        .int("limit")
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let mut matched = objects
        .iter()
        .filter(|o| start.as_ref().is_none_or(|(_, key)| o.key > *key))
        .filter(|o| filter.matches(o));
    let page: Vec<&Arc<StoredObject>> = match limit {
        Some(limit) => matched.by_ref().take(limit).collect(),
        None => matched.by_ref().collect(),
    };
    let remaining = matched.count();
    let list_rv = start.as_ref().map_or(rv, |(rv, _)| *rv);
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if remaining > 0
        && let Some(last) = page.last()
    {
        metadata["continue"] = json!(encode_continue(list_rv, &last.key));
        metadata["remainingItemCount"] = json!(remaining);
    }
    let version = &request.path.version;
    if table::wanted(&request.headers) {
        let objects: Vec<serde_json::Value> = page
            .iter()
            .map(|o| view::output_value(rt, version, &o.value()))
            .collect();
        let mut rendered = table::render(
            rt,
            &objects,
            Some(list_rv.to_string()),
            true,
            table::Include::from_query(&request.query)?,
            jiff::Timestamp::now(),
        );
        if let Some(token) = metadata.get("continue") {
            rendered["metadata"]["continue"] = token.clone();
        }
        return Ok(table_response(&rendered));
    }
    let partial = view::metadata_wanted(&request.headers);
    let (kind, api_version) = if partial {
        (
            "PartialObjectMetadata".to_owned(),
            "meta.k8s.io/v1".to_owned(),
        )
    } else {
        (rt.kind.clone(), rt.api_version(version))
    };
    let mut body = BytesMut::new();
    body.put_slice(
        format!(
            "{{\"kind\":\"{kind}List\",\"apiVersion\":\"{api_version}\",\"metadata\":{metadata},\"items\":["
        )
        .as_bytes(),
    );
    for (i, object) in page.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        let object = view::output(rt, version, object);
        if partial {
            body.put_slice(&view::metadata_only(&object));
        } else {
            body.put_slice(&object);
        }
    }
    body.put_slice(b"]}");
    Ok(json_bytes(StatusCode::OK, body.freeze()))
}

/// A Table answer.
pub(super) fn table_response(table: &serde_json::Value) -> Response {
    let mut response = json_bytes(
        StatusCode::OK,
        serde_json::to_vec(table).unwrap_or_default(),
    );
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(table::CONTENT_TYPE),
    );
    response
}

/// Continue tokens carry the list's resourceVersion and the last key returned. Later pages
/// read the current objects after that key (Kubernetes reads them at the first page's version;
/// an object changed between pages shows its newer state).
fn encode_continue(rv: u64, key: &ObjectKey) -> String {
    let raw = json!({"rv": rv, "ns": key.namespace, "name": key.name}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> ApiResult<(u64, ObjectKey)> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = value["rv"].as_u64().ok_or_else(bad)?;
    let ns = value["ns"].as_str().ok_or_else(bad)?;
    let name = value["name"].as_str().ok_or_else(bad)?;
    Ok((rv, ObjectKey::new(ns, name)))
}
