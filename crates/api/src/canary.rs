//! `spec.strategy.canary`: weighted steps, pauses, step analysis and experiments.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    AnalysisRunMetadata, AntiAffinity, PodMetadata, RolloutAnalysis, RolloutAnalysisArgument,
    RolloutTrafficRouting, defaults,
};

/// The canary strategy.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Service whose selector is patched to the canary hash.
    pub canary_service: Option<String>,
    /// Service whose selector is patched to the stable hash.
    pub stable_service: Option<String>,
    /// The ordered steps; none means a rolling update.
    pub steps: Option<Vec<CanaryStep>>,
    /// Route traffic by weight through a router instead of by replica ratio.
    pub traffic_routing: Option<RolloutTrafficRouting>,
    /// Pods above the desired count during the update (default 25%).
    pub max_surge: Option<IntOrString>,
    /// Pods that may be unavailable during the update (default 25%).
    pub max_unavailable: Option<IntOrString>,
    /// Background analysis that runs alongside the steps.
    pub analysis: Option<RolloutAnalysisBackground>,
    /// Keep new pods off the nodes of the previous version.
    pub anti_affinity: Option<AntiAffinity>,
    /// Metadata added to canary pods.
    pub canary_metadata: Option<PodMetadata>,
    /// Metadata added to stable pods.
    pub stable_metadata: Option<PodMetadata>,
    /// Seconds the old stable ReplicaSet keeps running after promotion (traffic routing only).
    pub scale_down_delay_seconds: Option<i32>,
    /// Old ReplicaSets kept running during their delay.
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Seconds before an aborted canary is scaled down (traffic routing only; 0 = never).
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Scale the stable ReplicaSet down as canary weight grows (traffic routing only).
    pub dynamic_stable_scale: Option<bool>,
    /// Floor on the pods of a non-empty canary or stable ReplicaSet.
    pub min_pods_per_replica_set: Option<i32>,
    /// Alternate two Services instead of switching selectors.
    pub ping_pong: Option<PingPongSpec>,
    /// Availability needed to finish a weight step.
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
}

impl CanaryStrategy {
    /// The steps, empty when absent.
    pub fn steps(&self) -> &[CanaryStep] {
        self.steps.as_deref().unwrap_or_default()
    }

    /// `maxSurge`, default 25%.
    pub fn max_surge(&self) -> IntOrString {
        self.max_surge
            .clone()
            .unwrap_or_else(|| IntOrString::String(defaults::MAX_SURGE.into()))
    }

    /// `maxUnavailable`, default 25%.
    pub fn max_unavailable(&self) -> IntOrString {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrString::String(defaults::MAX_UNAVAILABLE.into()))
    }

    /// `scaleDownDelaySeconds`, default 30.
    pub fn scale_down_delay_seconds(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(defaults::SCALE_DOWN_DELAY_SECONDS)
    }

    /// `abortScaleDownDelaySeconds`, default 30.
    pub fn abort_scale_down_delay_seconds(&self) -> i32 {
        self.abort_scale_down_delay_seconds
            .unwrap_or(defaults::ABORT_SCALE_DOWN_DELAY_SECONDS)
    }

    /// `dynamicStableScale`, default false.
    pub fn dynamic_stable_scale(&self) -> bool {
        self.dynamic_stable_scale.unwrap_or(false)
    }

    /// The weight denominator: `trafficRouting.maxTrafficWeight`, default 100.
    pub fn max_traffic_weight(&self) -> i32 {
        self.traffic_routing
            .as_ref()
            .and_then(|tr| tr.max_traffic_weight)
            .unwrap_or(defaults::MAX_TRAFFIC_WEIGHT)
    }
}

/// Background analysis: a rollout analysis plus the step it starts at.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisBackground {
    /// The analysis.
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    /// Step index at which the analysis starts (default 0).
    pub starting_step: Option<i32>,
}

/// Two Services that take turns as stable and canary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingPongSpec {
    /// The ping Service.
    pub ping_service: String,
    /// The pong Service.
    pub pong_service: String,
}

/// Availability a canary ReplicaSet needs before a weight step counts as done.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaProgressThreshold {
    /// `Percent` or `Pods`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The threshold.
    pub value: i32,
}

/// One canary step. Exactly one field is set (validation checks).
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Shift this percentage of traffic (or replicas) to the canary.
    pub set_weight: Option<i32>,
    /// Pause, for a duration or until promoted.
    pub pause: Option<RolloutPause>,
    /// Run an experiment.
    pub experiment: Option<RolloutExperimentStep>,
    /// Run an analysis and wait for it.
    pub analysis: Option<RolloutAnalysis>,
    /// Scale the canary independently of its weight (traffic routing only).
    pub set_canary_scale: Option<SetCanaryScale>,
    /// Add or remove a header-based route.
    pub set_header_route: Option<SetHeaderRoute>,
    /// Add or remove a mirror route.
    pub set_mirror_route: Option<SetMirrorRoute>,
    /// Run a step plugin.
    pub plugin: Option<PluginStep>,
}

/// A pause step; no duration pauses until promoted.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPause {
    /// Seconds as an integer, or a duration string such as `30s`, `5m`, `1h`.
    pub duration: Option<IntOrString>,
}

/// An experiment step.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStep {
    /// The ReplicaSets to run.
    pub templates: Vec<RolloutExperimentTemplate>,
    /// How long the experiment runs (a duration string).
    pub duration: Option<String>,
    /// Analyses to run during the experiment.
    pub analyses: Option<Vec<RolloutExperimentStepAnalysisTemplateRef>>,
    /// Metrics whose failures do not count.
    pub dry_run: Option<Vec<crate::DryRun>>,
    /// Metadata for the AnalysisRuns.
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
    /// Seconds to keep the experiment's ReplicaSets after it ends.
    pub scale_down_delay_seconds: Option<i32>,
}

/// One ReplicaSet of an experiment step.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentTemplate {
    /// Template name.
    pub name: String,
    /// Which version's pod spec to use: `stable` or `canary`.
    pub spec_ref: String,
    /// Pods (default 1).
    pub replicas: Option<i32>,
    /// Metadata added to the pods.
    pub metadata: Option<PodMetadata>,
    /// Selector for the pods, when they need one of their own.
    pub selector: Option<LabelSelector>,
    /// Traffic weight for the template (traffic routing only).
    pub weight: Option<i32>,
    /// Create a Service for the template.
    pub service: Option<TemplateService>,
}

/// A Service for an experiment template.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateService {
    /// Service name (default: generated).
    pub name: Option<String>,
}

/// An analysis within an experiment step.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStepAnalysisTemplateRef {
    /// Analysis name.
    pub name: String,
    /// Template to run.
    pub template_name: String,
    /// Whether the template is a ClusterAnalysisTemplate.
    pub cluster_scope: Option<bool>,
    /// Arguments.
    pub args: Option<Vec<RolloutAnalysisArgument>>,
    /// The experiment completes only when this analysis does.
    pub required_for_completion: Option<bool>,
}

/// Canary scale independent of weight. Exactly one field.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// Percentage of `spec.replicas`.
    pub weight: Option<i32>,
    /// Absolute pod count.
    pub replicas: Option<i32>,
    /// Go back to scaling with the traffic weight.
    pub match_traffic_weight: Option<bool>,
}

/// A header-based route; no `match` removes it.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// Route name; must be listed in `trafficRouting.managedRoutes`.
    pub name: Option<String>,
    /// Header conditions.
    #[serde(rename = "match")]
    pub match_: Option<Vec<HeaderRoutingMatch>>,
}

/// One header condition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    /// Header name.
    pub header_name: String,
    /// How the value must match.
    pub header_value: StringMatch,
}

/// A string condition: exactly one of `exact`, `prefix`, `regex`.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// Exact value.
    pub exact: Option<String>,
    /// Prefix.
    pub prefix: Option<String>,
    /// Regular expression.
    pub regex: Option<String>,
}

/// A mirror route; no `match` removes it.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetMirrorRoute {
    /// Route name; must be listed in `trafficRouting.managedRoutes`.
    pub name: String,
    /// Request conditions (OR of ANDs).
    #[serde(rename = "match")]
    pub match_: Option<Vec<RouteMatch>>,
    /// Percentage of matching traffic to mirror.
    pub percentage: Option<i32>,
}

/// Request conditions of a mirror route.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// HTTP method.
    pub method: Option<StringMatch>,
    /// URL path.
    pub path: Option<StringMatch>,
    /// Headers by name.
    pub headers: Option<BTreeMap<String, StringMatch>>,
}

/// A step run by a plugin.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginStep {
    /// Plugin name.
    pub name: String,
    /// Free-form configuration for the plugin.
    #[serde(default)]
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub config: Option<serde_json::Value>,
}
