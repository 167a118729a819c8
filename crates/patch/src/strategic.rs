//! Strategic merge patch, for built-in kinds (what `kubectl apply` and `kubectl patch` send by
//! default). Maps merge; lists with a merge key merge element by element; other lists are
//! replaced. Directives: `$patch: replace|delete|merge`, `$setElementOrder/<list>`,
//! `$deleteFromPrimitiveList/<list>`, `$retainKeys`.
//!
//! The merge keys come from Kubernetes' `patchMergeKey` tags and are looked up by field name —
//! a table, since k8s-openapi's schemas do not carry them. A list named `ports` merges by
//! `containerPort` when its elements have one (container ports) and by `port` otherwise
//! (Service ports).

use serde_json::{Map, Value};

use super::PatchError;

/// The merge key of a list field, `None` for lists that are replaced whole.
fn merge_key(field: &str, elements: &[&Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "hostAliasesByName" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "readinessGates" => Some("conditionType"),
        "hostAliases" => Some("ip"),
        "ports" => {
            if elements.iter().any(|e| e.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        _ => None,
    }
}

/// The merge key of a list field (shared with server-side apply).
pub fn merge_key_for(field: &str, elements: &[&Value]) -> Option<&'static str> {
    merge_key(field, elements)
}

/// Lists of scalars that merge as sets instead of being replaced.
pub(crate) fn merges_as_set(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch.
///
/// # Errors
/// [`PatchError::Decode`] for a patch that is not an object or has a malformed directive.
pub fn apply(document: &mut Value, patch: &Value) -> Result<(), PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Decode(
            "a strategic merge patch must be a JSON object".into(),
        ));
    }
    if merge_value(document, patch)? == Outcome::Delete {
        *document = Value::Object(Map::new());
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Keep,
    Delete,
}

fn directive(patch: &Map<String, Value>) -> Option<&str> {
    patch.get("$patch").and_then(Value::as_str)
}

fn without_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| {
                    !i.as_object()
                        .is_some_and(|o| directive(o).is_some() && o.len() == 1)
                })
                .map(without_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_value(target: &mut Value, patch: &Value) -> Result<Outcome, PatchError> {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return Ok(Outcome::Keep);
    };
    match directive(patch) {
        Some("replace") => {
            *target = without_directives(&Value::Object(patch.clone()));
            return Ok(Outcome::Keep);
        }
        Some("delete") => return Ok(Outcome::Delete),
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::Decode(format!(
                "unknown $patch directive {other:?}"
            )));
        }
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("an object");
    let mut orders = Vec::new();
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            orders.push((field.to_owned(), value.clone()));
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = value
                .as_array()
                .ok_or_else(|| PatchError::Decode(format!("{key} must be a list")))?;
            if let Some(list) = target_map.get_mut(field).and_then(Value::as_array_mut) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Array(items) => {
                let slot = target_map.entry(key.clone()).or_insert(Value::Null);
                merge_list(slot, items, key)?;
            }
            Value::Object(_) => {
                let slot = target_map.entry(key.clone()).or_insert(Value::Null);
                if merge_value(slot, value)? == Outcome::Delete {
                    target_map.remove(key);
                }
            }
            scalar => {
                target_map.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (field, order) in orders {
        if let (Some(Value::Array(list)), Some(order)) =
            (target_map.get_mut(&field), order.as_array())
        {
            reorder(list, order, &field);
        }
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        target_map.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
    Ok(Outcome::Keep)
}

fn merge_list(target: &mut Value, patch: &[Value], field: &str) -> Result<(), PatchError> {
    if patch.iter().any(|p| {
        p.as_object()
            .is_some_and(|o| directive(o) == Some("replace"))
    }) {
        *target = without_directives(&Value::Array(patch.to_vec()));
        return Ok(());
    }
    let existing: Vec<&Value> = target
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut elements: Vec<&Value> = patch.iter().collect();
    elements.extend(existing.iter().copied());
    let key = merge_key(field, &elements).filter(|_| patch.iter().all(Value::is_object));
    let Some(key) = key else {
        if merges_as_set(field) {
            let mut merged: Vec<Value> = target.as_array().cloned().unwrap_or_default();
            for item in patch {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            *target = Value::Array(merged);
        } else {
            *target = without_directives(&Value::Array(patch.to_vec()));
        }
        return Ok(());
    };
    let mut merged: Vec<Value> = target.as_array().cloned().unwrap_or_default();
    for item in patch {
        let item_map = item.as_object().expect("checked above");
        let id = item_map.get(key).cloned().unwrap_or(Value::Null);
        let position = merged.iter().position(|m| m.get(key) == Some(&id));
        match (directive(item_map), position) {
            (Some("delete"), Some(i)) => {
                merged.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                if merge_value(&mut merged[i], item)? == Outcome::Delete {
                    merged.remove(i);
                }
            }
            (_, None) => merged.push(without_directives(item)),
        }
    }
    *target = Value::Array(merged);
    Ok(())
}

/// Puts elements in the order `$setElementOrder` gives; elements it does not name keep their
/// relative order after them.
fn reorder(list: &mut [Value], order: &[Value], field: &str) {
    let elements: Vec<&Value> = list.iter().collect();
    let key = merge_key(field, &elements);
    let rank = |item: &Value| -> usize {
        let position = match key {
            Some(key) => order
                .iter()
                .position(|o| o.get(key).is_some() && o.get(key) == item.get(key)),
            None => order.iter().position(|o| o == item),
        };
        position.unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(document: Value, patch: Value) -> Value {
        let mut document = document;
        apply(&mut document, &patch).unwrap();
        document
    }

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
               "spec": {"containers": [
                   {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]},
                   {"name": "side", "image": "envoy"}]}})
    }

    #[test]
    fn kubectl_apply_changes_one_image_and_removes_a_container() {
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"image": "nginx:1.26", "name": "web"}, {"$patch": "delete", "name": "side"}]}});
        let result = patched(pod(), patch);
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}])
        );
    }

    #[test]
    fn lists_merge_by_key_and_maps_merge() {
        let patch = json!({"metadata": {"labels": {"b": "2", "a": null}},
            "spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}, {"name": "new", "image": "busybox"}]}});
        let result = patched(pod(), patch);
        assert_eq!(result["metadata"]["labels"], json!({"b": "2"}));
        let containers = result["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 3);
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(
            containers[0]["image"], "nginx:1.25",
            "unmentioned fields stay"
        );
        assert_eq!(containers[2]["name"], "new");
    }

    #[test]
    fn set_element_order_reorders() {
        let patch =
            json!({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}});
        let result = patched(pod(), patch);
        let names: Vec<_> = result["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, [json!("side"), json!("web")]);
    }

    #[test]
    fn lists_without_a_key_are_replaced_and_finalizers_union() {
        let result = patched(
            json!({"spec": {"args": ["a", "b"]}, "metadata": {"finalizers": ["x"]}}),
            json!({"spec": {"args": ["c"]}, "metadata": {"finalizers": ["y"]}}),
        );
        assert_eq!(result["spec"]["args"], json!(["c"]));
        assert_eq!(result["metadata"]["finalizers"], json!(["x", "y"]));
        let result = patched(
            result,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        );
        assert_eq!(result["metadata"]["finalizers"], json!(["y"]));
    }

    #[test]
    fn replace_delete_and_retain_keys_directives() {
        let doc = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "selector": {"a": "1", "b": "2"}}});
        let result = patched(
            doc.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));
        let result = patched(
            doc.clone(),
            json!({"spec": {"selector": {"$patch": "replace", "c": "3"}}}),
        );
        assert_eq!(result["spec"]["selector"], json!({"c": "3"}));
        let result = patched(doc, json!({"spec": {"selector": {"$patch": "delete"}}}));
        assert!(result["spec"].get("selector").is_none());
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}]}});
        let result = patched(
            svc,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443, "name": "https"}]}}),
        );
        assert_eq!(
            result["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090, "name": "http"}, {"port": 443, "name": "https"}])
        );
    }

    #[test]
    fn malformed_directives_are_errors() {
        let mut doc = pod();
        assert!(apply(&mut doc, &json!({"spec": {"$patch": "explode"}})).is_err());
        assert!(apply(&mut doc, &json!([1])).is_err());
        assert!(
            apply(
                &mut doc,
                &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}})
            )
            .is_err()
        );
    }
}

/// Property: on documents and patches whose lists have no merge key, a strategic merge patch is
/// exactly a JSON merge patch (both merge maps, delete on null and replace lists).
#[cfg(test)]
mod properties {
    use serde_json::{Map, Value, json};

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn value(&mut self, depth: u32, nulls: bool) -> Value {
            const KEYS: [&str; 6] = ["a", "b", "c", "args", "labels", "spec"];
            match self.below(if depth == 0 { 4 } else { 6 }) {
                0 => json!(self.below(10)),
                1 => json!(format!("s{}", self.below(5))),
                2 if nulls => Value::Null,
                2 => json!(true),
                3 => Value::Array((0..self.below(3)).map(|i| json!(i)).collect()),
                _ => {
                    let mut map = Map::new();
                    for _ in 0..self.below(4) {
                        let key = KEYS[self.below(KEYS.len() as u64) as usize];
                        map.insert(key.into(), self.value(depth - 1, nulls));
                    }
                    Value::Object(map)
                }
            }
        }
    }

    #[test]
    fn strategic_equals_merge_without_keyed_lists() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..5_000 {
            let document = Value::Object(match rng.value(3, false) {
                Value::Object(map) => map,
                _ => Map::new(),
            });
            let patch = Value::Object(match rng.value(3, true) {
                Value::Object(map) => map,
                _ => Map::new(),
            });
            let mut merged = document.clone();
            json_patch::merge(&mut merged, &patch);
            let mut strategic = document.clone();
            super::apply(&mut strategic, &patch).unwrap();
            assert_eq!(strategic, merged, "document {document} patch {patch}");
        }
    }
}
