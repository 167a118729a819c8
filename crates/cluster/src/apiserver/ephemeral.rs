//! The `pods/ephemeralcontainers` subresource (`kubectl debug POD --image=…`): a write through
//! it changes only `spec.ephemeralContainers`, and only by adding containers, as Kubernetes
//! validates it — an existing ephemeral container cannot be changed or removed, a new one needs
//! a name no other container of the pod has and an image, and may not declare ports, probes,
//! resources or lifecycle hooks. The kubelet then runs the new containers once each.

use serde_json::Value;

use super::{ApiError, ApiResult};
use crate::{object::meta_str, registry::ResourceType};

/// The subresource's name.
pub const SUBRESOURCE: &str = "ephemeralcontainers";

/// Fields an ephemeral container may not have (Kubernetes' `validateEphemeralContainers`).
const FORBIDDEN: [&str; 7] = [
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resources",
    "resizePolicy",
];

/// `current` with the ephemeral containers of `wanted`, or 422 naming what is not allowed.
pub fn replace(rt: &ResourceType, current: &Value, wanted: &Value) -> ApiResult<Value> {
    let name = meta_str(current, "name");
    let invalid =
        |field: String, message: String| ApiError::invalid_field(rt, name, &field, message);
    let list = |pod: &Value| -> Vec<Value> {
        pod["spec"]["ephemeralContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (before, after) = (list(current), list(wanted));
    for old in &before {
        let kept = after.iter().find(|c| c["name"] == old["name"]);
        if kept != Some(old) {
            let which = old["name"].as_str().unwrap_or_default();
            return Err(invalid(
                "spec.ephemeralContainers".into(),
                format!("Forbidden: existing ephemeral containers \"{which}\" may not be changed"),
            ));
        }
    }
    let mut taken: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| current["spec"][*list].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    for (i, container) in after.iter().enumerate() {
        let at = format!("spec.ephemeralContainers[{i}]");
        let Some(container_name) = container["name"].as_str().filter(|n| !n.is_empty()) else {
            return Err(invalid(format!("{at}.name"), "Required value".into()));
        };
        if before.iter().any(|c| c["name"] == container_name) {
            taken.push(container_name);
            continue;
        }
        if taken.contains(&container_name) {
            return Err(invalid(
                format!("{at}.name"),
                format!("Duplicate value: \"{container_name}\""),
            ));
        }
        taken.push(container_name);
        if container["image"].as_str().is_none_or(str::is_empty) {
            return Err(invalid(format!("{at}.image"), "Required value".into()));
        }
        let set = |field: &str| match &container[field] {
            Value::Null => false,
            Value::Object(fields) => !fields.is_empty(),
            Value::Array(items) => !items.is_empty(),
            _ => true,
        };
        if let Some(field) = FORBIDDEN.iter().find(|f| set(f)) {
            return Err(invalid(
                format!("{at}.{field}"),
                "Forbidden: cannot be set for an Ephemeral Container".into(),
            ));
        }
    }
    let mut updated = current.clone();
    updated["spec"]["ephemeralContainers"] = Value::Array(after);
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::Registry;

    #[test]
    fn only_new_ephemeral_containers_are_taken() {
        let pods = Registry::with_builtins().get("", "pods").unwrap();
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "containers": [{"name": "app", "image": "nginx"}],
            "ephemeralContainers": [{"name": "debug-1", "image": "busybox"}]}});
        let mut wanted = pod.clone();
        wanted["spec"]["containers"][0]["image"] = json!("changed");
        wanted["spec"]["ephemeralContainers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "debug-2", "image": "busybox", "stdin": true}));
        wanted["spec"]["ephemeralContainers"][1]["resources"] = json!({});
        let updated = replace(&pods, &pod, &wanted).unwrap();
        assert_eq!(
            updated["spec"]["containers"][0]["image"], "nginx",
            "only ephemeral"
        );
        assert_eq!(updated["spec"]["ephemeralContainers"][1]["name"], "debug-2");

        let refused = |wanted: Value| replace(&pods, &pod, &wanted).unwrap_err().to_string();
        let mut changed = pod.clone();
        changed["spec"]["ephemeralContainers"][0]["image"] = json!("alpine");
        assert!(refused(changed).contains("may not be changed"));
        let mut removed = pod.clone();
        removed["spec"]["ephemeralContainers"] = json!([]);
        assert!(refused(removed).contains("may not be changed"));
        let mut duplicate = pod.clone();
        duplicate["spec"]["ephemeralContainers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "app", "image": "busybox"}));
        assert!(refused(duplicate).contains("Duplicate value: \"app\""));
        let mut probed = pod.clone();
        probed["spec"]["ephemeralContainers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "d", "image": "busybox", "ports": [{"containerPort": 80}]}));
        assert!(refused(probed).contains("ephemeralContainers[1].ports"));
    }
}
