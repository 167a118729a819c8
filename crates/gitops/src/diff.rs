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
use sluice_patch::{PatchKind, three_way};

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

/// Compares `desired` (as it would be applied, tracking annotation included) with `live`.
pub fn diff(desired: &Value, live: &Value) -> Diff {
    let desired = normalize(desired);
    let live = normalize(live);
    let original = last_applied(&live)
        .map(|o| normalize(&o))
        .unwrap_or_else(|| desired.clone());
    let patch = three_way(Some(&original), &desired, &live);
    let empty = patch.as_object().is_some_and(Map::is_empty);
    if empty {
        return Diff {
            modified: false,
            patch,
        };
    }
    let kind = if is_built_in(desired["apiVersion"].as_str().unwrap_or_default()) {
        PatchKind::Strategic
    } else {
        PatchKind::Merge
    };
    let mut predicted = live.clone();
    let modified = match sluice_patch::apply(kind, &mut predicted, &patch) {
        Ok(()) => normalize(&predicted) != live,
        Err(_) => true,
    };
    Diff { modified, patch }
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
    fn secret_string_data_compares_as_data() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": "hunter2"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "aHVudGVyMg=="}});
        assert!(!diff(&desired, &live).modified);
    }
}
