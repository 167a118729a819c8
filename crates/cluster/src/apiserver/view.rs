//! How stored objects look through a request's group and version, and back: events.k8s.io/v1
//! views of core Events, the `apiVersion` of CRD kinds served in several versions (Kubernetes'
//! `conversion: None`, which changes nothing but `apiVersion`), and the metadata-only view
//! (`PartialObjectMetadata`) that controllers ask for when they need only names and labels.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

use crate::{events, registry::ResourceType, store::StoredObject};

/// Whether objects of `rt` read through `version` differ from how they are stored.
fn converts(rt: &ResourceType, version: &str) -> bool {
    is_events_v1(rt) || version != rt.preferred_version()
}

fn is_events_v1(rt: &ResourceType) -> bool {
    rt.group == "events.k8s.io"
}

/// A stored object as the request's view shows it.
pub fn output_value(rt: &ResourceType, version: &str, stored: &Value) -> Value {
    if is_events_v1(rt) {
        return events::to_events_v1(stored);
    }
    let mut value = stored.clone();
    if version != rt.preferred_version() {
        value["apiVersion"] = json!(rt.api_version(version));
    }
    value
}

/// A stored object's JSON as the request's view shows it (no copy when the view is the storage
/// shape).
pub fn output(rt: &ResourceType, version: &str, stored: &StoredObject) -> Bytes {
    if !converts(rt, version) {
        return stored.json.clone();
    }
    let value = output_value(rt, version, &stored.value());
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

/// An object written through the request's view, in the storage shape.
pub fn input(rt: &ResourceType, value: Value) -> Value {
    if is_events_v1(rt) {
        return events::from_events_v1(&value);
    }
    let mut value = value;
    if value.is_object() {
        value["apiVersion"] = json!(rt.api_version(rt.preferred_version()));
    }
    value
}

/// Whether the client asked for metadata only (`Accept: application/json;as=PartialObjectMetadata;
/// g=meta.k8s.io;v=v1`, or `…List` for a list), as kube-rs' metadata watches and client-go's
/// metadata informers do.
pub fn metadata_wanted(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.contains("as=PartialObjectMetadata") && accept.contains("g=meta.k8s.io")
        })
}

/// An object's `PartialObjectMetadata`: its metadata alone.
pub fn metadata_only(object: &[u8]) -> Bytes {
    let metadata = serde_json::from_slice::<Value>(object)
        .map(|mut v| v["metadata"].take())
        .unwrap_or(Value::Null);
    let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata});
    Bytes::from(serde_json::to_vec(&partial).unwrap_or_default())
}
