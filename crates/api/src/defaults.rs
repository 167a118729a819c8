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
