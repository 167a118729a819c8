//! Three-way patches: the strategic merge patch `kubectl apply` computes from the configuration
//! it applied last time (the `kubectl.kubernetes.io/last-applied-configuration` annotation), the
//! configuration being applied now and the live object — and that Argo CD's default diff applies
//! to the live object to see what a sync would change.
//!
//! The rules are kubectl's: a field the desired configuration sets differently from the live
//! object is set; a field the last-applied configuration had and the desired one dropped is
//! deleted (`null`); a field only the live object has (defaulted by the server, or set by another
//! manager) is kept. Lists with a merge key (see [`strategic`](crate::strategic)) are diffed
//! element by element — an element dropped since last time becomes `{"$patch": "delete"}` — and
//! other lists are replaced whole; set-like lists (`finalizers`) add what is new and drop what the
//! last-applied configuration had through `$deleteFromPrimitiveList`. Unlike kubectl, no
//! `$setElementOrder` is sent: elements the live object already has keep their place.

use serde_json::{Map, Value, json};

use crate::strategic::{merge_key_for, merges_as_set};

/// The strategic merge patch that takes `live` to `desired`, deleting what `last_applied` set
/// and `desired` no longer does (`None` when nothing was applied before). An empty object when
/// the live object already matches.
pub fn three_way(last_applied: Option<&Value>, desired: &Value, live: &Value) -> Value {
    let empty = Map::new();
    let original = last_applied.and_then(Value::as_object).unwrap_or(&empty);
    match (desired.as_object(), live.as_object()) {
        (Some(desired), Some(live)) => Value::Object(diff_map(original, desired, live)),
        _ if desired == live => json!({}),
        _ => desired.clone(),
    }
}

fn diff_map(
    original: &Map<String, Value>,
    desired: &Map<String, Value>,
    live: &Map<String, Value>,
) -> Map<String, Value> {
    let empty = Map::new();
    let mut patch = Map::new();
    for (field, want) in desired {
        let Some(have) = live.get(field) else {
            if !want.is_null() {
                patch.insert(field.clone(), want.clone());
            }
            continue;
        };
        let before = original.get(field);
        match (want, have) {
            (Value::Object(want), Value::Object(have)) => {
                let before = before.and_then(Value::as_object).unwrap_or(&empty);
                let sub = diff_map(before, want, have);
                if !sub.is_empty() {
                    patch.insert(field.clone(), Value::Object(sub));
                }
            }
            (Value::Array(want), Value::Array(have)) => {
                let before = before
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                diff_list(field, before, want, have, &mut patch);
            }
            (want, have) if want != have => {
                patch.insert(field.clone(), want.clone());
            }
            _ => {}
        }
    }
    for field in original.keys() {
        if !desired.contains_key(field) && live.contains_key(field) {
            patch.insert(field.clone(), Value::Null);
        }
    }
    patch
}

/// The merge key of a list, when every element of all three versions has it.
fn keyed(field: &str, lists: [&[Value]; 3]) -> Option<&'static str> {
    let elements: Vec<&Value> = lists.iter().flat_map(|l| l.iter()).collect();
    let key = merge_key_for(field, &elements)?;
    elements.iter().all(|e| e.get(key).is_some()).then_some(key)
}

fn diff_list(
    field: &str,
    original: &[Value],
    desired: &[Value],
    live: &[Value],
    patch: &mut Map<String, Value>,
) {
    if merges_as_set(field) {
        let added: Vec<Value> = desired
            .iter()
            .filter(|v| !live.contains(v))
            .cloned()
            .collect();
        let dropped: Vec<Value> = original
            .iter()
            .filter(|v| !desired.contains(v) && live.contains(v))
            .cloned()
            .collect();
        if !added.is_empty() {
            patch.insert(field.to_owned(), Value::Array(added));
        }
        if !dropped.is_empty() {
            patch.insert(
                format!("$deleteFromPrimitiveList/{field}"),
                Value::Array(dropped),
            );
        }
        return;
    }
    let Some(key) = keyed(field, [original, desired, live]) else {
        if desired != live {
            patch.insert(field.to_owned(), Value::Array(desired.to_vec()));
        }
        return;
    };
    let find = |list: &[Value], id: &Value| list.iter().find(|e| e.get(key) == Some(id)).cloned();
    let empty = Map::new();
    let mut elements = Vec::new();
    for want in desired {
        let id = &want[key];
        match find(live, id) {
            None => elements.push(want.clone()),
            Some(have) => {
                let before = find(original, id);
                let before = before.as_ref().and_then(Value::as_object).unwrap_or(&empty);
                let (Some(want_map), Some(have_map)) = (want.as_object(), have.as_object()) else {
                    continue;
                };
                let mut sub = diff_map(before, want_map, have_map);
                if !sub.is_empty() {
                    sub.insert(key.to_owned(), id.clone());
                    elements.push(Value::Object(sub));
                }
            }
        }
    }
    for was in original {
        let id = &was[key];
        if find(desired, id).is_none() && find(live, id).is_some() {
            elements.push(json!({key: id, "$patch": "delete"}));
        }
    }
    if !elements.is_empty() {
        patch.insert(field.to_owned(), Value::Array(elements));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::three_way;
    use crate::strategic;

    struct Case {
        name: &'static str,
        last_applied: Option<Value>,
        desired: Value,
        live: Value,
        patch: Value,
        after: Value,
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "in sync: empty patch",
                last_applied: Some(json!({"spec": {"replicas": 2}})),
                desired: json!({"spec": {"replicas": 2}}),
                live: json!({"spec": {"replicas": 2, "paused": false}}),
                patch: json!({}),
                after: json!({"spec": {"replicas": 2, "paused": false}}),
            },
            Case {
                name: "changed field is set",
                last_applied: Some(json!({"spec": {"replicas": 2}})),
                desired: json!({"spec": {"replicas": 3}}),
                live: json!({"spec": {"replicas": 2}}),
                patch: json!({"spec": {"replicas": 3}}),
                after: json!({"spec": {"replicas": 3}}),
            },
            Case {
                name: "field removed from desired that was in last-applied is deleted",
                last_applied: Some(
                    json!({"metadata": {"labels": {"app": "web", "tier": "front"}}}),
                ),
                desired: json!({"metadata": {"labels": {"app": "web"}}}),
                live: json!({"metadata": {"labels": {"app": "web", "tier": "front"}}}),
                patch: json!({"metadata": {"labels": {"tier": null}}}),
                after: json!({"metadata": {"labels": {"app": "web"}}}),
            },
            Case {
                name: "field only in live (another manager) is kept",
                last_applied: Some(json!({"metadata": {"labels": {"app": "web"}}})),
                desired: json!({"metadata": {"labels": {"app": "web"}}}),
                live: json!({"metadata": {"labels": {"app": "web", "team": "ops"}}}),
                patch: json!({}),
                after: json!({"metadata": {"labels": {"app": "web", "team": "ops"}}}),
            },
            Case {
                name: "no last-applied: nothing is deleted",
                last_applied: None,
                desired: json!({"spec": {"replicas": 1}}),
                live: json!({"spec": {"replicas": 1, "paused": true}}),
                patch: json!({}),
                after: json!({"spec": {"replicas": 1, "paused": true}}),
            },
            Case {
                name: "list with a merge key is merged by key",
                last_applied: Some(json!({"spec": {"containers": [
                    {"name": "app", "image": "web:1"}, {"name": "log", "image": "log:1"}]}})),
                desired: json!({"spec": {"containers": [
                    {"name": "app", "image": "web:2"}, {"name": "new", "image": "new:1"}]}}),
                live: json!({"spec": {"containers": [
                    {"name": "app", "image": "web:1", "imagePullPolicy": "Always"},
                    {"name": "log", "image": "log:1"},
                    {"name": "mesh", "image": "proxy:1"}]}}),
                patch: json!({"spec": {"containers": [
                    {"name": "app", "image": "web:2"},
                    {"name": "new", "image": "new:1"},
                    {"name": "log", "$patch": "delete"}]}}),
                after: json!({"spec": {"containers": [
                    {"name": "app", "image": "web:2", "imagePullPolicy": "Always"},
                    {"name": "mesh", "image": "proxy:1"},
                    {"name": "new", "image": "new:1"}]}}),
            },
            Case {
                name: "list without a merge key is replaced",
                last_applied: Some(json!({"spec": {"args": ["a", "b"]}})),
                desired: json!({"spec": {"args": ["a"]}}),
                live: json!({"spec": {"args": ["a", "b"]}}),
                patch: json!({"spec": {"args": ["a"]}}),
                after: json!({"spec": {"args": ["a"]}}),
            },
            Case {
                name: "set-like list adds and drops what it applied",
                last_applied: Some(json!({"metadata": {"finalizers": ["a/x"]}})),
                desired: json!({"metadata": {"finalizers": ["a/y"]}}),
                live: json!({"metadata": {"finalizers": ["a/x", "other/z"]}}),
                patch: json!({"metadata": {"finalizers": ["a/y"], "$deleteFromPrimitiveList/finalizers": ["a/x"]}}),
                after: json!({"metadata": {"finalizers": ["other/z", "a/y"]}}),
            },
        ]
    }

    #[test]
    fn three_way_patches() {
        for case in cases() {
            let patch = three_way(case.last_applied.as_ref(), &case.desired, &case.live);
            assert_eq!(patch, case.patch, "{}: patch", case.name);
            let mut after = case.live.clone();
            strategic::apply(&mut after, &patch).unwrap();
            assert_eq!(after, case.after, "{}: patched live object", case.name);
        }
    }
}
