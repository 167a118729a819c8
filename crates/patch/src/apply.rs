//! Server-side apply, the subset sluice implements: the applied object merges into the live one;
//! fields the same manager applied before and has now dropped are removed; lists are atomic
//! unless they have a known merge key (the strategic-merge table); each applier's fields are
//! recorded in a reduced `managedFields` (FieldsV1); a field another manager owns with a
//! different value is a conflict unless `force` (which takes it over); the same value is shared
//! ownership. Plain writes (create, update, patch) are tracked too ([`track_update`]): the
//! fields they change become their manager's (operation `Update`, per subresource), so a later
//! apply conflicts with what `kubectl edit` or `kubectl scale` set, as on a real cluster.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A field path as FieldsV1 spells it: `f:spec`, `k:{"name":"web"}`, …
type Path = Vec<String>;

/// A conflict: another manager owns a field the applied config sets differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, as `.spec.replicas`.
    pub field: String,
}

fn key_element(key: &str, item: &Value) -> Option<String> {
    let id = item.get(key)?;
    Some(format!("k:{}", json!({key: id})))
}

fn list_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let elements: Vec<&Value> = items.iter().collect();
    super::strategic::merge_key_for(field, &elements)
        .filter(|key| items.iter().all(|i| i.get(*key).is_some()))
}

/// The leaf paths an applied object sets (metadata bookkeeping excluded).
pub fn paths(applied: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    collect(applied, &mut Vec::new(), "", &mut out);
    out
}

fn collect(value: &Value, prefix: &mut Path, field: &str, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if prefix.is_empty() && matches!(k.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                if prefix.len() == 1
                    && prefix[0] == "f:metadata"
                    && !matches!(
                        k.as_str(),
                        "labels" | "annotations" | "finalizers" | "ownerReferences"
                    )
                {
                    continue;
                }
                prefix.push(format!("f:{k}"));
                collect(v, prefix, k, out);
                prefix.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match list_key(field, items) {
            Some(key) => {
                for item in items {
                    if let Some(element) = key_element(key, item) {
                        prefix.push(element);
                        collect(item, prefix, field, out);
                        prefix.pop();
                    }
                }
            }
            None => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// Paths as a FieldsV1 tree.
pub fn fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for part in path {
            node = node
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("FieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// A FieldsV1 tree as leaf paths.
pub fn from_fields_v1(fields: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    fn walk(node: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
        let children = node.as_object().filter(|m| !m.is_empty());
        match children {
            None if !prefix.is_empty() => {
                out.insert(prefix.clone());
            }
            None => {}
            Some(map) => {
                for (k, v) in map {
                    if k == "." {
                        continue;
                    }
                    prefix.push(k.clone());
                    walk(v, prefix, out);
                    prefix.pop();
                }
            }
        }
    }
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// The value at a FieldsV1 path, if present.
pub fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = value;
    for part in path {
        node = if let Some(name) = part.strip_prefix("f:") {
            node.get(name)?
        } else if let Some(key) = part.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            node.as_array()?
                .iter()
                .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?
        } else {
            return None;
        };
    }
    Some(node)
}

/// The node a FieldsV1 path leads to (list elements found by key), if present.
fn node_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut node = value;
    for part in path {
        node = if let Some(name) = part.strip_prefix("f:") {
            node.get_mut(name)?
        } else if let Some(key) = part.strip_prefix("k:") {
            let key = serde_json::from_str::<Map<String, Value>>(key).ok()?;
            node.as_array_mut()?
                .iter_mut()
                .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?
        } else {
            return None;
        };
    }
    Some(node)
}

/// Sets the field at a FieldsV1 path (`f:` last) to `new` where its parent exists. Whether it
/// was set.
pub fn set(value: &mut Value, path: &[String], new: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let (Some(name), Some(Value::Object(map))) =
        (last.strip_prefix("f:"), node_mut(value, parents))
    else {
        return false;
    };
    map.insert(name.to_owned(), new);
    true
}

/// Removes the value at a FieldsV1 path (and list elements named by key).
pub fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(node) = node_mut(value, parents) else {
        return;
    };
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(name);
        }
    } else if let Some(key) = last.strip_prefix("k:")
        && let (Ok(key), Some(items)) = (
            serde_json::from_str::<Map<String, Value>>(key),
            node.as_array_mut(),
        )
    {
        items.retain(|item| !key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
}

fn dotted(path: &[String]) -> String {
    path.iter()
        .map(|p| match p.strip_prefix("f:") {
            Some(name) => format!(".{name}"),
            None => format!("[{}]", p.trim_start_matches("k:")),
        })
        .collect()
}

/// The managers, whether they applied, and their paths, from `metadata.managedFields`.
fn managers(live: &Value) -> Vec<(String, bool, BTreeSet<Path>)> {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m["manager"].as_str()?.to_owned(),
                m["operation"] == "Apply",
                from_fields_v1(&m["fieldsV1"]),
            ))
        })
        .collect()
}

/// Whether a FieldsV1 path lies under `.status`.
fn in_status(path: &Path) -> bool {
    path.first().is_some_and(|p| p == "f:status")
}

/// Records a plain write (not an apply) of `new` over `old` (`None`: a create) by `manager`:
/// the fields it set or changed become the manager's `Update` entry for `subresource`, and
/// leave every other entry; fields it removed leave every entry; empty entries go. A main
/// write tracks fields outside `.status`, a status write those inside.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    api_version: &str,
    now: &str,
) {
    let status = subresource == Some("status");
    let scope = |path: &Path| in_status(path) == status;
    let before = old.map(paths).unwrap_or_default();
    let after = paths(new);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|p| scope(p))
        .filter(|p| old.is_none_or(|old| get(old, p) != get(new, p)))
        .cloned()
        .collect();
    let removed: BTreeSet<Path> = before
        .difference(&after)
        .filter(|p| scope(p))
        .cloned()
        .collect();
    if changed.is_empty() && removed.is_empty() {
        if let Some(old) = old {
            new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
        }
        return;
    }
    let mut entries: Vec<Value> = old
        .and_then(|o| o["metadata"]["managedFields"].as_array().cloned())
        .unwrap_or_default();
    let mine = |e: &Value| {
        e["manager"] == manager
            && e["operation"] == "Update"
            && e["subresource"].as_str() == subresource
    };
    let mut own: BTreeSet<Path> = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| from_fields_v1(&e["fieldsV1"]))
        .unwrap_or_default();
    entries.retain(|e| !mine(e));
    for entry in &mut entries {
        let kept: BTreeSet<Path> = from_fields_v1(&entry["fieldsV1"])
            .into_iter()
            .filter(|p| !changed.contains(p) && !removed.contains(p))
            .collect();
        entry["fieldsV1"] = fields_v1(&kept);
    }
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    own.extend(changed);
    own.retain(|p| !removed.contains(p));
    if !own.is_empty() {
        let mut entry = json!({"manager": manager, "operation": "Update", "apiVersion": api_version,
            "time": now, "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&own)});
        if let Some(subresource) = subresource {
            entry["subresource"] = json!(subresource);
        }
        entries.push(entry);
    }
    match new["metadata"].as_object_mut() {
        Some(meta) if entries.is_empty() => {
            meta.remove("managedFields");
        }
        Some(meta) => {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
        None => {}
    }
}

/// Applies `applied` for `manager` onto `live`, returning the new object.
///
/// # Errors
/// The conflicts, when `force` is off.
pub fn apply(
    live: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let mine = paths(applied);
    let others = managers(live);
    let previous = others
        .iter()
        .find(|(m, applies, _)| m == manager && *applies)
        .map(|(_, _, p)| p.clone())
        .unwrap_or_default();
    // Managers are identities of name and operation: the applier's own plain writes (say
    // `kubectl scale` after `kubectl apply --server-side`) are another manager's fields.
    let other = |m: &str, applies: bool| m != manager || !applies;
    let mut conflicts = Vec::new();
    let mut taken = BTreeSet::new();
    for (name, _, owned) in others.iter().filter(|(m, a, _)| other(m, *a)) {
        for path in mine.intersection(owned) {
            if get(live, path) != get(applied, path) {
                conflicts.push(Conflict {
                    manager: name.clone(),
                    field: dotted(path),
                });
                taken.insert(path.clone());
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let mut result = live.clone();
    // Fields this manager applied before and no longer does go, unless someone else owns them.
    for path in previous.difference(&mine) {
        let owned_elsewhere = others
            .iter()
            .any(|(m, a, p)| other(m, *a) && p.contains(path));
        if !owned_elsewhere {
            remove(&mut result, path);
        }
    }
    merge(&mut result, applied, "");
    // Record ownership: this manager's fields; a field forced away from another manager is
    // no longer theirs (the same value stays shared).
    let mut entries: Vec<Value> = live["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    entries.retain(|m| m["manager"] != manager || m["operation"] != "Apply");
    for entry in &mut entries {
        let kept: BTreeSet<Path> = from_fields_v1(&entry["fieldsV1"])
            .difference(&taken)
            .cloned()
            .collect();
        entry["fieldsV1"] = fields_v1(&kept);
    }
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    entries.push(
        json!({"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": now,
        "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&mine)}),
    );
    result["metadata"]["managedFields"] = Value::Array(entries);
    Ok(result)
}

/// Merges an applied config into an object: maps recursively, keyed lists element by element,
/// other lists replaced.
fn merge(target: &mut Value, applied: &Value, field: &str) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                if k == "managedFields" {
                    continue;
                }
                merge(t.entry(k.clone()).or_insert(Value::Null), v, k);
            }
        }
        (target @ Value::Array(_), Value::Array(items)) => match list_key(field, items) {
            Some(key) => {
                let existing = target.as_array_mut().expect("an array");
                for item in items {
                    match existing.iter_mut().find(|e| e.get(key) == item.get(key)) {
                        Some(e) => merge(e, item, field),
                        None => existing.push(item.clone()),
                    }
                }
            }
            None => *target = applied.clone(),
        },
        (target, applied) => *target = applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-01T10:00:00Z";

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    }

    #[test]
    fn applying_records_fields_and_dropped_fields_are_removed() {
        let live = json!({"metadata": {"name": "web"}});
        let first = apply(&live, &deployment(2, "nginx"), "ci", false, "apps/v1", NOW).unwrap();
        assert_eq!(first["spec"]["replicas"], 2);
        let fields = &first["metadata"]["managedFields"][0]["fieldsV1"];
        assert!(fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:image"].is_object());
        let mut without_labels = deployment(2, "nginx");
        without_labels["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        let second = apply(&first, &without_labels, "ci", false, "apps/v1", NOW).unwrap();
        assert!(
            second["metadata"]
                .get("labels")
                .is_none_or(|l| l.get("app").is_none()),
            "{second}"
        );
    }

    #[test]
    fn another_managers_field_conflicts_unless_forced() {
        let live = apply(
            &json!({"metadata": {"name": "web"}}),
            &deployment(2, "nginx"),
            "ci",
            false,
            "apps/v1",
            NOW,
        )
        .unwrap();
        let conflicts =
            apply(&live, &deployment(5, "nginx"), "hpa", false, "apps/v1", NOW).unwrap_err();
        assert_eq!(
            conflicts,
            vec![Conflict {
                manager: "ci".into(),
                field: ".spec.replicas".into()
            }]
        );
        // The same value is shared ownership, not a conflict.
        assert!(apply(&live, &deployment(2, "nginx"), "hpa", false, "apps/v1", NOW).is_ok());
        let forced = apply(&live, &deployment(5, "nginx"), "hpa", true, "apps/v1", NOW).unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        let ci = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["manager"] == "ci")
            .unwrap();
        assert!(
            ci["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
            "forcing takes the field over"
        );
    }

    #[test]
    fn plain_writes_own_what_they_change_and_an_apply_conflicts_with_them() {
        let live = apply(
            &json!({"metadata": {"name": "web"}}),
            &deployment(2, "nginx"),
            "ci",
            false,
            "apps/v1",
            NOW,
        )
        .unwrap();
        // `kubectl scale` changes replicas: kubectl now owns them, ci keeps the image.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(5);
        track_update(Some(&live), &mut scaled, "kubectl", None, "apps/v1", NOW);
        let entries = scaled["metadata"]["managedFields"].as_array().unwrap();
        let kubectl = entries.iter().find(|e| e["manager"] == "kubectl").unwrap();
        assert_eq!(kubectl["operation"], "Update");
        assert!(kubectl["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        let ci = entries.iter().find(|e| e["manager"] == "ci").unwrap();
        assert!(ci["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        // ci applying replicas 2 again conflicts with kubectl's 5.
        let conflicts = apply(
            &scaled,
            &deployment(2, "nginx"),
            "ci",
            false,
            "apps/v1",
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            conflicts,
            vec![Conflict {
                manager: "kubectl".into(),
                field: ".spec.replicas".into()
            }]
        );
        // A status write is tracked apart, and an unchanged write records nothing new.
        let mut with_status = scaled.clone();
        with_status["status"] = json!({"replicas": 5});
        track_update(
            Some(&scaled),
            &mut with_status,
            "controller",
            Some("status"),
            "apps/v1",
            NOW,
        );
        let status = with_status["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == "controller")
            .unwrap()
            .clone();
        assert_eq!(status["subresource"], "status");
        let mut same = with_status.clone();
        track_update(Some(&with_status), &mut same, "other", None, "apps/v1", NOW);
        assert_eq!(
            same["metadata"]["managedFields"],
            with_status["metadata"]["managedFields"]
        );
    }

    #[test]
    fn keyed_lists_merge_other_lists_replace() {
        let live = json!({"metadata": {}, "spec": {"containers": [{"name": "a", "image": "x"}], "args": ["1", "2"]}});
        let applied = json!({"spec": {"containers": [{"name": "b", "image": "y"}], "args": ["3"]}});
        let result = apply(&live, &applied, "m", false, "v1", NOW).unwrap();
        assert_eq!(result["spec"]["containers"].as_array().unwrap().len(), 2);
        assert_eq!(result["spec"]["args"], json!(["3"]));
    }
}
