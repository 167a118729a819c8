//! `spec.strategy.canary.trafficRouting`: which router shifts canary traffic, and its settings.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Traffic routing for a canary. Set one provider (plugins may be combined).
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficRouting {
    /// Istio VirtualService (and optionally DestinationRule).
    pub istio: Option<IstioTrafficRouting>,
    /// NGINX Ingress canary annotations.
    pub nginx: Option<NginxTrafficRouting>,
    /// AWS Load Balancer Controller actions.
    pub alb: Option<AlbTrafficRouting>,
    /// SMI TrafficSplit.
    pub smi: Option<SmiTrafficRouting>,
    /// Ambassador Mappings.
    pub ambassador: Option<AmbassadorTrafficRouting>,
    /// AWS App Mesh.
    pub app_mesh: Option<AppMeshTrafficRouting>,
    /// Traefik weighted TraefikService.
    pub traefik: Option<TraefikTrafficRouting>,
    /// Apache APISIX route.
    pub apisix: Option<ApisixTrafficRouting>,
    /// Traffic router plugins by name, with free-form configuration (Gateway API lives here).
    #[serde(default)]
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub plugins: Option<BTreeMap<String, serde_json::Value>>,
    /// Routes the controller may create for header and mirror steps, in precedence order.
    pub managed_routes: Option<Vec<ManagedRoute>>,
    /// Weight denominator (default 100; NGINX and plugins only).
    pub max_traffic_weight: Option<i32>,
}

/// A route the controller manages.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ManagedRoute {
    /// Route name.
    pub name: String,
}

/// NGINX: a canary Ingress beside the stable one, weighted by annotations.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    /// Annotation prefix (default `nginx.ingress.kubernetes.io`).
    pub annotation_prefix: Option<String>,
    /// The stable Ingress.
    pub stable_ingress: Option<String>,
    /// Several stable Ingresses.
    pub stable_ingresses: Option<Vec<String>>,
    /// Extra annotations for the canary Ingress (`canary-by-header`, …).
    pub additional_ingress_annotations: Option<BTreeMap<String, String>>,
    /// Annotations copied verbatim onto the canary Ingress.
    pub canary_ingress_annotations: Option<BTreeMap<String, String>>,
}

/// Istio: weights in VirtualService routes.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioTrafficRouting {
    /// One VirtualService.
    pub virtual_service: Option<IstioVirtualService>,
    /// Several VirtualServices.
    pub virtual_services: Option<Vec<IstioVirtualService>>,
    /// DestinationRule for subset-level splitting.
    pub destination_rule: Option<IstioDestinationRule>,
}

/// An Istio VirtualService and the routes to weight.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioVirtualService {
    /// VirtualService name.
    pub name: String,
    /// HTTP route names.
    pub routes: Option<Vec<String>>,
    /// TLS routes.
    pub tls_routes: Option<Vec<TlsRoute>>,
    /// TCP routes.
    pub tcp_routes: Option<Vec<TcpRoute>>,
}

/// A TLS route by port and SNI hosts.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoute {
    /// Port.
    pub port: Option<i64>,
    /// SNI hosts.
    pub sni_hosts: Option<Vec<String>>,
}

/// A TCP route by port.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TcpRoute {
    /// Port.
    pub port: Option<i64>,
}

/// An Istio DestinationRule whose subsets follow the canary and stable hashes.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioDestinationRule {
    /// DestinationRule name.
    pub name: String,
    /// Canary subset.
    pub canary_subset_name: String,
    /// Stable subset.
    pub stable_subset_name: String,
    /// Other subsets the controller may touch.
    pub additional_subset_names: Option<Vec<String>>,
}

/// AWS ALB: forward actions on an Ingress.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbTrafficRouting {
    /// The Ingress.
    pub ingress: Option<String>,
    /// Several Ingresses.
    pub ingresses: Option<Vec<String>>,
    /// Service port.
    pub service_port: i32,
    /// Root Service (default: the stable Service).
    pub root_service: Option<String>,
    /// Annotation prefix (default `alb.ingress.kubernetes.io`).
    pub annotation_prefix: Option<String>,
    /// Target group stickiness.
    pub stickiness_config: Option<StickinessConfig>,
}

/// ALB target group stickiness.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StickinessConfig {
    /// On or off.
    pub enabled: bool,
    /// Stickiness duration.
    pub duration_seconds: i64,
}

/// SMI: a TrafficSplit.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    /// Root Service (default: the stable Service).
    pub root_service: Option<String>,
    /// TrafficSplit name (default: the rollout's name).
    pub traffic_split_name: Option<String>,
}

/// Ambassador: canary Mappings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AmbassadorTrafficRouting {
    /// Mapping names.
    pub mappings: Vec<String>,
}

/// AWS App Mesh.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshTrafficRouting {
    /// The virtual service.
    pub virtual_service: Option<AppMeshVirtualService>,
    /// The canary and stable virtual nodes.
    pub virtual_node_group: Option<AppMeshVirtualNodeGroup>,
}

/// An App Mesh virtual service and its routes.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AppMeshVirtualService {
    /// Name.
    pub name: String,
    /// Route names.
    pub routes: Option<Vec<String>>,
}

/// App Mesh canary and stable virtual nodes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeGroup {
    /// Canary node.
    pub canary_virtual_node_ref: AppMeshVirtualNodeReference,
    /// Stable node.
    pub stable_virtual_node_ref: AppMeshVirtualNodeReference,
}

/// A reference to an App Mesh virtual node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AppMeshVirtualNodeReference {
    /// Name.
    pub name: String,
}

/// Traefik: a weighted TraefikService.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraefikTrafficRouting {
    /// TraefikService name.
    pub weighted_traefik_service_name: String,
}

/// Apache APISIX.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ApisixTrafficRouting {
    /// The ApisixRoute.
    pub route: Option<ApisixRoute>,
}

/// An ApisixRoute and its rules.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ApisixRoute {
    /// Name.
    pub name: String,
    /// Rule names.
    pub rules: Option<Vec<String>>,
}
