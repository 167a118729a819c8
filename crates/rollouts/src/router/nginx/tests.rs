//! Object-level tables of the NGINX router: the canary Ingress it creates and patches for each
//! weight, with several stable Ingresses, the user's annotations, header routes, hand edits,
//! and what it verifies.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Value, json};
use sluice_api::{CanaryStrategy, SetHeaderRoute, names::annotation};

use super::*;

fn strategy(nginx: Value) -> CanaryStrategy {
    serde_json::from_value(json!({
        "canaryService": "checkout-canary", "stableService": "checkout-stable",
        "trafficRouting": {"nginx": nginx},
        "steps": [{"setWeight": 10}],
    }))
    .unwrap()
}

fn ingress(name: &str, extra: Value) -> Arc<Ingress> {
    let mut value = json!({
        "metadata": {"name": name, "namespace": "shop",
            "annotations": {"kubernetes.io/ingress.class": "nginx", "other": "kept-out"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example"], "secretName": "tls"}],
            "rules": [
                {"host": "shop.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "checkout-stable", "port": {"number": 80}}}}]}},
                {"host": "other.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "unrelated", "port": {"number": 80}}}}]}},
            ],
        },
    });
    merge(&mut value, extra);
    Arc::new(serde_json::from_value(value).unwrap())
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn owner() -> Owner {
    Owner {
        name: "checkout".into(),
        namespace: "shop".into(),
        uid: "uid-1".into(),
    }
}

fn router(spec: &CanaryStrategy, pairs: Vec<IngressPair>) -> Nginx {
    let nginx = spec
        .traffic_routing
        .as_ref()
        .unwrap()
        .nginx
        .as_ref()
        .unwrap();
    Nginx::new(owner(), spec, nginx, pairs).unwrap()
}

/// The canary Ingress after `write` (created, or `live` patched), as the API would hold it.
fn apply(live: Option<&Arc<Ingress>>, write: &RouteWrite) -> Arc<Ingress> {
    match write {
        RouteWrite::CreateIngress { object, .. } => {
            Arc::new(serde_json::from_value(object.clone()).unwrap())
        }
        RouteWrite::PatchIngress { patch, .. } => {
            let mut value = serde_json::to_value(live.unwrap().as_ref()).unwrap();
            json_patch::merge(&mut value, patch);
            Arc::new(serde_json::from_value(value).unwrap())
        }
    }
}

fn canary_annotations(ingress: &Ingress) -> Vec<(String, String)> {
    ingress
        .annotations()
        .iter()
        .filter(|(k, _)| k.starts_with("nginx.ingress.kubernetes.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn weights_move_the_canary_ingress_and_its_rules_follow_the_stable_service() {
    let spec = strategy(json!({"stableIngress": "checkout"}));
    let stable = ingress("checkout", json!({}));
    let mut live: Option<Arc<Ingress>> = None;
    for (weight, event) in [
        (10, "CreatingCanaryIngress"),
        (50, "PatchingCanaryIngress"),
        (100, "PatchingCanaryIngress"),
        (0, "PatchingCanaryIngress"),
    ] {
        let pair = IngressPair {
            stable: stable.clone(),
            canary: live.clone(),
        };
        let mut nginx = router(&spec, vec![pair]);
        nginx.set_weight(weight);
        let writes = nginx.writes();
        assert_eq!(writes.len(), 1, "weight {weight}");
        let (RouteWrite::CreateIngress { event: e, .. }
        | RouteWrite::PatchIngress { event: e, .. }) = &writes[0];
        assert_eq!(e.0, event);
        let canary = apply(live.as_ref(), &writes[0]);
        assert_eq!(canary.name_any(), "checkout-checkout-canary");
        assert_eq!(
            canary_annotations(&canary),
            [
                (
                    "nginx.ingress.kubernetes.io/canary".to_owned(),
                    "true".to_owned()
                ),
                (
                    "nginx.ingress.kubernetes.io/canary-weight".to_owned(),
                    weight.to_string()
                ),
            ]
        );
        // Class, TLS and only the rule of the stable Service, now to the canary Service.
        let spec = canary.spec.as_ref().unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        assert_eq!(spec.tls.as_ref().unwrap().len(), 1);
        let rules = spec.rules.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        let backend = &rules[0].http.as_ref().unwrap().paths[0].backend;
        assert_eq!(backend.service.as_ref().unwrap().name, "checkout-canary");
        assert_eq!(canary.annotations()["kubernetes.io/ingress.class"], "nginx");
        assert!(!canary.annotations().contains_key("other"));
        let owner = &canary.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Rollout", "uid-1")
        );
        live = Some(canary);
    }
    // Told the same again: nothing to write.
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable,
            canary: live,
        }],
    );
    nginx.set_weight(0);
    assert!(nginx.writes().is_empty());
}

#[test]
fn several_stable_ingresses_get_a_canary_ingress_each() {
    let spec = strategy(json!({"stableIngresses": ["checkout", "checkout-internal"]}));
    let pairs = ["checkout", "checkout-internal"]
        .map(|name| IngressPair {
            stable: ingress(name, json!({})),
            canary: None,
        })
        .to_vec();
    let mut nginx = router(&spec, pairs);
    nginx.set_weight(30);
    let names: Vec<String> = nginx
        .writes()
        .iter()
        .map(|w| match w {
            RouteWrite::CreateIngress { name, .. } | RouteWrite::PatchIngress { name, .. } => {
                name.clone()
            }
        })
        .collect();
    assert_eq!(
        names,
        [
            "checkout-checkout-canary",
            "checkout-checkout-internal-canary"
        ]
    );
}

#[test]
fn the_users_annotations_the_prefix_and_the_weight_total_are_written() {
    let mut spec = strategy(json!({
        "stableIngress": "checkout",
        "annotationPrefix": "custom.nginx.org",
        "additionalIngressAnnotations": {"canary-by-header": "X-Canary", "custom.nginx.org/load-balance": "ewma"},
        "canaryIngressAnnotations": {"team": "payments"},
    }));
    spec.traffic_routing.as_mut().unwrap().max_traffic_weight = Some(1000);
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable: ingress("checkout", json!({})),
            canary: None,
        }],
    );
    nginx.set_weight(250);
    // The user's header rule wins over a header route.
    let route: SetHeaderRoute = serde_json::from_value(json!({"name": "r",
        "match": [{"headerName": "X-Other", "headerValue": {"exact": "1"}}]}))
    .unwrap();
    assert_eq!(nginx.set_header_route(&route), Support::Done);
    let canary = apply(None, &nginx.writes()[0]);
    let a = canary.annotations();
    assert_eq!(a["custom.nginx.org/canary"], "true");
    assert_eq!(a["custom.nginx.org/canary-weight"], "250");
    assert_eq!(a["custom.nginx.org/canary-weight-total"], "1000");
    assert_eq!(a["custom.nginx.org/canary-by-header"], "X-Canary");
    assert!(!a.contains_key("custom.nginx.org/canary-by-header-value"));
    assert_eq!(a["custom.nginx.org/load-balance"], "ewma");
    assert_eq!(a["team"], "payments");
}

#[test]
fn header_routes_become_canary_by_header_and_what_nginx_cannot_express_is_refused() {
    let spec = strategy(json!({"stableIngress": "checkout"}));
    let route = |matches: Value| -> SetHeaderRoute {
        serde_json::from_value(json!({"name": "canary-header", "match": matches})).unwrap()
    };
    let fresh = || {
        router(
            &spec,
            vec![IngressPair {
                stable: ingress("checkout", json!({})),
                canary: None,
            }],
        )
    };
    for (value, key, expected) in [
        (json!({"exact": "yes"}), "canary-by-header-value", "yes"),
        (
            json!({"regex": "^(yes|y)$"}),
            "canary-by-header-pattern",
            "^(yes|y)$",
        ),
        (
            json!({"prefix": "v1.2"}),
            "canary-by-header-pattern",
            "^v1\\.2",
        ),
    ] {
        let mut nginx = fresh();
        let said = nginx.set_header_route(&route(
            json!([{"headerName": "X-Canary", "headerValue": value}]),
        ));
        assert_eq!(said, Support::Done);
        let canary = apply(None, &nginx.writes()[0]);
        let a = canary.annotations();
        assert_eq!(
            a["nginx.ingress.kubernetes.io/canary-by-header"],
            "X-Canary"
        );
        assert_eq!(a[&format!("nginx.ingress.kubernetes.io/{key}")], expected);
    }
    let mut nginx = fresh();
    let two = route(json!([
        {"headerName": "A", "headerValue": {"exact": "1"}},
        {"headerName": "B", "headerValue": {"exact": "2"}}]));
    assert!(matches!(
        nginx.set_header_route(&two),
        Support::Unsupported(_)
    ));
    let mirror =
        serde_json::from_value(json!({"name": "m", "match": [{"method": {"exact": "GET"}}]}))
            .unwrap();
    assert!(matches!(
        nginx.set_mirror_route(&mirror),
        Support::Unsupported(_)
    ));
    let canary = apply(None, &nginx.writes()[0]);
    assert!(
        !canary
            .annotations()
            .contains_key("nginx.ingress.kubernetes.io/canary-by-header")
    );
}

#[test]
fn a_hand_edited_canary_ingress_is_put_back_and_foreign_annotations_stay() {
    let spec = strategy(json!({"stableIngress": "checkout"}));
    let stable = ingress("checkout", json!({}));
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable: stable.clone(),
            canary: None,
        }],
    );
    nginx.set_weight(10);
    let canary = apply(None, &nginx.writes()[0]);
    let mut edited = serde_json::to_value(canary.as_ref()).unwrap();
    merge(
        &mut edited,
        json!({"metadata": {"annotations": {
        "nginx.ingress.kubernetes.io/canary-weight": "90",
        "nginx.ingress.kubernetes.io/canary-by-cookie": "always",
        "rancher.io/owned": "x"}},
        "spec": {"rules": []}}),
    );
    let edited: Arc<Ingress> = Arc::new(serde_json::from_value(edited).unwrap());
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable,
            canary: Some(edited.clone()),
        }],
    );
    nginx.set_weight(10);
    let restored = apply(Some(&edited), &nginx.writes()[0]);
    assert_eq!(canary_annotations(&restored), canary_annotations(&canary));
    assert_eq!(restored.spec, canary.spec);
    assert_eq!(restored.annotations()["rancher.io/owned"], "x");
}

#[test]
fn a_stable_ingress_without_the_stable_service_or_a_foreign_canary_ingress_is_an_error() {
    let spec = strategy(json!({"stableIngress": "checkout"}));
    let nginx = spec
        .traffic_routing
        .as_ref()
        .unwrap()
        .nginx
        .as_ref()
        .unwrap();
    let wrong = ingress(
        "checkout",
        json!({"spec": {"rules": [{"host": "x", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "elsewhere", "port": {"number": 80}}}}]}}]}}),
    );
    let err = Nginx::new(
        owner(),
        &spec,
        nginx,
        vec![IngressPair {
            stable: wrong,
            canary: None,
        }],
    )
    .unwrap_err();
    assert_eq!(
        err,
        (
            "checkout".to_owned(),
            "ingress `checkout` has no rules using service checkout-stable backend".to_owned()
        )
    );
    let foreign = ingress(
        "checkout-checkout-canary",
        json!({"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "other", "controller": true}]}}),
    );
    let pair = IngressPair {
        stable: ingress("checkout", json!({})),
        canary: Some(foreign),
    };
    let err = Nginx::new(owner(), &spec, nginx, vec![pair]).unwrap_err();
    assert!(err.1.contains("controlled by different object"), "{err:?}");
}

#[test]
fn weights_are_verified_only_where_the_data_plane_reports_back() {
    let spec = strategy(json!({"stableIngress": "checkout"}));
    let plain = ingress("checkout", json!({}));
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable: plain,
            canary: None,
        }],
    );
    nginx.set_weight(10);
    assert_eq!(nginx.verify_weight(), None, "ingress-nginx reports nothing");

    let reporting = ingress(
        "checkout",
        json!({"metadata": {"annotations": {annotation::SERVED_GENERATION: "1"}}}),
    );
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable: reporting.clone(),
            canary: None,
        }],
    );
    nginx.set_weight(10);
    assert_eq!(nginx.verify_weight(), Some(false), "not created yet");
    let written = apply(None, &nginx.writes()[0]);
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable: reporting.clone(),
            canary: Some(written.clone()),
        }],
    );
    nginx.set_weight(10);
    assert_eq!(
        nginx.verify_weight(),
        Some(false),
        "written, not yet served"
    );
    let version = written.annotations()[annotation::ROUTE_VERSION].clone();
    let mut served = serde_json::to_value(written.as_ref()).unwrap();
    served["metadata"]["annotations"][annotation::SERVED_ROUTE_VERSION] = json!(version);
    let served: Arc<Ingress> = Arc::new(serde_json::from_value(served).unwrap());
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable: reporting.clone(),
            canary: Some(served.clone()),
        }],
    );
    nginx.set_weight(10);
    assert_eq!(nginx.verify_weight(), Some(true));
    assert!(
        nginx.writes().is_empty(),
        "the data plane's mark is not undone"
    );
    // The next weight is not served until reported again.
    let mut nginx = router(
        &spec,
        vec![IngressPair {
            stable: reporting,
            canary: Some(served),
        }],
    );
    nginx.set_weight(50);
    assert_eq!(nginx.verify_weight(), Some(false));
}
