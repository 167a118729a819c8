//! How a canary's traffic is split, as observed: its router over the objects the router owns
//! (for NGINX, each stable Ingress and its canary Ingress, from the Ingress store), the
//! weights last recorded, and whether the stable Service's endpoints are the current pods. A
//! stable Ingress that does not exist or has no rule for the stable Service is the Rollout's
//! InvalidSpec, named — Argo retries it for ever.

use kube::{ResourceExt, runtime::reflector::ObjectRef};
use sluice_api::{CanaryStrategy, Rollout, RolloutStatus, RolloutTrafficRouting};

use super::{Stores, lookup, settled};
use crate::{
    model::{Routed, Routing, WeightStatus},
    router::{
        self,
        nginx::{self, IngressPair, Nginx, Owner},
    },
};

/// The routers `routing` names that sluice does not drive yet.
fn unsupported(routing: &RolloutTrafficRouting) -> Vec<&'static str> {
    [
        (routing.istio.is_some(), "Istio"),
        (routing.smi.is_some(), "SMI"),
        (routing.alb.is_some(), "ALB"),
        (routing.ambassador.is_some(), "Ambassador"),
        (routing.app_mesh.is_some(), "App Mesh"),
        (routing.traefik.is_some(), "Traefik"),
        (routing.apisix.is_some(), "APISIX"),
        (
            routing.plugins.as_ref().is_some_and(|p| !p.is_empty()),
            "a traffic router plugin",
        ),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

fn weights(status: &RolloutStatus) -> Option<WeightStatus> {
    let weights = status.canary.as_ref()?.weights.as_ref()?;
    Some(WeightStatus {
        canary: weights.canary.weight,
        stable: weights.stable.weight,
        canary_hash: weights.canary.pod_template_hash.clone(),
        stable_hash: weights.stable.pod_template_hash.clone(),
        verified: weights.verified,
    })
}

/// Whether `service` has at least one ready endpoint.
fn serving(stores: &Stores, namespace: &str, service: &str) -> bool {
    let slices = lookup(
        &stores.slices,
        &stores.indexes.slices_by_service,
        namespace,
        service,
    );
    slices.iter().any(|slice| {
        slice
            .endpoints
            .iter()
            .any(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
    })
}

/// The canary's routing; `Err` with Argo's InvalidSpec message when its router's objects are
/// missing or wrong. `current` is the name of the current template's ReplicaSet, if any.
pub fn observe(
    stores: &Stores,
    rollout: &Rollout,
    canary: &CanaryStrategy,
    current: Option<&str>,
) -> Result<Routing, String> {
    let Some(spec) = canary.traffic_routing.as_ref() else {
        return Ok(Routing::Replicas);
    };
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let Some(nginx_spec) = spec.nginx.as_ref() else {
        let names = unsupported(spec);
        let named = if names.is_empty() {
            "this router".to_owned()
        } else {
            names.join(" and ")
        };
        return Ok(Routing::Unsupported(named));
    };
    let field = if nginx_spec
        .stable_ingresses
        .as_ref()
        .is_some_and(|n| !n.is_empty())
    {
        "stableIngresses"
    } else {
        "stableIngress"
    };
    let invalid = |ingress: &str, why: String| {
        format!(
            "spec.strategy.canary.trafficRouting.nginx.{field}: Invalid value: \"{ingress}\": {why}"
        )
    };
    let get = |ingress: &str| {
        stores
            .ingresses
            .get(&ObjectRef::new(ingress).within(&namespace))
    };
    let mut pairs = Vec::new();
    for stable in nginx::stable_names(nginx_spec) {
        stores
            .indexes
            .rollouts_by_ingress
            .insert(&namespace, &stable, &name);
        let Some(found) = get(&stable) else {
            return Err(invalid(&stable, format!("ingress \"{stable}\" not found")));
        };
        pairs.push(IngressPair {
            stable: found,
            canary: get(&nginx::canary_name(&name, &stable)),
        });
    }
    let owner = Owner {
        name: name.clone(),
        namespace: namespace.clone(),
        uid: rollout.uid().unwrap_or_default(),
    };
    let router = Nginx::new(owner, canary, nginx_spec, pairs)
        .map_err(|(stable, why)| invalid(&stable, why))?;
    let stable_service = canary.stable_service.as_deref().unwrap_or_default();
    let stable_settled = current.is_some_and(|rs| {
        settled(stores, &namespace, stable_service, rs)
            && serving(stores, &namespace, stable_service)
    });
    let status = rollout.status.clone().unwrap_or_default();
    Ok(Routing::Routed(Box::new(Routed {
        router: router::Observed::Nginx(router),
        weights: weights(&status),
        stable_settled,
    })))
}
