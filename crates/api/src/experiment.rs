//! The `Experiment` kind: ReplicaSets run side by side for a while, judged by analysis.

use k8s_openapi::{
    api::core::v1::PodTemplateSpec,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, Time},
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    AnalysisPhase, AnalysisRunMetadata, Argument, Condition, DryRun, MeasurementRetention,
    Preserved, TemplateService, defaults,
};

/// ReplicaSets run for a duration, with analyses deciding the outcome.
///
/// Like Argo's CRD it has no status subresource.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Experiment",
    namespaced,
    status = "ExperimentStatus",
    shortname = "exp",
    doc = "Experiment is a specification for an Experiment resource",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "Experiment status"
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
pub struct ExperimentSpec {
    /// The ReplicaSets to run.
    pub templates: Vec<TemplateSpec>,
    /// How long to run (a duration string); none runs until terminated or failed.
    pub duration: Option<String>,
    /// Seconds without progress before the experiment fails (default 600).
    pub progress_deadline_seconds: Option<i32>,
    /// Stop the experiment.
    pub terminate: Option<bool>,
    /// Analyses to run.
    pub analyses: Option<Vec<ExperimentAnalysisTemplateRef>>,
    /// Seconds to keep the ReplicaSets after the experiment ends (default 30).
    pub scale_down_delay_seconds: Option<i32>,
    /// Metrics whose failures do not count.
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep.
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Metadata for the AnalysisRuns.
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

impl ExperimentSpec {
    /// `progressDeadlineSeconds`, default 600.
    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(defaults::PROGRESS_DEADLINE_SECONDS)
    }

    /// `scaleDownDelaySeconds`, default 30.
    pub fn scale_down_delay_seconds(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(defaults::SCALE_DOWN_DELAY_SECONDS)
    }

    /// `terminate`, default false.
    pub fn terminate(&self) -> bool {
        self.terminate.unwrap_or(false)
    }
}

/// One ReplicaSet of an experiment.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Template name.
    pub name: String,
    /// Pods (default 1).
    pub replicas: Option<i32>,
    /// Seconds a pod must be ready to count as available.
    pub min_ready_seconds: Option<i32>,
    /// Selector for the pods; unique per template.
    pub selector: LabelSelector,
    /// The pod template, kept exactly as written.
    pub template: Preserved<PodTemplateSpec>,
    /// Create a Service for the template.
    pub service: Option<TemplateService>,
}

impl TemplateSpec {
    /// `replicas`, default 1.
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }
}

/// An analysis an experiment runs.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisTemplateRef {
    /// Analysis name.
    pub name: String,
    /// Template to run.
    pub template_name: String,
    /// Whether it is a ClusterAnalysisTemplate.
    pub cluster_scope: Option<bool>,
    /// Arguments.
    pub args: Option<Vec<Argument>>,
    /// The experiment completes only when this analysis does.
    pub required_for_completion: Option<bool>,
}

/// The status of an Experiment.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// The experiment's phase.
    pub phase: Option<AnalysisPhase>,
    /// Why.
    pub message: Option<String>,
    /// Per-template state.
    pub template_statuses: Option<Vec<TemplateStatus>>,
    /// When every template became available.
    pub available_at: Option<Time>,
    /// Conditions.
    pub conditions: Option<Vec<Condition>>,
    /// The experiment's AnalysisRuns.
    pub analysis_runs: Option<Vec<ExperimentAnalysisRunStatus>>,
}

/// The state of one template's ReplicaSet.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    /// Template name.
    pub name: String,
    /// Pods.
    pub replicas: i32,
    /// Pods with the current template.
    pub updated_replicas: i32,
    /// Ready pods.
    pub ready_replicas: i32,
    /// Available pods.
    pub available_replicas: i32,
    /// Hash collision counter.
    pub collision_count: Option<i32>,
    /// `Progressing`, `Running`, `Successful`, `Failed` or `Error`.
    pub status: Option<TemplateStatusCode>,
    /// Why.
    pub message: Option<String>,
    /// When `status` last changed.
    pub last_transition_time: Option<Time>,
    /// The template's Service.
    pub service_name: Option<String>,
    /// The template's pod-template hash.
    pub pod_template_hash: Option<String>,
}

/// The state of an experiment template.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TemplateStatusCode {
    /// Scaling up.
    Progressing,
    /// Available and running.
    Running,
    /// Finished well.
    Successful,
    /// Failed.
    Failed,
    /// Could not run.
    Error,
}

/// An AnalysisRun of an experiment.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisRunStatus {
    /// Analysis name.
    pub name: String,
    /// AnalysisRun name.
    pub analysis_run: String,
    /// Its phase.
    pub phase: AnalysisPhase,
    /// Its message.
    pub message: Option<String>,
}
