//! The Rollout controller, built as DESIGN §5 says: observe → pure plan → apply.
//!
//! So far this crate holds the pure pieces every strategy stands on: the pod-template hash
//! ([`hash`]) and a Rollout's ReplicaSets — naming, finding the one for the current template,
//! revisions ([`replicasets`]). The blue-green planner and the applier come next.

pub mod hash;
pub mod replicasets;
