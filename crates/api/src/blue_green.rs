//! `spec.strategy.blueGreen`: a preview stack beside the active one, then an instant switch.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{PodMetadata, RolloutAnalysis, defaults};

/// The blue-green strategy.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// The Service that serves production; its selector follows the active ReplicaSet.
    pub active_service: String,
    /// The Service that always points at the newest ReplicaSet.
    pub preview_service: Option<String>,
    /// Pods the new ReplicaSet runs before promotion (default: all replicas).
    pub preview_replica_count: Option<i32>,
    /// Promote without a human once the new ReplicaSet is ready (default true).
    pub auto_promotion_enabled: Option<bool>,
    /// Promote automatically this many seconds after pausing.
    pub auto_promotion_seconds: Option<i32>,
    /// Pods that may be unavailable during a restart (default 25%).
    pub max_unavailable: Option<IntOrString>,
    /// Seconds the old ReplicaSet keeps running after the switch (default 30).
    pub scale_down_delay_seconds: Option<i32>,
    /// Old ReplicaSets kept running during their delay (default: no limit).
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Seconds before the aborted preview ReplicaSet is scaled down (default 30; 0 = never).
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Analysis that must succeed before the active Service switches.
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// Analysis run after the switch; failure switches back.
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    /// Keep new pods off the nodes of the previous version.
    pub anti_affinity: Option<AntiAffinity>,
    /// Metadata added to pods while they are the preview.
    pub preview_metadata: Option<PodMetadata>,
    /// Metadata added to pods while they are active.
    pub active_metadata: Option<PodMetadata>,
}

impl BlueGreenStrategy {
    /// `autoPromotionEnabled`, default true.
    pub fn auto_promotion_enabled(&self) -> bool {
        self.auto_promotion_enabled.unwrap_or(true)
    }

    /// `autoPromotionSeconds`, default 0 (off).
    pub fn auto_promotion_seconds(&self) -> i32 {
        self.auto_promotion_seconds.unwrap_or(0)
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

    /// `maxUnavailable`, default 25%.
    pub fn max_unavailable(&self) -> IntOrString {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrString::String(defaults::MAX_UNAVAILABLE.into()))
    }

    /// `previewService`, `None` when absent or empty.
    pub fn preview_service(&self) -> Option<&str> {
        self.preview_service.as_deref().filter(|s| !s.is_empty())
    }
}

/// Anti-affinity against the previous version's pods: exactly one of the two.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AntiAffinity {
    /// A soft rule with a weight.
    pub preferred_during_scheduling_ignored_during_execution: Option<PreferredAntiAffinity>,
    /// A hard rule.
    pub required_during_scheduling_ignored_during_execution: Option<RequiredAntiAffinity>,
}

/// The weight of a preferred anti-affinity rule (1–100).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferredAntiAffinity {
    /// Weight, 1–100.
    pub weight: i32,
}

/// A required anti-affinity rule (no fields).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RequiredAntiAffinity {}
