//! Argo Rollouts' and Argo CD's resource types in Rust: `argoproj.io/v1alpha1` Rollout,
//! AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun and Experiment, and Argo CD's
//! Application and AppProject, with Argo's defaults as accessor methods, the well-known names
//! in [`names`], validation in [`validation`] and the generated CRDs in [`crd`]. No IO.
//!
//! Every manifest Argo accepts deserializes here and serializes back to the same JSON: optional
//! fields are `Option`s that are skipped when absent, lists and maps are `Option`s so an empty
//! one the user wrote survives, and pod templates are held as the exact JSON the user wrote
//! ([`Preserved`]).

mod analysis;
mod analysis_status;
mod app_project;
mod application;
mod application_operation;
mod application_source;
mod application_status;
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
mod sync_options;
mod traffic_routing;
pub mod validation;

pub use analysis::*;
pub use analysis_status::*;
pub use app_project::*;
pub use application::*;
pub use application_operation::*;
pub use application_source::*;
pub use application_status::*;
pub use blue_green::*;
pub use canary::*;
pub use experiment::*;
pub use metadata::*;
pub use metric_provider::*;
pub use preserved::*;
pub use rollout::*;
pub use rollout_status::*;
pub use sync_options::*;
pub use traffic_routing::*;
