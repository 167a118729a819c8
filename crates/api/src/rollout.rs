//! The `Rollout` kind: its spec, the strategy choice, and the defaults Argo keeps in code.
//!
//! Defaults are never serialized (DESIGN §5): a field the user left out stays out, and the
//! accessor methods here return Argo's default (`utils/defaults/defaults.go`).

use k8s_openapi::{
    api::core::v1::PodTemplateSpec,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, Time},
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{BlueGreenStrategy, CanaryStrategy, Preserved, RolloutStatus, defaults};

/// A Deployment with progressive delivery: blue-green or canary, gated by analysis.
// Several printer columns share `type_ = "integer"`, which clippy takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
    shortname = "ro",
    doc = "Rollout is a specification for a Rollout resource",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Number of desired pods"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Total number of non-terminated pods targeted by this rollout"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Total number of non-terminated pods targeted by this rollout that have the desired template spec"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas",
        description = "Total number of available pods (ready for at least minReadySeconds) targeted by this rollout"
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
pub struct RolloutSpec {
    /// Desired pods (default 1).
    pub replicas: Option<i32>,
    /// Label selector for pods; must match the template's labels. Immutable.
    pub selector: Option<LabelSelector>,
    /// The pod template. Empty when `workloadRef` is set.
    pub template: Option<Preserved<PodTemplateSpec>>,
    /// Take the template and selector from another workload instead.
    pub workload_ref: Option<WorkloadRef>,
    /// Seconds a new pod must be ready, without a container crashing, to count as available.
    pub min_ready_seconds: Option<i32>,
    /// How the new version replaces the old.
    pub strategy: Option<RolloutStrategy>,
    /// Old ReplicaSets to keep for rollback (default 10).
    pub revision_history_limit: Option<i32>,
    /// Manual pause: no ReplicaSet scaling and no Service switches while true.
    pub paused: Option<bool>,
    /// Seconds without progress before the update is reported failed (default 600).
    pub progress_deadline_seconds: Option<i32>,
    /// Abort the update when the progress deadline passes.
    pub progress_deadline_abort: Option<bool>,
    /// Restart pods created before this time.
    pub restart_at: Option<Time>,
    /// Fast-track rollbacks to ReplicaSets within this window.
    pub rollback_window: Option<RollbackWindowSpec>,
    /// Retention of finished AnalysisRuns and Experiments.
    pub analysis: Option<AnalysisRunStrategy>,
}

/// The strategy: exactly one of `blueGreen` or `canary`.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Blue-green: a preview stack, then an instant switch of the active Service.
    pub blue_green: Option<BlueGreenStrategy>,
    /// Canary: weighted steps.
    pub canary: Option<CanaryStrategy>,
}

/// A reference to the workload whose template a Rollout uses.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// API version of the referent (`apps/v1`).
    pub api_version: Option<String>,
    /// Kind of the referent: `Deployment`, `ReplicaSet` or `PodTemplate`.
    pub kind: Option<String>,
    /// Name of the referent.
    pub name: Option<String>,
    /// What happens to the referenced Deployment: `never`, `onsuccess` or `progressively`.
    pub scale_down: Option<String>,
}

/// How many revisions back a rollback is fast-tracked.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindowSpec {
    /// Number of revisions.
    pub revisions: Option<i32>,
}

/// Retention of finished AnalysisRuns and Experiments.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStrategy {
    /// Successful runs to keep (default 5).
    pub successful_run_history_limit: Option<i32>,
    /// Failed, errored or inconclusive runs to keep (default 5).
    pub unsuccessful_run_history_limit: Option<i32>,
}

/// The strategy a Rollout uses, resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy<'a> {
    /// `spec.strategy.blueGreen`.
    BlueGreen(&'a BlueGreenStrategy),
    /// `spec.strategy.canary`.
    Canary(&'a CanaryStrategy),
}

impl RolloutSpec {
    /// Desired pods (`replicas`, default 1).
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(defaults::REPLICAS)
    }

    /// `revisionHistoryLimit`, default 10.
    pub fn revision_history_limit(&self) -> i32 {
        self.revision_history_limit
            .unwrap_or(defaults::REVISION_HISTORY_LIMIT)
    }

    /// `progressDeadlineSeconds`, default 600.
    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(defaults::PROGRESS_DEADLINE_SECONDS)
    }

    /// `minReadySeconds`, default 0.
    pub fn min_ready_seconds(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(0)
    }

    /// `paused`, default false.
    pub fn paused(&self) -> bool {
        self.paused.unwrap_or(false)
    }

    /// `progressDeadlineAbort`, default false.
    pub fn progress_deadline_abort(&self) -> bool {
        self.progress_deadline_abort.unwrap_or(false)
    }

    /// `analysis.successfulRunHistoryLimit`, default 5.
    pub fn successful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.successful_run_history_limit)
            .unwrap_or(defaults::RUN_HISTORY_LIMIT)
    }

    /// `analysis.unsuccessfulRunHistoryLimit`, default 5.
    pub fn unsuccessful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.unsuccessful_run_history_limit)
            .unwrap_or(defaults::RUN_HISTORY_LIMIT)
    }

    /// The strategy, when exactly one is set; `None` otherwise (validation reports why).
    pub fn strategy(&self) -> Option<Strategy<'_>> {
        let strategy = self.strategy.as_ref()?;
        match (&strategy.blue_green, &strategy.canary) {
            (Some(bg), None) => Some(Strategy::BlueGreen(bg)),
            (None, Some(canary)) => Some(Strategy::Canary(canary)),
            _ => None,
        }
    }
}
