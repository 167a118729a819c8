//! Validation of the Services and Ingresses a Rollout names (Argo's
//! `ValidateRolloutReferencedResources` for those two kinds): a Service's selector must match
//! the pod template's labels and no other Rollout may manage it; an Ingress a router names
//! must route to the stable (or ALB root) Service. The objects come as JSON, so Ingresses of
//! `networking.k8s.io/v1` and the older `v1beta1` shapes are read alike.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{FieldError, FieldPath, Problems};
use crate::{
    RolloutSpec,
    names::{annotation, label},
};

/// The fields of `spec` that name `service`, as Argo types a Service for a Rollout: when one
/// Service fills several roles the last of canary, stable, ping, pong, active, preview wins.
fn service_field(spec: &RolloutSpec, service: &str) -> Option<FieldPath> {
    let strategy = spec.strategy.as_ref()?;
    let path = FieldPath::new("spec").child("strategy");
    let mut found = None;
    if let Some(canary) = &strategy.canary {
        let at = path.child("canary");
        if canary.canary_service.as_deref() == Some(service) {
            found = Some(at.child("canaryService"));
        }
        if canary.stable_service.as_deref() == Some(service) {
            found = Some(at.child("stableService"));
        }
        if let Some(ping_pong) = &canary.ping_pong {
            let at = at.child("pingPong");
            if ping_pong.ping_service == service {
                found = Some(at.child("pingService"));
            }
            if ping_pong.pong_service == service {
                found = Some(at.child("pongService"));
            }
        }
    }
    if let Some(blue_green) = &strategy.blue_green {
        let at = path.child("blueGreen");
        if blue_green.active_service == service {
            found = Some(at.child("activeService"));
        }
        if blue_green.preview_service() == Some(service) {
            found = Some(at.child("previewService"));
        }
    }
    found
}

/// Every problem with `service` (a Service as JSON) as the Rollout `rollout` sees it; none
/// when the Rollout does not name it.
pub fn validate_service(rollout: &str, spec: &RolloutSpec, service: &Value) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let name = service["metadata"]["name"].as_str().unwrap_or_default();
    let Some(path) = service_field(spec, name) else {
        return Vec::new();
    };
    let labels = spec
        .template
        .as_ref()
        .and_then(|t| t.typed().ok())
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    let selector: BTreeMap<String, Value> = service["spec"]["selector"]
        .as_object()
        .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (key, value) in &selector {
        if key == label::POD_TEMPLATE_HASH {
            continue;
        }
        if labels.get(key).map(String::as_str) != value.as_str() {
            let message = format!("Service {name:?} has unmatch label {key:?} in rollout");
            problems.invalid(&path, format!("{name:?}"), &message);
        }
    }
    let manager = service["metadata"]["annotations"][annotation::MANAGED_BY_ROLLOUTS].as_str();
    if let Some(manager) = manager.filter(|m| *m != rollout) {
        let message = format!("Service {name:?} is managed by another Rollout ({manager})");
        problems.invalid(&path, format!("{name:?}"), &message);
    }
    problems.into_vec()
}

/// Whether some rule of `ingress` (either API version) sends a path to `service`.
pub fn has_rule_with_service(ingress: &Value, service: &str) -> bool {
    let rules = ingress["spec"]["rules"].as_array().into_iter().flatten();
    rules
        .flat_map(|rule| rule["http"]["paths"].as_array().into_iter().flatten())
        .any(|path| {
            let backend = &path["backend"];
            backend["service"]["name"].as_str() == Some(service)
                || backend["serviceName"].as_str() == Some(service)
        })
}

/// Every problem with `ingress` (an Ingress as JSON) as the Rollout's router sees it: an
/// Ingress named by `nginx.stableIngress(es)` must route to the stable Service, one named by
/// `alb.ingress(es)` to the root Service (else the stable one). None when it is not named.
pub fn validate_ingress(spec: &RolloutSpec, ingress: &Value) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let name = ingress["metadata"]["name"].as_str().unwrap_or_default();
    let Some(canary) = spec.strategy.as_ref().and_then(|s| s.canary.as_ref()) else {
        return Vec::new();
    };
    let Some(routing) = &canary.traffic_routing else {
        return Vec::new();
    };
    let path = FieldPath::new("spec")
        .child("strategy")
        .child("canary")
        .child("trafficRouting");
    let stable = canary.stable_service.as_deref().unwrap_or_default();
    let named = |single: Option<&String>, many: Option<&Vec<String>>| {
        let in_many = many.is_some_and(|m| m.iter().any(|n| n == name));
        (single.is_some_and(|s| s == name) || in_many).then_some(in_many)
    };
    let checked = if let Some(nginx) = &routing.nginx
        && let Some(in_many) = named(
            nginx.stable_ingress.as_ref(),
            nginx.stable_ingresses.as_ref(),
        ) {
        let field = if in_many {
            "stableIngresses"
        } else {
            "stableIngress"
        };
        Some((path.child("nginx").child(field), stable))
    } else if let Some(alb) = &routing.alb
        && let Some(in_many) = named(alb.ingress.as_ref(), alb.ingresses.as_ref())
    {
        let field = if in_many { "ingresses" } else { "ingress" };
        let service = alb
            .root_service
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(stable);
        Some((path.child("alb").child(field), service))
    } else {
        None
    };
    if let Some((path, service)) = checked
        && !has_rule_with_service(ingress, service)
    {
        let message = format!("ingress `{name}` has no rules using service {service} backend");
        problems.invalid(&path, format!("{name:?}"), &message);
    }
    problems.into_vec()
}
