//! The Rollout controller, built as DESIGN §5 says: observe → pure plan → apply.
//!
//! The pure pieces: the pod-template hash ([`hash`]), a Rollout's ReplicaSets — naming,
//! finding the one for the current template, revisions ([`replicasets`]) — the blue-green
//! planner ([`blue_green`]), the status conditions ([`conditions`]) and the status patch
//! ([`status`]). Around them: reading the informer stores ([`observe`]), carrying out a plan
//! ([`apply`]), waiting for the stores to show the controller's own writes
//! ([`expectations`]), indexes over the stores ([`index`]), the controller's wiring ([`controller`]), its metrics ([`metrics`])
//! and leader election for `sluice controller` ([`lease`]). Canary and analysis are not built yet.

pub mod apply;
pub mod blue_green;
pub mod conditions;
pub mod controller;
pub mod expectations;
pub mod hash;
pub mod index;
pub mod lease;
pub mod metrics;
pub mod observe;
pub mod replica_math;
pub mod replicasets;
pub mod status;
