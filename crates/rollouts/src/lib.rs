//! The Rollout controller, built as DESIGN §5 says: observe → pure plan → apply.
//!
//! The pure pieces: the pod-template hash ([`hash`]), a Rollout's ReplicaSets — naming,
//! finding the one for the current template, revisions ([`replicasets`]) — and the blue-green
//! planner ([`blue_green`]), the status conditions ([`conditions`]); the controller that observes and applies its plans through kube-rs
//! ([`controller`]). Canary, analysis and the operator verbs are not built yet.

pub mod blue_green;
pub mod conditions;
pub mod controller;
pub mod hash;
pub mod replicasets;
