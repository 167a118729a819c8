//! `AnalysisRun.status`: measurements per metric and the run's phase.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The phase of a measurement, a metric, an AnalysisRun or an Experiment.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AnalysisPhase {
    /// Not started.
    Pending,
    /// In progress.
    Running,
    /// Passed.
    Successful,
    /// Failed its condition.
    Failed,
    /// Could not be measured.
    Error,
    /// Neither passed nor failed.
    Inconclusive,
}

impl AnalysisPhase {
    /// Whether the phase is final.
    pub fn completed(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// The status of an AnalysisRun.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// The run's phase.
    pub phase: AnalysisPhase,
    /// Why.
    pub message: Option<String>,
    /// Per-metric results.
    pub metric_results: Option<Vec<MetricResult>>,
    /// When the run started.
    pub started_at: Option<Time>,
    /// When it completed.
    pub completed_at: Option<Time>,
    /// Counts over the metrics that count.
    pub run_summary: Option<RunSummary>,
    /// Counts over dry-run metrics.
    pub dry_run_summary: Option<RunSummary>,
}

/// Counts of metrics by phase.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RunSummary {
    /// Metrics.
    pub count: Option<i32>,
    /// Successful.
    pub successful: Option<i32>,
    /// Failed.
    pub failed: Option<i32>,
    /// Inconclusive.
    pub inconclusive: Option<i32>,
    /// Errored.
    pub error: Option<i32>,
}

/// The results of one metric.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// Metric name.
    pub name: String,
    /// The metric's phase.
    pub phase: AnalysisPhase,
    /// Retained measurements, oldest first.
    pub measurements: Option<Vec<Measurement>>,
    /// Why.
    pub message: Option<String>,
    /// Measurements taken.
    pub count: Option<i32>,
    /// Successful measurements.
    pub successful: Option<i32>,
    /// Failed measurements.
    pub failed: Option<i32>,
    /// Inconclusive measurements.
    pub inconclusive: Option<i32>,
    /// Errored measurements.
    pub error: Option<i32>,
    /// Errors in a row.
    pub consecutive_error: Option<i32>,
    /// Successes in a row.
    pub consecutive_success: Option<i32>,
    /// Whether the metric is a dry run.
    pub dry_run: Option<bool>,
    /// Provider details (for example `ResolvedPrometheusQuery`).
    pub metadata: Option<BTreeMap<String, String>>,
}

/// One measurement.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Its phase.
    pub phase: AnalysisPhase,
    /// Why.
    pub message: Option<String>,
    /// When it started.
    pub started_at: Option<Time>,
    /// When it finished.
    pub finished_at: Option<Time>,
    /// The measured value, as text.
    pub value: Option<String>,
    /// Provider details (for example a Job name).
    pub metadata: Option<BTreeMap<String, String>>,
    /// When a running measurement is next checked.
    pub resume_at: Option<Time>,
}
