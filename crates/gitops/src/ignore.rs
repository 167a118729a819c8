//! `spec.ignoreDifferences` by JSON pointer, as Argo CD's ignore normalizer applies it: each
//! rule matches resources by group and kind (`*` for any), and by name and namespace when
//! set; the fields its `jsonPointers` name are removed from both sides before the diff (from
//! the desired object, the live one and its last-applied configuration), a missing field being
//! no error. With `RespectIgnoreDifferences=true` a sync keeps those fields as live has them
//! ([`keep_live`]).
//!
//! `jqPathExpressions` and `managedFieldsManagers` are not supported: a rule that uses them is
//! reported ([`unsupported`]) as a ComparisonError rather than silently ignored.

use serde_json::Value;
use sluice_api::ResourceIgnoreDifferences;

use crate::{diff::LAST_APPLIED, tracking::ResourceKey};

fn matches(rule: &ResourceIgnoreDifferences, key: &ResourceKey) -> bool {
    let any_or = |pattern: &str, value: &str| pattern == "*" || pattern == value;
    any_or(rule.group.as_deref().unwrap_or_default(), &key.group)
        && any_or(&rule.kind, &key.kind)
        && rule
            .name
            .as_deref()
            .is_none_or(|n| n.is_empty() || n == key.name)
        && rule
            .namespace
            .as_deref()
            .is_none_or(|n| n.is_empty() || n == key.namespace)
}

/// The JSON pointers the rules ignore for `key`.
pub fn pointers<'a>(rules: &'a [ResourceIgnoreDifferences], key: &ResourceKey) -> Vec<&'a str> {
    rules
        .iter()
        .filter(|rule| matches(rule, key))
        .flat_map(|rule| rule.json_pointers.iter().flatten())
        .map(String::as_str)
        .collect()
}

/// Why the rules cannot be honoured, if they cannot.
pub fn unsupported(rules: &[ResourceIgnoreDifferences]) -> Option<String> {
    rules.iter().find_map(|rule| {
        let what = if rule
            .jq_path_expressions
            .as_ref()
            .is_some_and(|j| !j.is_empty())
        {
            "jqPathExpressions"
        } else if rule
            .managed_fields_managers
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        {
            "managedFieldsManagers"
        } else {
            return None;
        };
        Some(format!(
            "ignoreDifferences of {}: {what} are not supported by sluice yet (use jsonPointers)",
            rule.kind
        ))
    })
}

fn tokens(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// The parent of the field `pointer` names, and the field's token.
fn parent<'a>(object: &'a mut Value, pointer: &str) -> Option<(&'a mut Value, String)> {
    let mut tokens = tokens(pointer)?;
    let last = tokens.pop()?;
    let mut at = object;
    for token in tokens {
        at = match at {
            Value::Object(map) => map.get_mut(&token)?,
            Value::Array(list) => list.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some((at, last))
}

/// Removes the field `pointer` names (nothing when absent).
pub fn remove(object: &mut Value, pointer: &str) {
    match parent(object, pointer) {
        Some((Value::Object(map), last)) => {
            map.remove(&last);
        }
        Some((Value::Array(list), last)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < list.len()
            {
                list.remove(i);
            }
        }
        _ => {}
    }
}

/// `desired` and `live` with the ignored fields removed (live's last-applied too), to diff.
pub fn normalize(desired: &Value, live: &Value, pointers: &[&str]) -> (Value, Value) {
    let (mut desired, mut live) = (desired.clone(), live.clone());
    if pointers.is_empty() {
        return (desired, live);
    }
    let applied = live["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .and_then(|t| serde_json::from_str::<Value>(t).ok());
    for pointer in pointers {
        remove(&mut desired, pointer);
        remove(&mut live, pointer);
    }
    if let Some(mut applied) = applied {
        for pointer in pointers {
            remove(&mut applied, pointer);
        }
        if live["metadata"]["annotations"].is_object() {
            live["metadata"]["annotations"][LAST_APPLIED] = Value::String(applied.to_string());
        }
    }
    (desired, live)
}

/// `desired` with the ignored fields as `live` has them (dropped when live has none), for a
/// sync with `RespectIgnoreDifferences=true`.
pub fn keep_live(desired: &Value, live: &Value, pointers: &[&str]) -> Value {
    let mut out = desired.clone();
    for pointer in pointers {
        match live.pointer(pointer) {
            Some(value) => {
                if let Some((parent, last)) = parent(&mut out, pointer) {
                    match parent {
                        Value::Object(map) => {
                            map.insert(last, value.clone());
                        }
                        Value::Array(list) => {
                            if let Ok(i) = last.parse::<usize>()
                                && i < list.len()
                            {
                                list[i] = value.clone();
                            }
                        }
                        _ => {}
                    }
                }
            }
            None => remove(&mut out, pointer),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(kind: &str, name: &str) -> ResourceKey {
        ResourceKey {
            group: "apps".into(),
            kind: kind.into(),
            namespace: "demo".into(),
            name: name.into(),
        }
    }

    fn rule(kind: &str, name: Option<&str>, pointers: &[&str]) -> ResourceIgnoreDifferences {
        ResourceIgnoreDifferences {
            group: Some("apps".into()),
            kind: kind.into(),
            name: name.map(str::to_owned),
            json_pointers: Some(pointers.iter().map(|p| p.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_group_kind_name_and_namespace() {
        let rules = [
            rule("Deployment", None, &["/spec/replicas"]),
            rule("*", Some("web"), &["/metadata/labels/x"]),
            rule("StatefulSet", None, &["/spec/x"]),
        ];
        assert_eq!(
            pointers(&rules, &key("Deployment", "web")),
            ["/spec/replicas", "/metadata/labels/x"]
        );
        assert_eq!(
            pointers(&rules, &key("Deployment", "api")),
            ["/spec/replicas"]
        );
        assert!(pointers(&rules, &key("DaemonSet", "api")).is_empty());
    }

    #[test]
    fn ignored_fields_leave_both_sides_and_last_applied() {
        let desired = json!({"spec": {"replicas": 2, "template": {"a": 1}}});
        let applied = json!({"spec": {"replicas": 2, "template": {"a": 1}}});
        let live = json!({"metadata": {"annotations": {LAST_APPLIED: applied.to_string()}},
            "spec": {"replicas": 5, "template": {"a": 1}}});
        let (d, l) = normalize(&desired, &live, &["/spec/replicas", "/spec/missing/x"]);
        assert_eq!(d, json!({"spec": {"template": {"a": 1}}}));
        assert_eq!(l["spec"], json!({"template": {"a": 1}}));
        let kept: Value =
            serde_json::from_str(l["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap())
                .unwrap();
        assert_eq!(kept, json!({"spec": {"template": {"a": 1}}}));
        assert_eq!(
            keep_live(&desired, &live, &["/spec/replicas"])["spec"]["replicas"],
            5
        );
        let escaped = json!({"metadata": {"annotations": {"a/b": "1", "c": "2"}}});
        let mut x = escaped.clone();
        remove(&mut x, "/metadata/annotations/a~1b");
        assert_eq!(x, json!({"metadata": {"annotations": {"c": "2"}}}));
    }

    #[test]
    fn jq_and_managers_are_reported_not_ignored() {
        let jq = ResourceIgnoreDifferences {
            kind: "Deployment".into(),
            jq_path_expressions: Some(vec![".spec.replicas".into()]),
            ..Default::default()
        };
        assert!(unsupported(&[jq]).unwrap().contains("jqPathExpressions"));
        assert_eq!(unsupported(&[rule("Deployment", None, &["/a"])]), None);
    }
}
