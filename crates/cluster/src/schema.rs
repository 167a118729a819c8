//! Field validation against a CRD's structural schema: unknown fields (pruned, and reported for
//! `fieldValidation=Strict|Warn`) and values of the wrong type (always rejected), each named by
//! its path. Built-in kinds are checked against k8s-openapi's types: fields those types do not
//! know are reported but kept, so fields newer than Kubernetes 1.33 survive (DESIGN §2).
//!
//! A `null` member is an unset field, as a typed decode reads it: built-in objects lose every
//! one ([`drop_nulls`]), custom resources every one whose schema is not `nullable: true`.
//!
//! Layering: the object room, below the API server; it imports nothing from the crate.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// What validation found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Fields the schema does not know (`.spec.foo`).
    pub unknown: Vec<String>,
    /// Values of the wrong type (`.spec.replicas: expected integer, got string`).
    pub type_errors: Vec<String>,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema[key] == Value::Bool(true)
}

/// Checks `value` against a structural schema, removing unknown fields.
pub fn prune(schema: &Value, value: &mut Value) -> Findings {
    let mut findings = Findings::default();
    walk(schema, value, &mut String::new(), &mut findings, true);
    findings
}

fn walk(schema: &Value, value: &mut Value, path: &mut String, findings: &mut Findings, root: bool) {
    if value.is_null() {
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if let Some(expected) = schema["type"].as_str() {
        let actual = type_name(value);
        let fits = actual == expected
            || (expected == "number" && actual == "integer")
            || (int_or_string && matches!(actual, "integer" | "string"));
        if !fits {
            findings.type_errors.push(format!("{}: Invalid value: \"{actual}\": {} in body must be of type {expected}: \"{actual}\"", display(path), display(path)));
            return;
        }
    } else if int_or_string && !matches!(type_name(value), "integer" | "string") {
        findings
            .type_errors
            .push(format!("{}: must be an integer or a string", display(path)));
        return;
    }
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            if let Some(properties) = schema["properties"].as_object() {
                let mut unknown = Vec::new();
                map.retain(|key, child| {
                    !child.is_null() || properties.get(key).is_some_and(|s| flag(s, "nullable"))
                });
                for (key, child) in map.iter_mut() {
                    let known = properties.get(key).or_else(|| {
                        // Every object may carry apiVersion, kind and metadata at the root.
                        (root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                            .then_some(&Value::Null)
                    });
                    match known {
                        Some(Value::Null) => {}
                        Some(child_schema) => {
                            let len = path.len();
                            path.push('.');
                            path.push_str(key);
                            walk(child_schema, child, path, findings, false);
                            path.truncate(len);
                        }
                        None if preserve => {}
                        None => unknown.push(key.clone()),
                    }
                }
                for key in unknown {
                    findings.unknown.push(format!("{}.{key}", path));
                    map.remove(&key);
                }
            } else if let Some(items) = schema.get("additionalProperties").filter(|s| s.is_object())
            {
                if !flag(items, "nullable") {
                    map.retain(|_, child| !child.is_null());
                }
                for (key, child) in map.iter_mut() {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    walk(items, child, path, findings, false);
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item_schema, item, path, findings, false);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn display(path: &str) -> String {
    path.trim_start_matches('.').to_owned()
}

/// Removes the `null` members of every object in `value`, as a round trip through Kubernetes'
/// typed representation does (`creationTimestamp: null` in a pod template the client sent is no
/// field at all); `null` items of lists stay.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, child| !child.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Fields of `value` that the typed representation `T` does not know: what a round trip through
/// `T` loses. (Nulls are not fields.)
pub fn unknown_for<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Vec<String>, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    diff(value, &back, &mut String::new(), &mut lost);
    Ok(lost)
}

fn diff(original: &Value, kept: &Value, path: &mut String, lost: &mut Vec<String>) {
    match (original, kept) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, child) in a {
                if child.is_null() {
                    continue;
                }
                let len = path.len();
                path.push('.');
                path.push_str(key);
                match b.get(key) {
                    None => lost.push(path.clone()),
                    Some(kept_child) => diff(child, kept_child, path, lost),
                }
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff(x, y, path, lost);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Unknown fields of a built-in object, by kind.
pub fn unknown_builtin(group: &str, resource: &str, value: &Value) -> Result<Vec<String>, String> {
    use k8s_openapi::api::{
        apps::v1 as apps, batch::v1 as batch, core::v1 as core, networking::v1 as net,
    };
    match (group, resource) {
        ("", "pods") => unknown_for::<core::Pod>(value),
        ("", "services") => unknown_for::<core::Service>(value),
        ("", "configmaps") => unknown_for::<core::ConfigMap>(value),
        ("", "secrets") => unknown_for::<core::Secret>(value),
        ("", "namespaces") => unknown_for::<core::Namespace>(value),
        ("", "serviceaccounts") => unknown_for::<core::ServiceAccount>(value),
        ("apps", "deployments") => unknown_for::<apps::Deployment>(value),
        ("apps", "replicasets") => unknown_for::<apps::ReplicaSet>(value),
        ("apps", "statefulsets") => unknown_for::<apps::StatefulSet>(value),
        ("apps", "daemonsets") => unknown_for::<apps::DaemonSet>(value),
        ("batch", "jobs") => unknown_for::<batch::Job>(value),
        ("networking.k8s.io", "ingresses") => unknown_for::<net::Ingress>(value),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_pruned_and_named() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer"},
                "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}}}}}});
        let mut value = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "x"},
            "spec": {"replicas": 1, "replica": 2, "template": {"a": "b", "newer": 1}}, "extra": true});
        let findings = prune(&schema, &mut value);
        assert_eq!(findings.unknown, [".spec.replica", ".extra"]);
        assert_eq!(value["spec"]["template"]["newer"], 1, "preserved subtree");
        assert!(value["spec"].get("replica").is_none());
    }

    #[test]
    fn nulls_are_unset_fields_unless_nullable() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string", "nullable": true},
            "m": {"type": "object", "additionalProperties": {"type": "string"}}}}}});
        let mut value = json!({"spec": {"a": null, "b": null, "m": {"x": null, "y": "1"}}});
        let findings = prune(&schema, &mut value);
        assert_eq!(findings, Findings::default());
        assert_eq!(value, json!({"spec": {"b": null, "m": {"y": "1"}}}));

        let mut pod = json!({"metadata": {"name": "p", "labels": null},
            "spec": {"template": {"metadata": {"creationTimestamp": null}}, "args": [null, "x"]}});
        drop_nulls(&mut pod);
        assert_eq!(
            pod,
            json!({"metadata": {"name": "p"},
            "spec": {"template": {"metadata": {}}, "args": [null, "x"]}})
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"}, "maxSurge": {"x-kubernetes-int-or-string": true},
            "steps": {"type": "array", "items": {"type": "object", "properties": {"setWeight": {"type": "integer"}}}}}}}});
        let mut value = json!({"spec": {"replicas": "three", "maxSurge": "25%", "steps": [{"setWeight": 20}, {"setWeight": "x"}]}});
        let findings = prune(&schema, &mut value);
        assert_eq!(findings.type_errors.len(), 2, "{findings:?}");
        assert!(findings.type_errors[0].starts_with("spec.replicas"));
        assert!(findings.type_errors[1].starts_with("spec.steps[1].setWeight"));
    }

    #[test]
    fn built_in_unknown_fields_come_from_a_typed_round_trip() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "replicaz": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagee": "typo"}]}}}});
        let unknown = unknown_builtin("apps", "deployments", &deployment).unwrap();
        assert_eq!(
            unknown,
            [".spec.replicaz", ".spec.template.spec.containers[0].imagee"]
        );
    }
}
