//! A Rollout's ReplicaSets as Argo names and numbers them: `<rollout>-<hash>`, the revision
//! annotation, and finding the ReplicaSet of the current template — by the hash label, else
//! (adopting what Argo Rollouts created: its hashes differ from sluice's) the ReplicaSet Argo
//! last recorded as current, when the Rollout has not changed since Argo saw it and that
//! ReplicaSet's template holds the whole template — so a team switches without a redeploy.
//! Also the ReplicaSet to create for a template. Pure: values in, values out.

use serde_json::{Map, Value, json};
use sluice_api::names::{annotation as annotations, label as labels};

/// The revision a ReplicaSet carries (`rollout.argoproj.io/revision`).
pub fn revision(replica_set: &Value) -> Option<i64> {
    replica_set["metadata"]["annotations"][annotations::REVISION]
        .as_str()?
        .parse()
        .ok()
}

/// The highest revision among `replica_sets` (0 when none has one).
pub fn max_revision(replica_sets: &[Value]) -> i64 {
    replica_sets.iter().filter_map(revision).max().unwrap_or(0)
}

/// Whether `actual` holds everything `desired` says: objects may have more fields (the API
/// server's defaults), lists have the same length, values are equal.
fn contains(actual: &Value, desired: &Value) -> bool {
    match (actual, desired) {
        (Value::Object(actual), Value::Object(desired)) => {
            desired.iter().all(|(key, want)| match actual.get(key) {
                Some(have) => contains(have, want),
                None => is_empty(want),
            })
        }
        (Value::Array(actual), Value::Array(desired)) => {
            actual.len() == desired.len() && actual.iter().zip(desired).all(|(a, d)| contains(a, d))
        }
        (actual, desired) => actual == desired,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

/// A ReplicaSet's pod template as the Rollout had it: without what the controller added —
/// the hash label, the role metadata its `ephemeral-metadata` annotation records, and the
/// anti-affinity terms against another version's hash. What `undo` puts back.
pub fn template_of(replica_set: &Value) -> Value {
    let mut template = replica_set["spec"]["template"].clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(labels::POD_TEMPLATE_HASH);
    }
    let injected: Value = replica_set["metadata"]["annotations"][annotations::EPHEMERAL_METADATA]
        .as_str()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    for field in ["labels", "annotations"] {
        let keys: Vec<String> = injected[field]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let found = template
            .pointer_mut(&format!("/metadata/{field}"))
            .and_then(Value::as_object_mut);
        if let Some(map) = found {
            for key in keys {
                map.remove(&key);
            }
            if map.is_empty() {
                template["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove(field));
            }
        }
    }
    let ours = |term: &Value| {
        let term = term.get("podAffinityTerm").unwrap_or(term);
        term["labelSelector"]["matchExpressions"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["key"] == labels::POD_TEMPLATE_HASH))
    };
    let anti = template
        .pointer_mut("/spec/affinity/podAntiAffinity")
        .and_then(Value::as_object_mut);
    if let Some(anti) = anti {
        for list in anti.values_mut() {
            if let Some(terms) = list.as_array_mut() {
                terms.retain(|t| !ours(t));
            }
        }
        anti.retain(|_, list| list.as_array().is_none_or(|l| !l.is_empty()));
        if anti.is_empty() {
            let affinity = template
                .pointer_mut("/spec/affinity")
                .and_then(Value::as_object_mut);
            if let Some(affinity) = affinity {
                affinity.remove("podAntiAffinity");
                if affinity.is_empty() {
                    template["spec"]
                        .as_object_mut()
                        .map(|s| s.remove("affinity"));
                }
            }
        }
    }
    template
}

/// The hash another controller recorded as current for `rollout` (`status.currentPodHash`),
/// when the Rollout has not changed since that controller observed it.
pub fn recorded_hash(rollout: &Value) -> Option<&str> {
    let generation = rollout["metadata"]["generation"].as_i64()?.to_string();
    let observed = rollout["status"]["observedGeneration"].as_str()?;
    (observed == generation)
        .then(|| rollout["status"]["currentPodHash"].as_str())
        .flatten()
}

/// The ReplicaSet that runs `template`: the one labelled with `hash`; else the one whose
/// template, less what the controller added, is `template` exactly (Argo's
/// `PodTemplateEqualIgnoreHash`: after an undo the Rollout holds the ReplicaSet's template with
/// the API server's defaults, which hashes differently); else the one labelled `recorded` (see
/// [`recorded_hash`]) if its template holds the whole of `template` (the API server may have
/// added defaults). Likeness alone is not enough: an older template that only had more fields
/// would pass for the current one.
pub fn find_current<'a>(
    replica_sets: &'a [Value],
    template: &Value,
    hash: &str,
    recorded: Option<&str>,
) -> Option<&'a Value> {
    let labelled = |h: &str| {
        replica_sets
            .iter()
            .find(|rs| rs["metadata"]["labels"][labels::POD_TEMPLATE_HASH] == h)
    };
    let same = |rs: &&Value| {
        let held = template_of(rs);
        contains(&held, template) && contains(template, &held)
    };
    labelled(hash)
        .or_else(|| replica_sets.iter().find(same))
        .or_else(|| labelled(recorded?).filter(|rs| contains(&template_of(rs), template)))
}

/// The name of the ReplicaSet of a Rollout for a hash.
pub fn name(rollout: &str, hash: &str) -> String {
    format!("{rollout}-{hash}")
}

/// Rollout annotations a ReplicaSet does not inherit.
const NOT_COPIED: [&str; 5] = [
    annotations::LAST_APPLIED_CONFIGURATION,
    annotations::REVISION,
    annotations::REVISION_HISTORY,
    annotations::DESIRED_REPLICAS,
    annotations::NOTIFIED,
];

/// The ReplicaSet to create for `rollout` (its JSON) running `template` under `hash`, at zero
/// replicas with revision `revision`.
pub fn desired(rollout: &Value, template: &Value, hash: &str, revision: i64) -> Value {
    let meta = &rollout["metadata"];
    let rollout_name = meta["name"].as_str().unwrap_or_default();
    let mut annotations: Map<String, Value> = meta["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let replicas = rollout["spec"]["replicas"].as_i64().unwrap_or(1);
    annotations.insert(annotations::REVISION.into(), json!(revision.to_string()));
    annotations.insert(
        annotations::DESIRED_REPLICAS.into(),
        json!(replicas.to_string()),
    );
    let mut template = template.clone();
    template["metadata"]["labels"][labels::POD_TEMPLATE_HASH] = json!(hash);
    let mut pod_labels = template["metadata"]["labels"].clone();
    pod_labels[labels::POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = rollout["spec"]["selector"].clone();
    selector["matchLabels"][labels::POD_TEMPLATE_HASH] = json!(hash);
    let mut spec = json!({"replicas": 0, "selector": selector, "template": template});
    if let Some(seconds) = rollout["spec"]["minReadySeconds"].as_i64() {
        spec["minReadySeconds"] = json!(seconds);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name(rollout_name, hash),
            "namespace": meta["namespace"],
            "labels": pod_labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": format!("{}/{}", sluice_api::names::GROUP, sluice_api::names::VERSION),
                "kind": "Rollout",
                "name": rollout_name,
                "uid": meta["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

/// Adds, to a ReplicaSet's pod `template`, Argo's anti-affinity term against the pods of
/// `hash` (the stable version): `preferred` with its weight, or `required`, on the node's
/// hostname — kept beside any affinity the template already has.
pub fn add_anti_affinity(template: &mut Value, preferred: Option<i32>, hash: &str) {
    let selector = json!({"matchExpressions": [{
        "key": labels::POD_TEMPLATE_HASH, "operator": "In", "values": [hash],
    }]});
    let term = json!({"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"});
    let (field, entry) = match preferred {
        Some(weight) => (
            "preferredDuringSchedulingIgnoredDuringExecution",
            json!({"weight": weight, "podAffinityTerm": term}),
        ),
        None => ("requiredDuringSchedulingIgnoredDuringExecution", term),
    };
    let list = &mut template["spec"]["affinity"]["podAntiAffinity"][field];
    match list.as_array_mut() {
        Some(items) => items.push(entry),
        None => *list = json!([entry]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_reconcile::hash::pod_template_hash;

    fn rollout() -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "shop", "uid": "u-1",
                "annotations": {"team": "web", "rollout.argoproj.io/revision": "3",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 3, "minReadySeconds": 5, "selector": {"matchLabels": {"app": "demo"}},
                "template": template("blue")}})
    }

    fn template(tag: &str) -> Value {
        json!({"metadata": {"labels": {"app": "demo"}},
            "spec": {"containers": [{"name": "demo", "image": format!("argoproj/rollouts-demo:{tag}")}]}})
    }

    #[test]
    fn the_replica_set_for_a_template_is_named_labelled_owned_and_numbered() {
        let hash = pod_template_hash(&template("blue"), None);
        let rs = desired(&rollout(), &template("blue"), &hash, 4);
        assert_eq!(rs["metadata"]["name"], format!("demo-{hash}"));
        assert_eq!(
            rs["metadata"]["labels"]["rollouts-pod-template-hash"],
            hash.as_str()
        );
        assert_eq!(
            rs["spec"]["selector"]["matchLabels"],
            json!({"app": "demo", "rollouts-pod-template-hash": hash})
        );
        assert_eq!(
            rs["spec"]["template"]["metadata"]["labels"]["rollouts-pod-template-hash"],
            hash.as_str()
        );
        assert_eq!(rs["spec"]["replicas"], 0);
        assert_eq!(rs["spec"]["minReadySeconds"], 5);
        let annotations = &rs["metadata"]["annotations"];
        assert_eq!(annotations["rollout.argoproj.io/revision"], "4");
        assert_eq!(annotations["rollout.argoproj.io/desired-replicas"], "3");
        assert_eq!(annotations["team"], "web");
        assert!(
            annotations
                .get("kubectl.kubernetes.io/last-applied-configuration")
                .is_none()
        );
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Rollout");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(revision(&rs), Some(4));
    }

    #[test]
    fn the_template_of_a_replica_set_is_the_rollouts_without_what_the_controller_added() {
        let mut rs = desired(&rollout(), &template("blue"), "abc", 2);
        add_anti_affinity(&mut rs["spec"]["template"], None, "old");
        rs["spec"]["template"]["metadata"]["labels"]["role"] = json!("active");
        rs["metadata"]["annotations"][annotations::EPHEMERAL_METADATA] =
            json!(r#"{"labels":{"role":"active"}}"#);
        assert_eq!(template_of(&rs), template("blue"));
    }

    #[test]
    fn anti_affinity_is_added_beside_the_templates_own() {
        let mut t = template("blue");
        t["spec"]["affinity"] = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5}]},
            "nodeAffinity": {"x": 1}});
        add_anti_affinity(&mut t, Some(100), "abc");
        let anti = &t["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(anti.as_array().unwrap().len(), 2);
        assert_eq!(anti[1]["weight"], 100);
        assert_eq!(
            anti[1]["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]["values"][0],
            "abc"
        );
        assert_eq!(t["spec"]["affinity"]["nodeAffinity"]["x"], 1);
        let mut t = template("blue");
        add_anti_affinity(&mut t, None, "abc");
        let required = &t["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(required[0]["topologyKey"], "kubernetes.io/hostname");
    }

    #[test]
    fn the_current_replica_set_is_found_by_hash_or_by_template() {
        let blue = pod_template_hash(&template("blue"), None);
        let ours = desired(&rollout(), &template("blue"), &blue, 1);
        // A ReplicaSet Argo made: another hash, and the API server's defaults in its template.
        let mut argos = desired(&rollout(), &template("yellow"), "6d9f8b7c5", 2);
        argos["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
            json!("IfNotPresent");
        argos["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        let sets = vec![ours.clone(), argos.clone()];
        assert_eq!(
            find_current(&sets, &template("blue"), &blue, None),
            Some(&ours)
        );
        let yellow = pod_template_hash(&template("yellow"), None);
        let recorded = Some("6d9f8b7c5");
        assert_eq!(
            find_current(&sets, &template("yellow"), &yellow, recorded),
            Some(&argos)
        );
        assert_eq!(
            find_current(&sets, &template("yellow"), &yellow, None),
            None,
            "not recorded"
        );
        assert_eq!(
            find_current(&sets, &template("green"), "x", recorded),
            None,
            "another template"
        );
        // After an undo the Rollout holds a ReplicaSet's template, defaults and all.
        let undone = template_of(&argos);
        let undone_hash = pod_template_hash(&undone, None);
        assert_eq!(
            find_current(&sets, &undone, &undone_hash, None),
            Some(&argos)
        );
        assert_eq!(max_revision(&sets), 2);
        let mut argo_rollout = rollout();
        argo_rollout["metadata"]["generation"] = json!(4);
        argo_rollout["status"] = json!({"observedGeneration": "4", "currentPodHash": "6d9f8b7c5"});
        assert_eq!(recorded_hash(&argo_rollout), Some("6d9f8b7c5"));
        argo_rollout["metadata"]["generation"] = json!(5);
        assert_eq!(
            recorded_hash(&argo_rollout),
            None,
            "changed since Argo saw it"
        );
    }
}
