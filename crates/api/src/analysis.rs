//! AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun specs, their metrics and arguments,
//! and the references a Rollout makes to templates (`RolloutAnalysis`).

use std::ops::Deref;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{AnalysisRunStatus, MetricProvider, PodMetadata, defaults};

/// Labels and annotations for the AnalysisRuns a Rollout or Experiment creates.
pub type AnalysisRunMetadata = PodMetadata;

/// A reusable set of metrics with their arguments.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    shortname = "at",
    doc = "AnalysisTemplate holds the template for performing canary analysis",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    ),
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// The metrics to measure.
    pub metrics: Option<Vec<Metric>>,
    /// Arguments the metrics reference as `{{args.name}}`.
    pub args: Option<Vec<Argument>>,
    /// Metrics (by name regex) whose failures do not fail the run.
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep per metric (by name regex).
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Other templates whose metrics and arguments are merged in.
    pub templates: Option<Vec<AnalysisTemplateRef>>,
}

impl AnalysisTemplateSpec {
    /// The metrics, empty when absent.
    pub fn metrics(&self) -> &[Metric] {
        self.metrics.as_deref().unwrap_or_default()
    }
}

/// The cluster-scoped AnalysisTemplate: the same spec, usable from every namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    shortname = "cat",
    doc = "ClusterAnalysisTemplate holds the template for performing canary analysis",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    ),
    derive = "PartialEq",
    derive = "Default"
)]
pub struct ClusterAnalysisTemplateSpec {
    /// The template spec (flattened: the YAML is exactly an AnalysisTemplate's spec).
    #[serde(flatten)]
    pub template: AnalysisTemplateSpec,
}

impl Deref for ClusterAnalysisTemplateSpec {
    type Target = AnalysisTemplateSpec;

    fn deref(&self) -> &AnalysisTemplateSpec {
        &self.template
    }
}

/// One run of a set of metrics, created by a Rollout, an Experiment or a user.
///
/// Like Argo's CRD it has no status subresource: its status is written through the main
/// resource with a resourceVersion.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisRun",
    namespaced,
    status = "AnalysisRunStatus",
    shortname = "ar",
    doc = "AnalysisRun is an instantiation of an AnalysisTemplate",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "AnalysisRun status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    ),
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics to measure.
    pub metrics: Vec<Metric>,
    /// Resolved arguments.
    pub args: Option<Vec<Argument>>,
    /// Stop measuring and finish.
    pub terminate: Option<bool>,
    /// Metrics (by name regex) whose failures do not fail the run.
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep per metric.
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// When to delete the run after it completes.
    pub ttl_strategy: Option<TtlStrategy>,
}

impl AnalysisRunSpec {
    /// `terminate`, default false.
    pub fn terminate(&self) -> bool {
        self.terminate.unwrap_or(false)
    }
}

/// Deletion of a finished AnalysisRun.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    /// Seconds after any completion.
    pub seconds_after_completion: Option<i32>,
    /// Seconds after success.
    pub seconds_after_success: Option<i32>,
    /// Seconds after failure.
    pub seconds_after_failure: Option<i32>,
}

/// One metric: what to measure, how often, and how to judge it.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Unique name.
    pub name: String,
    /// Time between measurements (a duration string); none means a single measurement.
    pub interval: Option<String>,
    /// Delay before the first measurement.
    pub initial_delay: Option<String>,
    /// Number of measurements; none with an interval means until terminated.
    pub count: Option<IntOrString>,
    /// Expression that makes a measurement Successful.
    pub success_condition: Option<String>,
    /// Expression that makes a measurement Failed.
    pub failure_condition: Option<String>,
    /// Failed measurements tolerated (default 0; -1 disables).
    pub failure_limit: Option<IntOrString>,
    /// Inconclusive measurements tolerated (default 0).
    pub inconclusive_limit: Option<IntOrString>,
    /// Consecutive errors tolerated (default 4).
    pub consecutive_error_limit: Option<IntOrString>,
    /// Consecutive successes that complete the metric (default 0: off).
    pub consecutive_success_limit: Option<IntOrString>,
    /// Where measurements come from.
    pub provider: MetricProvider,
}

impl Metric {
    /// `failureLimit` when it is a number (default 0). Templated strings resolve at run time.
    pub fn failure_limit(&self) -> Option<i32> {
        int_or_default(self.failure_limit.as_ref(), 0)
    }

    /// `inconclusiveLimit` when it is a number (default 0).
    pub fn inconclusive_limit(&self) -> Option<i32> {
        int_or_default(self.inconclusive_limit.as_ref(), 0)
    }

    /// `consecutiveErrorLimit` when it is a number (default 4).
    pub fn consecutive_error_limit(&self) -> Option<i32> {
        int_or_default(
            self.consecutive_error_limit.as_ref(),
            defaults::CONSECUTIVE_ERROR_LIMIT,
        )
    }

    /// `consecutiveSuccessLimit` when it is a number (default 0).
    pub fn consecutive_success_limit(&self) -> Option<i32> {
        int_or_default(self.consecutive_success_limit.as_ref(), 0)
    }
}

/// The integer in an int-or-string, or `default` when absent; `None` for a string that is
/// not a plain integer (an `{{args.x}}` template, resolved only when a run is created).
fn int_or_default(value: Option<&IntOrString>, default: i32) -> Option<i32> {
    match value {
        None => Some(default),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(s)) => s.trim().parse().ok(),
    }
}

/// An argument of a template or run.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// Name, referenced as `{{args.name}}`.
    pub name: String,
    /// Literal value; absent means the caller must supply it.
    pub value: Option<String>,
    /// Where the value comes from.
    pub value_from: Option<ValueFrom>,
}

/// The source of an argument's value in a template or run.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Secret in the run's namespace.
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A field of the owning object.
    pub field_ref: Option<FieldRef>,
}

/// A key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key.
    pub key: String,
}

/// A field of an object, by path (`metadata.labels['app']`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// The field path.
    pub field_path: String,
}

/// Metrics matched by a name regex whose results do not count.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Metric name regex (`.*` for all).
    pub metric_name: String,
}

/// How many measurements to keep for metrics matched by a name regex.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// Metric name regex.
    pub metric_name: String,
    /// Measurements to keep.
    pub limit: i32,
}

/// A reference to an AnalysisTemplate or ClusterAnalysisTemplate.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// Template name.
    pub template_name: Option<String>,
    /// Whether it is a ClusterAnalysisTemplate.
    pub cluster_scope: Option<bool>,
}

/// An analysis a Rollout runs: templates, arguments and run options.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// Templates whose metrics are merged into one run.
    pub templates: Option<Vec<AnalysisTemplateRef>>,
    /// Arguments for the templates.
    pub args: Option<Vec<RolloutAnalysisArgument>>,
    /// Metrics whose failures do not count.
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep.
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Metadata for the run.
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

impl RolloutAnalysis {
    /// The template references, empty when absent.
    pub fn templates(&self) -> &[AnalysisTemplateRef] {
        self.templates.as_deref().unwrap_or_default()
    }
}

/// An argument a Rollout passes to its analysis.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisArgument {
    /// Name.
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub value_from: Option<ArgumentValueFrom>,
}

/// The source of a Rollout-side argument.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentValueFrom {
    /// `Stable` or `Latest`: the pod-template hash of that ReplicaSet.
    pub pod_template_hash_value: Option<String>,
    /// A field of the Rollout.
    pub field_ref: Option<FieldRef>,
}
