//! Small shapes shared by several kinds: pod metadata overlays and conditions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Labels and annotations, as Argo's `PodTemplateMetadata` and `AnalysisRunMetadata`.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodMetadata {
    /// Labels to add.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to add.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A status condition, in the shape Rollouts and Experiments share (`lastUpdateTime` included).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type (`Progressing`, `Available`, … see [`crate::names::condition`]).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// When the condition was last written.
    pub last_update_time: Time,
    /// When `status` last changed.
    pub last_transition_time: Time,
    /// A one-word CamelCase reason (see [`crate::names::reason`]).
    pub reason: String,
    /// A human-readable message.
    pub message: String,
}

/// The status of a condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell.
    Unknown,
}

impl ConditionStatus {
    /// `True` when `holds`, else `False`.
    pub fn from_bool(holds: bool) -> Self {
        if holds { Self::True } else { Self::False }
    }
}
