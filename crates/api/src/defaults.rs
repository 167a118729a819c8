//! Argo's defaults, kept in code as Argo keeps them (`utils/defaults/defaults.go`). Accessor
//! methods on the spec types apply them; nothing here is ever serialized.

/// `spec.replicas`.
pub const REPLICAS: i32 = 1;
/// `spec.revisionHistoryLimit`.
pub const REVISION_HISTORY_LIMIT: i32 = 10;
/// `spec.progressDeadlineSeconds` (and Experiments').
pub const PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// `spec.analysis.{successful,unsuccessful}RunHistoryLimit`.
pub const RUN_HISTORY_LIMIT: i32 = 5;
/// `scaleDownDelaySeconds` of both strategies and of Experiments.
pub const SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// `abortScaleDownDelaySeconds` of both strategies.
pub const ABORT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// `canary.maxSurge`.
pub const MAX_SURGE: &str = "25%";
/// `maxUnavailable` of both strategies.
pub const MAX_UNAVAILABLE: &str = "25%";
/// `trafficRouting.maxTrafficWeight`.
pub const MAX_TRAFFIC_WEIGHT: i32 = 100;
/// A metric's `consecutiveErrorLimit`.
pub const CONSECUTIVE_ERROR_LIMIT: i32 = 4;

// Argo CD (`pkg/apis/application/v1alpha1`, `controller/appcontroller.go`).

/// An Application source's `targetRevision` when absent or empty.
pub const TARGET_REVISION: &str = "HEAD";
/// An Application's `spec.revisionHistoryLimit`.
pub const APP_REVISION_HISTORY_LIMIT: i64 = 10;
/// `retry.limit` of a sync auto-sync starts when `spec.syncPolicy.retry` is absent.
pub const AUTO_SYNC_RETRY_LIMIT: i64 = 5;
/// `retry.backoff.duration`.
pub const SYNC_RETRY_DURATION: std::time::Duration = std::time::Duration::from_secs(5);
/// `retry.backoff.factor`.
pub const SYNC_RETRY_FACTOR: i64 = 2;
/// `retry.backoff.maxDuration`.
pub const SYNC_RETRY_MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(180);
