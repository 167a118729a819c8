//! Argo Rollouts' resource types in Rust: `argoproj.io/v1alpha1` Rollout, AnalysisTemplate,
//! ClusterAnalysisTemplate, AnalysisRun and Experiment, with Argo's defaults as accessor
//! methods, the well-known names in [`names`], validation in [`validation`] and the generated
//! CRDs in [`crd`]. No IO.
//!
//! Every manifest Argo accepts deserializes here and serializes back to the same JSON: optional
//! fields are `Option`s that are skipped when absent, lists and maps are `Option`s so an empty
//! one the user wrote survives, and pod templates are held as the exact JSON the user wrote
//! ([`Preserved`]).

mod analysis;
mod analysis_status;
mod blue_green;
mod canary;
pub mod crd;
pub mod defaults;
pub mod duration;
mod experiment;
pub mod int_or_percent;
mod metadata;
mod metric_provider;
pub mod names;
mod preserved;
mod rollout;
mod rollout_status;
mod traffic_routing;
pub mod validation;

pub use analysis::*;
pub use analysis_status::*;
pub use blue_green::*;
pub use canary::*;
pub use experiment::*;
pub use metadata::*;
pub use metric_provider::*;
pub use preserved::*;
pub use rollout::*;
pub use rollout_status::*;
pub use traffic_routing::*;
