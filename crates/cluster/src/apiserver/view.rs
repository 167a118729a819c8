//! How stored objects look through a request's group and version, and back: events.k8s.io/v1
//! views of core Events, and the `apiVersion` of CRD kinds served in several versions (Kubernetes'
//! `conversion: None`, which changes nothing but `apiVersion`).

use bytes::Bytes;
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
