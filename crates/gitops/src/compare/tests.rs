//! Comparisons over hand-made live states.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

fn manifest(object: Value) -> Manifest {
    Manifest {
        object,
        file: "m.yaml".into(),
    }
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": name}}})
}

fn scope(_: &str, kind: &str) -> Scope {
    match kind {
        "Service" | "ConfigMap" => Scope::Namespaced,
        "Namespace" | "CustomResourceDefinition" => Scope::Cluster,
        _ => Scope::Unknown,
    }
}

fn run(
    manifests: &[Manifest],
    live: &HashMap<ResourceKey, Value>,
    skip: bool,
) -> Result<Comparison, CompareError> {
    let managed = live
        .iter()
        .filter(|(_, v)| tracking::owning_app(v).as_deref() == Some("app"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    compare(Inputs {
        app: "app",
        namespace: "demo",
        manifests,
        skip_missing_kinds: skip,
        scope: &scope,
        live: &|key| live.get(key).cloned(),
        managed,
        ignore: &[],
        application_health: false,
        predicted: &|_| None,
    })
}

/// The live object a sync of `manifest` leaves.
fn applied(manifest: &Value) -> (ResourceKey, Value) {
    let (key, mut object) = prepare(manifest, "app", "demo", Scope::Namespaced);
    let text = object.to_string();
    object["metadata"]["annotations"][crate::diff::LAST_APPLIED] = json!(text);
    (key, object)
}

#[test]
fn missing_objects_are_out_of_sync_and_missing_then_synced_once_applied() {
    let manifests = [manifest(service("a"))];
    let empty = run(&manifests, &HashMap::new(), false).unwrap();
    assert!(!empty.synced());
    assert_eq!(
        empty.resources[0].health.as_ref().unwrap().code,
        HealthCode::Missing
    );
    assert_eq!(empty.health().0, HealthCode::Missing);
    let target = empty.resources[0].target.clone().unwrap();
    assert_eq!(target["metadata"]["namespace"], "demo");
    assert_eq!(
        target["metadata"]["annotations"][TRACKING_ID],
        "app:/Service:demo/a"
    );

    let live = HashMap::from([applied(&service("a"))]);
    let synced = run(&manifests, &live, false).unwrap();
    assert!(synced.synced(), "{synced:?}");
    assert_eq!(synced.health().0, HealthCode::Healthy);
}

#[test]
fn tracked_objects_git_dropped_require_pruning() {
    let live = HashMap::from([applied(&service("a")), applied(&service("old"))]);
    let c = run(&[manifest(service("a"))], &live, false).unwrap();
    let old = c.resources.iter().find(|r| r.key.name == "old").unwrap();
    assert!(old.requires_pruning && old.out_of_sync && old.target.is_none());
    assert!(!c.synced());
}

#[test]
fn unknown_kinds_fail_unless_their_crd_comes_along_or_the_option_says_skip() {
    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let err = run(&[manifest(widget.clone())], &HashMap::new(), false).unwrap_err();
    assert!(err.to_string().contains("m.yaml: Widget \"w\""), "{err}");
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}}});
    let with_crd = run(
        &[manifest(crd), manifest(widget.clone())],
        &HashMap::new(),
        false,
    )
    .unwrap();
    assert!(with_crd.resources.iter().any(|r| r.kind_unknown));
    assert!(run(&[manifest(widget)], &HashMap::new(), true).is_ok());
}

#[test]
fn cluster_scoped_objects_have_no_namespace_and_repeats_warn() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "namespace": "x"}});
    let c = run(
        &[manifest(ns), manifest(service("a")), manifest(service("a"))],
        &HashMap::new(),
        false,
    )
    .unwrap();
    let ns = c
        .resources
        .iter()
        .find(|r| r.key.kind == "Namespace")
        .unwrap();
    assert_eq!(ns.key.namespace, "");
    assert!(
        ns.target.as_ref().unwrap()["metadata"]
            .get("namespace")
            .is_none()
    );
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].0, "RepeatedResourceWarning");
}

#[test]
fn an_object_another_app_tracks_is_a_shared_resource() {
    let (key, mut live) = applied(&service("a"));
    live["metadata"]["annotations"][TRACKING_ID] = json!("other:/Service:demo/a");
    let c = run(
        &[manifest(service("a"))],
        &HashMap::from([(key, live)]),
        false,
    )
    .unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|(kind, _)| *kind == "SharedResourceWarning")
    );
}
