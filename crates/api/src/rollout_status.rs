//! `Rollout.status`: what the controller observed and decided, and the phase users read.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{AnalysisPhase, Condition};

/// The status of a Rollout.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Aborted by the user or by analysis.
    pub abort: Option<bool>,
    /// Pauses the controller added, with their reasons.
    pub pause_conditions: Option<Vec<PauseCondition>>,
    /// The controller paused the rollout at least once in this update.
    pub controller_pause: Option<bool>,
    /// When the rollout was aborted.
    pub aborted_at: Option<Time>,
    /// Skip every remaining step, pause and analysis.
    pub promote_full: Option<bool>,
    /// Total pods of all ReplicaSets.
    pub replicas: Option<i32>,
    /// Pods of the newest ReplicaSet.
    pub updated_replicas: Option<i32>,
    /// Ready pods (blue-green: of the active ReplicaSet).
    pub ready_replicas: Option<i32>,
    /// Available pods (blue-green: of the active ReplicaSet).
    pub available_replicas: Option<i32>,
    /// Canary: index of the current step (`len(steps)` when done).
    pub current_step_index: Option<i32>,
    /// Hash of the canary steps; a change restarts from step 0.
    pub current_step_hash: Option<String>,
    /// Pod-template hash of the desired ReplicaSet.
    pub current_pod_hash: Option<String>,
    /// Pod-template hash of the last fully promoted ReplicaSet.
    #[serde(rename = "stableRS")]
    pub stable_rs: Option<String>,
    /// `metadata.generation` the controller last acted on, as a string.
    pub observed_generation: Option<String>,
    /// Conditions.
    pub conditions: Option<Vec<Condition>>,
    /// Canary bookkeeping.
    pub canary: Option<CanaryStatus>,
    /// Blue-green bookkeeping.
    pub blue_green: Option<BlueGreenStatus>,
    /// Counter that changes the pod-template hash on collisions.
    pub collision_count: Option<i32>,
    /// Last completed `spec.restartAt`.
    pub restarted_at: Option<Time>,
    /// Pods counted by the scale subresource (HPA target).
    #[serde(rename = "HPAReplicas")]
    pub hpa_replicas: Option<i32>,
    /// Label selector for the scale subresource, serialized.
    pub selector: Option<String>,
    /// `Healthy`, `Progressing`, `Paused` or `Degraded`.
    pub phase: Option<RolloutPhase>,
    /// Why the rollout is in its phase.
    pub message: Option<String>,
    /// Generation of the `workloadRef` target last observed.
    pub workload_observed_generation: Option<String>,
    /// ALB bookkeeping (one Ingress).
    pub alb: Option<AlbStatus>,
    /// ALB bookkeeping (several Ingresses).
    pub albs: Option<Vec<AlbStatus>>,
    /// Durations of the current update.
    pub duration: Option<RolloutDuration>,
}

/// The phase of a Rollout. Argo has no `Error` phase for Rollouts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RolloutPhase {
    /// Fully promoted and available.
    Healthy,
    /// An update is in flight.
    Progressing,
    /// Paused by the user or by the controller.
    Paused,
    /// Aborted, invalid, or past its progress deadline.
    Degraded,
}

/// A pause the controller added.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// Why the rollout paused.
    pub reason: PauseReason,
    /// When it paused.
    pub start_time: Time,
}

/// Why the controller paused a rollout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PauseReason {
    /// A canary `pause` step.
    CanaryPauseStep,
    /// Blue-green waiting for promotion.
    BlueGreenPause,
    /// An AnalysisRun ended Inconclusive.
    InconclusiveAnalysisRun,
    /// An Experiment ended Inconclusive.
    InconclusiveExperiment,
}

impl PauseReason {
    /// The reason as Argo writes it (`status.pauseConditions[].reason`, the Paused message).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CanaryPauseStep => "CanaryPauseStep",
            Self::BlueGreenPause => "BlueGreenPause",
            Self::InconclusiveAnalysisRun => "InconclusiveAnalysisRun",
            Self::InconclusiveExperiment => "InconclusiveExperiment",
        }
    }
}

/// Canary bookkeeping.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The AnalysisRun of the current step.
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The background AnalysisRun.
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The Experiment of the current step.
    pub current_experiment: Option<String>,
    /// Traffic weights last set on the router.
    pub weights: Option<TrafficWeights>,
    /// Which of the ping-pong Services is stable: `ping` or `pong`.
    pub stable_ping_pong: Option<String>,
    /// Step plugin state.
    pub step_plugin_statuses: Option<Vec<StepPluginStatus>>,
}

/// Blue-green bookkeeping.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// Hash the preview Service selects.
    pub preview_selector: Option<String>,
    /// Hash the active Service selects.
    pub active_selector: Option<String>,
    /// The new ReplicaSet was scaled from `previewReplicaCount` to full.
    pub scale_up_preview_check_point: Option<bool>,
    /// The pre-promotion AnalysisRun.
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The post-promotion AnalysisRun.
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

/// An AnalysisRun as the Rollout tracks it.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct RolloutAnalysisRunStatus {
    /// AnalysisRun name.
    pub name: String,
    /// Its phase.
    pub status: AnalysisPhase,
    /// Its message.
    pub message: Option<String>,
}

/// Traffic weights.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TrafficWeights {
    /// Canary destination.
    pub canary: WeightDestination,
    /// Stable destination.
    pub stable: WeightDestination,
    /// Experiment destinations.
    pub additional: Option<Vec<WeightDestination>>,
    /// Whether the router confirmed the weights.
    pub verified: Option<bool>,
}

/// One weighted destination.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    /// Weight.
    pub weight: i32,
    /// Service.
    pub service_name: Option<String>,
    /// ReplicaSet hash.
    pub pod_template_hash: Option<String>,
}

/// Step plugin state.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepPluginStatus {
    /// Step index.
    pub index: i32,
    /// Plugin name.
    pub name: String,
    /// `Run`, `Terminate` or `Abort`.
    pub operation: String,
    /// Phase.
    pub phase: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// Start time.
    pub started_at: Option<Time>,
    /// Last update.
    pub updated_at: Option<Time>,
    /// End time.
    pub finished_at: Option<Time>,
    /// Back-off before the next run.
    pub backoff: Option<String>,
    /// Runs so far.
    pub executions: Option<i32>,
    /// Disabled.
    pub disabled: Option<bool>,
    /// Plugin-owned state.
    #[serde(default)]
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub status: Option<serde_json::Value>,
}

/// ALB bookkeeping.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbStatus {
    /// Load balancer.
    pub load_balancer: Option<AwsResourceRef>,
    /// Canary target group.
    pub canary_target_group: Option<AwsResourceRef>,
    /// Stable target group.
    pub stable_target_group: Option<AwsResourceRef>,
    /// Ingress.
    pub ingress: Option<String>,
}

/// An AWS resource.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsResourceRef {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Full name.
    pub full_name: Option<String>,
}

/// Timing of the current update.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutDuration {
    /// When the update started.
    pub rollout_started_at: Option<Time>,
    /// When the current manual pause started.
    pub manual_pause_started_at: Option<Time>,
    /// Seconds spent manually paused.
    pub total_manual_pause_duration_seconds: Option<i64>,
    /// When the update finished.
    pub finished_at: Option<Time>,
    /// How it finished.
    pub completion_status: Option<CompletionStatus>,
}

/// How an update finished.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CompletionStatus {
    /// Promoted through every step.
    Promoted,
    /// Promoted with `promote --full`.
    FastPromoted,
    /// Aborted.
    Aborted,
    /// Replaced by a newer update.
    Superseded,
    /// Rolled back.
    RolledBack,
    /// Rolled back without steps.
    FastRolledBack,
}
