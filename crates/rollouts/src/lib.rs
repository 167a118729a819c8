//! The Rollout controller, built as DESIGN §5 says: observe → pure plan → apply.
//!
//! So far this crate holds the pure pieces: the pod-template hash ([`hash`]), a Rollout's
//! ReplicaSets — naming, finding the one for the current template, revisions
//! ([`replicasets`]) — and the blue-green planner ([`blue_green`]). The applier that observes
//! and executes plans through kube-rs comes next; nothing runs these yet.

pub mod blue_green;
pub mod hash;
pub mod replicasets;
