//! `spec.ignoreDifferences`, as Argo CD's ignore normalizer applies it: each rule matches
//! resources by group and kind (`*` for any), and by name and namespace when set; what it names
//! is removed from both sides before the diff (from the desired object, the live one and its
//! last-applied configuration), a missing field being no error:
//!
//! - `jsonPointers`: the fields they point at;
//! - `jqPathExpressions`: what `del(EXPR)` deletes ([`crate::jq`]);
//! - `managedFieldsManagers`: the fields the live object's `managedFields` say those managers
//!   own (their FieldsV1 leaves; list elements found by key, as the API server records them).
//!
//! With `RespectIgnoreDifferences=true` a sync keeps those fields as live has them
//! ([`keep_live`]).

use serde_json::Value;
use sluice_api::ResourceIgnoreDifferences;
use sluice_patch::apply as fields;

use crate::{diff::LAST_APPLIED, jq, tracking::ResourceKey};

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

/// What the rules ignore in one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignored<'a> {
    /// `jsonPointers`.
    pub pointers: Vec<&'a str>,
    /// `jqPathExpressions`.
    pub jq: Vec<&'a str>,
    /// `managedFieldsManagers`.
    pub managers: Vec<&'a str>,
}

impl Ignored<'_> {
    /// Nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.pointers.is_empty() && self.jq.is_empty() && self.managers.is_empty()
    }

    /// The FieldsV1 paths the managers own in `live`.
    fn managed_paths(&self, live: &Value) -> Vec<Vec<String>> {
        if self.managers.is_empty() {
            return Vec::new();
        }
        live["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| {
                entry["manager"]
                    .as_str()
                    .is_some_and(|m| self.managers.contains(&m))
            })
            .flat_map(|entry| fields::from_fields_v1(&entry["fieldsV1"]))
            .collect()
    }

    /// Removes every ignored field from `object`, `managed` being the managers' paths.
    fn strip(&self, object: &mut Value, managed: &[Vec<String>]) {
        for pointer in &self.pointers {
            remove(object, pointer);
        }
        for expression in &self.jq {
            jq::delete(object, expression);
        }
        for path in managed {
            fields::remove(object, path);
        }
    }
}

/// What the rules ignore for `key`.
pub fn rules_for<'a>(rules: &'a [ResourceIgnoreDifferences], key: &ResourceKey) -> Ignored<'a> {
    let mut ignored = Ignored::default();
    for rule in rules.iter().filter(|rule| matches(rule, key)) {
        let strings = |list: &'a Option<Vec<String>>| list.iter().flatten().map(String::as_str);
        ignored.pointers.extend(strings(&rule.json_pointers));
        ignored.jq.extend(strings(&rule.jq_path_expressions));
        ignored
            .managers
            .extend(strings(&rule.managed_fields_managers));
    }
    ignored
}

/// Why the rules cannot be honoured, if they cannot: a jq expression that does not compile.
pub fn invalid(rules: &[ResourceIgnoreDifferences]) -> Option<String> {
    rules
        .iter()
        .flat_map(|rule| rule.jq_path_expressions.iter().flatten())
        .find_map(|expression| jq::check(expression).err())
        .map(|e| format!("ignoreDifferences: {e}"))
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
pub fn normalize(desired: &Value, live: &Value, ignored: &Ignored<'_>) -> (Value, Value) {
    let (mut desired, mut live) = (desired.clone(), live.clone());
    if ignored.is_empty() {
        return (desired, live);
    }
    let managed = ignored.managed_paths(&live);
    let applied = live["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .and_then(|t| serde_json::from_str::<Value>(t).ok());
    ignored.strip(&mut desired, &managed);
    ignored.strip(&mut live, &managed);
    if let Some(mut applied) = applied {
        ignored.strip(&mut applied, &managed);
        if live["metadata"]["annotations"].is_object() {
            live["metadata"]["annotations"][LAST_APPLIED] = Value::String(applied.to_string());
        }
    }
    (desired, live)
}

/// `desired` with the ignored fields as `live` has them (dropped when live has none), for a
/// sync with `RespectIgnoreDifferences=true`.
pub fn keep_live(desired: &Value, live: &Value, ignored: &Ignored<'_>) -> Value {
    let mut out = desired.clone();
    let mut pointers: Vec<String> = ignored.pointers.iter().map(|p| (*p).to_owned()).collect();
    for expression in &ignored.jq {
        // What the expression names on either side: taken from live, or dropped.
        let mut named = jq::pointers(live, expression);
        for pointer in jq::pointers(desired, expression) {
            if !named.contains(&pointer) {
                named.push(pointer);
            }
        }
        pointers.extend(named);
    }
    for pointer in &pointers {
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
    for path in ignored.managed_paths(live) {
        match fields::get(live, &path) {
            Some(value) => {
                fields::set(&mut out, &path, value.clone());
            }
            None => fields::remove(&mut out, &path),
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
            rules_for(&rules, &key("Deployment", "web")).pointers,
            ["/spec/replicas", "/metadata/labels/x"]
        );
        assert_eq!(
            rules_for(&rules, &key("Deployment", "api")).pointers,
            ["/spec/replicas"]
        );
        assert!(rules_for(&rules, &key("DaemonSet", "api")).is_empty());
    }

    #[test]
    fn ignored_fields_leave_both_sides_and_last_applied() {
        let desired = json!({"spec": {"replicas": 2, "template": {"a": 1}}});
        let applied = json!({"spec": {"replicas": 2, "template": {"a": 1}}});
        let live = json!({"metadata": {"annotations": {LAST_APPLIED: applied.to_string()}},
            "spec": {"replicas": 5, "template": {"a": 1}}});
        let ignored = Ignored {
            pointers: vec!["/spec/replicas", "/spec/missing/x"],
            ..Ignored::default()
        };
        let (d, l) = normalize(&desired, &live, &ignored);
        assert_eq!(d, json!({"spec": {"template": {"a": 1}}}));
        assert_eq!(l["spec"], json!({"template": {"a": 1}}));
        let kept: Value =
            serde_json::from_str(l["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap())
                .unwrap();
        assert_eq!(kept, json!({"spec": {"template": {"a": 1}}}));
        assert_eq!(keep_live(&desired, &live, &ignored)["spec"]["replicas"], 5);
        let escaped = json!({"metadata": {"annotations": {"a/b": "1", "c": "2"}}});
        let mut x = escaped.clone();
        remove(&mut x, "/metadata/annotations/a~1b");
        assert_eq!(x, json!({"metadata": {"annotations": {"c": "2"}}}));
    }

    fn deployment(replicas: u64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn jq_expressions_ignore_what_they_select_and_sync_keeps_it_from_live() {
        let ignored = Ignored {
            jq: vec![r#".spec.template.spec.containers[] | select(.name == "web") | .image"#],
            ..Ignored::default()
        };
        let (d, l) = normalize(&deployment(2, "web:2"), &deployment(2, "web:1"), &ignored);
        assert_eq!(d, l);
        let (d, l) = normalize(&deployment(3, "web:2"), &deployment(2, "web:1"), &ignored);
        assert_ne!(d, l);
        let kept = keep_live(&deployment(3, "web:2"), &deployment(2, "web:1"), &ignored);
        assert_eq!(kept, deployment(3, "web:1"));
    }

    #[test]
    fn managers_fields_are_ignored_by_their_managed_fields() {
        let mut live = deployment(5, "web:1");
        live["metadata"]["managedFields"] = json!([
            {"manager": "kubectl-client-side-apply", "operation": "Update",
             "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers":
                {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        ]);
        let ignored = Ignored {
            managers: vec!["kube-controller-manager"],
            ..Ignored::default()
        };
        let (d, l) = normalize(&deployment(2, "web:1"), &live, &ignored);
        assert_eq!(d["spec"], l["spec"]);
        assert!(d["spec"].get("replicas").is_none());
        let (d, l) = normalize(&deployment(2, "web:2"), &live, &ignored);
        assert_ne!(d["spec"], l["spec"]);
        let kept = keep_live(&deployment(2, "web:2"), &live, &ignored);
        assert_eq!(kept["spec"]["replicas"], 5);
        assert_eq!(
            kept["spec"]["template"],
            deployment(2, "web:2")["spec"]["template"]
        );
        // The other manager's list element is found by its key.
        let ignored = Ignored {
            managers: vec!["kubectl-client-side-apply"],
            ..Ignored::default()
        };
        let (d, l) = normalize(&deployment(5, "web:2"), &live, &ignored);
        assert_eq!(d["spec"], l["spec"]);
    }

    #[test]
    fn an_invalid_jq_expression_is_reported() {
        let jq = |expression: &str| ResourceIgnoreDifferences {
            kind: "Deployment".into(),
            jq_path_expressions: Some(vec![expression.into()]),
            ..Default::default()
        };
        assert_eq!(invalid(&[jq(".spec.replicas")]), None);
        assert!(invalid(&[jq(".spec[")]).unwrap().contains(".spec["));
        assert_eq!(invalid(&[rule("Deployment", None, &["/a"])]), None);
    }
}
