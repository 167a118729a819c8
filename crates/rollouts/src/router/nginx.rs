//! The NGINX router (Argo's `trafficrouting/nginx`): beside each stable Ingress, a canary
//! Ingress `<rollout>-<stableIngress>-canary` owned by the Rollout, holding the stable
//! Ingress's rules whose backend is the stable Service rewritten to the canary Service (class,
//! `kubernetes.io/ingress.class` and TLS kept), weighted by ingress-nginx's annotations
//! `canary: "true"`, `canary-weight` and, with `maxTrafficWeight`, `canary-weight-total`;
//! `additionalIngressAnnotations` (prefixed) then `canaryIngressAnnotations` (verbatim) added.
//! Annotations other controllers put on the canary Ingress are kept; the `canary*` ones and
//! the spec are put back when edited by hand.
//!
//! Two departures from Argo, whose NGINX router ignores header routes and never verifies:
//! - `setHeaderRoute` becomes `canary-by-header` with `canary-by-header-value` (an exact
//!   match) or `canary-by-header-pattern` (a regex, or a prefix as an anchored regex). NGINX
//!   holds one such header per canary Ingress: a second route, or a route of several
//!   matches, is reported [`Support::Unsupported`]. A `canary-by-header` the user set through
//!   `additionalIngressAnnotations` wins over the route.
//! - Weights are confirmed when the data plane reports them: the router stamps each canary
//!   Ingress with the hash of what it routes ([`annotation::ROUTE_VERSION`]); a data plane that
//!   reports back (sluice's embedded ingress marks every Ingress it serves with
//!   [`annotation::SERVED_GENERATION`]) echoes it in [`annotation::SERVED_ROUTE_VERSION`] once
//!   it serves it. Where the stable Ingress carries no such mark (ingress-nginx), nothing is
//!   verified, as in Argo.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use serde_json::{Map, Value, json};
use sluice_api::{
    CanaryStrategy, NginxTrafficRouting, SetHeaderRoute, SetMirrorRoute,
    names::{annotation, event},
};
use sluice_reconcile::hash;

use super::{RouteWrite, Router, Support};

/// The annotation ingress-nginx and Argo use to pick the ingress class.
const INGRESS_CLASS: &str = "kubernetes.io/ingress.class";

/// One stable Ingress and its canary Ingress, as observed.
#[derive(Debug, Clone)]
pub struct IngressPair {
    /// The stable Ingress.
    pub stable: Arc<Ingress>,
    /// The canary Ingress, if it exists.
    pub canary: Option<Arc<Ingress>>,
}

/// The Rollout the router works for.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its uid.
    pub uid: String,
}

/// The canary Ingress name Argo gives (`GetCanaryIngressName`): cut to 253 characters.
pub fn canary_name(rollout: &str, stable: &str) -> String {
    let name = format!("{rollout}-{stable}-canary");
    name.chars().take(253).collect()
}

/// The stable Ingresses `nginx` names (`stableIngresses`, else `stableIngress`).
pub fn stable_names(nginx: &NginxTrafficRouting) -> Vec<String> {
    match &nginx.stable_ingresses {
        Some(names) if !names.is_empty() => names.clone(),
        _ => nginx.stable_ingress.iter().cloned().collect(),
    }
}

/// A header route as NGINX holds it.
#[derive(Debug, Clone, PartialEq)]
struct Header {
    route: String,
    name: String,
    value: HeaderValue,
}

#[derive(Debug, Clone, PartialEq)]
enum HeaderValue {
    Exact(String),
    Pattern(String),
}

/// The NGINX router of one Rollout.
#[derive(Debug, Clone)]
pub struct Nginx {
    owner: Owner,
    prefix: String,
    spec: NginxTrafficRouting,
    stable_service: String,
    canary_service: String,
    max_weight: Option<i32>,
    pairs: Vec<IngressPair>,
    weight: i32,
    header: Option<Header>,
}

impl Nginx {
    /// The router for `canary`'s `nginx` over the observed Ingresses; the stable Ingress and
    /// Argo's error when one has no rule for the stable Service or its canary Ingress is not
    /// the Rollout's (the planner reports it as InvalidSpec rather than retrying for ever).
    pub fn new(
        owner: Owner,
        canary: &CanaryStrategy,
        nginx: &NginxTrafficRouting,
        pairs: Vec<IngressPair>,
    ) -> Result<Self, (String, String)> {
        let router = Self {
            owner,
            prefix: nginx
                .annotation_prefix
                .clone()
                .unwrap_or_else(|| annotation::NGINX_PREFIX.into()),
            spec: nginx.clone(),
            stable_service: canary.stable_service.clone().unwrap_or_default(),
            canary_service: canary.canary_service.clone().unwrap_or_default(),
            max_weight: canary
                .traffic_routing
                .as_ref()
                .and_then(|r| r.max_traffic_weight),
            pairs,
            weight: 0,
            header: None,
        };
        for pair in &router.pairs {
            let stable = pair.stable.name_any();
            router
                .rules(&pair.stable)
                .map_err(|why| (stable.clone(), why))?;
            if let Some(canary) = &pair.canary {
                let ours = canary.owner_references().iter().any(|o| {
                    o.controller == Some(true) && o.kind == "Rollout" && o.uid == router.owner.uid
                });
                if !ours {
                    let why = format!(
                        "canary ingress `{}` controlled by different object",
                        canary.name_any()
                    );
                    return Err((stable, why));
                }
            }
        }
        Ok(router)
    }

    /// The stable Ingress's rules that use the stable Service, rewritten to the canary one.
    fn rules(&self, stable: &Ingress) -> Result<Vec<Value>, String> {
        let rules = stable
            .spec
            .as_ref()
            .and_then(|s| s.rules.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for rule in rules {
            let mut rule = serde_json::to_value(rule).unwrap_or_default();
            let mut uses = false;
            if let Some(paths) = rule
                .pointer_mut("/http/paths")
                .and_then(Value::as_array_mut)
            {
                for path in paths {
                    let service = &mut path["backend"]["service"]["name"];
                    if service.as_str() == Some(self.stable_service.as_str()) {
                        uses = true;
                        *service = json!(self.canary_service);
                    }
                }
            }
            if uses {
                out.push(rule);
            }
        }
        if out.is_empty() {
            return Err(format!(
                "ingress `{}` has no rules using service {} backend",
                stable.name_any(),
                self.stable_service
            ));
        }
        Ok(out)
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The annotations the canary Ingress of `stable` should carry (the route version aside).
    fn annotations(&self, stable: &Ingress) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(class) = stable.annotations().get(INGRESS_CLASS) {
            out.insert(INGRESS_CLASS.to_owned(), class.clone());
        }
        if let Some(header) = &self.header {
            out.insert(self.key("canary-by-header"), header.name.clone());
            match &header.value {
                HeaderValue::Exact(v) => out.insert(self.key("canary-by-header-value"), v.clone()),
                HeaderValue::Pattern(p) => {
                    out.insert(self.key("canary-by-header-pattern"), p.clone())
                }
            };
        }
        let additional = self.spec.additional_ingress_annotations.iter().flatten();
        let user_header = additional
            .clone()
            .any(|(k, _)| k.ends_with("canary-by-header"));
        if user_header {
            // The user's header rule wins: the route's value or pattern goes with its name.
            out.retain(|k, _| !k.starts_with(&self.key("canary-by-header")));
        }
        for (k, v) in additional {
            let key = if k.starts_with(&self.prefix) {
                k.clone()
            } else {
                self.key(k)
            };
            out.insert(key, v.clone());
        }
        for (k, v) in self.spec.canary_ingress_annotations.iter().flatten() {
            out.insert(k.clone(), v.clone());
        }
        out.insert(self.key("canary"), "true".into());
        out.insert(self.key("canary-weight"), self.weight.to_string());
        if let Some(total) = self.max_weight {
            out.insert(self.key("canary-weight-total"), total.to_string());
        }
        out
    }

    /// The spec the canary Ingress of `stable` should have.
    fn spec(&self, stable: &Ingress) -> Value {
        let spec = stable.spec.as_ref();
        let mut out = Map::new();
        if let Some(class) = spec.and_then(|s| s.ingress_class_name.as_ref()) {
            out.insert("ingressClassName".into(), json!(class));
        }
        if let Some(tls) = spec.and_then(|s| s.tls.as_ref()) {
            out.insert("tls".into(), serde_json::to_value(tls).unwrap_or_default());
        }
        out.insert(
            "rules".into(),
            json!(self.rules(stable).unwrap_or_default()),
        );
        Value::Object(out)
    }

    /// The desired annotations (with the route version) and spec for `pair`.
    fn desired(&self, pair: &IngressPair) -> (BTreeMap<String, String>, Value) {
        let mut annotations = self.annotations(&pair.stable);
        let spec = self.spec(&pair.stable);
        let version = hash::json_hash(&json!({"annotations": annotations, "spec": spec}));
        annotations.insert(annotation::ROUTE_VERSION.into(), version);
        (annotations, spec)
    }

    /// Whether `key` is one the router owns on the canary Ingress (removed when not wanted).
    fn owned(&self, key: &str) -> bool {
        key.starts_with(&self.key("canary")) || key == annotation::ROUTE_VERSION
    }

    fn write(&self, pair: &IngressPair) -> Option<RouteWrite> {
        let name = canary_name(&self.owner.name, &pair.stable.name_any());
        let (annotations, spec) = self.desired(pair);
        let Some(canary) = &pair.canary else {
            let object = json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": name,
                    "namespace": self.owner.namespace,
                    "annotations": annotations,
                    "ownerReferences": [{
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "Rollout",
                        "name": self.owner.name,
                        "uid": self.owner.uid,
                        "controller": true,
                        "blockOwnerDeletion": true,
                    }],
                },
                "spec": spec,
            });
            let message = format!(
                "Creating canary ingress `{name}` with weight `{}`",
                self.weight
            );
            return Some(RouteWrite::CreateIngress {
                name,
                object,
                event: (event::CREATING_CANARY_INGRESS, message),
            });
        };
        let live = canary.annotations();
        let mut changed = Map::new();
        for (k, v) in &annotations {
            if live.get(k) != Some(v) {
                changed.insert(k.clone(), json!(v));
            }
        }
        for k in live.keys() {
            if self.owned(k) && !annotations.contains_key(k) {
                changed.insert(k.clone(), Value::Null);
            }
        }
        let live_spec = canary
            .spec
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_else(|| json!({}));
        let mut patch = Map::new();
        if !changed.is_empty() {
            patch.insert("metadata".into(), json!({ "annotations": changed }));
        }
        if live_spec != spec {
            let mut spec_patch = spec.as_object().cloned().unwrap_or_default();
            for key in live_spec.as_object().into_iter().flatten().map(|(k, _)| k) {
                spec_patch.entry(key.clone()).or_insert(Value::Null);
            }
            patch.insert("spec".into(), Value::Object(spec_patch));
        }
        if patch.is_empty() {
            return None;
        }
        let message = format!(
            "Updating Ingress `{name}` to desiredWeight '{}'",
            self.weight
        );
        Some(RouteWrite::PatchIngress {
            name,
            patch: Value::Object(patch),
            event: (event::PATCHING_CANARY_INGRESS, message),
        })
    }
}

/// `text` as a regex that matches it literally.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Router for Nginx {
    fn name(&self) -> &'static str {
        "Nginx"
    }

    fn update_hash(&mut self, _canary: &str, _stable: &str) {}

    fn set_weight(&mut self, weight: i32) {
        self.weight = weight;
    }

    fn set_header_route(&mut self, route: &SetHeaderRoute) -> Support {
        let name = route.name.clone().unwrap_or_default();
        let matches = route.match_.as_deref().unwrap_or_default();
        if matches.is_empty() {
            if self.header.as_ref().is_some_and(|h| h.route == name) {
                self.header = None;
            }
            return Support::Done;
        }
        if self.header.as_ref().is_some_and(|h| h.route != name) {
            return Support::Unsupported(format!(
                "the NGINX router holds one header route per canary Ingress: route `{name}` is not set"
            ));
        }
        let [one] = matches else {
            return Support::Unsupported(format!(
                "the NGINX router matches one header per route: route `{name}` has {}",
                matches.len()
            ));
        };
        let value = &one.header_value;
        let value = match (&value.exact, &value.regex, &value.prefix) {
            (Some(exact), None, None) => HeaderValue::Exact(exact.clone()),
            (None, Some(regex), None) => HeaderValue::Pattern(regex.clone()),
            (None, None, Some(prefix)) => HeaderValue::Pattern(format!("^{}", escape(prefix))),
            _ => {
                return Support::Unsupported(format!(
                    "route `{name}`: a header value needs exactly one of exact, regex, prefix"
                ));
            }
        };
        self.header = Some(Header {
            route: name,
            name: one.header_name.clone(),
            value,
        });
        Support::Done
    }

    fn set_mirror_route(&mut self, route: &SetMirrorRoute) -> Support {
        if route.match_.as_deref().unwrap_or_default().is_empty() {
            return Support::Done;
        }
        Support::Unsupported(format!(
            "the NGINX router cannot mirror traffic: route `{}` is not set",
            route.name
        ))
    }

    fn remove_managed_routes(&mut self) {
        self.header = None;
    }

    fn verify_weight(&self) -> Option<bool> {
        let confirms = self.pairs.iter().all(|p| {
            p.stable
                .annotations()
                .contains_key(annotation::SERVED_GENERATION)
        });
        if !confirms {
            return None;
        }
        Some(self.pairs.iter().all(|pair| {
            let (wanted, _) = self.desired(pair);
            let Some(canary) = &pair.canary else {
                return false;
            };
            let live = canary.annotations();
            let version = wanted.get(annotation::ROUTE_VERSION);
            self.write(pair).is_none() && live.get(annotation::SERVED_ROUTE_VERSION) == version
        }))
    }

    fn writes(&self) -> Vec<RouteWrite> {
        self.pairs.iter().filter_map(|p| self.write(p)).collect()
    }
}

#[cfg(test)]
impl Nginx {
    /// Test support: `write` carried out on the observed canary Ingress, and served at once
    /// by a data plane that reports back.
    pub fn simulate(&mut self, write: &RouteWrite) {
        let (name, next) = match write {
            RouteWrite::CreateIngress { name, object, .. } => (name, object.clone()),
            RouteWrite::PatchIngress { name, patch, .. } => {
                let pair = self
                    .pairs
                    .iter()
                    .find(|p| canary_name(&self.owner.name, &p.stable.name_any()) == *name);
                let mut live = serde_json::to_value(pair.and_then(|p| p.canary.as_deref()))
                    .unwrap_or_default();
                json_patch::merge(&mut live, patch);
                (name, live)
            }
        };
        let mut next = next;
        let version = next["metadata"]["annotations"][annotation::ROUTE_VERSION].clone();
        next["metadata"]["annotations"][annotation::SERVED_ROUTE_VERSION] = version;
        let owner = self.owner.name.clone();
        for pair in &mut self.pairs {
            if canary_name(&owner, &pair.stable.name_any()) == *name {
                pair.canary = serde_json::from_value(next.clone()).ok().map(Arc::new);
            }
        }
    }

    /// Test support: the weight the canary Ingresses carry.
    pub fn served_weight(&self) -> Option<String> {
        let canary = self.pairs.first()?.canary.as_ref()?;
        canary
            .annotations()
            .get(&self.key("canary-weight"))
            .cloned()
    }
}

#[cfg(test)]
mod tests;
