//! The routing table of the ingress, built from Ingresses, Services and EndpointSlices as
//! ingress-nginx builds its configuration: every rule of an Ingress of class `nginx` (or none)
//! becomes a route for its host and path; a canary Ingress (`…/canary: "true"`) attaches to the
//! route of the same host and path; the first `spec.defaultBackend` serves what matches nothing.
//! Matching prefers an exact host, then a wildcard (`*.example.com`, one label), then rules with no
//! host; within it an `Exact` path, then the longest `Prefix` (whole path elements) or
//! `ImplementationSpecific` (a string prefix, as nginx's `location`). Pure: no IO.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use k8s_openapi::api::{
    core::v1::Service,
    discovery::v1::EndpointSlice,
    networking::v1::{Ingress, IngressBackend},
};
use kube::ResourceExt;

use super::canary::{self, CanaryRules};

/// The annotation prefix ingress-nginx reads.
pub const PREFIX: &str = "nginx.ingress.kubernetes.io";

/// A Service port with its ready endpoints.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Namespace.
    pub namespace: String,
    /// Service name.
    pub service: String,
    /// The Service port (number or name, as the Ingress gives it).
    pub port: String,
    /// Ready endpoints, sorted.
    pub endpoints: Vec<SocketAddr>,
    next: Arc<AtomicUsize>,
}

impl Backend {
    /// ingress-nginx's upstream name: `namespace-service-port`.
    pub fn upstream(&self) -> String {
        format!("{}-{}-{}", self.namespace, self.service, self.port)
    }

    /// The endpoints in round-robin order from the next one.
    pub fn rotation(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let count = self.endpoints.len().max(1);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        self.endpoints
            .iter()
            .cycle()
            .skip(start)
            .take(self.endpoints.len())
            .copied()
    }
}

/// An Ingress and the backend it sends a route to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Ingress's name.
    pub ingress: String,
    /// Where requests go.
    pub backend: Backend,
}

/// How a route's path matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathKind {
    /// The whole path.
    Exact,
    /// Whole leading path elements.
    Prefix,
    /// A string prefix (nginx's `location`).
    ImplementationSpecific,
}

/// One host and path of an Ingress.
#[derive(Debug, Clone)]
pub struct Route {
    /// The Ingress's namespace.
    pub namespace: String,
    /// The host (`""` = any; `*.example.com` = one label).
    pub host: String,
    /// The path.
    pub path: String,
    /// How the path matches.
    pub kind: PathKind,
    /// The main Ingress's target.
    pub main: Target,
    /// A canary Ingress's target and rules.
    pub canary: Option<(Target, CanaryRules)>,
    /// Requests decided by weight so far (smooth weighting).
    pub counter: Arc<AtomicU64>,
}

impl Route {
    /// Where this request goes: the canary's target (and its upstream name) or the main one.
    pub fn choose(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        cookie: &dyn Fn(&str) -> Option<String>,
    ) -> (&Target, Option<String>) {
        match &self.canary {
            Some((target, rules)) if canary::decide(rules, header, cookie, &self.counter) => {
                (target, Some(target.backend.upstream()))
            }
            _ => (&self.main, None),
        }
    }
}

/// Identity of a route across rebuilds (keeps its weight counter).
pub type RouteKey = (String, String, PathKind);

/// The whole table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    routes: Vec<Route>,
    default: Option<(String, Target)>,
}

/// Endpoints of every Service port: (namespace, service, port name) → addresses.
fn endpoints(slices: &[Arc<EndpointSlice>]) -> HashMap<(String, String, String), Vec<SocketAddr>> {
    let mut map: HashMap<(String, String, String), Vec<SocketAddr>> = HashMap::new();
    for slice in slices {
        let Some(service) = slice.labels().get("kubernetes.io/service-name") else {
            continue;
        };
        let namespace = slice.namespace().unwrap_or_default();
        for port in slice.ports.iter().flatten() {
            let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let entry = map
                .entry((
                    namespace.clone(),
                    service.clone(),
                    port.name.clone().unwrap_or_default(),
                ))
                .or_default();
            for endpoint in &slice.endpoints {
                let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
                if ready == Some(false) {
                    continue;
                }
                let addresses = endpoint
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok());
                entry.extend(addresses.map(|ip| SocketAddr::new(ip, number)));
            }
        }
    }
    for list in map.values_mut() {
        list.sort();
        list.dedup();
    }
    map
}

/// Whether this data plane serves `ingress` (class `nginx`, or none).
pub fn is_ours(ingress: &Ingress) -> bool {
    let class = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| {
            ingress
                .annotations()
                .get("kubernetes.io/ingress.class")
                .cloned()
        });
    class.is_none_or(|c| c == "nginx")
}

struct Builder<'a> {
    services: HashMap<(String, String), &'a Service>,
    endpoints: HashMap<(String, String, String), Vec<SocketAddr>>,
}

impl Builder<'_> {
    fn target(&self, namespace: &str, ingress: &str, backend: &IngressBackend) -> Option<Target> {
        let service = backend.service.as_ref()?;
        let port = service.port.as_ref()?;
        let spec = self
            .services
            .get(&(namespace.to_owned(), service.name.clone()))
            .and_then(|s| s.spec.as_ref());
        let service_port = spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .find(|p| match (&port.name, port.number) {
                (Some(name), _) if !name.is_empty() => p.name.as_deref() == Some(name.as_str()),
                (_, Some(number)) => p.port == number,
                _ => false,
            });
        let port_name = service_port
            .and_then(|p| p.name.clone())
            .unwrap_or_default();
        let endpoints = match service_port {
            Some(_) => self
                .endpoints
                .get(&(namespace.to_owned(), service.name.clone(), port_name))
                .cloned()
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let label = match (&port.name, port.number) {
            (Some(name), _) if !name.is_empty() => name.clone(),
            (_, Some(number)) => number.to_string(),
            _ => String::new(),
        };
        Some(Target {
            ingress: ingress.to_owned(),
            backend: Backend {
                namespace: namespace.to_owned(),
                service: service.name.clone(),
                port: label,
                endpoints,
                next: Arc::default(),
            },
        })
    }
}

/// The host, path and path kind of every rule of an Ingress, with its backend.
fn rules(ingress: &Ingress) -> Vec<(String, String, PathKind, &IngressBackend)> {
    let mut out = Vec::new();
    for rule in ingress.spec.iter().flat_map(|s| s.rules.iter().flatten()) {
        let host = rule.host.clone().unwrap_or_default().to_lowercase();
        for path in rule.http.iter().flat_map(|h| &h.paths) {
            let kind = match path.path_type.as_str() {
                "Exact" => PathKind::Exact,
                "Prefix" => PathKind::Prefix,
                _ => PathKind::ImplementationSpecific,
            };
            let text = path.path.clone().unwrap_or_else(|| "/".to_owned());
            out.push((host.clone(), text, kind, &path.backend));
        }
    }
    out
}

impl Table {
    /// Builds the table; `counters` keeps each route's weight counter across rebuilds.
    pub fn build(
        ingresses: &[Arc<Ingress>],
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
        counters: &mut BTreeMap<RouteKey, Arc<AtomicU64>>,
    ) -> Self {
        let builder = Builder {
            services: services
                .iter()
                .map(|s| {
                    (
                        (s.namespace().unwrap_or_default(), s.name_any()),
                        s.as_ref(),
                    )
                })
                .collect(),
            endpoints: endpoints(slices),
        };
        let mut ours: Vec<&Arc<Ingress>> = ingresses.iter().filter(|i| is_ours(i)).collect();
        // Oldest first, as ingress-nginx resolves duplicates.
        ours.sort_by_key(|i| {
            (
                i.creation_timestamp().map(|t| t.0),
                i.namespace(),
                i.name_any(),
            )
        });
        let canary_of = |i: &Ingress| {
            i.annotations()
                .get(&format!("{PREFIX}/canary"))
                .is_some_and(|v| v == "true")
        };
        let mut table = Self::default();
        let mut seen = BTreeMap::new();
        for ingress in ours.iter().filter(|i| !canary_of(i)) {
            let namespace = ingress.namespace().unwrap_or_default();
            let name = ingress.name_any();
            if table.default.is_none()
                && let Some(backend) = ingress
                    .spec
                    .as_ref()
                    .and_then(|s| s.default_backend.as_ref())
                && let Some(target) = builder.target(&namespace, &name, backend)
            {
                table.default = Some((namespace.clone(), target));
            }
            for (host, path, kind, backend) in rules(ingress) {
                let key = (host.clone(), path.clone(), kind);
                if seen.contains_key(&key) {
                    continue;
                }
                let Some(main) = builder.target(&namespace, &name, backend) else {
                    continue;
                };
                seen.insert(key.clone(), table.routes.len());
                table.routes.push(Route {
                    namespace: namespace.clone(),
                    host,
                    path,
                    kind,
                    main,
                    canary: None,
                    counter: counters.entry(key).or_default().clone(),
                });
            }
        }
        for ingress in ours.iter().filter(|i| canary_of(i)) {
            let namespace = ingress.namespace().unwrap_or_default();
            let Some(rules_of_canary) = canary::rules(ingress.annotations()) else {
                continue;
            };
            for (host, path, kind, backend) in rules(ingress) {
                let Some(&at) = seen.get(&(host, path, kind)) else {
                    continue;
                };
                let route = &mut table.routes[at];
                if route.canary.is_some() || route.namespace != namespace {
                    continue;
                }
                if let Some(target) = builder.target(&namespace, &ingress.name_any(), backend) {
                    route.canary = Some((target, rules_of_canary.clone()));
                }
            }
        }
        counters.retain(|key, _| seen.contains_key(key));
        table
    }

    /// The route for a request, or the default backend's target (with its namespace).
    pub fn find(&self, host: &str, path: &str) -> Found<'_> {
        let host = host.to_lowercase();
        let exact = |r: &&Route| r.host == host;
        let wildcard = |r: &&Route| {
            r.host.strip_prefix("*.").is_some_and(|domain| {
                host.strip_suffix(domain)
                    .and_then(|label| label.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.'))
            })
        };
        let any = |r: &&Route| r.host.is_empty();
        for server in [&exact as &dyn Fn(&&Route) -> bool, &wildcard, &any] {
            let candidates: Vec<&Route> = self.routes.iter().filter(server).collect();
            if candidates.is_empty() {
                continue;
            }
            let chosen = candidates
                .iter()
                .find(|r| r.kind == PathKind::Exact && r.path == path)
                .or_else(|| {
                    candidates
                        .iter()
                        .filter(|r| matches_prefix(r, path))
                        .max_by_key(|r| r.path.len())
                });
            if let Some(route) = chosen {
                return Found::Route(route);
            }
        }
        match &self.default {
            Some((namespace, target)) => Found::Default(namespace, target),
            None => Found::Nothing,
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn matches_prefix(route: &Route, path: &str) -> bool {
    match route.kind {
        PathKind::Exact => false,
        PathKind::ImplementationSpecific => path.starts_with(&route.path),
        PathKind::Prefix => {
            let prefix = route.path.trim_end_matches('/');
            prefix.is_empty()
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }
    }
}

/// What a request matched.
#[derive(Debug)]
pub enum Found<'a> {
    /// A route.
    Route(&'a Route),
    /// The default backend (namespace, target).
    Default(&'a str, &'a Target),
    /// Nothing: 404.
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Arc<T> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn ingress(
        name: &str,
        annotations: serde_json::Value,
        spec: serde_json::Value,
    ) -> Arc<Ingress> {
        from(
            json!({"metadata": {"name": name, "namespace": "shop", "annotations": annotations}, "spec": spec}),
        )
    }

    fn path(path: &str, kind: &str, service: &str) -> serde_json::Value {
        json!({"path": path, "pathType": kind, "backend": {"service": {"name": service, "port": {"number": 80}}}})
    }

    fn table() -> Table {
        let ingresses = vec![
            ingress(
                "main",
                json!({}),
                json!({"ingressClassName": "nginx", "rules": [
                    {"host": "shop.example", "http": {"paths": [path("/", "Prefix", "web"), path("/api", "Prefix", "api"), path("/api/exact", "Exact", "exact")]}},
                    {"host": "*.wild.example", "http": {"paths": [path("/", "Prefix", "wild")]}},
                    {"http": {"paths": [path("/any", "ImplementationSpecific", "any")]}},
                ]}),
            ),
            ingress(
                "fallback",
                json!({}),
                json!({"defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}}}),
            ),
            ingress(
                "other-class",
                json!({}),
                json!({"ingressClassName": "traefik", "rules": [
                {"host": "traefik.example", "http": {"paths": [path("/", "Prefix", "x")]}}]}),
            ),
            ingress(
                "main-canary",
                json!({"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "20"}),
                json!({"rules": [{"host": "shop.example", "http": {"paths": [path("/", "Prefix", "web-canary")]}}]}),
            ),
        ];
        let services: Vec<Arc<Service>> = ["web", "api", "exact", "wild", "any", "fallback", "web-canary"]
            .iter()
            .map(|name| from(json!({"metadata": {"name": name, "namespace": "shop"}, "spec": {"ports": [{"name": "http", "port": 80}]}})))
            .collect();
        let slices = vec![from(
            json!({"metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["127.1.0.2"], "conditions": {"ready": true}}, {"addresses": ["127.1.0.1"]},
                          {"addresses": ["127.1.0.3"], "conditions": {"ready": false}}]}),
        )];
        Table::build(&ingresses, &services, &slices, &mut BTreeMap::new())
    }

    fn service(found: Found<'_>) -> String {
        match found {
            Found::Route(route) => route.main.backend.service.clone(),
            Found::Default(_, target) => format!("default:{}", target.backend.service),
            Found::Nothing => "404".into(),
        }
    }

    #[test]
    fn hosts_and_paths_match_as_in_ingress_nginx() {
        let table = table();
        assert_eq!(service(table.find("shop.example", "/")), "web");
        assert_eq!(service(table.find("SHOP.example", "/cart")), "web");
        assert_eq!(service(table.find("shop.example", "/api")), "api");
        assert_eq!(service(table.find("shop.example", "/api/v1")), "api");
        assert_eq!(
            service(table.find("shop.example", "/apiv1")),
            "web",
            "Prefix matches whole elements"
        );
        assert_eq!(service(table.find("shop.example", "/api/exact")), "exact");
        assert_eq!(service(table.find("a.wild.example", "/x")), "wild");
        assert_eq!(
            service(table.find("a.b.wild.example", "/x")),
            "default:fallback",
            "one label only"
        );
        assert_eq!(
            service(table.find("elsewhere", "/anything")),
            "any",
            "a string prefix"
        );
        assert_eq!(service(table.find("elsewhere", "/")), "default:fallback");
        assert_eq!(
            service(table.find("traefik.example", "/")),
            "default:fallback",
            "another class"
        );
    }

    #[test]
    fn endpoints_are_the_ready_ones_in_rotation_and_canaries_attach_to_their_route() {
        let table = table();
        let Found::Route(route) = table.find("shop.example", "/") else {
            panic!()
        };
        let ready: Vec<String> = route
            .main
            .backend
            .endpoints
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ready, ["127.1.0.1:8080", "127.1.0.2:8080"]);
        let first: Vec<SocketAddr> = route.main.backend.rotation().collect();
        let second: Vec<SocketAddr> = route.main.backend.rotation().collect();
        assert_eq!(first.len(), 2);
        assert_ne!(first[0], second[0], "round robin");
        let (canary, rules) = route.canary.as_ref().unwrap();
        assert_eq!((canary.ingress.as_str(), rules.weight), ("main-canary", 20));
        assert_eq!(canary.backend.upstream(), "shop-web-canary-80");
        let Found::Route(api) = table.find("shop.example", "/api") else {
            panic!()
        };
        assert!(api.canary.is_none());
    }
}
