//! `Application.status`: the last comparison (sync status and revision), health, the managed
//! resources, conditions, sync history and the state of the current or last operation.
//!
//! Values Argo CD may extend (sync and health codes, operation phases, per-resource results,
//! hook types, condition types) are plain strings in the API types so unknown values round-trip;
//! the modules beside them ([`sync_status`], [`health_status`], [`operation_phase`],
//! [`result_code`], [`hook_type`], [`sync_phase`], [`app_condition`], [`source_type`],
//! [`hydrate_phase`]) name the known ones, and [`HealthCode`] orders health for aggregation.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    ApplicationDestination, ApplicationSource, ManagedNamespaceMetadata, Operation,
    OperationInitiator, ResourceIgnoreDifferences, SourceHydrator,
};

/// Sync status codes (`status.sync.status`, `status.resources[].status`).
pub mod sync_status {
    /// Every non-hook resource matches the target state.
    pub const SYNCED: &str = "Synced";
    /// A difference, a missing resource or an extra one.
    pub const OUT_OF_SYNC: &str = "OutOfSync";
    /// The target state could not be determined.
    pub const UNKNOWN: &str = "Unknown";
}

/// Health status codes (`status.health.status`, `status.resources[].health.status`).
pub mod health_status {
    /// Healthy.
    pub const HEALTHY: &str = "Healthy";
    /// Suspended (paused, a suspended CronJob).
    pub const SUSPENDED: &str = "Suspended";
    /// Not healthy yet, may become so.
    pub const PROGRESSING: &str = "Progressing";
    /// The resource does not exist.
    pub const MISSING: &str = "Missing";
    /// Failed.
    pub const DEGRADED: &str = "Degraded";
    /// Health could not be assessed.
    pub const UNKNOWN: &str = "Unknown";
}

/// Operation phases (`status.operationState.phase`, `resources[].hookPhase`).
pub mod operation_phase {
    /// In progress.
    pub const RUNNING: &str = "Running";
    /// Being terminated.
    pub const TERMINATING: &str = "Terminating";
    /// Failed (a resource or hook failed).
    pub const FAILED: &str = "Failed";
    /// Errored (the operation could not run).
    pub const ERROR: &str = "Error";
    /// Succeeded.
    pub const SUCCEEDED: &str = "Succeeded";

    /// The phase is final: `Failed`, `Error` or `Succeeded`.
    pub fn is_completed(phase: &str) -> bool {
        matches!(phase, FAILED | ERROR | SUCCEEDED)
    }

    /// The phase is a failure: `Failed` or `Error`.
    pub fn is_failed(phase: &str) -> bool {
        matches!(phase, FAILED | ERROR)
    }
}

/// Per-resource sync results (`syncResult.resources[].status`).
pub mod result_code {
    /// Applied.
    pub const SYNCED: &str = "Synced";
    /// The apply failed.
    pub const SYNC_FAILED: &str = "SyncFailed";
    /// Deleted.
    pub const PRUNED: &str = "Pruned";
    /// Not deleted (pruning off, `Prune=false`, or awaiting confirmation).
    pub const PRUNE_SKIPPED: &str = "PruneSkipped";
}

/// Hook types (`argocd.argoproj.io/hook`, `syncResult.resources[].hookType`).
pub mod hook_type {
    /// Before the Sync phase.
    pub const PRE_SYNC: &str = "PreSync";
    /// With the Sync phase.
    pub const SYNC: &str = "Sync";
    /// After a successful, healthy Sync phase.
    pub const POST_SYNC: &str = "PostSync";
    /// Never applied.
    pub const SKIP: &str = "Skip";
    /// When the sync fails.
    pub const SYNC_FAIL: &str = "SyncFail";
    /// Before the Application's resources are deleted.
    pub const PRE_DELETE: &str = "PreDelete";
    /// After the Application's resources are deleted.
    pub const POST_DELETE: &str = "PostDelete";
}

/// Sync phases (`syncResult.resources[].syncPhase`).
pub mod sync_phase {
    /// Before the main apply.
    pub const PRE_SYNC: &str = "PreSync";
    /// The main apply.
    pub const SYNC: &str = "Sync";
    /// After the main apply.
    pub const POST_SYNC: &str = "PostSync";
    /// After a failure.
    pub const SYNC_FAIL: &str = "SyncFail";
}

/// Application condition types (`status.conditions[].type`).
pub mod app_condition {
    /// Manifests could not be generated or compared.
    pub const COMPARISON_ERROR: &str = "ComparisonError";
    /// The spec is invalid (project, destination, source).
    pub const INVALID_SPEC_ERROR: &str = "InvalidSpecError";
    /// The last automated sync failed.
    pub const SYNC_ERROR: &str = "SyncError";
    /// Deleting the Application's resources failed.
    pub const DELETION_ERROR: &str = "DeletionError";
    /// Anything else.
    pub const UNKNOWN_ERROR: &str = "UnknownError";
    /// A resource is also tracked by another Application.
    pub const SHARED_RESOURCE_WARNING: &str = "SharedResourceWarning";
    /// A resource appears twice in the manifests.
    pub const REPEATED_RESOURCE_WARNING: &str = "RepeatedResourceWarning";
    /// A resource is excluded by the controller's settings.
    pub const EXCLUDED_RESOURCE_WARNING: &str = "ExcludedResourceWarning";
    /// The namespace holds resources no Application tracks.
    pub const ORPHANED_RESOURCE_WARNING: &str = "OrphanedResourceWarning";

    /// Error conditions (as opposed to warnings).
    pub fn is_error(condition_type: &str) -> bool {
        condition_type.ends_with("Error")
    }
}

/// Source types (`status.sourceType`, `status.sourceTypes[]`).
pub mod source_type {
    /// A Helm chart.
    pub const HELM: &str = "Helm";
    /// A Kustomization.
    pub const KUSTOMIZE: &str = "Kustomize";
    /// Plain manifests or Jsonnet.
    pub const DIRECTORY: &str = "Directory";
    /// A Config Management Plugin.
    pub const PLUGIN: &str = "Plugin";
}

/// Hydration phases (`status.sourceHydrator.currentOperation.phase`).
pub mod hydrate_phase {
    /// In progress.
    pub const HYDRATING: &str = "Hydrating";
    /// Failed.
    pub const FAILED: &str = "Failed";
    /// Done.
    pub const HYDRATED: &str = "Hydrated";
}

/// Where resource health lives (`status.resourceHealthSource`).
pub mod resource_health_source {
    /// In `status.resources[].health` (empty string, the default).
    pub const INLINE: &str = "";
    /// In the resource tree cache, not in the Application.
    pub const APP_TREE: &str = "appTree";
}

/// A health code, ordered from best to worst as Argo CD aggregates health (`healthOrder`):
/// the Application's health is the worst of its resources'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthCode {
    /// `Healthy`.
    Healthy,
    /// `Suspended`.
    Suspended,
    /// `Progressing`.
    Progressing,
    /// `Missing`.
    Missing,
    /// `Degraded`.
    Degraded,
    /// `Unknown`.
    Unknown,
}

impl HealthCode {
    /// Every code, best first.
    pub const ALL: [Self; 6] = [
        Self::Healthy,
        Self::Suspended,
        Self::Progressing,
        Self::Missing,
        Self::Degraded,
        Self::Unknown,
    ];

    /// The code as Argo CD writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Healthy => health_status::HEALTHY,
            Self::Suspended => health_status::SUSPENDED,
            Self::Progressing => health_status::PROGRESSING,
            Self::Missing => health_status::MISSING,
            Self::Degraded => health_status::DEGRADED,
            Self::Unknown => health_status::UNKNOWN,
        }
    }

    /// The code for a string; `None` for one sluice does not know.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

/// The status of an Application.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The managed resources.
    pub resources: Option<Vec<ResourceStatus>>,
    /// The last comparison.
    pub sync: Option<SyncStatus>,
    /// The aggregated health.
    pub health: Option<HealthStatus>,
    /// Successful syncs, newest last, at most `revisionHistoryLimit`.
    pub history: Option<Vec<RevisionHistory>>,
    /// Errors and warnings.
    pub conditions: Option<Vec<ApplicationCondition>>,
    /// When the state was last compared against the latest source.
    pub reconciled_at: Option<Time>,
    /// The current or last operation.
    pub operation_state: Option<OperationState>,
    /// When the state was last updated without querying the source (deprecated in Argo CD).
    pub observed_at: Option<Time>,
    /// The type of the single source.
    pub source_type: Option<String>,
    /// The type of each source.
    pub source_types: Option<Vec<String>>,
    /// URLs and images of the managed resources.
    pub summary: Option<ApplicationSummary>,
    /// Where resource health lives: empty (inline) or `appTree`.
    pub resource_health_source: Option<String>,
    /// Namespace of the controller that manages the Application.
    pub controller_namespace: Option<String>,
    /// Hydration state.
    pub source_hydrator: Option<SourceHydratorStatus>,
}

impl ApplicationStatus {
    /// `sync.status`, `""` when absent.
    pub fn sync_status(&self) -> &str {
        self.sync.as_ref().map_or("", |s| s.status.as_str())
    }

    /// `health.status`, `""` when absent.
    pub fn health_status(&self) -> &str {
        self.health
            .as_ref()
            .and_then(|h| h.status.as_deref())
            .unwrap_or_default()
    }

    /// An operation is running (its state exists and is not final).
    pub fn operation_running(&self) -> bool {
        self.operation_state
            .as_ref()
            .is_some_and(|state| !state.is_completed())
    }
}

/// The result of the last comparison.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// `Synced`, `OutOfSync` or `Unknown` ([`sync_status`]).
    pub status: String,
    /// What was compared.
    pub compared_to: Option<ComparedTo>,
    /// Resolved revision (single source).
    pub revision: Option<String>,
    /// Resolved revision of each source.
    pub revisions: Option<Vec<String>>,
}

/// What a comparison used. A change forces a new comparison.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComparedTo {
    /// The single source.
    pub source: Option<ApplicationSource>,
    /// The destination.
    pub destination: ApplicationDestination,
    /// The sources.
    pub sources: Option<Vec<ApplicationSource>>,
    /// The ignored differences.
    pub ignore_differences: Option<Vec<ResourceIgnoreDifferences>>,
}

/// A health status, of the Application or one resource.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// A code of [`health_status`].
    pub status: Option<String>,
    /// Why.
    pub message: Option<String>,
    /// When `status` last changed.
    pub last_transition_time: Option<Time>,
}

impl HealthStatus {
    /// The code, when it is one sluice knows.
    pub fn code(&self) -> Option<HealthCode> {
        HealthCode::parse(self.status.as_deref()?)
    }
}

/// A managed resource: its sync status and health.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// API group.
    pub group: Option<String>,
    /// API version.
    pub version: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// A code of [`sync_status`].
    pub status: Option<String>,
    /// Health (absent when kept in the resource tree, `resourceHealthSource: appTree`).
    pub health: Option<HealthStatus>,
    /// A hook.
    pub hook: Option<bool>,
    /// Present live but not in the target state.
    pub requires_pruning: Option<bool>,
    /// Its sync wave.
    pub sync_wave: Option<i64>,
    /// Deleting it waits for a manual confirmation.
    pub requires_deletion_confirmation: Option<bool>,
}

/// A condition of an Application.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCondition {
    /// A type of [`app_condition`].
    #[serde(rename = "type")]
    pub type_: String,
    /// What happened.
    pub message: String,
    /// When it was last observed.
    pub last_transition_time: Option<Time>,
}

/// A successful sync, kept for history and rollback.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionHistory {
    /// Revision synced (single source).
    pub revision: Option<String>,
    /// When the sync completed.
    pub deployed_at: Time,
    /// Incrementing identifier; rollbacks name it.
    pub id: i64,
    /// Source synced (single source).
    pub source: Option<ApplicationSource>,
    /// When the sync started.
    pub deploy_started_at: Option<Time>,
    /// Sources synced.
    pub sources: Option<Vec<ApplicationSource>>,
    /// Revision of each source.
    pub revisions: Option<Vec<String>>,
    /// Who started the sync.
    pub initiated_by: Option<OperationInitiator>,
}

/// The state of the current or last operation.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    /// The operation.
    pub operation: Operation,
    /// A phase of [`operation_phase`].
    pub phase: String,
    /// Progress or error message.
    pub message: Option<String>,
    /// The sync's result.
    pub sync_result: Option<SyncOperationResult>,
    /// When it started.
    pub started_at: Time,
    /// When it completed.
    pub finished_at: Option<Time>,
    /// Retries so far.
    pub retry_count: Option<i64>,
}

impl OperationState {
    /// The phase is final ([`operation_phase::is_completed`]).
    pub fn is_completed(&self) -> bool {
        operation_phase::is_completed(&self.phase)
    }

    /// `retryCount`, default 0.
    pub fn retry_count(&self) -> i64 {
        self.retry_count.unwrap_or(0)
    }
}

/// The result of a sync.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResult {
    /// Each resource's result.
    pub resources: Option<Vec<ResourceResult>>,
    /// Revision synced (single source).
    pub revision: String,
    /// Source synced (single source).
    pub source: Option<ApplicationSource>,
    /// Sources synced.
    pub sources: Option<Vec<ApplicationSource>>,
    /// Revision of each source.
    pub revisions: Option<Vec<String>>,
    /// The managed namespace metadata applied.
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
}

/// One resource's result in a sync.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// A code of [`result_code`]; empty until applied.
    pub status: Option<String>,
    /// Message of the apply or hook.
    pub message: Option<String>,
    /// A type of [`hook_type`]; empty for resources that are not hooks.
    pub hook_type: Option<String>,
    /// A phase of [`operation_phase`] for the resource or hook.
    pub hook_phase: Option<String>,
    /// A phase of [`sync_phase`].
    pub sync_phase: Option<String>,
    /// Images of the resource.
    pub images: Option<Vec<String>>,
}

/// URLs and images of the managed resources.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSummary {
    /// External URLs (Ingress hosts, `link.argocd.argoproj.io/*` annotations).
    #[serde(rename = "externalURLs")]
    pub external_urls: Option<Vec<String>>,
    /// Container images.
    pub images: Option<Vec<String>>,
    /// Some managed resource is an Application.
    pub is_app_of_apps: Option<bool>,
}

/// Hydration state.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceHydratorStatus {
    /// The last successful hydration.
    pub last_successful_operation: Option<SuccessfulHydrateOperation>,
    /// The current or last hydration.
    pub current_operation: Option<HydrateOperation>,
    /// The dry revision last compared.
    pub last_compared_dry_revision: Option<String>,
}

/// A hydration in progress or finished.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HydrateOperation {
    /// When it started.
    pub started_at: Option<Time>,
    /// When it finished.
    pub finished_at: Option<Time>,
    /// A phase of [`hydrate_phase`].
    pub phase: String,
    /// Progress or error message.
    pub message: String,
    /// Dry revision hydrated.
    #[serde(rename = "drySHA")]
    pub dry_sha: Option<String>,
    /// Hydrated commit.
    #[serde(rename = "hydratedSHA")]
    pub hydrated_sha: Option<String>,
    /// The hydrator settings used.
    pub source_hydrator: Option<SourceHydrator>,
}

/// The last successful hydration.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuccessfulHydrateOperation {
    /// Dry revision hydrated.
    #[serde(rename = "drySHA")]
    pub dry_sha: Option<String>,
    /// Hydrated commit.
    #[serde(rename = "hydratedSHA")]
    pub hydrated_sha: Option<String>,
    /// The hydrator settings used.
    pub source_hydrator: Option<SourceHydrator>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_orders_as_argo_cd_aggregates() {
        let worst = ["Healthy", "Progressing", "Suspended", "Missing"]
            .into_iter()
            .filter_map(HealthCode::parse)
            .max();
        assert_eq!(worst, Some(HealthCode::Missing));
        assert!(HealthCode::Degraded < HealthCode::Unknown);
        assert!(HealthCode::Healthy < HealthCode::Suspended);
        assert_eq!(HealthCode::parse("Bogus"), None);
        for code in HealthCode::ALL {
            assert_eq!(HealthCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn operation_phases() {
        assert!(operation_phase::is_completed("Succeeded"));
        assert!(operation_phase::is_completed("Error"));
        assert!(!operation_phase::is_completed("Running"));
        assert!(!operation_phase::is_completed("Terminating"));
        assert!(operation_phase::is_failed("Failed"));
        assert!(!operation_phase::is_failed("Succeeded"));
        assert!(app_condition::is_error(app_condition::SYNC_ERROR));
        assert!(!app_condition::is_error(
            app_condition::SHARED_RESOURCE_WARNING
        ));
    }

    #[test]
    fn empty_status_reads_as_unknown() {
        let status = ApplicationStatus::default();
        assert_eq!(status.sync_status(), "");
        assert_eq!(status.health_status(), "");
        assert!(!status.operation_running());
    }
}
