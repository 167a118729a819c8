//! Whether a live object differs from what Git says: Argo CD's default three-way diff
//! (research §2.6). The strategic merge patch `kubectl apply` would send — computed from the
//! `last-applied-configuration` annotation, the desired object and the live one — is applied to
//! the live object; the object is Modified when that prediction differs from live.
//!
//! So fields only the live object has — the server's defaults, `status`, another controller's
//! writes — are never drift. That includes what sluice's own Rollout controller writes into the
//! Services a Rollout names (the `rollouts-pod-template-hash` selector), which Argo CD users
//! must list in `ignoreDifferences`: here the diff knows both sides. Without the annotation
//! the diff is two-way (the desired object stands for last-applied), as Argo CD's.
//!
//! Both sides are normalized first: `metadata.creationTimestamp`, `status` and the server's
//! bookkeeping are dropped, a Secret's `stringData` becomes `data`.

use base64::Engine;
use serde_json::{Map, Value};
use sluice_patch::PatchKind;

/// The annotation client-side apply records what it applied in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The outcome of comparing one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// Live differs from desired.
    pub modified: bool,
    /// The patch a client-side apply would send (empty object when none).
    pub patch: Value,
}

/// Whether the kind is built into Kubernetes (strategic merge patch) rather than a custom
/// resource (JSON merge patch).
pub fn is_built_in(api_version: &str) -> bool {
    let group = crate::tracking::group_of(api_version);
    !group.contains('.') || group.ends_with(".k8s.io")
}

/// The object as compared: bookkeeping and status dropped, Secret `stringData` folded into
/// `data`.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in [
                "creationTimestamp",
                "resourceVersion",
                "uid",
                "generation",
                "managedFields",
                "selfLink",
            ] {
                meta.remove(field);
            }
        }
        if map.get("kind").and_then(Value::as_str) == Some("Secret") {
            fold_string_data(map);
        }
    }
    object
}

fn fold_string_data(secret: &mut Map<String, Value>) {
    let Some(Value::Object(strings)) = secret.remove("stringData") else {
        return;
    };
    let data = secret
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(data) = data.as_object_mut() {
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(key, Value::String(encoded));
        }
    }
}

/// The last-applied configuration recorded on a live object.
pub fn last_applied(live: &Value) -> Option<Value> {
    let text = live["metadata"]["annotations"][LAST_APPLIED].as_str()?;
    serde_json::from_str(text).ok()
}

/// The patch a client-side apply sends for an object of `api_version`: kubectl's three-way
/// strategic merge patch for built-in kinds, its three-way JSON merge patch for custom
/// resources — where a list is replaced whole, as a merge patch replaces it (a strategic
/// patch's partial list would drop the elements' other fields).
pub fn apply_patch(
    api_version: &str,
    last_applied: Option<&Value>,
    desired: &Value,
    live: &Value,
) -> Value {
    if is_built_in(api_version) {
        sluice_patch::three_way(last_applied, desired, live)
    } else {
        let empty = Value::Object(Map::new());
        Value::Object(merge_three_way(
            last_applied.unwrap_or(&empty),
            desired,
            live,
        ))
    }
}

/// The JSON merge patch taking `live` to `desired`, deleting what `original` set and
/// `desired` dropped; fields only `live` has stay.
fn merge_three_way(original: &Value, desired: &Value, live: &Value) -> Map<String, Value> {
    let mut patch = Map::new();
    let (Some(want), Some(have)) = (desired.as_object(), live.as_object()) else {
        return patch;
    };
    for (field, wanted) in want {
        match (wanted, have.get(field)) {
            (Value::Object(_), Some(current @ Value::Object(_))) => {
                let before = original.get(field).unwrap_or(&Value::Null);
                let sub = merge_three_way(before, wanted, current);
                if !sub.is_empty() {
                    patch.insert(field.clone(), Value::Object(sub));
                }
            }
            (wanted, Some(current)) if wanted == current => {}
            (Value::Null, None) => {}
            (wanted, _) => {
                patch.insert(field.clone(), wanted.clone());
            }
        }
    }
    for field in original.as_object().into_iter().flat_map(|o| o.keys()) {
        if !want.contains_key(field) && have.contains_key(field) {
            patch.insert(field.clone(), Value::Null);
        }
    }
    patch
}

/// Compares `desired` (as it would be applied, tracking annotation included) with `live`.
pub fn diff(desired: &Value, live: &Value) -> Diff {
    let (patch, predicted) = predict(desired, live);
    let modified = if patch.as_object().is_some_and(Map::is_empty) {
        false
    } else {
        predicted.is_none_or(|predicted| predicted != normalize(live))
    };
    Diff { modified, patch }
}

/// The object as shown and compared whole: [`normalize`]d, without the last-applied
/// annotation (and without `annotations` when that was the only one).
pub fn comparable(object: &Value) -> Value {
    let mut object = normalize(object);
    if let Some(annotations) = object["metadata"]["annotations"].as_object_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            object["metadata"]
                .as_object_mut()
                .map(|m| m.remove("annotations"));
        }
    }
    object
}

/// Server-side diff (Argo CD's `ServerSideDiff`): whether `predicted` — what a server-side
/// apply dry run of the target returned — differs from `live`.
pub fn server_side_modified(predicted: &Value, live: &Value) -> bool {
    comparable(predicted) != comparable(live)
}

/// The patch a client-side apply of `desired` would send to `live`, and live as that patch
/// would leave it, normalized (Argo CD's predicted live state; `None` when the patch does not
/// apply).
pub fn predict(desired: &Value, live: &Value) -> (Value, Option<Value>) {
    let desired = normalize(desired);
    let live = normalize(live);
    let original = last_applied(&live)
        .map(|o| normalize(&o))
        .unwrap_or_else(|| desired.clone());
    let api_version = desired["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let patch = apply_patch(&api_version, Some(&original), &desired, &live);
    if patch.as_object().is_some_and(Map::is_empty) {
        return (patch, Some(live));
    }
    let kind = if is_built_in(&api_version) {
        PatchKind::Strategic
    } else {
        PatchKind::Merge
    };
    let mut predicted = live;
    let predicted = sluice_patch::apply(kind, &mut predicted, &patch)
        .ok()
        .map(|()| normalize(&predicted));
    (patch, predicted)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with_last_applied(mut live: Value, applied: &Value) -> Value {
        live["metadata"]["annotations"][LAST_APPLIED] = json!(applied.to_string());
        live
    }

    fn service(selector: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "active", "namespace": "demo"},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}})
    }

    #[test]
    fn the_rollout_controllers_selector_hash_is_not_drift() {
        let desired = service(json!({"app": "demo"}));
        let mut live = with_last_applied(service(json!({"app": "demo"})), &desired);
        live["spec"]["selector"]["rollouts-pod-template-hash"] = json!("6d4f8c");
        live["spec"]["clusterIP"] = json!("127.2.0.9");
        live["spec"]["ports"][0]["protocol"] = json!("TCP");
        live["metadata"]["resourceVersion"] = json!("42");
        live["status"] = json!({"loadBalancer": {}});
        let d = diff(&desired, &live);
        assert!(!d.modified, "{:?}", d.patch);
    }

    #[test]
    fn a_changed_field_and_a_field_git_dropped_are_drift() {
        let applied = service(json!({"app": "demo", "tier": "web"}));
        let live = with_last_applied(applied.clone(), &applied);
        let mut desired = service(json!({"app": "demo"}));
        assert!(diff(&desired, &live).modified, "tier was dropped from Git");
        desired = applied.clone();
        desired["spec"]["ports"][0]["port"] = json!(81);
        assert!(diff(&desired, &live).modified);
        assert!(!diff(&applied, &live).modified);
    }

    #[test]
    fn an_edit_by_hand_is_drift_and_so_is_a_new_field_from_git() {
        let desired = service(json!({"app": "demo"}));
        let mut live = with_last_applied(desired.clone(), &desired);
        live["spec"]["selector"]["app"] = json!("edited");
        assert!(diff(&desired, &live).modified);
        let mut more = desired.clone();
        more["metadata"]["labels"] = json!({"team": "a"});
        let live = with_last_applied(desired.clone(), &desired);
        assert!(diff(&more, &live).modified);
    }

    #[test]
    fn custom_resources_diff_with_merge_semantics() {
        let rollout = |image: &str| {
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "r", "namespace": "demo"},
                "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
        };
        let live = with_last_applied(rollout("demo:blue"), &rollout("demo:blue"));
        assert!(!diff(&rollout("demo:blue"), &live).modified);
        assert!(diff(&rollout("demo:green"), &live).modified);
        assert!(!is_built_in("argoproj.io/v1alpha1"));
        assert!(is_built_in("apps/v1") && is_built_in("v1"));
        assert!(is_built_in("networking.k8s.io/v1"));
    }

    #[test]
    fn a_custom_resources_lists_are_patched_whole() {
        let rollout = |image: &str| {
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "r"},
                "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image,
                    "ports": [{"containerPort": 8080}]}]}}}})
        };
        let live = rollout("demo:blue");
        let patch = apply_patch(
            "argoproj.io/v1alpha1",
            Some(&live),
            &rollout("demo:yellow"),
            &live,
        );
        let mut patched = live.clone();
        sluice_patch::apply(PatchKind::Merge, &mut patched, &patch).unwrap();
        assert_eq!(
            patched,
            rollout("demo:yellow"),
            "the container keeps its ports"
        );
        let mut dropped = rollout("demo:blue");
        dropped["spec"].as_object_mut().unwrap().remove("template");
        let patch = apply_patch("argoproj.io/v1alpha1", Some(&live), &dropped, &live);
        assert_eq!(patch, json!({"spec": {"template": null}}));
    }

    #[test]
    fn secret_string_data_compares_as_data() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": "hunter2"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "aHVudGVyMg=="}});
        assert!(!diff(&desired, &live).modified);
    }
}
